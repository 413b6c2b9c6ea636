"""Every reading once, through the real path: recorded Smart Burgas feeds on loopback HTTP -> the
sync -> the embedded broker over HTTP -> GET /temporal/entities/{id}.

The truth is an independent mapping of the served payloads: every reading's (attribute, observedAt)
of every series, including the current state's. Re-syncing the same feeds, and a source answering
with an older window, add nothing.
"""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.config import load_config
from adapter.mapping.base import Mapped
from adapter.runtime import Runtime
from adapter.settings import Settings
from adapter.sync.factory import build_mapper, build_source
from adapter.sync.history import instances_of
from adapter.sync.report import SyncReport
from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.sync_fixtures import BrokerProxy, FeedServer, cli_env, context_files, run_cli, start_cli, write_config

pytestmark = pytest.mark.integration

SERIES = ("air_quality", "traffic", "car_parks")
API = "/ngsi-ld/v1"


@pytest.fixture
def feeds():
    with FeedServer(SERIES) as server:
        yield server


@pytest.fixture
def broker(tmp_path):
    # 500 instances per attribute and answer (the default 20 would work too, in more pages).
    with EmbeddedBroker(BrokerSettings(port=0, db_path=tmp_path / "broker.sqlite3", temporal_limit=500,
                                       context_files=context_files(tmp_path / "contexts"))) as running:
        yield running


def sync(tmp_path: Path, config: Path, url: str) -> list[SyncReport]:
    settings = Settings(broker_url=url, state_dir=tmp_path / "state", retry_attempts=2, retry_initial_wait=0.01)

    async def go() -> list[SyncReport]:
        async with Runtime(settings, load_config(config)) as runtime:
            return await runtime.sync()
    return asyncio.run(go())


def readings(config: Path) -> dict[str, Counter[tuple[str, str]]]:
    """entity id -> (attribute, observedAt) of every reading the served feeds hold, once each."""
    async def collect() -> dict[str, Counter[tuple[str, str]]]:
        out: dict[str, Counter[tuple[str, str]]] = {}
        async with httpx.AsyncClient() as http:
            for source_config in load_config(config).sources:
                mapper = build_mapper(source_config)
                async for record in build_source(source_config, http).fetch():
                    mapped = mapper(record)
                    if isinstance(mapped, Mapped) and mapped.history:
                        seen = {(name, value["observedAt"]) for entity in (*mapped.history, mapped.entity)
                                for name, value in instances_of(entity).items()}
                        out.setdefault(mapped.entity.id, Counter()).update(seen)
        return out
    found = asyncio.run(collect())
    return {key: Counter(dict.fromkeys(pairs, 1)) for key, pairs in found.items()}


_RANGE = re.compile(r"^date-time (\S+?Z)-(\S+?Z)/")


def stored(url: str, entity_id: str) -> Counter[tuple[str, str]]:
    """(attribute short name, observedAt) -> how many instances the broker's temporal API holds,
    read page by page (a partial answer, 206, says in Content-Range up to when it is complete)."""
    counts: Counter[tuple[str, str]] = Counter()
    since = "2000-01-01T00:00:00Z"
    for _ in range(100):
        answer = httpx.get(f"{url}{API}/temporal/entities/{entity_id}", timeout=30.0,
                           params={"timerel": "after", "timeAt": since})
        if answer.status_code == 404:
            return counts  # not in the broker (yet)
        assert answer.status_code in (200, 206), answer.text
        for name, value in answer.json().items():
            for instance in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
                if isinstance(instance, dict) and "observedAt" in instance:
                    counts[(_short(name), instance["observedAt"])] += 1
        if answer.status_code == 200:
            return counts
        end = datetime.fromisoformat(_RANGE.match(answer.headers["Content-Range"]).group(2))
        since = (end + timedelta(milliseconds=1)).isoformat().replace("+00:00", "Z")
    raise AssertionError("more than 100 pages")


def _short(name: str) -> str:
    return name.replace("#", "/").rsplit("/", 1)[-1]


def all_stored(url: str, ids: Any) -> dict[str, Counter[tuple[str, str]]]:
    return {entity_id: stored(url, entity_id) for entity_id in ids}


def test_every_reading_reaches_the_temporal_api_once_and_a_resync_or_an_older_window_adds_nothing(
        tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds)
    truth = readings(config)
    assert len(truth) >= 15 and sum(map(len, truth.values())) > 2000  # stations, detectors, car parks

    first = sync(tmp_path, config, broker.url)
    assert all(r.ok for r in first), [(r.source, r.last_error) for r in first]
    assert sum(r.history_sent for r in first) == sum(r.history for r in first) > 0
    assert all_stored(broker.url, truth) == truth  # every reading, once

    again = sync(tmp_path, config, broker.url)
    assert sum(r.history for r in again) == 0 and sum(r.sent for r in again) == 0
    assert all_stored(broker.url, truth) == truth

    # The source answers with an older window: the newest readings are gone from every series.
    for lang_features in feeds.features("air_quality").values():
        for feature in lang_features:
            feature["properties"]["data"] = sorted(feature["properties"]["data"],
                                                   key=lambda row: row["time"])[:-6]
    older = sync(tmp_path, config, broker.url)
    assert all(r.ok for r in older), [(r.source, r.last_error) for r in older]
    assert sum(r.history for r in older) == 0 and sum(r.sent for r in older) == 0
    assert all_stored(broker.url, truth) == truth
    # ... and the current state still carries the newest reading.
    station = next(i for i in truth if ":AirQualityObserved:" in i)
    current = httpx.get(f"{broker.url}{API}/entities/{station}").json()
    newest = max(t for _, t in truth[station])
    assert any(isinstance(a, dict) and a.get("observedAt") == newest for a in current.values())


def test_history_off_for_a_source_sends_only_the_current_state(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, ["car_parks"])
    config.write_text(config.read_text().replace("feed: car_parks,", "feed: car_parks, history: false,"))
    truth = readings(config)
    reports = sync(tmp_path, config, broker.url)
    assert all(r.ok for r in reports) and sum(r.history for r in reports) == 0
    for entity_id, pairs in all_stored(broker.url, truth).items():
        # Only what the broker recorded of the current state (its newest reading).
        assert set(pairs) < set(truth[entity_id]) and all(n == 1 for n in pairs.values())


class SlowHistory(BrokerProxy):
    """The proxy, counting temporal requests and holding each temporal write a while (so a kill
    lands while one is in flight: the broker takes it after the adapter died)."""

    def __init__(self, upstream: str) -> None:
        super().__init__(upstream)
        self.temporal_writes = 0
        self.temporal_reads = 0
        self.hold = 0.0

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Any:
        if "/temporal/" in path:
            with self.lock:
                if method == "POST":
                    self.temporal_writes += 1
                else:
                    self.temporal_reads += 1
            if method == "POST":
                time.sleep(self.hold)
        return super()._answer(method, path, headers, body)


def test_sigkill_mid_backfill_loses_and_doubles_nothing(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds)
    truth = readings(config)
    state = str(tmp_path / "state")
    with SlowHistory(broker.url) as proxy:
        proxy.hold = 0.1
        adapter = start_cli("sync", "--config", str(config), "--broker-url", proxy.url, "--state-dir", state,
                            env=cli_env(BURGAS_CONCURRENCY="1"))
        deadline = time.monotonic() + 60
        while proxy.temporal_writes < 4 and adapter.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        adapter.send_signal(signal.SIGKILL)
        adapter.communicate()
        time.sleep(2 * proxy.hold)  # the write in flight reaches the broker after the adapter died
        partial = all_stored(broker.url, truth)
        assert partial != truth and any(partial.values())  # killed mid-backfill
        proxy.hold = 0.0
        again = run_cli("sync", "--config", str(config), "--broker-url", proxy.url, "--state-dir", state)
        assert again.returncode == 0, again.stdout + again.stderr
        assert all_stored(broker.url, truth) == truth  # every reading, once
        assert proxy.temporal_reads >= 1  # the write in flight was checked, not sent blindly


def test_a_reading_left_to_an_upsert_that_a_newer_run_re_planned_still_arrives_once(tmp_path, feeds, broker):
    """The broker is down for two runs; the second (a newer window) re-plans the first run's waiting
    current states, whose newest readings go only with those upserts: they arrive all the same."""
    config = write_config(tmp_path / "burgas.yaml", feeds)
    truth = readings(config)
    full = {sid: [dict(f, properties=dict(f["properties"])) for f in features]
            for sid, features in feeds.features("air_quality").items()}
    for lang_features in feeds.features("air_quality").values():  # the first run sees an older window
        for feature in lang_features:
            feature["properties"]["data"] = sorted(feature["properties"]["data"],
                                                   key=lambda row: row["time"])[:-6]
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{closed.getsockname()[1]}"  # nothing listens there
    assert not any(r.ok for r in sync(tmp_path, config, down))
    for sid, features in full.items():
        feeds.features("air_quality")[sid][:] = features
    assert not any(r.ok for r in sync(tmp_path, config, down))  # newer current states, after the waiting ones
    last = sync(tmp_path, config, broker.url)
    assert all(r.ok for r in last), [(r.source, r.last_error) for r in last]
    # Every reading, once: also a pollutant without readings in the newer rows, whose unchanged
    # reading both current states carry (the broker records an unchanged observation once).
    assert all_stored(broker.url, truth) == truth
