"""End to end through the real path: Smart Burgas feeds on loopback HTTP -> adapter -> embedded broker over HTTP.

After every scenario the broker holds exactly what the feeds map to (compared per type with an
independent mapping of the served payloads) and the outbox is empty.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from pathlib import Path

import orjson
import pytest

from adapter.config import load_config
from adapter.runtime import Runtime
from adapter.settings import Settings
from adapter.sync.report import SyncReport
from tests.servers import PayloadServer, Reply, Request
from tests.sync_fixtures import (
    BrokerProxy,
    FeedServer,
    RestartableBroker,
    broker_entities,
    broker_ids,
    broker_process,
    by_type,
    cli_env,
    context_files,
    expected_entities,
    free_port,
    modified_at,
    outbox_pending,
    run_cli,
    start_cli,
    write_config,
)

pytestmark = pytest.mark.integration

# Small feeds with stable ids: car parks (ids), EV chargers (no ids), paid-parking zones (untranslated).
FEW = ("car_parks", "ev_chargers", "paid_parking_zones")
CAR_PARK = "urn:ngsi-ld:OffStreetParking:smartburgas:4"
FAST = {"retry_attempts": 2, "retry_initial_wait": 0.01, "retry_max_wait": 0.05, "connect_timeout": 2.0}


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    directory = tmp_path_factory.mktemp("contexts")
    return directory, context_files(directory)


@pytest.fixture
def quick_source_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sources still retry a transient failure (every attempt), with waits of 10-50 ms not 0.5-4 s."""
    from adapter.sources.http import FetchOptions
    from adapter.sync import factory

    monkeypatch.setattr(factory, "fetch_options", lambda config: FetchOptions(
        deadline=config.request_deadline_seconds, backoff_initial=0.01, backoff_max=0.05))


@pytest.fixture
def feeds():
    with FeedServer() as server:
        yield server


@pytest.fixture
def broker(tmp_path, contexts):
    with RestartableBroker(tmp_path / "broker.sqlite3", contexts[1]) as running:
        yield running


def sync(tmp_path: Path, config: Path, url: str, names: list[str] | None = None,
         **settings: object) -> list[SyncReport]:
    """One `Runtime.sync` pass against a remote broker, state in tmp_path/state."""
    chosen = Settings(broker_url=url, state_dir=tmp_path / "state", **{**FAST, **settings})

    async def go() -> list[SyncReport]:
        async with Runtime(chosen, load_config(config)) as runtime:
            return await runtime.sync(names)
    return asyncio.run(go())


def total(reports: list[SyncReport], field: str) -> int:
    return sum(getattr(r, field) for r in reports)


def assert_in_sync(url: str, config: Path, tmp_path: Path, tenant: str | None = None) -> dict[str, str]:
    """The broker holds exactly the mapped entities, per type, and nothing waits in the outbox."""
    expected = expected_entities(load_config(config))
    assert broker_ids(url, tenant) == by_type(expected)
    assert outbox_pending(tmp_path / "state" / "state.sqlite3") == 0
    return expected


# -- the happy path -----------------------------------------------------------------------------------

def test_first_sync_puts_exactly_the_mapped_entities_in_the_broker(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds)
    reports = sync(tmp_path, config, broker.url)
    assert all(r.ok for r in reports), [(r.source, r.last_error) for r in reports]
    expected = assert_in_sync(broker.url, config, tmp_path)
    assert len(by_type(expected)) >= 8  # every family of feed is there
    assert total(reports, "sent") == total(reports, "mapped") == len(expected)
    counted: dict[str, int] = {}
    for report in reports:
        for entity_type, n in report.entities_by_type.items():
            counted[entity_type] = counted.get(entity_type, 0) + n
    assert counted == {t: len(ids) for t, ids in by_type(expected).items()}


def test_no_change_resync_writes_nothing(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    first = sync(tmp_path, config, broker.url)
    before = modified_at(broker.url)
    second = sync(tmp_path, config, broker.url)
    assert all(r.ok for r in second)
    assert total(second, "sent") == total(second, "deleted") == total(second, "attrs_deleted") == 0
    assert total(second, "unchanged") == total(first, "sent") == len(before)
    assert modified_at(broker.url) == before
    assert_in_sync(broker.url, config, tmp_path)


def test_changed_record_sends_only_that_entity(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    sync(tmp_path, config, broker.url)
    before = modified_at(broker.url)
    feeds.edit("car_parks", "4", lambda p: p["data"][0].update(free_lots="3"))
    reports = sync(tmp_path, config, broker.url)
    assert total(reports, "sent") == 1 and total(reports, "unchanged") == len(before) - 1
    after = modified_at(broker.url)
    assert {i for i in before if after[i] != before[i]} == {CAR_PARK}
    assert broker_entities(broker.url)[CAR_PARK]  # still there
    assert_in_sync(broker.url, config, tmp_path)
    spots = [v for k, v in broker_entities(broker.url)[CAR_PARK].items() if k.endswith("availableSpotNumber")]
    assert spots and spots[0]["value"] == 3


def test_removed_record_is_deleted_after_a_complete_fetch(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    sync(tmp_path, config, broker.url)
    feeds.remove("car_parks", "4")
    reports = sync(tmp_path, config, broker.url)
    assert total(reports, "deleted") == 1 and total(reports, "sent") == 0
    assert CAR_PARK not in broker_entities(broker.url)
    assert_in_sync(broker.url, config, tmp_path)


@pytest.mark.parametrize("fault", [
    pytest.param(Reply(b'{"error": "upstream down"}', 500), id="500"),
    pytest.param(b'{"type": "FeatureCollection", "features1": [{"type": "Feature", "properties": {"parki',
                 id="truncated-json"),
])
def test_removed_record_is_kept_after_a_failed_fetch(tmp_path, feeds, broker, fault, quick_source_retries):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    sync(tmp_path, config, broker.url)
    held = broker_ids(broker.url)
    feeds.remove("car_parks", "4")
    feeds.faults["car_parks"] = fault
    reports = {r.source: r for r in sync(tmp_path, config, broker.url)}
    failed = reports["smartburgas.car_parks"]
    assert not failed.ok and failed.last_error and failed.deleted == 0
    assert all(r.ok for name, r in reports.items() if name != failed.source)  # the others go on
    assert broker_ids(broker.url) == held  # nothing deleted on a failed fetch
    del feeds.faults["car_parks"]
    assert total(sync(tmp_path, config, broker.url), "deleted") == 1  # a complete fetch deletes it
    assert_in_sync(broker.url, config, tmp_path)


def test_removed_attribute_is_deleted_from_the_broker_entity(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    sync(tmp_path, config, broker.url)
    assert any(k.endswith("description") for k in broker_entities(broker.url)[CAR_PARK])
    feeds.edit("car_parks", "4", lambda p: p.pop("description"))
    reports = sync(tmp_path, config, broker.url)
    assert total(reports, "attrs_deleted") == 1
    entity = broker_entities(broker.url)[CAR_PARK]
    assert not any(k.endswith("description") for k in entity)
    assert any(k.endswith("availableSpotNumber") for k in entity)  # the rest stays
    assert_in_sync(broker.url, config, tmp_path)


def test_two_tenants_side_by_side_are_isolated(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    state = str(tmp_path / "state")
    by_option = run_cli("sync", "--config", str(config), "--broker-url", broker.url, "--tenant", "north",
                        "--state-dir", state)
    assert by_option.returncode == 0, by_option.stdout + by_option.stderr
    north = broker_ids(broker.url, "north")
    feeds.remove("car_parks", "4")
    by_env = run_cli("sync", "--config", str(config), "--broker-url", broker.url, "--state-dir", state,
                     env=cli_env(BURGAS_TENANT="south"))
    assert by_env.returncode == 0, by_env.stdout + by_env.stderr
    assert broker_ids(broker.url, "north") == north  # the other tenant's sync changed nothing here
    assert CAR_PARK in north["OffStreetParking"]
    assert_in_sync(broker.url, config, tmp_path, tenant="south")
    assert broker_ids(broker.url) == {}  # and nothing went to the default tenant
    # One state file, two tenants: each tenant's snapshot is diffed on its own.
    reports = sync(tmp_path, config, broker.url, tenant="north")
    assert total(reports, "deleted") == 1 and total(reports, "sent") == 0
    assert_in_sync(broker.url, config, tmp_path, tenant="north")


# -- faults -------------------------------------------------------------------------------------------

def cli_sync(config: Path, url: str, tmp_path: Path, *args: str, **env: str):
    return run_cli("sync", "--config", str(config), "--broker-url", url, "--state-dir",
                   str(tmp_path / "state"), *args, env=cli_env(**env))


def test_broker_down_at_start_keeps_everything_and_delivers_it_later(tmp_path, feeds, contexts):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    port = free_port()
    down = cli_sync(config, f"http://127.0.0.1:{port}", tmp_path, "--json")
    assert down.returncode == 4, down.stdout + down.stderr
    reports = orjson.loads(down.stdout)
    expected = expected_entities(load_config(config))
    assert sum(r["pending"] for r in reports) == len(expected)  # nothing lost: all of it waits
    assert all(r["sent"] == 0 and r["last_error"] for r in reports)
    with RestartableBroker(tmp_path / "broker.sqlite3", contexts[1], port=port) as broker:
        up = cli_sync(config, broker.url, tmp_path, "--json")
        assert up.returncode == 0, up.stdout + up.stderr
        assert sum(r["sent"] for r in orjson.loads(up.stdout)) == len(expected)
        assert_in_sync(broker.url, config, tmp_path)


def test_broker_killed_mid_sync_and_restarted_on_its_database(tmp_path, feeds, contexts):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    process = broker_process(tmp_path / "broker.sqlite3", contexts[0])
    restarted = threading.Event()

    def kill_then_restart(n: int) -> None:
        if n == 3:  # two batches are in; this one and the rest meet a dead broker
            process.kill()
            threading.Thread(target=lambda: (process.start(), restarted.set()), daemon=True).start()

    with process, BrokerProxy(process.url) as proxy:
        proxy.before_upsert = kill_then_restart
        # Retries outlast the restart (a broker process takes a few seconds to come back).
        reports = sync(tmp_path, config, proxy.url, batch_max_entities=5, concurrency=1,
                       retry_attempts=400, retry_initial_wait=0.05, retry_max_wait=0.2, retry_max_seconds=90)
        assert restarted.is_set()
        assert all(r.ok for r in reports), [(r.source, r.last_error) for r in reports]
        assert_in_sync(process.url, config, tmp_path)
        assert max(proxy.written.values()) == 1  # the batches before the kill were kept, not re-sent


def test_broker_killed_mid_sync_work_waits_in_the_outbox(tmp_path, feeds, contexts):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    process = broker_process(tmp_path / "broker.sqlite3", contexts[0])
    with process, BrokerProxy(process.url) as proxy:
        proxy.before_upsert = lambda n: process.kill() if n == 3 else None
        first = sync(tmp_path, config, proxy.url, batch_max_entities=5, concurrency=1)
        pending = total(first, "pending")
        assert pending > 0 and total(first, "sent") + pending == total(first, "mapped")
        assert outbox_pending(tmp_path / "state" / "state.sqlite3") == pending
        proxy.before_upsert = None
        process.start()
        second = sync(tmp_path, config, proxy.url, batch_max_entities=5, concurrency=1)
        assert all(r.ok for r in second) and total(second, "sent") == pending
        assert_in_sync(process.url, config, tmp_path)


def test_adapter_sigkilled_mid_sync_and_restarted_loses_and_duplicates_nothing(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    expected = expected_entities(load_config(config))
    batch = 3
    with BrokerProxy(broker.url) as proxy:
        proxy.delay = 0.15  # a slow broker, so the kill lands mid-delivery
        env = dict(BURGAS_BATCH_MAX_ENTITIES=str(batch), BURGAS_CONCURRENCY="1")
        adapter = start_cli("sync", "--config", str(config), "--broker-url", proxy.url,
                            "--state-dir", str(tmp_path / "state"), env=cli_env(**env))
        deadline = time.monotonic() + 60
        while proxy.upserts < 4 and adapter.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        adapter.send_signal(signal.SIGKILL)
        adapter.communicate()
        delivered_before = len(broker_entities(broker.url))
        assert 0 < delivered_before < len(expected)  # the kill really happened mid-sync
        proxy.delay = 0
        again = cli_sync(config, proxy.url, tmp_path, "--json", **env)
        assert again.returncode == 0, again.stdout + again.stderr
        assert_in_sync(broker.url, config, tmp_path)
        # Re-sent after the kill: at most the batch in flight (answered but not yet committed).
        assert max(proxy.written.values()) <= 2
        assert sum(proxy.written.values()) - len(expected) <= batch
        assert sum(r["sent"] for r in orjson.loads(again.stdout)) <= len(expected) - delivered_before + batch


def test_partial_failures_are_quarantined_listed_and_retried(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    expected = expected_entities(load_config(config))
    refused = {CAR_PARK, sorted(i for i in expected if ":EVChargingStation:" in i)[0]}
    state = str(tmp_path / "state")
    with BrokerProxy(broker.url) as proxy:
        proxy.reject = set(refused)
        strict = cli_sync(config, proxy.url, tmp_path, "--strict", "--json")
        assert strict.returncode == 5, strict.stdout + strict.stderr  # delivered, but something refused
        reports = orjson.loads(strict.stdout)
        assert sum(r["rejected"] for r in reports) == 2 and sum(r["sent"] for r in reports) == len(expected) - 2
        assert set(broker_entities(broker.url)) == set(expected) - refused  # the others were delivered

        listed = run_cli("quarantine", "list", "--json", "--state-dir", state)
        entries = orjson.loads(listed.stdout)
        assert {e["locator"] for e in entries} == refused
        assert all(e["kind"] == "upsert" and "Invalid entity" in e["reason"] for e in entries)

        proxy.reject.clear()  # the fault is fixed
        retried = run_cli("quarantine", "retry", "--config", str(config), "--broker-url", proxy.url,
                          "--state-dir", state)
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert orjson.loads(run_cli("quarantine", "list", "--json", "--state-dir", state).stdout) == []
        assert_in_sync(broker.url, config, tmp_path)


def test_payload_too_large_splits_batches_until_everything_is_delivered(tmp_path, feeds, contexts):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    # Every entity fits in 4 KiB, no source's batch does: the broker answers 413 and batches split.
    with RestartableBroker(tmp_path / "broker.sqlite3", contexts[1], max_payload=4096) as broker, \
            BrokerProxy(broker.url) as proxy:
        reports = sync(tmp_path, config, proxy.url)
        assert all(r.ok for r in reports) and total(reports, "rejected") == 0
        assert proxy.upserts > 2 * len(FEW)  # split, and split again
        assert_in_sync(broker.url, config, tmp_path)


def test_expired_token_is_refreshed_and_everything_delivered(tmp_path, feeds, broker):
    config = write_config(tmp_path / "burgas.yaml", feeds, FEW)
    lifetime = 10  # the broker's view: a token expires after this many answered writes
    issued: dict[str, int] = {}  # token -> answered writes when it was issued
    lock = threading.Lock()

    def token(request: Request) -> Reply:
        assert request.headers.get("Authorization", "").startswith("Basic ")
        with lock:
            value = f"token-{len(issued) + 1}"
            issued[value] = proxy.upserts
        # It advertises an hour, but the broker expires it much sooner (clock skew, revocation):
        # only a 401 tells the adapter.
        return Reply(orjson.dumps({"access_token": value, "token_type": "Bearer", "expires_in": 3600}))

    def authorize(headers) -> bool:
        value = headers.get("Authorization", "").removeprefix("Bearer ")
        with lock:
            return value in issued and proxy.upserts - issued[value] < lifetime

    with PayloadServer({"/token": token}) as oauth, BrokerProxy(broker.url) as proxy:
        proxy.authorize = authorize
        reports = sync(tmp_path, config, proxy.url, batch_max_entities=2, concurrency=1,
                       oauth_token_url=oauth.url("/token"), oauth_client_id="adapter",
                       oauth_client_secret="s3cret")
        assert all(r.ok for r in reports), [(r.source, r.last_error) for r in reports]
        assert len(issued) >= 3 and proxy.unauthorized >= 2
        assert_in_sync(broker.url, config, tmp_path)
