"""Every reading of a time series into the broker's temporal store, exactly once.

A reading becomes attribute instances: each attribute of its snapshot that carries ``observedAt``
(the measured quantities; names, locations and the like do not). What reaches the temporal store:

- the instances the current-state entity carries get there through its upsert, which the broker
  records (as Orion-LD's TRoE does): they are not sent again;
- every other instance newer than the newest one already enqueued for its entity and attribute
  (the *mark*, kept in the state file) is enqueued here, in the table ``history_outbox`` of the
  state file, in the same transaction that moves the marks;
- so a current state's upsert waiting for delivery (a broker down or slow, a stream's next batch
  already there) is not replaced by a newer one while it carries a reading the newer does not:
  the newer goes after it (SyncPlan.keep_pending).

So a re-sync of the same feed adds nothing, and a source answering with an older window does not
rewrite history (its readings are not newer than the marks). Delivery (``HistoryOutbox.deliver``)
sends an entity's instances once the broker has confirmed its current state, flags an operation
as in flight (committed) before sending it, and removes it once the broker
confirms: an operation found in flight after a crash may have reached the broker, so the
instances the broker already holds are asked for and left out before it goes again. A SIGKILL at
any point thus loses and doubles nothing.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from adapter.errors import AdapterError, FatalError, RecordError
from adapter.ngsi.serialize import Form, to_dict
from adapter.ngsi.temporal import TemporalWriter, observed, timed_attributes
from adapter.sync.state import StateStore, utcnow
from data_models import Entity

if TYPE_CHECKING:
    from adapter.sync.hosting import HostedContexts

logger = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS history_mark (
    tenant TEXT NOT NULL, source TEXT NOT NULL, entity_id TEXT NOT NULL, attr TEXT NOT NULL,
    observed_at REAL NOT NULL,
    PRIMARY KEY (tenant, source, entity_id, attr)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL, source TEXT NOT NULL, entity_id TEXT NOT NULL, entity_type TEXT NOT NULL,
    body BLOB NOT NULL, context TEXT, instances INTEGER NOT NULL,
    in_flight INTEGER NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    enqueued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS history_outbox_source ON history_outbox (tenant, source, seq);
"""
# History follows the current state: an entity's instances go once the broker has confirmed an
# upsert of it. A rejected (quarantined) entity's history waits for it, instead of a temporal write
# bringing the entity into being (the embedded broker creates the current entity from the history
# when there is none).
_CONFIRMED = ("EXISTS (SELECT 1 FROM entity_state e WHERE e.tenant=h.tenant AND e.source=h.source "
              "AND e.entity_id=h.entity_id AND e.sent_hash IS NOT NULL)")
MAX_INSTANCES_PER_OP = 500  # ~60 KB of JSON: far below Orion-LD's 1 MiB request cap
MAX_REPORTED_ERRORS = 20


@dataclass(frozen=True, slots=True)
class Series:
    """One entity's readings as a run saw them: its current state and every reading's snapshot."""

    current: Entity
    readings: Sequence[Entity]
    context: Any
    document: dict[str, Any] | None = None  # the current state's normalized form, if already made


@dataclass
class HistoryPlan:
    """What one enqueue did."""

    instances: int = 0  # instances enqueued
    entities: int = 0  # entities with instances enqueued
    older: int = 0  # instances not newer than their mark (sent before, or an older window)


@dataclass
class HistoryDelivery:
    """What one delivery pass of the history outbox did."""

    sent: int = 0  # operations the broker confirmed
    instances: int = 0  # instances in them
    rejected: int = 0
    deferred: int = 0
    remaining: int = 0
    last_error: str | None = None
    errors: list[AdapterError] = field(default_factory=list, repr=False)


def instances_of(entity: Entity, document: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """attribute name -> its normalized form, for the attributes carrying ``observedAt``
    (``document``: the entity's normalized form, if already made)."""
    return timed_attributes(to_dict(entity, Form.NORMALIZED) if document is None else document)


def _timed(instances: dict[str, dict[str, Any]]) -> dict[str, tuple[dict[str, Any], float]]:
    """attribute name -> (instance, its observedAt in Unix seconds)."""
    return {name: (value, observed(value)) for name, value in instances.items()}


def _chunks(pending: dict[str, list[dict[str, Any]]]) -> Iterable[tuple[dict[str, list[dict[str, Any]]], int]]:
    """The instances of one entity in bodies of at most MAX_INSTANCES_PER_OP instances."""
    body: dict[str, list[dict[str, Any]]] = {}
    count = 0
    for name, values in pending.items():
        for value in values:
            if count == MAX_INSTANCES_PER_OP:
                yield body, count
                body, count = {}, 0
            body.setdefault(name, []).append(value)
            count += 1
    if count:
        yield body, count


class HistoryOutbox:
    """The marks and the pending instance operations of one state file."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        with store.transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
        self._delivering = asyncio.Lock()
        # A broker of its own hosts our generated @context (adapter.sync.hosting): instances name
        # the URL it gave, as the current states do; stored operations keep the service URL.
        self.contexts: HostedContexts | None = None

    # --- enqueue -------------------------------------------------------------------------------

    def enqueue(self, tenant: str, source: str, series: Iterable[Series],
                db: sqlite3.Connection | None = None) -> HistoryPlan:
        """Enqueue the instances of these series that are newer than their marks, in one transaction
        (``db``: the caller's, already open)."""
        wanted = [s for s in series if s.readings]
        if not wanted:
            return HistoryPlan()
        if db is not None:
            return self._enqueue(db, tenant, source, wanted)
        with self.store.transaction() as db:
            return self._enqueue(db, tenant, source, wanted)

    def _enqueue(self, db: sqlite3.Connection, tenant: str, source: str, wanted: list[Series]) -> HistoryPlan:
        plan = HistoryPlan()
        now = utcnow()
        marks = self._marks(db, tenant, source, [s.current.id for s in wanted])
        rows: list[tuple[Any, ...]] = []
        moved: list[tuple[str, str, str, str, float]] = []
        for item in wanted:
            entity_id = item.current.id
            current = _timed(instances_of(item.current, item.document))
            carried = {name: when for name, (_, when) in current.items()}
            newest = dict(marks.get(entity_id, {}))
            pending: dict[str, list[dict[str, Any]]] = {}
            seen: set[tuple[str, float]] = set()
            for snapshot in item.readings:
                # (a stream's reading is most often the current state itself: converted once)
                timed = current if snapshot is item.current else _timed(instances_of(snapshot))
                for name, (value, when) in timed.items():
                    mark = marks.get(entity_id, {}).get(name)
                    if (mark is not None and when <= mark) or (name, when) in seen:
                        plan.older += 1
                        continue
                    seen.add((name, when))
                    if carried.get(name) == when:
                        continue  # the current state carries it: its upsert records it
                    pending.setdefault(name, []).append(value)
                    newest[name] = max(newest.get(name, when), when)
            for name, when in carried.items():
                newest[name] = max(newest.get(name, when), when)
            for name in pending:
                pending[name].sort(key=observed)
            context = orjson.dumps(item.context).decode() if item.context is not None else None
            for body, count in _chunks(pending):
                rows.append((tenant, source, entity_id, item.current.entity_type, orjson.dumps(body), context,
                             count, now))
                plan.instances += count
            plan.entities += bool(pending)
            moved.extend((tenant, source, entity_id, name, when) for name, when in newest.items()
                         if marks.get(entity_id, {}).get(name) != when)
        db.executemany("INSERT INTO history_outbox (tenant, source, entity_id, entity_type, body, context, "
                       "instances, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO history_mark VALUES (?, ?, ?, ?, ?) ON CONFLICT "
                       "(tenant, source, entity_id, attr) DO UPDATE SET observed_at=excluded.observed_at "
                       "WHERE excluded.observed_at > history_mark.observed_at", moved)
        return plan

    @staticmethod
    def _marks(db: Any, tenant: str, source: str, ids: list[str]) -> dict[str, dict[str, float]]:
        marks: dict[str, dict[str, float]] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            for entity_id, attr, when in db.execute(
                    "SELECT entity_id, attr, observed_at FROM history_mark WHERE tenant=? AND source=? "
                    f"AND entity_id IN ({','.join('?' * len(chunk))})", (tenant, source, *chunk)):
                marks.setdefault(entity_id, {})[attr] = when
        return marks

    def behind(self, tenant: str, source: str, currents: Iterable[Entity]) -> set[str]:
        """Ids of current states older than what was sent before: their newest observation is older
        than their entity's newest mark (the source answered an older window). Sending them would
        move the broker's present back in time and record old readings again."""
        currents = list(currents)
        marks = self._marks(self.store.conn, tenant, source, [e.id for e in currents])
        behind = set()
        for entity in currents:
            known = marks.get(entity.id)
            carried = [observed(v) for v in instances_of(entity).values()] if known else []
            if carried and max(carried) < max(known.values()):  # type: ignore[union-attr]
                behind.add(entity.id)
        return behind

    def marks(self, tenant: str, source: str, entity_id: str) -> dict[str, float]:
        """attribute -> observedAt (Unix seconds) of the newest instance enqueued for one entity."""
        return self._marks(self.store.conn, tenant, source, [entity_id]).get(entity_id, {})

    def pending(self, *, tenant: str | None = None, source: str | None = None, held: bool = False) -> int:
        """How many instance operations wait for delivery; ``held``: also those whose entity the broker
        has not confirmed yet (its upsert pending, or rejected and quarantined)."""
        where, args = _filter(tenant, source, "h.")
        if not held:
            where = f"{where} AND {_CONFIRMED}" if where else f" WHERE {_CONFIRMED}"
        return self.store.conn.execute(f"SELECT COUNT(*) FROM history_outbox h{where}", args).fetchone()[0]

    def pending_by_source(self) -> list[tuple[str, str, int]]:
        """(tenant, source, operations waiting), whatever their entity's state."""
        return self.store.conn.execute(
            "SELECT tenant, source, COUNT(*) FROM history_outbox GROUP BY tenant, source").fetchall()

    # --- delivery ------------------------------------------------------------------------------

    async def deliver(self, writer: TemporalWriter, *, tenant: str | None = None, source: str | None = None,
                      window: int = 200, max_ops: int | None = None) -> HistoryDelivery:
        """Deliver pending operations, oldest first; raises the FatalError that stopped delivery."""
        async with self._delivering:
            report = HistoryDelivery()
            after, taken = 0, 0
            fatal: FatalError | None = None
            while fatal is None and (max_ops is None or taken < max_ops):
                where, args = _filter(tenant, source, "h.")
                where = (where + " AND" if where else " WHERE") + " h.seq > ?"
                rows = self.store.conn.execute(
                    "SELECT h.seq, h.tenant, h.entity_id, h.entity_type, h.body, h.context, h.instances, "
                    f"h.in_flight FROM history_outbox h{where} AND {_CONFIRMED} ORDER BY h.seq LIMIT ?",
                    (*args, after, window)).fetchall()
                if not rows:
                    break
                after = rows[-1][0]
                taken += len(rows)
                with self.store.transaction() as db:  # from here on, a crash may leave them sent
                    db.executemany("UPDATE history_outbox SET in_flight=1 WHERE seq=?",
                                   [(row[0],) for row in rows if not row[7]])
                # Each answer is committed as it comes: a crash re-sends (after a check) only what
                # was in flight.
                outcomes = await asyncio.gather(*(self._send_and_commit(writer, group, report)
                                                  for group in _by_entity(rows)))
                fatal = next((error for error in outcomes if isinstance(error, FatalError)), None)
                if fatal is None and report.deferred and not any(error is None for error in outcomes):
                    break  # nothing got through: the broker is down; the next pass retries
            report.remaining = self.pending(tenant=tenant, source=source)
            if fatal is not None:
                raise fatal
            return report

    async def _send_and_commit(self, writer: TemporalWriter, group: list[tuple],
                               report: HistoryDelivery) -> AdapterError | None:
        error = await self._send(writer, group)
        self._commit(group, [error] * len(group), report)
        return error

    async def _send(self, writer: TemporalWriter, group: list[tuple]) -> AdapterError | None:
        """One request with the instances of `group` (operations of one entity, see _by_entity)."""
        _, tenant, entity_id, entity_type, _, context, _, in_flight = group[0]
        instances: dict[str, list[dict[str, Any]]] = {}
        for row in group:
            for name, values in orjson.loads(row[4]).items():
                instances.setdefault(name, []).extend(values)
        context = orjson.loads(context) if context else None
        if context is not None and self.contexts is not None:
            await self.contexts.prepare([context])
            context = self.contexts.resolve(context)
        tenant_writer = writer.with_tenant(tenant or None)
        try:
            if in_flight:  # sent before a crash or a timeout: it may be there already
                held = await tenant_writer.present(entity_id, instances, context)
                if held:
                    instances = {name: kept for name, values in instances.items()
                                 if (kept := [v for v in values if (name, observed(v)) not in held])}
                    logger.info("%s: %d instance(s) already in the broker are not sent again",
                                entity_id, len(held))
                if not instances:
                    return None
            await tenant_writer.append(entity_id, entity_type, instances, context)
        except AdapterError as exc:
            exc.entity_id = exc.entity_id or entity_id
            return exc
        return None

    def _commit(self, rows: list[tuple], outcomes: list[AdapterError | None],
                report: HistoryDelivery) -> FatalError | None:
        fatal: FatalError | None = None
        with self.store.transaction() as db:
            for row, error in zip(rows, outcomes, strict=True):
                seq, instances = row[0], row[6]
                if error is None:
                    db.execute("DELETE FROM history_outbox WHERE seq=?", (seq,))
                    report.sent += 1
                    report.instances += instances
                    continue
                report.last_error = str(error)
                if len(report.errors) < MAX_REPORTED_ERRORS:
                    report.errors.append(error)
                if isinstance(error, RecordError):
                    # The broker refuses these instances: they would be refused again.
                    db.execute("DELETE FROM history_outbox WHERE seq=?", (seq,))
                    report.rejected += 1
                    logger.warning("history of %s: %d instance(s) rejected: %s", row[2], instances, error.reason)
                    continue
                db.execute("UPDATE history_outbox SET attempts=attempts+1, last_error=? WHERE seq=?",
                           (str(error)[:2000], seq))
                if isinstance(error, FatalError):
                    fatal = fatal or error
                else:
                    report.deferred += 1
        return fatal


def _by_entity(rows: list[tuple]) -> list[list[tuple]]:
    """A window's operations grouped per entity (and tenant, @context and in-flight flag), at most
    MAX_INSTANCES_PER_OP instances per group, so each group goes as one request: a stream enqueues
    an entity's few readings batch after batch, and a request each would cost the broker one
    request per reading."""
    groups: dict[tuple[Any, ...], list[list[tuple]]] = {}
    for row in rows:
        chunks = groups.setdefault((row[1], row[2], row[5], row[7]), [[]])
        if chunks[-1] and sum(r[6] for r in chunks[-1]) + row[6] > MAX_INSTANCES_PER_OP:
            chunks.append([])
        chunks[-1].append(row)
    return [chunk for chunks in groups.values() for chunk in chunks]


def _filter(tenant: str | None, source: str | None, prefix: str = "") -> tuple[str, list[str]]:
    clauses, args = [], []
    if tenant is not None:
        clauses.append(f"{prefix}tenant=?")
        args.append(tenant)
    if source is not None:
        clauses.append(f"{prefix}source=?")
        args.append(source)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def series_of(mapped: Any, context: Any) -> Series:
    """A mapped entity (adapter.mapping.base.Mapped) as a series: its current state and history."""
    return Series(mapped.entity, mapped.history, context)
