"""Sync state in one SQLite file: what each source last sent per entity, and the diff of a snapshot.

Per (tenant, source, entity id) two versions are kept:
- `want_*`: the content last enqueued (what the broker will hold once the outbox is delivered);
  snapshots are diffed against it, so pending work is never enqueued twice;
- `sent_*`: the content the broker confirmed; it advances only when the broker answers, in the
  same transaction that removes the outbox row (see adapter/sync/outbox.py).
`want_hash` NULL means a delete is pending. One adapter process owns a state file at a time;
a stream's worker processes (adapter.sync.stream_pool) write their batches to their parent's file
through :meth:`StateStore.sync_stream`, whose read and write share one transaction.
`observed_at` (epoch seconds) is the newest observation time a stream enqueued for the entity: an
older reading that arrives later (another worker, a device replaying its buffer) is stale.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson

from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.temporal import timed_attributes

SCHEMA = """
CREATE TABLE IF NOT EXISTS entity_state (
    tenant TEXT NOT NULL, source TEXT NOT NULL, entity_id TEXT NOT NULL, entity_type TEXT NOT NULL,
    want_hash TEXT, want_attrs TEXT, sent_hash TEXT, sent_attrs TEXT,
    last_seen_run TEXT, last_seen_at TEXT, confirmed_at TEXT, observed_at REAL,
    PRIMARY KEY (tenant, source, entity_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL, source TEXT NOT NULL,
    op TEXT NOT NULL CHECK (op IN ('upsert', 'delete', 'delete_attr')),
    entity_id TEXT NOT NULL, entity_type TEXT NOT NULL, attr TEXT,
    body BLOB, context TEXT, content_hash TEXT, attrs TEXT,
    attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, enqueued_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_entity ON outbox (tenant, source, entity_id);
CREATE TABLE IF NOT EXISTS mqtt_subscription (
    client_id TEXT PRIMARY KEY, filters TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL, source TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('record', 'upsert', 'delete', 'delete_attr')),
    locator TEXT NOT NULL, entity_type TEXT, attr TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL, error_class TEXT NOT NULL, status INTEGER,
    payload BLOB, context TEXT, content_hash TEXT, attrs TEXT,
    first_seen TEXT NOT NULL, last_seen TEXT NOT NULL, retry_count INTEGER NOT NULL DEFAULT 0,
    UNIQUE (tenant, source, kind, locator, attr)
);
CREATE TABLE IF NOT EXISTS hosted_context (
    broker TEXT NOT NULL, subject TEXT NOT NULL, url TEXT NOT NULL, hash TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (broker, subject)
) WITHOUT ROWID;
"""


def utcnow() -> str:
    """Now in UTC, ISO 8601 with Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def content_hash(entity: OutgoingEntity, context_json: bytes | None = None) -> str:
    """A stable hash of an entity's content and @context (`context_json`: its canonical JSON, if known)."""
    body = entity.body if isinstance(entity.body, (bytes, bytearray)) else orjson.dumps(
        entity.body, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.blake2b(bytes(body), digest_size=16)
    if context_json is None:
        context_json = orjson.dumps(entity.context, option=orjson.OPT_SORT_KEYS)
    digest.update(b"\x00" + context_json)
    return digest.hexdigest()


class _ContextCache:
    """Canonical JSON of contexts; a snapshot shares a handful of context objects."""

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[Any, bytes]] = {}

    def __call__(self, context: Any) -> bytes:
        hit = self._by_id.get(id(context))
        if hit is not None and hit[0] is context:
            return hit[1]
        text = orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
        self._by_id[id(context)] = (context, text)  # keeps the object alive, so ids stay unique
        return text


def _attrs(text: str | None) -> frozenset[str]:
    return frozenset(orjson.loads(text)) if text else frozenset()


# The entities of a source carry a handful of attribute sets, written twice per entity and run.
_ATTRS_JSON: dict[frozenset[str], str] = {}
_MAX_ATTRS_JSON = 1024


def _attrs_json(attrs: Iterable[str]) -> str:
    if type(attrs) is frozenset:
        text = _ATTRS_JSON.get(attrs)
        if text is None:
            if len(_ATTRS_JSON) >= _MAX_ATTRS_JSON:
                _ATTRS_JSON.clear()
            text = _ATTRS_JSON[attrs] = orjson.dumps(sorted(attrs)).decode()
        return text
    return orjson.dumps(sorted(attrs)).decode()


@dataclass(frozen=True, slots=True)
class EntityState:
    """What the state holds for one entity of one source."""

    tenant: str
    source: str
    entity_id: str
    entity_type: str
    want_hash: str | None
    want_attrs: frozenset[str]
    sent_hash: str | None
    sent_attrs: frozenset[str]
    last_seen_run: str | None
    last_seen_at: str | None


@dataclass
class SyncPlan:
    """The diff of one snapshot against the state: what to send, delete and leave alone."""

    tenant: str
    source: str
    run_id: str
    upserts: list[tuple[OutgoingEntity, str, frozenset[str]]] = field(default_factory=list)
    replaces_pending: list[str] = field(default_factory=list)  # upserted ids with older state rows
    attr_deletes: list[tuple[str, str, str, Any]] = field(default_factory=list)  # id, type, attr, context
    deletes: list[tuple[str, str]] = field(default_factory=list)  # id, type
    unchanged: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # stream readings older than one already enqueued
    # Of `unchanged`, those whose state already says this run saw them (enqueued earlier in the
    # same run, adapter.sync.early): they count as unchanged, their rows are not written again.
    recorded: set[str] = field(default_factory=set)
    # Set by a source that records history: `apply` keeps an entity's waiting operations when its
    # waiting upsert carries a reading (an attribute's observedAt) that the new upsert does not,
    # and puts the new one after them. Such a reading reaches the broker's temporal store only
    # through that upsert (adapter.sync.history). One whose readings the new upsert carries too is
    # replaced as usual: sending both would record them twice.
    keep_pending: bool = False

    @property
    def empty(self) -> bool:
        """True when nothing needs to go to the broker."""
        return not (self.upserts or self.attr_deletes or self.deletes)


class StateStore:
    """The SQLite state file (WAL): entity state, outbox and quarantine tables."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE) in `transaction()`.
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit is on disk before it returns. A stream acknowledges its MQTT messages
        # right after the commit, so NORMAL (safe against a process crash, not a power loss) could
        # lose acknowledged readings. Commits are per micro-batch or per 1000 entities: the
        # fsync costs ~1 ms each here, not per entity.
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA busy_timeout=10000")
        # A full sync writes ~1 MB of outbox and state per 1000 entities, and the outbox rows go
        # again once delivered: with SQLite's default (a checkpoint past 1000 WAL pages, ~4 MB)
        # nearly every commit also copied the WAL into the database and synced it. Checkpoints
        # every ~40 MB of WAL: ~10 % less adapter CPU on a 100,000-feature sync (bench/README.md);
        # durability is unchanged (WAL, synchronous=FULL). An 8 MiB page cache: the syncs write
        # and read the state in key order, so a larger one (32 MiB was tried) only grew the
        # adapter's memory with the layer (~17 MB more at 100,000 features) for no CPU.
        self.conn.execute("PRAGMA wal_autocheckpoint=10000")
        self.conn.execute("PRAGMA cache_size=-8192")
        self.conn.execute("PRAGMA secure_delete=FAST")
        self.conn.executescript(SCHEMA)
        self._migrate()
        self._lock = threading.RLock()

    def _migrate(self) -> None:
        """Bring a state file written by an earlier version up to this schema."""
        columns = {row[1] for row in self.conn.execute("PRAGMA table_info(entity_state)")}
        if "observed_at" not in columns:
            self.conn.execute("ALTER TABLE entity_state ADD COLUMN observed_at REAL")

    def close(self) -> None:
        """Close the database."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything inside commits together or not at all."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def subscriptions(self, client_id: str) -> list[str]:
        """The MQTT filters a persistent session was last subscribed to (the broker keeps them)."""
        row = self.conn.execute("SELECT filters FROM mqtt_subscription WHERE client_id=?", (client_id,)).fetchone()
        return orjson.loads(row[0]) if row else []

    def set_subscriptions(self, client_id: str, filters: Iterable[str]) -> None:
        """Remember a session's filters, so that ones dropped from the configuration are unsubscribed."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO mqtt_subscription VALUES (?, ?)",
                       (client_id, orjson.dumps(sorted(filters)).decode()))

    def forget_subscriptions(self, client_id: str) -> None:
        """A session that was ended: nothing of it is left to unsubscribe."""
        with self.transaction() as db:
            db.execute("DELETE FROM mqtt_subscription WHERE client_id=?", (client_id,))

    def hosted_context(self, broker: str, subject: str) -> tuple[str, str] | None:
        """(URL, content hash) of the @context of `subject` last published on `broker`."""
        row = self.conn.execute("SELECT url, hash FROM hosted_context WHERE broker=? AND subject=?",
                                (broker, subject)).fetchone()
        return (row[0], row[1]) if row else None

    def set_hosted_context(self, broker: str, subject: str, url: str, digest: str) -> None:
        """Remember where `broker` hosts the @context of `subject` (see adapter.ngsi.hosting)."""
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO hosted_context VALUES (?, ?, ?, ?, ?)",
                       (broker, subject, url, digest, utcnow()))

    def latest_hosted_context(self, broker: str) -> tuple[str, str] | None:
        """(subject, URL) of the @context most recently published on `broker`, if any."""
        row = self.conn.execute("SELECT subject, url FROM hosted_context WHERE broker=? "
                                "ORDER BY published_at DESC LIMIT 1", (broker,)).fetchone()
        return (row[0], row[1]) if row else None

    def hosted_subjects(self, broker: str) -> list[str]:
        """The subjects whose @context was published on `broker`."""
        return [row[0] for row in self.conn.execute(
            "SELECT subject FROM hosted_context WHERE broker=? ORDER BY subject", (broker,))]

    def forget_confirmed(self) -> int:
        """The broker lost everything it held (restarted in memory, database reset): every entity
        not pending deletion is planned again as new by its source's next run (and nothing counts
        as confirmed). Returns how many. The caller also forgets what lets runs skip work
        (adapter.sync.skip), so that the next runs map every record."""
        with self.transaction() as db:
            return db.execute("UPDATE entity_state SET want_hash='', sent_hash=NULL, sent_attrs=NULL "
                              "WHERE want_hash IS NOT NULL").rowcount

    def get(self, tenant: str, source: str, entity_id: str) -> EntityState | None:
        """The state of one entity."""
        row = self.conn.execute(
            "SELECT * FROM entity_state WHERE tenant=? AND source=? AND entity_id=?",
            (tenant, source, entity_id)).fetchone()
        return _state(row) if row else None

    def count(self, tenant: str, source: str) -> int:
        """How many entities a source has (not counting pending deletes)."""
        return self.conn.execute("SELECT COUNT(*) FROM entity_state WHERE tenant=? AND source=? "
                                 "AND want_hash IS NOT NULL", (tenant, source)).fetchone()[0]

    def held(self, tenant: str, source: str, ids: Iterable[str]) -> set[str]:
        """Those of `ids` the state has a row for (sent, pending, or being deleted)."""
        wanted = list(ids)
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            found.update(row[0] for row in self.conn.execute(
                "SELECT entity_id FROM entity_state WHERE tenant=? AND source=? "
                f"AND entity_id IN ({','.join('?' * len(chunk))})", (tenant, source, *chunk)))
        return found

    def outbox_by_source(self) -> dict[str, int]:
        """Source -> operations waiting in the outbox (every tenant)."""
        return dict(self.conn.execute("SELECT source, COUNT(*) FROM outbox GROUP BY source").fetchall())

    def quarantine_by_source(self) -> dict[str, int]:
        """Source -> quarantined items (every tenant)."""
        return dict(self.conn.execute("SELECT source, COUNT(*) FROM quarantine GROUP BY source").fetchall())

    def entities(self, tenant: str, source: str) -> list[EntityState]:
        """Every entity of a source."""
        rows = self.conn.execute("SELECT * FROM entity_state WHERE tenant=? AND source=? ORDER BY entity_id",
                                 (tenant, source)).fetchall()
        return [_state(r) for r in rows]

    def plan(self, tenant: str, source: str, snapshot: Iterable[OutgoingEntity], *, run_id: str,
             complete: bool, delete_missing: bool = True,
             upsert_mode: Literal["update", "replace"] = "update",
             present: Iterable[str] = ()) -> SyncPlan:
        """Diff a freshly mapped snapshot against the state (reads only).

        Entities absent from the snapshot are deleted only when the fetch was `complete` and
        `delete_missing` is set: a partial fetch never deletes anything. `present` names entities
        the run saw but did not map again because their records had not changed (adapter.sync.skip):
        they are unchanged, and not missing.
        """
        plan = SyncPlan(tenant, source, run_id)
        present = set(present)
        latest: dict[str, OutgoingEntity] = {}
        for entity in snapshot:
            latest[entity.id] = entity  # a repeated id: the last record wins
        columns = "SELECT entity_id, want_hash, want_attrs, sent_attrs FROM entity_state"
        if complete and delete_missing:  # one pass over the source's rows, keeping the snapshot's own
            known = {row[0]: row for row in self.conn.execute(
                f"{columns} WHERE tenant=? AND source=?", (tenant, source)) if row[0] in latest}
        else:  # nothing is deleted: only the snapshot's own rows matter (streams: a small batch)
            known = {}
            ids = list(latest)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                known.update((row[0], row) for row in self.conn.execute(
                    f"{columns} WHERE tenant=? AND source=? AND entity_id IN ({','.join('?' * len(chunk))})",
                    (tenant, source, *chunk)))
        context_json = _ContextCache()
        for entity in latest.values():
            digest = content_hash(entity, context_json(entity.context))
            row = known.get(entity.id)
            if row is not None and row[1] == digest:
                plan.unchanged.append(entity.id)
                continue
            attrs = entity.attribute_names()
            plan.upserts.append((entity, digest, attrs))
            if row is not None:
                plan.replaces_pending.append(entity.id)
            if row is not None and upsert_mode == "update":
                # Union with what the broker confirmed: an attribute of a still-pending or
                # superseded upsert may already be there. Deleting a missing one is harmless (404).
                for attr in sorted((_attrs(row[2]) | _attrs(row[3])) - attrs):
                    plan.attr_deletes.append((entity.id, entity.type, attr, entity.context))
        plan.unchanged.extend(i for i in present if i not in latest)
        if complete and delete_missing:
            plan.deletes = [(i, t) for i, t in self.conn.execute(
                "SELECT entity_id, entity_type FROM entity_state WHERE tenant=? AND source=? "
                "AND want_hash IS NOT NULL", (tenant, source)) if i not in latest and i not in present]
        return plan

    def apply(self, plan: SyncPlan, db: sqlite3.Connection | None = None) -> None:
        """Enqueue a plan in the outbox and record it as wanted, in one transaction (``db``: the
        caller's, already open)."""
        if db is not None:
            self._apply(db, plan)
            return
        with self.transaction() as db:
            self._apply(db, plan)

    def _apply(self, db: sqlite3.Connection, plan: SyncPlan) -> None:
        now = utcnow()
        t, s = plan.tenant, plan.source
        # Pending work for a re-planned entity is replaced, not repeated (unless `keep_pending`).
        # Only entities with a state row can have pending work (both are written in this one transaction).
        kept = _carrying_readings(db, plan) if plan.keep_pending else set()
        touched = [(t, s, i) for i in plan.replaces_pending if i not in kept]
        touched += [(t, s, i) for i, _ in plan.deletes]
        db.executemany("DELETE FROM outbox WHERE tenant=? AND source=? AND entity_id=?", touched)
        context_json = _ContextCache()
        db.executemany(
            "INSERT INTO outbox (tenant, source, op, entity_id, entity_type, body, context, "
            "content_hash, attrs, enqueued_at) VALUES (?, ?, 'upsert', ?, ?, ?, ?, ?, ?, ?)",
            [(t, s, e.id, e.type, e.encode(with_context=False), context_json(e.context),
              digest, _attrs_json(attrs), now) for e, digest, attrs in plan.upserts])
        db.executemany(
            "INSERT INTO outbox (tenant, source, op, entity_id, entity_type, attr, context, enqueued_at) "
            "VALUES (?, ?, 'delete_attr', ?, ?, ?, ?, ?)",
            [(t, s, i, typ, attr, orjson.dumps(ctx).decode(), now)
             for i, typ, attr, ctx in plan.attr_deletes])
        db.executemany(
            "INSERT INTO outbox (tenant, source, op, entity_id, entity_type, enqueued_at) "
            "VALUES (?, ?, 'delete', ?, ?, ?)", [(t, s, i, typ, now) for i, typ in plan.deletes])
        db.executemany(
            "INSERT INTO entity_state (tenant, source, entity_id, entity_type, want_hash, want_attrs, "
            "last_seen_run, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (tenant, source, entity_id) DO UPDATE SET entity_type=excluded.entity_type, "
            "want_hash=excluded.want_hash, want_attrs=excluded.want_attrs, "
            "last_seen_run=excluded.last_seen_run, last_seen_at=excluded.last_seen_at",
            [(t, s, e.id, e.type, digest, _attrs_json(attrs), plan.run_id, now)
             for e, digest, attrs in plan.upserts])
        db.executemany(
            "UPDATE entity_state SET last_seen_run=?, last_seen_at=? "
            "WHERE tenant=? AND source=? AND entity_id=?",
            [(plan.run_id, now, t, s, i) for i in plan.unchanged if i not in plan.recorded])
        db.executemany(
            "UPDATE entity_state SET want_hash=NULL, want_attrs=NULL "
            "WHERE tenant=? AND source=? AND entity_id=?", [(t, s, i) for i, _ in plan.deletes])

    def record_new(self, db: sqlite3.Connection, plan: SyncPlan, *, confirmed: bool) -> None:
        """Record a plan's upserts of entities the state did not hold, sent without an outbox row
        (adapter.sync.pump): ``confirmed``, the broker has them (wanted and sent in one write);
        otherwise it refused them (wanted only). A row written meanwhile (the entity planned again
        by the run's final plan) keeps its newer want."""
        now = utcnow()
        t, s = plan.tenant, plan.source
        if confirmed:
            db.executemany(
                "INSERT INTO entity_state (tenant, source, entity_id, entity_type, want_hash, want_attrs, "
                "sent_hash, sent_attrs, last_seen_run, last_seen_at, confirmed_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, source, entity_id) DO UPDATE "
                "SET sent_hash=excluded.sent_hash, sent_attrs=excluded.sent_attrs, confirmed_at=excluded.confirmed_at",
                [(t, s, e.id, e.type, digest, names, digest, names, plan.run_id, now, now)
                 for e, digest, attrs in plan.upserts for names in (_attrs_json(attrs),)])
        else:
            db.executemany(
                "INSERT INTO entity_state (tenant, source, entity_id, entity_type, want_hash, want_attrs, "
                "last_seen_run, last_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant, source, entity_id) DO NOTHING",
                [(t, s, e.id, e.type, digest, _attrs_json(attrs), plan.run_id, now)
                 for e, digest, attrs in plan.upserts])

    def sync_snapshot(self, tenant: str, source: str, snapshot: Iterable[OutgoingEntity], *,
                      run_id: str, complete: bool, delete_missing: bool = True,
                      upsert_mode: Literal["update", "replace"] = "update",
                      present: Iterable[str] = ()) -> SyncPlan:
        """Plan and enqueue a snapshot; returns the plan (for the run report)."""
        plan = self.plan(tenant, source, snapshot, run_id=run_id, complete=complete,
                         delete_missing=delete_missing, upsert_mode=upsert_mode, present=present)
        self.apply(plan)
        return plan


    def sync_stream(self, tenant: str, source: str,
                    batch: Iterable[tuple[OutgoingEntity, datetime | None]], *, run_id: str,
                    upsert_mode: Literal["update", "replace"] = "update",
                    db: sqlite3.Connection | None = None, keep_pending: bool = False) -> SyncPlan:
        """Plan and enqueue one micro-batch of a stream: (entity, observation time) pairs.

        Read and write share one transaction (``db``: the caller's, already open), so several
        processes may feed one state file. A reading older than the newest one already enqueued
        for its entity is dropped as stale (``plan.stale``): shared-subscription workers may store
        one sensor's readings out of order. Nothing is ever deleted for a stream.
        ``keep_pending``: see SyncPlan.
        """
        if db is not None:
            return self._sync_stream(db, tenant, source, batch, run_id, upsert_mode, keep_pending)
        with self.transaction() as db:
            return self._sync_stream(db, tenant, source, batch, run_id, upsert_mode, keep_pending)

    def _sync_stream(self, db: sqlite3.Connection, tenant: str, source: str,
                     batch: Iterable[tuple[OutgoingEntity, datetime | None]], run_id: str,
                     upsert_mode: Literal["update", "replace"], keep_pending: bool) -> SyncPlan:
        latest: dict[str, tuple[OutgoingEntity, float | None]] = {}
        for entity, observed in batch:
            when = observed.timestamp() if observed is not None else None
            earlier = latest.get(entity.id)
            if earlier is None or earlier[1] is None or (when is not None and when >= earlier[1]):
                latest[entity.id] = (entity, when)
        stored: dict[str, float] = {}
        ids = list(latest)
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            stored.update(db.execute(
                "SELECT entity_id, observed_at FROM entity_state WHERE tenant=? AND source=? "
                f"AND observed_at IS NOT NULL AND entity_id IN ({','.join('?' * len(chunk))})",
                (tenant, source, *chunk)).fetchall())
        fresh, stale = [], []
        for entity_id, (entity, when) in latest.items():
            newest = stored.get(entity_id)
            if when is not None and newest is not None and when < newest:
                stale.append(entity_id)
            else:
                fresh.append(entity)
        plan = self.plan(tenant, source, fresh, run_id=run_id, complete=False, delete_missing=False,
                         upsert_mode=upsert_mode)
        plan.stale = stale
        plan.keep_pending = keep_pending
        self._apply(db, plan)
        db.executemany(
            "UPDATE entity_state SET observed_at=? WHERE tenant=? AND source=? AND entity_id=? "
            "AND (observed_at IS NULL OR observed_at < ?)",
            [(when, tenant, source, e.id, when) for e in fresh
             if (when := latest[e.id][1]) is not None])
        return plan


def _state(row: tuple) -> EntityState:
    tenant, source, entity_id, entity_type, want_hash, want_attrs, sent_hash, sent_attrs, run, seen = row[:10]
    return EntityState(tenant, source, entity_id, entity_type, want_hash, _attrs(want_attrs), sent_hash,
                       _attrs(sent_attrs), run, seen)


def _carrying_readings(db: sqlite3.Connection, plan: SyncPlan) -> set[str]:
    """Ids among ``plan.replaces_pending`` whose waiting upsert carries a reading (attribute,
    observedAt) that the plan's new upsert of the entity does not (see SyncPlan.keep_pending)."""
    newer = {entity.id: entity for entity, _, _ in plan.upserts}
    kept: set[str] = set()
    ids = plan.replaces_pending
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        for entity_id, body in db.execute(
                "SELECT entity_id, body FROM outbox WHERE tenant=? AND source=? AND op='upsert' "
                f"AND entity_id IN ({','.join('?' * len(chunk))})", (plan.tenant, plan.source, *chunk)):
            if entity_id not in kept and _readings(body) - _readings(newer[entity_id].body):
                kept.add(entity_id)
    return kept


def _readings(body: bytes | Mapping[str, Any]) -> set[tuple[str, Any]]:
    """(attribute, observedAt) of each reading a normalized entity body carries."""
    document = orjson.loads(body) if isinstance(body, (bytes, bytearray, memoryview)) else body
    return {(name, value["observedAt"]) for name, value in timed_attributes(document).items()}
