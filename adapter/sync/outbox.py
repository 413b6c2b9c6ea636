"""The durable outbox: pending broker operations, delivered in order, removed only once confirmed.

Delivery takes the oldest rows and cuts them into phases so that an entity appears at most once
per phase; phases go out one after the other (ops on one entity keep their order), the ops inside
a phase go out batched and concurrently. After each phase one transaction removes the confirmed
rows and advances `sent_*` in the entity state. A crash (SIGKILL) before that commit only means
the phase is sent again: upserts and deletes are idempotent, so nothing is lost or duplicated.

Failures: transient -> the row stays (attempts + 1) and later ops of that entity wait;
rejected -> the row moves to quarantine; fatal (config/auth) -> rows stay and the error is raised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import orjson

from adapter.errors import AdapterError, FatalError, RecordError, TransientError
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import AttributeDelete
from adapter.ngsi.results import BatchResult
from adapter.redaction import redact
from adapter.sync.hosting import HostedContexts, context_lost
from adapter.sync.quarantine import Quarantine
from adapter.sync.state import StateStore, SyncPlan, utcnow

if TYPE_CHECKING:
    from adapter.ngsi.client import BrokerClient

logger = logging.getLogger(__name__)
OutboxKind = Literal["upsert", "delete", "delete_attr"]

MAX_REPORTED_ERRORS = 100
_COLUMNS = ("seq, tenant, source, op, entity_id, entity_type, attr, body, context, content_hash, attrs, "
            "attempts")


@dataclass(frozen=True, slots=True)
class OutboxOp:
    """One pending operation."""

    seq: int
    tenant: str
    source: str
    op: OutboxKind
    entity_id: str
    entity_type: str
    attr: str | None
    body: bytes | None
    context: Any
    content_hash: str | None
    attrs: list[str] | None
    attempts: int

    @property
    def key(self) -> tuple[str, str]:
        """Ops with the same key must reach the broker in order."""
        return (self.tenant, self.entity_id)


@dataclass
class DeliveryReport:
    """What one delivery pass did."""

    upserted: int = 0
    deleted: int = 0
    attrs_deleted: int = 0
    rejected: int = 0
    deferred: int = 0  # transient failures left in the outbox
    remaining: int = 0
    duration: float = 0.0
    last_error: str | None = None
    errors: list[AdapterError] = field(default_factory=list, repr=False)  # the first 100
    lost_contexts: set[str] = field(default_factory=set)  # @context URLs the broker could not resolve
    context_refused: int = 0  # operations deferred for that reason

    @property
    def rejections(self) -> list[AdapterError]:
        """The reported errors of operations the broker rejected (quarantined, not deferred)."""
        return [e for e in self.errors if isinstance(e, RecordError)]

    @property
    def delivered(self) -> int:
        """Operations the broker confirmed."""
        return self.upserted + self.deleted + self.attrs_deleted


class Outbox:
    """Pending operations of the state file, delivered through a BrokerClient."""

    def __init__(self, store: StateStore, *, window: int = 5000) -> None:
        self.store = store
        self.quarantine = Quarantine(store)
        self.window = window
        # Set by the pipeline for a broker that hosts our @context documents (adapter.sync.hosting).
        self.contexts: HostedContexts | None = None
        # One deliverer per outbox at a time: in-order delivery depends on it (adapter.sync.pump too).
        self.delivering = asyncio.Lock()

    def pending(self, *, tenant: str | None = None, source: str | None = None) -> int:
        """How many operations wait for delivery."""
        where, args = _filter(tenant, source)
        return self.store.conn.execute(f"SELECT COUNT(*) FROM outbox{where}", args).fetchone()[0]

    def ops(self, *, tenant: str | None = None, source: str | None = None,
            after: int = 0, limit: int = 1000) -> list[OutboxOp]:
        """Pending operations in delivery order."""
        where, args = _filter(tenant, source)
        where = (where + " AND" if where else " WHERE") + " seq > ?"
        # NOT INDEXED: walk the outbox in seq order from `after` and stop at `limit`. Through the
        # (tenant, source, entity_id) index SQLite read every pending row of the source and sorted
        # them, for each window: quadratic in a large outbox.
        rows = self.store.conn.execute(f"SELECT {_COLUMNS} FROM outbox NOT INDEXED{where} ORDER BY seq LIMIT ?",
                                       (*args, after, limit)).fetchall()
        return [_op(row) for row in rows]

    async def deliver(self, client: BrokerClient, *, tenant: str | None = None,
                      source: str | None = None, max_ops: int | None = None) -> DeliveryReport:
        """Deliver pending operations in order; raises the FatalError that stopped delivery, if any.

        ``max_ops`` stops after about that many operations (whole windows), so that a deliverer
        feeding a long run (adapter.sync.early) lets others waiting for the outbox take turns.
        """
        async with self.delivering:
            started = time.monotonic()
            report = DeliveryReport()
            fatal = await self._pass(client, report, tenant, source, max_ops)
            if fatal is None and report.lost_contexts and self.contexts is not None \
                    and self.contexts.lost(report.lost_contexts):
                # The broker refused entities because it no longer has our @context (restarted
                # in memory, database wiped): publish it again and send them once more, now.
                logger.warning("the broker lost the @context of %d operation(s) (%s); publishing it "
                               "again and retrying them", report.context_refused,
                               ", ".join(sorted(report.lost_contexts)[:3]))
                report.deferred -= report.context_refused
                report.errors = [e for e in report.errors if context_lost(e) is None]
                report.last_error = str(report.errors[-1]) if report.errors else None
                report.lost_contexts.clear()
                report.context_refused = 0
                fatal = await self._pass(client, report, tenant, source, max_ops)
            report.remaining = self.pending(tenant=tenant, source=source)
            report.duration = time.monotonic() - started
            if report.delivered or report.rejected or report.deferred:
                # DEBUG: a live stream delivers several times a second; failures are logged
                # where they happen, and the reports carry the counts.
                logger.debug("outbox: %d upserted, %d deleted, %d attributes deleted, %d rejected, "
                            "%d deferred, %d remaining", report.upserted, report.deleted,
                            report.attrs_deleted, report.rejected, report.deferred, report.remaining)
            if fatal is not None:
                raise fatal
            return report

    async def _pass(self, client: BrokerClient, report: DeliveryReport, tenant: str | None,
                    source: str | None, max_ops: int | None) -> FatalError | None:
        """One pass over the pending operations, phase by phase; returns the fatal error, if any."""
        blocked: set[tuple[str, str]] = set()
        after = 0
        taken = 0
        fatal: FatalError | None = None
        while fatal is None and (max_ops is None or taken < max_ops):
            limit = self.window if max_ops is None else max(1, min(self.window, max_ops - taken))
            ops = self.ops(tenant=tenant, source=source, after=after, limit=limit)
            taken += len(ops)
            if not ops:
                break
            after = ops[-1].seq
            stop = False
            for phase in _phases(ops):
                phase = [op for op in phase if op.key not in blocked]  # keep per-entity order
                if not phase:
                    continue
                deferred = report.deferred
                fatal = await self._prepare_contexts([op.context for op in phase], report)
                if fatal is not None or report.deferred > deferred:
                    stop = True
                    break
                confirmed, fatal = await self._deliver_phase(client, phase, report, blocked)
                if fatal is not None or (confirmed == 0 and report.deferred > deferred):
                    # Nothing got through: the broker is down; the next pass retries.
                    stop = True
                    break
            if stop:
                break
        return fatal

    async def send_new(self, client: BrokerClient, plan: SyncPlan, report: DeliveryReport) -> bool:
        """Send a plan's upserts of entities the state does not hold (a batch's worth, planned but
        not applied: no outbox row) and record the answers in one transaction: what the broker
        confirmed goes into the state as wanted and sent at once; what it rejected is recorded as
        wanted and quarantined, as a delivery pass does; the rest (transient or fatal errors, a lost
        @context) is enqueued as any plan is, for the run's final delivery. The caller holds
        :attr:`delivering`. False when nothing more should be sent now.
        """
        upserts = plan.upserts
        deferred = report.deferred
        # A run's entities share a handful of @context objects: each is prepared and resolved once.
        contexts = {id(e.context): e.context for e, _, _ in upserts}
        fatal = await self._prepare_contexts(list(contexts.values()), report)
        failed: dict[str, AdapterError] = {}
        if fatal is not None or report.deferred > deferred:
            report.deferred = deferred  # counted below, with the reason
            failed = dict.fromkeys((e.id for e, _, _ in upserts),
                                   fatal or TransientError(report.last_error or "broker unreachable"))
        else:
            resolve = self.contexts.resolve if self.contexts is not None else _same
            resolved = {key: resolve(context) for key, context in contexts.items()}
            result = await client.with_tenant(plan.tenant or None).upsert(
                OutgoingEntity(e.id, e.type, e.body, resolved[id(e.context)]) for e, _, _ in upserts)
            failed = result.failed
        confirmed = SyncPlan(plan.tenant, plan.source, plan.run_id)
        refused = SyncPlan(plan.tenant, plan.source, plan.run_id)
        waiting = SyncPlan(plan.tenant, plan.source, plan.run_id)
        if not failed:
            confirmed.upserts = upserts  # the usual answer: the whole batch
        else:
            for item in upserts:
                error = failed.get(item[0].id)
                target = confirmed if error is None else refused if isinstance(error, RecordError) else waiting
                target.upserts.append(item)
        with self.store.transaction() as db:
            self.store.record_new(db, confirmed, confirmed=True)
            _supersede_rejections(db, plan.tenant, plan.source, [e.id for e, _, _ in confirmed.upserts])
            self.store.record_new(db, refused, confirmed=False)
            self.store.apply(waiting, db)
            for entity, digest, attrs in refused.upserts:
                error = failed[entity.id]
                self.quarantine.add(tenant=plan.tenant, source=plan.source, kind="upsert", locator=entity.id,
                                    error=error, payload=entity.encode(with_context=False),
                                    context=entity.context, entity_type=entity.type, content_hash=digest,
                                    attrs=attrs, db=db)
                logger.warning("quarantined upsert of %s: %s", entity.id, error.reason)
        report.upserted += len(confirmed.upserts)
        report.rejected += len(refused.upserts)
        report.deferred += len(waiting.upserts)
        for entity, _, _ in [*refused.upserts, *waiting.upserts]:
            error = failed[entity.id]
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(error)
            report.last_error = str(error)
        stop = any(isinstance(e, FatalError) for e in failed.values())
        return not stop and not (waiting.upserts and not confirmed.upserts)

    async def _prepare_contexts(self, contexts: list[Any], report: DeliveryReport) -> FatalError | None:
        """Have the @context documents these operations name hosted on the broker (adapter.sync.hosting).

        A broker that cannot be reached defers them all, as their batches would be.
        """
        if self.contexts is None:
            return None
        try:
            await self.contexts.prepare(c for c in contexts if c is not None)
        except FatalError as exc:
            return exc
        except TransientError as exc:
            report.deferred += len(contexts)
            report.last_error = str(exc)
            if len(report.errors) < MAX_REPORTED_ERRORS:
                report.errors.append(exc)
            logger.warning("publishing the @context on the broker failed: %s", exc)
        return None

    async def _deliver_phase(self, client: BrokerClient, phase: list[OutboxOp], report: DeliveryReport,
                             blocked: set[tuple[str, str]]) -> tuple[int, FatalError | None]:
        """Send one phase (an entity at most once) in batch-sized chunks, committing each chunk's answer.

        Chunks go out concurrently (the client bounds requests in flight); each is committed as soon
        as it is answered, so a crash re-sends at most the chunks in flight.
        """
        groups: dict[tuple[str, str], list[OutboxOp]] = defaultdict(list)
        for op in phase:
            groups[(op.tenant, op.op)].append(op)
        size = max(1, client.batch_max_entities)
        resolve = self.contexts.resolve if self.contexts is not None else _same

        async def send(tenant: str, kind: str, ops: list[OutboxOp]) -> tuple[int, FatalError | None]:
            tenant_client = client.with_tenant(tenant or None)
            result: BatchResult[str] | BatchResult[tuple[str, str]]
            if kind == "upsert":
                result = await tenant_client.upsert(
                    OutgoingEntity(op.entity_id, op.entity_type, op.body or b"{}", resolve(op.context))
                    for op in ops)
            elif kind == "delete":
                result = await tenant_client.delete(op.entity_id for op in ops)
            else:
                result = await tenant_client.delete_attrs(
                    AttributeDelete(op.entity_id, op.attr or "", resolve(op.context)) for op in ops)
            failed: dict[Any, AdapterError] = result.failed  # by (entity id, attribute) for delete_attr
            outcome = {op.seq: failed.get((op.entity_id, op.attr) if kind == "delete_attr"
                                          else op.entity_id) for op in ops}
            fatal = self._commit(ops, outcome, report, blocked, client.upsert_mode)
            return sum(1 for error in outcome.values() if error is None), fatal

        answers = await asyncio.gather(*(send(tenant, kind, ops[i:i + size])
                                         for (tenant, kind), ops in groups.items()
                                         for i in range(0, len(ops), size)))
        fatal = next((f for _, f in answers if f is not None), None)
        return sum(n for n, _ in answers), fatal

    def _commit(self, phase: list[OutboxOp], outcome: dict[int, AdapterError | None],
                report: DeliveryReport, blocked: set[tuple[str, str]], upsert_mode: str) -> FatalError | None:
        """Record one phase's answers in one transaction; returns the fatal error, if any."""
        now = utcnow()
        fatal: FatalError | None = None
        with self.store.transaction() as db:
            confirmed_upserts: list[OutboxOp] = []
            for op in phase:
                error = outcome.get(op.seq)
                where = (op.tenant, op.source, op.entity_id)
                if error is None:
                    if op.op == "upsert":
                        confirmed_upserts.append(op)  # advanced below, in bulk
                        report.upserted += 1
                        continue
                    db.execute("DELETE FROM outbox WHERE seq=?", (op.seq,))
                    _advance(db, op, where, now, upsert_mode)
                    if op.op == "delete":
                        report.deleted += 1
                    else:
                        report.attrs_deleted += 1
                    continue
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append(error)
                report.last_error = str(error)
                if isinstance(error, RecordError):
                    db.execute("DELETE FROM outbox WHERE seq=?", (op.seq,))
                    self.quarantine.add(tenant=op.tenant, source=op.source, kind=op.op, locator=op.entity_id,
                                        error=error, payload=op.body, context=op.context,
                                        entity_type=op.entity_type, attr=op.attr or "",
                                        content_hash=op.content_hash, attrs=op.attrs, db=db)
                    report.rejected += 1
                    logger.warning("quarantined %s of %s: %s", op.op, op.entity_id, error.reason)
                    continue
                db.execute("UPDATE outbox SET attempts=attempts+1, last_error=? WHERE seq=?",
                           (redact(str(error))[:2000], op.seq))
                blocked.add(op.key)
                lost = context_lost(error)
                if lost is not None:
                    report.lost_contexts.add(lost)
                    report.context_refused += 1
                if isinstance(error, FatalError):
                    fatal = fatal or error
                else:
                    if not isinstance(error, TransientError):
                        logger.warning("unexpected error class %s for %s", type(error).__name__, op.entity_id)
                    report.deferred += 1
            _advance_upserts(db, confirmed_upserts, now, upsert_mode)
        return fatal


def _advance_upserts(db: Any, ops: list[OutboxOp], now: str, upsert_mode: str) -> None:
    """`_advance` for confirmed upserts, a few statements per chunk instead of four per entity.

    A phase holds an entity at most once, so doing them together keeps every entity's order.
    """
    if not ops:
        return
    # A chunk's seqs are mostly consecutive (one enqueue, in order): a range each, not a row each.
    db.executemany("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", _seq_ranges(op.seq for op in ops))
    sent: dict[tuple[str, str, str], str] = {}
    if upsert_mode == "update":  # update mode keeps attributes not sent: union with what was there
        by_source: dict[tuple[str, str], list[str]] = defaultdict(list)
        for op in ops:
            by_source[(op.tenant, op.source)].append(op.entity_id)
        for (tenant, source), ids in by_source.items():
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                for entity_id, attrs in db.execute(
                        "SELECT entity_id, sent_attrs FROM entity_state WHERE tenant=? AND source=? "
                        f"AND sent_attrs IS NOT NULL AND entity_id IN ({','.join('?' * len(chunk))})",
                        (tenant, source, *chunk)):
                    sent[(tenant, source, entity_id)] = attrs
    rows = []
    for op in ops:
        where = (op.tenant, op.source, op.entity_id)
        attrs = set(op.attrs or ())
        earlier = sent.get(where)
        if earlier:
            attrs |= set(orjson.loads(earlier))
        rows.append((op.content_hash, orjson.dumps(sorted(attrs)).decode(), now, *where))
    db.executemany("UPDATE entity_state SET sent_hash=?, sent_attrs=?, confirmed_at=? "
                   "WHERE tenant=? AND source=? AND entity_id=?", rows)
    for tenant, source in {(op.tenant, op.source) for op in ops}:
        _supersede_rejections(db, tenant, source, [op.entity_id for op in ops
                                                   if op.tenant == tenant and op.source == source])


def _supersede_rejections(db: Any, tenant: str, source: str, ids: list[str]) -> None:
    """A later successful upsert supersedes an earlier rejection of the same entity. Most sources
    have none: one look per source instead of a statement per entity."""
    if ids and db.execute("SELECT 1 FROM quarantine WHERE tenant=? AND source=? AND kind='upsert' LIMIT 1",
                          (tenant, source)).fetchone() is not None:
        db.executemany("DELETE FROM quarantine WHERE tenant=? AND source=? AND locator=? AND kind='upsert'",
                       [(tenant, source, i) for i in ids])


def _seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Runs of consecutive seqs as (first, last) pairs."""
    ranges: list[list[int]] = []
    for seq in sorted(seqs):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return [(first, last) for first, last in ranges]


def _advance(db: Any, op: OutboxOp, where: tuple[str, str, str], now: str, upsert_mode: str) -> None:
    """Advance the confirmed (`sent_*`) state for an op the broker confirmed."""
    if op.op == "upsert":
        row = db.execute("SELECT sent_attrs FROM entity_state WHERE tenant=? AND source=? AND entity_id=?",
                         where).fetchone()
        attrs = set(op.attrs or ())
        if upsert_mode == "update" and row is not None and row[0]:
            attrs |= set(orjson.loads(row[0]))  # update mode keeps attributes not sent
        db.execute("UPDATE entity_state SET sent_hash=?, sent_attrs=?, confirmed_at=? "
                   "WHERE tenant=? AND source=? AND entity_id=?",
                   (op.content_hash, orjson.dumps(sorted(attrs)).decode(), now, *where))
        # A later successful upsert supersedes an earlier rejection of the same entity.
        db.execute("DELETE FROM quarantine WHERE tenant=? AND source=? AND locator=? AND kind='upsert'", where)
    elif op.op == "delete":
        db.execute("DELETE FROM entity_state WHERE tenant=? AND source=? AND entity_id=? AND want_hash IS NULL",
                   where)
        db.execute("UPDATE entity_state SET sent_hash=NULL, sent_attrs=NULL, confirmed_at=? "
                   "WHERE tenant=? AND source=? AND entity_id=?", (now, *where))
    else:
        row = db.execute("SELECT sent_attrs FROM entity_state WHERE tenant=? AND source=? AND entity_id=?",
                         where).fetchone()
        if row is not None and row[0]:
            kept = [a for a in orjson.loads(row[0]) if a != op.attr]
            db.execute("UPDATE entity_state SET sent_attrs=?, confirmed_at=? "
                       "WHERE tenant=? AND source=? AND entity_id=?", (orjson.dumps(kept).decode(), now, *where))


def _same(context: Any) -> Any:
    return context


def _phases(ops: list[OutboxOp]) -> list[list[OutboxOp]]:
    """Cut ops (in seq order) into phases where each entity appears at most once, order kept."""
    seen: dict[tuple[str, str], int] = defaultdict(int)
    phases: list[list[OutboxOp]] = []
    for op in ops:
        n = seen[op.key]
        seen[op.key] = n + 1
        if n == len(phases):
            phases.append([])
        phases[n].append(op)
    return phases


def _filter(tenant: str | None, source: str | None) -> tuple[str, list[str]]:
    clauses, args = [], []
    if tenant is not None:
        clauses.append("tenant=?")
        args.append(tenant)
    if source is not None:
        clauses.append("source=?")
        args.append(source)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _op(row: tuple) -> OutboxOp:
    seq, tenant, source, op, entity_id, entity_type, attr, body, context, digest, attrs, attempts = row
    return OutboxOp(seq, tenant, source, op, entity_id, entity_type, attr, body,
                    orjson.loads(context) if context else None, digest,
                    orjson.loads(attrs) if attrs else None, attempts)
