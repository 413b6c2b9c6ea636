"""SIGKILL mid-delivery, restart: the broker ends with exactly the snapshot, nothing lost or repeated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adapter.sync.outbox import Outbox
from adapter.sync.state import StateStore
from tests.fakebroker import FakeBroker

ROOT = Path(__file__).resolve().parent.parent
N = 2000
BATCH = 50
CONCURRENCY = 2

WORKER = f"""
import asyncio, sys
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import BrokerClient, RetryPolicy
from adapter.sync.outbox import Outbox
from adapter.sync.state import StateStore

path, url = sys.argv[1:]
store = StateStore(path)
snapshot = [OutgoingEntity(f"urn:ngsi-ld:T:{{n}}", "T",
            {{"id": f"urn:ngsi-ld:T:{{n}}", "type": "T", "n": {{"type": "Property", "value": n}}}},
            "https://example.org/ctx.jsonld") for n in range({N})]
store.sync_snapshot("", "s", snapshot, run_id="r", complete=True)

async def main():
    async with BrokerClient(url, batch_max_entities={BATCH}, concurrency={CONCURRENCY},
                            retry=RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05)) as client:
        report = await Outbox(store).deliver(client)
    print(report.upserted, report.remaining)

asyncio.run(main())
"""


def start(script: Path, state: Path, url: str, *args: str) -> subprocess.Popen:
    """The worker script as its own process (so that SIGKILL hits a real process)."""
    return subprocess.Popen([sys.executable, str(script), str(state), url, *args], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def kill_after(proc: subprocess.Popen, broker: FakeBroker, requests: int) -> None:
    deadline = time.monotonic() + 60
    while broker.requests < requests and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.integration
def test_sigkill_mid_delivery_loses_and_duplicates_nothing(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    state = tmp_path / "state.sqlite3"
    broker = FakeBroker(delay=0.03)
    with broker.serve() as server:
        kill_after(start(script, state, server.url), broker, requests=8)
        first_kill = len(broker.entities())
        kill_after(start(script, state, server.url), broker, requests=broker.requests + 8)
        final = start(script, state, server.url)
        out, err = final.communicate(timeout=120)
        assert final.returncode == 0, err.decode()
    assert 0 < first_kill < N  # the kill really happened mid-delivery

    entities = broker.entities()
    assert sorted(entities) == sorted(f"urn:ngsi-ld:T:{n}" for n in range(N))
    assert all(e["n"]["value"] == int(i.rsplit(":", 1)[1]) for i, e in entities.items())
    assert_confirmed_after_kills(broker, state, "s", N, CONCURRENCY * BATCH)
    assert int(out.split()[1]) == 0


def assert_confirmed_after_kills(broker: FakeBroker, state: Path, source: str, count: int,
                                 in_flight: int) -> None:
    """After two kills and a final run: each of `count` entities confirmed in the state, nothing
    pending, and re-sent only what was in flight at each kill (answered, not yet committed)."""
    assert max(broker.writes.values()) <= 3
    assert sum(broker.writes.values()) - count <= 2 * in_flight
    store = StateStore(state)
    try:
        assert Outbox(store).pending() == 0
        rows = store.entities("", source)
        assert len(rows) == count and all(r.sent_hash == r.want_hash is not None for r in rows)
    finally:
        store.close()
