"""Configured sources and their mappers: the one place that turns config entries into parts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from adapter.config import SmartBurgasSourceConfig
from adapter.errors import ConfigError
from adapter.mapping import MAPPERS
from adapter.mapping.base import Mapped, Rejected
from adapter.sources.base import RawRecord, Source
from adapter.sources.smartburgas import SmartBurgasSource

RecordMapper = Callable[[RawRecord], Mapped | Rejected]


def build_source(config: Any, client: httpx.AsyncClient) -> Source:
    """The source a config entry describes."""
    if isinstance(config, SmartBurgasSourceConfig):
        return SmartBurgasSource(config.feed, config.url, client=client)
    raise ConfigError(f"source type {config.type!r} is not supported", source=config.name)


def build_mapper(config: Any) -> RecordMapper:
    """The record mapper of a config entry."""
    if isinstance(config, SmartBurgasSourceConfig):
        mapper = MAPPERS.get(config.feed)
        if mapper is None:
            raise ConfigError(f"no mapper for Smart Burgas feed {config.feed!r}", source=config.name)
        return mapper
    raise ConfigError(f"source type {config.type!r} has no mapper", source=config.name)
