"""Temporal queries: parameters (GET and the POST query payload), entity selection, instance windows.

A query selects recorded entities by id, idPattern and type (from the history's entity table), reads
each attribute's instances inside the time window (`timerel`, `timeAt`, `endTimeAt` on
`timeproperty`), and keeps an entity when q and the geo-query hold on its in-window instances
(GS CIM 009 5.7.4.4: a q comparison holds when one in-window instance satisfies it).

Pagination of instances (6.3.10): at most `temporal_limit` instances per attribute (and at most
lastN); when an attribute reaches the limit the answer is partial (206): every attribute is cut at
the same instant and `Content-Range: date-time <start>-<end>/<size>` says which range is complete
(lastN below the limit is a complete answer: the client asked for exactly that many).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ngsild_broker import q as qlang
from ngsild_broker.contexts import Context
from ngsild_broker.entities import LOCATION, check_uri
from ngsild_broker.errors import bad_request, invalid_request
from ngsild_broker.query import parse_geo, parse_id_pattern, parse_limits, parse_q
from ngsild_broker.regex import compile_pattern
from ngsild_broker.temporal_store import Instance, TemporalStore, format_time, parse_time

TIMERELS = ("before", "after", "between")
TIME_PROPERTIES = {"observedAt": "obs", "createdAt": "created", "modifiedAt": "modified",
                   "deletedAt": "deleted"}
AGGR_METHODS = ("totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq")
_OPTIONS = {"temporalValues", "aggregatedValues", "sysAttrs", "normalized", "count", "concise",
            "keyValues", "simplified"}
_FORMATS = {"temporalValues", "aggregatedValues", "normalized", "simplified", "keyValues", "concise"}
_DURATION = re.compile(r"^P(?!$)(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?"
                       r"(?:(\d+(?:\.\d+)?)D)?(?:T(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                       r"(?:(\d+(?:\.\d+)?)S)?)?$")
_DURATION_MS = (365 * 86_400_000, 30 * 86_400_000, 7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000)
MAX_LAST_N = 100_000


@dataclass(slots=True)
class TemporalQuery:
    """A parsed temporal query or retrieval on one tenant."""

    tenant: str
    expand: Any
    ids: list[str] | None = None
    id_pattern: str | None = None
    types: list[str] | None = None
    attrs: list[str] | None = None
    q: Any = None
    geo: Any = None
    geoproperty: str = LOCATION
    timerel: str | None = None
    time_at: int | None = None
    end_time_at: int | None = None
    column: str = "obs"
    deleted: bool = False
    last_n: int | None = None
    fmt: str = "normalized"
    sys_attrs: bool = False
    aggr_methods: list[str] = field(default_factory=list)
    aggr_period: int | None = None
    dataset_ids: list[str] | None = None
    pick: list[str] | None = None  # compacted member names (id, type, attributes) kept
    omit: list[str] | None = None  # ... or left out
    limit: int = 20
    offset: int = 0
    count: bool = False
    local: bool = False

    @property
    def lower(self) -> int | None:
        """Inclusive lower bound of the window."""
        return self.time_at if self.timerel in ("after", "between") else None

    @property
    def upper(self) -> int | None:
        """Exclusive upper bound of the window."""
        if self.timerel == "before":
            return self.time_at
        return self.end_time_at if self.timerel == "between" else None

    @property
    def too_broad(self) -> bool:
        """Query Temporal Evolution needs type, attrs, q, geo-query or local=true (5.7.4.4)."""
        return not (self.types or self.attrs or self.q is not None or self.geo is not None or self.local)


def _split(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()] or None
    return [v.strip() for v in str(value).split(",") if v.strip()] or None


def parse_duration(text: str) -> int:
    """An ISO 8601 duration (aggrPeriodDuration) in milliseconds; months are 30 days, years 365."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise bad_request("Invalid aggrPeriodDuration", f"{text!r} is not an ISO 8601 duration")
    return int(sum(float(g) * unit for g, unit in zip(match.groups(), _DURATION_MS, strict=True) if g))


def _time(name: str, value: Any) -> int:
    moment = parse_time(value)
    if moment is None:
        raise bad_request(f"Invalid DateTime for {name}", f"{value!r} is not a DateTime")
    return moment


def _temporal_part(tq: TemporalQuery, get: Any) -> None:
    """timerel/timeAt/endTimeAt/timeproperty/lastN from a param dict or a TemporalQuery object."""
    timerel = get("timerel")
    if timerel is not None:
        if timerel not in TIMERELS:
            raise bad_request("Invalid value for timerel", f"{timerel!r}: before, after or between")
        if get("timeAt") is None:
            raise bad_request("Missing timeAt", "timerel needs timeAt")
        tq.timerel = timerel
        tq.time_at = _time("timeAt", get("timeAt"))
        if timerel == "between":
            if get("endTimeAt") is None:
                raise bad_request("Missing endTimeAt", "timerel=between needs endTimeAt")
            tq.end_time_at = _time("endTimeAt", get("endTimeAt"))
    elif get("timeAt") is not None:
        raise bad_request("Missing timerel", "timeAt needs timerel")
    prop = get("timeproperty")
    if prop is not None:
        if prop not in TIME_PROPERTIES:
            raise bad_request("Invalid value for timeproperty", f"{prop!r}")
        column = TIME_PROPERTIES[prop]
        tq.deleted = column == "deleted"
        tq.column = "created" if tq.deleted else column
    last_n = get("lastN")
    if last_n is not None:
        if isinstance(last_n, bool) or not (isinstance(last_n, int) or
                                            (isinstance(last_n, str) and last_n.isdigit())):
            raise bad_request("Invalid value for lastN", f"{last_n!r} is not a positive integer")
        tq.last_n = int(last_n)
        if not 0 < tq.last_n <= MAX_LAST_N:
            raise bad_request("Invalid value for lastN", f"{last_n!r}: 1 to {MAX_LAST_N}")


def _aggregation(tq: TemporalQuery, methods: Any, period: Any) -> None:
    if tq.fmt != "aggregatedValues":
        return
    names = _split(methods)
    if not names:
        raise bad_request("Missing aggrMethods", "aggregatedValues needs aggrMethods")
    for name in names:
        if name not in AGGR_METHODS:
            raise bad_request("Invalid aggrMethods", f"{name!r}: one of {', '.join(AGGR_METHODS)}")
    tq.aggr_methods = list(dict.fromkeys(names))
    tq.aggr_period = parse_duration(period) if period is not None else None
    if tq.aggr_period == 0:
        tq.aggr_period = None


def _format(tq: TemporalQuery, options: str | None, fmt: str | None) -> None:
    raw = _split(options) or []
    for option in raw:
        if option not in _OPTIONS:
            raise invalid_request("Invalid value for URI param /options/", option)
    tq.sys_attrs = "sysAttrs" in raw
    tq.count = "count" in raw
    chosen = [o for o in raw if o in ("temporalValues", "aggregatedValues")]
    if fmt is not None:
        if fmt not in _FORMATS:
            raise invalid_request("Invalid value for URI param /format/", fmt)
        chosen = [fmt] if fmt in ("temporalValues", "aggregatedValues") else []
    if len(set(chosen)) > 1:
        raise bad_request("Incoherent value for /options/ URI param",
                          "temporalValues and aggregatedValues exclude each other")
    tq.fmt = chosen[0] if chosen else "normalized"


def from_params(params: dict[str, str], tenant: str, ctx: Context, default_limit: int,
                max_limit: int) -> TemporalQuery:
    """A TemporalQuery from URI parameters (GET /temporal/entities and /temporal/entities/{id})."""
    tq = TemporalQuery(tenant=tenant, expand=ctx.expand)
    _format(tq, params.get("options"), params.get("format"))
    _temporal_part(tq, params.get)
    _aggregation(tq, params.get("aggrMethods"), params.get("aggrPeriodDuration"))
    ids = _split(params.get("id"))
    for ident in ids or ():
        check_uri(ident, "id")
    tq.ids = ids
    tq.id_pattern = parse_id_pattern(params.get("idPattern"))
    types = _split(params.get("type"))
    tq.types = [ctx.expand(t) for t in types] if types else None
    attrs = _split(params.get("attrs"))
    tq.attrs = [ctx.expand(a) for a in attrs] if attrs else None
    tq.q = parse_q(params["q"]) if "q" in params else None
    tq.geo = parse_geo(params.get("georel"), params.get("geometry"), params.get("coordinates"),
                       params.get("geoproperty"))
    tq.geoproperty = ctx.expand(params.get("geoproperty", "location"))
    tq.dataset_ids = _split(params.get("datasetId"))
    tq.count = tq.count or params.get("count") == "true"
    tq.limit, tq.offset = parse_limits(params, default_limit, max_limit, tq.count)
    tq.local = params.get("local") == "true"
    _projection(tq, params.get("pick"), params.get("omit"))
    return tq


def _projection(tq: TemporalQuery, pick: Any, omit: Any) -> None:
    """pick/omit (NGSI-LD 1.8 4.21): exclusive with attrs and with each other on a member."""
    tq.pick, tq.omit = _split(pick), _split(omit)
    if (tq.pick or tq.omit) and tq.attrs:
        raise bad_request("Invalid projection", "pick and omit cannot be combined with attrs")
    if tq.pick and tq.omit and set(tq.pick) & set(tq.omit):
        raise bad_request("Invalid projection", "a member cannot be both picked and omitted")


def from_body(body: Any, params: dict[str, str], tenant: str, ctx: Context, default_limit: int,
              max_limit: int) -> TemporalQuery:
    """A TemporalQuery from a POST /temporal/entityOperations/query payload."""
    if not isinstance(body, dict):
        raise bad_request("Invalid Payload Body", "the query must be a JSON object")
    if body.get("type", "Query") != "Query":
        raise bad_request("Invalid Payload Body", "the type of a query must be 'Query'")
    tq = TemporalQuery(tenant=tenant, expand=ctx.expand)
    _format(tq, params.get("options"), params.get("format"))
    temporal = body.get("temporalQ") or {}
    if not isinstance(temporal, dict):
        raise bad_request("Invalid temporalQ", "temporalQ must be a JSON object")
    _temporal_part(tq, temporal.get)
    aggr = body.get("aggrParams") or {}
    if not isinstance(aggr, dict):
        raise bad_request("Invalid aggrParams", "aggrParams must be a JSON object")
    if aggr and tq.fmt == "normalized" and "options" not in params:
        tq.fmt = "aggregatedValues"
    _aggregation(tq, aggr.get("aggrMethods", params.get("aggrMethods")),
                 aggr.get("aggrPeriodDuration", params.get("aggrPeriodDuration")))
    ids: list[str] = []
    types: list[str] = []
    patterns: list[str] = []
    for selector in body.get("entities") or []:
        if not isinstance(selector, dict):
            raise bad_request("Invalid Payload Body", "entities must be an array of objects")
        if "id" in selector:
            ids.append(check_uri(selector["id"], "id"))
        if "idPattern" in selector:
            patterns.append(str(selector["idPattern"]))
        if "type" in selector:
            types.extend(ctx.expand(t) for t in _split(selector["type"]) or [])
    tq.ids = ids or None
    tq.id_pattern = parse_id_pattern("|".join(f"(?:{p})" for p in patterns) or None)
    tq.types = types or None
    attrs = _split(body.get("attrs"))
    tq.attrs = [ctx.expand(a) for a in attrs] if attrs else None
    q_text = body.get("q")
    tq.q = parse_q(q_text) if isinstance(q_text, str) and q_text else None
    geo_q = body.get("geoQ") or {}
    if geo_q:
        tq.geo = parse_geo(geo_q.get("georel"), geo_q.get("geometry"), geo_q.get("coordinates"),
                           geo_q.get("geoproperty"))
        tq.geoproperty = ctx.expand(geo_q.get("geoproperty", "location"))
    tq.dataset_ids = _split(body.get("datasetId"))
    tq.count = tq.count or params.get("count") == "true"
    tq.limit, tq.offset = parse_limits(params, default_limit, max_limit, tq.count)
    tq.local = bool(body.get("local"))
    _projection(tq, body.get("pick"), body.get("omit"))
    return tq


# -- evaluation -------------------------------------------------------------------------------------
@dataclass(slots=True)
class TemporalEntity:
    """One entity of an answer: id, expanded types and per attribute its in-window instances."""

    id: str
    types: list[str]
    attrs: dict[str, list[Instance]]
    eid: int = 0
    series: list[tuple[int, str]] = field(default_factory=list)  # (sid, attribute IRI)


@dataclass(slots=True)
class TemporalResult:
    """Entities of an answer, the entity count (count=true) and the instance range when partial."""

    entities: list[TemporalEntity]
    total: int | None = None
    content_range: str | None = None


_Q_SAFETY = 10_000  # instances read per attribute to evaluate q / geo on an entity


def _dataset_ok(inst: Instance, dataset_ids: list[str] | None) -> bool:
    if dataset_ids is None:
        return True
    ds = inst.meta.get("datasetId")
    return (ds in dataset_ids) or (ds is None and "@none" in dataset_ids)


def _window(store: TemporalStore, tq: TemporalQuery, sid: int, *, last: int | None = None,
            limit: int | None = None) -> list[Instance]:
    found = store.instances(sid, column=tq.column, lower=tq.lower, upper=tq.upper, last=last,
                            limit=limit, deleted=tq.deleted)
    if tq.dataset_ids is not None:
        found = [i for i in found if _dataset_ok(i, tq.dataset_ids)]
    return found


def _q_holds(node: Any, instances: dict[str, list[Instance]], entity: dict[str, Any], expand: Any) -> bool:
    """q on in-window instances: a comparison holds when one instance satisfies it."""
    if isinstance(node, qlang.And):
        return all(_q_holds(c, instances, entity, expand) for c in node.children)
    if isinstance(node, qlang.Or):
        return any(_q_holds(c, instances, entity, expand) for c in node.children)
    path = node.path
    if path.attr in qlang.ENTITY_MEMBERS and not path.subs and path.meta is None:
        return node.matches(entity, expand)
    iri = expand(path.attr)
    found = instances.get(iri) or []
    if not found:
        return node.matches(entity, expand)
    return any(node.matches({**entity, iri: inst.attribute()}, expand) for inst in found)


def _q_attrs(node: Any, expand: Any) -> set[str]:
    if isinstance(node, (qlang.And, qlang.Or)):
        return set().union(*(_q_attrs(c, expand) for c in node.children))
    if node.path.attr in qlang.ENTITY_MEMBERS:
        return set()
    return {expand(node.path.attr)}


def select(store: TemporalStore, tq: TemporalQuery, single: str | None = None) -> list[TemporalEntity]:
    """Recorded entities matching the query's id/type/q/geo filters (no instances yet)."""
    if single is not None:
        found = store.entity(tq.tenant, single)
        candidates = [(found[0], single, found[1])] if found else []
        all_series = {found[0]: store.series(found[0])} if found else {}
    else:
        candidates = list(store.entities(tq.tenant))
        all_series = store.tenant_series(tq.tenant)
    pattern = compile_pattern(tq.id_pattern) if tq.id_pattern else None
    ids = set(tq.ids) if tq.ids else None
    types = set(tq.types) if tq.types else None
    kept = []
    for eid, ident, etypes in candidates:
        if ids is not None and ident not in ids:
            continue
        if pattern is not None and not pattern.search(ident):
            continue
        if types is not None and not types.intersection(etypes):
            continue
        wanted = [(sid, attr) for sid, attr in all_series.get(eid, ()) if tq.attrs is None or attr in tq.attrs]
        kept.append(TemporalEntity(ident, etypes, {}, eid, wanted))
    if single is None:  # a query answers entities with instances in the window
        if tq.dataset_ids is None:
            live = store.sids_in_window([sid for e in kept for sid, _ in e.series], tq.column, tq.lower,
                                        tq.upper, tq.deleted)
        else:  # datasetId is filtered after reading
            live = {sid for e in kept for sid, _ in e.series if _window(store, tq, sid)}
        kept = [e for e in kept if any(sid in live for sid, _ in e.series)]
    out = []
    for entity in kept:
        series = {attr: sid for sid, attr in all_series.get(entity.eid, ())}
        if tq.q is not None or tq.geo is not None:
            needed = _q_attrs(tq.q, tq.expand) if tq.q is not None else set()
            if tq.geo is not None:
                needed.add(tq.geoproperty)
            windows = {iri: _window(store, tq, series[iri], limit=_Q_SAFETY) for iri in needed if iri in series}
            base = {"id": entity.id, "type": entity.types}
            if tq.q is not None and not _q_holds(tq.q, windows, base, tq.expand):
                continue
            if tq.geo is not None and not any(
                    inst.kind == "GeoProperty" and not inst.deleted and tq.geo.matches(inst.value)
                    for inst in windows.get(tq.geoproperty, [])):
                continue
        out.append(entity)
    return out


def fill(store: TemporalStore, tq: TemporalQuery, entities: list[TemporalEntity],
         temporal_limit: int) -> str | None:
    """Read each entity's in-window instances; returns the Content-Range when the answer is partial."""
    per_attr: int | None = min(tq.last_n, temporal_limit) if tq.last_n is not None else temporal_limit
    if tq.fmt == "aggregatedValues":
        per_attr = None  # aggregation reads through SQL; nothing is listed
    hits: list[int] = []  # for each attribute that reached the limit: its farthest instance time
    for entity in entities:
        for sid, attr in entity.series:
            if per_attr is None:
                entity.attrs[attr] = []
                continue
            if tq.last_n is not None:
                found = _window(store, tq, sid, last=per_attr)
                edge = found[0] if found else None
            else:
                found = _window(store, tq, sid, limit=per_attr)
                edge = found[-1] if found else None
            if not found:
                continue
            entity.attrs[attr] = found
            if len(found) >= temporal_limit and edge is not None:
                moment = _time_of(edge, tq)
                if moment is not None:
                    hits.append(moment)
    if not hits or per_attr is None:
        return None
    descending = tq.last_n is not None
    cut = max(hits) if descending else min(hits)
    for entity in entities:
        for attr, found in entity.attrs.items():
            entity.attrs[attr] = [i for i in found if (t := _time_of(i, tq)) is None or
                                  (t >= cut if descending else t <= cut)]
    times = [t for e in entities for f in e.attrs.values() for i in f if (t := _time_of(i, tq)) is not None]
    if descending:
        start = tq.upper if tq.upper is not None else max(times, default=cut)
        return f"date-time {format_time(start)}-{format_time(cut)}/{tq.last_n}"
    start = tq.lower if tq.lower is not None else min(times, default=cut)
    return f"date-time {format_time(start)}-{format_time(cut)}/*"


def _time_of(inst: Instance, tq: TemporalQuery) -> int | None:
    return inst.time_of("deletedAt" if tq.deleted else {"obs": "observedAt", "created": "createdAt",
                                                         "modified": "modifiedAt"}[tq.column])
