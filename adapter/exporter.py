"""`burgas-adapter export`: mapped entities to JSON Lines, without a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson

from adapter.config import PipelineConfig
from adapter.loopback import DIRECT
from adapter.mapping.base import Rejected
from adapter.ngsi.context import ContextMode, context_for
from adapter.ngsi.serialize import Form, to_dict
from adapter.settings import Settings
from adapter.sources.urls import PLAIN_URLS, UrlResolver
from adapter.sync.factory import build_mapper, build_source
from adapter.sync.pipeline import map_fetch


async def export_entities(config: PipelineConfig, names: list[str] | None, output: Path,
                          form: str, settings: Settings, history: bool = False,
                          urls: UrlResolver = PLAIN_URLS) -> dict[str, int]:
    """Fetch and map the chosen sources; write one entity per line (with @context).

    Configured URLs are resolved through ``urls``, which is closed when the export ends."""
    chosen = Form(form)
    mode = ContextMode(settings.ngsi_context)
    counts = {"entities": 0, "readings": 0, "rejected": 0}
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0), mounts=DIRECT) as http:
            with output.open("wb") as out:
                await _export(config, names, out, chosen, mode, settings, history, http, urls, counts)
    finally:
        urls.close()
    return counts


async def _export(config: PipelineConfig, names: list[str] | None, out: Any, chosen: Form,
                  mode: ContextMode, settings: Settings, history: bool, http: httpx.AsyncClient,
                  urls: UrlResolver, counts: dict[str, int]) -> None:
    def rejected(_: Rejected) -> None:
        counts["rejected"] += 1

    for source_config in config.select(names):
        by_id, _ = await map_fetch(build_source(source_config, http, urls=urls),
                                   build_mapper(source_config), rejected)
        for mapped in by_id.values():
            entities: list[Any] = [*mapped.history, mapped.entity] if history else [mapped.entity]
            for entity in entities:
                context = context_for(type(entity), mode, settings.context_base_url)
                out.write(orjson.dumps(to_dict(entity, chosen, context)) + b"\n")
            counts["entities"] += 1
            counts["readings"] += len(mapped.history)
