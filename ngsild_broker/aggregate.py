"""The aggregated temporal representation (NGSI-LD 4.5.19): per period, one value per method.

Periods of `aggrPeriodDuration` start at `timeAt` (after/between) or at the entity's oldest
in-window instance; without a duration one period spans the whole window. Empty periods are left
out. Numbers are aggregated in SQLite (one GROUP BY per attribute over the (series, time) index);
totalCount and distinctCount count every instance, numeric or not. stddev is the population
standard deviation.
"""

from __future__ import annotations

import math
from typing import Any

from ngsild_broker.temporal_query import TemporalEntity, TemporalQuery
from ngsild_broker.temporal_store import TemporalStore, format_time

_FAR = 10 ** 15  # a period longer than any window: "no aggrPeriodDuration"


def _start_of(store: TemporalStore, tq: TemporalQuery, sids: list[int]) -> int | None:
    if tq.lower is not None:
        return tq.lower
    firsts = []
    for sid in sids:
        found = store.instances(sid, column=tq.column, lower=None, upper=tq.upper, limit=1,
                                deleted=False)
        moment = found[0].time_of({"obs": "observedAt", "created": "createdAt",
                                   "modified": "modifiedAt"}[tq.column]) if found else None
        if moment is not None:
            firsts.append(moment)
    return min(firsts, default=None)


def aggregate_entity(store: TemporalStore, tq: TemporalQuery,
                     entity: TemporalEntity) -> dict[str, dict[str, Any]]:
    """Attribute IRI -> {"type", <method>: [[value, start, end], ...]} for one entity."""
    series = entity.series
    start = _start_of(store, tq, [sid for sid, _ in series])
    out: dict[str, dict[str, Any]] = {}
    if start is None:
        return out
    period = tq.aggr_period or _FAR
    numeric = any(m not in ("totalCount", "distinctCount") for m in tq.aggr_methods)
    for sid, attr in series:
        buckets: dict[int, dict[str, Any]] = {}
        if numeric:
            for b, n, total, squares, low, high in store.aggregate(sid, start, period, tq.lower,
                                                                    tq.upper, tq.column):
                mean = total / n
                variance = max(squares / n - mean * mean, 0.0)
                buckets[b] = {"sum": float(total), "sumsq": float(squares), "min": float(low),
                              "max": float(high), "avg": float(mean), "stddev": math.sqrt(variance)}
        if "totalCount" in tq.aggr_methods or "distinctCount" in tq.aggr_methods:
            for b, n, distinct in store.count_all(sid, start, period, tq.lower, tq.upper, tq.column):
                buckets.setdefault(b, {}).update(totalCount=n, distinctCount=distinct)
        if not buckets:
            continue
        rendered: dict[str, Any] = {"type": store.kind(sid)}
        for method in tq.aggr_methods:
            rows = []
            for b in sorted(buckets):
                if method not in buckets[b]:
                    continue
                begin = start + b * period
                end = begin + period if tq.aggr_period else (tq.upper if tq.upper is not None else None)
                rows.append([buckets[b][method], format_time(begin),
                             format_time(end) if end is not None else None])
            rendered[method] = rows
        out[attr] = rendered
    return out
