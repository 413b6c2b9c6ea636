"""Broken and hostile upstreams through the real path: `burgas-adapter sync` (the CLI app, run in
this process: a child process costs seconds per run), feeds on loopback, the embedded broker over
HTTP. None of them may delete, freeze, crash or leak:

- an empty feed does not delete a source's entities at once (the mass-deletion guard);
- a feed trickling a byte a second ends at its deadline, and the other sources still run;
- a source answering 401 or redirecting for ever fails alone, with the report written;
- credentials in a source URL show nowhere: reports, status, logs, the state file;
- the service gets ready although a source hangs, and shows held deletions in /status and /metrics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.config import load_config
from adapter.service.app import create_app
from adapter.settings import load_settings
from tests.map_service import serve_app
from tests.servers import Reply
from tests.sync_fixtures import (
    FeedServer,
    RestartableBroker,
    broker_entities,
    broker_ids,
    context_files,
)

pytestmark = pytest.mark.integration

PARKS = "smartburgas.car_parks"
ZONES = "smartburgas.paid_parking_zones"
EMPTY = b'{"type": "FeatureCollection", "features1": []}'
GTFS_ZIP = Path(__file__).resolve().parent.parent / "adapter" / "samples" / "gtfs" / "burgasbus.zip"


@pytest.fixture(scope="module")
def contexts(tmp_path_factory) -> dict[str, Path]:
    return context_files(tmp_path_factory.mktemp("contexts"))


@pytest.fixture
def feeds() -> Iterator[FeedServer]:
    with FeedServer(("car_parks", "paid_parking_zones")) as server:
        yield server


@pytest.fixture
def broker(tmp_path, contexts) -> Iterator[RestartableBroker]:
    with RestartableBroker(tmp_path / "broker.sqlite3", contexts) as running:
        yield running


class TrickleServer:
    """Answers 200 with a large Content-Length, then one byte a second (a stuck upstream)."""

    def __init__(self) -> None:
        stop = self.stop_event = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                try:
                    while not stop.wait(1.0):
                        self.wfile.write(b" ")
                        self.wfile.flush()
                except OSError:  # the client gave up
                    pass

            do_HEAD = do_GET  # noqa: N815 - stdlib name

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/feed"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> TrickleServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._server.shutdown()
        self._server.server_close()


def source_line(name: str, url: str, **extra: object) -> str:
    """One Smart Burgas source of a pipeline file (flow style)."""
    feed = name.split(".", 1)[1]
    more = "".join(f", {k}: {v}" for k, v in extra.items())
    return f"  - {{name: {name}, group: smartburgas, type: smartburgas, feed: {feed}, url: '{url}'{more}}}"


def write_pipeline(path: Path, *lines: str) -> Path:
    path.write_text("sources:\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


FAST = {"BURGAS_RETRY_ATTEMPTS": "1", "BURGAS_RETRY_INITIAL_WAIT": "0", "BURGAS_CONNECT_TIMEOUT": "2",
        "COLUMNS": "200", "NO_COLOR": "1"}


def run_cli(*args: str):
    """`burgas-adapter <args>`; the result has exit_code, stdout and stderr (logs) apart."""
    result = CliRunner().invoke(app, list(args), env=FAST)
    if isinstance(result.exception, BaseException) and not isinstance(result.exception, SystemExit):
        raise result.exception
    result.returncode = result.exit_code  # type: ignore[attr-defined]
    return result


def sync(tmp_path: Path, config: Path, broker_url: str, *args: str):
    """`burgas-adapter sync --json` into `broker_url`; returns (exit code, reports by source, stderr)."""
    result = run_cli("sync", "--config", str(config), "--broker-url", broker_url,
                     "--state-dir", str(tmp_path / "state"), "--json", *args)
    reports = {r["source"]: r for r in orjson.loads(result.stdout)} if result.stdout.strip() else {}
    return result.exit_code, reports, result.stderr


def parks_in(broker: RestartableBroker) -> set[str]:
    return broker_ids(broker.url).get("OffStreetParking", set())


# -- the mass-deletion guard ----------------------------------------------------------------------

@pytest.mark.parametrize("release", ["confirmed-by-the-next-fetch", "allow-deletes"])
def test_an_empty_feed_holds_the_deletions_until_confirmed(tmp_path, feeds, broker, release):
    config = write_pipeline(tmp_path / "burgas.yaml", source_line(PARKS, feeds.url("/api/car_parks")))
    code, reports, _ = sync(tmp_path, config, broker.url)
    assert code == 0 and reports[PARKS]["sent"] == 7
    parks = parks_in(broker)
    assert len(parks) == 7

    feeds.faults["car_parks"] = EMPTY  # 200, a valid envelope, no car parks
    code, reports, stderr = sync(tmp_path, config, broker.url, "--strict")
    held = reports[PARKS]
    assert code == 5, stderr
    assert held["held_deletes"] == 7 and held["deleted"] == 0 and held["complete"]
    assert parks_in(broker) == parks  # nothing deleted
    assert stderr.count("would delete all 7 entities") == 1  # said once in the log
    status = orjson.loads(run_cli("status", "--json", "--state-dir", str(tmp_path / "state")).stdout)
    row = next(r for r in status["sources"] if r["source"] == PARKS)
    assert row["held_deletes"] == 7 and row["entities"] == 7 and row["last_report"]["held_deletes"] == 7

    table = run_cli("sync", "--config", str(config), "--broker-url", broker.url,
                    "--state-dir", str(tmp_path / "state"), "--allow-deletes", "no.such.source")
    assert table.returncode == 2  # an unknown name is a configuration error, and releases nothing
    assert parks_in(broker) == parks

    extra = ("--allow-deletes", PARKS) if release == "allow-deletes" else ()
    code, reports, stderr = sync(tmp_path, config, broker.url, "--strict", *extra)
    assert code == 0, stderr
    assert reports[PARKS]["deleted"] == 7 and reports[PARKS]["held_deletes"] == 0
    assert parks_in(broker) == set()
    status = orjson.loads(run_cli("status", "--json", "--state-dir", str(tmp_path / "state")).stdout)
    assert all(r["held_deletes"] == 0 and r["entities"] == 0 for r in status["sources"])


def test_a_feed_that_comes_back_releases_nothing_and_forgets_the_hold(tmp_path, feeds, broker):
    config = write_pipeline(tmp_path / "burgas.yaml", source_line(PARKS, feeds.url("/api/car_parks")))
    sync(tmp_path, config, broker.url)
    parks = parks_in(broker)
    feeds.faults["car_parks"] = EMPTY
    assert sync(tmp_path, config, broker.url)[1][PARKS]["held_deletes"] == 7
    del feeds.faults["car_parks"]
    code, reports, _ = sync(tmp_path, config, broker.url)
    assert code == 0 and reports[PARKS]["deleted"] == 0 and reports[PARKS]["held_deletes"] == 0
    # An empty feed again is a new hold, not a confirmation of the first one.
    feeds.faults["car_parks"] = EMPTY
    code, reports, _ = sync(tmp_path, config, broker.url)
    assert reports[PARKS]["held_deletes"] == 7 and parks_in(broker) == parks


def test_the_share_is_configurable_per_source(tmp_path, feeds, broker):
    config = write_pipeline(tmp_path / "burgas.yaml",
                            source_line(PARKS, feeds.url("/api/car_parks"), max_delete_share=0.5))
    sync(tmp_path, config, broker.url)
    for park in ("4", "5", "6"):  # 3 of 7 (43 %): above the default 20 %, below this source's 50 %
        feeds.remove("car_parks", park)
    code, reports, _ = sync(tmp_path, config, broker.url, "--strict")
    assert code == 0 and reports[PARKS]["deleted"] == 3 and reports[PARKS]["held_deletes"] == 0
    assert len(parks_in(broker)) == 4


# -- deadlines, refusals and redirect loops: the source fails alone --------------------------------

def test_a_trickling_feed_ends_at_its_deadline_and_the_other_sources_run(tmp_path, feeds, broker):
    with TrickleServer() as trickle:
        config = write_pipeline(
            tmp_path / "burgas.yaml",
            source_line(PARKS, trickle.url, request_deadline_seconds=1, fetch_deadline_seconds=2),
            source_line(ZONES, feeds.url("/api/paid_parking_zones")))
        code, reports, stderr = sync(tmp_path, config, broker.url)
    assert code == 4, stderr
    stuck, other = reports[PARKS], reports[ZONES]
    assert not stuck["ok"] and stuck["error_kind"] == "unavailable"
    assert "deadline" in stuck["last_error"]
    assert other["ok"] and other["sent"] > 0
    assert sum(map(len, broker_ids(broker.url).values())) == other["sent"]  # only the other source's


@pytest.mark.parametrize("fault, code, kind, words", [
    pytest.param(Reply(b'{"error": "unauthorized"}', 401), 3, "authorisation", "HTTP 401", id="401"),
    pytest.param(Reply(b"", 302, headers={"Location": "/api/car_parks"}), 4, "unavailable",
                 "too many redirects", id="redirect-loop"),
])
def test_a_refusing_or_looping_source_fails_alone_and_the_report_is_written(
        tmp_path, feeds, broker, fault, code, kind, words):
    feeds.faults["car_parks"] = fault
    config = write_pipeline(tmp_path / "burgas.yaml",  # the failing source first
                            source_line(PARKS, feeds.url("/api/car_parks")),
                            source_line(ZONES, feeds.url("/api/paid_parking_zones")))
    exit_code, reports, stderr = sync(tmp_path, config, broker.url)
    assert exit_code == code, stderr
    failed, other = reports[PARKS], reports[ZONES]
    assert not failed["ok"] and failed["error_kind"] == kind and words in failed["last_error"]
    assert other["ok"] and other["sent"] > 0 and len(broker_ids(broker.url)) > 0
    status = orjson.loads(run_cli("status", "--json", "--state-dir", str(tmp_path / "state")).stdout)
    assert {r["source"] for r in status["sources"] if r.get("last_run")} == {PARKS, ZONES}


# -- credentials in source URLs --------------------------------------------------------------------

def test_credentials_in_source_urls_show_nowhere(tmp_path, feeds, broker):
    password, token = "pw-5e1d0c9b", "tok-77aa31f0"

    def secret_url(path: str) -> str:
        return feeds.url(path).replace("http://", f"http://reader:{password}@") + f"?token={token}"
    # GTFS: the agency's entitySource is the feed URL, so the URL itself reaches entities and the outbox.
    feeds.add("/gtfs.zip", Reply(GTFS_ZIP.read_bytes(), content_type="application/zip"))
    config = write_pipeline(tmp_path / "burgas.yaml",
                            source_line(PARKS, secret_url("/api/car_parks")),  # works
                            source_line(ZONES, secret_url("/api/nowhere")),  # 404: the URL is in the error
                            f"  - {{name: gtfs.bus, group: gtfs, type: gtfs, url: '{secret_url('/gtfs.zip')}'}}")
    state = tmp_path / "state"
    result = run_cli("sync", "--config", str(config), "--broker-url", broker.url, "--state-dir", str(state),
                     "--json")
    table = run_cli("sync", "--config", str(config), "--broker-url", broker.url, "--state-dir", str(state))
    status = run_cli("status", "--json", "--state-dir", str(state))
    status_table = run_cli("status", "--state-dir", str(state))
    assert result.returncode == 4 and table.returncode == 4
    reports = {r["source"]: r for r in orjson.loads(result.stdout)}
    assert "404" in reports[ZONES]["last_error"] and "REDACTED" in reports[ZONES]["last_error"]
    assert reports[PARKS]["ok"] and reports["gtfs.bus"]["ok"]
    agencies = [e for e in broker_entities(broker.url).values() if ":GtfsAgency:" in e["id"]]
    urls = [v["value"] for e in agencies for k, v in e.items() if k.endswith("entitySource")]
    assert urls and all(url.startswith("http://**REDACTED**@") and token not in url for url in urls)
    for shown in (result, table, status, status_table):
        for secret in (password, token):
            assert secret not in shown.stdout and secret not in shown.stderr
    assert "REDACTED" in status.stdout
    for file in state.iterdir():  # the state file (runs table included), its WAL, the broker's
        if file.is_file():
            data = file.read_bytes()
            assert password.encode() not in data and token.encode() not in data, file.name


# -- the service -------------------------------------------------------------------------------------

def test_the_service_gets_ready_past_a_hanging_source_and_shows_held_deletions(
        tmp_path, feeds, monkeypatch):
    key = "key-0b7e2c4d"
    monkeypatch.setenv("BURGAS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("BURGAS_EMBEDDED_BROKER_PERSIST", "false")
    monkeypatch.setenv("BURGAS_API_KEY", key)
    with TrickleServer() as trickle:
        config = load_config(write_pipeline(
            tmp_path / "burgas.yaml",
            source_line(PARKS, feeds.url("/api/car_parks"), interval_seconds=3600),
            source_line(ZONES, trickle.url, interval_seconds=3600, request_deadline_seconds=1,
                        fetch_deadline_seconds=2)))
        service_app = create_app(load_settings(), config)
        with serve_app(service_app) as url, httpx.Client(base_url=url, timeout=60.0) as client:
            waited_until = time.monotonic() + 60
            while client.get("/ready").status_code != 200:
                assert time.monotonic() < waited_until, "a hanging source kept /ready at 503"
                time.sleep(0.1)
            status = client.get("/status").json()
            assert "deadline" in status["sources"][ZONES]["last_error"]
            broker_url = service_app.state.service.runtime.broker_url  # type: ignore[attr-defined]
            parks = broker_ids(broker_url).get("OffStreetParking", set())
            assert len(parks) == 7

            feeds.faults["car_parks"] = EMPTY
            report = client.post(f"/sync/{PARKS}", headers={"X-API-Key": key}).json()
            assert report["held_deletes"] == 7 and report["deleted"] == 0
            assert broker_ids(broker_url).get("OffStreetParking", set()) == parks
            status = client.get("/status").json()
            assert status["held_deletes"] == {PARKS: 7}
            assert status["sources"][PARKS]["last_report"]["held_deletes"] == 7
            metrics = client.get("/metrics").text
            assert f'burgas_deletes_held{{source="{PARKS}"}} 7.0' in metrics
            assert f'burgas_deletes_held{{source="{ZONES}"}} 0.0' in metrics
