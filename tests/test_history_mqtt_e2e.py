"""MQTT readings into the temporal API, against a real Mosquitto and the embedded broker over HTTP:
readings coalesced into one current-state update all reach the history, once."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from adapter.runtime import Runtime
from adapter.sync.stream import StreamRunner
from tests.test_mqtt_e2e import (
    connected,
    noise_entities,
    reading,
    runner_for,
    runtime_for,
    source_config,
    until,
)

pytestmark = pytest.mark.integration
ENTITY = "urn:ngsi-ld:NoiseLevelObserved:lamppost:lp-7"


def laeq_history(runtime: Runtime) -> list[tuple[str, float]]:
    """(observedAt, value) of every LAeq instance the broker's temporal API holds for the sensor."""
    answer = httpx.get(f"{runtime.broker_url}/ngsi-ld/v1/temporal/entities/{ENTITY}",
                       params={"timerel": "after", "timeAt": "2025-01-01T00:00:00Z"})
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    instances = [v for k, v in answer.json().items() if k.endswith("LAeq")]
    return sorted((i["observedAt"], i["value"]) for i in (instances[0] if instances else []))


def test_every_reading_of_a_coalesced_batch_reaches_the_history_once(tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker, batch_max_messages=10, batch_max_ms=60_000)
    minutes = (1, 2, 9, 4, 5, 6, 7, 8, 3, 0)  # one batch, newest (minute 9) in the middle

    async def scenario() -> tuple[dict[str, float], list[tuple[str, float]], StreamRunner]:
        async with runtime_for(tmp_path) as runtime:
            runner = runner_for(runtime, config)
            await runner.start()
            try:
                await connected(runner)
                for minute in minutes:
                    publisher.send(f"{prefix}/lp/lp-7/noise", reading("lp-7", minute, 50 + minute))

                async def delivered() -> bool:
                    return len(await asyncio.to_thread(laeq_history, runtime)) >= len(minutes)
                await until(delivered)
                for minute in (3, 11):  # a reading again (redelivered), and a new one
                    publisher.send(f"{prefix}/lp/lp-7/noise", reading("lp-7", minute, 50 + minute))
                for minute in range(8):  # another sensor fills the batch (flushed at 10 messages)
                    publisher.send(f"{prefix}/lp/lp-8/noise", reading("lp-8", minute, 40))

                async def newest() -> bool:
                    return (await noise_entities(runtime)).get(ENTITY) == 61.0 and runner.status.sent >= 3
                await until(newest)
                await asyncio.sleep(0.3)  # its history (nothing: it is the current state) had its turn
                return await noise_entities(runtime), await asyncio.to_thread(laeq_history, runtime), runner
            finally:
                await runner.stop()

    entities, history, runner = asyncio.run(scenario())
    assert entities[ENTITY] == 61.0
    assert history == sorted([(f"2025-06-01T10:{m:02d}:00Z", 50.0 + m) for m in (*minutes, 11)])  # once each
    assert runner.status.coalesced == 9 + 1 + 7
    assert runner.status.history == 9 + 7  # the newest of each batch went as the current state


def test_a_reading_whose_upsert_waited_behind_a_newer_one_reaches_the_broker_history_once(tmp_path):
    """Two batches of one sensor before a delivery (the broker was slow or down): both readings
    reach the embedded broker's temporal API (over HTTP), once each, and the newest is current."""
    from adapter.mapping.mqtt import mapper_for
    from adapter.sync.report import ReportBuilder
    from tests.test_sync_stream import TOPICS, FakeSource, noise

    async def scenario() -> tuple[dict[str, float], list[tuple[str, float]]]:
        async with runtime_for(tmp_path) as runtime:
            pipeline = runtime.pipeline
            assert pipeline is not None
            source = FakeSource(pipeline.state)
            runner = StreamRunner(source, mapper_for(source.name, TOPICS), pipeline)  # type: ignore[arg-type]
            runner.process([source.message("lp/lp-7/noise", noise("lp-7", 5, 55.0), 1)])
            runner.process([source.message("lp/lp-7/noise", noise("lp-7", 7, 57.0), 2)])
            await pipeline.deliver(ReportBuilder(source.name, "", "now"), source=source.name)
            return await noise_entities(runtime), await asyncio.to_thread(laeq_history, runtime)

    entities, history = asyncio.run(scenario())
    assert entities[ENTITY] == 57.0
    assert history == [("2025-06-01T10:05:00Z", 55.0), ("2025-06-01T10:07:00Z", 57.0)]
