"""A stream with `workers: 2` against a real Mosquitto: shared subscription, worker processes,
restart of a killed worker, nothing lost, newest reading wins.

The workers are real spawned processes writing to the test's state file; this process delivers
to the embedded broker over HTTP.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from adapter.runtime import Runtime
from adapter.sync.stream_pool import StreamPool, build_stream
from tests.test_mqtt_e2e import (
    noise_entities,
    reading,
    runtime_for,
    source_config,
    until,
)

pytestmark = pytest.mark.integration


def pool_for(runtime: Runtime, config: Any) -> StreamPool:
    assert runtime.pipeline is not None
    pool = build_stream(config, runtime.settings, runtime.pipeline)
    assert isinstance(pool, StreamPool)
    return pool


@asynccontextmanager
async def running_pool(runtime: Runtime, config: Any) -> AsyncIterator[StreamPool]:
    """A started pool whose workers are all connected; stopped on the way out."""
    pool = pool_for(runtime, config)
    await pool.start()
    try:
        await all_connected(pool)
        yield pool
    finally:
        await pool.stop()


async def all_connected(pool: StreamPool) -> None:
    async def ready() -> bool:
        status = pool.source.status()
        return status["subscribed"] and len(pool.pooled.reports) == pool.config.workers
    await until(ready, timeout=60)  # spawning a Python process and importing the adapter takes a while


def test_two_workers_share_the_subscription_and_every_reading_arrives(
        tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker, workers=2, batch_max_ms=20)
    expected = {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(40 + i) for i in range(60)}

    async def scenario() -> tuple[dict[str, float], dict[str, Any], dict[str, Any], list[str]]:
        async with runtime_for(tmp_path) as runtime, running_pool(runtime, config) as pool:
            for i in range(60):
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))
            publisher.send(f"{prefix}/lp/bad/noise", b"{not json")

            async def arrived() -> bool:
                return len(await noise_entities(runtime)) == 60 and pool.status.quarantined == 1
            await until(arrived)
            assert runtime.pipeline is not None
            quarantined = [e.locator.split(" #")[0]
                           for e in runtime.pipeline.quarantine.entries(source="mqtt.test")]
            return await noise_entities(runtime), pool.source.status(), pool.as_dict(), quarantined

    entities, source, stream, quarantined = asyncio.run(scenario())
    assert entities == expected
    assert source["workers"] == 2 and source["share_group"] == prefix
    assert [w["client_id"] for w in source["per_worker"]] == [prefix, f"{prefix}-w1"]
    # The broker shared the messages out: both workers took some (round robin in Mosquitto).
    assert all(w["received"] > 0 for w in source["per_worker"])
    assert source["received"] == 61 and stream["messages"] == 61
    assert stream["quarantined"] == 1 and stream["pending"] == 0
    assert quarantined == [f"{prefix}/lp/bad/noise"]


def test_messages_published_while_every_worker_is_down_arrive_when_they_start(
        tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker, workers=2)
    expected = {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(40 + i) for i in range(80)}

    async def scenario() -> dict[str, float]:
        async with runtime_for(tmp_path) as runtime:
            first = pool_for(runtime, config)
            await first.start()
            await all_connected(first)  # both sessions and their shared subscription exist now
            await first.stop()
            for i in range(80):  # Mosquitto queues them for the two offline sessions
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))
            second = pool_for(runtime, config)
            await second.start()
            try:
                async def all_arrived() -> bool:
                    return len(await noise_entities(runtime)) == 80
                await until(all_arrived, timeout=60)
                return await noise_entities(runtime)
            finally:
                await second.stop()

    assert asyncio.run(scenario()) == expected


def test_a_killed_worker_is_restarted_and_its_unacknowledged_messages_are_not_lost(
        tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker, workers=2)

    async def scenario() -> tuple[dict[str, float], dict[str, Any]]:
        async with runtime_for(tmp_path) as runtime, running_pool(runtime, config) as pool:
            victim = pool._processes[0]
            os.kill(victim.pid, signal.SIGKILL)

            async def shown_down() -> bool:  # before the restart, /status must not say connected
                status = pool.source.status()
                return not status["connected"] and status["per_worker"][0].get("down") is True
            await until(shown_down, timeout=10)
            assert pool.source.lag() >= 0.0
            # Published while worker 0 is dead: its share waits in its session.
            for i in range(40):
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 2, 50 + i))

            async def restarted_and_all_arrived() -> bool:
                return (pool.pooled.restarts >= 1 and pool._processes[0].pid != victim.pid
                        and len(await noise_entities(runtime)) == 40)
            await until(restarted_and_all_arrived, timeout=60)
            return await noise_entities(runtime), pool.as_dict()

    entities, status = asyncio.run(scenario())
    assert entities == {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(50 + i) for i in range(40)}
    assert status["source"]["restarts"] >= 1
    assert status["source"]["last_exit"].startswith("worker 0 exited with code -9")


def test_the_newest_reading_of_a_sensor_wins_whichever_worker_stores_it_last(
        tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker, workers=2, batch_max_ms=5)

    async def scenario() -> float:
        async with runtime_for(tmp_path) as runtime, running_pool(runtime, config) as pool:
            # The newest reading first, stored; then older ones, which either worker may take and
            # store after it: without the stale guard the last one stored (20.0) would win.
            publisher.send(f"{prefix}/lp/a/noise", reading("a", 30, 99.0))

            async def newest_stored() -> bool:
                return (await noise_entities(runtime)).get("urn:ngsi-ld:NoiseLevelObserved:lamppost:a") == 99.0
            await until(newest_stored)
            for minute in range(1, 21):
                publisher.send(f"{prefix}/lp/a/noise", reading("a", minute, float(minute)))

            async def settled() -> bool:
                return pool.status.messages == 21 and pool.status.pending == 0
            await until(settled)
            await asyncio.sleep(0.3)
            assert pool.status.stale >= 1  # deterministic: every later batch is older than what is stored
            return (await noise_entities(runtime))["urn:ngsi-ld:NoiseLevelObserved:lamppost:a"]

    assert asyncio.run(scenario()) == 99.0


def test_workers_exit_when_their_parent_is_gone(tmp_path, mqtt_broker, prefix):
    """An orphan worker would hold its MQTT session and fight a restarted adapter's worker for it."""
    import subprocess
    import sys

    script = f"""
import asyncio, sys, time
from adapter.runtime import Runtime
from adapter.config import PipelineConfig, MQTTSourceConfig
from adapter.settings import Settings
from adapter.sync.stream_pool import build_stream

async def main():
    settings = Settings(state_dir={str(tmp_path)!r}, embedded_broker_persist=False)
    config = MQTTSourceConfig(name="mqtt.test", group="mqtt", type="mqtt", url="mqtt://{mqtt_broker[0]}:{mqtt_broker[1]}",
                              topics={{"{prefix}/lp/+/noise": "lamppost.noise"}}, client_id="{prefix}", workers=2)
    async with Runtime(settings, PipelineConfig(sources=[])) as runtime:
        pool = build_stream(config, settings, runtime.pipeline)
        await pool.start()
        while len(pool.pooled.reports) < 2:
            await asyncio.sleep(0.1)
        print(" ".join(str(p.pid) for p in pool._processes.values()), flush=True)
        await asyncio.sleep(600)

asyncio.run(main())
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline()  # type: ignore[union-attr]
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2, line
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 20
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in pids if _alive(p)]
        time.sleep(0.1)
    assert alive == [], f"workers {alive} outlived their parent"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_going_from_one_process_to_two_workers_loses_and_doubles_nothing(
        tmp_path, mqtt_broker, publisher, prefix):
    """Worker 0 resumes the single process's session (same client id) and drops its plain filter."""
    from tests.test_mqtt_e2e import connected, runner_for

    single = source_config(prefix, *mqtt_broker)
    pooled = source_config(prefix, *mqtt_broker, workers=2)

    async def scenario() -> tuple[dict[str, float], int, int]:
        async with runtime_for(tmp_path) as runtime:
            first = runner_for(runtime, single)
            await first.start()
            await connected(first)
            await first.stop()
            for i in range(30):  # queued in the single process's session
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))
            async with running_pool(runtime, pooled) as pool:
                for i in range(30, 60):
                    publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))

                async def all_arrived() -> bool:
                    return len(await noise_entities(runtime)) == 60 and pool.status.pending == 0
                await until(all_arrived, timeout=60)
                await asyncio.sleep(0.5)  # a duplicate through a leftover plain filter would show now
                return (await noise_entities(runtime), pool.source.status()["received"],
                        pool.source.status()["per_worker"][1]["received"])

    entities, received, by_second_worker = asyncio.run(scenario())
    assert entities == {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(40 + i) for i in range(60)}
    assert received == 60  # each message once
    assert by_second_worker > 0  # the new ones were shared out


def test_a_worker_killed_in_the_middle_of_a_stream_loses_nothing(
        tmp_path, mqtt_broker, publisher, prefix):
    """SIGKILL while batches are being stored and acknowledged: what was not acknowledged comes again."""
    import threading

    config = source_config(prefix, *mqtt_broker, workers=2, batch_max_messages=20, batch_max_ms=20)
    total = 600

    async def scenario() -> tuple[dict[str, float], int]:
        async with runtime_for(tmp_path) as runtime, running_pool(runtime, config) as pool:
            victim = pool._processes[0]

            def publish() -> None:
                for i in range(total):
                    publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, float(i)))

            sender = threading.Thread(target=publish)
            sender.start()

            async def midway() -> bool:
                return pool.status.messages >= 100
            await until(midway)
            os.kill(victim.pid, signal.SIGKILL)
            await asyncio.to_thread(sender.join, 60)

            # The other worker may take every message before the pool restarts the victim (after
            # its restart back-off), so wait for both rather than reading the count at arrival.
            async def all_arrived_and_restarted() -> bool:
                return (len(await noise_entities(runtime)) == total and pool.status.pending == 0
                        and pool.pooled.restarts >= 1)
            await until(all_arrived_and_restarted, timeout=90)
            return await noise_entities(runtime), pool.pooled.restarts

    entities, restarts = asyncio.run(scenario())
    assert entities == {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(i) for i in range(total)}
    assert restarts >= 1


@pytest.mark.parametrize("fewer", [2, 1])
def test_lowering_the_number_of_workers_drains_and_ends_the_retired_sessions(
        tmp_path, mqtt_broker, publisher, prefix, fewer):
    """Mosquitto keeps handing an offline shared-subscription member its share until the session
    expires: a retired worker's session is drained and ended, so nothing is stranded there."""
    from adapter.sync.stream import StreamRunner

    three = source_config(prefix, *mqtt_broker, workers=3)
    two = source_config(prefix, *mqtt_broker, workers=fewer)

    async def scenario() -> tuple[dict[str, float], dict[str, Any], list[str]]:
        async with runtime_for(tmp_path) as runtime:
            first = pool_for(runtime, three)
            await first.start()
            await all_connected(first)
            await first.stop()
            for i in range(30):  # a third of these wait in worker 2's session
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))
            second = pool_for(runtime, two)
            await second.start()
            try:
                await all_connected(second)

                async def retired() -> bool:
                    return second.pooled.retired == 3 - fewer
                await until(retired, timeout=60)
                for i in range(30, 60):  # after the retirement: shared by the two workers only
                    publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))

                async def all_arrived() -> bool:
                    return len(await noise_entities(runtime)) == 60
                await until(all_arrived, timeout=60)
                assert runtime.state is not None
                return (await noise_entities(runtime), second.source.status(),
                        [runtime.state.subscriptions(f"{prefix}-w{k}") for k in range(fewer, 3)],
                        build_stream(two, runtime.settings, runtime.pipeline))
            finally:
                await second.stop()

    entities, status, left, next_time = asyncio.run(scenario())
    assert entities == {f"urn:ngsi-ld:NoiseLevelObserved:lamppost:s{i}": float(40 + i) for i in range(60)}
    assert status["retired_sessions"] == 3 - fewer and status["workers"] == fewer
    assert all(filters == [] for filters in left)
    # Once drained, one worker runs in the service's process again.
    assert isinstance(next_time, StreamPool) == (fewer > 1) and isinstance(next_time, StreamRunner)


def test_a_worker_stopped_by_sigterm_is_restarted_and_the_others_go_on(
        tmp_path, mqtt_broker, publisher, prefix):
    config = source_config(prefix, *mqtt_broker, workers=2)

    async def scenario() -> tuple[dict[str, float], int]:
        async with runtime_for(tmp_path) as runtime, running_pool(runtime, config) as pool:
            victim = pool._processes[1]
            os.kill(victim.pid, signal.SIGTERM)

            async def replaced() -> bool:
                current = pool._processes[1]
                return current.pid != victim.pid and pool.source.status()["subscribed"]
            await until(replaced, timeout=60)
            for i in range(20):
                publisher.send(f"{prefix}/lp/s{i}/noise", reading(f"s{i}", 1, 40 + i))

            async def all_arrived() -> bool:
                return len(await noise_entities(runtime)) == 20
            await until(all_arrived, timeout=30)
            return await noise_entities(runtime), pool.pooled.restarts

    entities, restarts = asyncio.run(scenario())
    assert len(entities) == 20 and restarts == 1
