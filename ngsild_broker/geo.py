"""NGSI-LD geo-queries (georel, geometry, coordinates, geoproperty) over GeoJSON in WGS84 lon/lat.

Relations are read as in GS CIM 009 with the entity's geometry E and the query geometry Q:
within = Q covers E (a point on the boundary is within, as MongoDB's $geoWithin, hence Orion-LD),
contains = E covers Q, intersects, disjoint = not intersects, overlaps (same dimension, interiors
meet, neither contains the other), equals (topological equality). `near` distances are meters on a
sphere of MongoDB's radius; a non-point geometry is measured at its nearest point, computed in an
azimuthal equidistant projection centred on the query point (exact for every vertex, and for the
segments between them well within 0.5 % at city and regional scales).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import shapely
from shapely.errors import ShapelyError
from shapely.geometry import shape

__all__ = ["GeoQuery", "GeoQueryError", "geometry_bbox", "parse_geoquery"]

# MongoDB's S2 earth radius (kRadiusOfEarthInMeters): Orion-LD's near answers use it.
EARTH_RADIUS_M = 6378100.0
MAX_POSITIONS = 100_000
MAX_COORDINATES_TEXT = 4 * 1024 * 1024
QUERY_GEOMETRIES = ("Point", "LineString", "Polygon", "MultiPolygon")
GEORELS = ("near", "within", "contains", "intersects", "disjoint", "overlaps", "equals")
BBox = tuple[float, float, float, float]


class GeoQueryError(ValueError):
    """An invalid geo-query; the app answers 400 BadRequestData with this title and detail."""

    def __init__(self, title: str, detail: str) -> None:
        self.title = title
        self.detail = detail
        super().__init__(f"{title}: {detail}")


# --- GeoJSON checks ------------------------------------------------------------------------------

def _invalid(detail: str) -> GeoQueryError:
    # Orion-LD answers bad query coordinates with type InternalError, title "Invalid Geometry"
    # (T/ngsild_geoqueries-error-handling.test steps 12-14). We answer BadRequestData: the client
    # sent a bad request, and GS CIM 009 says so; the title stays Orion-LD's.
    return GeoQueryError("Invalid Geometry", detail)


def _position(p: Any) -> None:
    if (not isinstance(p, list) or len(p) not in (2, 3)
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p)):
        raise _invalid("a position must be an array of 2 or 3 numbers")
    if not (-180.0 <= p[0] <= 180.0 and -90.0 <= p[1] <= 90.0):
        raise _invalid("longitude must be within [-180, 180] and latitude within [-90, 90]")


def _positions(ps: Any, minimum: int, what: str) -> None:
    if not isinstance(ps, list) or len(ps) < minimum:
        raise _invalid(f"a {what} needs at least {minimum} positions")
    for p in ps:
        _position(p)


def _polygon(rings: Any) -> None:
    if not isinstance(rings, list) or not rings:
        raise _invalid("a Polygon needs at least one linear ring")
    for ring in rings:
        _positions(ring, 4, "linear ring")
        if ring[0][:2] != ring[-1][:2]:
            raise _invalid("a linear ring must be closed (first position == last position)")


def _check_coordinates(kind: str, coords: Any) -> None:
    if kind == "Point":
        _position(coords)
    elif kind == "LineString":
        _positions(coords, 2, "LineString")
    elif kind == "Polygon":
        _polygon(coords)
    elif kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise _invalid("a MultiPolygon needs at least one Polygon")
        for poly in coords:
            _polygon(poly)


def _count_positions(coords: Any) -> int:
    if isinstance(coords, list) and coords and isinstance(coords[0], (int, float)):
        return 1
    return sum(_count_positions(c) for c in coords) if isinstance(coords, list) else 0


def _flat_xy(coords: Any, xs: list[float], ys: list[float]) -> None:
    if coords and isinstance(coords[0], (int, float)):
        xs.append(coords[0])
        ys.append(coords[1])
        return
    for c in coords:
        _flat_xy(c, xs, ys)


def geometry_bbox(geojson: dict) -> BBox:
    """The lon/lat bounding box of a GeoJSON geometry (for the store's location index)."""
    xs: list[float] = []
    ys: list[float] = []
    _flat_xy(geojson["coordinates"], xs, ys)
    if not xs:
        raise ValueError("geometry without positions")
    return min(xs), min(ys), max(xs), max(ys)


# --- distances ----------------------------------------------------------------------------------

def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in meters."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _aeqd(lon0: float, lat0: float) -> Callable[[np.ndarray], np.ndarray]:
    """Forward spherical azimuthal equidistant projection centred on (lon0, lat0), in meters."""
    p0, l0 = math.radians(lat0), math.radians(lon0)
    sin_p0, cos_p0 = math.sin(p0), math.cos(p0)

    def forward(xy: np.ndarray) -> np.ndarray:
        lam = np.radians(xy[:, 0]) - l0
        phi = np.radians(xy[:, 1])
        cos_c = np.clip(sin_p0 * np.sin(phi) + cos_p0 * np.cos(phi) * np.cos(lam), -1.0, 1.0)
        c = np.arccos(cos_c)
        sin_c = np.sin(c)
        k = np.where(sin_c > 1e-15, c / np.where(sin_c > 1e-15, sin_c, 1.0), 1.0)
        x = k * np.cos(phi) * np.sin(lam)
        y = k * (cos_p0 * np.sin(phi) - sin_p0 * np.cos(phi) * np.cos(lam))
        return np.column_stack((x, y)) * EARTH_RADIUS_M

    return forward


# --- fast point-in-query tests ---------------------------------------------------------------------

class _PointGrid:
    """Cells over the query's box, each known inside, outside or on the boundary of the query.

    A point in an inside or outside cell is answered with two multiplications; only points in
    boundary cells reach GEOS. The answer is the same as `intersects_xy` for every point.
    """

    SIZE = 32

    def __init__(self, geom: Any) -> None:
        minx, miny, maxx, maxy = geom.bounds
        self.minx, self.miny, self.maxx, self.maxy = minx, miny, maxx, maxy
        n = self.SIZE
        self.sx = n / (maxx - minx) if maxx > minx else 0.0
        self.sy = n / (maxy - miny) if maxy > miny else 0.0
        self.geom = geom
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        w = (maxx - minx) / n
        h = (maxy - miny) / n
        boxes = shapely.box(minx + ii.ravel() * w, miny + jj.ravel() * h,
                            minx + (ii.ravel() + 1) * w, miny + (jj.ravel() + 1) * h)
        inside = shapely.contains_properly(geom, boxes)
        outside = shapely.disjoint(geom, boxes)
        # 1 inside, 0 outside, -1 ask GEOS; cell edges are shared, so only open interiors decide.
        self.cells = np.where(inside, 1, np.where(outside, 0, -1)).astype(np.int8).tolist()

    def intersects(self, x: float, y: float) -> bool:
        if x < self.minx or x > self.maxx or y < self.miny or y > self.maxy:
            return False
        i = int((x - self.minx) * self.sx)
        j = int((y - self.miny) * self.sy)
        n = self.SIZE
        if 0 <= i < n and 0 <= j < n:
            fx = (x - self.minx) * self.sx - i
            fy = (y - self.miny) * self.sy - j
            if 0.0 < fx < 1.0 and 0.0 < fy < 1.0:  # strictly inside the cell: its verdict holds
                verdict = self.cells[i * n + j]
                if verdict >= 0:
                    return verdict == 1
        return bool(shapely.intersects_xy(self.geom, x, y))


# --- the query ----------------------------------------------------------------------------------

@dataclass
class GeoQuery:
    """A parsed geo-query; `matches()` tests one entity geometry (GeoJSON)."""

    georel: str
    geometry: str
    coordinates: Any
    geoproperty: str = "location"
    max_distance: float | None = None
    min_distance: float | None = None

    def __post_init__(self) -> None:
        self._shape = shape({"type": self.geometry, "coordinates": self.coordinates})
        if self.geometry in ("Polygon", "MultiPolygon") and not self._shape.is_valid:
            raise _invalid(f"{self.geometry} is not valid: {shapely.is_valid_reason(self._shape)}")
        shapely.prepare(self._shape)
        self._grid = (_PointGrid(self._shape)
                      if self.geometry in ("Polygon", "MultiPolygon") and self.georel != "near" else None)
        if self.georel == "near":
            self._lon, self._lat = float(self.coordinates[0]), float(self.coordinates[1])
            self._project = _aeqd(self._lon, self._lat)
            self._origin = shapely.Point(0.0, 0.0)

    # -- matching ----------------------------------------------------------------------------------
    def matches(self, geojson_geometry: dict) -> bool:
        """Whether an entity geometry (GeoJSON, lon/lat) satisfies the query."""
        try:
            kind = geojson_geometry["type"]
            coords = geojson_geometry["coordinates"]
            if kind == "Point":
                return self._matches_point(float(coords[0]), float(coords[1]))
            return self._matches_shape(shape(geojson_geometry))
        except (KeyError, IndexError, TypeError, ValueError, ShapelyError):
            return False  # a stored geometry shapely cannot read never matches

    def matches_entity(self, entity: dict, expand: Callable[[str], str]) -> bool:
        """Whether a stored entity's `geoproperty` (expanded with `expand`) satisfies the query."""
        attr = entity.get(expand(self.geoproperty))
        if isinstance(attr, list):  # multi-attribute: any instance
            return any(isinstance(a, dict) and isinstance(a.get("value"), dict)
                       and self.matches(a["value"]) for a in attr)
        return isinstance(attr, dict) and isinstance(attr.get("value"), dict) and self.matches(attr["value"])

    def matches_many(self, geometries: Sequence[dict]) -> list[bool]:
        """`matches()` for many geometries, with the points tested in one vectorized call."""
        out = [False] * len(geometries)
        idx: list[int] = []
        xs: list[float] = []
        ys: list[float] = []
        for i, g in enumerate(geometries):
            try:
                if g["type"] == "Point":
                    x, y = float(g["coordinates"][0]), float(g["coordinates"][1])
                    idx.append(i)
                    xs.append(x)
                    ys.append(y)
                    continue
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            out[i] = self.matches(g)
        if idx:
            for i, ok in zip(idx, self._points(np.asarray(xs), np.asarray(ys)), strict=True):
                out[i] = bool(ok)
        return out

    def _points(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        rel = self.georel
        if rel == "near":
            p1, p2 = np.radians(self._lat), np.radians(ys)
            a = (np.sin((p2 - p1) / 2) ** 2
                 + np.cos(p1) * np.cos(p2) * np.sin(np.radians(xs - self._lon) / 2) ** 2)
            d = 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
            return self._distance_ok(d)
        if rel in ("within", "intersects"):
            return shapely.intersects_xy(self._shape, xs, ys)
        if rel == "disjoint":
            return ~shapely.intersects_xy(self._shape, xs, ys)
        return np.fromiter((self._matches_point(x, y) for x, y in zip(xs, ys, strict=True)),
                           dtype=bool, count=len(xs))

    def _distance_ok(self, d: Any) -> Any:
        if self.max_distance is not None:
            return d <= self.max_distance
        return d >= self.min_distance

    def _matches_point(self, x: float, y: float) -> bool:
        rel = self.georel
        if rel == "near":
            return bool(self._distance_ok(haversine_m(self._lon, self._lat, x, y)))
        if rel in ("within", "intersects", "disjoint"):  # a point is covered by Q iff it meets Q
            meets = (self._grid.intersects(x, y) if self._grid is not None
                     else bool(shapely.intersects_xy(self._shape, x, y)))
            return meets != (rel == "disjoint")
        if rel in ("contains", "equals"):  # a point covers / equals only the same point
            return self.geometry == "Point" and (x, y) == (self._lon_lat())
        return False  # overlaps needs two geometries of the same dimension: never for a point

    def _lon_lat(self) -> tuple[float, float]:
        return float(self.coordinates[0]), float(self.coordinates[1])

    def _matches_shape(self, geom: Any) -> bool:
        rel = self.georel
        q = self._shape
        if rel == "near":
            projected = shapely.transform(geom, self._project)
            return bool(self._distance_ok(projected.distance(self._origin)))
        if rel == "within":
            return bool(shapely.covers(q, geom))
        if rel == "intersects":
            return bool(shapely.intersects(q, geom))
        if rel == "disjoint":
            return bool(shapely.disjoint(q, geom))
        if rel == "contains":
            return bool(shapely.covered_by(q, geom))
        if rel == "overlaps":
            return bool(shapely.overlaps(q, geom))
        return bool(shapely.equals(q, geom))

    # -- prefilter ---------------------------------------------------------------------------------
    def bbox(self) -> BBox | None:
        """A lon/lat box every matching geometry intersects (the location index's prefilter), or None."""
        if self.georel == "disjoint" or self.min_distance is not None:
            return None
        if self.georel != "near":
            return tuple(float(v) for v in self._shape.bounds)  # type: ignore[return-value]
        assert self.max_distance is not None  # near without minDistance has maxDistance (_parse_georel)
        # 1 % head-room over the projection error bound, so the prefilter never loses a match.
        c = min(math.pi, self.max_distance * 1.01 / EARTH_RADIUS_M + 1e-9)
        dlat = math.degrees(c)
        lat0 = math.radians(self._lat)
        if math.cos(lat0) <= math.sin(c) or c >= math.pi / 2:
            return None  # the circle reaches a pole: every longitude is possible
        dlon = math.degrees(math.asin(math.sin(c) / math.cos(lat0)))
        box = (self._lon - dlon, self._lat - dlat, self._lon + dlon, self._lat + dlat)
        if box[0] < -180.0 or box[2] > 180.0:
            return None  # crosses the antimeridian: a single box cannot say it
        return box


def _parse_georel(georel: str) -> tuple[str, float | None, float | None]:
    if georel.startswith("near;"):
        name, _, value = georel[5:].partition("==")
        # Orion-LD: `maxDistance=` (single '=') and non-integer distances are refused (issue #1289).
        if name not in ("maxDistance", "minDistance") or not value:
            raise GeoQueryError("Invalid Geo-Spatial filter", "no distance for georel 'near' for Point")
        if not value.isdigit() or len(value) > 12:
            raise GeoQueryError("Invalid Geo-Spatial filter",
                                "invalid number for distance for georel 'near' for Point")
        dist = float(value)
        return "near", (dist if name == "maxDistance" else None), (dist if name == "minDistance" else None)
    if georel not in GEORELS or georel == "near":
        raise GeoQueryError("Invalid Geo-Spatial filter - invalid 'georel'", georel or "(empty)")
    return georel, None, None


def parse_geoquery(georel: str | None, geometry: str | None, coordinates: str | list | None,
                   geoproperty: str | None = "location") -> GeoQuery:
    """Check and parse the geo-query URI parameters (or a subscription's geoQ); raises GeoQueryError."""
    if not georel or not geometry or coordinates is None or coordinates == "":
        raise GeoQueryError("Incomplete geometry",
                            "geometry, georel and coordinates must all be present")
    if geometry not in QUERY_GEOMETRIES:
        raise GeoQueryError("Invalid Geo-Spatial filter",
                            f"invalid geometry '{geometry[:64]}': must be one of {', '.join(QUERY_GEOMETRIES)}")
    rel, max_d, min_d = _parse_georel(georel)
    if rel == "near" and geometry != "Point":
        raise GeoQueryError("Invalid Geo-Spatial filter", "Geometry must be 'Point' for georel 'near'")
    if rel == "within" and geometry not in ("Polygon", "MultiPolygon"):
        raise GeoQueryError("Invalid Geo-Spatial filter",
                            "Geometry must be either 'Polygon' or 'MultiPolygon' for georel 'within'")
    if isinstance(coordinates, str):
        if len(coordinates) > MAX_COORDINATES_TEXT:
            raise _invalid("coordinates too long")
        try:
            coords = orjson.loads(coordinates)
        except orjson.JSONDecodeError:
            raise _invalid("coordinates must be a JSON array") from None
    else:
        coords = coordinates
    if _count_positions(coords) > MAX_POSITIONS:
        raise _invalid(f"more than {MAX_POSITIONS} positions")
    _check_coordinates(geometry, coords)
    return GeoQuery(rel, geometry, coords, geoproperty or "location", max_d, min_d)

