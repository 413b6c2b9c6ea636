"""Subscriptions of the embedded broker: validation, matching, notification content and delivery."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson
import pytest

from ngsild_broker.contexts import ContextResolver
from ngsild_broker.errors import NgsiError
from ngsild_broker.notifier import MqttTarget, Notifier
from ngsild_broker.operations import Change
from ngsild_broker.settings import BrokerSettings
from ngsild_broker.sqlite import SqliteStore
from ngsild_broker.subscriptions import SubscriptionManager, validate
from tests.mqtt_fixtures import MqttListener
from tests.servers import PayloadServer, Reply

NS = "https://ex.org/ns#"
CTX = {"ex": NS, "T": "ex:T", "temperature": "ex:temperature", "name": "ex:name"}
LOC = "https://uri.etsi.org/ngsi-ld/location"
HOOK = "http://127.0.0.1:9/notify"


class FakeBroker:
    """What the manager needs from the app's BrokerState."""

    def __init__(self) -> None:
        self.store = SqliteStore(None)
        self.contexts = ContextResolver(BrokerSettings(), self.store)


def stored(n: int, temperature: Any = 20, lon: float = 27.47, **extra: Any) -> dict:
    stamp = "2024-01-01T00:00:00.000Z"
    doc = {"id": f"urn:ngsi-ld:T:{n}", "type": [NS + "T"], "createdAt": stamp, "modifiedAt": stamp,
           NS + "temperature": {"type": "Property", "value": temperature, "createdAt": stamp,
                                "modifiedAt": stamp},
           NS + "name": {"type": "Property", "value": f"station {n}", "createdAt": stamp,
                         "modifiedAt": stamp},
           LOC: {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, 42.5]}}}
    doc.update(extra)
    return doc


def sub(uri: str = HOOK, **extra: Any) -> dict:
    body = {"type": "Subscription", "entities": [{"type": "T"}],
            "notification": {"endpoint": {"uri": uri}}}
    body.update(extra)
    return body


def recording_notifier() -> tuple[Notifier, list[httpx.Request]]:
    """A Notifier whose HTTP client records requests instead of opening sockets."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500 if "fail" in request.url.path else 200)

    return Notifier(httpx.AsyncClient(transport=httpx.MockTransport(handler))), seen


async def manager_with(*subs: dict, tenant: str = "") -> tuple[SubscriptionManager, list[httpx.Request]]:
    notifier, seen = recording_notifier()
    manager = SubscriptionManager(FakeBroker(), notifier=notifier)
    await manager.start()
    ctx = await manager.contexts.from_value(CTX)
    for body in subs:
        await manager.create(tenant, body, ctx)
    return manager, seen


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "status", "title"), [
    ({"type": "Subscription", "entities": [{"type": "T"}]}, 400, "Mandatory field missing"),
    (sub(entities=[]), 400, "Empty Array"),
    ({"type": "Subscription", "notification": {"endpoint": {"uri": HOOK}}}, 400, "Invalid Subscription"),
    (sub(entities=[{"id": "urn:a"}]), 400, "Mandatory field missing"),
    (sub(id="not-a-uri"), 400, "Invalid Subscription::id"),
    (sub(type="Registration"), 400, "Invalid value for Subscription::type"),
    (sub(q="temperature>>"), 400, "Invalid Q-Filter"),
    (sub(unknownField=1), 400, "Invalid field for Subscription"),
    (sub(isActive="yes"), 400, "Invalid value for Subscription::isActive"),
    (sub(expiresAt="tomorrow"), 400, "Invalid DateTime"),
    (sub(throttling=-1), 400, "Invalid value for Subscription::throttling"),
    (sub(notificationTrigger=["entityExploded"]), 400,
     "Invalid value for Subscription::notificationTrigger"),
    (sub(csf="x==1"), 501, "Not Implemented"),
    (sub(timeInterval=0), 400, "Invalid value for Subscription::timeInterval"),  # periodic: supported (ETSI)
    (sub(geoQ={"geometry": "Polygon", "georel": "within",
               "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}), 501, "Not Implemented"),
    (sub(geoQ={"geometry": "Point", "georel": "near;maxDistance==10"}), 400, "Incomplete geometry"),
    (sub(geoQ={"geometry": "Point", "georel": "within", "coordinates": [27.4, 42.5]}), 400,
     "Invalid Geo-Spatial filter"),
    (sub(uri="mqtts://127.0.0.1:8883/t"), 501, "Not Implemented"),
    (sub(uri="ftp://x/y"), 400, "Invalid Endpoint"),
    ({**sub(), "notification": {"endpoint": {"uri": HOOK, "accept": "text/plain"}}}, 400,
     "Invalid value for Subscription::notification::endpoint::accept"),
    ({**sub(), "notification": {"endpoint": {"uri": HOOK}, "format": "xml"}}, 400,
     "Invalid value for Subscription::notification::format"),
    # keyValues + sysAttrs is accepted since the ETSI work (046_17); pick with attributes is not (028_08)
    ({**sub(), "notification": {"endpoint": {"uri": HOOK}, "pick": ["a"], "attributes": ["b"]}},
     400, "Invalid Subscription"),
    ({**sub(), "notification": {"endpoint": {"uri": "mqtt://h:1883/t",
                                             "notifierInfo": [{"key": "Other", "value": "1"}]}}},
     400, "Invalid key in notifierInfo"),
    ({**sub(), "notification": {"endpoint": {"uri": "mqtt://h:1883/t",
                                             "notifierInfo": [{"key": "MQTT-QoS", "value": "3"}]}}},
     400, "Invalid value for notifierInfo::MQTT-QoS"),
    ({**sub(), "notification": {"endpoint": {"uri": "mqtt://h:1883/t",
                                             "notifierInfo": [{"key": "MQTT-Version", "value": "4"}]}}},
     400, "Invalid value for notifierInfo::MQTT-Version"),
    ({**sub(), "notification": {"endpoint": {"uri": HOOK, "receiverInfo": [{"key": "A"}]}}}, 400,
     "Invalid value"),
])
def test_invalid_subscription_is_rejected_as_orion_ld_does(body: dict, status: int, title: str) -> None:
    with pytest.raises(NgsiError) as err:
        validate(body)
    assert (err.value.status, err.value.title) == (status, title)
    assert err.value.detail


def test_a_valid_subscription_keeps_its_fields_and_renames_expires() -> None:
    body = validate(sub(expires="2030-01-01T00:00:00Z", q="temperature>20",
                        geoQ={"geometry": "Point", "georel": "near;maxDistance==1000",
                              "coordinates": [27.47, 42.5]}, status="active"))
    assert body["expiresAt"] == "2030-01-01T00:00:00Z" and "expires" not in body
    assert "status" not in body


def test_existing_id_is_409_and_missing_is_404() -> None:
    async def go() -> None:
        manager, _ = await manager_with(sub(id="urn:ngsi-ld:Subscription:1"))
        ctx = manager.contexts.core
        with pytest.raises(NgsiError) as err:
            await manager.create("", sub(id="urn:ngsi-ld:Subscription:1"), ctx)
        assert (err.value.status, err.value.kind) == (409, "AlreadyExists")
        with pytest.raises(NgsiError) as err:
            manager.get("", "urn:ngsi-ld:Subscription:2")
        assert err.value.status == 404
        with pytest.raises(NgsiError):
            manager.get("other", "urn:ngsi-ld:Subscription:1")  # tenants do not share
        await manager.stop()
    run(go())


@pytest.mark.integration  # connects to a closed loopback port
def test_unreachable_mqtt_server_at_creation_is_500() -> None:
    async def go() -> None:
        manager, _ = await manager_with()
        port = _closed_port()
        with pytest.raises(NgsiError) as err:
            await manager.create("", sub(uri=f"mqtt://127.0.0.1:{port}/t"), manager.contexts.core)
        assert (err.value.status, err.value.title) == (500, "Unable to connect to MQTT server")
        await manager.stop()
    run(go())


def _closed_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mqtt_uri_is_taken_apart_like_orion_ld() -> None:
    t = MqttTarget.parse("mqtt://user:p%40ss@broker.local:1883/city/burgas/air")
    assert (t.host, t.port, t.topic, t.username, t.password) == (
        "broker.local", 1883, "city/burgas/air", "user", "p@ss")
    for bad in ("mqtt://h/topic", "mqtt://h:1883", "mqtt://h:1883/"):
        with pytest.raises(ValueError):
            MqttTarget.parse(bad)


# --- matching and notification content (no sockets) -----------------------------------------------

def _notified(seen: list[httpx.Request]) -> list[dict]:
    return [orjson.loads(r.content) for r in seen]


def test_one_notification_per_batch_with_every_matching_entity() -> None:
    async def go() -> None:
        manager, seen = await manager_with(sub(q="temperature>25"))
        changes = [Change(None, stored(1, 30)), Change(None, stored(2, 10)), Change(None, stored(3, 26))]
        await manager.entities_changed("", changes)
        await manager.notifier.join()
        assert len(seen) == 1
        body = _notified(seen)[0]
        assert [e["id"] for e in body["data"]] == ["urn:ngsi-ld:T:1", "urn:ngsi-ld:T:3"]
        assert body["type"] == "Notification" and body["id"].startswith("urn:ngsi-ld:Notification:")
        assert body["data"][0]["temperature"] == {"type": "Property", "value": 30}
        assert body["data"][0]["type"] == "T"
        request = seen[0]
        assert request.url.params["subscriptionId"] == body["subscriptionId"]
        assert request.headers["content-type"] == "application/json"
        assert request.headers["ngsild-attribute-format"] == "Normalized"
        assert 'rel="http://www.w3.org/ns/json-ld#context"' in request.headers["link"]
        await manager.stop()
    run(go())


def test_entity_selectors_watched_attributes_and_geo() -> None:
    async def go() -> None:
        manager, seen = await manager_with(
            sub(entities=[{"type": "T", "idPattern": ":T:1"}], watchedAttributes=["temperature"]),
            sub(entities=[{"type": "T", "id": "urn:ngsi-ld:T:2"}]),
            sub(entities=[{"type": "Other"}]),
            sub(geoQ={"geometry": "Point", "georel": "near;maxDistance==1000",
                      "coordinates": [27.47, 42.5]}))
        ids = {s.doc["entities"][0].get("idPattern") or s.doc["entities"][0].get("id")
               or s.doc.get("geoQ", {}).get("georel") or "other": s.id
               for s in manager.subs[""].values()}
        before = stored(1, 20)
        renamed = {**before, NS + "name": {"type": "Property", "value": "renamed"}}
        await manager.entities_changed("", [Change(before, renamed)])  # temperature untouched
        await manager.entities_changed("", [Change(stored(2, lon=28.5), stored(2, 21, lon=28.5))])
        await manager.entities_changed("", [Change(before, stored(1, 22))])
        await manager.notifier.join()
        got = [(b["subscriptionId"], [e["id"] for e in b["data"]]) for b in _notified(seen)]
        assert (ids["urn:ngsi-ld:T:2"], ["urn:ngsi-ld:T:2"]) in got
        assert (ids[":T:1"], ["urn:ngsi-ld:T:1"]) in got
        assert got.count((ids["near;maxDistance==1000"], ["urn:ngsi-ld:T:1"])) == 2
        assert all(s != ids["other"] for s, _ in got)
        assert len(got) == 4
        await manager.stop()
    run(go())


def test_same_value_update_still_notifies_watched_attributes() -> None:
    async def go() -> None:
        manager, seen = await manager_with(sub(watchedAttributes=["temperature"]))
        before = stored(1, 20)
        after = stored(1, 20)
        after[NS + "temperature"] = {**after[NS + "temperature"], "modifiedAt": "2024-02-01T00:00:00.000Z"}
        await manager.entities_changed("", [Change(before, after)])
        await manager.notifier.join()
        assert len(seen) == 1
        await manager.stop()
    run(go())


def test_inactive_expired_throttled_and_trigger_filtered_subscriptions_stay_quiet() -> None:
    async def go() -> None:
        manager, seen = await manager_with(
            sub(isActive=False), sub(expiresAt="2001-01-01T00:00:00Z"), sub(throttling=3600),
            sub(notificationTrigger=["entityDeleted"]))
        for n in range(3):
            await manager.entities_changed("", [Change(None, stored(n))])
        await manager.notifier.join()
        assert len(seen) == 1  # the throttled one, once
        statuses = sorted(s.status for s in manager.subs[""].values())
        assert statuses == ["active", "active", "expired", "paused"]
        await manager.entities_changed("", [Change(stored(1), None)])
        await manager.notifier.join()
        deleted = _notified(seen)[-1]["data"][0]
        assert deleted["id"] == "urn:ngsi-ld:T:1" and "deletedAt" in deleted
        await manager.stop()
    run(go())


def test_formats_accept_receiver_info_and_tenant_header() -> None:
    async def go() -> None:
        body = sub()
        body["notification"] = {"format": "keyValues", "attributes": ["temperature"],
                                "endpoint": {"uri": HOOK, "accept": "application/ld+json",
                                             "receiverInfo": [{"key": "Authorization",
                                                               "value": "Bearer 123"}]}}
        concise = sub()
        concise["notification"] = {"format": "concise", "endpoint": {"uri": HOOK + "2"}}
        manager, seen = await manager_with(body, concise, tenant="burgas")
        await manager.entities_changed("burgas", [Change(None, stored(1, 30))])
        await manager.entities_changed("", [Change(None, stored(2, 30))])  # other tenant: nothing
        await manager.notifier.join()
        assert len(seen) == 2
        by_uri = {str(r.url).split("?")[0]: r for r in seen}
        kv = by_uri[HOOK]
        payload = orjson.loads(kv.content)
        # JSON-LD notifications: every entity carries the context too (ETSI 046_14_01)
        assert payload["data"] == [{"id": "urn:ngsi-ld:T:1", "type": "T", "temperature": 30, "@context": CTX}]
        assert payload["@context"] == CTX  # the subscription's context unchanged (ETSI suite)
        assert kv.headers["content-type"] == "application/ld+json" and "link" not in kv.headers
        assert kv.headers["ngsild-attribute-format"] == "Simplified"
        assert kv.headers["authorization"] == "Bearer 123"
        assert kv.headers["ngsild-tenant"] == "burgas"
        c = orjson.loads(by_uri[HOOK + "2"].content)["data"][0]
        assert c["temperature"] == 30 and c["location"] == {"type": "Point", "coordinates": [27.47, 42.5]}
        assert by_uri[HOOK + "2"].headers["ngsild-attribute-format"] == "Concise"
        await manager.stop()
    run(go())


def test_counters_show_success_and_failure() -> None:
    async def go() -> None:
        manager, _ = await manager_with(sub(id="urn:s:ok"), sub(id="urn:s:bad", uri=HOOK + "/fail"))
        await manager.entities_changed("", [Change(None, stored(1))])
        await manager.notifier.join()
        ok = manager.get("", "urn:s:ok").view()["notification"]
        bad = manager.get("", "urn:s:bad").view()["notification"]
        assert (ok["status"], ok["timesSent"]) == ("ok", 1) and "lastSuccess" in ok and "lastFailure" not in ok
        assert (bad["status"], bad["timesSent"]) == ("failed", 1) and "lastFailure" in bad
        await manager.stop()
    run(go())


def test_subscriptions_survive_a_restart(tmp_path) -> None:
    async def go() -> None:
        settings = BrokerSettings(db_path=tmp_path / "b.db")
        broker = FakeBroker()
        broker.store = SqliteStore(settings.db_path)
        broker.contexts = ContextResolver(settings, broker.store)
        notifier, _ = recording_notifier()
        manager = SubscriptionManager(broker, notifier=notifier)
        await manager.start()
        await manager.create("t1", sub(id="urn:s:1", q="temperature>1"),
                             await broker.contexts.from_value(CTX))
        await manager.stop()
        broker.store.close()
        again = FakeBroker()
        again.store = SqliteStore(settings.db_path)
        again.contexts = ContextResolver(settings, again.store)
        notifier, seen = recording_notifier()
        restored = SubscriptionManager(again, notifier=notifier)
        await restored.start()
        assert restored.get("t1", "urn:s:1").doc["q"] == "temperature>1"
        await restored.entities_changed("t1", [Change(None, stored(1, 5))])
        await restored.notifier.join()
        assert len(seen) == 1
        await restored.stop()
        again.store.close()
    run(go())


def test_a_full_queue_drops_instead_of_blocking() -> None:
    async def go() -> None:
        notifier, _ = recording_notifier()
        notifier._queue_size = 1
        manager = SubscriptionManager(FakeBroker(), notifier=notifier)
        await manager.start()
        await manager.create("", sub(id="urn:s:1"), await manager.contexts.from_value(CTX))
        for n in range(5):
            await manager.entities_changed("", [Change(None, stored(n))])  # never waits
        await manager.notifier.join()
        view = manager.get("", "urn:s:1").view()["notification"]
        assert notifier.dropped >= 1 and view["timesSent"] == 5
        await manager.stop()
    run(go())


# --- real receivers on loopback -------------------------------------------------------------------

@pytest.mark.integration
def test_http_notification_reaches_a_real_receiver() -> None:
    with PayloadServer({"/notify": Reply(status=204)}) as server:
        async def go() -> None:
            manager = SubscriptionManager(FakeBroker())
            await manager.start()
            ctx = await manager.contexts.from_value(CTX)
            await manager.create("", sub(id="urn:s:http", uri=server.url("/notify")), ctx)
            await manager.entities_changed("", [Change(None, stored(1, 30))])
            await manager.notifier.join()
            assert manager.get("", "urn:s:http").view()["notification"]["status"] == "ok"
            await manager.stop()
        run(go())
        (request,) = server.requests_to("/notify")
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert request.method == "POST" and request.query["subscriptionId"] == ["urn:s:http"]
        assert headers["content-type"] == "application/json"
        body = orjson.loads(request.body)
        assert body["subscriptionId"] == "urn:s:http" and body["data"][0]["id"] == "urn:ngsi-ld:T:1"


@pytest.mark.integration
@pytest.mark.parametrize("qos", ["0", "1", "2"])
def test_mqtt_notification_is_published_to_the_topic(mqtt_broker: tuple[str, int], qos: str) -> None:
    host, port = mqtt_broker
    topic = f"burgas/test/{time.time_ns()}"
    with MqttListener(host, port, topic) as listener:
        async def go() -> None:
            manager = SubscriptionManager(FakeBroker())
            await manager.start()
            body = sub(id="urn:s:mqtt")
            body["notification"] = {"endpoint": {
                "uri": f"mqtt://{host}:{port}/{topic}",
                "notifierInfo": [{"key": "MQTT-QoS", "value": qos}],
                "receiverInfo": [{"key": "X-Extra", "value": "yes"}]}}
            await manager.create("burgas", body, await manager.contexts.from_value(CTX))
            await manager.entities_changed("burgas", [Change(None, stored(7, 31))])
            await manager.notifier.join()
            assert manager.get("burgas", "urn:s:mqtt").view()["notification"]["status"] == "ok"
            await manager.stop()
        run(go())
        got_topic, message, got_qos, retained = listener.next()
    assert got_topic == topic and not retained and got_qos == int(qos)
    assert message["metadata"]["Content-Type"] == "application/json"
    assert message["metadata"]["X-Extra"] == "yes" and message["metadata"]["NGSILD-Tenant"] == "burgas"
    assert "Link" in message["metadata"]
    assert message["body"]["subscriptionId"] == "urn:s:mqtt"
    assert message["body"]["data"][0]["temperature"]["value"] == 31


@pytest.mark.integration
def test_end_to_end_through_the_broker_over_http(mqtt_broker: tuple[str, int]) -> None:
    from ngsild_broker.server import EmbeddedBroker

    host, port = mqtt_broker
    topic = f"burgas/e2e/{time.time_ns()}"
    link = '<https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld>; ' \
           'rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
    with PayloadServer({"/notify": Reply(status=200)}) as receiver, \
            MqttListener(host, port, topic) as listener, \
            EmbeddedBroker(BrokerSettings(port=0)) as broker:
        api = broker.url + "/ngsi-ld/v1"
        with httpx.Client(timeout=10) as http:
            created = http.post(api + "/subscriptions", json={
                "type": "Subscription", "entities": [{"type": "AirQualityObserved"}],
                "q": "pm10>40", "notification": {"endpoint": {"uri": receiver.url("/notify")}}},
                headers={"Link": link})
            assert created.status_code == 201, created.text
            location = created.headers["location"]
            assert location.startswith("/ngsi-ld/v1/subscriptions/urn:ngsi-ld:Subscription:")
            assert http.post(api + "/subscriptions", json={
                "id": "urn:s:mqtt", "type": "Subscription", "entities": [{"type": "AirQualityObserved"}],
                "notification": {"endpoint": {"uri": f"mqtt://{host}:{port}/{topic}"}}}).status_code == 201
            dup = http.post(api + "/subscriptions", json={
                "id": "urn:s:mqtt", "type": "Subscription", "entities": [{"type": "AirQualityObserved"}],
                "notification": {"endpoint": {"uri": receiver.url("/x")}}})
            assert dup.status_code == 409
            missing = http.post(api + "/subscriptions", json={"type": "Subscription",
                                                               "entities": [{"type": "X"}]})
            assert (missing.status_code, missing.json()["title"]) == (400, "Mandatory field missing")
            up = http.post(api + "/entityOperations/upsert", json=[
                {"id": "urn:ngsi-ld:AirQualityObserved:1", "type": "AirQualityObserved",
                 "pm10": {"type": "Property", "value": 55}},
                {"id": "urn:ngsi-ld:AirQualityObserved:2", "type": "AirQualityObserved",
                 "pm10": {"type": "Property", "value": 12}}])
            assert up.status_code in (201, 204), up.text
            _, message, _, _ = listener.next()
            assert [e["id"] for e in message["body"]["data"]] == [
                "urn:ngsi-ld:AirQualityObserved:1", "urn:ngsi-ld:AirQualityObserved:2"]
            deadline = time.monotonic() + 10
            while not receiver.requests_to("/notify") and time.monotonic() < deadline:
                time.sleep(0.02)
            (request,) = receiver.requests_to("/notify")
            body = orjson.loads(request.body)
            assert [e["id"] for e in body["data"]] == ["urn:ngsi-ld:AirQualityObserved:1"]
            listing = http.get(api + "/subscriptions", params={"count": "true", "limit": "1"})
            assert listing.status_code == 200 and listing.headers["ngsild-results-count"] == "2"
            assert len(listing.json()) == 1
            one = http.get(api + location.removeprefix("/ngsi-ld/v1"))
            assert one.status_code == 200
            deadline = time.monotonic() + 10
            while one.json()["notification"].get("timesSent") != 1 and time.monotonic() < deadline:
                time.sleep(0.02)
                one = http.get(api + location.removeprefix("/ngsi-ld/v1"))
            assert one.json()["notification"]["timesSent"] == 1
            assert one.json()["notification"]["status"] == "ok"
            assert http.patch(api + "/subscriptions/urn:s:mqtt", json={"isActive": False}).status_code == 204
            assert http.get(api + "/subscriptions/urn:s:mqtt").json()["status"] == "paused"
            assert http.delete(api + "/subscriptions/urn:s:mqtt").status_code == 204
            assert http.get(api + "/subscriptions/urn:s:mqtt").status_code == 404
            assert http.delete(api + "/subscriptions/urn:s:mqtt").status_code == 404
