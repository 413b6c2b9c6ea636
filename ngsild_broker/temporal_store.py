"""The broker's attribute history (NGSI-LD temporal representation) in its SQLite database.

Layout, compact for years of readings (a few hundred stations x 24-96 readings a day):
- `t_entities`: one row per (tenant, entity id) ever recorded, with its expanded types;
- `t_series`: one row per (entity, attribute): the instances' key, so an instance row carries one
  small integer instead of two names (attribute IRIs are interned in `t_attrs`);
- `t_instances`: one small row per attribute instance. Times are integer milliseconds since the
  epoch; a number is stored in the REAL column `num`, any other value as JSON in `val`; the
  remaining members (unitCode, datasetId, sub-attributes...) are interned in `t_meta`, since a
  sensor's readings usually share them. The (series, observedAt) index makes lastN for one entity
  and a 30-day window of one series a range scan.

Instance ids are `urn:ngsi-ld:Instance:<rowid>`. Deletions are instances too (`deletedAt`, value
`urn:ngsi-ld:null`), as NGSI-LD 1.6+ and TRoE record them. Everything here is blocking.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from ngsild_broker.entities import MEMBERS
from ngsild_broker.sqlite import bulk

# Keyed by what they are looked up by (WITHOUT ROWID): one B-tree insert per new entity or series
# instead of a row and a UNIQUE index entry (database format version 2, sqlite/schema.py).
KEY_TABLES = (
    """CREATE TABLE IF NOT EXISTS t_entities(
    tenant TEXT NOT NULL, id TEXT NOT NULL, eid INTEGER NOT NULL, types TEXT NOT NULL,
    PRIMARY KEY(tenant, id)
) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS t_series(
    eid INTEGER NOT NULL, aid INTEGER NOT NULL, sid INTEGER NOT NULL, PRIMARY KEY(eid, aid)
) WITHOUT ROWID""")
SCHEMA = ";\n".join(KEY_TABLES) + """;
CREATE TABLE IF NOT EXISTS t_attrs(aid INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS t_meta(mid INTEGER PRIMARY KEY, body BLOB NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS t_instances(
    iid INTEGER PRIMARY KEY,
    sid INTEGER NOT NULL,
    obs INTEGER,               -- observedAt (ms), NULL when the instance has none
    created INTEGER NOT NULL,  -- when the broker recorded it (ms)
    modified INTEGER,          -- NULL: never modified since
    kind INTEGER NOT NULL,     -- attribute type * 4 + value encoding (see _ENC_*)
    num REAL,
    val BLOB,
    mid INTEGER
);
-- Covering for aggregation (num): a 30-day window of one series is one index range, whatever
-- order the rows were written in.
CREATE INDEX IF NOT EXISTS t_instances_series ON t_instances(sid, obs, num);
"""

TYPES = ("Property", "Relationship", "GeoProperty", "LanguageProperty", "JsonProperty",
         "VocabProperty", "ListProperty", "ListRelationship")
MAIN = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
        "LanguageProperty": "languageMap", "JsonProperty": "json", "VocabProperty": "vocab",
        "ListProperty": "valueList", "ListRelationship": "objectList"}
_TYPE_CODE = {t: i for i, t in enumerate(TYPES)}
_SYSTEM_MEMBERS = frozenset({"createdAt", "modifiedAt", "instanceId"})
_SKIP = frozenset({"type", "observedAt", "createdAt", "modifiedAt", "instanceId", "deletedAt"})
# type -> (main member, kind code without encoding, the members that are not metadata)
_KINDS = {t: (MAIN[t], i * 4, _SKIP | {MAIN[t]}) for i, t in enumerate(TYPES)}
_ENC_INT, _ENC_FLOAT, _ENC_JSON, _ENC_DELETED = 0, 1, 2, 3
_NOT_ATTRIBUTES = frozenset({"id", "type", "createdAt", "modifiedAt", "scope"})  # entity members
_EXACT_INT = 2 ** 53
_CACHE_MAX = 100_000  # entries per id cache (entities, series, interned metadata)
INSTANCE_PREFIX = "urn:ngsi-ld:Instance:"
NULL = "urn:ngsi-ld:null"
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$")


def now_ms() -> int:
    """The current time in integer milliseconds."""
    return time.time_ns() // 1_000_000


def parse_time(text: Any) -> int | None:
    """A DateTime (a `Z` or offset is required) as epoch milliseconds; None when it is not one."""
    if not isinstance(text, str):
        return None
    return _parse_time(text)


@functools.lru_cache(maxsize=8192)  # the readings of one batch share a few observedAt values
def _parse_time(text: str) -> int | None:
    if not _DATETIME.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        return None
    return int(moment.timestamp() * 1000 + (0.5 if moment.timestamp() >= 0 else -0.5))


@functools.lru_cache(maxsize=8192)  # period bounds repeat across the entities of one answer
def format_time(ms: int) -> str:
    """Epoch milliseconds as NGSI-LD writes DateTimes (`.mmm` only when not whole seconds)."""
    t = time.gmtime(ms // 1000)
    text = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else text + "Z"


def _unchanged(old: Any, new: dict[str, Any]) -> bool:
    """Whether a written attribute adds no instance: it is the stored one (not written), or the
    stored one's observation again (the same observedAt and members, system members aside). A
    source re-sending its current state with a reading that did not change would otherwise record
    that reading twice; the temporal append treats an instance of a stored observedAt alike (`add`)."""
    if old is new:
        return True
    observed = new.get("observedAt")
    if observed is None or not isinstance(old, dict) or old.get("observedAt") != observed:
        return False
    return ({k: v for k, v in old.items() if k not in _SYSTEM_MEMBERS}
            == {k: v for k, v in new.items() if k not in _SYSTEM_MEMBERS})


def instance_id(iid: int) -> str:
    """The public id of an instance row."""
    return f"{INSTANCE_PREFIX}{iid}"


def parse_instance_id(text: str) -> int | None:
    """The row of a public instance id, None for ids this broker never gave out."""
    if text.startswith(INSTANCE_PREFIX) and text[len(INSTANCE_PREFIX):].isdigit():
        return int(text[len(INSTANCE_PREFIX):])
    return None


def _rowid(cursor: sqlite3.Cursor) -> int:
    """The rowid an INSERT gave."""
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _strip_system(attr: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, sub in attr.items():
        if key in ("createdAt", "modifiedAt", "instanceId"):
            continue
        out[key] = _strip_system(sub) if key not in MEMBERS and isinstance(sub, dict) else sub
    return out


@dataclass(slots=True)
class Instance:
    """One decoded attribute instance."""

    iid: int
    obs: int | None
    created: int
    modified: int | None
    kind: str
    value: Any  # the main member's value; NULL for a deletion
    deleted: bool
    meta: dict[str, Any]

    def time_of(self, prop: str) -> int | None:
        """The instance's time for a `timeproperty`."""
        if prop == "observedAt":
            return self.obs
        if prop == "createdAt":
            return self.created
        if prop == "modifiedAt":
            return self.modified if self.modified is not None else self.created
        return self.created if self.deleted else None  # deletedAt

    def attribute(self, sys_attrs: bool = False) -> dict[str, Any]:
        """The instance as a normalized attribute (expanded sub-attribute names)."""
        out: dict[str, Any] = {"type": self.kind, MAIN[self.kind]: self.value}
        if self.kind == "LanguageProperty" and self.deleted:
            out["languageMap"] = {"@none": NULL}
        if self.obs is not None:
            out["observedAt"] = format_time(self.obs)
        out.update(self.meta)
        out["instanceId"] = instance_id(self.iid)
        if self.deleted:
            out["deletedAt"] = format_time(self.created)
        elif sys_attrs:
            out["createdAt"] = format_time(self.created)
            out["modifiedAt"] = format_time(self.modified if self.modified is not None else self.created)
        return out


_TIME_EXPR = {"obs": "obs", "created": "created", "modified": "coalesce(modified, created)"}
_AID = "aid=(SELECT aid FROM t_attrs WHERE name=?)"
Row = tuple[int, int, int | None, int, int | None, int, float | None, bytes | None, int | None]
_COLUMNS = "iid, sid, obs, created, modified, kind, num, val, mid"
_NEW_COLUMNS = "sid, obs, created, kind, num, val, mid"  # a new instance: iid given, never modified


class TemporalStore:
    """History of one broker `SqliteStore`: recording (inside entity write transactions) and queries."""

    def __init__(self, store: Any, retention_days: float | None = None) -> None:
        self.store = store
        self.retention_days = retention_days
        with store._lock:  # executescript commits: run it outside any transaction
            store._conn.executescript(SCHEMA)
        self._eids: dict[tuple[str, str], tuple[int, str]] = {}
        self._sids: dict[tuple[int, str], int] = {}
        self._mids: dict[bytes, int] = {}
        self._aids: dict[str, int] = {}
        self._meta: dict[int, dict[str, Any]] = {}
        self._next_eid: int | None = None
        self._next_sid: int | None = None
        self._pending_entities: list[tuple[int, str, str, str]] = []
        self._pending_series: list[tuple[int, int, int]] = []  # (eid, aid, sid)
        self._pending: list[tuple[Any, ...]] = []
        # (tenant, id) that `prefetch` found unrecorded: _eid needs no SELECT for them (this
        # transaction only: cleared by flush, which ends every transaction)
        self._absent: set[tuple[str, str]] = set()

    def forget(self) -> None:
        """Drop the id caches and pending rows (a write transaction rolled back)."""
        self._eids.clear()
        self._sids.clear()
        self._mids.clear()
        self._aids.clear()
        self._next_eid = self._next_sid = None
        self._pending_entities.clear()
        self._pending_series.clear()
        self._pending.clear()
        self._absent.clear()

    def flush(self, conn: sqlite3.Connection) -> None:
        """Write the rows recorded in this transaction (Writer.flush calls it before COMMIT)."""
        self._absent.clear()
        if self._pending_entities:
            bulk.insert(conn, "INSERT INTO t_entities(eid, tenant, id, types)", self._pending_entities)
            self._pending_entities.clear()
        if self._pending_series:
            bulk.insert(conn, "INSERT INTO t_series(eid, aid, sid)", self._pending_series)
            self._pending_series.clear()
        if self._pending:
            bulk.insert(conn, f"INSERT INTO t_instances({_NEW_COLUMNS})",
                        self._pending)
            self._pending.clear()

    # -- writing (inside a SqliteStore.write() transaction: `conn` is its connection) ---------------------
    def prefetch(self, conn: sqlite3.Connection, tenant: str, ids: list[str]) -> None:
        """Look up the entities of a batch and their series with one query per 500 ids, so that
        `record` needs no SELECT per entity and attribute (a batch writes up to thousands)."""
        self.flush(conn)  # the caches may be cleared below: no pending row may depend on them
        wanted = [i for i in dict.fromkeys(ids) if (tenant, i) not in self._eids]
        if len(self._eids) + len(wanted) > _CACHE_MAX:
            self._eids.clear()
        if len(self._sids) + 8 * len(wanted) > _CACHE_MAX:
            self._sids.clear()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            marks = ",".join("?" * len(chunk))
            found = conn.execute(f"SELECT eid, id, types FROM t_entities WHERE tenant=? AND id IN ({marks})",
                                 (tenant, *chunk)).fetchall()
            for eid, ident, types in found:
                self._eids[(tenant, ident)] = (eid, types)
            self._absent.update((tenant, ident) for ident in chunk if (tenant, ident) not in self._eids)
            if found:
                eids = [row[0] for row in found]
                for eid, attr, sid in conn.execute(
                        "SELECT s.eid, a.name, s.sid FROM t_series s JOIN t_attrs a ON a.aid=s.aid "
                        f"WHERE s.eid IN ({','.join('?' * len(eids))})", eids):
                    self._sids[(eid, attr)] = sid

    # New entities and series get their ids from counters (the store has one writer, serialised by
    # its lock) and are written with the instances by `flush`, 100 rows per INSERT.
    def _eid(self, conn: sqlite3.Connection, tenant: str, entity_id: str,
             types: list[str] | None) -> tuple[int, bool]:
        """(eid, whether it is new in this transaction) of an entity, recording it when unknown."""
        known = self._eids.get((tenant, entity_id))
        types_json = orjson.dumps(types).decode() if types is not None else None
        if known is not None and (types_json is None or known[1] == types_json):
            return known[0], False
        row = known
        if known is None and (tenant, entity_id) not in self._absent:
            row = conn.execute("SELECT eid, types FROM t_entities WHERE tenant=? AND id=?",
                               (tenant, entity_id)).fetchone()
        new = row is None
        if row is None:
            if self._next_eid is None:
                self._next_eid = conn.execute("SELECT coalesce(max(eid), 0) + 1 FROM t_entities").fetchone()[0]
            eid, stored = self._next_eid, types_json or "[]"
            self._next_eid += 1
            self._absent.discard((tenant, entity_id))
            self._pending_entities.append((eid, tenant, entity_id, stored))
        else:
            eid, stored = row
            if types_json is not None and types_json != stored:
                merged = list(dict.fromkeys([*orjson.loads(stored), *(types or [])]))
                stored = orjson.dumps(merged).decode()
                self.flush(conn)
                conn.execute("UPDATE t_entities SET types=? WHERE tenant=? AND id=?", (stored, tenant, entity_id))
        if len(self._eids) > _CACHE_MAX:
            self._eids.clear()
        self._eids[(tenant, entity_id)] = (eid, stored)
        return eid, new

    def _sid(self, conn: sqlite3.Connection, eid: int, attr: str, new_entity: bool = False) -> int:
        sid = self._sids.get((eid, attr))
        if sid is None:
            if new_entity:
                return self._new_sid(conn, eid, attr)
            row = conn.execute(f"SELECT sid FROM t_series WHERE eid=? AND {_AID}", (eid, attr)).fetchone()
            if row is None:
                return self._new_sid(conn, eid, attr)
            sid = row[0]
            self._cache_sid(eid, attr, sid)
        return sid

    def _new_sid(self, conn: sqlite3.Connection, eid: int, attr: str) -> int:
        """A new series of an entity (the caller knows there is none for `attr`)."""
        aid = self._aids.get(attr)
        if aid is None:
            aid = self._aid(conn, attr)
        sid = self._next_sid
        if sid is None:
            sid = conn.execute("SELECT coalesce(max(sid), 0) + 1 FROM t_series").fetchone()[0]
        self._next_sid = sid + 1
        self._pending_series.append((eid, aid, sid))
        self._cache_sid(eid, attr, sid)
        return sid

    def _cache_sid(self, eid: int, attr: str, sid: int) -> None:
        if len(self._sids) > _CACHE_MAX:
            self._sids.clear()
        self._sids[(eid, attr)] = sid

    def _aid(self, conn: sqlite3.Connection, name: str) -> int:
        """The interned id of an attribute IRI (a handful per deployment: cached for good)."""
        aid = self._aids.get(name)
        if aid is None:
            row = conn.execute("SELECT aid FROM t_attrs WHERE name=?", (name,)).fetchone()
            aid = row[0] if row else _rowid(conn.execute("INSERT INTO t_attrs(name) VALUES (?)", (name,)))
            self._aids[name] = aid
        return aid

    def _mid(self, conn: sqlite3.Connection, meta: dict[str, Any]) -> int | None:
        if not meta:
            return None
        body = orjson.dumps(meta, option=orjson.OPT_SORT_KEYS)
        mid = self._mids.get(body)
        if mid is None:
            row = conn.execute("SELECT mid FROM t_meta WHERE body=?", (body,)).fetchone()
            mid = row[0] if row else _rowid(conn.execute("INSERT INTO t_meta(body) VALUES (?)", (body,)))
            if len(self._mids) > _CACHE_MAX:
                self._mids.clear()
            self._mids[body] = mid
        return mid

    def encode(self, conn: sqlite3.Connection, sid: int, attr: dict[str, Any], created: int,
               obs: int | None = None) -> tuple[Any, ...]:
        """An instance row (`_NEW_COLUMNS`) for a normalized attribute."""
        main, code, skip = _KINDS.get(attr.get("type", "Property")) or _KINDS["Property"]
        value = attr.get(main)
        if type(value) is float:
            code, num, val = code + _ENC_FLOAT, value, None
        elif type(value) is int and -_EXACT_INT < value < _EXACT_INT:
            code, num, val = code + _ENC_INT, float(value), None
        else:
            code, num, val = code + _ENC_JSON, None, orjson.dumps(value)
        # The members left for the metadata (unitCode, datasetId, sub-attributes...): usually none
        # or one, so the set difference (in C) comes first and most attributes build no dict.
        extra = attr.keys() - skip
        mid = self._mid(conn, {k: (_strip_system(attr[k]) if k not in MEMBERS and isinstance(attr[k], dict)
                                   else attr[k]) for k in extra}) if extra else None
        if obs is None:
            observed = attr.get("observedAt")
            obs = _parse_time(observed) if type(observed) is str else None
        return (sid, obs, created, code, num, val, mid)

    def _deletion(self, conn: sqlite3.Connection, sid: int, attr: dict[str, Any], created: int) -> tuple[Any, ...]:
        kind = attr.get("type", "Property")
        meta = {"datasetId": attr["datasetId"]} if "datasetId" in attr else {}
        return (sid, None, created, _TYPE_CODE.get(kind, 0) * 4 + _ENC_DELETED, None, None,
                self._mid(conn, meta))

    def record(self, conn: sqlite3.Connection, tenant: str, before: dict[str, Any] | None,
               after: dict[str, Any] | None) -> None:
        """Instances for one committed entity change: written attributes, deleted attributes."""
        doc = after if after is not None else before
        if doc is None:
            return
        now = now_ms()
        eid, new = self._eid(conn, tenant, doc["id"], after["type"] if after is not None else None)
        rows = self._pending  # written by flush, with the transaction's other rows
        if after is not None:
            sids, encode = self._sids, self.encode
            for iri, attr in after.items():
                if iri in _NOT_ATTRIBUTES or not isinstance(attr, dict) \
                        or (before is not None and _unchanged(before.get(iri), attr)):
                    continue
                # every series of a new entity is new: no lookup
                sid = self._new_sid(conn, eid, iri) if new else sids.get((eid, iri)) or self._sid(conn, eid, iri)
                rows.append(encode(conn, sid, attr, now))
        if before is not None:
            for iri, attr in before.items():
                if iri in _NOT_ATTRIBUTES or not isinstance(attr, dict):
                    continue
                if after is None or iri not in after:
                    rows.append(self._deletion(conn, self._sid(conn, eid, iri, new), attr, now))

    def add(self, conn: sqlite3.Connection, tenant: str, entity_id: str, types: list[str] | None,
            attrs: dict[str, list[dict[str, Any]]]) -> int:
        """Add instances given as attribute -> normalized instances (temporal create/append).

        An instance with the observedAt and datasetId of a stored one replaces it (its modifiedAt is
        set), so sending the same readings again adds nothing.
        """
        self.flush(conn)
        now = now_ms()
        eid, new = self._eid(conn, tenant, entity_id, types)
        keyed: dict[tuple[int, int, Any], tuple[Any, ...]] = {}
        rows = []
        for iri, instances in attrs.items():
            sid = self._sid(conn, eid, iri, new)
            for inst in instances:
                row = self.encode(conn, sid, inst, now)
                if row[1] is None:
                    rows.append(row)
                else:
                    keyed[(sid, row[1], inst.get("datasetId"))] = row  # the last of equal ones wins
        if keyed and not new:
            spans: dict[int, list[int]] = {}
            for sid, obs, _ in keyed:
                span = spans.setdefault(sid, [obs, obs])
                span[0], span[1] = min(span[0], obs), max(span[1], obs)
            updates = []
            for sid, (low, high) in spans.items():  # one index range per attribute
                for iid, obs, mid in conn.execute(
                        "SELECT iid, obs, mid FROM t_instances WHERE sid=? AND obs BETWEEN ? AND ? "
                        "AND (kind & 3)!=3", (sid, low, high)):
                    key = (sid, obs, self._decode_meta(mid, conn).get("datasetId"))
                    if key in keyed:
                        row = keyed.pop(key)
                        updates.append((now, *row[3:], iid))
            conn.executemany("UPDATE t_instances SET modified=?, kind=?, num=?, val=?, mid=? WHERE iid=?",
                             updates)
        self._pending += [*rows, *keyed.values()]
        return len(rows) + len(keyed)

    def add_rows(self, conn: sqlite3.Connection, tenant: str, entity_id: str, types: list[str],
                 attr: str, rows: Iterable[tuple[int | None, float, dict[str, Any]]]) -> None:
        """Bulk numeric readings (obs ms, number, meta): the bench's fast path to a large table."""
        now = now_ms()
        eid, new = self._eid(conn, tenant, entity_id, types)
        sid = self._sid(conn, eid, attr, new)
        self.flush(conn)
        conn.executemany(
            f"INSERT INTO t_instances({_NEW_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
            ((sid, obs, now, _ENC_FLOAT if type(num) is float else _ENC_INT, num, None,
              self._mid(conn, meta)) for obs, num, meta in rows))

    def delete_entity(self, conn: sqlite3.Connection, tenant: str, entity_id: str) -> bool:
        """Forget an entity's whole history; False when there is none."""
        self.flush(conn)
        row = conn.execute("SELECT eid FROM t_entities WHERE tenant=? AND id=?", (tenant, entity_id)).fetchone()
        if row is None:
            return False
        eid = row[0]
        conn.execute("DELETE FROM t_instances WHERE sid IN (SELECT sid FROM t_series WHERE eid=?)", (eid,))
        conn.execute("DELETE FROM t_series WHERE eid=?", (eid,))
        conn.execute("DELETE FROM t_entities WHERE tenant=? AND id=?", (tenant, entity_id))
        self._eids.pop((tenant, entity_id), None)
        self._sids = {k: v for k, v in self._sids.items() if k[0] != eid}
        return True

    def delete_attr(self, conn: sqlite3.Connection, eid: int, attr: str, dataset_id: str | None,
                    delete_all: bool) -> int:
        """Delete an attribute's instances (of one datasetId, or all); the number deleted."""
        self.flush(conn)
        sid = conn.execute(f"SELECT sid FROM t_series WHERE eid=? AND {_AID}", (eid, attr)).fetchone()
        if sid is None:
            return 0
        rows = conn.execute(f"SELECT {_COLUMNS} FROM t_instances WHERE sid=?", (sid[0],)).fetchall()
        doomed = [r[0] for r in rows
                  if delete_all or self._decode_meta(r[8], conn).get("datasetId") == dataset_id]
        conn.executemany("DELETE FROM t_instances WHERE iid=?", [(i,) for i in doomed])
        return len(doomed)

    def delete_instance(self, conn: sqlite3.Connection, eid: int, attr: str, iid: int) -> bool:
        """Delete one instance; False when it is not an instance of that attribute."""
        self.flush(conn)
        return conn.execute("DELETE FROM t_instances WHERE iid=? AND sid=(SELECT sid FROM t_series "
                            f"WHERE eid=? AND {_AID})", (iid, eid, attr)).rowcount > 0

    def replace_instance(self, conn: sqlite3.Connection, eid: int, attr: str, iid: int,
                         fragment: dict[str, Any]) -> bool:
        """PATCH of one instance: its members replaced by the fragment's; modifiedAt set."""
        self.flush(conn)
        row = conn.execute(f"SELECT {_COLUMNS} FROM t_instances WHERE iid=? AND sid=(SELECT sid FROM "
                           f"t_series WHERE eid=? AND {_AID})", (iid, eid, attr)).fetchone()
        if row is None:
            return False
        old = self.decode(row).attribute()
        old.pop("instanceId", None)
        merged = {**old, **fragment}
        new = self.encode(conn, row[1], merged, row[3])
        conn.execute("UPDATE t_instances SET obs=?, modified=?, kind=?, num=?, val=?, mid=? WHERE iid=?",
                     (new[1], now_ms(), *new[3:], iid))
        return True

    def prune(self, older_than_ms: int, series_per_transaction: int = 200) -> int:
        """Retention: delete instances observed (or, without observedAt, recorded) before a time.

        Series by series over the (series, observedAt) index, a few hundred series per transaction,
        so writers wait at most a few milliseconds for the lock.
        """
        with self.store._read() as conn:
            sids = [r[0] for r in conn.execute("SELECT sid FROM t_series ORDER BY sid")]
        deleted = 0
        for start in range(0, len(sids), series_per_transaction):
            with self.store.write() as tx:
                for sid in sids[start:start + series_per_transaction]:
                    deleted += tx.conn.execute("DELETE FROM t_instances WHERE sid=? AND obs<?",
                                               (sid, older_than_ms)).rowcount
                    deleted += tx.conn.execute("DELETE FROM t_instances WHERE sid=? AND obs IS NULL "
                                               "AND created<?", (sid, older_than_ms)).rowcount
        return deleted

    def prune_expired(self) -> int:
        """Apply `retention_days` (no-op without it)."""
        if self.retention_days is None:
            return 0
        return self.prune(now_ms() - int(self.retention_days * 86_400_000))

    # -- reading ------------------------------------------------------------------------------------
    def _decode_meta(self, mid: int | None, conn: sqlite3.Connection | None = None) -> dict[str, Any]:
        if mid is None:
            return {}
        meta = self._meta.get(mid)
        if meta is None:
            if conn is not None:  # inside a write transaction: its own rows are visible
                row = conn.execute("SELECT body FROM t_meta WHERE mid=?", (mid,)).fetchone()
            else:
                with self.store._read() as reader:
                    row = reader.execute("SELECT body FROM t_meta WHERE mid=?", (mid,)).fetchone()
            meta = orjson.loads(row[0]) if row else {}
            if len(self._meta) > _CACHE_MAX:
                self._meta.clear()
            self._meta[mid] = meta
        return meta

    def decode(self, row: Row) -> Instance:
        """An instance from its row."""
        iid, _, obs, created, modified, kind, num, val, mid = row
        type_name = TYPES[kind >> 2]
        enc = kind & 3
        if enc == _ENC_INT:
            value: Any = int(num) if num is not None else None
        elif enc == _ENC_FLOAT:
            value = num
        elif enc == _ENC_JSON:
            value = orjson.loads(val) if val is not None else None
        else:
            value = {"@none": NULL} if type_name == "LanguageProperty" else NULL
        return Instance(iid, obs, created, modified, type_name, value, enc == _ENC_DELETED,
                        dict(self._decode_meta(mid)))

    def entity(self, tenant: str, entity_id: str,
               conn: sqlite3.Connection | None = None) -> tuple[int, list[str]] | None:
        """(eid, expanded types) of a recorded entity; `conn`: inside a write transaction."""
        sql = "SELECT eid, types FROM t_entities WHERE tenant=? AND id=?"
        if conn is not None:
            self.flush(conn)
            row = conn.execute(sql, (tenant, entity_id)).fetchone()
        else:
            with self.store._read() as reader:
                row = reader.execute(sql, (tenant, entity_id)).fetchone()
        return (row[0], orjson.loads(row[1])) if row else None

    def entities(self, tenant: str) -> Iterator[tuple[int, str, list[str]]]:
        """Every recorded entity of a tenant: (eid, id, types), in recording order."""
        with self.store._read() as conn:
            rows = conn.execute("SELECT eid, id, types FROM t_entities WHERE tenant=? ORDER BY eid",
                                (tenant,)).fetchall()
        for eid, ident, types in rows:
            yield eid, ident, orjson.loads(types)

    def series(self, eid: int) -> list[tuple[int, str]]:
        """(sid, attribute IRI) of an entity, in recording order."""
        with self.store._read() as conn:
            return conn.execute("SELECT s.sid, a.name FROM t_series s JOIN t_attrs a ON a.aid=s.aid "
                                "WHERE s.eid=? ORDER BY s.sid", (eid,)).fetchall()

    def tenant_series(self, tenant: str) -> dict[int, list[tuple[int, str]]]:
        """eid -> [(sid, attribute IRI)] of every entity of a tenant (one query for a whole answer)."""
        out: dict[int, list[tuple[int, str]]] = {}
        with self.store._read() as conn:
            for eid, sid, attr in conn.execute(
                    "SELECT s.eid, s.sid, a.name FROM t_series s JOIN t_entities e ON e.eid=s.eid "
                    "JOIN t_attrs a ON a.aid=s.aid WHERE e.tenant=? ORDER BY s.sid", (tenant,)):
                out.setdefault(eid, []).append((sid, attr))
        return out

    def sids_in_window(self, sids: list[int], column: str, lower: int | None, upper: int | None,
                       deleted: bool) -> set[int]:
        """The series among `sids` with at least one instance in the window."""
        expr = _TIME_EXPR[column]
        cond = ["i.sid=s.value", "(i.kind & 3)=3" if deleted else "(i.kind & 3)!=3"]
        params: list[Any] = []
        if lower is not None:
            cond.append(f"i.{expr}>=?" if column != "modified" else f"{expr}>=?")
            params.append(lower)
        if upper is not None:
            cond.append(f"i.{expr}<?" if column != "modified" else f"{expr}<?")
            params.append(upper)
        sql = (f"SELECT s.value FROM json_each(?) s WHERE EXISTS (SELECT 1 FROM t_instances i "
               f"WHERE {' AND '.join(cond)})")
        with self.store._read() as conn:
            return {row[0] for row in conn.execute(sql, [orjson.dumps(sids).decode(), *params])}

    def instances(self, sid: int, *, column: str = "obs", lower: int | None = None,
                  upper: int | None = None, last: int | None = None, limit: int | None = None,
                  deleted: bool | None = None) -> list[Instance]:
        """Instances of a series in ascending time order; `lower` inclusive, `upper` exclusive.

        `last`: only the newest N (still returned oldest first); `limit` caps the count from the
        oldest. `column` is the time column (obs, created, modified) the range and order use.
        """
        expr = _TIME_EXPR[column]
        where, params = ["sid=?"], [sid]
        _add_range(where, params, expr, lower, upper)
        if column == "obs" and (lower is not None or upper is not None):
            where.append("obs IS NOT NULL")
        if deleted is not None:
            where.append("(kind & 3)=3" if deleted else "(kind & 3)!=3")
        sql = f"SELECT {_COLUMNS} FROM t_instances WHERE {' AND '.join(where)}"
        if last is not None:
            sql += f" ORDER BY {expr} DESC, iid DESC LIMIT ?"
            params.append(last)
        else:
            sql += f" ORDER BY {expr}, iid"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(limit)
        with self.store._read() as conn:
            rows = conn.execute(sql, params).fetchall()
        if last is not None:
            rows.reverse()
        return [self.decode(r) for r in rows]

    def aggregate(self, sid: int, start: int, period: int, lower: int | None, upper: int | None,
                  column: str = "obs") -> list[tuple[int, int, float, float, float, float]]:
        """Per period bucket of numeric instances: (bucket, count, sum, sum of squares, min, max)."""
        expr = _TIME_EXPR[column]
        where, params = _buckets_where(expr, sid, start, period, lower, upper)
        sql = (f"SELECT ({expr}-?)/? AS b, count(*), sum(num), sum(num*num), min(num), max(num) "
               f"FROM t_instances WHERE {where} AND num IS NOT NULL GROUP BY b ORDER BY b")
        with self.store._read() as conn:
            return conn.execute(sql, params).fetchall()

    def count_all(self, sid: int, start: int, period: int, lower: int | None, upper: int | None,
                  column: str = "obs") -> list[tuple[int, int, int]]:
        """Per bucket: (bucket, count, distinct values) over every instance (numbers or not)."""
        expr = _TIME_EXPR[column]
        where, params = _buckets_where(expr, sid, start, period, lower, upper)
        sql = (f"SELECT ({expr}-?)/? AS b, count(*), count(DISTINCT coalesce(num, val)) FROM t_instances "
               f"WHERE {where} GROUP BY b ORDER BY b")
        with self.store._read() as conn:
            return conn.execute(sql, params).fetchall()

    def kind(self, sid: int) -> str:
        """The attribute type of a series' newest instance."""
        with self.store._read() as conn:
            row = conn.execute("SELECT kind FROM t_instances WHERE sid=? ORDER BY obs DESC LIMIT 1",
                               (sid,)).fetchone()
        return TYPES[row[0] >> 2] if row else "Property"

    def stats(self) -> dict[str, int]:
        """Row counts (bench, diagnostics)."""
        with self.store._read() as conn:
            return {"instances": conn.execute("SELECT count(*) FROM t_instances").fetchone()[0],
                    "series": conn.execute("SELECT count(*) FROM t_series").fetchone()[0]}


def _buckets_where(expr: str, sid: int, start: int, period: int, lower: int | None,
                   upper: int | None) -> tuple[str, list[int]]:
    """The WHERE of a per-period aggregation of one series in [lower, upper), and its parameters
    (the bucket's start and period first, as the SELECT uses them)."""
    where, params = ["sid=?", f"{expr} IS NOT NULL"], [start, period, sid]
    _add_range(where, params, expr, lower, upper)
    return " AND ".join(where), params


def _add_range(where: list[str], params: list[int], expr: str, lower: int | None, upper: int | None) -> None:
    """The time range [lower, upper) on `expr`, each bound only when given."""
    if lower is not None:
        where.append(f"{expr}>=?")
        params.append(lower)
    if upper is not None:
        where.append(f"{expr}<?")
        params.append(upper)
