"""Validate entities (keyValues form) against the official Smart Data Models JSON Schemas (tests only).

Schemas reference each other by public URL; a `referencing` registry resolves those URLs to the
reference files (``adapter.reference``), so validation needs no network once they are present.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError as SchemaError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT202012

from adapter.reference import load_json
from data_models import Entity

_GITHUB_IO = re.compile(r"^https://smart-data-models\.github\.io/(?P<path>[^#]+)$")
_RAW = re.compile(r"^https://raw\.githubusercontent\.com/smart-data-models/(?P<subject>[^/]+)/"
                  r"(?:master|main)/(?P<file>[^#]+)$")


def _relative_path(uri: str) -> str:
    if m := _GITHUB_IO.match(uri):
        path = m["path"]
        if path.startswith("data-models/"):
            return "smart-data-models/" + path.removeprefix("data-models/")
        return "smart-data-models/" + path
    if m := _RAW.match(uri):
        return f"smart-data-models/{m['subject']}/{m['file']}"
    raise NoSuchResource(ref=uri)


def _retrieve(uri: str) -> Resource:
    # Some subject schemas (gtfs-schema.json) declare "$schema": "http://json-schema.org/schema#",
    # which names no draft; read them as the 2020-12 the model schemas use.
    contents = load_json(_relative_path(uri))
    if isinstance(contents, dict) and contents.get("$schema") == "http://json-schema.org/schema#":
        return DRAFT202012.create_resource(contents)
    return Resource.from_contents(contents, default_specification=DRAFT202012)


@lru_cache(maxsize=64)
def validator_for(model: type[Entity]) -> Draft202012Validator:
    """A format-checking 2020-12 validator for the model's official schema."""
    uri = f"https://smart-data-models.github.io/{model.subject}/{model.entity_type}/schema.json"
    schema = load_json(_relative_path(uri))
    registry: Registry = Registry(retrieve=_retrieve)
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def schema_errors(model: type[Entity], key_values: dict[str, Any]) -> list[str]:
    """Every way an entity in keyValues form breaks its official schema (empty when valid)."""
    errors: list[SchemaError] = sorted(validator_for(model).iter_errors(key_values),
                                       key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(entity)'}: {e.message}" for e in errors]
