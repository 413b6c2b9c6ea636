"""The broker's storage boundary (ngsild_broker/storage.py): SQL lives only in the SQLite store, and the
API layer runs unchanged on another EntityStore (tests/memory_store.py, dicts and no SQL)."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from ngsild_broker import BrokerSettings
from ngsild_broker.app import create_app
from tests.memory_store import MemoryStore

PACKAGE = Path(__file__).resolve().parent.parent / "ngsild_broker"
# The stores: the SQLite entity store and the temporal store (which shares its connection).
STORE_MODULES = ("sqlite/", "temporal_store.py")
COMPOSITION_ROOT = "app.py"  # the one module that picks the store
_SQL = re.compile(r"\b(SELECT|INSERT|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX|VIRTUAL)|PRAGMA|"
                  r"json_each|json_type|json_extract|julianday)\b")
_EXECUTE = {"execute", "executemany", "executescript"}


def boundary_violations(package: Path) -> list[str]:
    """`file:line what` for every SQL string, execute() call, sqlite3 import or SQLite-store import
    outside the store modules (docstrings may name SQL: they describe, they build nothing)."""
    found = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if rel.startswith(STORE_MODULES):
            continue
        tree = ast.parse(path.read_text(), rel)
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            where = f"{rel}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and _SQL.search(node.value):
                found.append(f"{where} SQL text {_SQL.search(node.value).group(0)!r}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in _EXECUTE:
                found.append(f"{where} .{node.func.attr}()")
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                for name in names:
                    if name == "sqlite3" or (name.startswith("ngsild_broker.sqlite")
                                             and rel != COMPOSITION_ROOT):
                        found.append(f"{where} imports {name}")
    return found


def test_sql_only_inside_the_store_modules() -> None:
    assert boundary_violations(PACKAGE) == []


def test_the_scan_sees_sql_outside_the_stores(tmp_path: Path) -> None:
    # The scan itself: a module of the API layer that builds SQL or talks to SQLite is reported.
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "sqlite" / "store.py").write_text('SQL = "SELECT doc FROM entities"\n')
    (tmp_path / "api_x.py").write_text(
        "import sqlite3\nfrom ngsild_broker.sqlite.where import plan\n"
        "def f(conn, w):\n    w.append(\"EXISTS (SELECT 1 FROM json_each(e.doc))\")\n"
        "    conn.execute('x')\n")
    assert sorted(boundary_violations(tmp_path)) == [
        "api_x.py:1 imports sqlite3", "api_x.py:2 imports ngsild_broker.sqlite.where",
        "api_x.py:4 SQL text 'SELECT'", "api_x.py:5 .execute()"]


# -- the same API answers on the SQLite store and on a store without SQL ------------------------------

K = "urn:ngsi-ld:Kiosk:"


def _entities() -> list[dict[str, Any]]:
    out = []
    for n in range(25):
        body: dict[str, Any] = {
            "id": f"{K}{n:03d}", "type": ["Kiosk", "Shop"] if n % 4 == 0 else "Kiosk",
            "n": {"type": "Property", "value": n},
            "label": {"type": "Property", "value": f"item {n}"},
            "owner": {"type": "Relationship", "object": f"urn:ngsi-ld:Owner:{n % 3}"},
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [27.40 + n * 0.01, 42.50]}},
        }
        if n % 5 == 0:
            body["extra"] = {"type": "Property", "value": {"depth": n}}
            body["scope"] = "/Burgas/Centre" if n % 10 == 0 else "/Sofia"
        out.append(body)
    return out


_POLYGON = "[[[27.445,42.4],[27.495,42.4],[27.495,42.6],[27.445,42.6],[27.445,42.4]]]"
_QUERIES: list[dict[str, str]] = [
    {"type": "Kiosk", "limit": "100"},
    {"type": "Kiosk", "q": "n>=10;n<15"},
    {"type": "Kiosk", "q": 'label~="item 1."'},  # a regex: Python, not SQL, in the SQLite store
    {"type": "Kiosk", "q": 'owner=="urn:ngsi-ld:Owner:1"|extra[depth]>=20'},
    {"type": "Kiosk", "q": "!extra;n<8"},
    {"type": "Kiosk", "georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": "[27.45,42.5]"},
    {"type": "Kiosk", "georel": "within", "geometry": "Polygon", "coordinates": _POLYGON, "q": "n!=6"},
    {"idPattern": ".*:00[0-9]$", "count": "true", "limit": "3", "offset": "2"},
    {"attrs": "extra", "limit": "100"},
    {"type": "Kiosk;Shop", "limit": "100"},
    {"type": "Kiosk", "scopeQ": "/Burgas/#"},
    {"id": f"{K}003,{K}017,{K}404", "type": "Kiosk"},
]


async def _answers(store: Any) -> list[tuple[int, Any]]:
    app = create_app(BrokerSettings(temporal=False), store=store)
    out: list[tuple[int, Any]] = []
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://broker/ngsi-ld/v1") as http:
        created = await http.post("/entityOperations/create", json=_entities())
        assert created.status_code == 201, created.text
        for params in _QUERIES:
            r = await http.get("/entities", params=params)
            out.append((r.status_code, [r.json(), r.headers.get("ngsild-results-count")]))
        r = await http.post("/entityOperations/query", json={
            "type": "Query", "entities": [{"type": "Kiosk"}], "q": "n<12",
            "geoQ": {"georel": "near;minDistance==1500", "geometry": "Point", "coordinates": [27.40, 42.5]}})
        out.append((r.status_code, r.json()))
        patched = await http.patch(f"/entities/{K}007/attrs", json={"n": {"type": "Property", "value": 70}})
        assert patched.status_code == 204, patched.text
        purged = await http.delete("/entities", params={"type": "Kiosk", "q": "n<3"})
        assert purged.status_code == 204, purged.text
        for path, params in [("/entities", {"type": "Kiosk", "q": "n>60|n<4"}), (f"/entities/{K}007", {}),
                             ("/types", {}), ("/attributes", {"details": "true"})]:
            r = await http.get(path, params=params)
            body = r.json()
            if path == "/types":
                body.pop("id")  # a fresh urn:ngsi-ld:EntityTypeList:<uuid> each time
            out.append((r.status_code, body))
    return out


def _ids(answer: tuple[int, Any]) -> list[str]:
    return [e["id"] for e in answer[1][0]]


@pytest.mark.integration
def test_the_api_answers_alike_on_sqlite_and_on_a_store_without_sql() -> None:
    on_sqlite = asyncio.run(_answers(None))
    in_memory = asyncio.run(_answers(MemoryStore()))
    assert on_sqlite == in_memory
    # ...and the answers are the expected ones, not two equally empty lists.
    assert _ids(on_sqlite[1]) == [f"{K}{n:03d}" for n in range(10, 15)]
    assert _ids(on_sqlite[2]) == [f"{K}{n:03d}" for n in range(10, 20)]
    assert _ids(on_sqlite[4]) == [f"{K}{n:03d}" for n in (1, 2, 3, 4, 6, 7)]
    assert _ids(on_sqlite[5]) == [f"{K}{n:03d}" for n in range(3, 8)]  # 0.01° of longitude: 820 m
    assert _ids(on_sqlite[6]) == [f"{K}{n:03d}" for n in (5, 7, 8, 9)]
    assert _ids(on_sqlite[7]) == [f"{K}{n:03d}" for n in (2, 3, 4)] and on_sqlite[7][1][1] == "10"
    assert _ids(on_sqlite[9]) == [f"{K}{n:03d}" for n in range(0, 25, 4)]
    assert _ids(on_sqlite[10]) == [f"{K}{n:03d}" for n in (0, 10, 20)]
    assert [e["id"] for e in on_sqlite[12][1]] == [f"{K}{n:03d}" for n in range(2, 12)]
    assert [e["id"] for e in on_sqlite[13][1]] == [f"{K}{n:03d}" for n in (3, 7)]
