"""Entity queries on the SQLite store: the SQL plan first, then the filters SQL cannot express in Python."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ngsild_broker.entities import LOCATION
from ngsild_broker.instances import first
from ngsild_broker.sqlite.where import Plan, plan
from ngsild_broker.storage import EntityFilter, QueryResult

if TYPE_CHECKING:
    from ngsild_broker.sqlite.store import SqliteStore


def run_query(store: SqliteStore, flt: EntityFilter, limit: int, offset: int, count: bool) -> QueryResult:
    """A page of matches in creation order (and their number when `count`)."""
    p = plan(flt)
    if p.python_q is None and flt.geo is None:
        total = store.count_sql(p.sql) if count else None
        docs = [s.doc for s in store.scan_sql(p.sql, limit, offset)] if limit else []
        return QueryResult(docs, total)
    if p.on_location and p.python_q is None:
        return _located(store, p, flt, limit, offset, count)
    page: list[dict[str, Any]] = []
    matched = 0
    for doc in _candidates(store, p, flt):
        if offset <= matched < offset + limit:
            page.append(doc)
        matched += 1
        if not count and matched >= offset + limit:
            break
    return QueryResult(page, matched if count else None)


def matching(store: SqliteStore, flt: EntityFilter) -> Iterator[dict[str, Any]]:
    """Every match in creation order, streamed."""
    p = plan(flt)
    if p.python_q is None and flt.geo is None:
        return (s.doc for s in store.scan_sql(p.sql))
    return _candidates(store, p, flt)


def _located(store: SqliteStore, p: Plan, flt: EntityFilter, limit: int, offset: int,
             count: bool) -> QueryResult:
    """Geo-query on `location`: points are tested from the points index's exact coordinates in one vectorized call."""
    rows = store.scan_points(p.sql)
    points = [(seq, x, y) for seq, x, y in rows if x is not None]
    others = [seq for seq, x, _ in rows if x is None]
    verdicts = flt.geo.matches_many([{"type": "Point", "coordinates": [x, y]} for _, x, y in points])
    matched = [seq for (seq, _, _), ok in zip(points, verdicts, strict=True) if ok]
    for stored in store.by_seqs(others):
        if flt.geo.matches_entity(stored.doc, lambda _: LOCATION):
            matched.append(stored.seq)
    matched.sort()
    page = matched[offset:offset + limit]
    return QueryResult([s.doc for s in store.by_seqs(page)], len(matched) if count else None)


def _candidates(store: SqliteStore, p: Plan, flt: EntityFilter) -> Iterator[dict[str, Any]]:
    """Filters SQL cannot express, evaluated on each SQL match in creation order."""
    chunk: list[dict[str, Any]] = []
    for stored in store.scan_sql(p.sql):
        if p.python_q is None or p.python_q.matches(stored.doc, flt.expand):
            if flt.geo is None:
                yield stored.doc
                continue
            chunk.append(stored.doc)
            if len(chunk) >= 256:
                yield from _geo_matching(chunk, flt)
                chunk = []
    if chunk:
        yield from _geo_matching(chunk, flt)


def _geo_matching(docs: list[dict[str, Any]], flt: EntityFilter) -> Iterator[dict[str, Any]]:
    located = []
    for doc in docs:
        attr = first(doc.get(flt.geoproperty))
        if isinstance(attr, dict) and attr.get("type") == "GeoProperty":
            located.append((doc, attr["value"]))
    verdicts = flt.geo.matches_many([g for _, g in located])
    yield from (doc for (doc, _), ok in zip(located, verdicts, strict=True) if ok)
