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
