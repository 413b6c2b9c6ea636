"""GTFS mapper: golden entity per table, official schemas over the bundled feed, references between
entities, route types onto the basic enum, bad rows quarantined, arbitrary rows never crashing."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.mapping import Mapped, Rejected
from adapter.mapping.gtfs import gtfs_mapper, route_type
from adapter.ngsi.serialize import Form, dumps, to_dict
from adapter.sources.base import RawRecord
from adapter.sources.gtfs import GTFSSource
from tests.golden import assert_golden
from tests.schema_validation import schema_errors

GOLDEN = Path(__file__).parent / "golden" / "mapping"
FEED = Path(__file__).resolve().parent.parent / "adapter" / "samples" / "gtfs" / "burgasbus.zip"
FETCHED = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
MAPPER = gtfs_mapper("gtfs.burgasbus", "burgasbus")


def _collect() -> list[RawRecord]:
    async def run() -> list[RawRecord]:
        return [record async for record in GTFSSource("gtfs.burgasbus", str(FEED)).fetch()]
    return asyncio.run(run())


RECORDS = _collect()


def first(table: str) -> RawRecord:
    return next(r for r in RECORDS if r.payload["table"] == table)


def row(table: str, **values: Any) -> RawRecord:
    return RawRecord("gtfs.test", f"{table}.txt:2", {"table": table, "row": values}, FETCHED)


def golden_document(mapped: Mapped) -> bytes:
    doc = {"entity": to_dict(mapped.entity, Form.NORMALIZED), "source_crs": mapped.source_crs,
           "notes": list(mapped.notes)}
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


@pytest.mark.parametrize("table", ["agency", "stops", "routes", "trips", "shapes"])
def test_first_row_of_each_table_maps_to_the_golden_entity(table):
    result = MAPPER(first(table))
    assert isinstance(result, Mapped), result
    produced = golden_document(result)
    assert_golden(GOLDEN / f"gtfs.{table}.json", produced)


def test_every_row_of_the_bundled_feed_maps_and_validates_against_the_official_schema():
    results = [MAPPER(r) for r in RECORDS]
    assert [r for r in results if isinstance(r, Rejected)] == []
    assert Counter(r.entity.entity_type for r in results) == {
        "GtfsAgency": 1, "GtfsStop": 40, "GtfsRoute": 5, "GtfsTrip": 80, "GtfsShape": 10}
    for mapped in results:
        model = type(mapped.entity)
        wire = orjson.loads(dumps(mapped.entity, Form.KEY_VALUES))
        assert schema_errors(model, wire) == [], mapped.entity.id
        assert set(wire) - {"id", "type"} <= set(model.attributes_by_wire)


def test_references_point_at_entities_the_feed_produces():
    entities = [MAPPER(r).entity for r in RECORDS]
    ids = {e.id for e in entities}
    for entity in entities:
        if entity.entity_type == "GtfsTrip":
            assert entity.has_route in ids and entity.has_shape in ids
            assert entity.has_service.startswith("urn:ngsi-ld:GtfsService:burgasbus:")
        if entity.entity_type == "GtfsRoute":
            assert entity.operated_by == "urn:ngsi-ld:GtfsAgency:burgasbus:BB"


def test_shape_points_follow_shape_pt_sequence_with_their_distances():
    shape = MAPPER(first("shapes")).entity
    coords = shape.location.coordinates
    assert shape.id == "urn:ngsi-ld:GtfsShape:burgasbus:SH1_0"
    assert coords[0] == [27.475, 42.5075] and len(coords) == len(shape.distance_travelled)
    assert shape.distance_travelled == sorted(shape.distance_travelled)


@pytest.mark.parametrize(("raw", "basic"), [
    ("3", "3"), ("0", "0"), ("7", "7"), ("11", "3"), ("12", "1"), ("109", "2"), ("200", "3"),
    ("400", "1"), ("700", "3"), ("800", "3"), ("900", "0"), ("1000", "4"), ("1200", "4"),
    ("1300", "6"), ("1400", "7"),
])
def test_route_types_map_onto_the_basic_types_the_model_allows(raw, basic):
    assert route_type(raw) == basic


def test_a_trolleybus_route_is_sent_as_a_bus_with_a_note():
    result = MAPPER(row("routes", route_id="T1", agency_id="BB", route_short_name="T1",
                        route_type="11"))
    assert isinstance(result, Mapped)
    assert result.entity.route_type == "3"
    assert result.notes == ("route_type 11 sent as the basic type 3",)


def test_a_single_agency_feed_may_leave_agency_id_empty():
    agency = MAPPER(row("agency", agency_name="Бургасбус", agency_url="https://www.burgasbus.info",
                        agency_timezone="Europe/Sofia")).entity
    route = MAPPER(row("routes", route_id="R1", route_short_name="1", route_type="3")).entity
    assert agency.id == route.operated_by == "urn:ngsi-ld:GtfsAgency:burgasbus"


def test_a_station_is_the_parent_of_its_platforms():
    stop = MAPPER(row("stops", stop_id="P1", stop_name="Перон 1", stop_lat="42.4907",
                      stop_lon="27.4717", parent_station="ST1")).entity
    assert stop.has_parent_station == "urn:ngsi-ld:GtfsStop:burgasbus:ST1"


def test_bad_rows_are_rejected_with_their_reasons_and_the_others_pass():
    bad = [
        row("stops", stop_id="X1", stop_name="Далеч", stop_lat="0", stop_lon="0"),
        row("stops", stop_id="X2", stop_name="Без", stop_lat="", stop_lon="27.47"),
        row("stops", stop_id="", stop_name="Без id", stop_lat="42.49", stop_lon="27.47"),
        row("routes", route_id="R9", route_type="1700"),
        row("routes", route_id="R8", route_type="3", route_color="red"),
        row("trips", trip_id="T9", route_id="R1"),                       # no service_id
        row("shapes", shape_id="SH9", points=[{"shape_pt_lat": "42.5", "shape_pt_lon": "27.4"}]),
        row("calendar", service_id="WD"),
        RawRecord("gtfs.test", "stops.txt:9", {"table": "stops", "row": {"stop_id": "S9"}}, FETCHED,
                  problem="stops.txt line 9: 3 fields, the header has 7"),
    ]
    results = [MAPPER(r) for r in [*bad, *RECORDS[:20]]]
    assert all(isinstance(r, Mapped) for r in results[len(bad):])
    reasons = [r.reason for r in results[:len(bad)]]
    assert "outside the expected area" in reasons[0]
    assert reasons[1].startswith("stop_lat/stop_lon:")
    assert reasons[2].startswith("missing stop_id")
    assert reasons[3] == "route_type: route_type '1700' has no basic GTFS equivalent"
    assert reasons[4].startswith("GtfsRoute refused route_color")
    assert reasons[5] == "GtfsTrip refused hasService: Field required"
    assert reasons[6] == "LineString line 0 has 1 positions, needs at least 2"
    assert reasons[7] == "no mapping for GTFS table 'calendar'"
    assert reasons[8] == "stops.txt line 9: 3 fields, the header has 7"


_CELL = st.one_of(st.text(max_size=12), st.sampled_from(["", "0", "1", "2", "11", "42.49", "27.47",
                                                         "E30613", "https://x.bg", "Europe/Sofia"]))
_COLUMNS = ["agency_id", "agency_name", "agency_url", "agency_timezone", "stop_id", "stop_name",
            "stop_lat", "stop_lon", "parent_station", "wheelchair_boarding", "route_id",
            "route_type", "route_color", "route_sort_order", "trip_id", "service_id", "shape_id",
            "direction_id", "bikes_allowed"]
_POINT = st.dictionaries(st.sampled_from(["shape_pt_lat", "shape_pt_lon", "shape_dist_traveled"]),
                         _CELL | st.integers() | st.none())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["agency", "stops", "routes", "trips", "shapes", "frequencies"]),
       st.dictionaries(st.sampled_from(_COLUMNS) | st.text(max_size=5), _CELL),
       st.one_of(st.lists(_POINT, max_size=6), _CELL, st.none()))
def test_arbitrary_rows_give_an_entity_or_a_rejection_never_an_exception(table, values, points):
    if table == "shapes":
        values = {**values, "points": points}
    # Built directly, not through row(): a generated column may be called "table".
    result = MAPPER(RawRecord("gtfs.test", f"{table}.txt:2", {"table": table, "row": values}, FETCHED))
    assert isinstance(result, Mapped | Rejected)
    if isinstance(result, Mapped):
        to_dict(result.entity, Form.NORMALIZED)
