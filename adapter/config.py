"""The pipeline file (YAML) as pydantic models: which sources, in which groups, mapped how.

``type`` discriminates the source kinds. Strings may reference the environment as ``${VAR}`` or
``${VAR:-default}``, so the bundled file keeps the environment-variable names the Burgas map client
uses (``AIR_QUALITY_TIME_URL``...) and falls back to the bundled samples.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from adapter.errors import ConfigError

# config/burgas.yaml, reached through a link inside the package so that an installed wheel has it.
BUNDLED_CONFIG = Path(__file__).resolve().parent / "bundled" / "burgas.yaml"
_ENV = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_MAX_CONFIG_BYTES = 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AttributeRule(_Strict):
    """One row of a GIS layer's attribute table: target field <- source field (+ transform).

    ``values`` maps the transformed value (as text: "true", "градски", "3") onto the target value,
    for code lists that become a model's enumeration; a code mapped to null means "nothing to say"
    and is left out quietly, a code not in the map is left out with a note.
    """

    source: str
    transform: Literal["text", "number", "integer", "boolean", "datetime", "epoch_ms", "url"] = "text"
    values: dict[str, Any] | None = None


class LayerMapping(_Strict):
    """How features of a GIS layer become entities."""

    model: str = Field(description="Smart Data Models type, e.g. Beach")
    id_field: str = Field(description="the source field that is the feature's stable id")
    id_prefix: str | None = Field(None, description="source key in the entity id (default: layer name)")
    name_field: str | None = None
    name_en_field: str | None = None
    attributes: dict[str, AttributeRule | str] = Field(default_factory=dict)
    constants: dict[str, Any] = Field(default_factory=dict)


class _SourceBase(_Strict):
    name: str = Field(pattern=r"^[a-z0-9_.-]+$")
    group: str = Field(pattern=r"^[a-z0-9_-]+$")
    interval_seconds: float = Field(300.0, gt=0)
    enabled: bool = True
    # A snapshot source lists everything it has on each fetch: entities it no longer lists are
    # gone (deleted after a complete fetch, by setting). Streams and partial feeds are not.
    snapshot: bool = True


class SmartBurgasSourceConfig(_SourceBase):
    """One Smart Burgas JSON feed (see adapter.sources.smartburgas_feeds)."""

    type: Literal["smartburgas"]
    feed: str
    url: str | None = None  # None: the feed's environment variable, else the bundled sample


class ArcGISSourceConfig(_SourceBase):
    """An ArcGIS REST FeatureServer/MapServer layer."""

    type: Literal["arcgis"]
    url: str
    output: Literal["json", "geojson"] = "json"
    out_sr: int | None = None
    crs: str | None = None
    page_size: int | None = Field(None, ge=1, le=10_000)
    mapping: LayerMapping


class WFSSourceConfig(_SourceBase):
    """An OGC WFS 2.0 feature type (GeoJSON output)."""

    type: Literal["wfs"]
    url: str
    type_name: str
    srs_name: str | None = None
    crs: str | None = None
    page_size: int = Field(1000, ge=1, le=10_000)
    mapping: LayerMapping


class OGCAPISourceConfig(_SourceBase):
    """An OGC API - Features collection."""

    type: Literal["ogcapi"]
    url: str
    collection: str
    crs: str | None = None
    page_size: int = Field(1000, ge=1, le=10_000)
    mapping: LayerMapping


class GeoJSONSourceConfig(_SourceBase):
    """A GeoJSON file or URL."""

    type: Literal["geojson"]
    url: str
    crs: str | None = None
    mapping: LayerMapping


class GTFSSourceConfig(_SourceBase):
    """A GTFS static feed (zip)."""

    type: Literal["gtfs"]
    url: str
    agency_key: str = Field("burgasbus", pattern=r"^[A-Za-z0-9_-]+$")


class MQTTSourceConfig(_SourceBase):
    """A live MQTT stream: topic pattern -> sensor family (adapter.mapping.mqtt), micro-batched.

    Credentials and TLS come from the settings (BURGAS_MQTT_*), never from this file.
    """

    type: Literal["mqtt"]
    url: str = "mqtt://127.0.0.1:1883"
    topics: dict[str, str] = Field(min_length=1, description="topic pattern -> sensor family")
    snapshot: Literal[False] = False  # a stream never lists everything: nothing is deleted
    # A stable client id: the broker keeps the session (subscriptions, unacknowledged messages)
    # under it while the adapter is away. Default: burgas-adapter-<name>.
    client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")
    protocol: Literal["5", "3.1.1"] = "5"
    session_expiry_seconds: int = Field(86400, ge=0, le=2**32 - 1)  # MQTT 5 only
    receive_maximum: int = Field(2000, ge=1, le=65535)  # unacknowledged messages in flight (MQTT 5)
    keepalive_seconds: int = Field(30, ge=5, le=3600)
    reconnect_min_seconds: int = Field(1, ge=1)
    reconnect_max_seconds: int = Field(60, ge=1)
    batch_max_messages: int = Field(500, ge=1, le=65535)
    batch_max_ms: int = Field(100, ge=1, le=60_000)
    max_payload_bytes: int = Field(65536, ge=256, le=16 * 1024 * 1024)
    # More than one: that many worker processes share the subscriptions (MQTT shared subscriptions,
    # `$share/<share_group>/<topic>`), each mapping and storing its messages; this process delivers.
    # Each worker keeps its own persistent session (worker 0: client_id, worker n: <client_id>-w<n>).
    # After the number is lowered, the sessions of the workers no longer run are drained once and
    # ended (adapter/sync/stream_pool.py), so nothing waits in them.
    workers: int = Field(1, ge=1, le=16)
    share_group: str | None = Field(None, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")  # default: the client id

    @field_validator("url")
    @classmethod
    def _no_credentials_in_url(cls, url: str) -> str:
        if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
            raise ValueError("put MQTT credentials in BURGAS_MQTT_USERNAME/BURGAS_MQTT_PASSWORD, "
                             "not in the URL")
        return url


SourceConfig = Annotated[
    SmartBurgasSourceConfig | ArcGISSourceConfig | WFSSourceConfig | OGCAPISourceConfig | GeoJSONSourceConfig
    | GTFSSourceConfig | MQTTSourceConfig,
    Field(discriminator="type"),
]


class PipelineConfig(_Strict):
    """The whole pipeline file."""

    sources: list[SourceConfig]

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"source name {source.name!r} is used twice")
            seen.add(source.name)
        return sources

    @property
    def groups(self) -> dict[str, list[str]]:
        """Group name -> source names."""
        groups: dict[str, list[str]] = {}
        for source in self.sources:
            groups.setdefault(source.group, []).append(source.name)
        return groups

    def select(self, names: list[str] | None) -> list[Any]:
        """The enabled sources named directly or through their group (all when names is empty)."""
        enabled = [s for s in self.sources if s.enabled]
        if not names:
            return enabled
        chosen: list[Any] = []
        for name in names:
            matches = [s for s in enabled if name in (s.name, s.group)]
            if not matches:
                known = sorted({s.name for s in enabled} | {s.group for s in enabled})
                raise ConfigError(f"unknown source or group {name!r}; known: {', '.join(known)}")
            chosen.extend(m for m in matches if m not in chosen)
        return chosen


def expand_env(value: Any, env: Mapping[str, str] | None = None) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed YAML document."""
    env = os.environ if env is None else env
    if isinstance(value, str):
        def substitute(m: re.Match[str]) -> str:
            found = env.get(m["name"])
            if found:
                return found
            if m["default"] is not None:
                return m["default"]
            raise ConfigError(f"environment variable {m['name']} is not set and has no default")
        return _ENV.sub(substitute, value)
    if isinstance(value, list):
        return [expand_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: expand_env(v, env) for k, v in value.items()}
    return value


def load_config(path: Path | str | None = None, env: dict[str, str] | None = None) -> PipelineConfig:
    """Read and validate a pipeline file (default: the bundled Burgas configuration)."""
    path = Path(path) if path is not None else BUNDLED_CONFIG
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read pipeline file {path}: {exc.strerror}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"pipeline file {path} is larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        document = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"pipeline file {path} is not valid YAML: {exc}") from None
    try:
        return PipelineConfig.model_validate(expand_env(document, env))
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"pipeline file {path} is invalid: {problems}") from None
