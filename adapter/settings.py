"""Runtime settings from the environment (prefix BURGAS_), secrets as SecretStr and never shown."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapter.errors import ConfigError
from adapter.redaction import redact

MIB = 1024 * 1024
# Orion-LD refuses bodies whose Content-Length exceeds 1 MiB (-inReqPayloadMaxSize); stay clearly below.
DEFAULT_BATCH_MAX_BYTES = MIB - 16 * 1024


class Settings(BaseSettings):
    """Adapter settings; every field is read from BURGAS_<FIELD NAME> (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="BURGAS_", extra="ignore", validate_default=True)

    # Broker: None starts the embedded broker.
    broker_url: str | None = None
    tenant: str | None = None
    # Where temporal reads go (GET /temporal/entities): FIWARE Mintaka in front of Orion-LD with
    # TRoE (docs/orion-ld.md). None: the broker itself (the embedded broker answers them).
    temporal_url: str | None = None

    # Auth: a static bearer token, or OAuth2 client credentials. *_file variants read the secret
    # from a file (Docker/Kubernetes secrets), trailing newline stripped.
    broker_token: SecretStr | None = None
    broker_token_file: Path | None = None
    oauth_token_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    oauth_client_secret_file: Path | None = None
    oauth_scope: str | None = None

    # Batching and delivery.
    batch_max_entities: int = Field(1000, ge=1)
    batch_max_bytes: int = Field(DEFAULT_BATCH_MAX_BYTES, ge=1024)
    concurrency: int = Field(4, ge=1, le=64)
    upsert_mode: Literal["update", "replace"] = "update"
    context_mode: Literal["link", "body"] = "body"
    delete_missing: bool = True

    # Timeouts (seconds) and retries of transient broker failures.
    connect_timeout: float = Field(5.0, gt=0)
    request_timeout: float = Field(60.0, gt=0)
    retry_attempts: int = Field(5, ge=1)
    retry_max_seconds: float = Field(120.0, gt=0)
    retry_initial_wait: float = Field(0.5, ge=0)
    retry_max_wait: float = Field(15.0, ge=0)

    # Which @context entities carry: "generated" (served by this project; works offline) or
    # "official" (Smart Data Models context URLs; the broker must reach them).
    ngsi_context: Literal["generated", "official"] = "generated"
    context_base_url: str = "http://127.0.0.1:8080/contexts/"
    # The embedded broker (when broker_url is unset): its port (0 = any free port) and whether it
    # keeps its data in state_dir across runs.
    embedded_broker_port: int = Field(0, ge=0, le=65535)
    embedded_broker_persist: bool = True

    state_dir: Path = Path(".state")
    log_format: Literal["plain", "json"] = "plain"

    # The service (`burgas-adapter serve`): where it listens, and the key of its admin endpoints
    # (POST /sync, quarantine; header X-API-Key). No key: those endpoints answer 503.
    service_host: str = "127.0.0.1"
    service_port: int = Field(8080, ge=0, le=65535)
    api_key: SecretStr | None = None

    # MQTT sources (the broker URL and topics are in the pipeline file): credentials and TLS.
    # TLS is on for mqtts:// URLs or when mqtt_tls is set; mqtt_ca_file replaces the system CAs.
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None

    @model_validator(mode="after")
    def _read_secret_files(self) -> Settings:
        """Load *_file secrets; a file and an inline value together is ambiguous and refused."""
        for field, file_field in (("broker_token", "broker_token_file"),
                                  ("oauth_client_secret", "oauth_client_secret_file")):
            path: Path | None = getattr(self, file_field)
            if path is None:
                continue
            if getattr(self, field) is not None:
                raise ValueError(f"set either BURGAS_{field.upper()} or BURGAS_{file_field.upper()}")
            try:
                secret = path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"cannot read {file_field} {path}: {exc.strerror}") from None
            object.__setattr__(self, field, SecretStr(secret))
        oauth = (self.oauth_token_url, self.oauth_client_id, self.oauth_client_secret)
        if any(v is not None for v in oauth) and not all(v is not None for v in oauth):
            raise ValueError("OAuth needs BURGAS_OAUTH_TOKEN_URL, BURGAS_OAUTH_CLIENT_ID and a client secret")
        if self.broker_token is not None and self.oauth_token_url is not None:
            raise ValueError("set either a static broker token or OAuth client credentials, not both")
        return self

    @property
    def state_file(self) -> Path:
        """The SQLite file holding sync state, outbox and quarantine."""
        return self.state_dir / "state.sqlite3"

    def redacted(self) -> dict[str, Any]:
        """All settings as plain values, secrets replaced by a marker (safe to print or serve)."""
        return redact(self.model_dump(mode="python"))


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment plus explicit overrides; invalid values become ConfigError."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # Only the messages, never the input values (which may be secrets).
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid settings: {problems}") from None
