"""GTFS static rows -> GtfsAgency, GtfsStop, GtfsRoute, GtfsTrip, GtfsShape; ids from the feed's own ids.

| table | entity | id | references |
|---|---|---|---|
| agency | GtfsAgency | ``urn:ngsi-ld:GtfsAgency:<key>:<agency_id>`` | |
| stops | GtfsStop | ``urn:ngsi-ld:GtfsStop:<key>:<stop_id>`` | hasParentStation -> GtfsStop |
| routes | GtfsRoute | ``urn:ngsi-ld:GtfsRoute:<key>:<route_id>`` | operatedBy -> GtfsAgency |
| trips | GtfsTrip | ``urn:ngsi-ld:GtfsTrip:<key>:<trip_id>`` | hasRoute, hasShape, hasService |
| shapes | GtfsShape | ``urn:ngsi-ld:GtfsShape:<key>:<shape_id>`` | |

``<key>`` is the configured ``agency_key`` (e.g. ``burgasbus``): GTFS ids are unique only inside
one feed. A feed with a single agency may leave ``agency_id`` empty (GTFS allows it); that agency
is then ``urn:ngsi-ld:GtfsAgency:<key>``, and so is ``operatedBy`` of routes without ``agency_id``.
Stations (``location_type`` 1) are GtfsStop entities too (there is no GtfsStation model here), so
``hasParentStation`` points at a GtfsStop. ``hasService`` names ``GtfsService:<key>:<service_id>``
as the official model asks, although calendars are not mapped (yet).

``routeType``: the official enum holds GTFS's basic types "0".."7" only, so other types are mapped
onto the closest basic one and the original kept in ``Mapped.notes``:

| GTFS route_type | sent as |
|---|---|
| 11 trolleybus; 200-299 coach, 700-899 bus and trolleybus (extended types) | 3 bus |
| 12 monorail; 400-499 urban railway | 1 subway/metro |
| 100-199 railway | 2 rail |
| 900-999 tram | 0 tram |
| 1000-1299 water transport, ferry | 4 ferry |
| 1300-1399 aerial lift | 6 aerial lift |
| 1400-1499 funicular | 7 funicular |

Any other type rejects the route with the reason. A row whose value cannot be read (a bad
coordinate, colour, number) is rejected as a whole: GTFS is a specified format, so such a row is
broken, not partly useful.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from adapter.errors import MappingError
from adapter.geometry import WGS84, normalize_geometry
from adapter.mapping import parse
from adapter.mapping.base import Attr, FeedMapper, Mapped, Rejected, build, map_one, read
from adapter.ngsi.ids import entity_id
from adapter.sources.base import RawRecord
from data_models import Entity, GtfsAgency, GtfsRoute, GtfsShape, GtfsStop, GtfsTrip

MAX_ID = 128

# (first, last, basic type) for route types outside "0".."7".
ROUTE_TYPES: tuple[tuple[int, int, str], ...] = (
    (11, 11, "3"), (12, 12, "1"), (100, 199, "2"), (200, 299, "3"), (400, 499, "1"),
    (700, 899, "3"), (900, 999, "0"), (1000, 1299, "4"), (1300, 1399, "6"), (1400, 1499, "7"),
)


def route_type(value: Any) -> str:
    """A GTFS route_type as the official enum's basic type "0".."7" (see the module docstring)."""
    code = parse.integer(value)
    if 0 <= code <= 7:
        return str(code)
    for first, last, basic in ROUTE_TYPES:
        if first <= code <= last:
            return basic
    raise ValueError(f"route_type {parse.show(value)} has no basic GTFS equivalent")


def tristate(value: Any) -> int:
    """GTFS 0/1/2 (no information, yes, no) as an integer."""
    code = parse.integer(value)
    if code not in (0, 1, 2):
        raise ValueError(f"{parse.show(value)} is not 0, 1 or 2")
    return code


def tristate_text(value: Any) -> str:
    """GTFS 0/1/2 as the text the GtfsStop schema wants ("0", "1", "2")."""
    return str(tristate(value))


def direction(value: Any) -> int:
    """GTFS direction_id: 0 or 1."""
    code = parse.integer(value)
    if code not in (0, 1):
        raise ValueError(f"direction_id {parse.show(value)} is not 0 or 1")
    return code


def coordinate(value: Any) -> float:
    """A stop or shape coordinate in decimal degrees."""
    return parse.number(value)


AGENCY = (
    Attr("agency_name", "agency_name", parse.text),
    Attr("source", "agency_url", parse.url),  # the provider's URL (GSMA-Commons source)
    Attr("page", "agency_url", parse.url),
    Attr("timezone", "agency_timezone", parse.text),
    Attr("language", "agency_lang", parse.text),
    Attr("phone", "agency_phone", parse.text),
)
STOP = (
    Attr("name", "stop_name", parse.text),
    Attr("code", "stop_code", parse.text),
    Attr("stop_desc", "stop_desc", parse.text),
    Attr("zone_code", "zone_id", parse.text),
    Attr("page", "stop_url", parse.url),
    Attr("wheel_chair_accessible", "wheelchair_boarding", tristate_text),
)
ROUTE = (
    Attr("short_name", "route_short_name", parse.text),
    Attr("name", "route_long_name", parse.text),
    Attr("description", "route_desc", parse.text),
    Attr("route_type", "route_type", route_type),
    Attr("page", "route_url", parse.url),
    Attr("route_color", "route_color", parse.text),
    Attr("route_text_color", "route_text_color", parse.text),
    Attr("route_sort_order", "route_sort_order", parse.count),
)
TRIP = (
    Attr("head_sign", "trip_headsign", parse.text),
    Attr("short_name", "trip_short_name", parse.text),
    Attr("block", "block_id", parse.text),
    Attr("direction", "direction_id", direction),
    Attr("wheel_chair_accessible", "wheelchair_accessible", tristate),
    Attr("bikes_allowed", "bikes_allowed", tristate),
)


@dataclass(frozen=True, slots=True)
class GTFSIds:
    """The entity ids of one feed: ``urn:ngsi-ld:<Type>:<agency_key>:<GTFS id>``."""

    agency_key: str

    def of(self, entity_type: str, gtfs_id: str) -> str:
        """The id of the entity a GTFS id names."""
        return entity_id(entity_type, self.agency_key, gtfs_id)

    def ref(self, entity_type: str, row: Mapping[str, Any], column: str) -> str | None:
        """The id a reference column names, or None when the column is empty."""
        value = row.get(column)
        return None if parse.is_blank(value) else self.of(entity_type, gtfs_key(value, column))

    def agency(self, agency_id: Any) -> str:
        """An agency's id; the feed's only agency may have none (then the key alone)."""
        if parse.is_blank(agency_id):
            return entity_id("GtfsAgency", self.agency_key)
        return self.of("GtfsAgency", gtfs_key(agency_id, "agency_id"))


def gtfs_key(value: Any, column: str) -> str:
    """A GTFS id: required, trimmed, bounded."""
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"missing {column} (got {parse.show(value)})")
    value = value.strip()
    if len(value) > MAX_ID:
        raise MappingError(f"{column} {parse.show(value)} is longer than {MAX_ID} characters")
    return value


def _row(record: RawRecord) -> Mapping[str, Any]:
    row = record.payload.get("row")
    if not isinstance(row, Mapping):
        raise MappingError(f"GTFS record has no row object (got {parse.show(row)})")
    return row


def _agency(ids: GTFSIds, record: RawRecord) -> Mapped:
    row = _row(record)
    values = read(AGENCY, row).values
    # entitySource is "the URL of the original GTFS feed": only when it was fetched over HTTP(S).
    origin = record.origin or ""
    feed_url = origin if origin.startswith(("http://", "https://")) else None
    entity = build(GtfsAgency, {"id": ids.agency(row.get("agency_id")), **values,
                                "entity_source": feed_url})
    return Mapped(entity, record=record.key)


def _stop(ids: GTFSIds, record: RawRecord) -> Mapped:
    row = _row(record)
    key = gtfs_key(row.get("stop_id"), "stop_id")
    try:
        lon, lat = coordinate(row.get("stop_lon")), coordinate(row.get("stop_lat"))
    except ValueError as exc:
        raise MappingError(f"stop_lat/stop_lon: {exc}") from None
    location = normalize_geometry({"type": "Point", "coordinates": [lon, lat]}, WGS84,
                                  source=record.source, record=record.key)
    values = read(STOP, row).values
    entity = build(GtfsStop, {"id": ids.of("GtfsStop", key), **values, "location": location.geometry,
                              "has_parent_station": ids.ref("GtfsStop", row, "parent_station")})
    return Mapped(entity, (), location.source_crs, location.fixes, record.key)


def _route(ids: GTFSIds, record: RawRecord) -> Mapped:
    row = _row(record)
    key = gtfs_key(row.get("route_id"), "route_id")
    values = read(ROUTE, row).values
    notes: tuple[str, ...] = ()
    original = str(row.get("route_type", "")).strip()
    if "route_type" in values and values["route_type"] != original:
        notes = (f"route_type {original} sent as the basic type {values['route_type']}",)
    entity = build(GtfsRoute, {"id": ids.of("GtfsRoute", key), **values,
                               "operated_by": ids.agency(row.get("agency_id"))})
    return Mapped(entity, notes=notes, record=record.key)


def _trip(ids: GTFSIds, record: RawRecord) -> Mapped:
    row = _row(record)
    key = gtfs_key(row.get("trip_id"), "trip_id")
    values = read(TRIP, row).values
    refs = {"has_route": ids.ref("GtfsRoute", row, "route_id"),
            "has_service": ids.ref("GtfsService", row, "service_id"),
            "has_shape": ids.ref("GtfsShape", row, "shape_id")}
    entity = build(GtfsTrip, {"id": ids.of("GtfsTrip", key), **values,
                              **{k: v for k, v in refs.items() if v is not None}})
    return Mapped(entity, record=record.key)


def _shape(ids: GTFSIds, record: RawRecord) -> Mapped:
    row = _row(record)
    key = gtfs_key(row.get("shape_id"), "shape_id")
    points = row.get("points")
    if not isinstance(points, Sequence) or isinstance(points, str) or not points:
        raise MappingError(f"shape {key!r} has no points")
    coords, distances = [], []
    for index, point in enumerate(points):
        if not isinstance(point, Mapping):
            raise MappingError(f"shape point {index} is {type(point).__name__}, not a row")
        try:
            coords.append([coordinate(point.get("shape_pt_lon")), coordinate(point.get("shape_pt_lat"))])
            raw = point.get("shape_dist_traveled")
            distances.append(None if parse.is_blank(raw) else parse.non_negative(raw))
        except ValueError as exc:
            raise MappingError(f"shape point {index}: {exc}") from None
    line = normalize_geometry({"type": "LineString", "coordinates": coords}, WGS84,
                              source=record.source, record=record.key)
    notes = list(line.fixes)
    travelled = None
    if all(d is not None for d in distances):
        travelled = distances
    elif any(d is not None for d in distances):
        notes.append("shape_dist_traveled left out: not every point has one")
    entity = build(GtfsShape, {"id": ids.of("GtfsShape", key), "location": line.geometry,
                               "distance_travelled": travelled})
    return Mapped(entity, (), line.source_crs, tuple(notes), record.key)


_TABLES: Mapping[str, tuple[type[Entity], Callable[[GTFSIds, RawRecord], Mapped], str]] = {
    "agency": (GtfsAgency, _agency, "agency_id"),
    "stops": (GtfsStop, _stop, "stop_id"),
    "routes": (GtfsRoute, _route, "route_id"),
    "trips": (GtfsTrip, _trip, "trip_id"),
    "shapes": (GtfsShape, _shape, "shape_id"),
}


@dataclass(frozen=True, slots=True)
class GTFSMapper:
    """One feed's rows -> Gtfs* entities: ``mapper(record) -> Mapped | Rejected``."""

    tables: Mapping[str, FeedMapper]

    def __call__(self, record: RawRecord) -> Mapped | Rejected:
        payload = record.payload
        table = payload.get("table") if isinstance(payload, Mapping) else None
        mapper = self.tables.get(table) if isinstance(table, str) else None
        if mapper is None:
            return Rejected.of(record, record.problem or f"no mapping for GTFS table {parse.show(table)}")
        return map_one(mapper, record)


def gtfs_mapper(source: str, agency_key: str) -> GTFSMapper:
    """The mapper of one configured GTFS feed (``agency_key`` qualifies every id)."""
    entity_id("GtfsAgency", agency_key)  # fails early on a key that cannot be part of an id
    ids = GTFSIds(agency_key)
    return GTFSMapper({
        table: FeedMapper(f"{source}.{table}", model, partial(fn, ids),
                          f"urn:ngsi-ld:{model.entity_type}:{agency_key}:<{table}.{column}>")
        for table, (model, fn, column) in _TABLES.items()})
