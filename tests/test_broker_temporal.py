"""The temporal API of the embedded broker (NGSI-LD 1.8 temporal representation), over real HTTP."""

from __future__ import annotations

import math
import sqlite3
import time

import httpx
import pytest

from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.broker_fixtures import BASE, assert_problem, new_id

pytestmark = pytest.mark.integration
T = "/temporal/entities"


def _readings(entity_id: str, name: str, values: list, start_hour: int = 0, **members) -> dict:
    return {"id": entity_id, "type": "AirQualityObserved",
            name: [{"type": "Property", "value": v, "observedAt": f"2024-03-01T{start_hour + i:02d}:00:00Z",
                    **members} for i, v in enumerate(values)]}


def _values(answer: httpx.Response, name: str) -> list:
    assert answer.status_code in (200, 206), answer.text
    return [i["value"] for i in answer.json().get(name, [])]


def test_every_core_write_records_an_instance(client):
    ident = new_id("Car")
    assert client.post("/entities", json={"id": ident, "type": "Car", "speed": {"value": 10},
                                          "fuel": {"value": 50}}).status_code == 201
    assert client.patch(f"/entities/{ident}/attrs", json={"speed": {"value": 20}}).status_code == 204
    assert client.post(f"/entities/{ident}/attrs", json={"speed": {"value": 30}}).status_code == 204
    assert client.patch(f"/entities/{ident}", json={"speed": {"value": 40}}).status_code == 204
    assert client.post("/entityOperations/upsert", params={"options": "update"},
                       json=[{"id": ident, "type": "Car", "speed": {"value": 50}}]).status_code == 204
    assert client.delete(f"/entities/{ident}/attrs/fuel").status_code == 204
    answer = client.get(f"{T}/{ident}", params={"timeproperty": "createdAt", "lastN": "10"})
    assert _values(answer, "speed") == [10, 20, 30, 40, 50]
    assert _values(answer, "fuel") == [50]  # the deletion is an instance of its own timeproperty
    deleted = client.get(f"{T}/{ident}", params={"timeproperty": "deletedAt"}).json()
    assert deleted["fuel"][0]["value"] == "urn:ngsi-ld:null" and "deletedAt" in deleted["fuel"][0]
    assert "speed" not in deleted
    assert client.delete(f"/entities/{ident}").status_code == 204
    assert client.get(f"{T}/{ident}", params={"timeproperty": "deletedAt"}).json()["speed"][0]["value"] \
        == "urn:ngsi-ld:null"


@pytest.mark.parametrize("options", ["update", "replace"])
def test_a_reading_written_again_unchanged_adds_no_instance(client, options):
    ident = new_id("Station")

    def upsert(name: str, pm10: float, observed: str, no2: float) -> None:
        assert client.post("/entityOperations/upsert", params={"options": options}, json=[{
            "id": ident, "type": "AirQualityObserved", "name": {"value": name},
            "pm10": {"value": pm10, "unitCode": "GQ", "observedAt": observed},
            "no2": {"value": no2, "observedAt": f"2024-03-01T{no2:02.0f}:00:00Z"}}]).status_code in (201, 204)

    upsert("a", 20.0, "2024-03-01T01:00:00Z", 1)
    upsert("b", 20.0, "2024-03-01T01:00:00Z", 2)  # pm10's reading again, unchanged: no instance
    upsert("b", 21.0, "2024-03-01T01:00:00Z", 3)  # the same instant, another value: an instance
    upsert("b", 21.0, "2024-03-01T02:00:00Z", 4)
    answer = client.get(f"{T}/{ident}", params={"timeproperty": "createdAt", "lastN": "10"})
    assert _values(answer, "pm10") == [20.0, 21.0, 21.0]
    assert _values(answer, "no2") == [1, 2, 3, 4]
    assert _values(answer, "name") == ["a", "b", "b", "b"]  # no observedAt: every write, as before


def test_temporal_create_adds_history_and_never_rewrites_the_current_state(client):
    ident = new_id("Station")
    assert client.post("/entities", json={"id": ident, "type": "AirQualityObserved",
                                          "pm10": {"value": 99, "observedAt": "2024-03-02T00:00:00Z"}}
                       ).status_code == 201
    answer = client.post(T, json=_readings(ident, "pm10", [11, 12, 13]))
    assert answer.status_code == 204  # the entity already had history: instances were added
    assert client.get(f"/entities/{ident}").json()["pm10"]["value"] == 99
    assert _values(client.get(f"{T}/{ident}"), "pm10") == [11, 12, 13, 99]
    fresh = new_id("Station")
    answer = client.post(T, json=_readings(fresh, "pm10", [5, 7, 6]))
    assert answer.status_code == 201 and answer.headers["location"] == f"{BASE}{T}/{fresh}"
    # No current state yet: it is created from the newest instance.
    assert client.get(f"/entities/{fresh}").json()["pm10"] == {
        "type": "Property", "value": 6, "observedAt": "2024-03-01T02:00:00Z"}


def test_timerel_bounds_lastn_and_the_simplified_form(client):
    ident = new_id("Station")
    client.post(T, json=_readings(ident, "pm10", [1, 2, 3, 4, 5, 6]))
    params = {"timerel": "after", "timeAt": "2024-03-01T02:00:00Z"}
    assert _values(client.get(f"{T}/{ident}", params=params), "pm10") == [3, 4, 5, 6]  # inclusive
    params = {"timerel": "before", "timeAt": "2024-03-01T02:00:00.000Z"}
    assert _values(client.get(f"{T}/{ident}", params=params), "pm10") == [1, 2]  # exclusive
    params = {"timerel": "between", "timeAt": "2024-03-01T01:00:00Z", "endTimeAt": "2024-03-01T04:00:00Z"}
    assert _values(client.get(f"{T}/{ident}", params=params), "pm10") == [2, 3, 4]
    assert _values(client.get(f"{T}/{ident}", params={"lastN": "2"}), "pm10") == [5, 6]  # oldest first
    simplified = client.get(f"{T}/{ident}", params={"lastN": "2", "options": "temporalValues"}).json()
    assert simplified["pm10"] == {"type": "Property",
                                  "values": [[5, "2024-03-01T04:00:00Z"], [6, "2024-03-01T05:00:00Z"]]}
    for bad in ({"timerel": "after"}, {"timerel": "around", "timeAt": "2024-03-01T00:00:00Z"},
                {"timerel": "after", "timeAt": "2024-03-01"}, {"timerel": "between", "timeAt": "2024-03-01T00:00:00Z"},
                {"lastN": "0"}, {"lastN": "1.5"}, {"timeproperty": "seenAt"}):
        assert_problem(client.get(f"{T}/{ident}", params=bad), 400, "BadRequestData")


def test_values_keep_their_json_type_and_members(client):
    ident = new_id("Mixed")
    body = {"id": ident, "type": "Mixed",
            "reading": [{"type": "Property", "value": 3, "observedAt": "2024-03-01T00:00:00Z", "unitCode": "GQ",
                         "quality": {"type": "Property", "value": "good"}},
                        {"type": "Property", "value": 2.5, "observedAt": "2024-03-01T01:00:00Z", "unitCode": "GQ"},
                        {"type": "Property", "value": "n/a", "observedAt": "2024-03-01T02:00:00Z"},
                        {"type": "Property", "value": True, "observedAt": "2024-03-01T03:00:00Z"},
                        {"type": "Property", "value": {"a": [1, 2]}, "observedAt": "2024-03-01T04:00:00Z"}],
            "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "observedAt": "2024-03-01T00:00:00Z"}}
    assert client.post(T, json=body).status_code == 201
    got = client.get(f"{T}/{ident}").json()
    values = [i["value"] for i in got["reading"]]
    assert values == [3, 2.5, "n/a", True, {"a": [1, 2]}]
    assert type(values[0]) is int and type(values[1]) is float
    assert got["reading"][0]["unitCode"] == "GQ" and got["reading"][0]["quality"]["value"] == "good"
    assert got["owner"][0]["object"] == "urn:ngsi-ld:Person:1"
    assert all(i["instanceId"].startswith("urn:ngsi-ld:Instance:") for i in got["reading"])


def test_aggregated_values_per_period(client):
    ident = new_id("Station")
    # Two hours: 10, 20, 30 at 00:00/00:20/00:40 and 5 at 01:10.
    times = ["00:00", "00:20", "00:40", "01:10"]
    client.post(T, json={"id": ident, "type": "AirQualityObserved", "no2": [
        {"type": "Property", "value": v, "observedAt": f"2024-03-01T{t}:00Z"}
        for v, t in zip([10, 20, 30, 5], times, strict=True)]})
    answer = client.get(f"{T}/{ident}", params={"options": "aggregatedValues", "aggrPeriodDuration": "PT1H",
                                                "aggrMethods": "totalCount,distinctCount,sum,avg,min,max,stddev,sumsq"})
    assert answer.status_code == 200, answer.text
    no2 = answer.json()["no2"]
    period = ["2024-03-01T00:00:00Z", "2024-03-01T01:00:00Z"]
    assert no2["avg"] == [[20.0, *period], [5.0, "2024-03-01T01:00:00Z", "2024-03-01T02:00:00Z"]]
    assert no2["totalCount"][0][0] == 3 and no2["distinctCount"][0][0] == 3
    assert no2["sum"][0][0] == 60 and no2["min"][0][0] == 10 and no2["max"][0][0] == 30
    assert no2["sumsq"][0][0] == 1400 and math.isclose(no2["stddev"][0][0], math.sqrt(200 / 3))
    daily = client.get(f"{T}/{ident}", params={"options": "aggregatedValues", "aggrMethods": "avg",
                                               "aggrPeriodDuration": "P1D", "timerel": "after",
                                               "timeAt": "2024-03-01T00:00:00Z"}).json()
    assert daily["no2"]["avg"] == [[16.25, "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z"]]
    for bad in ({"aggrMethods": "median"}, {"aggrMethods": "avg", "aggrPeriodDuration": "1 hour"}, {}):
        answer = client.get(f"{T}/{ident}", params={"options": "aggregatedValues", **bad})
        assert_problem(answer, 400, "BadRequestData")


def test_query_filters_on_in_window_instances(client):
    hot, cold = new_id("Probe"), new_id("Probe")
    for ident, values in ((hot, [10, 40]), (cold, [10, 12])):
        body = _readings(ident, "temperature", values)
        body["type"] = "Probe"
        body["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [27.47, 42.5]},
                            "observedAt": "2024-03-01T00:00:00Z"}
        assert client.post(T, json=body).status_code == 201
    answer = client.get(T, params={"type": "Probe", "q": "temperature>30", "count": "true"})
    assert [e["id"] for e in answer.json()] == [hot] and answer.headers["NGSILD-Results-Count"] == "1"
    # 40 is outside the window: no entity qualifies.
    answer = client.get(T, params={"type": "Probe", "q": "temperature>30", "timerel": "before",
                                   "timeAt": "2024-03-01T01:00:00Z"})
    assert answer.json() == []
    near = client.get(T, params={"type": "Probe", "georel": "near;maxDistance==1000", "geometry": "Point",
                                 "coordinates": "[27.471,42.5]"})
    assert {e["id"] for e in near.json()} == {hot, cold}
    posted = client.post("/temporal/entityOperations/query", json={
        "type": "Query", "entities": [{"id": cold, "type": "Probe"}], "temporalQ": {"lastN": 1}})
    assert posted.status_code == 200 and _values_of(posted.json()[0], "temperature") == [12]
    assert_problem(client.get(T, params={"id": hot}), 400, "BadRequestData", "Too broad query")


def _values_of(entity: dict, name: str) -> list:
    return [i["value"] for i in entity[name]]


def test_instance_patch_and_delete_and_history_delete(client):
    ident = new_id("Station")
    client.post(T, json=_readings(ident, "pm10", [1, 2, 3]))
    instances = client.get(f"{T}/{ident}").json()["pm10"]
    first, second = instances[0]["instanceId"], instances[1]["instanceId"]
    answer = client.patch(f"{T}/{ident}/attrs/pm10/{first}", json={"value": 100})
    assert answer.status_code == 204, answer.text
    assert client.delete(f"{T}/{ident}/attrs/pm10/{second}").status_code == 204
    got = client.get(f"{T}/{ident}", params={"options": "sysAttrs"}).json()["pm10"]
    assert [i["value"] for i in got] == [100, 3] and got[0]["observedAt"] == "2024-03-01T00:00:00Z"
    assert got[0]["modifiedAt"] >= got[0]["createdAt"]
    assert_problem(client.delete(f"{T}/{ident}/attrs/pm10/{second}"), 404, "ResourceNotFound")
    assert client.post(f"{T}/{ident}/attrs", json={"pm25": [{"value": 4, "observedAt": "2024-03-01T05:00:00Z"}]}
                       ).status_code == 204
    assert client.delete(f"{T}/{ident}/attrs/pm10", params={"deleteAll": "true"}).status_code == 204
    assert set(client.get(f"{T}/{ident}").json()) == {"id", "type", "pm25"}
    assert client.delete(f"{T}/{ident}").status_code == 204
    assert_problem(client.get(f"{T}/{ident}"), 404, "ResourceNotFound")
    assert client.get(f"/entities/{ident}").status_code == 200  # the current state stays
    assert_problem(client.post(f"{T}/{ident}/attrs", json={"pm10": {"value": 1}}), 404, "ResourceNotFound")


def test_offset_observed_at_is_rejected(client):
    body = _readings(new_id("Station"), "pm10", [1])
    body["pm10"][0]["observedAt"] = "2024-03-01T02:00:00+02:00"
    assert_problem(client.post(T, json=body), 400, "BadRequestData")


def test_unknown_uri_parameters_are_invalid_requests_as_on_the_core_api(client):
    # GS CIM 009 and the ETSI suite (059_01_03/04): InvalidRequest, as protocol.check_params says.
    body = _readings(new_id("Station"), "pm10", [1])
    assert_problem(client.post(T, params={"invalidParams": "x"}, json=body), 400, "InvalidRequest")
    assert_problem(client.get(T, params={"invalidParams": "x", "type": "Building"}), 400, "InvalidRequest")
    assert_problem(client.get(T, params={"type": "Building", "count": ""}), 400, "BadRequestData")


def test_tenants_have_their_own_history(client):
    ident = new_id("Station")
    assert client.post(T, json=_readings(ident, "pm10", [1]), headers={"NGSILD-Tenant": "hist1"}).status_code == 201
    assert _values(client.get(f"{T}/{ident}", headers={"NGSILD-Tenant": "hist1"}), "pm10") == [1]
    assert_problem(client.get(f"{T}/{ident}"), 404, "ResourceNotFound")
    assert_problem(client.get(f"{T}/{ident}", headers={"NGSILD-Tenant": "nohist"}), 404, "NonExistingTenant")


@pytest.fixture(scope="module")
def small_pages():
    with EmbeddedBroker(BrokerSettings(port=0, temporal_limit=5)) as running, \
            httpx.Client(base_url=running.url + BASE, timeout=30.0) as http:
        yield http


def test_instance_pagination_cuts_every_attribute_at_one_instant(small_pages):
    ident = new_id("Station")
    body = _readings(ident, "pm10", list(range(8)))
    body["no2"] = _readings(ident, "no2", list(range(8)), start_hour=3)["no2"]
    small_pages.post(T, json=body)
    answer = small_pages.get(f"{T}/{ident}")
    assert answer.status_code == 206
    assert answer.headers["content-range"] == "date-time 2024-03-01T00:00:00Z-2024-03-01T04:00:00Z/*"
    assert _values(answer, "pm10") == [0, 1, 2, 3, 4] and _values(answer, "no2") == [0, 1]
    answer = small_pages.get(f"{T}/{ident}", params={"lastN": "20"})
    assert answer.status_code == 206
    assert answer.headers["content-range"] == "date-time 2024-03-01T10:00:00Z-2024-03-01T06:00:00Z/20"
    assert _values(answer, "no2") == [3, 4, 5, 6, 7] and _values(answer, "pm10") == [6, 7]
    answer = small_pages.get(f"{T}/{ident}", params={"lastN": "3"})  # fewer than the limit: complete
    assert answer.status_code == 200 and "content-range" not in answer.headers


def test_history_off_records_nothing_and_answers_501(tmp_path):
    settings = BrokerSettings(port=0, temporal=False, db_path=tmp_path / "b.sqlite")
    with EmbeddedBroker(settings) as running, httpx.Client(base_url=running.url + BASE) as http:
        assert http.post("/entities", json={"id": "urn:ngsi-ld:X:1", "type": "X", "a": 1}).status_code == 201
        assert_problem(http.get(f"{T}/urn:ngsi-ld:X:1"), 501, "OperationNotSupported")
    with sqlite3.connect(tmp_path / "b.sqlite") as conn:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name='t_instances'").fetchone() is None


def test_numbers_are_stored_as_reals_and_retention_prunes_old_instances(tmp_path):
    db = tmp_path / "b.sqlite"
    ident = "urn:ngsi-ld:Station:old"
    now = time.gmtime()
    recent = time.strftime("%Y-%m-%dT%H:00:00Z", now)
    with EmbeddedBroker(BrokerSettings(port=0, db_path=db)) as running, \
            httpx.Client(base_url=running.url + BASE) as http:
        body = _readings(ident, "pm10", [1, 2])
        body["pm10"].append({"type": "Property", "value": 3, "observedAt": recent})
        assert http.post(T, json=body).status_code == 201
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT num, val FROM t_instances ORDER BY obs").fetchall()
    assert rows == [(1.0, None), (2.0, None), (3.0, None)]
    with EmbeddedBroker(BrokerSettings(port=0, db_path=db, temporal_retention_days=30)) as running, \
            httpx.Client(base_url=running.url + BASE) as http:
        deadline = time.monotonic() + 20  # the first pruning pass runs at startup, in the background
        while _values(http.get(f"{T}/{ident}"), "pm10") != [3] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _values(http.get(f"{T}/{ident}"), "pm10") == [3]


def test_the_same_reading_sent_again_replaces_its_instance(client):
    ident = new_id("Station")
    assert client.post(T, json=_readings(ident, "pm10", [1, 2, 3])).status_code == 201
    again = _readings(ident, "pm10", [1, 20])  # 00:00 unchanged, 01:00 corrected
    again["pm10"].append({"type": "Property", "value": 7, "observedAt": "2024-03-01T01:00:00Z",
                          "datasetId": "urn:ngsi-ld:Dataset:raw"})  # another dataset: its own instance
    assert client.post(T, json=again).status_code == 204
    got = client.get(f"{T}/{ident}").json()["pm10"]
    assert [(i["value"], i.get("datasetId")) for i in got] == [(1, None), (20, None), (7, "urn:ngsi-ld:Dataset:raw"),
                                                                (3, None)]
