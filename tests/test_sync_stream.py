"""Stream runner and MQTT source without sockets: coalescing, ack only when durable, quarantine, batching."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from adapter.config import MQTTSourceConfig
from adapter.errors import ConfigError
from adapter.mapping.mqtt import mapper_for
from adapter.settings import Settings
from adapter.sources.mqtt import BrokerAddress, MQTTMessage, MQTTSource
from adapter.sync.outbox import Outbox
from adapter.sync.pipeline import Pipeline
from adapter.sync.quarantine import Quarantine
from adapter.sync.state import StateStore
from adapter.sync.stream import DELIVERY_MAX_OPS, MAX_DELIVERY_PAUSE, StreamRunner

TOPICS = {"lp/+/noise": "lamppost.noise", "river/+/level": "river.level"}
LOCATION = [27.4712, 42.4958]


def noise(sensor: str, minute: int, laeq: float) -> bytes:
    return orjson.dumps({"sensor": sensor, "time": f"2025-06-01T10:{minute:02d}:00Z", "location": LOCATION,
                         "laeq": laeq})


class FakeSource:
    """Hands out prepared messages and records what was acknowledged and what was durable then."""

    name = "mqtt.test"

    def __init__(self, store: StateStore) -> None:
        self.real = MQTTSource(self.name, BrokerAddress("127.0.0.1", 1, False), ["#"], client_id="t")
        self.store = store
        self.acked: list[list[Any]] = []
        self.durable_at_ack: list[tuple[int, int]] = []

    def message(self, topic: str, payload: bytes, mid: int) -> MQTTMessage:
        return MQTTMessage(topic, payload, len(payload), 1, mid, time.time(), time.monotonic(), 0)

    def record(self, message: MQTTMessage) -> Any:
        return self.real.record(message)

    def replay(self, topic: str, payload: bytes) -> Any:
        return self.real.replay(topic, payload)

    def ack(self, messages: Any) -> int:
        outbox = self.store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        quarantined = self.store.conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0]
        self.durable_at_ack.append((outbox, quarantined))
        self.acked.append([m.mid for m in messages])
        return len(messages)


@pytest.fixture
def parts(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    source = FakeSource(store)
    pipeline = Pipeline(store, None)
    runner = StreamRunner(source, mapper_for(source.name, TOPICS), pipeline)  # type: ignore[arg-type]
    yield source, runner, store
    store.close()


def outbox_bodies(store: StateStore) -> dict[str, dict]:
    return {op.entity_id: orjson.loads(op.body) for op in Outbox(store).ops()}


def test_repeated_readings_of_one_sensor_become_one_update_with_the_newest(parts):
    source, runner, store = parts
    batch = runner.process([source.message("lp/a/noise", noise("a", 5, 50.0), 1),
                            source.message("lp/a/noise", noise("a", 7, 70.0), 2),
                            source.message("lp/a/noise", noise("a", 6, 60.0), 3),  # late, older
                            source.message("lp/b/noise", noise("b", 5, 40.0), 4)])
    assert (batch.messages, batch.entities, batch.coalesced, batch.enqueued) == (4, 2, 2, 2)
    bodies = outbox_bodies(store)
    newest = bodies["urn:ngsi-ld:NoiseLevelObserved:lamppost:a"]
    assert newest["LAeq"]["value"] == 70.0 and newest["dateObserved"]["value"] == "2025-06-01T10:07:00Z"
    assert bodies["urn:ngsi-ld:NoiseLevelObserved:lamppost:b"]["LAeq"]["value"] == 40.0


def test_a_batch_is_acknowledged_only_after_its_entities_are_in_the_outbox(parts):
    source, runner, store = parts
    runner.process([source.message("lp/a/noise", noise("a", 1, 50.0), 11),
                    source.message("lp/b/noise", noise("b", 1, 50.0), 12)])
    assert source.acked == [[11, 12]]
    assert source.durable_at_ack == [(2, 0)]


def test_malformed_payloads_are_quarantined_with_topic_and_reason_and_the_stream_goes_on(parts):
    source, runner, store = parts
    batch = runner.process([source.message("lp/a/noise", b"{not json", 1),
                            source.message("lp/a/noise", b"[1, 2]", 2),
                            source.message("lp/a/noise", noise("a", 1, 50.0), 3),
                            source.message("nowhere", b"{}", 4)])
    assert batch.quarantined == 3 and batch.enqueued == 1
    assert source.acked == [[1, 2, 3, 4]] and source.durable_at_ack == [(1, 3)]
    entries = Quarantine(store).entries(source="mqtt.test")
    assert [e.locator.split(" #")[0] for e in entries] == ["lp/a/noise", "lp/a/noise", "nowhere"]
    assert [e.reason.split(":")[0] for e in entries] == [
        "payload is not JSON", "payload is a JSON list, not an object", "no sensor family for topic 'nowhere'"]
    assert entries[0].payload == b"{not json"
    # The same bad payload again refreshes its entry; the next good message still flows.
    runner.process([source.message("lp/a/noise", b"{not json", 5),
                    source.message("lp/a/noise", noise("a", 2, 55.0), 6)])
    assert len(Quarantine(store).entries()) == 3
    assert outbox_bodies(store)["urn:ngsi-ld:NoiseLevelObserved:lamppost:a"]["LAeq"]["value"] == 55.0


def test_a_batch_that_cannot_be_stored_is_not_acknowledged(parts, monkeypatch):
    source, runner, store = parts

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError("database or disk is full")

    monkeypatch.setattr(store, "sync_stream", full)
    with pytest.raises(OSError):
        runner.process([source.message("lp/a/noise", noise("a", 1, 50.0), 1)])
    assert source.acked == []


def test_quarantined_messages_map_again_on_retry_once_the_table_knows_their_topic(parts):
    source, runner, store = parts
    runner.process([source.message("lamps/a/noise", noise("a", 1, 50.0), 1)])
    entry = Quarantine(store).entries()[0]
    assert "no sensor family" in entry.reason
    runner.mapper = mapper_for(source.name, {**TOPICS, "lamps/+/noise": "lamppost.noise"})
    assert runner.retry(Quarantine(store).retry([entry.id])) == [entry.id]
    assert Quarantine(store).entries() == []
    assert "urn:ngsi-ld:NoiseLevelObserved:lamppost:a" in outbox_bodies(store)


def paho_message(topic: str, payload: bytes, mid: int) -> Any:
    return SimpleNamespace(topic=topic, payload=payload, qos=1, mid=mid)


def test_receive_flushes_at_n_messages_or_after_the_wait():
    async def scenario() -> tuple[list[int], list[int]]:
        source = MQTTSource("s", BrokerAddress("127.0.0.1", 1, False), ["#"], client_id="t")
        source._loop = asyncio.get_running_loop()

        def publish() -> None:
            for mid in range(1, 6):
                source._on_message(None, None, paho_message("t", b"{}", mid))  # type: ignore[arg-type]

        thread = threading.Thread(target=publish)
        thread.start()
        first = await source.receive(3, 60.0)  # three arrive: flushed by count, long before 60 s
        thread.join()
        second = await source.receive(3, 0.05)  # only two left: flushed by the wait
        return [m.mid for m in first], [m.mid for m in second]

    assert asyncio.run(scenario()) == ([1, 2, 3], [4, 5])


def test_messages_of_an_earlier_connection_are_not_acknowledged_on_the_new_one():
    source = MQTTSource("s", BrokerAddress("127.0.0.1", 1, False), ["#"], client_id="t")
    acks: list[int] = []
    source._client.ack = lambda mid, qos: acks.append(mid)  # type: ignore[method-assign]
    source._generation = 2
    old = MQTTMessage("t", b"{}", 2, 1, 7, 0.0, 0.0, 1)
    current = MQTTMessage("t", b"{}", 2, 1, 8, 0.0, 0.0, 2)
    qos0 = MQTTMessage("t", b"{}", 2, 0, 0, 0.0, 0.0, 2)
    source.ack([old, current, qos0])
    assert acks == [8]


def test_oversized_payload_is_a_record_problem_not_a_crash():
    source = MQTTSource("s", BrokerAddress("127.0.0.1", 1, False), ["#"], client_id="t",
                        max_payload_bytes=256)
    source._on_message(None, None, paho_message("t", b"x" * 1000, 1))  # type: ignore[arg-type]
    message = source._inbox.popleft()
    assert len(message.payload) == 256 and message.size == 1000
    assert source.record(message).problem == "payload of 1000 bytes is larger than 256"


@pytest.mark.parametrize(("url", "tls", "expected"), [
    ("mqtt://broker:1884", False, ("broker", 1884, False)),
    ("127.0.0.1:1883", False, ("127.0.0.1", 1883, False)),
    ("mqtts://broker", False, ("broker", 8883, True)),
    ("mqtt://broker", True, ("broker", 8883, True)),
])
def test_broker_address(url, tls, expected):
    address = BrokerAddress.parse(url, tls=tls)
    assert (address.host, address.port, address.tls) == expected


def test_bad_mqtt_settings_are_config_errors_without_the_secret():
    with pytest.raises(ConfigError, match="scheme"):
        BrokerAddress.parse("http://broker")
    config = MQTTSourceConfig(name="m", group="mqtt", type="mqtt", topics={"#": "ngsi-ld"})
    with pytest.raises(ConfigError, match="needs BURGAS_MQTT_USERNAME") as info:
        MQTTSource.from_config(config, Settings(mqtt_password="hunter2"))
    assert "hunter2" not in str(info.value)
    with pytest.raises(ValueError, match="not in the URL"):
        MQTTSourceConfig(name="m", group="mqtt", type="mqtt", url="mqtt://u:hunter2@broker",
                         topics={"#": "ngsi-ld"})


def test_a_payload_the_mapper_chokes_on_is_quarantined_and_the_batch_goes_on(parts):
    source, runner, store = parts
    bad_name = orjson.dumps({"sensor": "b", "time": "2025-06-01T10:01:00Z", "location": LOCATION,
                             "laeq": 50.0, "name": 5})
    batch = runner.process([source.message("lp/b/noise", bad_name, 1),
                            source.message("lp/a/noise", noise("a", 1, 50.0), 2)])
    assert batch.quarantined == 1 and batch.enqueued == 1 and source.acked == [[1, 2]]
    [entry] = Quarantine(store).entries(source="mqtt.test")
    assert entry.locator.startswith("lp/b/noise") and entry.reason.startswith("name:")


def test_a_reading_dated_far_after_its_arrival_is_quarantined_not_allowed_to_silence_the_sensor(parts):
    source, runner, store = parts
    future = orjson.dumps({"sensor": "a", "time": "2099-01-01T00:00:00Z", "location": LOCATION, "laeq": 1.0})
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    current = orjson.dumps({"sensor": "a", "time": now, "location": LOCATION, "laeq": 60.0})
    batch = runner.process([source.message("lp/a/noise", future, 1)])
    assert batch.quarantined == 1 and batch.enqueued == 0
    assert "after the message arrived" in Quarantine(store).entries()[0].reason
    batch = runner.process([source.message("lp/a/noise", current, 2)])
    assert batch.enqueued == 1 and batch.stale == 0
    assert outbox_bodies(store)["urn:ngsi-ld:NoiseLevelObserved:lamppost:a"]["LAeq"]["value"] == 60.0


def test_retrying_a_reading_dated_far_ahead_keeps_it_in_quarantine(parts):
    source, runner, store = parts
    future = orjson.dumps({"sensor": "a", "time": "2099-01-01T00:00:00Z", "location": LOCATION, "laeq": 1.0})
    runner.process([source.message("lp/a/noise", future, 1)])
    entries = Quarantine(store).entries()
    assert runner.retry(entries) == []
    assert Quarantine(store).count() == 1 and Outbox(store).ops() == []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    batch = runner.process([source.message("lp/a/noise", orjson.dumps(
        {"sensor": "a", "time": now, "location": LOCATION, "laeq": 60.0}), 2)])
    assert batch.enqueued == 1 and batch.stale == 0


def test_delivery_survives_a_state_file_error_and_goes_on(parts, monkeypatch):
    import sqlite3

    source, runner, store = parts
    runner.process([source.message("lp/a/noise", noise("a", 1, 50.0), 1)])
    calls: list[str] = []

    async def deliver(report: Any, *, source: str | None = None, max_ops: int | None = None) -> None:
        calls.append("deliver")
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        report.sent, report.pending = 1, 0

    monkeypatch.setattr(runner.pipeline, "deliver", deliver)

    async def scenario() -> None:
        task = asyncio.create_task(runner._deliver())
        runner._work.set()
        deadline = time.monotonic() + 10
        while runner.status.sent < 1:
            assert time.monotonic() < deadline, runner.status.last_error
            await asyncio.sleep(0.05)
        task.cancel()

    asyncio.run(scenario())
    assert len(calls) >= 2 and runner.status.last_error is None and runner.status.sent == 1


def test_a_batch_and_its_readings_commit_together_or_not_at_all(parts, monkeypatch):
    import sqlite3

    source, runner, store = parts

    def broken(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(runner.pipeline.history, "enqueue", broken)
    with pytest.raises(sqlite3.OperationalError):
        runner.process([source.message("lp/a/noise", noise("a", 1, 50.0), 1)])
    assert source.acked == []
    # The entity's state and outbox entry went back with its readings: the redelivered message
    # is stored afresh, readings included.
    assert store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert store.conn.execute("SELECT COUNT(*) FROM entity_state").fetchone()[0] == 0


def test_a_backlog_does_not_starve_delivery(parts, monkeypatch):
    source, runner, store = parts
    mids = itertools.count(1)
    batches_at_delivery: list[int] = []

    async def backlog(max_messages: int, max_wait: float) -> list[MQTTMessage]:
        # A full inbox: a batch at once, without suspending (after 50 batches it does, so that
        # a starved deliverer would get its turn there).
        if runner.status.batches >= 50:
            await asyncio.sleep(0.01)
        return [source.message("lp/a/noise", noise("a", 1, 50.0), next(mids))]

    async def deliver(report: Any, *, source: str | None = None, max_ops: int | None = None) -> None:
        batches_at_delivery.append(runner.status.batches)

    source.receive = backlog  # type: ignore[attr-defined]
    monkeypatch.setattr(runner.pipeline, "deliver", deliver)

    async def scenario() -> None:
        tasks = [asyncio.create_task(runner._consume()), asyncio.create_task(runner._deliver())]
        runner._work.set()
        while not batches_at_delivery:
            await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(scenario())
    assert batches_at_delivery[0] <= 2


def test_delivery_goes_in_bounded_passes_with_a_pause_between_while_work_waits(parts, monkeypatch):
    from tests.test_backoff import RecordingClock

    source, runner, store = parts
    runner.clock = clock = RecordingClock()
    passes: list[int | None] = []

    async def deliver(report: Any, *, source: str | None = None, max_ops: int | None = None) -> None:
        passes.append(max_ops)
        report.sent, report.pending = 1, (1 if len(passes) < 3 else 0)

    monkeypatch.setattr(runner.pipeline, "deliver", deliver)

    async def scenario() -> None:
        task = asyncio.create_task(runner._deliver())
        runner._work.set()
        while len(passes) < 3:
            await asyncio.sleep(0.01)
        task.cancel()

    asyncio.run(scenario())
    assert passes == [DELIVERY_MAX_OPS] * 3
    # Two passes left work waiting: each was followed by a pause (its own duration, capped).
    assert len(clock.waits) == 2 and all(0 <= wait <= MAX_DELIVERY_PAUSE for wait in clock.waits)
