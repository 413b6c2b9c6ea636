"""The upsert pump (adapter.sync.pump) under early delivery: a SIGKILL while batches are in flight
loses and repeats nothing, and a long fetch lets go of what it delivered early.

Real path: a loopback ArcGIS layer -> pipeline (early delivery, pump) -> a loopback broker; the
sync that gets killed runs in a child process.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from adapter.config import PipelineConfig
from adapter.ngsi.client import BrokerClient, RetryPolicy
from adapter.sync import early
from adapter.sync.factory import build_mapper, build_source
from adapter.sync.pipeline import PROGRESS_EVERY, Pipeline
from adapter.sync.pump import UpsertPump
from adapter.sync.skip import salt_for
from adapter.sync.state import StateStore
from tests.fakebroker import FakeBroker
from tests.servers import PayloadServer
from tests.sync_fixtures import sync_static
from tests.test_sync_crash import assert_confirmed_after_kills, kill_after, start
from tests.test_sync_early_delivery import PAGE, PREFIX, N, _layer

pytestmark = pytest.mark.integration
BATCH, CONCURRENCY, EARLY = 50, 2, 100

WORKER = f"""
import asyncio, json, sys
import httpx
from adapter.config import PipelineConfig
from adapter.ngsi.client import BrokerClient, RetryPolicy
from adapter.sync.factory import build_mapper, build_source
from adapter.sync.pipeline import Pipeline
from adapter.sync.skip import salt_for
from adapter.sync.state import StateStore

path, url, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
source = PipelineConfig.model_validate(config).sources[0]

async def main():
    store = StateStore(path)
    async with httpx.AsyncClient() as http, BrokerClient(
            url, batch_max_entities={BATCH}, concurrency={CONCURRENCY},
            retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)) as client:
        report = await Pipeline(store, client, early_delivery={EARLY}).run_once(
            source.name, build_source(source, http), build_mapper(source), static=True, salt=salt_for(source))
    print(report.sent, report.pending)

asyncio.run(main())
"""


def _config(server: PayloadServer) -> dict[str, Any]:
    return {"sources": [{
        "name": "gis.stops", "group": "gis", "type": "arcgis", "url": server.url(PREFIX), "page_size": PAGE,
        "mapping": {"model": "PointOfInterest", "id_field": "CODE", "id_prefix": "gis-burgas:stop",
                    "name_field": "NAME", "constants": {"category": ["highway=bus_stop"]}}}]}


def test_sigkill_while_the_pump_has_batches_in_flight_loses_and_repeats_nothing(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    state = tmp_path / "state.sqlite3"
    broker = FakeBroker(delay=0.02)
    with PayloadServer(_layer().routes(PREFIX)) as layer, broker.serve() as server:
        config = _config(layer)
        kill_after(start(script, state, server.url, json.dumps(config)), broker, requests=6)
        first_kill = len(broker.entities())
        kill_after(start(script, state, server.url, json.dumps(config)), broker, requests=broker.requests + 6)
        final = start(script, state, server.url, json.dumps(config))
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
    assert 0 < first_kill < N  # the kill really happened while the pump was delivering

    entities = broker.entities()
    assert sorted(entities) == sorted(f"urn:ngsi-ld:PointOfInterest:gis-burgas:stop:S{n}" for n in range(1, N + 1))
    assert_confirmed_after_kills(broker, state, "gis.stops", N, CONCURRENCY * BATCH)
    assert out.split()[1] == b"0"


def test_a_long_fetch_holds_only_what_it_has_not_delivered_early(tmp_path, monkeypatch):
    held: list[int] = []
    plan_and_apply = Pipeline._plan_and_apply

    def spy(self: Pipeline, run: Any, by_id: dict[str, Any], complete: bool) -> Any:
        held.append(len(by_id))
        return plan_and_apply(self, run, by_id, complete)
    monkeypatch.setattr(Pipeline, "_plan_and_apply", spy)
    broker = FakeBroker()
    with PayloadServer(_layer().routes(PREFIX)) as layer, broker.serve() as server:
        source = PipelineConfig.model_validate(_config(layer)).sources[0]
        report = sync_static(tmp_path / "state.sqlite3", server.url, source, base_url="http://contexts.invalid/",
                             early_delivery=EARLY)
        assert report.ok and report.mapped == N and report.sent == N and report.pending == 0
        assert report.entities_by_type == {"PointOfInterest": N}
        assert held and held[0] < 2 * EARLY  # the rest was delivered and let go during the fetch
        assert len(broker.entities()) == N
        again = sync_static(tmp_path / "state.sqlite3", server.url, source, base_url="http://contexts.invalid/",
                            early_delivery=EARLY)
        assert again.ok and again.sent == 0 and again.unchanged == N


def test_the_pump_stops_when_the_broker_is_down_and_the_run_keeps_everything(tmp_path):
    broker = FakeBroker()
    broker.down = True
    with PayloadServer(_layer().routes(PREFIX)) as layer, broker.serve() as server:
        report = _run_once(tmp_path, layer, server.url,
                           retry=RetryPolicy(attempts=1, initial_wait=0.01, max_wait=0.01))
    assert report.mapped == N and report.sent == 0 and report.pending == N and report.last_error
    # The first early batches met the broker down and the pump stopped instead of trying each of
    # the 30 chunks; the final delivery tried once more.
    assert broker.requests <= 10


def test_the_fetch_waits_while_the_pump_holds_its_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(early, "MAX_QUEUED", 200)
    queued: list[int] = []
    add = UpsertPump.add

    def spy(self: UpsertPump, plan: Any) -> None:
        add(self, plan)
        queued.append(self.queued)
    monkeypatch.setattr(UpsertPump, "add", spy)
    broker = FakeBroker(delay=0.01)  # slower than the mapping: the queue would grow without a bound
    with PayloadServer(_layer().routes(PREFIX)) as layer, broker.serve() as server:
        report = _run_once(tmp_path, layer, server.url, batch_max_entities=BATCH, concurrency=CONCURRENCY)
    assert report.ok and report.sent == N and report.pending == 0 and len(broker.entities()) == N
    # (a chunk is what the fetch mapped between two looks: up to PROGRESS_EVERY records)
    assert queued and max(queued) <= 200 + PROGRESS_EVERY


def _run_once(tmp_path: Any, layer: Any, broker_url: str, **client_options: Any) -> Any:
    """One in-process run of the layer's source with the pump, into the broker at ``broker_url``."""
    source = PipelineConfig.model_validate(_config(layer)).sources[0]

    async def run() -> Any:
        store = StateStore(tmp_path / "state.sqlite3")
        try:
            async with httpx.AsyncClient() as http, BrokerClient(broker_url, **client_options) as client:
                return await Pipeline(store, client, early_delivery=EARLY).run_once(
                    source.name, build_source(source, http), build_mapper(source), static=True,
                    salt=salt_for(source))
        finally:
            store.close()
    return asyncio.run(run())
