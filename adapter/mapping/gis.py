"""GIS layers (ArcGIS, WFS, OGC API, GeoJSON) -> any Smart Data Model, driven by one table per layer.

A layer's :class:`~adapter.config.LayerMapping` names the model, the id field, the name fields, an
attribute table (target attribute <- source field, through a transform) and constants. This module
turns it into a :class:`~adapter.mapping.base.FeedMapper`:

* id: ``urn:ngsi-ld:<Type>:<id_prefix or layer name>:<id>``; ``:`` in the prefix separates its
  parts. Esri GUIDs (``{6B1D...}``) lose their braces and are lower-cased: the braces are notation
  and GUIDs are case-insensitive, so the id survives a server that formats them differently.
* geometry: :func:`adapter.geometry.normalize_geometry` from the record's ``crs``; the source CRS
  is kept in ``Mapped.source_crs``.
* id field ``id`` names the feature's own id (GeoJSON ``Feature.id``, the ArcGIS object id) when
  the properties have no ``id`` of their own.
* ``name`` from ``name_field``; with ``name_en_field`` also ``multilingualName`` {bg, en}.
* attributes: a target is a model field (snake_case) or its wire name (camelCase); ``a.b`` fills
  the key ``b`` of the compound ``a`` (e.g. ``address.district``). Constants use the same names.
* a value its transform cannot read is left out, with the reason in ``Mapped.notes``; a missing
  id, a bad geometry or an entity the model refuses (a required value missing, a value outside
  the model's enum) rejects the record with the reason.

The table is checked when the mapper is built: an unknown model or target is a ConfigError.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapter.config import AttributeRule, LayerMapping
from adapter.errors import ConfigError, MappingError
from adapter.geometry import normalize_geometry
from adapter.mapping import parse
from adapter.mapping.base import Attr, Builder, FeedMapper, Mapped, read
from adapter.mapping.localtime import LocalTimeError, to_utc
from adapter.ngsi.ids import id_maker
from adapter.sources.base import RawRecord
from data_models import Entity, model_for

MAX_ID = 128
_GUID = re.compile(r"^\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIME_TEXT = 40


# --- transforms (the names AttributeRule.transform allows) ----------------------------------------

def text(value: Any) -> str | None:
    """Text from a string or a number (GIS code fields are often numeric); None when blank."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    return parse.text(value) or None


_TRUE = frozenset({"1", "y", "yes", "true", "t", "да", "д"})
_FALSE = frozenset({"0", "n", "no", "false", "f", "не", "н"})


def boolean(value: Any) -> bool:
    """True/False from a JSON boolean, 1/0, or Y/N, yes/no, да/не, true/false (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        folded = value.strip().casefold()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return False
    raise ValueError(f"{parse.show(value)} is not a yes/no value")


def timestamp(value: Any) -> datetime:
    """An aware UTC time from ISO 8601 text or a datetime; without a zone it is Europe/Sofia time."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= _MAX_TIME_TEXT:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{parse.show(value)} is not an ISO 8601 time") from None
    else:
        raise ValueError(f"expected an ISO 8601 time, got {type(value).__name__} {parse.show(value)}")
    if moment.tzinfo is None:
        try:
            return to_utc(moment)
        except LocalTimeError as exc:
            raise ValueError(str(exc)) from None
    return moment.astimezone(UTC)


def epoch_ms(value: Any) -> datetime:
    """An Esri date: milliseconds since 1970 UTC (a number or numeric text), or a datetime already."""
    if isinstance(value, datetime):  # ArcGISSource converts the layer's date fields itself
        return timestamp(value)
    millis = parse.number(value)
    try:
        return _EPOCH + timedelta(milliseconds=millis)
    except OverflowError:
        raise ValueError(f"{parse.show(value)} milliseconds is outside the datetime range") from None


def _guarded(transform: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``transform`` with every failure as ValueError (huge numbers overflow float and datetime)."""
    def guarded(value: Any) -> Any:
        try:
            return transform(value)
        except (OverflowError, TypeError) as exc:
            raise ValueError(f"{parse.show(value)}: {exc}") from None
    guarded.__doc__ = transform.__doc__
    return guarded


TRANSFORMS: Mapping[str, Callable[[Any], Any]] = {name: _guarded(fn) for name, fn in {
    "text": text, "number": parse.number, "integer": parse.integer, "boolean": boolean,
    "datetime": timestamp, "epoch_ms": epoch_ms, "url": parse.url,
}.items()}


# --- the table from the config ---------------------------------------------------------------------

def _field_name(model: type[Entity], target: str, *, source: str) -> str:
    """The model field a configured target names (field name or wire name, ``a.b`` for compounds)."""
    head, dot, rest = target.partition(".")
    if head in model.model_fields and head not in ("id", "attr_meta"):
        name = head
    elif head in model.attributes_by_wire:
        name = model.attributes_by_wire[head].field
    else:
        raise ConfigError(f"{model.entity_type} has no attribute {head!r} (mapping target "
                          f"{target!r})", source=source)
    if dot and not rest:
        raise ConfigError(f"mapping target {target!r} ends with a dot", source=source)
    return name + dot + rest


def attribute_table(model: type[Entity], attributes: Mapping[str, AttributeRule | str], *,
                    source: str) -> tuple[Attr, ...]:
    """The config's attribute table as :class:`Attr` rows (targets checked against the model)."""
    rows = []
    for target, rule in attributes.items():
        rule = AttributeRule(source=rule) if isinstance(rule, str) else rule
        transform = TRANSFORMS[rule.transform]
        if rule.values is not None:
            transform = _looked_up(transform, rule.values)
        rows.append(Attr(_field_name(model, target, source=source), rule.source, transform))
    return tuple(rows)


def _looked_up(transform: Callable[[Any], Any], values: Mapping[str, Any]) -> Callable[[Any], Any]:
    """``transform`` followed by a code-list lookup (unknown codes fail like unreadable values)."""
    def lookup(value: Any) -> Any:
        parsed = transform(value)
        key = str(parsed).lower() if isinstance(parsed, bool) else str(parsed)
        if key not in values:
            raise ValueError(f"{parse.show(parsed)} is not in the value map ({', '.join(values)})")
        return values[key]
    return lookup


def _nest(values: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"address.district": x}`` -> ``{"address": {"district": x}}``, over a copy of ``base``
    (whose nested objects are copied only where a value goes into them)."""
    out: dict[str, Any] = dict(base) if base else {}
    for key, value in values.items():
        if "." not in key:
            out[key] = value
            continue
        *parents, leaf = key.split(".")
        node = out
        for parent in parents:
            child = node.get(parent)
            # A copy: constants are shared by every record of the layer.
            child = node[parent] = dict(child) if isinstance(child, Mapping) else {}
            node = child
        node[leaf] = value
    return out


def feature_key(value: Any, field: str) -> str:
    """The feature's own id from ``field``: text or a whole number, trimmed, bounded; GUIDs normalised."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"no id in {field} (got {parse.show(value)})")
    value = value.strip()
    if len(value) > MAX_ID:
        raise MappingError(f"id {parse.show(value)} in {field} is longer than {MAX_ID} characters")
    guid = _GUID.match(value)
    return guid.group(1).lower() if guid else value


def layer_mapper(source_name: str, mapping: LayerMapping) -> FeedMapper:
    """The mapper of one configured layer: ``mapper(record) -> Mapped | Rejected``."""
    try:
        model = model_for(mapping.model)
    except KeyError:
        raise ConfigError(f"unknown Smart Data Models type {mapping.model!r}",
                          source=source_name) from None
    if "location" not in model.model_fields:
        raise ConfigError(f"{model.entity_type} has no location for a GIS layer", source=source_name)
    table = attribute_table(model, mapping.attributes, source=source_name)
    constants = {_field_name(model, k, source=source_name): v for k, v in mapping.constants.items()}
    prefix = [p for p in (mapping.id_prefix or source_name).split(":") if p]
    if not prefix:
        raise ConfigError(f"empty id_prefix {mapping.id_prefix!r}", source=source_name)
    try:
        make_id = id_maker(model.entity_type, *prefix)
    except ValueError as exc:
        raise ConfigError(f"id prefix: {exc}", source=source_name) from None
    # Constants nested once and validated once (Builder); each record adds its own values.
    nested_constants = _nest(constants)
    builder = Builder(model, nested_constants)

    def map_feature(record: RawRecord) -> Mapped:
        payload = record.payload
        props = payload.get("properties")
        if not isinstance(props, Mapping):
            raise MappingError(f"feature has no properties object (got {parse.show(props)})")
        key = feature_key(_id_value(payload, props, mapping.id_field), mapping.id_field)
        geometry = normalize_geometry(payload.get("geometry"), payload.get("crs"),
                                      source=record.source, record=record.key)
        names = _names(props, mapping)
        static = read(table, props, strict=False)
        values = _nest(static.values, nested_constants) if static.values else dict(nested_constants)
        if names:
            values["name"] = names.get("bg") or next(iter(names.values()))
            if len(set(names.values())) > 1:
                values["multilingual_name"] = names
        values["id"] = make_id(key)
        values["location"] = geometry.geometry
        entity = builder(values)
        return Mapped(entity, (), geometry.source_crs, (*geometry.fixes, *static.problems),
                      record.key)

    map_feature.__doc__ = f"One feature of {source_name} as a {model.entity_type}."
    rule = (f"urn:ngsi-ld:{model.entity_type}:{':'.join(prefix)}:<properties.{mapping.id_field}>")
    return FeedMapper(source_name, model, map_feature, rule)


def _id_value(payload: Mapping[str, Any], props: Mapping[str, Any], field: str) -> Any:
    """The id field's value; ``id`` without such a property is the feature's own id."""
    if field == "id" and "id" not in props:
        return payload.get("id")
    return props.get(field)


def _names(props: Mapping[str, Any], mapping: LayerMapping) -> dict[str, str]:
    """{bg, en} names from the configured fields (blank ones left out)."""
    found: dict[str, str] = {}
    for lang, field in (("bg", mapping.name_field), ("en", mapping.name_en_field)):
        if field is None or parse.is_blank(props.get(field)):
            continue
        try:
            value = text(props.get(field))
        except ValueError as exc:
            raise MappingError(f"{field}: {exc}") from None
        if value:
            found[lang] = value
    return found
