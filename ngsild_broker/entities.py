"""Incoming entities and attributes: validation (Orion-LD's error texts) and the stored form.

Stored form: `{"id", "type": [expanded IRIs], "createdAt", "modifiedAt", <attribute IRI>: attribute}`,
every attribute normalized (`{"type": "Property", "value": ...}`), with `createdAt`/`modifiedAt`,
sub-attributes keyed by IRI, and the NGSI-LD member names (`value`, `object`, `observedAt`,
`unitCode`, `datasetId`, ...) kept as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ngsild_broker import scope
from ngsild_broker.contexts import Context
from ngsild_broker.errors import bad_request
from ngsild_broker.instances import check_distinct, dataset_of, find, first, instances, is_null, pack, replace
from ngsild_broker.limits import MAX_NESTING, invisible_character, too_deep

ATTRIBUTE_TYPES = frozenset({"Property", "Relationship", "GeoProperty", "LanguageProperty",
                             "JsonProperty", "VocabProperty", "ListProperty", "ListRelationship"})
GEOMETRY_TYPES = frozenset({"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                            "MultiPolygon"})
# Members of an attribute that are NGSI-LD keywords, not sub-attributes.
MEMBERS = frozenset({"type", "value", "object", "observedAt", "unitCode", "datasetId", "createdAt",
                     "modifiedAt", "languageMap", "json", "vocab", "valueList", "objectList",
                     "objectType", "instanceId", "lang"})
SYSTEM = ("createdAt", "modifiedAt")
# Core-context aliases of JSON-LD keywords and NGSI-LD entity members: never a type or attribute name.
RESERVED_NAMES = frozenset({"id", "type", "@id", "@type", "@context", "scope", "createdAt",
                            "modifiedAt", "deletedAt"})
LOCATION = "https://uri.etsi.org/ngsi-ld/location"
_ENTITY_SKIP = frozenset({"id", "type", "@context", "createdAt", "modifiedAt", "scope"})
_INFERRED = (("value", "Property"), ("object", "Relationship"), ("languageMap", "LanguageProperty"),
             ("json", "JsonProperty"), ("vocab", "VocabProperty"), ("valueList", "ListProperty"),
             ("objectList", "ListRelationship"))
_MANDATORY = {"Property": "value", "GeoProperty": "value", "Relationship": "object",
              "LanguageProperty": "languageMap", "JsonProperty": "json", "VocabProperty": "vocab",
              "ListProperty": "valueList", "ListRelationship": "objectList"}
_BAD_NAME = re.compile(r"[\s<>\"'=;()\\\x00-\x1f\x7f]")
_BAD_URI = re.compile(r"[\s<>\"{}|\\^`\x00-\x1f\x7f]")
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
          "MultiPolygon": 3}
_NUMBER = (int, float)
# Members of an incoming attribute that are not kept (the broker sets its own).
_DROPPED = frozenset({"createdAt", "modifiedAt", "instanceId", "@context"})
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?$")

BBox = tuple[float, float, float, float]


def now_iso() -> str:
    """The current UTC time as NGSI-LD writes it (milliseconds, `Z`)."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def check_uri(value: Any, field: str) -> str:
    """An id that must be a URI, with Orion-LD's error titles."""
    if not isinstance(value, str) or not value:
        raise bad_request("Invalid URI", field)
    if ":" not in value:
        raise bad_request("Invalid URI - no colon found", field)
    if _BAD_URI.search(value):
        raise bad_request("Invalid URI - invalid character", field)
    invisible = None if value.isascii() else invisible_character(value)  # _BAD_URI covers ASCII
    if invisible is not None:
        raise bad_request("Invalid URI - invalid character", f"{field}: {invisible} is not allowed in an IRI")
    return value


def _is_uri(value: Any) -> bool:
    """`check_uri` would accept a single string (the fast path: no error text is built)."""
    return (type(value) is str and ":" in value and _BAD_URI.search(value) is None
            and (value.isascii() or invisible_character(value) is None))


@dataclass(slots=True)
class EntityInput:
    """A validated incoming entity fragment: id, expanded types (None if absent), attributes."""

    id: str
    types: list[str] | None
    attrs: dict[str, Any]
    # (attribute IRI, datasetId) an NGSI-LD Null asks to delete (batch merge)
    deletions: list[tuple[str, str | None]] | None = None


def parse_entity(raw: Any, ctx: Context, *, need_type: bool = True) -> EntityInput:
    """Validate an entity payload and expand it with `ctx`."""
    if not isinstance(raw, dict):
        raise bad_request("Invalid Entity", "must be a JSON Object")
    if not raw:
        raise bad_request("Empty Entity", "the entity has no members")
    if "id" not in raw and "@id" not in raw:
        raise bad_request("Entity id is missing", "The 'id' field is mandatory")
    entity_id = check_uri(raw.get("id", raw.get("@id")), "id")
    types = parse_types(raw.get("type", raw.get("@type")), ctx, need_type)
    return EntityInput(entity_id, types, parse_attributes(raw, ctx))


def parse_types(raw: Any, ctx: Context, need_type: bool = True) -> list[str] | None:
    """Expanded entity types of a payload's `type` member."""
    if raw is None:
        if need_type:
            raise bad_request("Entity type is missing", "The 'type' field is mandatory")
        return None
    if type(raw) is str and raw in _GOOD_NAMES:  # the common case: one known-good type name
        return [ctx.expand(raw)]
    names = raw if isinstance(raw, list) else [raw]
    if not names or not all(isinstance(n, str) and n for n in names):
        raise bad_request("Invalid Entity Type", "the entity type must be a non-empty string or array of strings")
    for name in names:
        if _BAD_NAME.search(name):
            raise bad_request("Invalid Entity Type", f"invalid character in entity type: {name}")
        if name in RESERVED_NAMES:
            raise bad_request("Invalid Entity Type", f"reserved name: {name}")
        _remember(_GOOD_NAMES, name)
    return list(dict.fromkeys(ctx.expand(n) for n in names))


def parse_attributes(raw: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """The attributes of an entity or attribute payload, expanded and normalized (a multi-attribute
    is a list of instances; `scope`, if given, the list of scopes)."""
    attrs: dict[str, Any] = {}
    for name, value in raw.items():
        if name == scope.KEY:
            attrs[scope.KEY] = scope.parse_scope(value)
            continue
        if name in _ENTITY_SKIP:
            continue
        iri = expand_attr_name(name, ctx)
        attrs[iri] = parse_attribute(value, iri, ctx)
    return attrs


def split_nulls(data: dict[str, Any], ctx: Context
                 ) -> tuple[dict[str, Any], list[tuple[str, str | None]], list[tuple[str, str]]]:
    """A merge/update payload split into attributes to write, NGSI-LD Null (or JSON null) instances
    to delete, and ignored members (createdAt/modifiedAt)."""
    kept: dict[str, Any] = {}
    deletions: list[tuple[str, str | None]] = []
    skipped: list[tuple[str, str]] = []
    for name, value in data.items():
        if name in ("createdAt", "modifiedAt"):
            skipped.append((name, "built-in timestamps are ignored"))
        elif name in ("id", "type", "@context", "scope"):
            kept[name] = value  # scope: replaced by a merge, an NGSI-LD Null is not a scope
        elif is_null(value):
            deletions.append((expand_attr_name(name, ctx),
                              value.get("datasetId") if isinstance(value, dict) else None))
        elif isinstance(value, list) and any(isinstance(v, dict) and is_null(v) for v in value):
            iri = expand_attr_name(name, ctx)
            deletions += [(iri, v.get("datasetId")) for v in value if isinstance(v, dict) and is_null(v)]
            rest = [v for v in value if not (isinstance(v, dict) and is_null(v))]
            if rest:
                kept[name] = rest
        else:
            kept[name] = value
    return kept, deletions, skipped


# Names (types and attributes) and observedAt times that passed the checks: one set lookup instead
# of a regex per use (the readings of a batch share a few observedAt values).
_GOOD_NAMES: set[str] = set()
_GOOD_TIMES: set[str] = set()


def _remember(good: set[str], text: str) -> None:
    if len(good) < 100_000:
        good.add(text)


def check_attr_name(name: str) -> str:
    """An attribute name Orion-LD accepts (also in `attrs=`, where it reaches SQL as a parameter)."""
    if name not in _GOOD_NAMES:
        if not name or _BAD_NAME.search(name) or name.startswith("@"):
            raise bad_request("Invalid attribute name", f"invalid character in {name!r}")
        _remember(_GOOD_NAMES, name)
    return name


def expand_attr_name(name: str, ctx: Context) -> str:
    """Expanded attribute name, rejecting names Orion-LD rejects."""
    return ctx.expand(check_attr_name(name))


def _kind(member: dict[str, Any]) -> str | None:
    """The `type` member when it is a string (a list or object there is not hashable: no set lookup)."""
    kind = member.get("type")
    return kind if type(kind) is str else None


def _too_deep(iri: str) -> Exception:
    return bad_request("Invalid attribute value", f"{iri}: nested deeper than {MAX_NESTING} levels")


def parse_attribute(value: Any, iri: str, ctx: Context, depth: int = 0) -> dict[str, Any]:
    """One attribute in normalized form (normalized, concise and simplified inputs are accepted).

    `depth` is the sub-attribute level; values and sub-attributes together nest at most MAX_NESTING.
    """
    if depth >= MAX_NESTING:
        raise _too_deep(iri)
    if value is None:
        raise bad_request("The use of NULL value is not recommended for JSON-LD "
                          "(the whole attribute gets ignored)", iri)
    if not isinstance(value, dict):
        if isinstance(value, list) and any(_is_instance(v) for v in value):
            return _parse_instances(value, iri, ctx, depth)
        if type(value) is list and too_deep(value, MAX_NESTING - depth):
            raise _too_deep(iri)
        return {"type": "Property", "value": value}
    kind = value.get("type")
    if kind is not None and type(kind) is not str:
        raise bad_request("Invalid value for attribute /type/", f"{iri}: the type must be a string")
    if kind in GEOMETRY_TYPES and "value" not in value:
        check_geometry(value)
        return {"type": "GeoProperty", "value": value}
    if kind is None:
        kind = next((k for member, k in _INFERRED if member in value), None)
        if kind is None:
            if too_deep(value, MAX_NESTING - depth):
                raise _too_deep(iri)
            return {"type": "Property", "value": value}
    elif kind not in ATTRIBUTE_TYPES:
        raise bad_request("Invalid value for attribute /type/", f"{iri}: {kind}")
    if kind == "Property" and "object" in value:
        raise bad_request("Forbidden field for a Property: object", iri)
    if kind == "Relationship" and "value" in value:
        raise bad_request("Forbidden field for a Relationship: value", iri)
    mandatory = _MANDATORY[kind]
    if mandatory not in value:
        raise bad_request(f"Invalid {kind}", f"{iri}: mandatory field '{mandatory}' is missing")
    main = value[mandatory]
    if main is None:
        raise bad_request("The use of NULL value is not recommended for JSON-LD "
                          "(the whole attribute gets ignored)", iri)
    if kind == "Property" and isinstance(main, dict) and _kind(main) in GEOMETRY_TYPES \
            and iri == LOCATION:
        kind = "GeoProperty"
    if kind == "GeoProperty":
        check_geometry(main)
    elif kind == "Relationship" and not _is_uri(main):  # formats the error text only on failure
        for target in main if isinstance(main, list) else [main]:
            check_uri(target, f"{iri}: object")
    elif (type(main) is dict or type(main) is list) and too_deep(main, MAX_NESTING - depth):
        raise _too_deep(iri)
    out: dict[str, Any] = {"type": kind, mandatory: main}
    for member, sub in value.items():
        if member == "type" or member == mandatory or member in _DROPPED:
            continue
        if member == "observedAt":
            if type(sub) is not str or sub not in _GOOD_TIMES:
                if not isinstance(sub, str) or not _DATETIME.match(sub):
                    raise bad_request("Invalid DateTime", f"{iri}: observedAt must be an ISO8601 string")
                _remember(_GOOD_TIMES, sub)
            out[member] = sub
        elif member == "unitCode":
            if not isinstance(sub, str):
                raise bad_request("Invalid unitCode", f"{iri}: unitCode must be a string")
            out[member] = sub
        elif member == "datasetId":
            out[member] = check_uri(sub, f"{iri}: datasetId")
        elif member in MEMBERS:
            if (type(sub) is dict or type(sub) is list) and too_deep(sub, MAX_NESTING - depth):
                raise _too_deep(iri)
            out[member] = sub
        else:
            sub_iri = expand_attr_name(member, ctx)
            out[sub_iri] = parse_attribute(sub, sub_iri, ctx, depth + 1)
    return out


def _is_instance(value: Any) -> bool:
    return isinstance(value, dict) and ("datasetId" in value or _kind(value) in ATTRIBUTE_TYPES)


def _parse_instances(value: list[Any], iri: str, ctx: Context, depth: int) -> Any:
    """A multi-attribute: every item an attribute object, datasetIds distinct."""
    items = []
    for item in value:
        if not isinstance(item, dict):
            raise bad_request("Invalid multi-attribute", f"{iri}: every instance must be a JSON object")
        items.append(parse_attribute(item, iri, ctx, depth))
    check_distinct(items, iri)
    return pack(items)


def parse_fragment(value: Any, iri: str, ctx: Context) -> dict[str, Any]:
    """A partial attribute update: a full attribute, or only some members and sub-attributes
    (no type and no value/object/...: the stored attribute keeps its own)."""
    if not isinstance(value, dict) or "type" in value or any(m in value for m in _MANDATORY.values()):
        return parse_attribute(value, iri, ctx)
    out: dict[str, Any] = {}
    for member, sub in value.items():
        if member in ("@context", "createdAt", "modifiedAt", "instanceId"):
            continue
        if member in MEMBERS:
            out[member] = sub
        else:
            sub_iri = expand_attr_name(member, ctx)
            out[sub_iri] = parse_attribute(sub, sub_iri, ctx)
    return out


def check_geometry(geometry: Any) -> None:
    """Validate a GeoProperty value as Orion-LD does (its box is computed once, by `location_bbox`)."""
    if not isinstance(geometry, dict):
        raise bad_request("Invalid GeoJSON", "the value of a GeoProperty must be a JSON object")
    for member in geometry:
        if member not in ("type", "coordinates"):
            raise bad_request("Unexpected Field in value of GeoProperty", member)
    kind = _kind(geometry)
    if kind not in GEOMETRY_TYPES:
        raise bad_request("Invalid GeoJSON", f"invalid geometry type: {kind}")
    if "coordinates" not in geometry:
        raise bad_request("Invalid GeoJSON", "coordinates missing")
    _check_coords(geometry["coordinates"], _DEPTH[kind], kind)


def _is_position(coords: Any) -> bool:
    # `type() in` rather than isinstance: booleans are not coordinates.
    return (type(coords) is list and 2 <= len(coords) <= 3 and type(coords[0]) in _NUMBER
            and type(coords[1]) in _NUMBER and (len(coords) == 2 or type(coords[2]) in _NUMBER)
            and -180 <= coords[0] <= 180 and -90 <= coords[1] <= 90)


_POSITION = "a position is an array of 2 or 3 numbers, longitude in [-180, 180], latitude in [-90, 90]"


def _check_coords(coords: Any, depth: int, kind: str) -> None:
    if depth == 0:
        if not _is_position(coords):
            raise bad_request("Invalid GeoJSON", f"{kind}: {_POSITION}")
        return
    if not isinstance(coords, list) or not coords:
        raise bad_request("Invalid GeoJSON", f"{kind}: coordinates must be a non-empty array")
    minimum = 2 if (kind == "LineString" and depth == 1) or (kind == "MultiLineString" and depth == 1) \
        else 4 if kind in ("Polygon", "MultiPolygon") and depth == 1 else 1
    if len(coords) < minimum:
        raise bad_request("Invalid GeoJSON", f"{kind}: too few positions")
    if depth == 1:
        # The hot loop (every ring and line): 2-number positions checked inline, no call per position.
        for position in coords:
            if (type(position) is not list or len(position) != 2 or type(position[0]) not in _NUMBER
                    or type(position[1]) not in _NUMBER or not -180 <= position[0] <= 180
                    or not -90 <= position[1] <= 90) and not _is_position(position):
                raise bad_request("Invalid GeoJSON", f"{kind}: {_POSITION}")
        return
    for item in coords:
        _check_coords(item, depth - 1, kind)


def location_bbox(doc: dict[str, Any]) -> BBox | None:
    """The indexed box of an entity: the bounding box of its (already validated) `location`."""
    attr = doc.get(LOCATION)
    if type(attr) is not dict:  # a multi-attribute (a single instance is the common case)
        attr = first(attr)
    if not attr or attr.get("type") != "GeoProperty":
        return None
    geometry = attr["value"]
    coords = geometry["coordinates"]
    if geometry["type"] == "Point":
        return coords[0], coords[1], coords[0], coords[1]
    xs: list[float] = []
    ys: list[float] = []
    _flatten(coords, _DEPTH[geometry["type"]], xs, ys)
    return min(xs), min(ys), max(xs), max(ys)


def _flatten(coords: Any, depth: int, xs: list[float], ys: list[float]) -> None:
    if depth == 1:
        xs.extend(p[0] for p in coords)
        ys.extend(p[1] for p in coords)
    else:
        for item in coords:
            _flatten(item, depth - 1, xs, ys)


# -- building stored documents -----------------------------------------------------------------
def stamp(attr: Any, now: str, created: str | None = None) -> Any:
    """Set an attribute's system timestamps (and its sub-attributes'), in place; returns it.

    Attributes come fresh from `parse_attribute`, so writing into them is safe and saves a copy
    per attribute on the batch-upsert path. A multi-attribute has every instance stamped.
    """
    if isinstance(attr, list):
        for item in attr:
            stamp(item, now, created)
        return attr
    if not attr.keys() <= MEMBERS:  # sub-attributes (most attributes have none: one C-level test)
        for key, sub in attr.items():
            if key not in MEMBERS and type(sub) is dict:
                stamp(sub, now)
    attr["createdAt"] = created or now
    attr["modifiedAt"] = now
    return attr


def new_document(entity: EntityInput, now: str, created: str | None = None) -> dict[str, Any]:
    """The stored form of a created (or replaced, keeping `created`) entity."""
    assert entity.types is not None
    doc: dict[str, Any] = {"id": entity.id, "type": entity.types, "createdAt": created or now,
                           "modifiedAt": now}
    for iri, attr in entity.attrs.items():
        doc[iri] = attr if iri == scope.KEY else stamp(attr, now)
    return doc


def merge_attributes(doc: dict[str, Any], attrs: dict[str, Any], now: str, *,
                     overwrite: bool = True, only_existing: bool = False
                     ) -> tuple[dict[str, Any], list[str], list[tuple[str, str]]]:
    """`doc` with `attrs` appended/overwritten instance by instance (matched by datasetId); returns
    (new doc, updated IRIs, (IRI, reason) skipped)."""
    out = dict(doc)
    updated: list[str] = []
    skipped: list[tuple[str, str]] = []
    for iri, attr in attrs.items():
        old = doc.get(iri)
        if iri == scope.KEY:
            if old is None and only_existing:
                skipped.append((iri, "the entity has no scope"))
            else:
                out[iri] = scope.merged(old, attr, overwrite)
                updated.append(iri)
            continue
        value = old
        for item in instances(attr):
            prior = find(old, dataset_of(item))
            if prior is None and only_existing:
                skipped.append((iri, f"attribute doesn't exist: {iri}" + _dataset_text(item)))
                continue
            if prior is not None and not overwrite:
                skipped.append((iri, "attribute already exists: overwrite is not allowed"))
                continue
            value = replace(value, stamp(item, now, prior.get("createdAt") if prior else None))
        if value is not old:
            out[iri] = value
            updated.append(iri)
    if updated:
        out["modifiedAt"] = now
    return out, updated, skipped


def _dataset_text(item: dict[str, Any]) -> str:
    ident = dataset_of(item)
    return f" (datasetId {ident})" if ident else ""
