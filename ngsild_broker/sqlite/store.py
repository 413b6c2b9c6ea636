"""SQLite storage of the embedded broker: tenants, entities (+ type and location indexes), contexts, subscriptions.

Implements ngsild_broker.storage.EntityStore; filters become SQL in sqlite/where.py and sqlite/q_sql.py;
the tables and their format version are sqlite/schema.py's.

One writer connection serialised by a lock (a batch is one transaction, so concurrent upserts of the
same entities never lose an update); with a file database, readers use their own per-thread
connections and WAL lets them run beside the writer. Everything here is blocking: callers run it in a
worker thread.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from ngsild_broker.regex import compile_pattern
from ngsild_broker.sqlite import bulk, points, schema
from ngsild_broker.sqlite import query as _query
from ngsild_broker.sqlite.where import SqlFilter
from ngsild_broker.storage import DEFAULT_TENANT, BBox, EntityFilter, QueryResult, Stored

logger = logging.getLogger(__name__)

def _same(value: Any) -> Any:
    return value


# The sqlite3 module binds a parameter that is not an int, float or str (None, bytes) only after
# looking for an adapter: a tuple, a dict miss and two attribute lookups, ~400 ns against ~60 for an
# int. A registered adapter makes that one dict hit (~170 ns); history rows bind ~13 NULLs and
# blobs per upserted entity (bench/README.md, issue 15 second pass). Both adapters return their
# value unchanged, so nothing else in the process sees a difference.
sqlite3.register_adapter(type(None), _same)
sqlite3.register_adapter(bytes, _same)


def _regexp(pattern: str, value: str | None) -> bool:
    # RE2 (linear time); callers validated the pattern with the same function before the query.
    return value is not None and compile_pattern(pattern).search(value) is not None


def _open(path: str | None) -> sqlite3.Connection:
    conn = sqlite3.connect(path or ":memory:", check_same_thread=False,
                           isolation_level=None, cached_statements=256)
    if path is not None:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.execute("PRAGMA cache_size=-65536")
    conn.create_function("regexp", 2, _regexp, deterministic=True)
    return conn


class SqliteStore:
    """The broker's SQLite database (an EntityStore)."""

    def __init__(self, path: Path | None) -> None:
        self._path = str(path) if path is not None else None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = self._connect()
        try:
            schema.prepare(self._conn, self._path or ":memory:")
        except BaseException:
            self._conn.close()
            raise
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._tenants = {row[0] for row in self._conn.execute("SELECT name FROM tenants")}
        self._tenants.add(DEFAULT_TENANT)
        self._checkpointer: _Checkpointer | None = None
        self.history: Any = None  # a temporal_store.TemporalStore: records attribute instances
        if self._path is not None:
            # Checkpoints run in a background thread (see _Checkpointer); the writer only steps in
            # when the WAL grows past ~40 MB, which bounds it if the thread ever falls behind.
            self._conn.execute(f"PRAGMA wal_autocheckpoint={_FALLBACK_CHECKPOINT_PAGES}")
            self._checkpointer = _Checkpointer(self._path)  # not self: the finalizer must run
            weakref.finalize(self, self._checkpointer.stop)

    def _connect(self) -> sqlite3.Connection:
        return _open(self._path)

    def close(self) -> None:
        """Close every connection."""
        if self._checkpointer is not None:
            self._checkpointer.stop()
        with self._lock:
            for reader in self._readers:
                reader.close()
            self._conn.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        if self._path is None:
            with self._lock:
                yield self._conn
            return
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._readers.append(conn)
        yield conn

    @contextmanager
    def write(self) -> Iterator[Writer]:
        """One serialised write transaction."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                writer = Writer(self._conn, self._tenants, self.history)
                yield writer
                writer.flush()
            except BaseException:
                self._conn.execute("ROLLBACK")
                if self.history is not None:
                    self.history.forget()  # its id caches may name rows that were rolled back
                raise
            self._conn.execute("COMMIT")
        if self._checkpointer is not None:
            self._checkpointer.wake()

    # -- tenants --------------------------------------------------------------------------------
    def tenant_exists(self, tenant: str) -> bool:
        """Whether a tenant has been created (the default tenant always exists)."""
        return tenant in self._tenants

    def tenants(self) -> list[str]:
        """Every named tenant."""
        return sorted(t for t in self._tenants if t)

    def ensure_tenant(self, tenant: str) -> None:
        """Create a tenant (first write)."""
        if tenant not in self._tenants:
            with self.write() as tx:
                tx.ensure_tenant(tenant)

    # -- entities -------------------------------------------------------------------------------
    def get(self, tenant: str, entity_id: str) -> dict[str, Any] | None:
        """One stored entity."""
        with self._read() as conn:
            row = conn.execute("SELECT doc FROM entities WHERE tenant=? AND id=?",
                               (tenant, entity_id)).fetchone()
        return orjson.loads(row[0]) if row else None

    def get_many(self, tenant: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored entities among `ids`, by id."""
        found: dict[str, dict[str, Any]] = {}
        with self._read() as conn:
            for start in range(0, len(ids), 500):
                chunk = list(ids[start:start + 500])
                marks = ",".join("?" * len(chunk))
                for ident, doc in conn.execute(
                        f"SELECT id, doc FROM entities WHERE tenant=? AND id IN ({marks})", (tenant, *chunk)):
                    found[ident] = orjson.loads(doc)
        return found

    def query(self, flt: EntityFilter, limit: int, offset: int = 0, count: bool = False) -> QueryResult:
        """A page of the matching entities in creation order, and their number when `count`."""
        return _query.run_query(self, flt, limit, offset, count)

    def matching(self, flt: EntityFilter) -> Iterator[dict[str, Any]]:
        """Every matching entity, in creation order."""
        return _query.matching(self, flt)

    # -- the SQL plan's primitives (sqlite/query.py) ----------------------------------------------
    def scan_sql(self, flt: SqlFilter, limit: int | None = None, offset: int = 0) -> Iterator[Stored]:
        """Matching entities in creation order (LIMIT/OFFSET in SQL when given)."""
        sql, params = _select(flt, "e.seq, e.doc")
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params = (*params, limit, offset)
        with self._read() as conn:
            cursor = conn.execute(sql, params)
            while rows := cursor.fetchmany(256):
                for seq, doc in rows:
                    yield Stored(seq, orjson.loads(doc))

    def scan_points(self, flt: SqlFilter) -> list[tuple[int, float | None, float | None]]:
        """(seq, x, y) of the located entities matching a query; x, y are None for non-points."""
        sql, params = _select(flt, "e.seq, g.px, g.py", ordered=False)  # the caller sorts matches
        with self._read() as conn:
            return conn.execute(sql, params).fetchall()

    def by_seqs(self, seqs: Sequence[int]) -> list[Stored]:
        """Entities by sequence number, in the given order."""
        docs: dict[int, bytes] = {}
        with self._read() as conn:
            for start in range(0, len(seqs), 500):
                chunk = seqs[start:start + 500]
                marks = ",".join("?" * len(chunk))
                docs.update(conn.execute(f"SELECT seq, doc FROM entities WHERE seq IN ({marks})", chunk))
        return [Stored(seq, orjson.loads(docs[seq])) for seq in seqs if seq in docs]

    def count_sql(self, flt: SqlFilter) -> int:
        """Number of entities matching a fully-SQL query."""
        sql, params = _select(flt, "count(*)", ordered=False)
        with self._read() as conn:
            return conn.execute(sql, params).fetchone()[0]

    def type_counts(self, tenant: str) -> list[tuple[str, int]]:
        """(expanded type, entity count) of a tenant."""
        with self._read() as conn:
            return conn.execute("SELECT type, count(*) FROM entity_types WHERE tenant=? GROUP BY type "
                                "ORDER BY type", (tenant,)).fetchall()

    # -- contexts and subscriptions ---------------------------------------------------------------
    def load_contexts(self) -> list[tuple[str, str, str, bytes, str]]:
        """Every persisted context (url, local id, kind, body, createdAt)."""
        with self._read() as conn:
            return conn.execute("SELECT url, local_id, kind, body, created_at FROM contexts").fetchall()

    def put_context(self, url: str, local_id: str, kind: str, body: bytes, created_at: str) -> None:
        """Persist a downloaded or hosted context."""
        with self.write() as tx:
            tx.conn.execute("INSERT OR REPLACE INTO contexts VALUES (?,?,?,?,?)",
                            (url, local_id, kind, body, created_at))

    def delete_context(self, url: str) -> None:
        """Forget a persisted context."""
        with self.write() as tx:
            tx.conn.execute("DELETE FROM contexts WHERE url=?", (url,))

    def load_subscriptions(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Every persisted subscription as (tenant, id, document)."""
        with self._read() as conn:
            rows = conn.execute("SELECT tenant, id, doc FROM subscriptions ORDER BY rowid").fetchall()
        return [(tenant, ident, orjson.loads(doc)) for tenant, ident, doc in rows]

    def put_subscription(self, tenant: str, ident: str, doc: dict[str, Any]) -> None:
        """Persist (create or replace) a subscription document; creates the tenant."""
        with self.write() as tx:
            tx.ensure_tenant(tenant)
            tx.conn.execute("INSERT OR REPLACE INTO subscriptions VALUES (?,?,?)",
                            (tenant, ident, orjson.dumps(doc)))

    def delete_subscription(self, tenant: str, ident: str) -> None:
        """Forget a persisted subscription."""
        with self.write() as tx:
            tx.conn.execute("DELETE FROM subscriptions WHERE tenant=? AND id=?", (tenant, ident))


_FALLBACK_CHECKPOINT_PAGES = 10_000
_CHECKPOINT_INTERVAL_S = 0.2


class _Checkpointer:
    """Copies the WAL back into the database file from its own thread and connection.

    With SQLite's automatic checkpoints the commit that crosses 1000 WAL pages copies them and
    fsyncs the database file before the request can answer: ~15 µs per upserted entity at 100,000
    entities. A PASSIVE checkpoint here never blocks the writer or the readers, runs beside the next
    request's JSON parsing (SQLite releases the GIL), and durability is unchanged: committed
    transactions are in the WAL either way.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._wanted = threading.Event()
        self._stopped = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        """A transaction committed: checkpoint soon (the thread starts with the first write)."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._stopping:
                    self._thread = threading.Thread(target=self._run, name="broker-checkpoint",
                                                    daemon=True)
                    self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        """Finish the running checkpoint and end the thread."""
        with self._start_lock:
            self._stopping = True
        self._stopped.set()
        self._wanted.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(30)

    def _run(self) -> None:
        conn = _open(self._path)
        try:
            while True:
                self._wanted.wait()
                if self._stopping:
                    return
                self._wanted.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # e.g. disk full: the writer's fallback still bounds the WAL
                    logger.warning("WAL checkpoint failed: %s", exc)
                # Batches commit several times a second: one checkpoint per interval copies each hot
                # page (index and R-tree nodes) once instead of once per commit.
                if self._stopped.wait(_CHECKPOINT_INTERVAL_S):
                    return
        finally:
            conn.close()


class Writer:
    """Operations inside one write transaction."""

    def __init__(self, conn: sqlite3.Connection, tenants: set[str], history: Any = None) -> None:
        self.conn = conn
        self.history = history
        self._tenants = tenants
        self._next_seq: int | None = None
        self._new: dict[int, tuple[str, dict[str, Any], BBox | None]] = {}
        self._changed: dict[int, tuple[str, dict[str, Any], BBox | None, list[str]]] = {}

    def ensure_tenant(self, tenant: str) -> None:
        """Create a tenant if needed."""
        if tenant not in self._tenants:
            self.conn.execute("INSERT OR IGNORE INTO tenants VALUES (?)", (tenant,))
            self._tenants.add(tenant)

    def get_many(self, tenant: str, ids: Sequence[str]) -> dict[str, Stored]:
        """Existing entities among `ids`."""
        found: dict[str, Stored] = {}
        unique = list(dict.fromkeys(ids))
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for seq, ident, doc in self.conn.execute(
                    f"SELECT seq, id, doc FROM entities WHERE tenant=? AND id IN ({marks})",
                    (tenant, *chunk)):
                found[ident] = Stored(seq, orjson.loads(doc))
        return found

    def insert(self, tenant: str, doc: dict[str, Any], bbox: BBox | None) -> int:
        """Store a new entity; returns its sequence number (rows are written by `flush`)."""
        if self._next_seq is None:
            row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name='entities'").fetchone()
            self._next_seq = (row[0] if row else 0) + 1
        seq = self._next_seq
        self._next_seq += 1
        self._new[seq] = (tenant, doc, bbox)
        return seq

    def replace(self, tenant: str, seq: int, doc: dict[str, Any], bbox: BBox | None,
                old: dict[str, Any]) -> None:
        """Overwrite an entity, keeping its creation order."""
        if seq in self._new:
            self._new[seq] = (tenant, doc, bbox)
            return
        first = self._changed.get(seq)
        self._changed[seq] = (tenant, doc, bbox, first[3] if first else old["type"])

    def delete(self, tenant: str, seq: int, types: list[str]) -> None:
        """Remove an entity and its index rows."""
        if self._new.pop(seq, None) is not None:
            return
        changed = self._changed.pop(seq, None)
        self.conn.execute("DELETE FROM entities WHERE seq=?", (seq,))
        self.conn.executemany("DELETE FROM entity_types WHERE tenant=? AND type=? AND seq=?",
                              [(tenant, t, seq) for t in {*types, *(changed[3] if changed else ())}])
        self.conn.execute("DELETE FROM entity_geo WHERE seq=?", (seq,))
        self.conn.execute("DELETE FROM entity_points WHERE seq=?", (seq,))

    def flush(self) -> None:
        """Write pending inserts (100 rows per INSERT) and replacements (one executemany per table)."""
        if self.history is not None:
            self.history.flush(self.conn)  # the attribute instances recorded in this transaction
        dumps = orjson.dumps
        if self._new:
            new = self._new.items()
            bulk.insert(self.conn, "INSERT INTO entities(seq, tenant, id, doc)",
                        [(seq, t, d["id"], dumps(d).decode()) for seq, (t, d, _) in new])
            bulk.insert(self.conn, "INSERT OR IGNORE INTO entity_types",
                        [(t, kind, seq) for seq, (t, d, _) in new for kind in d["type"]])
            self._locate([(seq, b) for seq, (_, _, b) in new if b is not None])
        if self._changed:
            changed = self._changed.items()
            self.conn.executemany("UPDATE entities SET doc=? WHERE seq=?",
                                  [(dumps(d).decode(), seq) for seq, (_, d, _, _) in changed])
            retyped = [(seq, t, d, old) for seq, (t, d, _, old) in changed if d["type"] != old]
            self.conn.executemany("DELETE FROM entity_types WHERE tenant=? AND type=? AND seq=?",
                                  [(t, kind, seq) for seq, t, _, old in retyped for kind in old])
            self.conn.executemany("INSERT OR IGNORE INTO entity_types VALUES (?,?,?)",
                                  [(t, kind, seq) for seq, t, d, _ in retyped for kind in d["type"]])
            seqs = list(self._changed)
            bulk.delete(self.conn, "entity_geo", "seq", seqs)
            bulk.delete(self.conn, "entity_points", "seq", seqs)
            self._locate([(seq, b) for seq, (_, _, b, _) in changed if b is not None])
        self._new.clear()
        self._changed.clear()

    def _locate(self, boxes: list[tuple[int, BBox]]) -> None:
        """Index locations: Points (a zero-size box) in entity_points, other geometries in the R-tree."""
        bulk.insert(self.conn, "INSERT INTO entity_points",
                    [points.row(seq, b[0], b[1]) for seq, b in boxes if b[0] == b[2] and b[1] == b[3]])
        bulk.insert(self.conn, "INSERT INTO entity_geo(seq, minx, maxx, miny, maxy)",
                    [(seq, b[0], b[2], b[1], b[3]) for seq, b in boxes if b[0] != b[2] or b[1] != b[3]])


def _select(flt: SqlFilter, columns: str, ordered: bool = True) -> tuple[str, tuple[Any, ...]]:
    """SELECT over entities with the filter's joins, in creation order."""
    if flt.bbox is not None:
        return _select_in_box(flt, columns, ordered)
    joins: list[str] = []
    where = ["e.tenant=?"]
    params: list[Any] = []
    order = "e.seq"
    if flt.types and len(flt.types) == 1:
        # Driving the scan from the (tenant, type, seq) index keeps type+limit queries O(limit).
        joins.append("JOIN entity_types t ON t.seq=e.seq AND t.tenant=? AND t.type=?")
        params += [flt.tenant, flt.types[0]]
        order = "t.seq"
    params.append(flt.tenant)
    if flt.types and len(flt.types) > 1:
        marks = ",".join("?" * len(flt.types))
        where.append(f"e.seq IN (SELECT seq FROM entity_types WHERE tenant=? AND type IN ({marks}))")
        params += [flt.tenant, *flt.types]
    where.extend(flt.where)
    params.extend(flt.params)
    if flt.geo_join:  # the located entities: a row in the points index or in the R-tree
        sql = " UNION ALL ".join(f"SELECT {columns} FROM entities e {' '.join(joins)} JOIN {table} g "
                                 f"ON g.seq=e.seq WHERE {' AND '.join(where)}" for table in _LOCATIONS)
        return sql + (" ORDER BY 1" if ordered else ""), tuple(params) * len(_LOCATIONS)
    sql = f"SELECT {columns} FROM entities e {' '.join(joins)} WHERE {' AND '.join(where)}"
    if ordered:
        sql += f" ORDER BY {order}"
    return sql, tuple(params)


# Where locations are (seq, px, py): Points in the first, other geometries (px, py NULL) in the R-tree.
_LOCATIONS = ("entity_points", "entity_geo")


def _select_in_box(flt: SqlFilter, columns: str, ordered: bool) -> tuple[str, tuple[Any, ...]]:
    """Geo-prefiltered SELECT: the points index and the R-tree drive one scan each (CROSS JOIN fixes
    the loop order), in one compound SELECT."""
    assert flt.bbox is not None
    minx, miny, maxx, maxy = flt.bbox
    where = ["e.tenant=?"]
    params: list[Any] = [flt.tenant]
    if flt.types:
        marks = ",".join("?" * len(flt.types))
        where.append("EXISTS (SELECT 1 FROM entity_types t WHERE t.tenant=e.tenant "
                     f"AND t.type IN ({marks}) AND t.seq=e.seq)")
        params += flt.types
    where.extend(flt.where)
    params.extend(flt.params)
    rest = " AND ".join(where)
    points_from, from_params, in_box, box_params = points.in_box(flt.bbox)
    sql = (f"SELECT {columns} FROM {points_from} CROSS JOIN entities e ON e.seq=g.seq WHERE {in_box} AND {rest} "
           f"UNION ALL SELECT {columns} FROM {_LOCATIONS[1]} g CROSS JOIN entities e ON e.seq=g.seq "
           f"WHERE g.minx<=? AND g.maxx>=? AND g.miny<=? AND g.maxy>=? AND {rest}")
    if ordered:
        sql += " ORDER BY 1"
    return sql, (*from_params, *box_params, *params, maxx, minx, maxy, miny, *params)
