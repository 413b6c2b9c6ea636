"""Admin actions behind the API key: run a polled source now, list and retry the quarantine."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from adapter.service.auth import require_api_key
from adapter.sync.quarantine import Quarantine, QuarantineEntry
from adapter.sync.report import SyncReport
from adapter.sync.state import utcnow

if TYPE_CHECKING:
    from adapter.service.app import Service

router = APIRouter(tags=["admin"], dependencies=[Depends(require_api_key)],
                   responses={401: {"description": "Missing or wrong X-API-Key"},
                              503: {"description": "Admin endpoints disabled (no BURGAS_API_KEY) or not started"}})
PREVIEW_CHARS = 2000


def _running(request: Request) -> Service:
    service: Service = request.app.state.service
    if not service.running or service.runtime is None or service.runtime.state is None:
        raise HTTPException(503, "the service is not running")
    return service


@router.post("/sync/{source}", summary="Run one polled source now and return its report")
async def sync_source(source: str, request: Request) -> dict[str, Any]:
    """One run of a polled source (streams run continuously and answer 409)."""
    service = _running(request)
    if service.stream(source) is not None:
        raise HTTPException(409, f"{source} is a stream: it syncs continuously")
    assert service.coordinator is not None
    if source not in service.coordinator.sources:
        raise HTTPException(404, f"no enabled polled source {source!r}")
    report = await service.coordinator.run_source(source)
    return report.as_dict()


def _entry(entry: QuarantineEntry) -> dict[str, Any]:
    preview = None
    if entry.payload is not None:
        preview = bytes(entry.payload[:PREVIEW_CHARS * 4]).decode("utf-8", "replace")[:PREVIEW_CHARS]
    return {"id": entry.id, "tenant": entry.tenant, "source": entry.source, "kind": entry.kind,
            "locator": entry.locator, "entity_type": entry.entity_type, "attr": entry.attr or None,
            "reason": entry.reason, "error_class": entry.error_class, "status": entry.status,
            "first_seen": entry.first_seen, "last_seen": entry.last_seen,
            "retries": entry.retry_count, "payload": preview}


@router.get("/quarantine", summary="Quarantined records and entities with their reasons")
async def quarantine_list(request: Request, source: str | None = None,
                          kind: Literal["record", "upsert", "delete", "delete_attr"] | None = None,
                          limit: int = Query(100, ge=1, le=1000),
                          offset: int = Query(0, ge=0)) -> dict[str, Any]:
    """Oldest first; `payload` is a text preview of what was set aside (for MQTT: the message)."""
    service = _running(request)
    assert service.runtime is not None and service.runtime.state is not None
    quarantine = Quarantine(service.runtime.state)
    entries = quarantine.entries(source=source, kind=kind, limit=limit, offset=offset)
    return {"total": quarantine.count(source=source, kind=kind), "items": [_entry(e) for e in entries]}


class RetryRequest(BaseModel):
    """Which quarantined items to retry (none given: all)."""

    ids: list[int] | None = Field(None, max_length=10_000)


@router.post("/quarantine/retry", summary="Retry quarantined items")
async def quarantine_retry(request: Request, body: RetryRequest | None = None) -> dict[str, Any]:
    """Entity operations go back to the outbox; records are mapped again (stream messages from
    their stored payload, polled records by running their source); what now passes leaves quarantine."""
    service = _running(request)
    runtime = service.runtime
    assert runtime is not None and runtime.state is not None and runtime.pipeline is not None
    quarantine = Quarantine(runtime.state)
    known = set(quarantine.ids())
    ids = [i for i in body.ids if i in known] if body is not None and body.ids is not None else sorted(known)
    started = utcnow()
    records = quarantine.retry(ids)
    resolved: list[int] = []
    polled: dict[str, list[QuarantineEntry]] = {}
    for source in sorted({r.source for r in records}):
        entries = [r for r in records if r.source == source]
        stream = service.stream(source)
        if stream is not None:
            resolved.extend(stream.retry(entries))
        elif service.coordinator is not None and source in service.coordinator.sources:
            polled[source] = entries
    for source, entries in polled.items():
        # Every record is mapped again (versions and raw hashes ignored); only a complete run
        # shows which records no longer fail: after a partial or failed one nothing is resolved.
        run = await service.coordinator.run_source(source, full=True)  # type: ignore[union-attr]
        if not run.complete or run.last_error is not None:
            continue
        still = {e.id: e.last_seen for e in quarantine.entries(source=source)}
        passed = [e.id for e in entries if e.id in still and still[e.id] < started]
        quarantine.remove(passed)
        resolved.extend(passed)
    report = SyncReport("quarantine", "", datetime.now(UTC).isoformat(timespec="seconds"))
    await runtime.pipeline.deliver(report)
    return {"entity_operations": len(ids) - len(records), "records": len(records),
            "records_resolved": len(resolved), "sent": report.sent, "pending": report.pending,
            "still_quarantined": quarantine.count()}
