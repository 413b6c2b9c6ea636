"""Value types shared by every model: entity ids, UTC timestamps, GeoJSON geometries, language maps."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict

# RFC 3986 scheme ":" then no whitespace or characters URIs never carry unescaped.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s<>\"{}|\\^`]+$")


def check_uri(value: str) -> str:
    """Accept an absolute URI (NGSI-LD ids, relationship objects, datasetIds)."""
    if not _URI.match(value):
        raise ValueError(f"{value!r} is not an absolute URI")
    return value


def _to_utc(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else value.astimezone(UTC)


Uri = Annotated[str, Strict(), AfterValidator(check_uri)]
EntityId = Uri
# Naive timestamps are refused (AwareDatetime); aware ones are normalised to UTC so that the
# wire form is always ...Z and equal instants compare equal.
UtcDateTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
# JSON-safe numbers: finite floats (JSON has no NaN/Infinity) and integers that fit 64 bits (what
# orjson, Orion-LD and MongoDB store); a feed's "1e400" or "18e18" is refused, naming the field.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
NonNegative = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
Integer = Annotated[int, Strict(), Field(ge=INT64_MIN, le=INT64_MAX)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0, le=INT64_MAX)]
Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict()]
Ratio = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]

_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$|^@none$")


def _check_language_map(value: dict[str, str]) -> dict[str, str]:
    if not value:
        raise ValueError("a language map needs at least one language")
    for tag in value:
        if not _LANG.match(tag):
            raise ValueError(f"{tag!r} is not a BCP 47 language tag")
    return value


LanguageMap = Annotated[dict[str, Annotated[str, Strict()]], AfterValidator(_check_language_map)]


def _check_position(pos: list[float]) -> list[float]:
    if len(pos) not in (2, 3):
        raise ValueError(f"a position has 2 or 3 numbers, got {len(pos)}")
    lon, lat = pos[0], pos[1]
    if not -180.0 <= lon <= 180.0:
        raise ValueError(f"longitude {lon} is outside [-180, 180] (GeoJSON order is [lon, lat])")
    if not -90.0 <= lat <= 90.0:
        raise ValueError(f"latitude {lat} is outside [-90, 90] (GeoJSON order is [lon, lat])")
    return pos


Position = Annotated[list[Number], AfterValidator(_check_position)]


def _check_ring(ring: list[list[float]]) -> list[list[float]]:
    if len(ring) < 4:
        raise ValueError("a linear ring needs at least 4 positions")
    if ring[0] != ring[-1]:
        raise ValueError("a linear ring must be closed (first position == last position)")
    return ring


Ring = Annotated[list[Position], AfterValidator(_check_ring)]
Line = Annotated[list[Position], Field(min_length=2)]

_GEO = ConfigDict(extra="forbid", frozen=True)


class Point(BaseModel):
    """GeoJSON Point in WGS84 [lon, lat]."""

    model_config = _GEO
    type: Literal["Point"] = "Point"
    coordinates: Position


class MultiPoint(BaseModel):
    """GeoJSON MultiPoint in WGS84."""

    model_config = _GEO
    type: Literal["MultiPoint"] = "MultiPoint"
    coordinates: Annotated[list[Position], Field(min_length=1)]


class LineString(BaseModel):
    """GeoJSON LineString in WGS84."""

    model_config = _GEO
    type: Literal["LineString"] = "LineString"
    coordinates: Line


class MultiLineString(BaseModel):
    """GeoJSON MultiLineString in WGS84."""

    model_config = _GEO
    type: Literal["MultiLineString"] = "MultiLineString"
    coordinates: Annotated[list[Line], Field(min_length=1)]


class Polygon(BaseModel):
    """GeoJSON Polygon in WGS84 (outer ring first, then holes)."""

    model_config = _GEO
    type: Literal["Polygon"] = "Polygon"
    coordinates: Annotated[list[Ring], Field(min_length=1)]


class MultiPolygon(BaseModel):
    """GeoJSON MultiPolygon in WGS84."""

    model_config = _GEO
    type: Literal["MultiPolygon"] = "MultiPolygon"
    coordinates: Annotated[list[Annotated[list[Ring], Field(min_length=1)]], Field(min_length=1)]


# NGSI-LD GeoProperties take any GeoJSON geometry but GeometryCollection (Orion-LD rejects it).
Geometry = Annotated[
    Point | MultiPoint | LineString | MultiLineString | Polygon | MultiPolygon,
    Field(discriminator="type"),
]
