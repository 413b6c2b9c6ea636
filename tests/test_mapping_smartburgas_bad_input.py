"""Bad Smart Burgas records: each gives a Rejected naming source, record and reason, or loses only
the bad value; hypothesis feeds the mappers arbitrary strings and shapes and they never crash."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapter.mapping import MAPPERS, Mapped, Rejected, map_one, map_records
from adapter.mapping.smartburgas_parking import weekdays
from adapter.mapping.smartburgas_poi import taxi_count
from adapter.mapping.smartburgas_transport import parse_charger
from adapter.ngsi.serialize import Form, dumps
from adapter.sources.base import RawRecord
from adapter.sources.smartburgas_feeds import FEEDS
from tests.smartburgas_records import (
    FETCHED_AT,
    aq_row,
    aq_station,
    detector,
    record,
    sample_record,
    sample_records,
)

ROWS = [aq_row("2026-02-27 15:00:05", NO2="29.6", h2s="0.0026")]


def rejected(feed: str, rec: RawRecord) -> Rejected:
    result = map_one(MAPPERS[feed], rec)
    assert isinstance(result, Rejected), result
    assert result.source == FEEDS[feed].source_name
    assert result.record == rec.key
    assert result.payload == rec.payload
    return result


# --- positions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("geometry, reason", [
    (None, "no geometry"),
    ({}, "no geometry"),
    ({"type": "Point"}, "needs [lng, lat]"),
    ({"type": "Point", "coordinates": []}, "needs [lng, lat]"),
    ({"type": "Point", "coordinates": ["27,46", "42,50"]}, "not a number"),
    ({"type": "LineString", "coordinates": [[27.4, 42.5], [27.5, 42.5]]}, "expected a Point"),
    ({"type": "Point", "coordinates": [23.3219, 42.6977]}, "outside the expected area"),  # Sofia
    ({"type": "Point", "coordinates": [0, 0]}, "outside the expected area"),
])
def test_missing_or_impossible_positions_reject_the_record(geometry, reason):
    result = rejected("air_quality", record("air_quality", {**aq_station(ROWS), "geometry": geometry},
                                            key="features1[3] id=1"))
    assert reason in result.reason


def test_swapped_coordinates_are_fixed_and_noted():
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(ROWS, coordinates=(42.5215, 27.4488))))
    assert mapped.entity.location.coordinates == [27.4488, 42.5215]
    assert any("swapped" in note for note in mapped.notes)


def test_string_coordinates_are_parsed():
    station = aq_station(ROWS, coordinates=("27.4626", "42.5048"))
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", station))
    assert mapped.entity.location.coordinates == [27.4626, 42.5048]


def test_features_feeds_read_the_top_level_geometry():
    result = rejected("cctv", record("cctv", {"publicname": "Камера", "pic_url": "", "video_url2": "",
                                              "position": 80}, key="features[1]"))
    assert "no geometry" in result.reason


# --- keys, numbers, times -------------------------------------------------------------------------

@pytest.mark.parametrize("feed, props, reason", [
    ("air_quality", {k: v for k, v in aq_station(ROWS).items() if k != "id"}, "missing id"),
    ("air_quality", {**aq_station(ROWS), "id": ""}, "missing id"),
    ("traffic", {**detector([("4", "40", "2026-02-08 02:00:10")]), "detector_id": None}, "missing detector_id"),
    ("car_parks", {"name": "P", "total_lots": "10", "data": [],
                   "geometry": {"type": "Point", "coordinates": [27.46, 42.51]}}, "missing parking_id"),
    ("car_parks", {"parking_id": "2", "name": "P", "total_lots": "двеста", "data": [],
                   "geometry": {"type": "Point", "coordinates": [27.46, 42.51]}},
     "total_lots: 'двеста' is not a number"),
    ("air_quality", aq_station([aq_row("27.02.2026 15:00", NO2="1")]), "no readable reading"),
    ("air_quality", aq_station([]), "no readable reading"),
    ("air_quality", {**aq_station(ROWS), "data": "not a list"}, "data is str, not an array"),
    ("waste", {"MobileCenterName": "МЦ01", "data": [],
               "geometry": {"type": "Point", "coordinates": [27.42, 42.45]}}, "missing MobileCenterId"),
])
def test_missing_keys_and_unreadable_values_reject_with_the_reason(feed, props, reason):
    result = rejected(feed, record(feed, props, key="features1[7]"))
    assert reason in result.reason


def test_a_payload_without_properties_is_rejected():
    rec = dataclasses.replace(sample_records("cctv")[0], payload={"type": "Feature", "properties": []})
    assert "no properties object" in rejected("cctv", rec).reason


def test_a_record_the_source_marked_broken_is_rejected_with_its_problem():
    rec = record("traffic", {}, problem="feature is list, not an object")
    assert rejected("traffic", rec).reason == "feature is list, not an object"


def test_an_unparseable_reading_value_is_left_out_and_the_rest_of_the_reading_kept():
    rows = [aq_row("2026-02-27 15:00:05", NO2="n/a", SO2="2.5"), aq_row("2026-02-27 14:00:06", NO2="33.8")]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    assert mapped.entity.so2 == 2.5
    assert mapped.entity.no2 == 33.8  # carried forward from 14:00, with its own observedAt
    assert mapped.entity.attr_meta["no2"].observed_at.isoformat() == "2026-02-27T12:00:06+00:00"
    assert any("NO2: 'n/a' is not a number" in note for note in mapped.notes)


def test_an_unknown_unit_drops_that_value_only():
    rows = [aq_row("2026-02-27 15:00:05", NO2="29.6", NO2_unit="ppb", SO2="2.5")]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    assert mapped.entity.no2 is None and mapped.entity.so2 == 2.5
    assert any("unknown unit 'ppb'" in note for note in mapped.notes)


def test_units_map_to_un_cefact_codes_and_a_non_default_unit_is_carried():
    rows = [aq_row("2026-02-27 15:00:05", SO2="0.0025", SO2_unit="mg/m3", h2s="0.0026")]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    wire = orjson.loads(dumps(mapped.entity))
    assert wire["so2"]["unitCode"] == "GP" and wire["sh2"]["unitCode"] == "GP"


def test_empty_values_are_absent_never_zero():
    rows = [aq_row("2026-02-27 15:00:05", pm10="31.3")]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    wire = orjson.loads(dumps(mapped.entity, Form.KEY_VALUES))
    assert {"so2", "no2", "o3", "sh2", "pm25", "c6h6", "styrene"}.isdisjoint(wire)


def test_carry_forward_stops_after_48_hours():
    rows = [aq_row("2026-02-27 15:00:05", NO2="1"), aq_row("2026-02-25 14:00:05", pm10="30", NO2="2")]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    assert mapped.entity.pm10 is None and mapped.entity.no2 == 1.0


def test_one_bad_record_in_a_fetch_leaves_the_others_mapped():
    records = sample_records("taxi_ranks")
    records[3] = dataclasses.replace(records[3], payload={**records[3].payload, "geometry": None})
    results = list(map_records("taxi_ranks", records))
    assert sum(isinstance(r, Mapped) for r in results) == 58
    (bad,) = [r for r in results if isinstance(r, Rejected)]
    assert bad.record == "features[3]" and "no geometry" in bad.reason


def test_an_english_only_record_of_an_id_less_feed_is_rejected_rather_than_forking_the_id():
    rec = dataclasses.replace(sample_records("billing_machines")[0], lang="en", key="en:features[0]",
                              payload=sample_records("billing_machines")[0].translations["en"],
                              translations={})
    assert "no Bulgarian name" in rejected("billing_machines", rec).reason


def test_more_free_lots_than_lots_leaves_occupancy_out():
    mapped = map_one(MAPPERS["car_parks"], record("car_parks", {
        "parking_id": "9", "name": "P", "total_lots": "10",
        "data": [{"free_lots": "12", "time": "2026-03-30 15:02:07"}],
        "geometry": {"type": "Point", "coordinates": [27.46, 42.51]}}, fetched_at=FETCHED_AT))
    assert mapped.entity.available_spot_number == 12 and mapped.entity.occupancy is None
    assert any("12 > total_lots 10" in note for note in mapped.notes)


def test_waste_units_are_normalised_and_unknown_units_dropped():
    rows = [{"Garbage_id": "47", "Garbage_name": "Автомобилни гуми ", "Garbage_Colour": "#606060",
             "Garbage_Weight": "4", "Garbage_Weight_type": "БР", "time": "2026-01-14 10:12:00"},
            {"Garbage_id": "32", "Garbage_name": "Големи домашни уреди", "Garbage_Colour": "#ff00ff",
             "Garbage_Weight": "1", "Garbage_Weight_type": "БРОЙ", "time": "2026-01-14 10:12:00"},
            {"Garbage_id": "28", "Garbage_name": "Стъкло", "Garbage_Colour": "#00d900",
             "Garbage_Weight": "4.79", "Garbage_Weight_type": "КГ", "time": "2026-01-14 10:12:00"},
            {"Garbage_id": "29", "Garbage_name": "Пластмаси", "Garbage_Colour": "#ffff00",
             "Garbage_Weight": "1.5", "Garbage_Weight_type": "ТОНА", "time": "2026-01-14 10:12:00"}]
    mapped = map_one(MAPPERS["waste"], record("waste", {
        "MobileCenterId": "1", "MobileCenterName": "МЦ01",
        "MobileCenterPics": "http://pics.smartburgas.eu/waste/mobile/1.jpg" + " " * 200,
        "data": rows, "geometry": {"type": "Point", "coordinates": [27.420941, 42.4531]}}))
    units = {q.waste_type_id: (q.unit_code, q.waste_type_name) for q in mapped.entity.waste_quantities}
    assert units == {"28": ("KGM", "Стъкло"), "32": ("H87", "Големи домашни уреди"),
                     "47": ("H87", "Автомобилни гуми")}
    assert mapped.entity.image == "http://pics.smartburgas.eu/waste/mobile/1.jpg"
    assert any("unknown unit 'ТОНА'" in note for note in mapped.notes)


# --- free-text parsers ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, capacity, sockets, currents, power", [
    ("20 KW", 1, ["Type2"], ["AC"], 20.0),
    ("120 KW", 1, ["CCS/SAE"], ["DC"], 120.0),
    ("Една бързо зарядна станция с мощност 50 kW DC ", 1, ["CCS/SAE"], ["DC"], 50.0),
    ("Една бързо зарядна станция с мощност 22 kW DC  и една стандартна зарядна станция с мощност 22 kW AC. ",
     2, ["Type2", "CCS/SAE"], ["AC", "DC"], 22.0),
    ("1 бр. двойна станция с два конектора", 2, ["Other"], None, None),
    ("Платена зарядна станция за електромобили", 1, ["Other"], None, None),
    ("Две бързи зарядни станции с мощност 120 kW DC (CCS/CHAdeMO)", 2, ["CCS/SAE", "CHAdeMO"], ["DC"], 120.0),
    ("2 x 22 kW AC, Type 2", 2, ["Type2"], ["AC"], 22.0),
    ("7,4 kW AC", 1, ["Type2"], ["AC"], 7.4),
    ("", 1, ["Other"], None, None),
])
def test_charger_descriptions_give_capacity_sockets_current_and_power(text, capacity, sockets, currents, power):
    charger = parse_charger(text)
    assert (charger.capacity, charger.socket_type, charger.current_type, charger.rated_power) == (
        capacity, sockets, currents, power)


def test_dual_station_has_two_sockets():
    assert parse_charger("1 бр. двойна станция с два конектора").socket_number == 2


@pytest.mark.parametrize("text, count", [("5 броя таксиметрови автомобила", 5),
                                         ("10 броя таксиметрови автомобила ", 10),
                                         ("3 taxi cars", 3), ("таксита", None)])
def test_taxi_rank_capacity_is_read_from_the_description(text, count):
    assert taxi_count(text) == count


@pytest.mark.parametrize("mask, days", [(31, "Mo-Fr"), (127, "Mo-Su"), (21, "Mo,We,Fr"), (96, "Sa-Su")])
def test_weekday_bitmasks(mask, days):
    assert weekdays(mask) == days


def test_zone_without_times_has_no_active_hours_and_a_real_date_gives_its_time_of_day():
    zones = {r.payload["properties"]["Name"]: r for r in sample_records("paid_parking_zones")}
    green = map_one(MAPPERS["paid_parking_zones"], zones["Зелена зона 1"]).entity
    blue7 = map_one(MAPPERS["paid_parking_zones"], zones["Синя зона 7"]).entity
    assert green.permit_active_hours is None and green.category == ["greenZone", "feeCharged"]
    assert blue7.permit_active_hours == {"blueZonePermit": "Mo-Fr 07:30-17:30"}


# --- property-based: arbitrary strings and shapes ---------------------------------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True) | st.text(max_size=30)
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
FEED_STRINGS = st.sampled_from(["", " ", "ddd", "0", "-1", "1e400", "NaN", "4", "32", "0.0026",
                                "2026-02-27 15:00:05", "2026-03-29 03:30:00", "2025-10-26 03:00:06",
                                "2026-02-27_15:00:05", "ug/m3", "mg/m3", "КГ", "БР", "#ffca95",
                                "http://pics.smartburgas.eu/x.jpg   ", "2000/01/01 09:00:00.000",
                                "„Родопи“", "22 kW DC", "5 броя таксиметрови автомобила"]) | st.text(max_size=20)
COORD = st.floats(allow_nan=True, allow_infinity=True) | FEED_STRINGS | st.sampled_from([27.46, 42.5])
GEOMETRY = st.one_of(JSON, st.fixed_dictionaries({
    "type": st.sampled_from(["Point", "Polygon", "MultiPolygon", "Nope"]),
    "coordinates": st.one_of(st.lists(COORD, max_size=3), JSON)}))
FEED_KEYS = sorted({k for feed in FEEDS for k in (
    "id", "name", "global_air_quality", "detector_id", "parking_id", "total_lots", "description",
    "pic_url", "MobileCenterId", "MobileCenterName", "MobileCenterPics", "Citizen_Number",
    "Garbage_Weight", "publicname", "video_url2", "position", "Id", "Name", "ZoneType", "StartTime",
    "EndTime", "PricePerHo", "SmsNumber", "Places", "Weekdays", "Created", "Modified", "NameEn", "CAU")})
ROW_KEYS = ["SO2", "SO2_unit", "NO2", "h2s", "h2s_unit", "pm10", "pm10_unit", "car_count", "car_speed",
            "free_lots", "Garbage_id", "Garbage_name", "Garbage_Colour", "Garbage_Weight",
            "Garbage_Weight_type", "time"]
ROW = st.dictionaries(st.sampled_from(ROW_KEYS), FEED_STRINGS | JSON_SCALARS, max_size=8)
PROPERTIES = st.dictionaries(st.sampled_from(FEED_KEYS), FEED_STRINGS | JSON_SCALARS, max_size=10).flatmap(
    lambda props: st.fixed_dictionaries({"data": st.lists(ROW, max_size=6) | JSON, "geometry": GEOMETRY}).map(
        lambda extra: {**props, **extra}))
FEATURE = st.one_of(JSON, st.fixed_dictionaries({
    "type": st.just("Feature"), "properties": st.one_of(PROPERTIES, JSON), "geometry": GEOMETRY}))


def _check(feed: str, payload, en) -> None:
    rec = RawRecord(FEEDS[feed].source_name, "features1[0]", payload if isinstance(payload, dict) else {},
                    FETCHED_AT, "bg", {"en": en} if isinstance(en, dict) else {})
    result = map_one(MAPPERS[feed], rec)
    assert isinstance(result, Mapped | Rejected)
    if isinstance(result, Mapped):
        for entity in (result.entity, *result.history):
            dumps(entity, Form.NORMALIZED)  # whatever maps also serialises
    else:
        assert result.reason and result.source == FEEDS[feed].source_name


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed=st.sampled_from(sorted(FEEDS)), payload=FEATURE, en=st.none() | FEATURE)
def test_arbitrary_shapes_map_or_reject_never_crash(feed, payload, en):
    _check(feed, payload, en)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feed=st.sampled_from(sorted(FEEDS)), data=st.data())
def test_sample_records_with_arbitrary_values_map_or_reject_never_crash(feed, data):
    # Real shapes, with some property and reading values replaced by arbitrary strings and shapes.
    rec = sample_records(feed)[data.draw(st.integers(0, 4))]
    props = dict(rec.payload["properties"])
    for key in data.draw(st.lists(st.sampled_from(sorted(props)), max_size=3)):
        props[key] = data.draw(FEED_STRINGS | JSON)
    if isinstance(props.get("data"), list) and props["data"]:
        rows = [dict(r) if isinstance(r, dict) else r for r in props["data"][:6]]
        for row in rows:
            if isinstance(row, dict) and row and data.draw(st.booleans()):
                row[data.draw(st.sampled_from(sorted(row)))] = data.draw(FEED_STRINGS | JSON_SCALARS)
        props["data"] = rows
    _check(feed, {**rec.payload, "properties": props}, rec.translations.get("en"))


def test_sample_record_helper_cuts_series():
    assert len(sample_record("air_quality", 0, rows=slice(0, 3)).payload["properties"]["data"]) == 3
