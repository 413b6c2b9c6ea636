"""MQTT end to end against a real Mosquitto: publish -> entity in the embedded broker.

Each test uses its own topic prefix and client id, so runs never see each other's sessions.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from adapter.config import MQTTSourceConfig, PipelineConfig
from adapter.mapping.mqtt import mapper_for
from adapter.ngsi.context import ContextMode, context_for
from adapter.runtime import Runtime
from adapter.settings import Settings
from adapter.sources.mqtt import MQTTSource
from adapter.sync.quarantine import Quarantine
from adapter.sync.stream import StreamRunner
from data_models import NoiseLevelObserved

pytestmark = pytest.mark.integration
LOCATION = [27.4712, 42.4958]


def source_config(prefix: str, host: str, port: int, **overrides: Any) -> MQTTSourceConfig:
    return MQTTSourceConfig(name="mqtt.test", group="mqtt", type="mqtt", url=f"mqtt://{host}:{port}",
                            topics={f"{prefix}/lp/+/noise": "lamppost.noise"}, client_id=prefix,
                            session_expiry_seconds=600, **overrides)


def runner_for(runtime: Runtime, config: MQTTSourceConfig) -> StreamRunner:
    assert runtime.pipeline is not None
    return StreamRunner(MQTTSource.from_config(config, runtime.settings), mapper_for(config.name, config.topics),
                        runtime.pipeline, batch_max_messages=config.batch_max_messages,
                        batch_max_ms=config.batch_max_ms)


def reading(sensor: str, minute: int, laeq: float) -> dict[str, Any]:
    return {"sensor": sensor, "time": f"2025-06-01T10:{minute:02d}:00Z", "location": LOCATION, "laeq": laeq}


async def noise_entities(runtime: Runtime) -> dict[str, float]:
    """Entity id -> LAeq of every NoiseLevelObserved in the broker."""
    assert runtime.client is not None
    context = context_for(NoiseLevelObserved, ContextMode.GENERATED, runtime.settings.context_base_url)
    found = await runtime.client.query({"type": "NoiseLevelObserved", "options": "keyValues"}, context=context)
    return {e["id"]: e.get("LAeq") for e in found}


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def connected(runner: StreamRunner) -> None:
    """Until the broker has acknowledged the runner's subscriptions (SUBACK)."""
    async def subscribed() -> bool:
        return bool(runner.source.status()["subscribed"])
    await until(subscribed)


def runtime_for(tmp_path) -> Runtime:
    settings = Settings(state_dir=tmp_path, embedded_broker_persist=False)
    return Runtime(settings, PipelineConfig(sources=[]))


def test_published_reading_becomes_an_entity_in_the_broker(tmp_path, mqtt_broker, publisher, prefix):
    async def scenario() -> dict[str, float]:
        async with runtime_for(tmp_path) as runtime:
            runner = runner_for(runtime, source_config(prefix, *mqtt_broker))
            await runner.start()
            try:
                await connected(runner)
                publisher.send(f"{prefix}/lp/lp-1/noise", reading("lp-1", 1, 61.5))

                async def arrived() -> bool:
                    return bool(await noise_entities(runtime))
                await until(arrived)
                return await noise_entities(runtime)
            finally:
                await runner.stop()

    assert asyncio.run(scenario()) == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:lp-1": 61.5}


def test_messages_published_while_the_adapter_is_stopped_arrive_when_it_starts(
        tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker)
    expected = {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(40 + i) for i in range(50)}

    async def scenario() -> dict[str, float]:
        async with runtime_for(tmp_path) as runtime:
            first = runner_for(runtime, config)
            await first.start()
            await connected(first)  # the session and its subscription now exist in Mosquitto
            await first.stop()
            for i in range(50):  # nobody is connected: Mosquitto queues them for the session
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))
            second = runner_for(runtime, config)
            await second.start()
            try:
                async def all_arrived() -> bool:
                    return len(await noise_entities(runtime)) == 50
                await until(all_arrived)
                return await noise_entities(runtime)
            finally:
                await second.stop()

    assert asyncio.run(scenario()) == expected


def test_malformed_payloads_are_quarantined_and_the_stream_continues(tmp_path, mqtt_broker, publisher, prefix):
    topic = f"{prefix}/lp/lp-9/noise"

    async def scenario() -> tuple[dict[str, float], list[Any]]:
        async with runtime_for(tmp_path) as runtime:
            runner = runner_for(runtime, source_config(prefix, *mqtt_broker))
            await runner.start()
            try:
                await connected(runner)
                publisher.send(topic, b"\xff\xfe not json")
                publisher.send(topic, {"sensor": "lp-9", "time": "soon", "location": LOCATION, "laeq": 1})
                publisher.send(topic, reading("lp-9", 3, 58.0))

                async def arrived() -> bool:
                    return bool(await noise_entities(runtime))
                await until(arrived)
                assert runtime.state is not None
                return await noise_entities(runtime), Quarantine(runtime.state).entries(source="mqtt.test")
            finally:
                await runner.stop()

    entities, quarantined = asyncio.run(scenario())
    assert entities == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:lp-9": 58.0}
    assert [(q.locator.split(" #")[0], q.reason.split(":")[0]) for q in quarantined] == [
        (topic, "payload is not JSON"), (topic, "time")]


def test_readings_of_one_sensor_in_a_batch_are_coalesced_into_the_newest(tmp_path, mqtt_broker, publisher, prefix):
    # The batch is flushed by count (10 messages), never by time: exactly one batch.
    config = source_config(prefix, *mqtt_broker, batch_max_messages=10, batch_max_ms=60_000)

    async def scenario() -> tuple[dict[str, float], StreamRunner]:
        async with runtime_for(tmp_path) as runtime:
            runner = runner_for(runtime, config)
            await runner.start()
            try:
                await connected(runner)
                for minute in (1, 2, 9, 4, 5, 6, 7, 8, 3, 0):  # newest (minute 9) in the middle
                    publisher.send(f"{prefix}/lp/lp-5/noise", reading("lp-5", minute, 50 + minute))

                async def arrived() -> bool:
                    return bool(await noise_entities(runtime)) and runner.status.sent > 0
                await until(arrived)
                return await noise_entities(runtime), runner
            finally:
                await runner.stop()

    entities, runner = asyncio.run(scenario())
    assert entities == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:lp-5": 59.0}
    assert (runner.status.batches, runner.status.messages, runner.status.coalesced, runner.status.sent) == (1, 10, 9, 1)


def test_oversized_payloads_are_quarantined_and_huge_ones_never_reach_the_adapter(
        tmp_path, mqtt_broker, publisher, prefix):
    topic = f"{prefix}/lp/lp-7/noise"
    config = source_config(prefix, *mqtt_broker, max_payload_bytes=256)

    async def scenario() -> tuple[dict[str, float], list[Any], int]:
        async with runtime_for(tmp_path) as runtime:
            runner = runner_for(runtime, config)
            await runner.start()
            try:
                await connected(runner)
                publisher.send(topic, b"{" + b" " * 400 + b"}")  # over the limit: read, cut, quarantined
                publisher.send(topic, b"{" + b" " * 300_000 + b"}")  # over the packet size: Mosquitto drops it
                publisher.send(topic, reading("lp-7", 3, 58.0))

                async def arrived() -> bool:
                    return bool(await noise_entities(runtime))
                await until(arrived)
                assert runtime.state is not None
                return (await noise_entities(runtime), Quarantine(runtime.state).entries(source="mqtt.test"),
                        runner.source.status()["received"])
            finally:
                await runner.stop()

    entities, quarantined, received = asyncio.run(scenario())
    assert entities == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:lp-7": 58.0}
    assert [q.reason for q in quarantined] == ["payload of 402 bytes is larger than 256"]
    assert received == 2  # the 300 kB message was never sent to the adapter


def test_a_topic_dropped_from_the_configuration_is_unsubscribed_from_the_persistent_session(
        tmp_path, mqtt_broker, publisher, prefix):
    both = source_config(prefix, *mqtt_broker).model_copy(update={"topics": {
        f"{prefix}/lp/+/noise": "lamppost.noise", f"{prefix}/old/+/noise": "lamppost.noise"}})
    only_lp = source_config(prefix, *mqtt_broker)

    async def scenario() -> tuple[dict[str, float], int, int]:
        async with runtime_for(tmp_path) as runtime:
            first = runner_for(runtime, both)
            await first.start()
            await connected(first)
            await first.stop()
            second = runner_for(runtime, only_lp)
            await second.start()
            try:
                await connected(second)
                publisher.send(f"{prefix}/old/x/noise", reading("x", 1, 40.0))  # nobody wants it now
                publisher.send(f"{prefix}/lp/a/noise", reading("a", 1, 61.5))

                async def arrived() -> bool:
                    return bool(await noise_entities(runtime))
                await until(arrived)
                await asyncio.sleep(0.3)
                assert runtime.state is not None
                return (await noise_entities(runtime), second.source.status()["received"],
                        Quarantine(runtime.state).count())
            finally:
                await second.stop()

    entities, received, quarantined = asyncio.run(scenario())
    assert entities == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:a": 61.5}
    assert received == 1 and quarantined == 0
