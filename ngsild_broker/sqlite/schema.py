"""The entity database's tables and its format version (`PRAGMA user_version`).

Version 1 (2026-12, issue 15) moved Point locations from the R-tree to `entity_points`
(sqlite/points.py); version 2 (issue 15, second pass) keys the history's `t_entities` and `t_series`
by (tenant, id) and (entity, attribute) in WITHOUT ROWID tables (temporal_store.KEY_TABLES). A
database of an older version is migrated when it is opened; one of a newer version than this broker
knows is refused (StoreFormatError), never half-read.
"""

from __future__ import annotations

import sqlite3

from ngsild_broker import temporal_store
from ngsild_broker.sqlite import points
from ngsild_broker.storage import StoreFormatError

VERSION = 2
TABLES = """
CREATE TABLE IF NOT EXISTS tenants(name TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS entities(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    doc TEXT NOT NULL,
    UNIQUE(tenant, id)
);
CREATE TABLE IF NOT EXISTS entity_types(
    tenant TEXT NOT NULL, type TEXT NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY(tenant, type, seq)
) WITHOUT ROWID;
-- Locations other than Points (bounding boxes); +px/+py are only set in version-0 databases.
CREATE VIRTUAL TABLE IF NOT EXISTS entity_geo USING rtree(seq, minx, maxx, miny, maxy, +px, +py);
CREATE TABLE IF NOT EXISTS contexts(
    url TEXT PRIMARY KEY, local_id TEXT NOT NULL, kind TEXT NOT NULL, body BLOB NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS subscriptions(
    tenant TEXT NOT NULL, id TEXT NOT NULL, doc BLOB NOT NULL, PRIMARY KEY(tenant, id)
);
""" + points.SCHEMA


def prepare(conn: sqlite3.Connection, name: str) -> None:
    """Create the tables of a new database, migrate an older one, refuse a newer one (`name`: for
    the message)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > VERSION:
        raise StoreFormatError(f"database {name} has format version {version}; this broker reads "
                               f"versions up to {VERSION} (a newer broker wrote it): use that broker "
                               "or another database file")
    existed = conn.execute("SELECT 1 FROM sqlite_master WHERE name='entities'").fetchone() is not None
    conn.executescript(TABLES)
    if version == VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if existed and version < 1:  # version 0: Points were R-tree rows with their exact coordinates in +px/+py
            moved = conn.execute("SELECT seq, px, py FROM entity_geo WHERE px IS NOT NULL").fetchall()
            conn.executemany("INSERT INTO entity_points VALUES (?,?,?,?)",
                             [points.row(seq, x, y) for seq, x, y in moved])
            conn.execute("DELETE FROM entity_geo WHERE px IS NOT NULL")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name='t_entities'").fetchone() is not None:
            _rekey_history(conn)
        conn.execute(f"PRAGMA user_version={VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _rekey_history(conn: sqlite3.Connection) -> None:
    """Versions 0 and 1: the history's entity and series keys were rowid tables with a UNIQUE index;
    their rows move to the WITHOUT ROWID tables (same ids: the instances keep their series)."""
    conn.execute("ALTER TABLE t_entities RENAME TO t_entities_v1")
    conn.execute("ALTER TABLE t_series RENAME TO t_series_v1")
    for statement in temporal_store.KEY_TABLES:
        conn.execute(statement)
    conn.execute("INSERT INTO t_entities(tenant, id, eid, types) SELECT tenant, id, eid, types FROM t_entities_v1")
    conn.execute("INSERT INTO t_series(eid, aid, sid) SELECT eid, aid, sid FROM t_series_v1")
    conn.execute("DROP TABLE t_entities_v1")
    conn.execute("DROP TABLE t_series_v1")
