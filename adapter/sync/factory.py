"""Configured sources and their mappers: the one place that turns config entries into parts.

:data:`KINDS` is the table, one row per config ``type``: how to build the source and the record
mapper, and whether the source is static or a stream. Configured URLs go through a
:class:`~adapter.sources.urls.UrlResolver` (plain by default; the CLI passes the one that serves the
bundled samples).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from adapter.config import (
    ArcGISSourceConfig,
    GeoJSONSourceConfig,
    GTFSSourceConfig,
    MQTTSourceConfig,
    OGCAPISourceConfig,
    SmartBurgasSourceConfig,
    WFSSourceConfig,
)
from adapter.errors import ConfigError
from adapter.mapping import MAPPERS
from adapter.mapping.base import Mapped, Rejected
from adapter.mapping.gis import layer_mapper
from adapter.mapping.gtfs import gtfs_mapper
from adapter.sources.arcgis import ArcGISSource
from adapter.sources.base import RawRecord, Source
from adapter.sources.geojson import GeoJSONSource
from adapter.sources.gtfs import GTFSSource
from adapter.sources.http import FetchOptions
from adapter.sources.ogcapi import OGCAPIFeaturesSource
from adapter.sources.smartburgas import SmartBurgasSource
from adapter.sources.urls import PLAIN_URLS, UrlResolver
from adapter.sources.wfs import WFSSource

RecordMapper = Callable[[RawRecord], Mapped | Rejected]
SourceBuilder = Callable[[Any, httpx.AsyncClient, UrlResolver], Source]


@dataclass(frozen=True, slots=True)
class SourceKind:
    """What one config ``type`` is built into."""

    source: SourceBuilder | None
    """Builds the polled source; None: a stream, which `burgas-adapter serve` runs instead."""
    mapper: Callable[[Any], RecordMapper]
    static: bool = False
    """Its records map the same way whatever the time, so unchanged records are skipped."""


def fetch_options(config: Any) -> FetchOptions:
    """The fetch options of a config entry (its request deadline)."""
    return FetchOptions(deadline=config.request_deadline_seconds)


def _smartburgas(config: SmartBurgasSourceConfig, client: httpx.AsyncClient,
                 urls: UrlResolver) -> Source:
    # Its URL is not resolved: None means the feed's env var, then the bundled sample file.
    return SmartBurgasSource(config.feed, config.url, client=client, options=fetch_options(config))


def _arcgis(config: ArcGISSourceConfig, client: httpx.AsyncClient, urls: UrlResolver) -> Source:
    return ArcGISSource(config.name, urls.resolve(config.url), output=config.output,
                        out_sr=config.out_sr, page_size=config.page_size, crs=config.crs,
                        client=client, options=fetch_options(config))


def _wfs(config: WFSSourceConfig, client: httpx.AsyncClient, urls: UrlResolver) -> Source:
    return WFSSource(config.name, urls.resolve(config.url), config.type_name,
                     srs_name=config.srs_name, page_size=config.page_size, crs=config.crs,
                     client=client, options=fetch_options(config))


def _ogcapi(config: OGCAPISourceConfig, client: httpx.AsyncClient, urls: UrlResolver) -> Source:
    return OGCAPIFeaturesSource(config.name, urls.resolve(config.url), config.collection,
                                limit=config.page_size, crs=config.crs, client=client,
                                options=fetch_options(config))


def _geojson(config: GeoJSONSourceConfig, client: httpx.AsyncClient, urls: UrlResolver) -> Source:
    return GeoJSONSource(config.name, urls.resolve(config.url), crs=config.crs,
                         id_field=config.mapping.id_field, client=client,
                         options=fetch_options(config))


def _gtfs(config: GTFSSourceConfig, client: httpx.AsyncClient, urls: UrlResolver) -> Source:
    return GTFSSource(config.name, urls.resolve(config.url), client=client,
                      options=fetch_options(config))


def _feed_mapper(config: SmartBurgasSourceConfig) -> RecordMapper:
    mapper = MAPPERS.get(config.feed)
    if mapper is None:
        raise ConfigError(f"no mapper for Smart Burgas feed {config.feed!r}", source=config.name)
    return mapper


def _layer_mapper(config: ArcGISSourceConfig | WFSSourceConfig | OGCAPISourceConfig
                  | GeoJSONSourceConfig) -> RecordMapper:
    return layer_mapper(config.name, config.mapping)


def _gtfs_mapper(config: GTFSSourceConfig) -> RecordMapper:
    return gtfs_mapper(config.name, config.agency_key)


def _mqtt_mapper(config: MQTTSourceConfig) -> RecordMapper:
    from adapter.mapping.mqtt import mapper_for  # only a process that runs streams needs it

    return mapper_for(config.name, config.topics)


KINDS: Mapping[str, SourceKind] = {
    "smartburgas": SourceKind(_smartburgas, _feed_mapper),
    "arcgis": SourceKind(_arcgis, _layer_mapper, static=True),
    "wfs": SourceKind(_wfs, _layer_mapper, static=True),
    "ogcapi": SourceKind(_ogcapi, _layer_mapper, static=True),
    "geojson": SourceKind(_geojson, _layer_mapper, static=True),
    "gtfs": SourceKind(_gtfs, _gtfs_mapper, static=True),
    "mqtt": SourceKind(None, _mqtt_mapper),
}
"""Config ``type`` -> what it is built into (every type adapter.config accepts has a row)."""


def kind_of(config: Any) -> SourceKind:
    """The row of a config entry's ``type``."""
    kind = KINDS.get(config.type)
    if kind is None:
        raise ConfigError(f"source type {config.type!r} is not supported", source=config.name)
    return kind


def is_static(config: Any) -> bool:
    """True when the entry's records map the same whatever the time (see :class:`SourceKind`)."""
    return kind_of(config).static


def is_stream(config: Any) -> bool:
    """True when the entry is a live stream (run by `burgas-adapter serve`, not polled)."""
    return kind_of(config).source is None


def build_source(config: Any, client: httpx.AsyncClient, *,
                 urls: UrlResolver = PLAIN_URLS) -> Source:
    """The source a config entry describes, its URL resolved through ``urls``."""
    build = kind_of(config).source
    if build is None:
        raise ConfigError("an MQTT source is a stream: `burgas-adapter serve` runs it", source=config.name)
    return build(config, client, urls)


def build_mapper(config: Any) -> RecordMapper:
    """The record mapper of a config entry."""
    return kind_of(config).mapper(config)
