"""Quarantine: records the mappers refused and operations the broker rejected, kept with their reason."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from adapter.errors import AdapterError
from adapter.sync.state import StateStore, utcnow

logger = logging.getLogger(__name__)

Kind = Literal["record", "upsert", "delete", "delete_attr"]
MAX_PER_SOURCE = 10_000  # records kept per (tenant, source); the most recently seen win


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One quarantined record or entity operation."""

    id: int
    tenant: str
    source: str
    kind: str
    locator: str  # record locator for records, entity id for entity operations
    entity_type: str | None
    attr: str
    reason: str
    error_class: str
    status: int | None
    payload: bytes | None
    context: Any
    content_hash: str | None
    attrs: list[str] | None
    first_seen: str
    last_seen: str
    retry_count: int


class Quarantine:
    """List, add, retry and remove quarantined items (table `quarantine` of the state file)."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def add(self, *, tenant: str, source: str, kind: Kind, locator: str, error: AdapterError | str,
            payload: bytes | None = None, context: Any = None, entity_type: str | None = None,
            attr: str = "", content_hash: str | None = None, attrs: Iterable[str] | None = None,
            db: sqlite3.Connection | None = None) -> None:
        """Quarantine an item; the same item again refreshes its reason and last_seen."""
        reason = error.reason if isinstance(error, AdapterError) else str(error)
        error_class = type(error).__name__ if isinstance(error, AdapterError) else "Error"
        status = error.context.get("status") if isinstance(error, AdapterError) else None
        now = utcnow()
        params = (tenant, source, kind, locator, entity_type, attr, reason[:2000], error_class, status,
                  payload, orjson.dumps(context).decode() if context is not None else None, content_hash,
                  orjson.dumps(sorted(attrs)).decode() if attrs is not None else None, now, now)
        sql = ("INSERT INTO quarantine (tenant, source, kind, locator, entity_type, attr, reason, "
               "error_class, status, payload, context, content_hash, attrs, first_seen, last_seen) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (tenant, source, kind, locator, attr) DO UPDATE SET reason=excluded.reason, "
               "error_class=excluded.error_class, status=excluded.status, payload=excluded.payload, "
               "context=excluded.context, content_hash=excluded.content_hash, attrs=excluded.attrs, "
               "last_seen=excluded.last_seen")
        if db is not None:
            db.execute(sql, params)
        else:
            with self.store.transaction() as tx:
                tx.execute(sql, params)

    def entries(self, *, tenant: str | None = None, source: str | None = None,
                kind: Kind | None = None, limit: int | None = None, offset: int = 0) -> list[QuarantineEntry]:
        """Quarantined items, oldest first, optionally filtered and paged."""
        where, args = _where(tenant, source, kind)
        sql = f"SELECT * FROM quarantine{where} ORDER BY id"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return [_entry(row) for row in self.store.conn.execute(sql, args)]

    def ids(self) -> list[int]:
        """Every item's id, oldest first."""
        return [row[0] for row in self.store.conn.execute("SELECT id FROM quarantine ORDER BY id")]

    def count(self, *, tenant: str | None = None, source: str | None = None, kind: Kind | None = None) -> int:
        """How many items match."""
        where, args = _where(tenant, source, kind)
        return self.store.conn.execute(f"SELECT COUNT(*) FROM quarantine{where}", args).fetchone()[0]

    def trim(self, tenant: str, source: str, keep: int = MAX_PER_SOURCE) -> int:
        """Keep a source's `keep` most recently seen records, forgetting older ones; returns how many went.

        A sensor sending a bad reading every second would otherwise grow the table without bound
        (each payload differs by its time).
        """
        excess = self.count(tenant=tenant, source=source, kind="record") - keep
        if excess <= 0:
            return 0
        # Records only: a rejected entity operation is the only copy of that operation (the state
        # already counts it as wanted), and there are at most as many as the source has entities.
        with self.store.transaction() as db:
            db.execute("DELETE FROM quarantine WHERE id IN (SELECT id FROM quarantine WHERE tenant=? AND "
                       "source=? AND kind='record' ORDER BY last_seen, id LIMIT ?)", (tenant, source, excess))
        logger.warning("quarantine of %s is full: the %d oldest item(s) were dropped (kept %d)",
                       source, excess, keep)
        return excess

    def remove(self, ids: Iterable[int]) -> int:
        """Forget quarantined items; returns how many were removed."""
        with self.store.transaction() as db:
            return sum(db.execute("DELETE FROM quarantine WHERE id=?", (i,)).rowcount for i in ids)

    def retry(self, ids: Iterable[int]) -> list[QuarantineEntry]:
        """Put quarantined entity operations back in the outbox; returns the record entries.

        Records need their source's mapper again, so they are returned to the caller (and stay
        quarantined until the caller removes them). An upsert whose entity has newer content
        pending or sent is obsolete and simply removed.
        """
        records: list[QuarantineEntry] = []
        now = utcnow()
        with self.store.transaction() as db:
            for qid in ids:
                row = db.execute("SELECT * FROM quarantine WHERE id=?", (qid,)).fetchone()
                if row is None:
                    continue
                entry = _entry(row)
                if entry.kind == "record":
                    db.execute("UPDATE quarantine SET retry_count=retry_count+1 WHERE id=?", (qid,))
                    records.append(entry)
                    continue
                db.execute("DELETE FROM quarantine WHERE id=?", (qid,))
                if entry.kind == "upsert":
                    want = db.execute("SELECT want_hash FROM entity_state WHERE tenant=? AND source=? "
                                      "AND entity_id=?", (entry.tenant, entry.source, entry.locator)).fetchone()
                    if want is not None and want[0] != entry.content_hash:
                        continue
                db.execute(
                    "INSERT INTO outbox (tenant, source, op, entity_id, entity_type, attr, body, context, "
                    "content_hash, attrs, attempts, enqueued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                    (entry.tenant, entry.source, entry.kind, entry.locator, entry.entity_type or "",
                     entry.attr or None, entry.payload,
                     orjson.dumps(entry.context).decode() if entry.context is not None else None,
                     entry.content_hash, orjson.dumps(entry.attrs).decode() if entry.attrs is not None else None,
                     now))
        return records


def _entry(row: tuple) -> QuarantineEntry:
    (qid, tenant, source, kind, locator, entity_type, attr, reason, error_class, status, payload, context,
     digest, attrs, first_seen, last_seen, retry_count) = row
    return QuarantineEntry(qid, tenant, source, kind, locator, entity_type, attr, reason, error_class, status,
                           payload, orjson.loads(context) if context else None, digest,
                           orjson.loads(attrs) if attrs else None, first_seen, last_seen, retry_count)


def _where(tenant: str | None, source: str | None, kind: str | None) -> tuple[str, list[Any]]:
    where, args = [], []
    for column, value in (("tenant", tenant), ("source", source), ("kind", kind)):
        if value is not None:
            where.append(f"{column}=?")
            args.append(value)
    return (" WHERE " + " AND ".join(where) if where else ""), args
