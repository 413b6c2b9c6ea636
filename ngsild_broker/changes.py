"""What changed, inside a notification (GS CIM 009 5.8.6, `showChanges`): deleted attributes as
NGSI-LD Null and, with showChanges, each changed attribute's previous value (`previousValue`,
`previousObject`, `previousLanguageMap`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ngsild_broker.instances import NULL

_MAIN = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
         "LanguageProperty": "languageMap", "JsonProperty": "json", "VocabProperty": "vocab",
         "ListProperty": "valueList", "ListRelationship": "objectList"}
_NOT_ATTRIBUTES = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})


def _main(attr: dict[str, Any]) -> str:
    return _MAIN.get(attr.get("type", "Property"), "value")


def _previous(member: str) -> str:
    return "previous" + member[0].upper() + member[1:]


def _null(attr: dict[str, Any], key_values: bool) -> Any:
    """An attribute that is no more, as NGSI-LD Null."""
    main = _main(attr)
    null: Any = {"@none": NULL} if main == "languageMap" else NULL
    if key_values:
        return null
    return {"type": attr.get("type", "Property"), main: null}


def annotate(rendered: dict[str, Any], before: dict[str, Any] | None, after: dict[str, Any] | None,
             compact: Callable[[str], str], *, show_changes: bool, key_values: bool,
             wanted: Callable[[str], bool], watched: set[str] | None = None) -> dict[str, Any]:
    """`rendered` (the notified entity) with deleted attributes nulled and, with `show_changes`,
    previous values; `after` None: the entity was deleted (its `watched` attributes, or all of
    them with showChanges, are notified as NGSI-LD Null). `wanted(iri)`: the subscription notifies
    that attribute."""
    if before is None:
        return rendered
    for iri, old in before.items():
        if iri in _NOT_ATTRIBUTES or not isinstance(old, dict) or not wanted(iri):
            continue
        new = after.get(iri) if after is not None else None
        name = compact(iri)
        if new is None:
            if after is not None or show_changes or (watched is not None and iri in watched):
                rendered[name] = _null(old, key_values)
            else:
                continue
        elif not show_changes or not isinstance(new, dict) or new.get(_main(new)) == old.get(_main(old)):
            continue
        if show_changes and not key_values and isinstance(rendered.get(name), dict):
            rendered[name][_previous(_main(old))] = old.get(_main(old))
    return rendered
