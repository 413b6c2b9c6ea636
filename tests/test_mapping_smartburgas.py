"""Smart Burgas mappers: golden entities per feed, official schemas, stable ids, same-id merging."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest

from adapter.mapping import MAPPERS, Mapped, Rejected, map_one, map_records
from adapter.ngsi.serialize import Form, dumps, to_dict
from adapter.sources.smartburgas_feeds import FEEDS
from tests.golden import assert_golden
from tests.schema_validation import schema_errors
from tests.smartburgas_records import (
    aq_row,
    aq_station,
    detector,
    record,
    sample_record,
    sample_records,
)

GOLDEN = Path(__file__).parent / "golden" / "mapping"

# One recorded sample record per feed (series cut short to keep the golden files readable):
# each picked for a quirk the mapping must handle.
GOLDEN_CASES = {
    "air_quality": (1, slice(0, 26)),       # pm10 empty for the newest 23 h: carried forward
    "traffic": (1, slice(-4, None)),         # placeholder name "ddd"
    "car_parks": (0, slice(0, 16)),          # stale sensor, autumn DST repeat (03:01 twice)
    "waste": (1, None),                      # padded picture URL, БР/КГ units
    "cctv": (8, None),                       # en keeps the Bulgarian publicname
    "billing_machines": (0, None),
    "ev_chargers": (5, None),                # "50 kW DC  и ... 22 kW AC. "
    "taxi_ranks": (0, None),                 # escaped quotes, Cyrillic ІІІ
    "paid_parking_zones": (0, None),
    "admin_regions": (8, None),              # ПРИМОРИЕ: a MultiPolygon
}


def _golden_document(mapped: Mapped) -> bytes:
    doc = {
        "entity": to_dict(mapped.entity, Form.NORMALIZED),
        "history": [to_dict(h, Form.NORMALIZED) for h in mapped.history],
        "source_crs": mapped.source_crs,
        "notes": list(mapped.notes),
    }
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"


@pytest.mark.parametrize("feed", sorted(GOLDEN_CASES))
def test_sample_record_maps_to_the_golden_entity(feed):
    index, rows = GOLDEN_CASES[feed]
    result = map_one(MAPPERS[feed], sample_record(feed, index, rows=rows))
    assert isinstance(result, Mapped), result
    produced = _golden_document(result)
    assert_golden(GOLDEN / f"{feed}.json", produced)


def test_every_feed_has_a_mapper_and_a_golden_case():
    assert set(MAPPERS) == set(FEEDS) == set(GOLDEN_CASES)


# The bundled samples hold one deliberately broken record: a traffic detector with no position.
EXPECTED_REJECTIONS = {"traffic": ["a Point needs [lng, lat], got []"]}


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_every_bundled_sample_record_maps_and_validates_against_the_official_schema(feed):
    results = list(map_records(feed, sample_records(feed)))
    rejected = [r for r in results if isinstance(r, Rejected)]
    assert [r.reason for r in rejected] == EXPECTED_REJECTIONS.get(feed, [])
    mapper = MAPPERS[feed]
    for mapped in (r for r in results if not isinstance(r, Rejected)):
        for entity in (mapped.entity, *mapped.history):
            assert type(entity) is mapper.model
            wire = orjson.loads(dumps(entity, Form.KEY_VALUES))
            if mapper.model.subject.startswith("dataModel."):
                assert schema_errors(mapper.model, wire) == [], entity.id
            # Every attribute is one the model declares (no stray wire names).
            assert set(wire) - {"id", "type"} <= set(mapper.model.attributes_by_wire)


def test_bundled_samples_give_the_expected_entity_counts():
    counts = {feed: sum(isinstance(r, Mapped) for r in map_records(feed, sample_records(feed)))
              for feed in FEEDS}
    # Traffic: 13 features, detector 57 twice -> 12 detectors.
    assert counts == {"air_quality": 5, "traffic": 12, "car_parks": 7, "waste": 5, "cctv": 11,
                      "billing_machines": 48, "ev_chargers": 17, "taxi_ranks": 59,
                      "paid_parking_zones": 15, "admin_regions": 9}


def test_every_reading_of_a_series_reaches_the_history():
    mapped = map_one(MAPPERS["air_quality"], sample_records("air_quality")[0])
    feature = sample_records("air_quality")[0].payload["properties"]
    assert len(mapped.history) == len(feature["data"]) == 72
    times = [h.date_observed for h in mapped.history]
    assert times == sorted(times) and len(set(times)) == 72  # oldest first, one per reading
    assert mapped.entity.date_observed == times[-1]


# --- ids ------------------------------------------------------------------------------------------

def _ids(feed, records):
    return [r.entity.id for r in map_records(feed, records) if isinstance(r, Mapped)]


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_ids_are_stable_across_runs_and_languages(feed):
    first = _ids(feed, sample_records(feed))
    again = _ids(feed, sample_records(feed))
    bulgarian_only = _ids(feed, sample_records(feed, langs=("bg",)))
    assert first == again == bulgarian_only
    assert len(set(first)) == len(first)
    prefix = f"urn:ngsi-ld:{MAPPERS[feed].model.entity_type}:smartburgas:"
    assert all(i.startswith(prefix) for i in first)


def test_id_less_feeds_key_on_name_and_position_ignoring_quotes_spaces_and_homoglyphs():
    geometry = {"type": "Point", "coordinates": [27.4674105271697, 42.504733465616]}
    typographic = record("ev_chargers", {"name": "ж.к. Братя Миладинови, ул. „Родопи“ ",
                                         "description": "", "pic_url": None}, geometry=geometry)
    plain = record("ev_chargers", {"name": 'ж.к.  Братя Миладинови, ул. "Родопи"',
                                   "description": "", "pic_url": None}, geometry=geometry)
    a, b = map_one(MAPPERS["ev_chargers"], typographic), map_one(MAPPERS["ev_chargers"], plain)
    assert a.entity.id == b.entity.id
    assert a.entity.name == "ж.к. Братя Миладинови, ул. „Родопи“"  # quotes kept in the name
    latin = record("billing_machines", {"name": "ул.Цар Симеон I-ви"}, geometry=geometry)
    cyrillic = record("billing_machines", {"name": "ул.Цар Симеон І-ви"}, geometry=geometry)
    assert (map_one(MAPPERS["billing_machines"], latin).entity.id
            == map_one(MAPPERS["billing_machines"], cyrillic).entity.id)


def test_feed_ids_come_from_the_feed_not_the_name():
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(
        [aq_row("2026-02-27 15:00:05", NO2="29.6")], id=" 12 ", name="Ново име")))
    assert mapped.entity.id == "urn:ngsi-ld:AirQualityObserved:smartburgas:12"


# --- names ----------------------------------------------------------------------------------------

def test_names_are_cleaned_and_both_languages_kept_when_they_differ():
    rows = [aq_row("2026-02-27 15:00:05", NO2="29.6")]
    mapped = map_one(MAPPERS["air_quality"], record(
        "air_quality", aq_station(rows, name="  Долно   Езерово "),
        en=aq_station(rows, name="Dolno Ezerovo")))
    assert mapped.entity.name == "Долно Езерово"
    assert mapped.entity.multilingual_name == {"bg": "Долно Езерово", "en": "Dolno Ezerovo"}
    same = map_one(MAPPERS["air_quality"], record(
        "air_quality", aq_station(rows), en=aq_station(rows, name="Долно Езерово ")))
    assert same.entity.multilingual_name is None


@pytest.mark.parametrize("placeholder", ["", "ddd", "  "])
def test_placeholder_detector_names_give_no_name(placeholder):
    mapped = map_one(MAPPERS["traffic"], record("traffic", detector(
        [("32", "18", "2026-02-08 02:00:10")], name=placeholder)))
    assert mapped.entity.name is None and mapped.entity.multilingual_name is None


# --- merging --------------------------------------------------------------------------------------

def test_duplicated_detector_in_one_fetch_is_sent_once_with_the_union_of_readings():
    records = sample_records("traffic")
    duplicates = [r for r in records if r.payload["properties"]["detector_id"] == "57"]
    assert len(duplicates) == 2
    merged = [r for r in map_records("traffic", records)
              if isinstance(r, Mapped) and r.entity.id.endswith(":57")]
    assert len(merged) == 1
    first = map_one(MAPPERS["traffic"], duplicates[0])
    times = {h.date_observed for h in merged[0].history}
    assert times >= {h.date_observed for h in first.history}
    assert merged[0].entity.date_observed == max(times)
    assert " + " in merged[0].record


def test_merge_unites_readings_and_the_newest_current_state_wins_whatever_the_order():
    older = record("air_quality", aq_station([aq_row("2026-02-27 14:00:06", NO2="33.8"),
                                              aq_row("2026-02-27 13:00:04", NO2="30.0")]),
                   key="features1[0] id=1")
    newer = record("air_quality", aq_station([aq_row("2026-02-27 15:00:05", NO2="29.6"),
                                              aq_row("2026-02-27 14:00:06", NO2="99.0")]),
                   key="features1[4] id=1")
    for order in ([older, newer], [newer, older]):
        (merged,) = list(map_records("air_quality", order))
        assert [h.no2 for h in merged.history][0] == 30.0
        assert len(merged.history) == 3
        assert merged.entity.no2 == 29.6
        assert merged.entity.date_observed.isoformat() == "2026-02-27T13:00:05+00:00"
    # Same reading time in both: the later record's reading wins.
    (merged,) = list(map_records("air_quality", [older, newer]))
    assert merged.history[1].no2 == 99.0


def test_rejections_stream_out_and_do_not_stop_the_other_records():
    good = sample_records("air_quality")
    bad = dataclasses.replace(good[0], key="features1[9]", payload={"type": "Feature"})
    results = list(map_records("air_quality", [good[0], bad, *good[1:]]))
    assert [type(r).__name__ for r in results].count("Mapped") == 5
    (rejected,) = [r for r in results if isinstance(r, Rejected)]
    assert (rejected.source, rejected.record) == ("smartburgas.air_quality", "features1[9]")
    assert "properties" in rejected.reason


def test_unknown_feed_name_is_a_clear_error():
    with pytest.raises(KeyError, match="no mapper for feed 'weather'"):
        map_records("weather", [])
