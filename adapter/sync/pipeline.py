"""One source end to end: fetch -> map -> diff against state -> outbox -> broker -> report.

The state advances only when the broker confirms (adapter.sync.outbox), so a run interrupted at
any point is finished by the next one. A record the mapper rejects and an entity the broker
rejects are quarantined with their reason; everything else goes on.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
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
from adapter.sync.early import EARLY_DELIVERY_THRESHOLD, EarlyDelivery
from adapter.sync.outbox import Outbox
from adapter.sync.quarantine import Quarantine
from adapter.sync.report import SyncReport
from adapter.sync.skip import RecordSkipper, SkipIndex
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


Progress = Callable[[dict[str, "Mapped"], list[str]], Awaitable[None]]
"""``(entities so far, ids new since the last call)``: awaited every PROGRESS_EVERY records."""
PROGRESS_EVERY = 500


async def map_fetch(source: Source, mapper: RecordMapper, on_rejected: Callable[[Rejected], None],
                    on_record: Callable[[], None] | None = None,
                    skipper: RecordSkipper | None = None,
                    progress: Progress | None = None) -> tuple[dict[str, Mapped], Any]:
    """One fetch of a source, mapped; records giving the same entity id are merged.

    A transient error part-way keeps what was mapped so far (the fetch is then incomplete, so
    nothing is deleted on its account); a fatal one is raised. With a skipper, pages and records
    mapped before are not mapped again, unless a changed record gives the same entity as a
    skipped record (then the entity is rebuilt from all its records, as a merge needs them all;
    for a skipped page, the caller reads the source again without page skipping). ``progress``
    lets the caller act on what is mapped while the fetch goes on (see EarlyDelivery).
    """
    fetch = source.fetch()
    if skipper is not None:
        fetch.page_filter = skipper.skip_page
    by_id: dict[str, Mapped] = {}
    fresh: list[str] = []

    def add(result: Mapped | Rejected) -> None:
        if isinstance(result, Rejected):
            on_rejected(result)
            return
        earlier = by_id.get(result.entity.id)
        if earlier is None:
            by_id[result.entity.id] = result
            fresh.append(result.entity.id)
        else:
            by_id[result.entity.id] = merge(earlier, result)

    try:
        count = 0
        async for record in fetch:
            if on_record is not None:
                on_record()
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                await progress(by_id, fresh)
                fresh = []
            if skipper is None:
                add(mapper(record))
                continue
            digest, skip = skipper.skip(record)
            if skip:
                continue
            result = mapper(record)
            add(result)
            skipper.mapped(digest, result)
    except AdapterError as exc:
        if isinstance(exc, FatalError) or not (by_id or (skipper and (skipper.skipped or skipper.page_ids))):
            raise
        logger.warning("%s: fetch stopped after %d records: %s", source.name, fetch.record_count, exc)
    if skipper is not None:
        skipper.finish()
        for entity_id in [i for i in skipper.skipped if i in by_id]:
            for record in skipper.skipped.pop(entity_id):
                add(mapper(record))
    return by_id, fetch


class Pipeline:
    """Runs sources into the broker through one state file."""

    def __init__(self, state: StateStore, client: BrokerClient | None, *, tenant: str | None = None,
                 context_mode: ContextMode = ContextMode.GENERATED,
                 context_base_url: str = DEFAULT_CONTEXT_BASE_URL, delete_missing: bool = True,
                 upsert_mode: str = "update", history: HistorySink | None = None,
                 early_delivery: int = EARLY_DELIVERY_THRESHOLD) -> None:
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
        self.early_delivery = early_delivery  # entities mapped before a long fetch starts delivering
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
        document = to_dict(entity, Form.NORMALIZED)
        try:
            body = orjson.dumps(document)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise MappingError(f"entity cannot be encoded as JSON: {exc}", entity_id=entity.id) from None
        return OutgoingEntity(entity.id, entity.entity_type, body, context,
                              frozenset(document).difference(("id", "type", "@context")))

    def encodable(self, by_id: dict[str, Mapped], report: SyncReport) -> list[OutgoingEntity]:
        """The entities as sent; one that cannot be encoded is quarantined as its record."""
        outgoing = []
        for mapped in by_id.values():
            try:
                outgoing.append(self.outgoing(mapped.entity))
            except MappingError as exc:
                self._reject_record(Rejected(report.source, mapped.record or mapped.entity.id,
                                             exc.reason), report)
        return outgoing

    async def map_source(self, source: Source, mapper: RecordMapper, report: SyncReport,
                         skipper: RecordSkipper | None = None,
                         progress: Progress | None = None) -> tuple[dict[str, Mapped], Any]:
        """Fetch and map one source; rejected records are quarantined as they come. Returns the
        mapped entities and the fetch (None when it failed at once)."""
        def rejected(result: Rejected) -> None:
            self._reject_record(result, report)

        def counted() -> None:
            report.records_in += 1

        try:
            by_id, fetch = await map_fetch(source, mapper, rejected, counted, skipper, progress)
            if skipper is not None and not skipper.page_ids.isdisjoint(by_id):
                # A changed record gives the entity of a skipped page: the merge needs that page's
                # records, which were not read. Rare (ids moved between records): read it all.
                logger.info("%s: a changed record shares its entity with an unchanged page; "
                            "reading the source again record by record", source.name)
                report.records_in = report.records_rejected = report.mapper_failures = 0
                report.rejections.clear()
                skipper.reset(pages=False)
                by_id, fetch = await map_fetch(source, mapper, rejected, counted, skipper)
        except AdapterError as exc:
            report.last_error = str(exc)
            if isinstance(exc, FatalError):
                raise
            logger.warning("%s: fetch stopped: %s", source.name, exc)
            return {}, None
        report.records_in += fetch.skipped_records
        if fetch.error is not None and report.last_error is None:
            report.last_error = str(fetch.error)
        if fetch.incomplete_reasons and report.last_error is None:
            report.last_error = "; ".join(fetch.incomplete_reasons)
        return by_id, fetch

    def _reject_record(self, rejected: Rejected, report: SyncReport) -> None:
        report.records_rejected += 1
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
                skipper = None
                if static:
                    skipper = RecordSkipper.empty() if full else skips.skipper(self.tenant, name, salt)
                await self._run(name, source, mapper, report, run_id, snapshot=snapshot,
                                skipper=skipper, salt=salt, version=version, skips=skips)
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
                report.records_rejected > report.records_in * MAX_REJECTED_SHARE:
            reason = f"{report.records_rejected} of {report.records_in} records were rejected"
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
        early = EarlyDelivery(self, name, report, run_id, threshold=self.early_delivery)
        try:
            await self._run_with(early, name, source, mapper, report, run_id, snapshot=snapshot,
                                 skipper=skipper, salt=salt, version=version, skips=skips)
        except BaseException:
            early.cancel()
            raise
        await early.finish()

    async def _run_with(self, early: EarlyDelivery, name: str, source: Source, mapper: RecordMapper,
                        report: SyncReport, run_id: str, *, snapshot: bool, skipper: RecordSkipper | None,
                        salt: str, version: str | None, skips: SkipIndex) -> None:
        by_id, fetch = await self.map_source(source, mapper, report, skipper, early)
        if skipper is not None and fetch is not None and not report.records_rejected and \
                skipper.unchanged_everywhere(fetch, self.state.count(self.tenant, name)):
            # Every page was one mapped before and the state holds nothing else: as if the
            # source had published an unmoved version (no plan, no writes).
            self._not_modified(name, report)
            report.not_modified = False  # the source was read
            report.records_unchanged = skipper.page_records
            if version is not None:
                skips.set_version(self.tenant, name, salt, version)
            return
        complete = fetch is not None and fetch.complete and not self._hold_deletes(name, report)
        report.complete = complete
        report.mapped = len(by_id)
        for mapped in by_id.values():
            entity_type = mapped.entity.entity_type
            report.entities_by_type[entity_type] = report.entities_by_type.get(entity_type, 0) + 1
            report.readings += len(mapped.history)
            if self.history is not None and mapped.history:
                self.history.write(name, mapped.history)
        enqueued = early.unchanged_since(by_id)  # planned while the fetch went on
        done = enqueued | early.failed_since(by_id)
        outgoing = self.encodable({i: m for i, m in by_id.items() if i not in done}, report)
        present = [*skipper.skipped, *skipper.page_ids] if skipper is not None else []
        present.extend(enqueued)
        plan = self.state.sync_snapshot(
            self.tenant, name, outgoing, run_id=run_id, complete=complete,
            delete_missing=snapshot and self.delete_missing,
            upsert_mode=self.upsert_mode, present=present)  # type: ignore[arg-type]
        report.unchanged = len(set(plan.unchanged) - early.upserted)
        report.records_unchanged = (sum(map(len, skipper.skipped.values())) + skipper.page_records
                                  if skipper is not None else 0)
        # Only now does the state reflect this run: remember what can be skipped next time.
        if skipper is not None:
            skips.save(self.tenant, name, salt, skipper, complete=complete)
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
