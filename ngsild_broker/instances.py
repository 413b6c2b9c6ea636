"""Multi-attributes (GS CIM 009 4.5.5): several instances of one attribute told apart by `datasetId`.

Stored form: an attribute is one instance (a dict, as before) or, with two or more instances, a list
of them with distinct `datasetId`s; the default instance has none. Every write goes through here, so
readers only need `instances()` to see both forms alike.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ngsild_broker.errors import bad_request

Instance = dict[str, Any]
Stored = Instance | list[Instance]
NULL = "urn:ngsi-ld:null"  # NGSI-LD Null: in a merge or update, deletes what it stands for
DEFAULT = "@none"  # the datasetId URI parameter's name of the default instance


def instances(value: Any) -> list[Instance]:
    """The instances of a stored or parsed attribute."""
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def pack(items: list[Instance]) -> Stored | None:
    """The stored form of a list of instances (None when there are none)."""
    if not items:
        return None
    return items[0] if len(items) == 1 else items


def dataset_of(instance: Instance) -> str | None:
    """The instance's datasetId (None for the default instance)."""
    return instance.get("datasetId")


def check_distinct(items: list[Instance], name: str) -> None:
    """400 when two instances of one attribute share a datasetId (or are both default)."""
    seen: set[str | None] = set()
    for item in items:
        ident = dataset_of(item)
        if ident in seen:
            raise bad_request("Invalid multi-attribute", f"{name}: datasetId {ident or DEFAULT} given twice")
        seen.add(ident)


def find(value: Any, dataset_id: str | None) -> Instance | None:
    """The instance with `dataset_id` (None: the default instance)."""
    return next((i for i in instances(value) if dataset_of(i) == dataset_id), None)


def replace(value: Any, new: Instance) -> Stored:
    """`value` with the instance of `new`'s datasetId replaced by `new`, or `new` appended."""
    ident = dataset_of(new)
    out = [i for i in instances(value) if dataset_of(i) != ident]
    kept_at = next((n for n, i in enumerate(instances(value)) if dataset_of(i) == ident), len(out))
    out.insert(kept_at, new)
    packed = pack(out)
    assert packed is not None
    return packed


def remove(value: Any, dataset_id: str | None) -> tuple[Stored | None, bool]:
    """`value` without the instance of `dataset_id`; (new value or None when empty, whether found)."""
    items = instances(value)
    kept = [i for i in items if dataset_of(i) != dataset_id]
    return pack(kept), len(kept) != len(items)


def select(value: Any, datasets: Collection[str]) -> Stored | None:
    """Only the instances whose datasetId is listed (`@none` names the default instance)."""
    kept = [i for i in instances(value) if (dataset_of(i) or DEFAULT) in datasets]
    return pack(kept)


def first(value: Any) -> Instance | None:
    """The default instance, else the first one (for location boxes and GeoJSON geometry)."""
    items = instances(value)
    return next((i for i in items if dataset_of(i) is None), items[0] if items else None)


def is_null(raw: Any) -> bool:
    """Whether an incoming attribute (or instance) is NGSI-LD Null: it asks for a deletion."""
    if raw is None or raw == NULL:
        return True
    if not isinstance(raw, dict):
        return False
    for member in ("value", "object", "json", "vocab", "valueList", "objectList"):
        if member in raw:
            main = raw[member]
            return main == NULL or main == [NULL]
    language_map = raw.get("languageMap")
    if isinstance(language_map, dict):
        return language_map.get(DEFAULT) == NULL or list(language_map.values()) == [NULL]
    return False
