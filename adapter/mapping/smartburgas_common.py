"""What every Smart Burgas mapper shares: properties, positions, names, ids and time series.

* Positions: ``[lng, lat]`` numbers or numeric strings, checked by :mod:`adapter.geometry` against
  the Burgas area; a swapped ``[lat, lng]`` pair is fixed (unambiguous there), anything else outside
  is rejected with the reason.
* Names: whitespace cleaned, typographic quotes kept; ``name`` is the Bulgarian one and
  ``multilingualName`` holds ``{"bg", "en"}`` when the English payload says something else.
* Ids: ``urn:ngsi-ld:<Type>:smartburgas:<key>``; the key is the feed's own id where it has one,
  else :func:`adapter.ngsi.ids.name_key` of the Bulgarian name and the position (4 decimals, ~10 m),
  so that it does not change with the language or with typographic details of the name.
* Series: ``data[]`` rows with a local ``time``; see :func:`readings`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

from adapter.errors import GeometryError, MappingError
from adapter.geometry import WGS84, BBox, NormalizedGeometry, normalize_geometry
from adapter.mapping import parse
from adapter.mapping.localtime import LocalTimeError, localize_series, parse_local
from adapter.ngsi.ids import entity_id, name_key
from adapter.sources.base import RawRecord

SOURCE_KEY = "smartburgas"
PRIMARY_LANG = "bg"
OTHER_LANGS = ("en",)
# Burgas municipality with a margin (the districts reach lat ~42.7); Smart Burgas has no points
# elsewhere, so a position outside is a data error, not a place.
BURGAS_AREA = BBox(27.0, 42.2, 28.0, 42.9)
MAX_READINGS = 20_000
MAX_ID = 64


def properties(feature: Any) -> Mapping[str, Any]:
    """The feature's ``properties`` object."""
    if not isinstance(feature, Mapping):
        raise MappingError(f"feature is {type(feature).__name__}, not an object")
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise MappingError(f"feature has no properties object (got {parse.show(props)})")
    return props


def translated_properties(record: RawRecord, lang: str) -> Mapping[str, Any] | None:
    """The record's properties in ``lang``, or None when that language is missing or broken."""
    feature = record.in_lang(lang)
    props = feature.get("properties") if isinstance(feature, Mapping) else None
    return props if isinstance(props, Mapping) else None


def point(geometry: Any) -> NormalizedGeometry:
    """A GeoJSON Point (numbers or numeric strings) as a checked WGS84 point in the Burgas area."""
    if not isinstance(geometry, Mapping) or not geometry:
        raise GeometryError(f"no geometry (got {parse.show(geometry)})")
    if geometry.get("type") != "Point":
        raise GeometryError(f"expected a Point geometry, got type {parse.show(geometry.get('type'))}")
    coords = geometry.get("coordinates")
    if not isinstance(coords, Sequence) or isinstance(coords, str) or len(coords) < 2:
        raise GeometryError(f"a Point needs [lng, lat], got {parse.show(coords)}")
    try:
        lng, lat = parse.number(coords[0]), parse.number(coords[1])
    except ValueError as exc:
        raise GeometryError(f"coordinates: {exc}") from None
    return normalize_geometry({"type": "Point", "coordinates": [lng, lat]}, WGS84, bbox=BURGAS_AREA)


def area(geometry: Any) -> NormalizedGeometry:
    """A Polygon/MultiPolygon in WGS84, checked against the Burgas area and repaired if invalid."""
    if not isinstance(geometry, Mapping) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise GeometryError(f"expected a Polygon or MultiPolygon, got {parse.show(geometry)}")
    return normalize_geometry(geometry, WGS84, bbox=BURGAS_AREA)


@dataclass(frozen=True, slots=True)
class Names:
    """A record's name in both languages."""

    name: str | None
    multilingual: dict[str, str] | None
    primary: str | None  # the Bulgarian name (None when the record came only in another language)


def names(record: RawRecord, key: str, *, extra: Mapping[str, Any] | None = None) -> Names:
    """``name`` = Bulgarian name, ``multilingual`` = {bg, en[, ...]} when the texts differ.

    ``extra`` adds names in further languages from the primary payload (lang -> property key).
    """
    found: dict[str, str] = {}
    for lang in (PRIMARY_LANG, *OTHER_LANGS):
        props = translated_properties(record, lang)
        if props is None or parse.is_blank(props.get(key)):
            continue
        try:
            value = parse.name(props.get(key))
        except ValueError as exc:
            raise MappingError(f"{key} ({lang}): {exc}") from None
        if value is not None:
            found[lang] = value
    if extra:
        props = translated_properties(record, PRIMARY_LANG) or {}
        for lang, extra_key in extra.items():
            value = props.get(extra_key)
            if not parse.is_blank(value):
                try:
                    cleaned = parse.name(value)
                except ValueError as exc:
                    raise MappingError(f"{extra_key}: {exc}") from None
                if cleaned is not None:
                    found.setdefault(lang, cleaned)
    primary = found.get(PRIMARY_LANG)
    name = primary or next(iter(found.values()), None)
    multilingual = found if len(set(found.values())) > 1 else None
    return Names(name, multilingual, primary)


def feed_key(props: Mapping[str, Any], key: str) -> str:
    """The feed's own id (``"12"``): required, trimmed, bounded."""
    value = props.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise MappingError(f"missing {key} (got {parse.show(value)})")
    value = value.strip()
    if len(value) > MAX_ID:
        raise MappingError(f"{key} {parse.show(value)} is longer than {MAX_ID} characters")
    return value


def smartburgas_id(entity_type: str, *key: str) -> str:
    """``urn:ngsi-ld:<entity_type>:smartburgas:<key...>``."""
    try:
        return entity_id(entity_type, SOURCE_KEY, *key)
    except ValueError as exc:
        raise MappingError(f"cannot build an id: {exc}") from None


def position_key(names_: Names, location: Mapping[str, Any], *, record: RawRecord) -> str:
    """Key of an id-less feature: the Bulgarian name's slug and the position to 4 decimals."""
    if names_.primary is None and record.lang not in (None, PRIMARY_LANG):
        # An English-only record would key on its English name and fork the entity.
        raise MappingError(f"no Bulgarian name to key the id on (record only in {record.lang})")
    lng, lat = location["coordinates"][:2]
    return name_key(names_.primary or "", lng, lat)


@dataclass(slots=True)
class Series:
    """A time series read from ``data[]``: (UTC time, row) oldest first, and what was left out."""

    rows: list[tuple[datetime, Mapping[str, Any]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def newest(self) -> tuple[datetime, Mapping[str, Any]] | None:
        return self.rows[-1] if self.rows else None


def readings(props: Mapping[str, Any], *, time_key: str = "time", key: str = "data",
             unique: bool = True) -> Series:
    """The rows of ``data[]`` with their times in UTC, oldest first, whatever the feed's order.

    A row that is not an object, or whose time cannot be read or falls in the spring DST gap, is
    left out with its reason; the autumn repeated hour is resolved in series order (see
    :func:`adapter.mapping.localtime.localize_series`). ``unique``: rows with the same instant keep
    the last one; otherwise all are kept (several rows per time, in feed order).
    """
    data = props.get(key)
    if data is None:
        return Series()
    if not isinstance(data, list):
        raise MappingError(f"{key} is {type(data).__name__}, not an array")
    if len(data) > MAX_READINGS:
        raise MappingError(f"{key} has {len(data)} readings, more than {MAX_READINGS}")
    series = Series()
    naive: list[datetime | None] = []
    for index, row in enumerate(data):
        if type(row) is not dict and not isinstance(row, Mapping):  # (the ABC check is slow)
            series.problems.append(f"{key}[{index}]: reading is {type(row).__name__}, not an object")
            naive.append(None)
            continue
        try:
            naive.append(parse_local(row.get(time_key)))
        except LocalTimeError as exc:
            series.problems.append(f"{key}[{index}]: {exc}")
            naive.append(None)
    rows: list[tuple[datetime, Mapping[str, Any]]] = []
    for index, (local, utc) in enumerate(zip(naive, localize_series(naive), strict=True)):
        if local is None:
            continue
        if isinstance(utc, LocalTimeError):
            series.problems.append(f"{key}[{index}]: {utc}")
            continue
        rows.append((utc, data[index]))
    if unique:
        rows = list(dict(rows).items())
    series.rows = sorted(rows, key=itemgetter(0))  # stable: feed order within a time
    return series
