"""Readings into the temporal API, without sockets: marks, the history outbox, the writer's fallbacks.

The broker is an in-memory temporal store behind httpx.MockTransport (TemporalFake); the real path
(feeds on loopback, the embedded broker over HTTP) is tests/test_history_e2e.py.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import httpx
import orjson
import pytest

from adapter.mapping import MAPPERS, Mapped, map_one
from adapter.ngsi.client import BrokerClient, RetryPolicy
from adapter.ngsi.temporal import TemporalWriter, observed
from adapter.sync.history import MAX_INSTANCES_PER_OP, HistoryOutbox, Series, instances_of
from adapter.sync.state import StateStore
from tests.smartburgas_records import aq_row, aq_station, record

BROKER = "http://broker.invalid"
CONTEXT = ["https://example.org/ctx.jsonld", "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
# 2025-10-26: EEST -> EET, 03:00-03:59 local twice; the feed is newest first.
AUTUMN = ["2025-10-26 04:00:07", "2025-10-26 03:00:04", "2025-10-26 03:00:06", "2025-10-26 02:00:05"]
AUTUMN_UTC = ["2025-10-25T23:00:05Z", "2025-10-26T00:00:06Z", "2025-10-26T01:00:04Z", "2025-10-26T02:00:07Z"]


class TemporalFake:
    """A broker's temporal store: instances per entity and attribute, with the spec's write answers."""

    def __init__(self, *, attrs_route: bool = True) -> None:
        self.attrs_route = attrs_route  # False: answer 501 to POST .../attrs (as Orion-LD does)
        self.store: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = unquote(request.url.path).removeprefix("/ngsi-ld/v1")
        if request.method == "POST" and path.endswith("/attrs"):
            if not self.attrs_route:
                return httpx.Response(501, json={"type": "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported",
                                                 "title": "Not Implemented", "detail": path})
            entity_id = path.removeprefix("/temporal/entities/").removesuffix("/attrs")
            if entity_id not in self.store:
                return httpx.Response(404, json={"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
                                                 "title": "Entity not found", "detail": entity_id})
            self._add(entity_id, orjson.loads(request.content))
            return httpx.Response(204)
        if request.method == "POST" and path == "/temporal/entities":
            body = orjson.loads(request.content)
            created = body["id"] not in self.store
            self._add(body.pop("id"), body)
            return httpx.Response(201 if created else 204)
        if request.method == "GET" and path.startswith("/temporal/entities/"):
            entity_id = path.removeprefix("/temporal/entities/")
            if entity_id not in self.store:
                return httpx.Response(404, json={"type": "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
                                                 "title": "Entity not found", "detail": entity_id})
            start = datetime.fromisoformat(request.url.params["timeAt"]).timestamp()
            end = datetime.fromisoformat(request.url.params["endTimeAt"]).timestamp()
            return httpx.Response(200, json={"id": entity_id, **{
                name: [i for i in values if start <= observed(i) < end]
                for name, values in self.store[entity_id].items()}})
        return httpx.Response(404, json={"type": "x", "title": "no route", "detail": path})

    def _add(self, entity_id: str, body: dict[str, Any]) -> None:
        held = self.store.setdefault(entity_id, defaultdict(list))
        for name, values in body.items():
            if name in ("type", "@context"):
                continue
            held[name].extend(values if isinstance(values, list) else [values])

    def times(self, entity_id: str, name: str) -> list[str]:
        return [i["observedAt"] for i in self.store.get(entity_id, {}).get(name, [])]


def station(rows: list[dict[str, str]], station_id: str = "1") -> Mapped:
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows, id=station_id)))
    assert isinstance(mapped, Mapped)
    return mapped


def series(mapped: Mapped) -> Series:
    return Series(mapped.entity, mapped.history, CONTEXT)


def confirm_all(store: StateStore) -> None:
    """As if the broker had confirmed the current state of every entity with pending history."""
    with store.transaction() as db:
        db.execute("INSERT OR IGNORE INTO entity_state (tenant, source, entity_id, entity_type, want_hash, "
                   "sent_hash) SELECT DISTINCT tenant, source, entity_id, entity_type, 'h', 'h' FROM history_outbox")
        db.execute("UPDATE entity_state SET sent_hash='h' WHERE sent_hash IS NULL")


def deliver(history: HistoryOutbox, fake: TemporalFake, tenant: str = "", *, confirm: bool = True) -> Any:
    if confirm:
        confirm_all(history.store)

    async def run() -> Any:
        async with BrokerClient(BROKER, http=httpx.AsyncClient(transport=httpx.MockTransport(fake)),
                                retry=RetryPolicy(attempts=1)) as client:
            return await history.deliver(TemporalWriter(client), tenant=tenant)
    return asyncio.run(run())


@pytest.fixture
def history(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    yield HistoryOutbox(store)
    store.close()


def test_instances_are_the_attributes_with_an_observation_time():
    mapped = station([aq_row("2026-02-27 15:00:05", NO2="30", pm10="20")])
    assert set(instances_of(mapped.history[0])) == {"no2", "pm10"}  # not location, dateObserved, name


def test_every_reading_but_the_current_one_is_enqueued_once_with_its_utc_time(history):
    mapped = station([aq_row(t, NO2=str(10 + i)) for i, t in enumerate(AUTUMN)])
    plan = history.enqueue("", "aq", [series(mapped)])
    assert plan.instances == 3  # the 04:00 reading is the current state's: its upsert records it
    fake = TemporalFake()
    report = deliver(history, fake)
    assert report.instances == 3 and report.remaining == 0
    assert fake.times(mapped.entity.id, "no2") == AUTUMN_UTC[:3]  # both 03:00 readings, an hour apart
    assert [i["value"] for i in fake.store[mapped.entity.id]["no2"]] == [13.0, 12.0, 11.0]
    assert history.marks("", "aq", mapped.entity.id) == {"no2": datetime.fromisoformat(AUTUMN_UTC[3]).timestamp()}


def test_a_resync_and_an_older_window_add_nothing_and_new_readings_add_only_themselves(history):
    rows = [aq_row(t, NO2=str(10 + i)) for i, t in enumerate(AUTUMN)]
    history.enqueue("", "aq", [series(station(rows))])
    assert history.enqueue("", "aq", [series(station(rows))]).instances == 0  # same feed again
    older = history.enqueue("", "aq", [series(station(rows[2:]))])  # the source answers an older window
    assert older.instances == 0 and older.older == 2
    newer = [aq_row("2025-10-26 06:00:03", NO2="40"), aq_row("2025-10-26 05:00:02", NO2="39"), *rows]
    plan = history.enqueue("", "aq", [series(station(newer))])
    assert plan.instances == 1  # 05:00; 06:00 is the new current state
    fake = TemporalFake()
    deliver(history, fake)
    assert fake.times("urn:ngsi-ld:AirQualityObserved:smartburgas:1", "no2") == [*AUTUMN_UTC[:3],
                                                                              "2025-10-26T03:00:02Z"]


def test_marks_are_per_tenant_source_and_attribute(history):
    rows = [aq_row("2026-02-27 15:00:05", NO2="30"), aq_row("2026-02-27 14:00:05", NO2="29", pm10="9")]
    # pm10 is only in the older reading, which the current state carries forward (with its time):
    # its upsert records it, so only no2 at 14:00 is history.
    assert history.enqueue("", "aq", [series(station(rows))]).instances == 1
    assert history.enqueue("other", "aq", [series(station(rows))]).instances == 1
    assert history.enqueue("", "other", [series(station(rows))]).instances == 1
    assert history.enqueue("", "aq", [series(station(rows))]).instances == 0
    later = [aq_row("2026-02-27 16:00:05", pm10="11"), *rows]  # no2 not measured at 16:00
    assert history.enqueue("", "aq", [series(station(later))]).instances == 0  # no2@15:00 is still current


def test_a_long_series_is_cut_into_bounded_requests(history):
    rows = [aq_row(f"2026-{1 + h // 744:02d}-{1 + h // 24 % 31:02d} {h % 24:02d}:00:05", NO2=str(h))
            for h in range(1200)][::-1]  # January and February (March 29th's spring gap avoided)
    plan = history.enqueue("", "aq", [series(station(rows))])
    assert plan.instances == 1199
    fake = TemporalFake()
    report = deliver(history, fake)
    posts = [r for r in fake.requests if r.method == "POST"]
    assert report.sent == 3 and report.instances == 1199  # three requests (a first one may meet a 404)
    assert all(sum(len(v) for k, v in orjson.loads(r.content).items() if k not in ("@context", "id", "type"))
               <= MAX_INSTANCES_PER_OP for r in posts)
    assert len(fake.times("urn:ngsi-ld:AirQualityObserved:smartburgas:1", "no2")) == 1199


def test_appends_to_an_existing_history_and_creates_a_missing_one(history):
    fake = TemporalFake()
    fake.store["urn:ngsi-ld:AirQualityObserved:smartburgas:1"] = defaultdict(list)
    rows = [aq_row("2026-02-27 15:00:05", NO2="30"), aq_row("2026-02-27 14:00:05", NO2="29")]
    history.enqueue("", "aq", [series(station(rows, "1")), series(station(rows, "2"))])
    deliver(history, fake)
    paths = [(r.method, unquote(r.url.path)) for r in fake.requests]
    assert ("POST", "/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:AirQualityObserved:smartburgas:1/attrs") in paths
    assert ("POST", "/ngsi-ld/v1/temporal/entities") in paths  # station 2: 404 on /attrs, then created
    created = [orjson.loads(r.content) for r in fake.requests if unquote(r.url.path).endswith("/entities")]
    assert created[0]["id"].endswith(":2") and created[0]["type"] == "AirQualityObserved"
    assert created[0]["@context"] == CONTEXT
    assert fake.times("urn:ngsi-ld:AirQualityObserved:smartburgas:2", "no2") == ["2026-02-27T12:00:05Z"]


def test_a_broker_without_the_attrs_route_gets_post_temporal_entities_from_then_on(history):
    fake = TemporalFake(attrs_route=False)  # Orion-LD: 501 on POST /temporal/entities/{id}/attrs
    rows = [aq_row("2026-02-27 15:00:05", NO2="30"), aq_row("2026-02-27 14:00:05", NO2="29")]
    history.enqueue("", "aq", [series(station(rows, str(n))) for n in range(5)])
    report = deliver(history, fake)
    assert report.sent == 5 and report.remaining == 0
    assert sum(1 for r in fake.requests if r.url.path.endswith("/attrs")) <= 4  # learnt once (concurrent)
    assert all(len(fake.times(f"urn:ngsi-ld:AirQualityObserved:smartburgas:{n}", "no2")) == 1 for n in range(5))


def test_instances_a_crash_left_in_flight_are_not_sent_twice(history):
    rows = [aq_row(t, NO2=str(10 + i)) for i, t in enumerate(AUTUMN)]
    mapped = station(rows)
    history.enqueue("", "aq", [series(mapped)])
    fake = TemporalFake()
    # The broker took the request, then the adapter died before committing: the row stays in flight.
    original = HistoryOutbox._commit
    HistoryOutbox._commit = lambda self, rows, outcomes, report: (_ for _ in ()).throw(SystemExit("killed"))
    try:
        with pytest.raises(SystemExit):
            deliver(history, fake)
    finally:
        HistoryOutbox._commit = original
    assert len(fake.times(mapped.entity.id, "no2")) == 3 and history.pending(held=True) == 1
    report = deliver(history, fake)
    assert report.sent == 1 and history.pending() == 0
    assert fake.times(mapped.entity.id, "no2") == AUTUMN_UTC[:3]  # once each
    assert [r.method for r in fake.requests][-1] == "GET"  # asked, found everything, sent nothing


def test_rejected_instances_are_reported_and_dropped_and_a_down_broker_keeps_them(history):
    rows = [aq_row("2026-02-27 15:00:05", NO2="30"), aq_row("2026-02-27 14:00:05", NO2="29")]
    history.enqueue("", "aq", [series(station(rows))])
    down = deliver(history, lambda request: httpx.Response(503, text="down"))
    assert down.sent == 0 and down.deferred == 1 and down.remaining == 1
    refused = deliver(history, lambda request: httpx.Response(400, json={
        "type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": "bad", "detail": "no2"}))
    assert refused.rejected == 1 and refused.remaining == 0 and "bad" in refused.last_error


def test_instance_times_are_utc_instants():
    assert observed({"observedAt": "2025-10-26T01:00:04Z"}) == datetime(2025, 10, 26, 1, 0, 4, tzinfo=UTC).timestamp()


def test_every_reading_of_a_stream_batch_reaches_the_history_once(tmp_path):
    from adapter.mapping.mqtt import mapper_for
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.stream import StreamRunner
    from tests.test_sync_stream import TOPICS, FakeSource, noise

    store = StateStore(tmp_path / "state.sqlite3")
    try:
        source = FakeSource(store)
        pipeline = Pipeline(store, None)
        runner = StreamRunner(source, mapper_for(source.name, TOPICS), pipeline)  # type: ignore[arg-type]
        readings = [noise("a", 5, 50.0), noise("a", 7, 70.0), noise("a", 6, 60.0)]
        batch = runner.process([source.message("lp/a/noise", payload, n) for n, payload in enumerate(readings)])
        assert batch.enqueued == 1 and batch.history == 2  # 10:07 is the current state; 10:05, 10:06 history
        assert runner.process([source.message("lp/a/noise", readings[0], 9)]).history == 0  # redelivered
        fake = TemporalFake()
        deliver(pipeline.history, fake)
        (entity_id,) = fake.store
        assert fake.times(entity_id, "LAeq") == ["2025-06-01T10:05:00Z", "2025-06-01T10:06:00Z"]
        off = StreamRunner(source, mapper_for(source.name, TOPICS), pipeline, history=False)  # type: ignore[arg-type]
        assert off.process([source.message("lp/b/noise", noise("b", 5, 50.0), 10),
                            source.message("lp/b/noise", noise("b", 6, 50.0), 11)]).history == 0
    finally:
        store.close()


def test_a_waiting_upsert_is_not_replaced_by_a_newer_one_when_its_reading_goes_only_with_it(tmp_path):
    """Each batch's newest reading goes only as the current state's upsert: a newer batch before
    the delivery puts its upsert after the waiting one (with history off, it replaces it)."""
    from adapter.mapping.mqtt import mapper_for
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.stream import StreamRunner
    from tests.test_sync_stream import TOPICS, FakeSource, noise

    store = StateStore(tmp_path / "state.sqlite3")
    try:
        source = FakeSource(store)
        pipeline = Pipeline(store, None)
        for history, sensor in ((True, "a"), (False, "b")):
            runner = StreamRunner(source, mapper_for(source.name, TOPICS), pipeline,  # type: ignore[arg-type]
                                  history=history)
            for n, minute in enumerate((5, 7)):
                batch = runner.process([source.message(f"lp/{sensor}/noise", noise(sensor, minute, 50.0 + minute), n)])
                assert batch.enqueued == 1 and batch.history == 0
        waiting = [(entity_id.rsplit(":", 1)[1], orjson.loads(body)["LAeq"]["value"]) for entity_id, body in
                   store.conn.execute("SELECT entity_id, body FROM outbox ORDER BY seq")]
        assert waiting == [("a", 55.0), ("a", 57.0), ("b", 57.0)]
        assert pipeline.history.pending(held=True) == 0
    finally:
        store.close()


def test_history_waits_for_the_broker_to_confirm_the_current_state(history):
    rows = [aq_row("2026-02-27 15:00:05", NO2="30"), aq_row("2026-02-27 14:00:05", NO2="29")]
    history.enqueue("", "aq", [series(station(rows))])
    fake = TemporalFake()
    waiting = deliver(history, fake, confirm=False)  # its upsert is pending or quarantined
    assert waiting.sent == 0 and waiting.remaining == 0 and fake.requests == []
    assert history.pending(held=True) == 1
    assert deliver(history, fake).sent == 1
