"""Geometry normalisation: any source CRS and geometry encoding -> checked WGS84 GeoJSON [lon, lat].

Sources yield geometry exactly as delivered plus the CRS it is in; the mapper calls
:func:`normalize_geometry`, which

1. reads the CRS (EPSG code, ``EPSG:n``, OGC URN/URL, CRS84, Esri ``spatialReference``, GeoJSON
   ``crs`` member) into a :class:`SourceCRS` that also knows the coordinates' axis order;
2. reads GeoJSON or Esri JSON geometry (``x``/``y``, ``points``, ``paths``, ``rings``), bounding the
   vertex count and closing unclosed rings;
3. transforms to WGS84 with ``always_xy`` output (OASC MIM7: GeoJSON [lon, lat]);
4. checks every vertex lies in the expected area (Bulgaria by default); a geometry whose axes were
   swapped is fixed when the swap brings it inside and the original is outside, else rejected;
5. repairs invalid polygons with shapely ``make_valid`` (polygonal parts only) and orients rings
   by the RFC 7946 right-hand rule.

Everything that goes wrong raises :class:`adapter.errors.GeometryError` with the reason; pyproj and
shapely errors never leave this module. Transformer objects are cached per CRS pair (they are not
thread-safe; the adapter normalises on its event-loop thread).
"""

from __future__ import annotations

import logging
import math
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError, ProjError

from adapter.errors import GeometryError

if TYPE_CHECKING:
    from shapely.geometry import MultiPolygon, Polygon

# shapely (and numpy under it, ≈ 0.2 s of CPU) is imported by the functions that handle rings:
# most layers are points, which need neither.

logger = logging.getLogger(__name__)

WGS84 = 4326
DEFAULT_MAX_VERTICES = 100_000
# 7 decimals of a degree is ~1 cm: finer digits are projection noise and only bloat the payload.
COORD_DECIMALS = 7
GRID = 10.0 ** -COORD_DECIMALS

# Esri's own codes for Web Mercator, still sent as `wkid` by older servers.
_ESRI_ALIASES = {102100: 3857, 102113: 3857, 900913: 3857}

AxisOrder = Literal["xy", "authority"]


@dataclass(frozen=True, slots=True)
class BBox:
    """A lon/lat box in WGS84 degrees."""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    def contains(self, lon: float, lat: float) -> bool:
        """True when (lon, lat) lies inside the box (edges included)."""
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat

    def __str__(self) -> str:
        return f"lon {self.min_lon}..{self.max_lon}, lat {self.min_lat}..{self.max_lat}"


BULGARIA_BBOX = BBox(22.3, 41.2, 28.7, 44.3)


@dataclass(frozen=True, slots=True)
class SourceCRS:
    """A CRS as a source declared it, and the axis order its coordinates come in.

    ``xy`` means easting/longitude first whatever the CRS says (Esri JSON, GeoJSON, ``EPSG:n``);
    ``authority`` means the CRS's own axis order (WFS 2.0 / OGC API with an OGC URN or URL, where
    ``urn:ogc:def:crs:EPSG::4326`` is latitude first).
    """

    epsg: int
    axis_order: AxisOrder = "xy"

    @property
    def name(self) -> str:
        """``EPSG:<code>``: the form kept as metadata next to the WGS84 geometry."""
        return f"EPSG:{self.epsg}"

    @property
    def swaps_input(self) -> bool:
        """True when coordinates arrive northing/latitude first and must be swapped to x, y."""
        return self.axis_order == "authority" and _northing_first(self.epsg)

    def __str__(self) -> str:
        return self.name


CRS84 = SourceCRS(WGS84, "xy")

_EPSG_CODE = re.compile(r"^(?:EPSG:)?(\d{4,6})$", re.I)
_EPSG_URN = re.compile(r"^urn:(?:x-)?ogc:def:crs:EPSG:[\d.]*:(\d{4,6})$", re.I)
_EPSG_URL = re.compile(r"^https?://www\.opengis\.net/def/crs/EPSG/[^/]+/(\d{4,6})$", re.I)
_GML_SRS = re.compile(r"^https?://www\.opengis\.net/gml/srs/epsg\.xml#(\d{4,6})$", re.I)
_CRS84 = re.compile(r"^(?:(?:OGC:)?CRS84|urn:ogc:def:crs:OGC:[\d.]*:CRS84|"
                    r"https?://www\.opengis\.net/def/crs/OGC/[\d.]+/CRS84)$", re.I)


def parse_crs(value: Any, *, default: SourceCRS | None = None, source: str | None = None) -> SourceCRS:
    """Read a declared CRS (code, string, Esri spatialReference or GeoJSON crs member)."""
    if default is None and isinstance(value, (str, int, SourceCRS)):
        try:  # every record of a layer names the same CRS: check it once
            return _checked_crs(value)
        except GeometryError as exc:
            raise GeometryError(exc.reason, source=source) from None
    return _check(value, default, source)


@lru_cache(maxsize=256)
def _checked_crs(value: str | int | SourceCRS) -> SourceCRS:
    return _check(value, None, None)


def _check(value: Any, default: SourceCRS | None, source: str | None) -> SourceCRS:
    crs = _parse_crs(value, default)
    if crs is None:
        raise GeometryError(f"unknown CRS {_short(value)}", source=source)
    try:
        parsed = _crs(crs.epsg)
    except CRSError as exc:
        raise GeometryError(f"unknown CRS EPSG:{crs.epsg} ({exc})", source=source) from None
    if not (parsed.is_geographic or parsed.is_projected) or len(parsed.axis_info) < 2:
        raise GeometryError(f"CRS EPSG:{crs.epsg} ({parsed.name}) is not a 2D map CRS", source=source)
    return crs


def _parse_crs(value: Any, default: SourceCRS | None) -> SourceCRS | None:
    if value is None or value == "" or value == {}:
        return default
    if isinstance(value, SourceCRS):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return SourceCRS(_ESRI_ALIASES.get(value, value))
    if isinstance(value, str):
        text = value.strip()
        if _CRS84.match(text):
            return CRS84
        for pattern, order in ((_EPSG_CODE, "xy"), (_GML_SRS, "xy"), (_EPSG_URN, "authority"),
                               (_EPSG_URL, "authority")):
            if m := pattern.match(text):
                return SourceCRS(_ESRI_ALIASES.get(int(m.group(1)), int(m.group(1))), order)  # type: ignore[arg-type]
        return None
    if isinstance(value, Mapping):
        # Esri spatialReference: latestWkid is the current EPSG code when wkid is an Esri alias.
        for key in ("latestWkid", "wkid"):
            code = value.get(key)
            if isinstance(code, int) and not isinstance(code, bool):
                return SourceCRS(_ESRI_ALIASES.get(code, code))
        props = value.get("properties")
        if isinstance(props, Mapping):
            if value.get("type") == "name":
                return _parse_crs(props.get("name"), None)
            if str(value.get("type", "")).upper() == "EPSG":  # GeoJSON 2008 draft form
                return _parse_crs(props.get("code"), None)
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


@lru_cache(maxsize=64)
def _crs(epsg: int) -> CRS:
    return CRS.from_epsg(epsg)


@lru_cache(maxsize=64)
def _northing_first(epsg: int) -> bool:
    # (axis_info builds new objects on every call: asked once per record, it is kept per code)
    return _crs(epsg).axis_info[0].direction in {"north", "south"}


@lru_cache(maxsize=64)
def transformer(from_epsg: int, to_epsg: int) -> Transformer:
    """A cached transformer between two EPSG codes, x/y (east, north / lon, lat) on both sides."""
    return Transformer.from_crs(_crs(from_epsg), _crs(to_epsg), always_xy=True)


def from_wgs84(lon: float, lat: float, epsg: int) -> tuple[float, float]:
    """Project a WGS84 lon/lat to ``epsg`` in x/y (easting, northing) order."""
    x, y = transformer(WGS84, epsg).transform(lon, lat)
    return float(x), float(y)


@dataclass(frozen=True, slots=True)
class NormalizedGeometry:
    """A checked WGS84 GeoJSON geometry, the CRS it came in, and what was fixed on the way."""

    geometry: dict[str, Any]
    source_crs: str
    fixes: tuple[str, ...] = ()


# --- reading -------------------------------------------------------------------------------------

_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
          "MultiPolygon": 3}


class _Reader:
    """Reads nested coordinate arrays into (x, y) float pairs, counting vertices against a budget."""

    def __init__(self, max_vertices: int) -> None:
        self.max_vertices = max_vertices
        self.count = 0
        self.fixes: list[str] = []

    def position(self, value: Any) -> tuple[float, float]:
        if not isinstance(value, Sequence) or isinstance(value, str | bytes) or len(value) < 2:
            raise GeometryError(f"a position must be [x, y], got {_short(value)}")
        x, y = value[0], value[1]
        if not _is_number(x) or not _is_number(y):
            raise GeometryError(f"a position must hold two finite numbers, got {_short(value)}")
        self.count += 1
        if self.count > self.max_vertices:
            raise GeometryError(f"geometry has more than {self.max_vertices} vertices")
        return float(x), float(y)

    def array(self, value: Any, depth: int, what: str) -> Any:
        if depth == 0:
            return self.position(value)
        if not isinstance(value, Sequence) or isinstance(value, str | bytes):
            raise GeometryError(f"{what} must be an array, got {_short(value)}")
        return [self.array(item, depth - 1, what) for item in value]

    def ring(self, ring: list[tuple[float, float]], where: str) -> list[tuple[float, float]]:
        if len(ring) >= 3 and ring[0] != ring[-1]:
            ring = [*ring, ring[0]]
            self.fixes.append(f"closed unclosed ring ({where})")
        if len(ring) < 4:
            raise GeometryError(f"{where} has {len(ring)} positions, a ring needs at least 4")
        return ring


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_geojson(geometry: Any, reader: _Reader) -> tuple[str, Any]:
    """Validate a GeoJSON geometry object; returns its type and coordinates as (x, y) tuples."""
    if not isinstance(geometry, Mapping):
        raise GeometryError(f"geometry must be an object, got {_short(geometry)}")
    kind = geometry.get("type")
    if kind not in _DEPTH:
        raise GeometryError(f"unsupported geometry type {_short(kind)}")
    if "coordinates" not in geometry:
        raise GeometryError(f"{kind} has no coordinates")
    coords = reader.array(geometry["coordinates"], _DEPTH[kind], f"{kind} coordinates")
    if kind == "Polygon":
        coords = _polygon(coords, reader, "Polygon")
    elif kind == "MultiPolygon":
        coords = [_polygon(p, reader, f"MultiPolygon polygon {i}") for i, p in enumerate(coords)]
    elif kind in {"LineString", "MultiLineString"}:
        for i, line in enumerate([coords] if kind == "LineString" else coords):
            if len(line) < 2:
                raise GeometryError(f"{kind} line {i} has {len(line)} positions, needs at least 2")
    if kind.startswith("Multi") and not coords:
        raise GeometryError(f"{kind} is empty")
    return kind, coords


def _polygon(rings: list, reader: _Reader, where: str) -> list:
    if not rings:
        raise GeometryError(f"{where} has no rings")
    return [reader.ring(r, f"{where} ring {i}") for i, r in enumerate(rings)]


def esri_to_geojson(geometry: Any, *, max_vertices: int = DEFAULT_MAX_VERTICES) -> dict[str, Any]:
    """Convert an Esri JSON geometry to GeoJSON in the same CRS (rings sorted into shells/holes)."""
    kind, coords = _read_esri(geometry, _Reader(max_vertices))
    return {"type": kind, "coordinates": _as_lists(coords)}


def _read_esri(geometry: Any, reader: _Reader) -> tuple[str, Any]:
    if not isinstance(geometry, Mapping):
        raise GeometryError(f"geometry must be an object, got {_short(geometry)}")
    if "x" in geometry:
        if geometry.get("x") is None or geometry.get("x") == "NaN":
            raise GeometryError("empty Esri point")
        return "Point", reader.position([geometry.get("x"), geometry.get("y")])
    if "points" in geometry:
        points = reader.array(geometry["points"], 1, "Esri points")
        if not points:
            raise GeometryError("empty Esri multipoint")
        return "MultiPoint", points
    if "paths" in geometry:
        paths = reader.array(geometry["paths"], 2, "Esri paths")
        if not paths or any(len(p) < 2 for p in paths):
            raise GeometryError("Esri polyline with an empty or one-vertex path")
        return ("LineString", paths[0]) if len(paths) == 1 else ("MultiLineString", paths)
    if "rings" in geometry:
        rings = [reader.ring(r, f"Esri ring {i}")
                 for i, r in enumerate(reader.array(geometry["rings"], 2, "Esri rings"))]
        if not rings:
            raise GeometryError("empty Esri polygon")
        polygons = _esri_polygons(rings)
        return ("Polygon", polygons[0]) if len(polygons) == 1 else ("MultiPolygon", polygons)
    if "curveRings" in geometry or "curvePaths" in geometry:
        raise GeometryError("Esri curve geometries are not supported (query without returnTrueCurves)")
    raise GeometryError(f"not an Esri geometry: keys {sorted(map(str, geometry))[:8]}")


def _signed_area(ring: list[tuple[float, float]]) -> float:
    return sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False)) / 2.0


def _esri_polygons(rings: list[list[tuple[float, float]]]) -> list[list]:
    """Esri rings: clockwise = outer ring, counter-clockwise = hole of the outer ring holding it.

    Rings come out rewound to RFC 7946 (outer counter-clockwise, holes clockwise).
    """
    shells = [r[::-1] for r in rings if _signed_area(r) <= 0]
    holes = [r[::-1] for r in rings if _signed_area(r) > 0]
    if not shells:
        # Wrongly wound data (all counter-clockwise): treat every ring as its own polygon.
        return [[h[::-1]] for h in holes]
    polygons: list[list] = [[s] for s in shells]
    areas = [abs(_signed_area(s)) for s in shells]
    from shapely.geometry import Polygon

    shapes = [Polygon(s) for s in shells]
    for hole in holes:
        owners = [i for i, shape in enumerate(shapes) if _safe_covers(shape, hole)]
        if owners:
            polygons[min(owners, key=areas.__getitem__)].append(hole)
        else:
            polygons.append([hole])  # a hole outside every shell is an island drawn the wrong way
    return polygons


def _safe_covers(shape: Polygon, hole: list[tuple[float, float]]) -> bool:
    from shapely.errors import GEOSException
    from shapely.geometry import Point, Polygon

    try:
        probe = Polygon(hole).representative_point() if len(set(hole)) >= 3 else Point(hole[0])
        return bool(shape.covers(probe))
    except (GEOSException, ValueError):
        return False


def _as_lists(coords: Any) -> Any:
    if isinstance(coords, tuple):
        return [coords[0], coords[1]]
    return [_as_lists(c) for c in coords]


# --- transforming and checking -------------------------------------------------------------------

def _flatten(coords: Any, out_x: list[float], out_y: list[float]) -> None:
    if isinstance(coords, tuple):
        out_x.append(coords[0])
        out_y.append(coords[1])
    else:
        for c in coords:
            _flatten(c, out_x, out_y)


def _rebuild(coords: Any, points: Iterator[tuple[float, float]]) -> Any:
    if isinstance(coords, tuple):
        return next(points)
    return [_rebuild(c, points) for c in coords]


def _to_wgs84(xs: list[float], ys: list[float], epsg: int) -> tuple[list[float], list[float]]:
    if epsg == WGS84:
        return xs, ys
    try:
        lons, lats = transformer(epsg, WGS84).transform(xs, ys, errcheck=False)
    except ProjError as exc:
        raise GeometryError(f"cannot transform from EPSG:{epsg}: {exc}") from None
    return list(lons), list(lats)


def _outside(lons: list[float], lats: list[float], bbox: BBox) -> int:
    return sum(1 for lon, lat in zip(lons, lats, strict=True)
               if not (math.isfinite(lon) and math.isfinite(lat) and bbox.contains(lon, lat)))


def normalize_geometry(geometry: Any, crs: Any, *, bbox: BBox = BULGARIA_BBOX,
                       max_vertices: int = DEFAULT_MAX_VERTICES, source: str | None = None,
                       record: str | None = None) -> NormalizedGeometry:
    """Check, transform and repair a GeoJSON or Esri JSON geometry into WGS84 GeoJSON [lon, lat]."""
    try:
        source_crs = parse_crs(crs, source=source)
        point = _point(geometry, source_crs, bbox)
        if point is not None:
            return point
        return _normalize(geometry, source_crs, bbox, max_vertices)
    except GeometryError as exc:
        raise GeometryError(exc.reason, source=exc.source or source, record=record) from None
    except _foreign_errors() as exc:
        # Defensive: third-party errors never leave this module.
        raise GeometryError(f"invalid geometry: {type(exc).__name__}: {exc}", source=source,
                            record=record) from None


_FOREIGN_ERRORS: tuple[type[Exception], ...] = (ProjError, CRSError, ValueError, TypeError, RecursionError)


def _foreign_errors() -> tuple[type[Exception], ...]:
    """The third-party errors normalize_geometry turns into GeometryError: shapely's too once it is
    in use (before that, none can have been raised)."""
    errors = sys.modules.get("shapely.errors")
    return _FOREIGN_ERRORS + (errors.GEOSException,) if errors is not None else _FOREIGN_ERRORS


# --- points: the common case, without the general reader ---------------------------------------
#
# Most GIS layers are points. A point needs neither the nested-array reader nor shapely: two
# numbers, one transform, one box check. A page's points can be transformed in one vectorised
# pyproj call beforehand (prepare_points: ~0.7 µs a point instead of ~3 µs for a call per point);
# normalize_geometry then finds each point's result by the identity of its geometry object. A point
# this path cannot take as it is (not two finite numbers, outside the box, so possibly swapped)
# goes through the general path below, which says why or fixes it.

_PREPARED_MAX = 10_000
# id(geometry) -> (the geometry object itself, SourceCRS, lon, lat). Holding the object keeps its id
# from being reused while the entry lives; the entry counts only for the very object and CRS.
_prepared: dict[int, tuple[Any, SourceCRS, float, float]] = {}


_NUMBER_TYPES = (float, int)


def _point_xy(geometry: Any) -> tuple[float, float] | None:
    """(x, y) of an Esri point ``{x, y}`` or a GeoJSON Point holding two finite numbers, else None."""
    if type(geometry) is not dict:
        return None
    if "x" in geometry:
        if "type" in geometry:
            return None
        x, y = geometry["x"], geometry.get("y")
    elif geometry.get("type") == "Point":
        coords = geometry.get("coordinates")
        if type(coords) is not list or len(coords) != 2:
            return None
        x, y = coords
    else:
        return None
    if not (type(x) in _NUMBER_TYPES and type(y) in _NUMBER_TYPES):  # (bool is not a number here)
        return None
    fx, fy = float(x), float(y)  # type: ignore[arg-type]
    if fx - fx != 0.0 or fy - fy != 0.0:  # inf or nan
        return None
    return fx, fy


def prepare_points(geometries: Sequence[Any], crs: SourceCRS) -> int:
    """Transform the points among a page's geometries to WGS84 in one call, for normalize_geometry.

    Call it with the geometry objects the records will carry (the same objects, not copies).
    Replaces what an earlier page prepared; returns how many points were prepared.
    """
    _prepared.clear()
    if crs.epsg == WGS84 and not crs.swaps_input:
        return 0  # nothing to transform
    kept: list[Any] = []
    xs: list[float] = []
    ys: list[float] = []
    for geometry in geometries[:_PREPARED_MAX]:
        xy = _point_xy(geometry)
        if xy is not None:
            kept.append(geometry)
            xs.append(xy[0])
            ys.append(xy[1])
    if not kept:
        return 0
    if crs.swaps_input:
        xs, ys = ys, xs
    try:
        lons, lats = _to_wgs84(xs, ys, crs.epsg)
    except GeometryError:
        return 0  # each point then says so itself
    for geometry, lon, lat in zip(kept, lons, lats, strict=True):
        _prepared[id(geometry)] = (geometry, crs, lon, lat)
    return len(kept)


def _point(geometry: Any, crs: SourceCRS, bbox: BBox) -> NormalizedGeometry | None:
    """A point inside ``bbox`` the short way, or None for the general path."""
    hit = _prepared.get(id(geometry))
    if hit is not None and hit[0] is geometry and hit[1] == crs:
        lon, lat = hit[2], hit[3]
    else:
        xy = _point_xy(geometry)
        if xy is None:
            return None
        x, y = (xy[1], xy[0]) if crs.swaps_input else xy
        if crs.epsg == WGS84:
            lon, lat = x, y
        else:
            try:
                lon, lat = transformer(crs.epsg, WGS84).transform(x, y, errcheck=False)
            except ProjError:
                return None
    if not (bbox.min_lon <= lon <= bbox.max_lon and bbox.min_lat <= lat <= bbox.max_lat):
        return None  # (nan compares false too)
    return NormalizedGeometry({"type": "Point", "coordinates": [round(lon, COORD_DECIMALS),
                                                               round(lat, COORD_DECIMALS)]}, crs.name)


def _normalize(geometry: Any, crs: SourceCRS, bbox: BBox, max_vertices: int) -> NormalizedGeometry:
    if geometry is None:
        raise GeometryError("no geometry")
    reader = _Reader(max_vertices)
    if isinstance(geometry, Mapping) and "type" not in geometry:
        kind, coords = _read_esri(geometry, reader)
    else:
        kind, coords = read_geojson(geometry, reader)
    fixes = list(reader.fixes)
    xs: list[float] = []
    ys: list[float] = []
    _flatten(coords, xs, ys)
    if crs.swaps_input:
        xs, ys = ys, xs
    lons, lats = _to_wgs84(xs, ys, crs.epsg)
    outside = _outside(lons, lats, bbox)
    if outside:
        # Swapped axes are fixed only when unambiguous: the original is out and the swap is fully in.
        s_lons, s_lats = _to_wgs84(ys, xs, crs.epsg)
        if _outside(s_lons, s_lats, bbox) == 0:
            lons, lats = s_lons, s_lats
            fixes.append("swapped axes (lat/lon or northing/easting)")
        else:
            first = next(i for i, (lo, la) in enumerate(zip(lons, lats, strict=True))
                         if not (math.isfinite(lo) and math.isfinite(la) and bbox.contains(lo, la)))
            raise GeometryError(
                f"{outside} of {len(lons)} vertices outside the expected area ({bbox}), also with "
                f"axes swapped; first at lon={lons[first]:.6g}, lat={lats[first]:.6g} from {crs.name}")
    wgs = _rebuild(coords, zip(lons, lats, strict=True))
    if kind in {"Polygon", "MultiPolygon"}:
        out = _check_polygonal(kind, wgs, fixes)
    else:
        out = {"type": kind, "coordinates": _round(wgs)}
        if kind in {"LineString", "MultiLineString"}:
            for line in [out["coordinates"]] if kind == "LineString" else out["coordinates"]:
                if len({tuple(p) for p in line}) < 2:
                    raise GeometryError(f"{kind} collapses to a single point")
    return NormalizedGeometry(out, crs.name, tuple(fixes))


def _round(coords: Any) -> Any:
    if isinstance(coords, tuple):
        return [round(coords[0], COORD_DECIMALS), round(coords[1], COORD_DECIMALS)]
    return [_round(c) for c in coords]


def _check_polygonal(kind: str, coords: list, fixes: list[str]) -> dict[str, Any]:
    import shapely
    from shapely.geometry import MultiPolygon, Polygon, mapping

    polygons = [coords] if kind == "Polygon" else coords
    geom: Any = MultiPolygon([Polygon(p[0], p[1:]) for p in polygons]) if kind == "MultiPolygon" \
        else Polygon(coords[0], coords[1:])
    if not geom.is_valid:
        reason = shapely.is_valid_reason(geom)
        geom = _polygonal_part(shapely.make_valid(geom))
        if geom is None:
            raise GeometryError(f"invalid polygon that cannot be repaired: {reason}")
        fixes.append(f"repaired invalid polygon ({reason})")
    elif _wrongly_wound(geom):
        fixes.append("reoriented rings (RFC 7946 right-hand rule)")
    # set_precision keeps the result valid (it may rewind rings, so orientation comes after it).
    geom = _polygonal_part(shapely.set_precision(geom, GRID))
    if geom is None:
        raise GeometryError("polygon collapses to nothing at 1e-7 degree precision")
    out = mapping(shapely.orient_polygons(geom))
    return {"type": out["type"], "coordinates": _tuples_to_lists(out["coordinates"])}


def _wrongly_wound(geom: Polygon | MultiPolygon) -> bool:
    from shapely.geometry import MultiPolygon

    for poly in geom.geoms if isinstance(geom, MultiPolygon) else [geom]:
        if not poly.exterior.is_ccw or any(hole.is_ccw for hole in poly.interiors):
            return True
    return False


def _polygonal_part(geom: Any) -> Any:
    """Keep only the polygonal parts of a geometry (make_valid may add lines or points)."""
    import shapely
    from shapely.geometry import MultiPolygon, Polygon

    if geom.is_empty:
        return None
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in shapely.get_parts(geom) if isinstance(g, Polygon | MultiPolygon) and not g.is_empty]
    polys = [p for g in parts for p in (g.geoms if isinstance(g, MultiPolygon) else [g])]
    if not polys:
        return None
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


def _tuples_to_lists(coords: Any) -> Any:
    if coords and isinstance(coords[0], float | int):
        return [round(float(coords[0]), COORD_DECIMALS), round(float(coords[1]), COORD_DECIMALS)]
    return [_tuples_to_lists(c) for c in coords]
