"""Raw records -> data_models entities: declarative tables, one id function per feed, no I/O.

Public surface::

    map_records(feed_name, records) -> Iterator[Mapped | Rejected]   # one fetch, equal ids merged
    MAPPERS[feed_name]  -> FeedMapper(feed, model, map, id_rule)      # per-feed mapper
    map_one(mapper, record) -> Mapped | Rejected                       # one record

``Mapped(entity, history, source_crs, notes, record)``: the current state, one snapshot per
reading, the source CRS, what was left out and why. ``Rejected(source, record, reason, payload)``.
See :mod:`adapter.mapping.base` for the merge rule and the table rows (:class:`Attr`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from adapter.mapping.base import (
    Attr,
    FeedMapper,
    Mapped,
    Rejected,
    iter_mapped,
    map_feed,
    map_one,
    merge,
)
from adapter.mapping.smartburgas_districts import DISTRICTS
from adapter.mapping.smartburgas_environment import AIR_QUALITY
from adapter.mapping.smartburgas_parking import CAR_PARKS, PAID_PARKING_ZONES
from adapter.mapping.smartburgas_poi import CAMERAS, PAY_MACHINES, TAXI_RANKS, WASTE_CENTRES
from adapter.mapping.smartburgas_transport import EV_CHARGERS, TRAFFIC
from adapter.sources.base import RawRecord

MAPPERS: Mapping[str, FeedMapper] = {m.feed: m for m in (
    AIR_QUALITY, TRAFFIC, CAR_PARKS, WASTE_CENTRES, CAMERAS, PAY_MACHINES, EV_CHARGERS, TAXI_RANKS,
    PAID_PARKING_ZONES, DISTRICTS,
)}
"""Smart Burgas feed name (``adapter.sources.smartburgas_feeds.FEEDS`` keys) -> its mapper."""


def map_records(feed_name: str, records: Iterable[RawRecord]) -> Iterator[Mapped | Rejected]:
    """Map one fetch of a feed; records with the same entity id are merged (see base.merge)."""
    try:
        mapper = MAPPERS[feed_name]
    except KeyError:
        raise KeyError(f"no mapper for feed {feed_name!r}; known: {', '.join(MAPPERS)}") from None
    return map_feed(mapper, records)


__all__ = ["MAPPERS", "Attr", "FeedMapper", "Mapped", "Rejected", "iter_mapped", "map_feed",
           "map_one", "map_records", "merge"]
