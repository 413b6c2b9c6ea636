"""One source end to end: fetch -> map -> diff against state -> outbox -> broker -> report.

The state advances only when the broker confirms (adapter.sync.outbox), so a run interrupted at
any point is finished by the next one. A record the mapper rejects and an entity the broker
rejects are quarantined with their reason; everything else goes on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from adapter.errors import AdapterError, FatalError, MappingError, TransientError
from adapter.mapping.base import Mapped, Rejected, merge
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import BrokerClient
from adapter.ngsi.context import DEFAULT_CONTEXT_BASE_URL, ContextMode, context_for
from adapter.ngsi.serialize import Form, to_dict
from adapter.sources.base import RawRecord, Source, VersionedSource
from adapter.sync.outbox import Outbox
from adapter.sync.quarantine import Quarantine
from adapter.sync.report import SyncReport
from adapter.sync.skip import SkipIndex, raw_hash
from adapter.sync.state import StateStore
from data_models import Entity

logger = logging.getLogger(__name__)

RecordMapper = Callable[[RawRecord], "Mapped | Rejected"]
_SHOWN_REJECTIONS = 20
# A complete fetch rejecting more than this share of its records deletes nothing (see _hold_deletes).
MAX_REJECTED_SHARE = 0.5
MIN_RECORDS_FOR_REJECTION_GUARD = 1


class HistorySink(Protocol):
    """Where every reading of a time series goes (a temporal store); optional."""

    def write(self, source: str, readings: tuple[Entity, ...]) -> None: ...


class RecordSkipper:
    """Which raw records were mapped before (adapter.sync.skip): skip them, remember the rest."""

    def __init__(self, known: dict[str, str]) -> None:
        self.known = known  # raw hash -> entity id, from the last runs
        self.seen: dict[str, str] = {}  # raw hash -> entity id, this run
        self.skipped: dict[str, list[RawRecord]] = {}  # entity id -> its unchanged records

    def skip(self, record: RawRecord) -> tuple[str, bool]:
        """(raw hash, whether the record need not be mapped)."""
        digest = raw_hash(record)
        entity_id = self.known.get(digest)
        if entity_id is None:
            return digest, False
        self.seen[digest] = entity_id
        self.skipped.setdefault(entity_id, []).append(record)
        return digest, True


async def map_fetch(source: Source, mapper: RecordMapper, on_rejected: Callable[[Rejected], None],
                    on_record: Callable[[], None] | None = None,
                    skipper: RecordSkipper | None = None) -> tuple[dict[str, Mapped], Any]:
    """One fetch of a source, mapped; records giving the same entity id are merged.

    A transient error part-way keeps what was mapped so far (the fetch is then incomplete, so
    nothing is deleted on its account); a fatal one is raised. With a skipper, records mapped
    before are not mapped again, unless a changed record gives the same entity (then the entity
    is rebuilt from all its records, as a merge needs them all).
    """
    fetch = source.fetch()
    by_id: dict[str, Mapped] = {}

    def add(result: Mapped | Rejected) -> None:
        if isinstance(result, Rejected):
            on_rejected(result)
            return
        earlier = by_id.get(result.entity.id)
        by_id[result.entity.id] = result if earlier is None else merge(earlier, result)

    try:
        async for record in fetch:
            if on_record is not None:
                on_record()
            if skipper is None:
                add(mapper(record))
                continue
            digest, skip = skipper.skip(record)
            if skip:
                continue
            result = mapper(record)
            add(result)
            if isinstance(result, Mapped):
                skipper.seen[digest] = result.entity.id
    except AdapterError as exc:
        if isinstance(exc, FatalError) or not (by_id or (skipper and skipper.skipped)):
            raise
        logger.warning("%s: fetch stopped after %d records: %s", source.name, fetch.record_count, exc)
    if skipper is not None:
        for entity_id in [i for i in skipper.skipped if i in by_id]:
            for record in skipper.skipped.pop(entity_id):
                add(mapper(record))
    return by_id, fetch


class Pipeline:
    """Runs sources into the broker through one state file."""

    def __init__(self, state: StateStore, client: BrokerClient | None, *, tenant: str | None = None,
                 context_mode: ContextMode = ContextMode.GENERATED,
                 context_base_url: str = DEFAULT_CONTEXT_BASE_URL, delete_missing: bool = True,
                 upsert_mode: str = "update", history: HistorySink | None = None) -> None:
        self.state = state
        self.outbox = Outbox(state)
        self.quarantine = Quarantine(state)
        self.client = client
        self.tenant = tenant or ""
        self.context_mode = context_mode
        self.context_base_url = context_base_url
        self.delete_missing = delete_missing
        self.upsert_mode = upsert_mode
        self.history = history
        self._contexts: dict[type[Entity], Any] = {}

    def outgoing(self, entity: Entity) -> OutgoingEntity:
        """An entity as the broker client sends it (normalized JSON bytes, with its @context).

        Encoded here, once: a value JSON cannot carry (e.g. an integer beyond 64 bits in a
        free-form compound value) is a MappingError for this entity, not a failed batch later.
        """
        model = type(entity)
        context = self._contexts.get(model)
        if context is None:
            context = self._contexts[model] = context_for(model, self.context_mode, self.context_base_url)
        try:
            body = orjson.dumps(to_dict(entity, Form.NORMALIZED))
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise MappingError(f"entity cannot be encoded as JSON: {exc}", entity_id=entity.id) from None
        return OutgoingEntity(entity.id, entity.entity_type, body, context)

    def _encodable(self, by_id: dict[str, Mapped], report: SyncReport) -> list[OutgoingEntity]:
        outgoing = []
        for mapped in by_id.values():
            try:
                outgoing.append(self.outgoing(mapped.entity))
            except MappingError as exc:
                self._reject_record(Rejected(report.source, mapped.record or mapped.entity.id,
                                             exc.reason), report)
        return outgoing

    async def map_source(self, source: Source, mapper: RecordMapper, report: SyncReport,
                         skipper: RecordSkipper | None = None) -> tuple[dict[str, Mapped], bool]:
        """Fetch and map one source; rejected records are quarantined as they come."""
        def rejected(result: Rejected) -> None:
            self._reject_record(result, report)

        def counted() -> None:
            report.records_in += 1

        try:
            by_id, fetch = await map_fetch(source, mapper, rejected, counted, skipper)
        except AdapterError as exc:
            report.last_error = str(exc)
            if isinstance(exc, FatalError):
                raise
            logger.warning("%s: fetch stopped: %s", source.name, exc)
            return {}, False
        if fetch.error is not None and report.last_error is None:
            report.last_error = str(fetch.error)
        if fetch.incomplete_reasons and report.last_error is None:
            report.last_error = "; ".join(fetch.incomplete_reasons)
        return by_id, fetch.complete

    def _reject_record(self, rejected: Rejected, report: SyncReport) -> None:
        report.skipped += 1
        if rejected.mapper_failed:
            report.mapper_failures += 1
        if len(report.rejections) < _SHOWN_REJECTIONS:
            report.rejections.append(f"{rejected.source} {rejected.record}: {rejected.reason}")
        payload = None
        if rejected.payload is not None:
            try:
                payload = orjson.dumps(rejected.payload, default=str)
            except (orjson.JSONEncodeError, TypeError):
                payload = None
        self.quarantine.add(tenant=self.tenant, source=rejected.source, kind="record",
                            locator=rejected.record, error=rejected.error(), payload=payload)

    async def run_once(self, name: str, source: Source, mapper: RecordMapper, *,
                       snapshot: bool = True, static: bool = False, salt: str = "",
                       full: bool = False) -> SyncReport:
        """One sync of one source: everything it maps reaches the outbox, then the broker.

        ``static`` sources (GIS layers, GTFS) skip records mapped before (adapter.sync.skip);
        a versioned source whose version has not moved is not fetched at all; ``full`` maps
        everything again.
        """
        started = time.monotonic()
        run_id = uuid.uuid4().hex
        report = SyncReport(name, run_id, datetime.now(UTC).isoformat(timespec="seconds"))
        skips = SkipIndex(self.state)
        try:
            version = None if full else await self._version(source)
            if version is not None and version == skips.version(self.tenant, name, salt):
                self._not_modified(name, report)
            else:
                await self._run(name, source, mapper, report, run_id, snapshot=snapshot,
                                skipper=RecordSkipper({} if full else
                                                      skips.raw_entities(self.tenant, name, salt))
                                if static else None, salt=salt, version=version, skips=skips)
            await self.deliver(report, source=name)
        finally:
            report.duration = time.monotonic() - started
        self.quarantine.trim(self.tenant, name)
        return report

    async def _version(self, source: Source) -> str | None:
        if not isinstance(source, VersionedSource):
            return None
        try:
            return await source.version()
        except TransientError as exc:  # the fetch will meet (and report) the same problem
            logger.debug("%s: no version: %s", source.name, exc)
            return None

    def _hold_deletes(self, name: str, report: SyncReport) -> bool:
        """Whether this run must not delete what it did not see, though the fetch was complete.

        A mapper that failed on a record (a bug, not bad data), or a run that rejected most of
        its records (e.g. a source field changed type), says more about the adapter or the feed's
        format than about which entities still exist: deleting them all would empty the broker.
        """
        reason = None
        if report.mapper_failures:
            reason = f"the mapper failed on {report.mapper_failures} record(s)"
        elif report.records_in >= MIN_RECORDS_FOR_REJECTION_GUARD and \
                report.skipped > report.records_in * MAX_REJECTED_SHARE:
            reason = f"{report.skipped} of {report.records_in} records were rejected"
        if reason is None:
            return False
        report.last_error = report.last_error or f"{reason}: nothing deleted this run"
        logger.warning("%s: %s; entities not seen are kept this run", name, reason)
        return True

    def _not_modified(self, name: str, report: SyncReport) -> None:
        """The source says nothing changed: every entity it has is unchanged, and nothing is
        written (the run itself is recorded as the source's last run)."""
        report.complete = True
        report.unchanged = self.state.count(self.tenant, name)
        report.not_modified = True

    async def _run(self, name: str, source: Source, mapper: RecordMapper, report: SyncReport,
                   run_id: str, *, snapshot: bool, skipper: RecordSkipper | None, salt: str,
                   version: str | None, skips: SkipIndex) -> None:
        by_id, complete = await self.map_source(source, mapper, report, skipper)
        complete = complete and not self._hold_deletes(name, report)
        report.complete = complete
        report.mapped = len(by_id)
        for mapped in by_id.values():
            entity_type = mapped.entity.entity_type
            report.entities_by_type[entity_type] = report.entities_by_type.get(entity_type, 0) + 1
            report.readings += len(mapped.history)
            if self.history is not None and mapped.history:
                self.history.write(name, mapped.history)
        outgoing = self._encodable(by_id, report)
        present = list(skipper.skipped) if skipper is not None else ()
        plan = self.state.sync_snapshot(
            self.tenant, name, outgoing, run_id=run_id, complete=complete,
            delete_missing=snapshot and self.delete_missing,
            upsert_mode=self.upsert_mode, present=present)  # type: ignore[arg-type]
        report.unchanged = len(plan.unchanged)
        report.skipped_records = len(present)
        # Only now does the state reflect this run: remember what can be skipped next time.
        if skipper is not None:
            skips.save_raw(self.tenant, name, salt, skipper.seen, complete=complete)
        skips.set_version(self.tenant, name, salt, version if complete else None)

    async def deliver(self, report: SyncReport, *, source: str | None = None) -> None:
        """Deliver what waits in the outbox for this tenant (and source) into the report."""
        if self.client is None:
            report.pending = self.outbox.pending(tenant=self.tenant, source=source)
            return
        try:
            delivery = await self.outbox.deliver(self.client, tenant=self.tenant, source=source)
        except TransientError as exc:  # pragma: no cover - deliver keeps transient work itself
            report.last_error = str(exc)
            report.pending = self.outbox.pending(tenant=self.tenant, source=source)
            return
        report.sent += delivery.upserted
        report.deleted += delivery.deleted
        report.attrs_deleted += delivery.attrs_deleted
        report.rejected += delivery.rejected
        report.pending = delivery.remaining
        for error in delivery.errors[: _SHOWN_REJECTIONS - len(report.rejections)]:
            report.rejections.append(str(error))
        if delivery.last_error and report.last_error is None and delivery.remaining:
            report.last_error = delivery.last_error
