"""The one place where models become NGSI-LD and NGSI-LD becomes models.

Three forms (NGSI-LD v1.8, clause 4.5): normalized, concise and keyValues ("simplified"). The
plan for each model class is computed once from its field metadata; serialising an entity is
then a single pass over its fields, which keeps it fast enough to stream large layers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from data_models import AttrKind, AttrMeta, AttrSpec, Entity, model_for


class Form(StrEnum):
    """NGSI-LD representation forms."""

    NORMALIZED = "normalized"
    CONCISE = "concise"
    KEY_VALUES = "keyValues"


_PROPERTY, _GEO, _REL, _LANG = (AttrKind.PROPERTY, AttrKind.GEOPROPERTY,
                                AttrKind.RELATIONSHIP, AttrKind.LANGUAGEPROPERTY)
_SCALARS = (str, int, float, bool)
_GEOMETRY_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                             "MultiPolygon"})


# Formatted UTC times with a fraction of a second. isoformat(timespec=...) costs ~1-2 µs and the
# same instants recur in every entity of a fetch (one observation time per reading, shared by all
# stations), so the text is kept per instant. Only datetimes whose tzinfo *is* UTC are kept: aware
# datetimes compare (and hash) by instant, so a +02:00 datetime would otherwise find the text of
# its UTC twin.
_FORMATTED: dict[datetime, str] = {}
_MAX_FORMATTED = 4096


def format_datetime(value: datetime) -> str:
    """UTC ISO 8601 with a Z, as Orion-LD writes it (milliseconds only when present)."""
    if value.tzinfo is UTC:
        if not value.microsecond and type(value) is datetime:  # (orjson refuses subclasses)
            # Whole seconds (most source times): orjson writes exactly this text, as fast as the
            # cache below finds it and ~4x faster than isoformat (a GIS layer's dates all differ).
            return orjson.dumps(value, option=orjson.OPT_UTC_Z)[1:-1].decode()
        text = _FORMATTED.get(value)
        if text is None:
            if len(_FORMATTED) >= _MAX_FORMATTED:
                _FORMATTED.clear()  # bounded: a long run sees ever new instants
            text = _FORMATTED[value] = _format_datetime(value)
        return text
    return _format_datetime(value)


def _format_datetime(value: datetime) -> str:
    text = value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    return text[:-6] + "Z" if text.endswith("+00:00") else text


_is_geometry: dict[type, bool] = {}


def _geometry_class(cls: type[BaseModel]) -> bool:
    """GeoJSON geometry models (they have ``coordinates``); the answer is kept per class because
    ``model_fields`` is a comparatively slow class property."""
    known = _is_geometry.get(cls)
    if known is None:
        known = _is_geometry[cls] = "coordinates" in cls.model_fields
    return known


_sub_models: dict[type, tuple[tuple[str, str], ...] | None] = {}


def _sub_model_keys(cls: type[BaseModel]) -> tuple[tuple[str, str], ...] | None:
    """(field, wire name) of a compound value's model, kept per class; None for a model whose dump
    is more than its fields by alias (serializers, computed or extra fields, excluded fields)."""
    if cls in _sub_models:
        return _sub_models[cls]
    decorators = cls.__pydantic_decorators__
    plain = not (cls.__pydantic_root_model__ or decorators.field_serializers or decorators.model_serializers
                 or cls.model_computed_fields
                 or cls.model_config.get("extra") == "allow"
                 or any(info.exclude for info in cls.model_fields.values()))
    keys = tuple((name, info.serialization_alias or info.alias or name)
                 for name, info in cls.model_fields.items()) if plain else None
    _sub_models[cls] = keys
    return keys


def _plain(value: Any) -> Any:
    """A field value as JSON-ready data (datetimes as strings, sub-models as dicts)."""
    cls = type(value)
    if cls in _SCALARS:
        return value
    if cls is datetime:
        return format_datetime(value)
    if isinstance(value, BaseModel):
        if _geometry_class(cls):  # GeoJSON geometry: coordinates are plain JSON already
            geometry: Any = value  # one of several geometry models, all with these two fields
            return {"type": geometry.type, "coordinates": geometry.coordinates}
        keys = _sub_model_keys(cls)
        if keys is None:
            return {k: _plain(v) for k, v in value.model_dump(by_alias=True, exclude_none=True).items()}
        # What model_dump(by_alias=True, exclude_none=True) gives, read off the instance (~3x faster).
        fields = value.__dict__
        return {wire: v if type(v) in _SCALARS else _plain(v) for name, wire in keys
                if (v := fields[name]) is not None}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_K_PROP, _K_GEO, _K_REL, _K_LANG = 0, 1, 2, 3
_KIND_CODE = {_PROPERTY: _K_PROP, _GEO: _K_GEO, _REL: _K_REL, _LANG: _K_LANG}
# Normalized form: each kind's "type" and the key of its value.
_HEADS = {_K_PROP: ("Property", "value"), _K_GEO: ("GeoProperty", "value"),
          _K_REL: ("Relationship", "object"), _K_LANG: ("LanguageProperty", "languageMap")}
# (field, wire name, kind, unit, observed, normalized "type", normalized value key)
_Step = tuple[str, str, int, str | None, bool, str, str]
_plans: dict[type, tuple[tuple[_Step, ...], dict[str, tuple[int, _Step]]]] = {}
# Steps per (model, fields set): entities of one feed set the same few fields over and over, so
# choosing and ordering them is done once per combination. Bounded like _FORMATTED.
_chosen: dict[tuple[type, frozenset[str]], Iterable[_Step]] = {}
_MAX_CHOSEN = 1024


def _plan(model: type[Entity]) -> tuple[tuple[_Step, ...], dict[str, tuple[int, _Step]]]:
    """(field, wire name, kind, unit, observed, ...) per attribute, in model order, computed once."""
    plan = _plans.get(model)
    if plan is None:
        steps = tuple((s.field, s.wire, _KIND_CODE[s.ngsi.kind], s.ngsi.unit, s.ngsi.observed,
                       *_HEADS[_KIND_CODE[s.ngsi.kind]]) for s in model.attributes)
        plan = _plans[model] = (steps, {step[0]: (i, step) for i, step in enumerate(steps)})
    return plan


def _steps(entity: Entity) -> Iterable[_Step]:
    """The plan steps of the fields that were set: most of a model's ~40 fields are unset, and
    walking only the set ones (in model order, so output bytes are stable) halves the cost."""
    key = (type(entity), frozenset(entity.__pydantic_fields_set__))
    steps = _chosen.get(key)
    if steps is None:
        if len(_chosen) >= _MAX_CHOSEN:
            _chosen.clear()
        steps = _chosen[key] = _choose_steps(*key)
    return steps


def _choose_steps(model: type[Entity], fields_set: frozenset[str]) -> Iterable[_Step]:
    steps, by_field = _plan(model)
    chosen = [by_field[f] for f in fields_set if f in by_field]
    if len(chosen) * 3 > len(steps):
        return steps
    chosen.sort()
    return tuple(step for _, step in chosen)


def to_dict(entity: Entity, form: Form = Form.NORMALIZED, context: Any = None) -> dict[str, Any]:
    """An entity as an NGSI-LD dict in the given form, with ``@context`` when one is given.

    Written as one flat loop over a precomputed plan: this is the hot path of every sync.
    """
    values = entity.__dict__
    out: dict[str, Any] = {"id": values["id"], "type": entity.entity_type}
    obs_field = entity.observed_at_field
    obs = values[obs_field] if obs_field else None
    obs_text = format_datetime(obs) if obs is not None else None
    metas = values["attr_meta"]
    key_values = form is Form.KEY_VALUES
    normalized = form is Form.NORMALIZED
    for field, wire, kind, unit, observed, head, value_key in _steps(entity):
        value = values[field]
        if value is None:
            continue
        if value is obs:
            plain: Any = obs_text
        else:
            cls = type(value)
            plain = value if (cls is float or cls is str or cls is int or cls is bool) else _plain(value)
        if key_values:
            out[wire] = {"languageMap": plain} if kind == _K_LANG else plain
            continue
        meta = metas.get(field) if metas else None
        if meta is None and normalized:
            # The usual attribute (the model's unit, the entity's time) built in one literal:
            # the same keys, in the same order, as the general path below.
            observed_at = obs_text if observed else None
            if unit is not None and kind == _K_PROP:
                out[wire] = ({"type": head, "value": plain, "unitCode": unit, "observedAt": observed_at}
                             if observed_at is not None
                             else {"type": head, "value": plain, "unitCode": unit})
            elif observed_at is not None:
                out[wire] = {"type": head, value_key: plain, "observedAt": observed_at}
            else:
                out[wire] = {"type": head, value_key: plain}
            continue
        if meta is None:
            observed_at = obs_text if observed else None
            dataset_id = None
        else:
            unit = meta.unit_code or unit
            observed_at = (format_datetime(meta.observed_at) if meta.observed_at is not None
                           else obs_text if observed else None)
            dataset_id = meta.dataset_id
        if kind == _K_PROP:
            if normalized:
                body = {"type": "Property", "value": plain}
            elif unit is None and observed_at is None and dataset_id is None and type(plain) is not dict:
                out[wire] = plain
                continue
            else:
                body = {"value": plain}
        elif kind == _K_GEO:
            if normalized:
                body = {"type": "GeoProperty", "value": plain}
            elif observed_at is None and dataset_id is None:
                out[wire] = plain
                continue
            else:
                body = {"value": plain}
        elif kind == _K_REL:
            body = ({"type": "Relationship", "object": plain} if normalized else {"object": plain})
        else:
            body = ({"type": "LanguageProperty", "languageMap": plain} if normalized
                    else {"languageMap": plain})
        if unit is not None and kind == _K_PROP:
            body["unitCode"] = unit
        if observed_at is not None:
            body["observedAt"] = observed_at
        if dataset_id is not None:
            body["datasetId"] = dataset_id
        out[wire] = body
    if context is not None:
        out["@context"] = context
    return out


def to_normalized(entity: Entity, context: Any = None) -> dict[str, Any]:
    """The NGSI-LD normalized form."""
    return to_dict(entity, Form.NORMALIZED, context)


def to_concise(entity: Entity, context: Any = None) -> dict[str, Any]:
    """The NGSI-LD concise form."""
    return to_dict(entity, Form.CONCISE, context)


def to_key_values(entity: Entity, context: Any = None) -> dict[str, Any]:
    """The NGSI-LD keyValues (simplified) form."""
    return to_dict(entity, Form.KEY_VALUES, context)


def dumps(entity: Entity, form: Form = Form.NORMALIZED, context: Any = None) -> bytes:
    """An entity as NGSI-LD JSON bytes (compact, UTF-8, keys in model order)."""
    return orjson.dumps(to_dict(entity, form, context))


def dumps_many(entities: Iterable[Entity], form: Form = Form.NORMALIZED,
               context: Any = None) -> Iterator[bytes]:
    """Stream entities as JSON bytes, one at a time (never holds them all)."""
    for entity in entities:
        yield orjson.dumps(to_dict(entity, form, context))


# ---------------------------------------------------------------------------------------------
# Parsing: what comes back from a broker, in any of the three forms.

_SYSTEM = frozenset({"id", "type", "@context", "createdAt", "modifiedAt", "deletedAt", "scope"})
_ATTR_SYSTEM = frozenset({"createdAt", "modifiedAt", "type"})


def _parse_datetime(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _unwrap(spec: AttrSpec, raw: Any, form: Form | None) -> tuple[Any, dict[str, Any]]:
    """(value, metadata) of one attribute in any form."""
    kind = spec.ngsi.kind
    if not isinstance(raw, dict) or form is Form.KEY_VALUES:
        if kind is _LANG and isinstance(raw, dict) and "languageMap" in raw:
            return raw["languageMap"], {}
        return raw, {}
    meta = {k: raw[k] for k in ("observedAt", "unitCode", "datasetId") if k in raw}
    if kind is _REL:
        if "object" in raw:
            return raw["object"], meta
    elif kind is _LANG:
        if "languageMap" in raw:
            return raw["languageMap"], meta
        return raw, {}
    elif kind is _GEO:
        if "value" in raw:
            return raw["value"], meta
        return raw, {}  # bare GeoJSON (concise)
    elif "value" in raw:
        return raw["value"], meta
    if raw.get("type") in ("Property", "GeoProperty", "Relationship", "LanguageProperty"):
        raise ValueError(f"attribute {spec.wire!r} is a {raw['type']}, expected a {kind.value}")
    return raw, {}  # a compound value in concise form


def from_dict(data: dict[str, Any], model: type[Entity] | None = None,
              form: Form | None = None) -> Entity:
    """Parse an NGSI-LD entity (normalized, concise or keyValues) back into its model.

    Attribute names may be compact terms or expanded IRIs. Metadata equal to the model's defaults
    (the declared unit, the entity's observation time) is not stored per attribute, so that
    model -> any form -> model is lossless.
    """
    if not isinstance(data, dict):
        raise ValueError("an NGSI-LD entity must be a JSON object")
    entity_type = data.get("type")
    if isinstance(entity_type, list) and len(entity_type) == 1:
        entity_type = entity_type[0]
    if model is None:
        if not isinstance(entity_type, str):
            raise ValueError("entity has no 'type'")
        model = model_for(entity_type)
    elif entity_type not in (model.entity_type, model.type_iri):
        raise ValueError(f"entity type {entity_type!r} is not {model.entity_type}")
    by_iri = {s.iri: s for s in model.attributes}
    values: dict[str, Any] = {"id": data.get("id")}
    metas: dict[str, dict[str, Any]] = {}
    unknown = []
    for key, raw in data.items():
        if key in _SYSTEM:
            continue
        spec = model.attributes_by_wire.get(key) or by_iri.get(key)
        if spec is None:
            unknown.append(key)
            continue
        value, meta = _unwrap(spec, raw, form)
        values[spec.field] = value
        if meta:
            metas[spec.field] = meta
    if unknown:
        raise ValueError(f"{model.entity_type} has no attribute(s) {', '.join(sorted(unknown))}")
    obs_field = model.observed_at_field
    default_obs = values.get(obs_field) if obs_field else None
    default_obs = _parse_datetime(default_obs) if isinstance(default_obs, str) else default_obs
    attr_meta: dict[str, AttrMeta] = {}
    for field, meta in metas.items():
        spec = next(s for s in model.attributes if s.field == field)
        kept: dict[str, Any] = {}
        unit = meta.get("unitCode")
        if unit is not None and unit != spec.ngsi.unit:
            kept["unit_code"] = unit
        observed = meta.get("observedAt")
        if observed is not None:
            parsed = _parse_datetime(observed) if isinstance(observed, str) else observed
            if not (spec.ngsi.observed and parsed is not None and default_obs is not None
                    and parsed == default_obs):
                kept["observed_at"] = observed
        if "datasetId" in meta:
            kept["dataset_id"] = meta["datasetId"]
        if kept:
            attr_meta[field] = AttrMeta(**kept)
    if attr_meta:
        values["attr_meta"] = attr_meta
    return model.model_validate(values)


def from_normalized(data: dict[str, Any], model: type[Entity] | None = None) -> Entity:
    """Parse the normalized form."""
    return from_dict(data, model, Form.NORMALIZED)


def from_concise(data: dict[str, Any], model: type[Entity] | None = None) -> Entity:
    """Parse the concise form."""
    return from_dict(data, model, Form.CONCISE)


def from_key_values(data: dict[str, Any], model: type[Entity] | None = None) -> Entity:
    """Parse the keyValues (simplified) form."""
    return from_dict(data, model, Form.KEY_VALUES)


__all__ = ["Form", "ValidationError", "dumps", "dumps_many", "format_datetime", "from_concise",
           "from_dict", "from_key_values", "from_normalized", "to_concise", "to_dict",
           "to_key_values", "to_normalized"]
