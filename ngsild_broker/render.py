"""Stored entities to the wire: compaction by the request's context and the output formats."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Literal

from ngsild_broker import lang as languages
from ngsild_broker import scope
from ngsild_broker.contexts import Context
from ngsild_broker.entities import MEMBERS, SYSTEM
from ngsild_broker.instances import first, select

Format = Literal["normalized", "keyValues", "concise"]
_NOT_ATTRIBUTES = frozenset({"id", "type", *SYSTEM, scope.KEY})

_KEY_VALUE_MEMBER = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
                     "LanguageProperty": "languageMap", "JsonProperty": "json",
                     "VocabProperty": "vocab", "ListProperty": "valueList",
                     "ListRelationship": "objectList"}


def render_entity(doc: dict[str, Any], ctx: Context, fmt: Format = "normalized", *,
                  sys_attrs: bool = False, attrs: Collection[str] | None = None,
                  lang: str | None = None, datasets: Collection[str] | None = None) -> dict[str, Any]:
    """An entity as the API returns it (no @context member; the caller adds it for ld+json).

    `datasets`: only the attribute instances with these datasetIds (`@none`: default instances).
    """
    types = [ctx.compact(t) for t in doc["type"]]
    out: dict[str, Any] = {"id": doc["id"], "type": types[0] if len(types) == 1 else types}
    if scope.KEY in doc:
        out[scope.KEY] = scope.render_scope(doc[scope.KEY])
    if sys_attrs:
        out["createdAt"] = doc["createdAt"]
        out["modifiedAt"] = doc["modifiedAt"]
    for iri, attr in doc.items():
        if iri in _NOT_ATTRIBUTES or (attrs is not None and iri not in attrs):
            continue
        if datasets is not None:
            attr = select(attr, datasets)
            if attr is None:
                continue
        out[ctx.compact(iri)] = render_attribute(attr, ctx, fmt, sys_attrs, lang)
    return out


def render_attribute(attr: Any, ctx: Context, fmt: Format = "normalized",
                     sys_attrs: bool = False, lang: str | None = None) -> Any:
    """One attribute in the requested format (a multi-attribute as an array of its instances)."""
    if isinstance(attr, list):
        return [render_attribute(i, ctx, fmt, sys_attrs, lang) for i in attr]
    kind = attr.get("type", "Property")
    main = _KEY_VALUE_MEMBER.get(kind, "value")
    if kind == "LanguageProperty" and lang is not None and isinstance(attr.get(main), dict):
        return _in_language(attr, ctx, fmt, sys_attrs, lang)
    if fmt == "keyValues":
        return attr.get(main)
    if fmt == "concise":
        extras = [k for k in attr if k not in ("type", main) and (sys_attrs or k not in SYSTEM)]
        if not extras:
            if kind == "GeoProperty":
                return attr[main]
            if kind == "Property" and not isinstance(attr.get(main), dict):
                return attr[main]
        out: dict[str, Any] = {}
        if kind not in ("Property", "GeoProperty", "Relationship", "LanguageProperty"):
            out["type"] = kind
        out[main] = attr.get(main)
    else:
        out = {"type": kind, main: attr.get(main)}
    for key, sub in attr.items():
        if key == "type" or key == main:
            continue
        if key in SYSTEM:
            if sys_attrs:
                out[key] = sub
        elif key in MEMBERS:
            out[key] = sub
        else:
            out[ctx.compact(key)] = render_attribute(sub, ctx, fmt, sys_attrs, lang)
    return out


def _in_language(attr: dict[str, Any], ctx: Context, fmt: Format, sys_attrs: bool, lang: str) -> Any:
    """A LanguageProperty with `lang`: a Property holding the chosen text, with its `lang`."""
    tag, text = languages.pick(attr["languageMap"], lang)
    if fmt == "keyValues":
        return text
    as_property = {k: v for k, v in attr.items() if k not in ("type", "languageMap")}
    as_property.update({"type": "Property", "value": text})
    if tag is not None:
        as_property["lang"] = tag
    return render_attribute(as_property, ctx, fmt, sys_attrs, None)


def render_feature(doc: dict[str, Any], ctx: Context, fmt: Format, geoproperty: str, *,
                   sys_attrs: bool = False, attrs: Collection[str] | None = None) -> dict[str, Any]:
    """An entity as a GeoJSON Feature (Accept: application/geo+json)."""
    entity = render_entity(doc, ctx, fmt, sys_attrs=sys_attrs, attrs=attrs)
    geo = first(doc.get(geoproperty))
    geometry = geo.get("value") if isinstance(geo, dict) and geo.get("type") == "GeoProperty" else None
    properties = {k: v for k, v in entity.items() if k != "id"}
    return {"id": doc["id"], "type": "Feature", "geometry": geometry, "properties": properties}
