"""Configured sources and their mappers: the one place that turns config entries into parts."""

from __future__ import annotations

from collections.abc import Callable
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
from adapter.samples.serving import SAMPLES, SampleServers
from adapter.sources.arcgis import ArcGISSource
from adapter.sources.base import RawRecord, Source
from adapter.sources.geojson import GeoJSONSource
from adapter.sources.gtfs import GTFSSource
from adapter.sources.http import FetchOptions
from adapter.sources.ogcapi import OGCAPIFeaturesSource
from adapter.sources.smartburgas import SmartBurgasSource
from adapter.sources.wfs import WFSSource

RecordMapper = Callable[[RawRecord], Mapped | Rejected]


def build_source(config: Any, client: httpx.AsyncClient, *,
                 samples: SampleServers = SAMPLES) -> Source:
    """The source a config entry describes (``samples:`` URLs resolved through ``samples``)."""
    if isinstance(config, SmartBurgasSourceConfig):
        return SmartBurgasSource(config.feed, config.url, client=client, options=fetch_options(config))
    if isinstance(config, ArcGISSourceConfig | WFSSourceConfig | OGCAPISourceConfig
                  | GeoJSONSourceConfig | GTFSSourceConfig):
        return _fetched_source(config, samples.resolve(config.url), client)
    if isinstance(config, MQTTSourceConfig):
        raise ConfigError("an MQTT source is a stream: `burgas-adapter serve` runs it", source=config.name)
    raise ConfigError(f"source type {config.type!r} is not supported", source=config.name)


def fetch_options(config: Any) -> FetchOptions:
    """The fetch options of a config entry (its request deadline)."""
    return FetchOptions(deadline=config.request_deadline_seconds)


def _fetched_source(config: Any, url: str, client: httpx.AsyncClient) -> Source:
    options = fetch_options(config)
    if isinstance(config, ArcGISSourceConfig):
        return ArcGISSource(config.name, url, output=config.output, out_sr=config.out_sr,
                            page_size=config.page_size, crs=config.crs, client=client,
                            options=options)
    if isinstance(config, WFSSourceConfig):
        return WFSSource(config.name, url, config.type_name, srs_name=config.srs_name,
                         page_size=config.page_size, crs=config.crs, client=client,
                         options=options)
    if isinstance(config, OGCAPISourceConfig):
        return OGCAPIFeaturesSource(config.name, url, config.collection, limit=config.page_size,
                                    crs=config.crs, client=client, options=options)
    if isinstance(config, GeoJSONSourceConfig):
        return GeoJSONSource(config.name, url, crs=config.crs, id_field=config.mapping.id_field,
                             client=client, options=options)
    return GTFSSource(config.name, url, client=client, options=options)


def build_mapper(config: Any) -> RecordMapper:
    """The record mapper of a config entry."""
    if isinstance(config, SmartBurgasSourceConfig):
        mapper = MAPPERS.get(config.feed)
        if mapper is None:
            raise ConfigError(f"no mapper for Smart Burgas feed {config.feed!r}", source=config.name)
        return mapper
    if isinstance(config, ArcGISSourceConfig | WFSSourceConfig | OGCAPISourceConfig
                  | GeoJSONSourceConfig):
        return layer_mapper(config.name, config.mapping)
    if isinstance(config, GTFSSourceConfig):
        return gtfs_mapper(config.name, config.agency_key)
    if isinstance(config, MQTTSourceConfig):
        from adapter.mapping.mqtt import mapper_for

        return mapper_for(config.name, config.topics)
    raise ConfigError(f"source type {config.type!r} has no mapper", source=config.name)
