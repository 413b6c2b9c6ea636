"""One source end to end: fetch -> map -> diff against state -> outbox -> broker -> report.

The state advances only when the broker confirms (adapter.sync.outbox), so a run interrupted at
any point is finished by the next one. A record the mapper rejects and an entity the broker
rejects are quarantined with their reason; everything else goes on.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from adapter.errors import AdapterError, AuthError, FatalError, MappingError, TransientError
from adapter.mapping.base import Mapped, Rejected, fold
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import BrokerClient
from adapter.ngsi.context import DEFAULT_CONTEXT_BASE_URL, ContextMode, context_for
from adapter.ngsi.serialize import Form, to_dict
from adapter.ngsi.temporal import TemporalWriter
from adapter.sources.base import RawRecord, Source
from adapter.sync import deletes
from adapter.sync.changes import ChangeDetection
from adapter.sync.early import EARLY_DELIVERY_THRESHOLD
from adapter.sync.history import HistoryOutbox, Series
from adapter.sync.hosting import HostedContexts
from adapter.sync.outbox import Outbox
from adapter.sync.quarantine import Quarantine
from adapter.sync.report import ReportBuilder, SyncReport
from adapter.sync.skip import RecordSkipper, SkipIndex, SourceMarks
from adapter.sync.state import StateStore, SyncPlan
from data_models import Entity

logger = logging.getLogger(__name__)

RecordMapper = Callable[[RawRecord], "Mapped | Rejected"]
# A complete fetch rejecting more than this share of its records deletes nothing (see _hold_deletes).
MAX_REJECTED_SHARE = 0.5
MIN_RECORDS_FOR_REJECTION_GUARD = 1


Progress = Callable[[dict[str, "Mapped"], list[str]], Awaitable[None]]
"""``(entities so far, ids new since the last call)``: awaited every PROGRESS_EVERY records."""
PROGRESS_EVERY = 500


async def map_fetch(source: Source, mapper: RecordMapper, on_rejected: Callable[[Rejected], None],
                    on_record: Callable[[], None] | None = None,
                    skipper: RecordSkipper | None = None,
                    progress: Progress | None = None,
                    deadline: float | None = None) -> tuple[dict[str, Mapped], Any]:
    """One fetch of a source, mapped; records giving the same entity id are merged.

    A transient error part-way keeps what was mapped so far (the fetch is then incomplete, so
    nothing is deleted on its account); a fatal one is raised. With a skipper, pages and records
    mapped before are not mapped again, unless a changed record gives the same entity as a
    skipped record (then the entity is rebuilt from all its records, as a merge needs them all;
    for a skipped page, the caller reads the source again without page skipping). ``progress``
    lets the caller act on what is mapped while the fetch goes on (see EarlyDelivery).
    ``deadline`` (seconds) bounds the whole fetch (adapter.sources.base.Fetch).
    """
    fetch = source.fetch()
    fetch.deadline = deadline
    if skipper is not None:
        fetch.page_filter = skipper.skip_page
    by_id: dict[str, Mapped] = {}  # (``progress`` may take entities out once it delivered them)
    fresh: list[str] = []
    mapped = 0

    def add(result: Mapped | Rejected) -> None:
        nonlocal mapped
        if isinstance(result, Rejected):
            on_rejected(result)
            return
        mapped += 1
        if fold(by_id, result):
            fresh.append(result.entity.id)

    map_record = mapper if skipper is None else skipper.mapping(mapper)  # None: skipped
    try:
        count = 0
        async for record in fetch:
            if on_record is not None:
                on_record()
            count += 1
            if progress is not None and count % PROGRESS_EVERY == 0:
                await progress(by_id, fresh)
                fresh = []
            result = map_record(record)
            if result is not None:
                add(result)
    except AdapterError as exc:
        if isinstance(exc, FatalError) or not (mapped or (skipper and skipper.saw_entities)):
            raise
        logger.warning("%s: fetch stopped after %d records: %s", source.name, fetch.record_count, exc)
    for record in skipper.finish(by_id) if skipper is not None else ():
        add(mapper(record))
    return by_id, fetch


@dataclass
class SyncRun:
    """One run of one source: what it syncs and how, its change detection, its report so far."""

    name: str
    source: Source
    mapper: RecordMapper
    report: ReportBuilder
    changes: ChangeDetection
    snapshot: bool = True  # the source lists all its entities: what it no longer has is deleted
    deadline: float | None = None  # seconds for the whole fetch
    guard: deletes.DeleteGuard = field(default_factory=deletes.DeleteGuard)
    history: bool = True  # every reading also goes to the broker's temporal API

    @property
    def run_id(self) -> str:
        """The run's id (outbox operations carry it)."""
        return self.report.run_id


class Pipeline:
    """Runs sources into the broker through one state file."""

    def __init__(self, state: StateStore, client: BrokerClient | None, *, tenant: str | None = None,
                 context_mode: ContextMode = ContextMode.GENERATED,
                 context_base_url: str = DEFAULT_CONTEXT_BASE_URL, delete_missing: bool = True,
                 upsert_mode: str = "update", temporal_url: str | None = None,
                 early_delivery: int = EARLY_DELIVERY_THRESHOLD,
                 hosting: HostedContexts | None = None) -> None:
        self.state = state
        self.outbox = Outbox(state)
        # The broker hosts our generated @context documents; the outbox names them at delivery.
        self.hosting = hosting
        self.outbox.contexts = hosting
        self.quarantine = Quarantine(state)
        self.client = client
        self.tenant = tenant or ""
        self.context_mode = context_mode
        self.context_base_url = context_base_url
        self.delete_missing = delete_missing
        self.upsert_mode = upsert_mode
        self.history = HistoryOutbox(state)  # every reading, for the broker's temporal API
        self.history.contexts = hosting
        self.temporal_url = temporal_url  # where temporal reads go (Mintaka); None: the broker
        self._temporal: TemporalWriter | None = None
        self.early_delivery = early_delivery  # entities mapped before a long fetch starts delivering
        self._contexts: dict[type[Entity], Any] = {}
        # Attribute names by an encoded document's keys: one shared set for the many entities that
        # have the same attributes (its hash is computed once, for the state's lookups too).
        self._attrs: dict[tuple[str, ...], frozenset[str]] = {}

    def outgoing(self, entity: Entity, document: dict[str, Any] | None = None) -> OutgoingEntity:
        """An entity as the broker client sends it (normalized JSON bytes, with its @context);
        ``document``: its normalized form, when the caller has it already.

        Encoded here, once: a value JSON cannot carry (e.g. an integer beyond 64 bits in a
        free-form compound value) is a MappingError for this entity, not a failed batch later.
        """
        context = self.context_of(entity)
        if document is None:
            document = to_dict(entity, Form.NORMALIZED)
        try:
            # A copy of exactly its size: orjson's own bytes object keeps its ~4 KB write buffer
            # (~8x an entity), and bodies wait by the thousand in the upsert pump for a busy broker.
            body = bytes(memoryview(orjson.dumps(document)))
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise MappingError(f"entity cannot be encoded as JSON: {exc}", entity_id=entity.id) from None
        keys = tuple(document)
        attrs = self._attrs.get(keys)
        if attrs is None:
            if len(self._attrs) >= 1024:  # (bounded: a source's entities carry a handful of sets)
                self._attrs.clear()
            attrs = self._attrs[keys] = frozenset(keys).difference(("id", "type", "@context"))
        return OutgoingEntity(entity.id, entity.entity_type, body, context, attrs)

    def context_of(self, entity: Entity) -> Any:
        """The @context an entity is sent with (one per model, built once)."""
        model = type(entity)
        context = self._contexts.get(model)
        if context is None:
            context = self._contexts[model] = context_for(model, self.context_mode, self.context_base_url)
        return context

    def enqueue_history(self, name: str, series: list[Series], report: ReportBuilder | None = None,
                        db: sqlite3.Connection | None = None) -> int:
        """Enqueue the readings of these series for the temporal API (in ``db``'s transaction, when
        given); returns the instances enqueued."""
        plan = self.history.enqueue(self.tenant, name, series, db)
        if report is not None:
            report.history += plan.instances
        return plan.instances

    def encodable(self, by_id: dict[str, Mapped], report: ReportBuilder) -> list[OutgoingEntity]:
        """The entities as sent; one that cannot be encoded is quarantined as its record."""
        outgoing = []
        for mapped in by_id.values():
            try:
                outgoing.append(self.outgoing(mapped.entity))
            except MappingError as exc:
                self._reject_record(Rejected(report.source, mapped.record or mapped.entity.id,
                                             exc.reason), report)
        return outgoing

    async def run_once(self, name: str, source: Source, mapper: RecordMapper, *,
                       snapshot: bool = True, static: bool = False, salt: str = "",
                       full: bool = False, fetch_deadline: float | None = None,
                       max_delete_share: float = deletes.DEFAULT_MAX_DELETE_SHARE,
                       allow_deletes: bool = False, history: bool = True) -> SyncReport:
        """One sync of one source: everything it maps reaches the outbox, then the broker.

        ``static`` sources (GIS layers, GTFS) skip records mapped before (adapter.sync.skip);
        a versioned source whose version has not moved is not fetched at all; ``full`` maps
        everything again (adapter.sync.changes). ``fetch_deadline`` bounds the fetch (seconds);
        deletions beyond ``max_delete_share`` of the source are held unless ``allow_deletes``
        (adapter.sync.deletes). With ``history``, every reading of a series also goes to the
        broker's temporal API (adapter.sync.history).
        """
        started = time.monotonic()
        report = ReportBuilder(name, uuid.uuid4().hex, datetime.now(UTC).isoformat(timespec="seconds"))
        if self.hosting is not None:
            self.hosting.new_run()
            if await self.hosting.broker_was_reset():
                self._broker_was_reset()
        changes = ChangeDetection(self, SourceMarks(self.tenant, name, salt, static), report, full=full)
        run = SyncRun(name, source, mapper, report, changes, snapshot=snapshot, deadline=fetch_deadline,
                      guard=deletes.DeleteGuard(max_delete_share, allow_deletes), history=history)
        try:
            await self.sync(run)
            await self.deliver(report, source=name)
        finally:
            report.duration = time.monotonic() - started
        self.quarantine.trim(self.tenant, name)
        return report.freeze()

    async def sync(self, run: SyncRun) -> None:
        """The plain path up to the outbox: fetch -> map -> diff against the state -> outbox.
        What cannot have changed is left out as ``run.changes`` says."""
        report, changes = run.report, run.changes
        if await changes.source_unchanged(run.source, run.deadline):
            self._not_modified(run.name, report)
            return
        try:
            by_id, fetch = await self.map_source(run)
            if changes.nothing_changed(fetch, report.records_rejected, lambda: self.state.count(self.tenant, run.name)):
                self._not_modified(run.name, report, fetched=True)
            else:
                complete = fetch is not None and fetch.complete and not self._hold_deletes(run.name, report)
                self._count_mapped(by_id, report, complete, changes.early.gone(by_id))
                plan, held = self._plan_and_apply(run, by_id, complete)
                report.unchanged = changes.unchanged(plan)
                changes.save(complete=complete, held=held)  # only now does the state reflect this run
            report.records_unchanged = changes.records_unchanged
        except BaseException:
            changes.cancel()
            raise
        await changes.finish()

    async def map_source(self, run: SyncRun) -> tuple[dict[str, Mapped], Any]:
        """Fetch and map one source; rejected records are quarantined as they come. Returns the
        mapped entities and the fetch (None when it failed at once).

        A source refusing our credentials (AuthError) fails this run only: what waits in the
        outbox is still delivered, and the other sources still run."""
        report, changes, name = run.report, run.changes, run.name

        def rejected(result: Rejected) -> None:
            self._reject_record(result, report)

        def counted() -> None:
            report.records_in += 1

        try:
            by_id, fetch = await map_fetch(run.source, run.mapper, rejected, counted, changes.skipper,
                                           changes.progress, run.deadline)
            if changes.early.lost_merge(by_id):  # rare: a later record of an entity sent early
                logger.info("%s: a record merges into an entity delivered early; reading the source "
                            "again to merge all its records", name)
                if changes.skipper is not None:
                    changes.skipper.reset()
                reread = True
            elif changes.must_reread(by_id):  # rare (ids moved between records): read it all
                logger.info("%s: a changed record shares its entity with an unchanged page; "
                            "reading the source again record by record", name)
                reread = True
            else:
                reread = False
            if reread:
                report.records_in = report.records_rejected = report.mapper_failures = 0
                report.rejections.clear()
                by_id, fetch = await map_fetch(run.source, run.mapper, rejected, counted, changes.skipper,
                                               deadline=run.deadline)
        except AdapterError as exc:
            report.fail(exc)
            if isinstance(exc, FatalError) and not isinstance(exc, AuthError):
                raise
            logger.warning("%s: fetch stopped: %s", name, exc)
            return {}, None
        report.records_in += fetch.skipped_records
        if fetch.error is not None and report.last_error is None:
            report.last_error = str(fetch.error)
        if fetch.incomplete_reasons and report.last_error is None:
            report.last_error = "; ".join(fetch.incomplete_reasons)
        return by_id, fetch

    def _count_mapped(self, by_id: dict[str, Mapped], report: ReportBuilder, complete: bool,
                      gone: dict[str, str]) -> None:
        """Count the run's entities: ``by_id`` and those let go after early delivery (id -> type)."""
        report.complete = complete
        report.mapped = len(by_id) + len(gone)
        by_type = report.entities_by_type
        for mapped in by_id.values():
            entity_type = mapped.entity.entity_type
            by_type[entity_type] = by_type.get(entity_type, 0) + 1
            report.readings += len(mapped.history)
        for entity_type in gone.values():
            by_type[entity_type] = by_type.get(entity_type, 0) + 1

    def _plan_and_apply(self, run: SyncRun, by_id: dict[str, Mapped], complete: bool) -> tuple[SyncPlan, int]:
        """Diff the run's entities against the state and put the difference in the outbox, with
        their readings in the history outbox; returns the plan and the deletions held."""
        report, changes, name = run.report, run.changes, run.name
        early = changes.settled(by_id)  # planned while the fetch went on
        settled = set(early)
        # A series answering an older window keeps the newer present the broker has.
        if run.history:
            settled |= self.history.behind(self.tenant, name, (m.entity for m in by_id.values() if m.history))
        done = settled | changes.failed(by_id)
        outgoing = self.encodable({i: m for i, m in by_id.items() if i not in done}, report)
        delete_missing = run.snapshot and self.delete_missing
        plan = self.state.plan(
            self.tenant, name, outgoing, run_id=run.run_id, complete=complete,
            delete_missing=delete_missing, upsert_mode=self.upsert_mode,  # type: ignore[arg-type]
            present=[*changes.present(), *settled])
        plan.recorded = early  # the early plans wrote this run as their last_seen_run already
        held = 0
        if complete and delete_missing:
            held = report.held_deletes = run.guard.review(self.state, self.tenant, name, plan)
        plan.keep_pending = run.history
        self.state.apply(plan)
        if complete and delete_missing:
            run.guard.remember(self.state, self.tenant, name)
        if run.history:  # after the current states: their readings reach the store through the upserts
            self.enqueue_history(name, [Series(m.entity, m.history, self.context_of(m.entity))
                                        for m in by_id.values() if m.history], report)
        return plan, held

    def _reject_record(self, rejected: Rejected, report: ReportBuilder) -> None:
        report.records_rejected += 1
        if rejected.mapper_failed:
            report.mapper_failures += 1
        report.show([f"{rejected.source} {rejected.record}: {rejected.reason}"])
        payload = None
        if rejected.payload is not None:
            try:
                payload = orjson.dumps(rejected.payload, default=str)
            except (orjson.JSONEncodeError, TypeError):
                payload = None
        self.quarantine.add(tenant=self.tenant, source=rejected.source, kind="record",
                            locator=rejected.record, error=rejected.error(), payload=payload)

    def _hold_deletes(self, name: str, report: ReportBuilder) -> bool:
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

    def _not_modified(self, name: str, report: ReportBuilder, *, fetched: bool = False) -> None:
        """The source says nothing changed (its version, or every page ``fetched``): every entity
        it has is unchanged, and nothing is written (the run is recorded as the source's last)."""
        report.complete = True
        report.unchanged = self.state.count(self.tenant, name)
        report.not_modified = not fetched

    def _broker_was_reset(self) -> None:
        """The broker holds none of what the state says it confirmed (adapter.sync.hosting): every
        source maps and sends everything again from its next run on (this one, at a run's start)."""
        SkipIndex(self.state).forget()
        self.state.forget_confirmed()

    async def deliver(self, report: ReportBuilder, *, source: str | None = None, max_ops: int | None = None) -> None:
        """Deliver what waits in the outbox for this tenant (and source) into the report
        (``max_ops``: about that many operations of each outbox, then return)."""
        if self.client is None:
            report.pending = self.outbox.pending(tenant=self.tenant, source=source)
            report.history_pending = self.history.pending(tenant=self.tenant, source=source)
            return
        try:
            delivery = await self.outbox.deliver(self.client, tenant=self.tenant, source=source, max_ops=max_ops)
        except TransientError as exc:  # pragma: no cover - deliver keeps transient work itself
            report.last_error = str(exc)
            report.pending = self.outbox.pending(tenant=self.tenant, source=source)
            return
        if self.hosting is not None and self.hosting.take_reset():
            self._broker_was_reset()  # after this run's plan and skip index were saved
        report.count_delivery(delivery)
        report.pending = delivery.remaining
        if delivery.last_error and report.last_error is None and delivery.remaining:
            report.last_error = delivery.last_error
        await self._deliver_history(report, source, max_ops)

    async def _deliver_history(self, report: ReportBuilder, source: str | None, max_ops: int | None) -> None:
        """Deliver the pending readings (after the current states, which create the entities)."""
        if not self.history.pending(tenant=self.tenant, source=source):
            return
        assert self.client is not None
        if self._temporal is None:
            self._temporal = TemporalWriter(self.client, read_url=self.temporal_url)
        try:
            delivery = await self.history.deliver(self._temporal, tenant=self.tenant, source=source, max_ops=max_ops)
        except FatalError as exc:
            report.last_error = report.last_error or str(exc)
            report.history_pending = self.history.pending(tenant=self.tenant, source=source)
            return
        report.history_sent += delivery.instances
        report.rejected += delivery.rejected
        report.history_pending = delivery.remaining
        report.show(f"history: {error}" for error in delivery.errors)
        if delivery.last_error and report.last_error is None and delivery.remaining:
            report.last_error = delivery.last_error
