"""The ETSI NGSI-LD core @context v1.8, shipped as package data: every broker embeds it, so
neither the broker nor the adapter ever downloads it."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

CORE_CONTEXT_URL = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
_FILE = "ngsi-ld-core-context-v1.8.jsonld"


def core_context_bytes() -> bytes:
    """The document exactly as published (top-level "@context")."""
    return resources.files("ngsild_broker").joinpath("data", _FILE).read_bytes()


@lru_cache(maxsize=1)
def core_context() -> dict[str, Any]:
    """The parsed document; callers must not mutate it."""
    doc = orjson.loads(core_context_bytes())
    assert isinstance(doc, dict)
    return doc
