"""/status: per source its last report, next run and errors; the configuration with secrets redacted."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from adapter import __version__
from adapter.redaction import redact

if TYPE_CHECKING:
    from adapter.service.app import Service

router = APIRouter(tags=["operations"])


def safe(value: Any) -> Any:
    """Secrets by key or type redacted, URL credentials removed, paths and the like as text."""
    return redact(_jsonable(redact(value)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def service_status(service: Service) -> dict[str, Any]:
    """The whole status document."""
    runtime = service.runtime
    sources: dict[str, Any] = {}
    if service.coordinator is not None:
        for name, state in service.coordinator.status.items():
            sources[name] = {"kind": "polled", **state.as_dict()}
    for stream in service.streams:
        sources[stream.name] = stream.as_dict()
    broker: dict[str, Any] = {"tenant": service.settings.tenant}
    if runtime is not None:
        broker["embedded"] = runtime.broker is not None
        broker["url"] = runtime.broker_url if runtime.broker is not None or runtime.settings.broker_url else None
    return safe({
        "service": {"version": __version__, "running": service.running, "ready": service.ready,
                    "started_at": service.started_at,
                    "uptime_seconds": round(time.time() - service.started_at, 1) if service.started_at else None},
        "broker": broker,
        "sources": sources,
        "outbox": service.outbox_depth(),
        "quarantine": service.quarantine_counts(),
        "held_deletes": service.held_deletes(),
        "settings": service.settings.redacted(),
        "config": service.config.model_dump(mode="json"),
    })


@router.get("/status", summary="Sources, their last runs and errors, and the redacted configuration")
async def status(request: Request) -> dict[str, Any]:
    """Per source (polled and streams): last report, next run, errors; outbox, quarantine, settings."""
    return service_status(request.app.state.service)
