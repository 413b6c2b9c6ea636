"""An EntityFilter as SQL over `entities e`: what SQLite can evaluate exactly, and what is left to Python."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ngsild_broker.entities import LOCATION
from ngsild_broker.sqlite.q_sql import to_sql
from ngsild_broker.storage import EntityFilter


@dataclass(slots=True)
class SqlFilter:
    """A query as SQL over `entities e`: optional type join, location box and WHERE fragments."""

    tenant: str
    types: Sequence[str] | None = None
    bbox: tuple[float, float, float, float] | None = None
    geo_join: bool = False
    where: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()


@dataclass(slots=True)
class Plan:
    """The SQL part of a filter and the q tree SQL cannot express (None: all of q is in `sql`)."""

    sql: SqlFilter
    python_q: Any
    on_location: bool  # a geo-query on `location`: the location index prefilters it


def plan(flt: EntityFilter) -> Plan:
    """Everything SQL can do in SQL; the rest (q SQL cannot express, exact geo) is the caller's."""
    where: list[str] = []
    params: list[Any] = []
    if flt.ids:
        where.append(f"e.id IN ({','.join('?' * len(flt.ids))})")
        params += flt.ids
    if flt.id_pattern:
        where.append("regexp(?, e.id)")
        params.append(flt.id_pattern)
    if flt.attrs:
        where.append("(" + " OR ".join(_has_member_sql(a, params) for a in flt.attrs) + ")")
    if flt.type_groups:
        sql, type_params = types_sql(flt.type_groups, flt.tenant)
        where.append(sql)
        params += type_params
    if flt.scope_q:
        sql, scope_params = scope_sql(flt.scope_q)
        where.append(sql)
        params += scope_params
    python_q = None
    if flt.q is not None:
        translated = to_sql(flt.q, flt.expand, doc_column="e.doc")
        if translated is None:
            python_q = flt.q
        else:
            where.append(f"({translated[0]})")
            params += translated[1]
    on_location = flt.geo is not None and flt.geoproperty == LOCATION
    sql_filter = SqlFilter(flt.tenant, flt.types, bbox=flt.geo.bbox() if on_location else None,
                           where=tuple(where), params=tuple(params), geo_join=on_location)
    return Plan(sql_filter, python_q, on_location)


def _has_member_sql(iri: str, params: list[Any]) -> str:
    """SQL true when the document has the member `iri`; every character of `iri` is a parameter."""
    if '"' in iri or "\\" in iri or not iri.isprintable():
        # A JSON path cannot quote these: compare keys instead (slower, exact).
        params.append(iri)
        return "EXISTS (SELECT 1 FROM json_each(e.doc) WHERE json_each.key = ?)"
    params.append(f'$."{iri}"')
    return "json_type(e.doc, ?) IS NOT NULL"


def types_sql(groups: list[list[str]], tenant: str) -> tuple[str, list[str]]:
    """A WHERE fragment over `entities e` for type groups that need AND (see type_query)."""
    params: list[str] = []
    ors = []
    for group in groups:
        ands = []
        for etype in group:
            ands.append("e.seq IN (SELECT seq FROM entity_types WHERE tenant=? AND type=?)")
            params += [tenant, etype]
        ors.append("(" + " AND ".join(ands) + ")")
    return "(" + " OR ".join(ors) + ")", params


def scope_sql(query: list[list[str]], doc_column: str = "e.doc") -> tuple[str, list[str]]:
    """A WHERE fragment for scopeQ: some OR-branch whose every term matches one of the entity's scopes."""
    params: list[str] = []
    branches = []
    for terms in query:
        conds = []
        for regex in terms:
            conds.append(f"EXISTS (SELECT 1 FROM json_each({doc_column}, '$.scope') AS sc "
                         "WHERE regexp(?, sc.value))")
            params.append(regex)
        branches.append("(" + " AND ".join(conds) + ")")
    return "(" + " OR ".join(branches) + ")", params
