"""The database format version (ngsild_broker/sqlite/schema.py): a database written before Points
moved out of the R-tree (version 0) is migrated when opened, and answers geo-queries as before; one
written before the history's keys became WITHOUT ROWID tables (version 1) answers temporal queries as
before and keeps recording; one of a newer version is refused with a message that names it."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from ngsild_broker import BrokerSettings
from ngsild_broker.app import create_app
from ngsild_broker.storage import StoreFormatError

_SQUARE = "[[[27.40,42.40],[27.60,42.40],[27.60,42.60],[27.40,42.60],[27.40,42.40]]]"
_QUERIES = [
    {"georel": "within", "geometry": "Polygon", "coordinates": _SQUARE, "local": "true"},
    {"georel": "intersects", "geometry": "Polygon", "coordinates": _SQUARE, "local": "true"},
    {"type": "Spot", "georel": "near;maxDistance==3000", "geometry": "Point", "coordinates": "[27.5,42.5]"},
    {"type": "Spot", "georel": "near;minDistance==3000", "geometry": "Point", "coordinates": "[27.5,42.5]"},
    {"type": "Area", "georel": "disjoint", "geometry": "Point", "coordinates": "[27.5,42.5]"},
]


def _entities() -> list[dict[str, Any]]:
    spots = [{"id": f"urn:ngsi-ld:Spot:{n}", "type": "Spot",
              "location": {"type": "GeoProperty", "value": {"type": "Point",
                                                             "coordinates": [27.38 + n * 0.01, 42.5]}}}
             for n in range(30)]
    square = [[[27.49, 42.49], [27.51, 42.49], [27.51, 42.51], [27.49, 42.51], [27.49, 42.49]]]
    area = {"id": "urn:ngsi-ld:Area:1", "type": "Area",
            "location": {"type": "GeoProperty", "value": {"type": "Polygon", "coordinates": square}}}
    return [*spots, area]


async def _answers(db: Path, create: bool) -> list[list[str]]:
    app = create_app(BrokerSettings(db_path=db))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://broker/ngsi-ld/v1") as http:
        if create:
            assert (await http.post("/entityOperations/create", json=_entities())).status_code == 201
        out = []
        for params in _QUERIES:
            r = await http.get("/entities", params={**params, "limit": "100"})
            assert r.status_code == 200, r.text
            out.append([e["id"] for e in r.json()])
    return out


def _as_version_0(db: Path) -> None:
    """The layout the broker wrote before version 1: Points in the R-tree with +px/+py."""
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO entity_geo SELECT seq, px, px, py, py, px, py FROM entity_points")
        conn.execute("DROP TABLE entity_points")
        conn.execute("PRAGMA user_version=0")


@pytest.mark.integration
def test_a_version_0_database_is_migrated_at_open_and_answers_alike(tmp_path: Path) -> None:
    db = tmp_path / "broker.sqlite"
    before = asyncio.run(_answers(db, create=True))
    assert [len(ids) for ids in before] == [22, 22, 7, 23, 0]  # 0.01° of longitude: 820 m
    _as_version_0(db)
    assert asyncio.run(_answers(db, create=False)) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        assert conn.execute("SELECT count(*) FROM entity_points").fetchone()[0] == 30
        assert conn.execute("SELECT count(*), count(px) FROM entity_geo").fetchone() == (1, 0)


async def _history(db: Path, writes: list[list[dict[str, Any]]]) -> list[Any]:
    """Upsert each batch of `writes`, then the temporal answers of the whole history."""
    app = create_app(BrokerSettings(db_path=db))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://broker/ngsi-ld/v1") as http:
        for batch in writes:
            r = await http.post("/entityOperations/upsert", json=batch, params={"options": "update"})
            assert r.status_code in (201, 204), r.text
        out = []
        for path, params in [("/temporal/entities", {"type": "Spot", "limit": "100"}),
                             ("/temporal/entities/urn:ngsi-ld:Spot:1", {}),
                             ("/temporal/entities/urn:ngsi-ld:Spot:2", {"options": "temporalValues"})]:
            r = await http.get(path, params=params)
            assert r.status_code == 200, r.text
            out.append(r.json())
    return out


def _reading(n: int, value: float, observed: str) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Spot:{n}", "type": "Spot",
            "speed": {"type": "Property", "value": value, "observedAt": observed},
            "name": {"type": "Property", "value": f"spot {n}"}}


def _as_version_1(db: Path) -> None:
    """The layout of the history's keys before version 2: rowid tables with a UNIQUE index."""
    with sqlite3.connect(db) as conn:
        conn.executescript("""
            CREATE TABLE e1(eid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, id TEXT NOT NULL,
                            types TEXT NOT NULL, UNIQUE(tenant, id));
            INSERT INTO e1 SELECT eid, tenant, id, types FROM t_entities;
            DROP TABLE t_entities; ALTER TABLE e1 RENAME TO t_entities;
            CREATE TABLE s1(sid INTEGER PRIMARY KEY, eid INTEGER NOT NULL, aid INTEGER NOT NULL,
                            UNIQUE(eid, aid));
            INSERT INTO s1 SELECT sid, eid, aid FROM t_series;
            DROP TABLE t_series; ALTER TABLE s1 RENAME TO t_series;
            PRAGMA user_version=1;""")


@pytest.mark.integration
def test_a_version_1_database_is_migrated_at_open_answers_alike_and_keeps_recording(tmp_path: Path) -> None:
    db = tmp_path / "broker.sqlite"
    first = [[_reading(n, 10.0 + n, "2026-11-28T10:00:00Z") for n in range(3)],
             [_reading(n, 20.0 + n, "2026-11-28T11:00:00Z") for n in range(1, 3)]]
    before = asyncio.run(_history(db, first))
    assert len(before[0]) == 3 and len(before[1]["speed"]) == 2
    _as_version_1(db)
    assert asyncio.run(_history(db, [])) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        for table in ("t_entities", "t_series"):
            sql = conn.execute("SELECT sql FROM sqlite_master WHERE name=?", (table,)).fetchone()[0]
            assert sql.endswith("WITHOUT ROWID")
    # New entities and series after the migration get ids of their own: old histories are unchanged.
    later = asyncio.run(_history(db, [[_reading(n, 30.0 + n, "2026-11-28T12:00:00Z") for n in (2, 3)]]))
    assert later[1] == before[1]
    assert len(later[0]) == 4
    speeds = later[2]["speed"]["values"]
    assert sorted(v[0] for v in speeds) == [12.0, 22.0, 32.0]


@pytest.mark.integration
def test_a_newer_database_is_refused_with_its_name_and_version(tmp_path: Path) -> None:
    db = tmp_path / "newer.sqlite"
    asyncio.run(_answers(db, create=True))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version=7")
    with pytest.raises(StoreFormatError, match="format version 7"):
        create_app(BrokerSettings(db_path=db))
    served = subprocess.run([sys.executable, "-m", "ngsild_broker", "--port", "0", "--db", str(db)],
                            capture_output=True, text=True, timeout=60)
    assert served.returncode == 2
    assert f"error: database {db} has format version 7" in served.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 7  # untouched
