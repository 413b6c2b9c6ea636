"""Settings: BURGAS_ environment, secrets from files, never shown."""

from __future__ import annotations

import pytest

from adapter.errors import ConfigError
from adapter.redaction import REDACTED, redact_headers
from adapter.settings import Settings, load_settings


def test_environment_and_token_file(monkeypatch, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    monkeypatch.setenv("BURGAS_BROKER_URL", "http://orion:1026")
    monkeypatch.setenv("BURGAS_BROKER_TOKEN_FILE", str(token))
    monkeypatch.setenv("BURGAS_UPSERT_MODE", "replace")
    monkeypatch.setenv("BURGAS_CONTEXT_MODE", "link")
    settings = Settings()
    assert settings.broker_token.get_secret_value() == "s3cret"
    assert settings.upsert_mode == "replace" and settings.context_mode == "link"
    assert settings.batch_max_entities == 1000 and settings.batch_max_bytes < 1024 * 1024
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.redacted())
    assert settings.redacted()["broker_token"] == REDACTED


def test_oauth_secret_redacted_and_incomplete_oauth_refused(monkeypatch):
    settings = Settings(oauth_token_url="http://kc/token", oauth_client_id="a", oauth_client_secret="pw")
    assert settings.redacted()["oauth_client_secret"] == REDACTED
    with pytest.raises(ConfigError, match="OAuth") as info:
        load_settings(oauth_token_url="http://kc/token", oauth_client_secret="pw")
    assert "pw" not in str(info.value)


def test_bad_values_are_config_errors():
    with pytest.raises(ConfigError, match="upsert_mode"):
        load_settings(upsert_mode="merge")


def test_redact_headers():
    assert redact_headers({"Authorization": "Bearer x", "Link": "<u>"}) == {"Authorization": REDACTED, "Link": "<u>"}


def test_urls_lose_their_credentials_wherever_they_appear():
    from adapter.redaction import scrub_text, scrub_url

    assert scrub_url("https://gis.burgas.bg/arcgis/rest/services/x/query?where=1%3D1&token=s3cr3t&f=json") == (
        f"https://gis.burgas.bg/arcgis/rest/services/x/query?where=1%3D1&token={REDACTED}&f=json")
    assert scrub_url("mqtt://user:pw@host:1883") == f"mqtt://{REDACTED}@host:1883"
    assert scrub_url("https://a.example/x?apikey=k&API_KEY=k2") == (
        f"https://a.example/x?apikey={REDACTED}&API_KEY={REDACTED}")
    assert scrub_url("https://a.example/x?page=2") == "https://a.example/x?page=2"  # untouched
    text = "GET 'https://h.example/q?token=abc&x=1' failed: 500 (see https://u:p@h.example/)"
    scrubbed = scrub_text(text)
    assert "abc" not in scrubbed and "u:p@" not in scrubbed and scrubbed.count(REDACTED) == 2


def test_log_lines_scrub_credentials_in_urls_plain_and_json():
    import logging

    from adapter.logs import JSONFormatter, PlainFormatter

    record = logging.LogRecord("adapter.sources", logging.WARNING, __file__, 1,
                               "fetch of %s failed", ("https://h.example/q?token=abc123",), None)
    for formatter in (PlainFormatter("%(message)s"), JSONFormatter()):
        line = formatter.format(record)
        assert "abc123" not in line and REDACTED in line
