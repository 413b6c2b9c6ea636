"""`burgas-adapter` as a user runs it: exit codes, export, check-config redaction, status."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from adapter.cli import app
from adapter.config import load_config
from data_models import model_for
from tests.schema_validation import schema_errors
from tests.sync_fixtures import FeedServer, expected_entities, free_port, write_config

pytestmark = pytest.mark.integration

FEW = ("car_parks", "paid_parking_zones")
FAST_ENV = {"BURGAS_RETRY_ATTEMPTS": "1", "BURGAS_RETRY_INITIAL_WAIT": "0", "BURGAS_CONNECT_TIMEOUT": "2",
            "COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(scope="module")
def feeds():
    with FeedServer(FEW) as server:
        yield server


@pytest.fixture
def config(tmp_path, feeds) -> Path:
    return write_config(tmp_path / "burgas.yaml", feeds)


def cli(*args: str, **env: str):
    result = CliRunner().invoke(app, list(args), env={**FAST_ENV, **env})
    if isinstance(result.exception, BaseException) and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_sync_with_the_embedded_broker_exits_0_and_status_reports_it(tmp_path, config):
    state = str(tmp_path / "state")
    result = cli("sync", "--config", str(config), "--state-dir", state)
    assert result.exit_code == 0, result.output
    assert "smartburgas.car_parks" in result.output and "smartburgas.paid_parking_zones" in result.output

    status = cli("status", "--json", "--state-dir", state)
    assert status.exit_code == 0, status.output
    info = orjson.loads(status.stdout)
    expected = expected_entities(load_config(config))
    rows = {r["source"]: r for r in info["sources"]}
    assert set(rows) == {f"smartburgas.{n}" for n in FEW}
    assert sum(r["entities"] for r in rows.values()) == len(expected)
    assert all(r["pending"] == 0 and r["quarantined"] == 0 and r["last_error"] is None for r in rows.values())
    assert all(r["last_report"]["ok"] and r["last_report"]["complete"] for r in rows.values())
    assert info["state_file"].endswith("state.sqlite3")


@pytest.mark.parametrize("problem", ["yaml", "schema", "unknown-source", "setting"])
def test_bad_configuration_exits_2(tmp_path, config, problem):
    args = ["sync", "--config", str(config), "--state-dir", str(tmp_path / "state")]
    env: dict[str, str] = {}
    if problem == "yaml":
        config.write_text("sources: [\n")
    elif problem == "schema":
        config.write_text("sources:\n  - {name: x, group: g, type: smartburgas, feed: air_quality, bogus: 1}\n")
    elif problem == "unknown-source":
        args.append("no.such.source")
    else:
        env["BURGAS_CONCURRENCY"] = "0"
    result = cli(*args, **env)
    assert result.exit_code == 2, result.output
    assert "error" in result.output


def test_unreachable_broker_exits_4_and_keeps_the_work(tmp_path, config):
    state = str(tmp_path / "state")
    result = cli("sync", "--config", str(config), "--broker-url", f"http://127.0.0.1:{free_port()}",
                 "--state-dir", state, "--json")
    assert result.exit_code == 4, result.output
    reports = orjson.loads(result.stdout)
    assert all(r["pending"] > 0 and not r["ok"] and "unreachable" in r["last_error"] for r in reports)
    rows = orjson.loads(cli("status", "--json", "--state-dir", state).stdout)["sources"]
    assert sum(r["pending"] for r in rows) == len(expected_entities(load_config(config)))


def test_export_writes_ngsi_ld_lines_that_validate(tmp_path, config):
    output = tmp_path / "out" / "entities.jsonl"
    result = cli("export", "--config", str(config), "--output", str(output), "--form", "keyValues")
    assert result.exit_code == 0, result.output
    lines = output.read_bytes().splitlines()
    expected = expected_entities(load_config(config))
    assert len(lines) == len(expected) and f"wrote {len(expected)} entities" in result.output
    for line in lines:
        entity = orjson.loads(line)
        assert entity["id"] in expected and entity["type"] == expected[entity["id"]]
        assert entity["id"].startswith(f"urn:ngsi-ld:{entity['type']}:")
        assert entity["@context"][-1].endswith("ngsi-ld-core-context-v1.8.jsonld")
        body = {k: v for k, v in entity.items() if k != "@context"}
        assert schema_errors(model_for(entity["type"]), body) == [], entity["id"]


def test_export_normalized_carries_typed_attributes(tmp_path, config):
    output = tmp_path / "entities.jsonl"
    assert cli("export", "--config", str(config), "-o", str(output)).exit_code == 0
    for line in output.read_bytes().splitlines():
        entity = orjson.loads(line)
        attrs = {k: v for k, v in entity.items() if k not in ("id", "type", "@context")}
        assert attrs and all(v["type"] in ("Property", "GeoProperty", "Relationship", "LanguageProperty",
                                           "VocabProperty", "ListProperty", "JsonProperty")
                             for v in attrs.values() if isinstance(v, dict))


def test_every_command_runs_with_the_adapter_gc_thresholds(config):
    import gc

    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)  # CPython's defaults
    try:
        result = cli("check-config", "--config", str(config))
        assert result.exit_code == 0, result.output
        assert gc.get_threshold() == (50_000, 20, 100)  # adapter.process.tune_gc
    finally:
        gc.set_threshold(*saved)


def test_check_config_never_shows_secrets(config):
    secret = "tok-3f9a7c1e-never-print-me"
    result = cli("check-config", "--config", str(config), BURGAS_BROKER_TOKEN=secret)
    assert result.exit_code == 0, result.output
    assert secret not in result.output and "REDACTED" in result.output
    assert "smartburgas.car_parks" in result.output

    oauth = cli("check-config", "--config", str(config), BURGAS_OAUTH_TOKEN_URL="http://127.0.0.1:9/token",
                BURGAS_OAUTH_CLIENT_ID="adapter", BURGAS_OAUTH_CLIENT_SECRET=secret)
    assert oauth.exit_code == 0, oauth.output
    assert secret not in oauth.output and "REDACTED" in oauth.output


def test_invalid_settings_error_does_not_echo_the_secret(config):
    secret = "tok-never-print-me-either"
    # A static token and OAuth together are refused; the message must not carry the values.
    result = cli("check-config", "--config", str(config), BURGAS_BROKER_TOKEN=secret,
                 BURGAS_OAUTH_TOKEN_URL="http://127.0.0.1:9/token", BURGAS_OAUTH_CLIENT_ID="adapter",
                 BURGAS_OAUTH_CLIENT_SECRET=secret)
    assert result.exit_code == 2, result.output
    assert secret not in result.output


def _quarantined_message(state: Path, topic: str) -> None:
    """A stream message set aside because no sensor family was configured for its topic."""
    from adapter.errors import MappingError
    from adapter.sync.quarantine import Quarantine
    from adapter.sync.state import StateStore

    payload = orjson.dumps({"sensor": "a", "time": "2025-06-01T10:01:00Z", "location": [27.4712, 42.4958],
                            "laeq": 61.5})
    store = StateStore(state / "state.sqlite3")
    try:
        Quarantine(store).add(tenant="", source="mqtt.live", kind="record", locator=f"{topic} #0a1b2c",
                              error=MappingError(f"no sensor family for topic {topic!r}"), payload=payload)
    finally:
        store.close()


def _stream_config(path: Path, *, enabled: bool) -> Path:
    path.write_text(
        "sources:\n"
        "  - name: mqtt.live\n    group: mqtt\n    type: mqtt\n"
        f"    enabled: {str(enabled).lower()}\n"
        "    url: mqtt://127.0.0.1:1\n"  # never connected: a retry maps the stored payload
        "    topics: {'lp/+/noise': lamppost.noise}\n", encoding="utf-8")
    return path


def test_quarantine_retry_maps_stored_stream_messages_again_and_delivers_them(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    _quarantined_message(state, "lp/a/noise")
    config = _stream_config(tmp_path / "burgas.yaml", enabled=True)
    result = cli("quarantine", "retry", "--config", str(config), "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert "1 records now map" in result.output and "0 still quarantined" in result.output

    from adapter.sync.state import StateStore
    store = StateStore(state / "state.sqlite3")
    try:
        row = store.get("", "mqtt.live", "urn:ngsi-ld:NoiseLevelObserved:lamppost:a")
        assert row is not None and row.sent_hash == row.want_hash  # the broker confirmed it
        assert store.conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    finally:
        store.close()


def test_quarantine_retry_leaves_records_of_a_disabled_source_alone(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    _quarantined_message(state, "lp/a/noise")
    config = _stream_config(tmp_path / "burgas.yaml", enabled=False)
    result = cli("quarantine", "retry", "--config", str(config), "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert "not retried" in result.output and "mqtt.live" in result.output
    assert "1 still quarantined" in result.output
