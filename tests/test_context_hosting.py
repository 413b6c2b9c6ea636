"""The generated @context hosted on the target broker (POST /jsonldContexts), in the topologies a
user runs: `broker serve` and `sync --broker-url` as two processes with default settings, an
in-memory broker restarted between syncs or during one, a broker without context hosting."""

from __future__ import annotations

import logging
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest

from adapter.config import load_config
from tests.reference_files import requires_shared
from tests.sync_fixtures import (
    API,
    BrokerProxy,
    BrokerServe,
    FeedServer,
    RestartableBroker,
    adapter_command,
    broker_ids,
    by_type,
    cli_env,
    context_files,
    expected_entities,
    outbox_pending,
    write_config,
)
from tests.sync_fixtures import (
    runtime_sync as sync,
)

pytestmark = pytest.mark.integration
NAMES = ("air_quality", "car_parks")  # two subjects: dataModel.Environment, dataModel.Parking
CAR_PARK = "urn:ngsi-ld:OffStreetParking:smartburgas:4"
PARKING_IRI = "https://smartdatamodels.org/dataModel.Parking/"
# A child that reports whether FastAPI was imported when it exits (the CLI's cold start).
REPORTING_CLI = ("import atexit, sys\n"
                 "atexit.register(lambda: print('fastapi imported:', 'fastapi' in sys.modules, file=sys.stderr))\n"
                 "from adapter.cli import app\n"
                 "app(prog_name='burgas-adapter')\n")


@pytest.fixture
def feeds():
    with FeedServer() as server:
        yield server


def cli_sync(tmp_path: Path, config: Path, url: str, *args: str, command: list[str] | None = None,
             **env: str) -> subprocess.CompletedProcess[str]:
    """`burgas-adapter sync --broker-url url` in a child process with default settings."""
    return subprocess.run([*(command or adapter_command()), "sync", "--config", str(config), "--broker-url", url,
                           "--state-dir", str(tmp_path / "state"), *args],
                          cwd=tmp_path, env=cli_env(**env), capture_output=True, text=True, timeout=120)


def hosted(url: str) -> list[str]:
    """The URLs of the contexts a broker hosts."""
    return httpx.get(url + API + "/jsonldContexts", params={"kind": "Hosted"}).json()


def remembered(state_dir: Path) -> dict[tuple[str, str], str]:
    """(broker, subject) -> hosted URL, as the state remembers them."""
    with sqlite3.connect(state_dir / "state.sqlite3") as db:
        return {(b, s): u for b, s, u in db.execute("SELECT broker, subject, url FROM hosted_context")}




def test_broker_serve_and_sync_as_two_processes_with_default_settings(tmp_path, feeds):
    config = write_config(tmp_path / "burgas.yaml", feeds, NAMES)
    with BrokerServe(cwd=tmp_path, env=cli_env()) as broker:  # default database, default everything
        first = cli_sync(tmp_path, config, broker.url)
        assert first.returncode == 0, first.stdout + first.stderr
        expected = expected_entities(load_config(config))
        assert broker_ids(broker.url) == by_type(expected)
        assert outbox_pending(tmp_path / "state" / "state.sqlite3") == 0
        contexts = hosted(broker.url)
        assert len(contexts) == 2
        assert set(remembered(tmp_path / "state").values()) == set(contexts)
        # Entities were written through the hosted document: their terms expand to the models' IRIs.
        stored = httpx.get(f"{broker.url}{API}/entities/{CAR_PARK}").json()
        assert stored["type"] == PARKING_IRI + "OffStreetParking"
        parking = next(u for (_, subject), u in remembered(tmp_path / "state").items()
                       if subject == "dataModel.Parking")
        link = {"Link": f'<{parking}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'}
        assert httpx.get(f"{broker.url}{API}/entities/{CAR_PARK}", headers=link).json()["type"] == "OffStreetParking"

        # Again, changed data: nothing is posted twice, and the CLI never imported FastAPI.
        feeds.edit("car_parks", "4", lambda p: p["data"][0].update(free_lots="3"))
        second = cli_sync(tmp_path, config, broker.url, command=[sys.executable, "-c", REPORTING_CLI])
        assert second.returncode == 0, second.stdout + second.stderr
        assert "fastapi imported: False" in second.stderr
        assert hosted(broker.url) == contexts
        assert httpx.get(f"{broker.url}{API}/entities/{CAR_PARK}",
                         params={"options": "keyValues"}, headers=link).json()["availableSpotNumber"] == 3
    assert (tmp_path / ".state" / "broker.sqlite3").is_file()  # the one database name


def test_in_memory_broker_restarted_between_two_syncs_gets_the_context_and_everything_again(tmp_path, feeds):
    config = write_config(tmp_path / "burgas.yaml", feeds, NAMES)
    broker = BrokerServe("--memory", cwd=tmp_path, env=cli_env())
    with broker:
        assert all(r.ok for r in sync(tmp_path, config, broker.url))
        before = hosted(broker.url)
    with BrokerServe("--memory", cwd=tmp_path, env=cli_env(), port=broker.port) as restarted:
        assert hosted(restarted.url) == [] and broker_ids(restarted.url) == {}
        feeds.edit("car_parks", "4", lambda p: p["data"][0].update(free_lots="7"))
        second = cli_sync(tmp_path, config, restarted.url, "--json")
        assert second.returncode == 0, second.stdout + second.stderr
        assert second.stderr.count("no longer has the @context documents") == 1
        again = hosted(restarted.url)
        assert len(again) == 2 and not set(again) & set(before)  # both published anew, once
        assert set(remembered(tmp_path / "state").values()) == set(again)
        # It converges: the broker holds everything again, not only what changed.
        expected = expected_entities(load_config(config))
        assert sum(r["sent"] for r in orjson.loads(second.stdout)) == len(expected)
        assert broker_ids(restarted.url) == by_type(expected)
        parking = httpx.get(f"{restarted.url}{API}/entities/{CAR_PARK}", params={"options": "keyValues"}).json()
        assert parking[PARKING_IRI + "availableSpotNumber"] == 7
        assert outbox_pending(tmp_path / "state" / "state.sqlite3") == 0
        # And settles: the next sync finds the broker as the state says, and sends nothing.
        third = sync(tmp_path, config, restarted.url)
        assert all(r.ok for r in third) and sum(r.sent for r in third) == 0


def test_broker_without_context_hosting_falls_back_to_the_service_url_with_one_warning(tmp_path, feeds, caplog):
    config = write_config(tmp_path / "burgas.yaml", feeds, NAMES)
    # The broker can read the generated documents at BURGAS_CONTEXT_BASE_URL (as when `serve` runs).
    files = context_files(tmp_path / "contexts")
    with RestartableBroker(tmp_path / "broker.sqlite3", files) as broker, BrokerProxy(broker.url) as proxy:
        proxy.no_hosting = True
        with caplog.at_level(logging.WARNING, logger="adapter.sync.hosting"):
            reports = sync(tmp_path, config, proxy.url)
        assert all(r.ok for r in reports), [(r.source, r.last_error) for r in reports]
        assert broker_ids(broker.url) == by_type(expected_entities(load_config(config)))
        warnings = [r.getMessage() for r in caplog.records if r.name == "adapter.sync.hosting"]
        assert len(warnings) == 1 and "BURGAS_CONTEXT_BASE_URL=http://127.0.0.1:8080/contexts/" in warnings[0]
        assert proxy.hosting_posts == 1  # asked once, not per source or per batch
        assert hosted(broker.url) == [] and remembered(tmp_path / "state") == {}


@requires_shared
def test_broker_serve_reads_official_contexts_from_the_reference_files_offline(tmp_path, feeds):
    """`official` mode into `broker serve`, whose Smart Data Models contexts come from
    BURGAS_SHARED_DIR (default --reference-dir), with the network unusable."""
    config = write_config(tmp_path / "burgas.yaml", feeds, NAMES)
    offline = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9",
               "ALL_PROXY": "http://127.0.0.1:9"}
    with BrokerServe("--memory", cwd=tmp_path, env=cli_env(**offline)) as broker:
        reports = sync(tmp_path, config, broker.url, ngsi_context="official")
        assert all(r.ok for r in reports), [(r.source, r.last_error) for r in reports]
        assert broker_ids(broker.url) == by_type(expected_entities(load_config(config)))
        assert hosted(broker.url) == []  # official contexts are not ours to publish
        stored = httpx.get(f"{broker.url}{API}/entities/{CAR_PARK}").json()
        assert stored["type"] == PARKING_IRI + "OffStreetParking"


def test_busy_port_exits_2_with_a_clear_message_before_saying_it_started(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for command in (["broker", "serve", "--memory"], ["serve"]):
            done = subprocess.run([*adapter_command(), *command, "--port", str(port)], cwd=tmp_path,
                                  env=cli_env(BURGAS_STATE_DIR=str(tmp_path / "state")),
                                  capture_output=True, text=True, timeout=60)
            output = done.stdout + done.stderr
            assert done.returncode == 2, output
            assert f"cannot listen on 127.0.0.1:{port}" in output
            assert "startup complete" not in output.lower()
