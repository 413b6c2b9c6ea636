"""Geo-queries of the embedded broker: parameter errors, relations, distances, the R-tree box."""

from __future__ import annotations

import random
from itertools import pairwise

import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from ngsild_broker.geo import EARTH_RADIUS_M, GeoQuery, GeoQueryError, geometry_bbox, parse_geoquery

SPHERE = pyproj.Geod(a=EARTH_RADIUS_M, b=EARTH_RADIUS_M)
# Burgas centre and a box around the bay.
CENTRE = [27.4678, 42.5048]
BOX = [[[27.40, 42.45], [27.55, 42.45], [27.55, 42.55], [27.40, 42.55], [27.40, 42.45]]]
HOLED = [BOX[0], [[27.45, 42.48], [27.50, 42.48], [27.50, 42.52], [27.45, 42.52], [27.45, 42.48]]]


def point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [lon, lat]}


def offset(lon: float, lat: float, azimuth: float, meters: float) -> list[float]:
    lon2, lat2, _ = SPHERE.fwd(lon, lat, azimuth, meters)
    return [lon2, lat2]


# --- parameter errors ---------------------------------------------------------------------------

@pytest.mark.parametrize(("georel", "geometry", "coordinates", "title"), [
    (None, "Point", "[27.4,42.5]", "Incomplete geometry"),
    ("near;maxDistance==10", None, "[27.4,42.5]", "Incomplete geometry"),
    ("near;maxDistance==10", "Point", None, "Incomplete geometry"),
    ("near;maxDistance==10", "Point", "", "Incomplete geometry"),
    ("nearby", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter - invalid 'georel'"),
    ("near", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter - invalid 'georel'"),
    ("near;maxDistance=10", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter"),
    ("near;distance==10", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter"),
    ("near;maxDistance==1.5", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter"),
    ("near;maxDistance==-1", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter"),
    ("near;maxDistance==10", "Polygon", str(BOX), "Invalid Geo-Spatial filter"),
    ("within", "Point", "[27.4,42.5]", "Invalid Geo-Spatial filter"),
    ("within", "LineString", "[[27.4,42.5],[27.5,42.6]]", "Invalid Geo-Spatial filter"),
    ("intersects", "Circle", "[27.4,42.5]", "Invalid Geo-Spatial filter"),
    ("intersects", "GeometryCollection", "[]", "Invalid Geo-Spatial filter"),
    ("intersects", "Point", "[27.4]", "Invalid Geometry"),
    ("intersects", "Point", "[27.4,42.5,1,2]", "Invalid Geometry"),
    ("intersects", "Point", "[\"27.4\",42.5]", "Invalid Geometry"),
    ("intersects", "Point", "[190,42.5]", "Invalid Geometry"),
    ("intersects", "Point", "[27.4,95]", "Invalid Geometry"),
    ("intersects", "Point", "27.4,42.5", "Invalid Geometry"),
    ("intersects", "LineString", "[[27.4,42.5]]", "Invalid Geometry"),
    ("within", "Polygon", "[[[27.4,42.5],[27.5,42.5],[27.5,42.6]]]", "Invalid Geometry"),
    ("within", "Polygon", "[[[27.4,42.5],[27.5,42.5],[27.5,42.6],[27.4,42.6]]]", "Invalid Geometry"),
    ("within", "Polygon", "[[[0,0],[1,1],[1,0],[0,1],[0,0]]]", "Invalid Geometry"),  # bow-tie
    ("within", "MultiPolygon", "[]", "Invalid Geometry"),
])
def test_invalid_geo_query_is_rejected_with_its_title(georel, geometry, coordinates, title) -> None:
    with pytest.raises(GeoQueryError) as err:
        parse_geoquery(georel, geometry, coordinates)
    assert err.value.title == title
    assert err.value.detail


def test_coordinates_may_be_a_decoded_list_and_geoproperty_is_kept() -> None:
    q = parse_geoquery("within", "Polygon", BOX, geoproperty="observationSpace")
    assert q.geoproperty == "observationSpace"
    assert q.matches(point(*CENTRE))


# --- relations ----------------------------------------------------------------------------------

INSIDE_LINE = {"type": "LineString", "coordinates": [[27.42, 42.47], [27.53, 42.53]]}
CROSSING_LINE = {"type": "LineString", "coordinates": [[27.30, 42.50], [27.60, 42.50]]}
FAR_POLYGON = {"type": "Polygon", "coordinates": [[[28.0, 43.0], [28.1, 43.0], [28.1, 43.1], [28.0, 43.0]]]}
OVERLAPPING = {"type": "Polygon", "coordinates": [[[27.50, 42.50], [27.60, 42.50], [27.60, 42.60],
                                                     [27.50, 42.60], [27.50, 42.50]]]}
CONTAINING = {"type": "MultiPolygon", "coordinates": [[[[27.0, 42.0], [28.0, 42.0], [28.0, 43.0],
                                                          [27.0, 43.0], [27.0, 42.0]]]]}
MULTIPOINT = {"type": "MultiPoint", "coordinates": [[27.45, 42.50], [27.70, 42.50]]}
MULTILINE = {"type": "MultiLineString", "coordinates": [[[27.41, 42.46], [27.42, 42.47]],
                                                         [[27.43, 42.46], [27.44, 42.47]]]}
SAME_BOX = {"type": "Polygon", "coordinates": [list(reversed(BOX[0]))]}


@pytest.mark.parametrize(("georel", "entity", "expected"), [
    ("within", point(*CENTRE), True),
    ("within", point(27.40, 42.50), True),  # on the boundary
    ("within", point(27.60, 42.50), False),
    ("within", INSIDE_LINE, True),
    ("within", CROSSING_LINE, False),
    ("within", MULTILINE, True),
    ("within", MULTIPOINT, False),
    ("within", SAME_BOX, True),
    ("intersects", CROSSING_LINE, True),
    ("intersects", MULTIPOINT, True),
    ("intersects", FAR_POLYGON, False),
    ("intersects", point(27.55, 42.55), True),
    ("disjoint", FAR_POLYGON, True),
    ("disjoint", point(*CENTRE), False),
    ("disjoint", point(27.60, 42.50), True),
    ("disjoint", CROSSING_LINE, False),
    ("contains", CONTAINING, True),
    ("contains", OVERLAPPING, False),
    ("contains", point(*CENTRE), False),
    ("overlaps", OVERLAPPING, True),
    ("overlaps", CONTAINING, False),
    ("overlaps", point(*CENTRE), False),
    ("equals", SAME_BOX, True),
    ("equals", OVERLAPPING, False),
])
def test_polygon_relations(georel: str, entity: dict, expected: bool) -> None:
    q = parse_geoquery(georel, "Polygon", BOX)
    assert q.matches(entity) is expected
    assert q.matches_many([entity]) == [expected]


def test_within_a_polygon_with_a_hole_excludes_the_hole() -> None:
    q = parse_geoquery("within", "Polygon", HOLED)
    assert q.matches(point(27.42, 42.50))
    assert not q.matches(point(*CENTRE))


def test_within_a_multipolygon() -> None:
    far = [[[28.0, 43.0], [28.1, 43.0], [28.1, 43.1], [28.0, 43.1], [28.0, 43.0]]]
    q = parse_geoquery("within", "MultiPolygon", [BOX, far])
    assert q.matches(point(28.05, 43.05)) and q.matches(point(*CENTRE))
    assert not q.matches(point(27.8, 42.8))


def test_point_and_linestring_queries() -> None:
    q = parse_geoquery("intersects", "LineString", CROSSING_LINE["coordinates"])
    assert q.matches({"type": "Polygon", "coordinates": BOX})
    assert not q.matches(FAR_POLYGON)
    assert q.matches(point(27.45, 42.50))
    c = parse_geoquery("contains", "Point", CENTRE)
    assert c.matches({"type": "Polygon", "coordinates": BOX})
    assert not c.matches(FAR_POLYGON)
    assert c.matches(point(*CENTRE))
    e = parse_geoquery("equals", "Point", CENTRE)
    assert e.matches(point(*CENTRE)) and not e.matches(point(27.0, 42.0))


def test_unreadable_entity_geometry_never_matches() -> None:
    q = parse_geoquery("intersects", "Polygon", BOX)
    assert not q.matches({"type": "Point"})
    assert not q.matches({"type": "Polygon", "coordinates": [[1, 2]]})
    assert not q.matches({"type": "Banana", "coordinates": [1, 2]})


def test_matches_entity_uses_the_expanded_geoproperty() -> None:
    loc = "https://uri.etsi.org/ngsi-ld/location"
    entity = {"id": "urn:a", loc: {"type": "GeoProperty", "value": point(*CENTRE)}}
    q = parse_geoquery("within", "Polygon", BOX)
    assert q.matches_entity(entity, lambda t: loc if t == "location" else "https://x/" + t)
    other = parse_geoquery("within", "Polygon", BOX, geoproperty="observationSpace")
    assert not other.matches_entity(entity, lambda t: "https://x/" + t)


# --- near ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("meters", [50, 1000, 20000])
@pytest.mark.parametrize("lat", [42.5048, 0.0, 65.0])
def test_near_points_by_great_circle_distance(meters: int, lat: float) -> None:
    centre = [CENTRE[0], lat]
    q = parse_geoquery(f"near;maxDistance=={meters}", "Point", centre)
    far = parse_geoquery(f"near;minDistance=={meters}", "Point", centre)
    for azimuth in (0, 45, 90, 180, 270):
        just_in = point(*offset(*centre, azimuth, meters * 0.999))
        just_out = point(*offset(*centre, azimuth, meters * 1.001))
        assert q.matches(just_in) and not q.matches(just_out)
        assert far.matches(just_out) and not far.matches(just_in)
        assert q.matches_many([just_in, just_out]) == [True, False]


@pytest.mark.parametrize("meters", [300, 5000, 60000])
def test_near_lines_and_polygons_measure_to_the_nearest_point_within_half_a_percent(meters: int) -> None:
    # A meridian segment east of the centre: its nearest point is due east at `meters`.
    east = offset(*CENTRE, 90, meters)
    line = {"type": "LineString", "coordinates": [[east[0], east[1] - 1.0], [east[0], east[1] + 1.0]]}
    poly = {"type": "Polygon", "coordinates": [[[east[0], east[1] - 0.5], [east[0] + 1, east[1] - 0.5],
                                                [east[0] + 1, east[1] + 0.5], [east[0], east[1] + 0.5],
                                                [east[0], east[1] - 0.5]]]}
    true = min(SPHERE.inv(CENTRE[0], CENTRE[1], lon, lat)[2]
               for lon, lat in SPHERE.npts(east[0], east[1] - 1.0, east[0], east[1] + 1.0, 20001))
    for geom in (line, poly):
        assert parse_geoquery(f"near;maxDistance=={int(true * 1.005)}", "Point", CENTRE).matches(geom)
        assert not parse_geoquery(f"near;maxDistance=={int(true * 0.995)}", "Point", CENTRE).matches(geom)
        assert parse_geoquery(f"near;minDistance=={int(true * 0.995)}", "Point", CENTRE).matches(geom)


def test_near_a_polygon_around_the_point_is_distance_zero() -> None:
    q = parse_geoquery("near;maxDistance==0", "Point", CENTRE)
    assert q.matches({"type": "Polygon", "coordinates": BOX})
    assert not parse_geoquery("near;minDistance==1", "Point", CENTRE).matches(
        {"type": "Polygon", "coordinates": BOX})


# --- bbox prefilter -----------------------------------------------------------------------------

def test_bbox_is_none_where_no_box_can_bound_the_answer() -> None:
    assert parse_geoquery("disjoint", "Polygon", BOX).bbox() is None
    assert parse_geoquery("near;minDistance==10", "Point", CENTRE).bbox() is None
    assert parse_geoquery("near;maxDistance==100", "Point", [179.9999, 0]).bbox() is None
    assert parse_geoquery("near;maxDistance==100000", "Point", [0, 89.9]).bbox() is None
    assert parse_geoquery("within", "Polygon", BOX).bbox() == (27.40, 42.45, 27.55, 42.55)


def _intersects_box(geom: dict, box: tuple) -> bool:
    return shapely.geometry.shape(geom).intersects(shapely.box(*box))


@settings(max_examples=150, deadline=None)
@given(st.floats(-60, 60), st.floats(-170, 170), st.integers(1, 200000),
       st.floats(0, 360), st.floats(0.0, 1.2))
def test_every_near_match_intersects_the_bbox(lat, lon, meters, azimuth, fraction) -> None:
    q = parse_geoquery(f"near;maxDistance=={meters}", "Point", [lon, lat])
    box = q.bbox()
    target = point(*offset(lon, lat, azimuth, meters * fraction))
    if box is not None and q.matches(target):
        assert _intersects_box(target, box)


@pytest.mark.parametrize("georel", ["within", "intersects", "contains", "overlaps", "equals"])
def test_every_relation_match_intersects_the_bbox(georel: str) -> None:
    q = parse_geoquery(georel, "Polygon", BOX)
    for geom in (INSIDE_LINE, CROSSING_LINE, FAR_POLYGON, OVERLAPPING, CONTAINING, MULTIPOINT,
                 SAME_BOX, point(*CENTRE)):
        if q.matches(geom):
            assert _intersects_box(geom, q.bbox())


def test_geometry_bbox_of_each_geojson_type() -> None:
    assert geometry_bbox(point(1, 2)) == (1, 2, 1, 2)
    assert geometry_bbox(MULTIPOINT) == (27.45, 42.50, 27.70, 42.50)
    assert geometry_bbox({"type": "Polygon", "coordinates": BOX}) == (27.40, 42.45, 27.55, 42.55)
    assert geometry_bbox(MULTILINE) == (27.41, 42.46, 27.44, 42.47)
    assert geometry_bbox(CONTAINING) == (27.0, 42.0, 28.0, 43.0)


# --- the fast point path agrees with GEOS -------------------------------------------------------

@pytest.mark.parametrize("coords", [HOLED, [[[27.40, 42.45], [27.55, 42.45], [27.47, 42.55], [27.40, 42.45]]]])
def test_grid_point_tests_agree_with_geos(coords) -> None:
    rng = random.Random(7)
    q = parse_geoquery("within", "Polygon", coords)
    geom = shapely.geometry.shape({"type": "Polygon", "coordinates": coords})
    minx, miny, maxx, maxy = geom.bounds
    xs = [rng.uniform(minx - 0.01, maxx + 0.01) for _ in range(20000)]
    ys = [rng.uniform(miny - 0.01, maxy + 0.01) for _ in range(20000)]
    # Vertices, edge midpoints and cell corners are the hard cases.
    ring = [p for r in coords for p in r]
    xs += [p[0] for p in ring] + [(a[0] + b[0]) / 2 for a, b in pairwise(ring)]
    ys += [p[1] for p in ring] + [(a[1] + b[1]) / 2 for a, b in pairwise(ring)]
    xs += [minx + (maxx - minx) * i / 32 for i in range(33)]
    ys += [miny + (maxy - miny) * i / 32 for i in range(33)]
    expected = shapely.intersects_xy(geom, xs, ys).tolist()
    got = [q.matches(point(x, y)) for x, y in zip(xs, ys, strict=True)]
    assert got == expected
    assert q.matches_many([point(x, y) for x, y in zip(xs, ys, strict=True)]) == expected


def test_geo_query_is_a_plain_value() -> None:
    q = parse_geoquery("near;maxDistance==1000", "Point", "[27.4678,42.5048]")
    assert isinstance(q, GeoQuery)
    assert (q.georel, q.geometry, q.max_distance, q.min_distance) == ("near", "Point", 1000.0, None)
