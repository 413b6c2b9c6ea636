"""MQTT sensor payloads -> entities: one golden entity per family, reasons for bad payloads, no crash."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapter.errors import ConfigError
from adapter.mapping.base import Mapped, Rejected
from adapter.mapping.mqtt import FAMILIES, TopicMapper, flood_status
from adapter.ngsi.serialize import Form, to_dict
from adapter.sources.base import RawRecord
from tests.schema_validation import schema_errors

TOPICS = {
    "burgas/bogoridi/lamppost/+/noise": "lamppost.noise",
    "burgas/bogoridi/lamppost/+/weather": "lamppost.weather",
    "burgas/bogoridi/lamppost/+/air": "lamppost.air",
    "burgas/flood/+/level": "river.level",
    "burgas/ngsi-ld/#": "ngsi-ld",
}
LAMPPOST = [27.4712, 42.4958]  # Bogoridi Street


def record(topic: str, payload: object) -> RawRecord:
    return RawRecord("mqtt.live", topic, payload, datetime(2025, 6, 1, tzinfo=UTC), origin=topic)  # type: ignore[arg-type]


def mapped(topic: str, payload: object) -> dict:
    result = TopicMapper("mqtt.live", TOPICS)(record(topic, payload))
    assert isinstance(result, Mapped), getattr(result, "reason", result)
    return to_dict(result.entity, Form.NORMALIZED)


def rejected(topic: str, payload: object) -> str:
    result = TopicMapper("mqtt.live", TOPICS)(record(topic, payload))
    assert isinstance(result, Rejected), result
    assert result.source == "mqtt.live" and result.record == topic
    return result.reason


def test_lamppost_noise_becomes_noise_level_observed_over_its_period():
    entity = mapped("burgas/bogoridi/lamppost/lp-017/noise", {
        "sensor": "lp-017", "time": "2025-06-01T13:15:00+03:00", "location": LAMPPOST,
        "laeq": 61.2, "lamax": 74.8, "las": 58.1, "period_s": 300, "name": "Bogoridi 17"})
    observed = "2025-06-01T10:15:00Z"
    assert entity == {
        "id": "urn:ngsi-ld:NoiseLevelObserved:lamppost:lp-017", "type": "NoiseLevelObserved",
        "name": {"type": "Property", "value": "Bogoridi 17"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": LAMPPOST}},
        "dateObservedFrom": {"type": "Property", "value": "2025-06-01T10:10:00Z"},
        "dateObservedTo": {"type": "Property", "value": observed},
        "dateObserved": {"type": "Property", "value": observed},
        "LAS": {"type": "Property", "value": 58.1, "unitCode": "2N", "observedAt": observed},
        "LAeq": {"type": "Property", "value": 61.2, "unitCode": "2N", "observedAt": observed},
        "LAmax": {"type": "Property", "value": 74.8, "unitCode": "2N", "observedAt": observed},
    }


def test_lamppost_weather_converts_percent_humidity_and_keeps_hpa():
    entity = mapped("burgas/bogoridi/lamppost/lp-017/weather", {
        "sensor": "lp-017", "time": 1748772900000, "location": LAMPPOST, "temperature": 24.5,
        "humidity": 61, "pressure": 1013.2, "wind_speed": 3.4, "wind_direction": 120,
        "gust_speed": 7.0, "precipitation": 0, "illuminance": 52000})
    assert entity["id"] == "urn:ngsi-ld:WeatherObserved:lamppost:lp-017"
    assert entity["dateObserved"]["value"] == "2025-06-01T10:15:00Z"
    assert entity["relativeHumidity"]["value"] == 0.61
    assert entity["atmosphericPressure"] == {"type": "Property", "value": 1013.2, "unitCode": "A97",
                                             "observedAt": "2025-06-01T10:15:00Z"}
    assert entity["windDirection"]["value"] == 120 and entity["windSpeed"]["unitCode"] == "MTS"
    assert entity["precipitation"]["value"] == 0


def test_lamppost_air_takes_local_time_as_sofia():
    entity = mapped("burgas/bogoridi/lamppost/lp-017/air", {
        "sensor": "lp-017", "time": "2025-06-01 13:15:00", "location": LAMPPOST,
        "pm25": 11.2, "pm10": 19, "no2": 22.5, "co": 0.4, "aqi": 2})
    assert entity["id"] == "urn:ngsi-ld:AirQualityObserved:lamppost:lp-017"
    assert entity["dateObserved"]["value"] == "2025-06-01T10:15:00Z"
    assert entity["pm25"]["unitCode"] == "GQ" and entity["co"]["unitCode"] == "GP"
    assert entity["airQualityIndex"]["value"] == 2
    assert entity["typeofLocation"]["value"] == "outdoor"


def test_river_level_becomes_flood_monitoring_with_derived_status():
    entity = mapped("burgas/flood/akheloy-01/level", {
        "sensor": "akheloy-01", "time": "2025-06-01T10:15:00Z", "location": [27.6337, 42.6495],
        "level": 2.7, "distance": 1.3, "reference_level": 0, "alert_level": 2.5, "danger_level": 3.2})
    assert entity["id"] == "urn:ngsi-ld:FloodMonitoring:flood-warning:akheloy-01"
    assert entity["stationID"]["value"] == "akheloy-01"
    assert entity["currentLevel"]["value"] == 2.7 and entity["measuredDistance"]["value"] == 1.3
    assert entity["floodLevelStatus"]["value"] == "Alert"
    assert entity["observationDateTime"]["value"] == "2025-06-01T10:15:00Z"


def test_river_level_station_status_wins_and_location_is_optional():
    entity = mapped("burgas/flood/s2/level", {"sensor": "s2", "time": "2025-06-01T10:15:00Z",
                                              "level": 0.4, "status": "danger"})
    assert entity["floodLevelStatus"]["value"] == "Danger" and "location" not in entity


@pytest.mark.parametrize(("level", "alert", "danger", "status"), [
    (1.0, 2.0, 3.0, "Normal"), (2.0, 2.0, 3.0, "Alert"), (3.5, 2.0, 3.0, "Danger"),
    (3.5, None, 3.0, "Danger"), (1.0, None, None, None), (None, 2.0, 3.0, None)])
def test_flood_status_from_thresholds(level, alert, danger, status):
    assert flood_status(level, alert, danger) == status


def test_normalized_entity_payload_round_trips():
    weather = mapped("burgas/bogoridi/lamppost/lp-1/weather", {
        "sensor": "lp-1", "time": "2025-06-01T10:15:00Z", "location": LAMPPOST, "temperature": 21.0})
    again = mapped("burgas/ngsi-ld/weather", {**weather, "@context": ["https://example.org/ctx.jsonld"]})
    assert again == weather


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("burgas/bogoridi/lamppost/lp-1/noise", {"time": "2025-06-01T10:15:00Z", "location": LAMPPOST, "laeq": 50},
     "sensor: expected an id"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp 1", "time": "2025-06-01T10:15:00Z"},
     "sensor: expected an id"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": "yesterday", "location": LAMPPOST,
                                             "laeq": 50}, "time: 'yesterday' is not ISO 8601"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": 1748772900, "location": LAMPPOST,
                                             "laeq": 50}, "not epoch milliseconds"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": "2025-03-30 03:30:00",
                                             "location": LAMPPOST, "laeq": 50}, "does not exist in Europe/Sofia"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": "2025-06-01T10:15:00Z",
                                             "location": [42.4958, 27.4712], "laeq": 50}, "outside the Burgas area"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": "2025-06-01T10:15:00Z",
                                             "location": LAMPPOST}, "no reading"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": "2025-06-01T10:15:00Z",
                                             "location": LAMPPOST, "laeq": -3}, "laeq: -3 is negative"),
    ("burgas/bogoridi/lamppost/lp-1/noise", {"sensor": "lp-1", "time": "2025-06-01T10:15:00Z",
                                             "location": LAMPPOST, "laeq": 50, "period_s": 0}, "period_s"),
    ("burgas/bogoridi/lamppost/lp-1/weather", {"sensor": "lp-1", "time": "2025-06-01T10:15:00Z",
                                               "location": LAMPPOST, "humidity": 140}, "percentage"),
    ("burgas/bogoridi/lamppost/lp-1/air", {"sensor": "lp-1", "time": "2025-06-01T10:15:00Z",
                                           "location": LAMPPOST, "pm25": "lots"}, "pm25: 'lots' is not a number"),
    ("burgas/flood/s1/level", {"sensor": "s1", "time": "2025-06-01T10:15:00Z", "level": 1, "status": "flooded"},
     "status: expected Normal, Alert or Danger"),
    ("burgas/ngsi-ld/x", {"type": "Spaceship", "id": "urn:ngsi-ld:Spaceship:1"}, "not an NGSI-LD normalized"),
    ("burgas/ngsi-ld/x", {"id": "urn:ngsi-ld:WeatherObserved:1", "type": "WeatherObserved",
                          "temperature": {"type": "Property", "value": "hot"}}, "WeatherObserved refused"),
    ("somewhere/else", {"sensor": "x"}, "no sensor family for topic 'somewhere/else'"),
])
def test_bad_payloads_are_rejected_with_a_reason(topic, payload, reason):
    assert reason in rejected(topic, payload)


def test_record_the_source_could_not_read_is_rejected_with_its_problem():
    bad = RawRecord("mqtt.live", "t", {}, datetime.now(UTC), origin="burgas/flood/s/level",
                    problem="payload is not JSON: unexpected character")
    result = TopicMapper("mqtt.live", TOPICS)(bad)
    assert isinstance(result, Rejected) and result.reason.startswith("payload is not JSON")


def test_topic_table_first_matching_pattern_wins_and_bad_tables_are_config_errors():
    mapper = TopicMapper("s", {"a/+/b": "river.level", "a/#": "ngsi-ld"})
    assert mapper.family("a/x/b").feed == "river.level"
    assert mapper.family("a/x/c").feed == "ngsi-ld"
    assert mapper.family("b") is None
    with pytest.raises(ConfigError, match="unknown sensor family 'lamppost.sound'"):
        TopicMapper("s", {"a/#": "lamppost.sound"})
    with pytest.raises(ConfigError, match="not a valid MQTT topic filter"):
        TopicMapper("s", {"a/#/b": "river.level"})


GOLDEN_PAYLOADS = {
    "burgas/bogoridi/lamppost/a/noise": {"sensor": "a", "time": "2025-06-01T10:15:00Z", "location": LAMPPOST,
                                         "laeq": 50.5, "lamax": 60},
    "burgas/bogoridi/lamppost/a/weather": {"sensor": "a", "time": "2025-06-01T10:15:00Z", "location": LAMPPOST,
                                           "temperature": -2.5, "humidity": 90, "wind_speed": 0},
    "burgas/bogoridi/lamppost/a/air": {"sensor": "a", "time": "2025-06-01T10:15:00Z", "location": LAMPPOST,
                                       "pm1": 3, "o3": 40, "so2": 2},
    "burgas/flood/a/level": {"sensor": "a", "time": "2025-06-01T10:15:00Z", "level": 1.2, "alert_level": 2},
}


@pytest.mark.parametrize("topic", sorted(GOLDEN_PAYLOADS))
def test_every_family_validates_against_the_official_schema(topic):
    result = TopicMapper("mqtt.live", TOPICS)(record(topic, GOLDEN_PAYLOADS[topic]))
    assert isinstance(result, Mapped)
    wire = to_dict(result.entity, Form.KEY_VALUES)
    assert schema_errors(type(result.entity), wire) == []


def test_every_family_is_documented():
    doc = (__import__("pathlib").Path(__file__).parent.parent / "docs" / "mqtt-payloads.md").read_text()
    for family in FAMILIES:
        assert f"`{family}`" in doc


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
FIELDS = st.sampled_from(["sensor", "time", "location", "laeq", "lamax", "las", "period_s", "temperature",
                          "humidity", "pressure", "wind_direction", "pm25", "co", "aqi", "level",
                          "alert_level", "danger_level", "status", "name", "id", "type"])


@settings(max_examples=120, deadline=None)
@given(topic=st.sampled_from(["burgas/bogoridi/lamppost/x/noise", "burgas/bogoridi/lamppost/x/weather",
                              "burgas/bogoridi/lamppost/x/air", "burgas/flood/x/level", "burgas/ngsi-ld/x"]),
       payload=st.dictionaries(FIELDS, JSON, max_size=8))
def test_any_json_object_maps_or_is_rejected_never_raises(topic, payload):
    value = orjson.loads(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)) if _jsonable(payload) else {}
    result = TopicMapper("mqtt.live", TOPICS)(record(topic, value))
    assert isinstance(result, Mapped | Rejected)


def _jsonable(value: object) -> bool:
    try:
        orjson.dumps(value)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize("received, expected", [
    (datetime(2025, 10, 26, 0, 31, tzinfo=UTC), "2025-10-26T00:30:00Z"),  # first 03:30 (EEST)
    (datetime(2025, 10, 26, 1, 31, tzinfo=UTC), "2025-10-26T01:30:00Z"),  # second 03:30 (EET)
])
def test_a_naive_time_in_the_repeated_autumn_hour_is_the_instant_nearer_its_arrival(received, expected):
    payload = {"sensor": "lp-017", "time": "2025-10-26 03:30:00", "location": LAMPPOST,
               "pm25": 11.2, "pm10": 19}
    result = TopicMapper("mqtt.live", TOPICS)(RawRecord(
        "mqtt.live", "burgas/bogoridi/lamppost/lp-017/air", payload, received,
        origin="burgas/bogoridi/lamppost/lp-017/air"))
    assert isinstance(result, Mapped), getattr(result, "reason", result)
    assert to_dict(result.entity, Form.NORMALIZED)["dateObserved"]["value"] == expected
