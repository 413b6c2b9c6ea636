"""Geometry normalisation: CRS reading, transforms, area/swap checks, polygon repair, Esri rings."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import shape

from adapter.errors import GeometryError
from adapter.geometry import BULGARIA_BBOX, esri_to_geojson, from_wgs84, normalize_geometry, parse_crs

BURGAS = (27.4678, 42.5048)  # lon, lat of the city centre


@pytest.mark.parametrize("epsg", [7801, 9391, 32635, 3857, 4326])
def test_burgas_centre_round_trips_through_every_supported_crs(epsg: int) -> None:
    x, y = from_wgs84(*BURGAS, epsg)
    out = normalize_geometry({"type": "Point", "coordinates": [x, y]}, f"EPSG:{epsg}")
    lon, lat = out.geometry["coordinates"]
    assert math.isclose(lon, BURGAS[0], abs_tol=1e-6) and math.isclose(lat, BURGAS[1], abs_tol=1e-6)
    assert out.source_crs == f"EPSG:{epsg}"
    assert out.fixes == ()


def test_known_reference_coordinates_in_ccs2005_and_utm() -> None:
    # CCS2005 is a Lambert conic with false easting 500 km, false northing 4 725 824.359 m at 42.67°N.
    x, y = from_wgs84(*BURGAS, 7801)
    assert 661_000 < x < 662_500 and 4_709_000 < y < 4_710_500
    e, n = from_wgs84(*BURGAS, 32635)
    # UTM 35N: central meridian 27°E, so Burgas (27.47°E) lies ~38 km east of the 500 km false easting.
    assert 538_000 < e < 539_000 and 4_705_000 < n < 4_706_500


@pytest.mark.parametrize(("value", "epsg", "order"), [
    (7801, 7801, "xy"),
    ("EPSG:32635", 32635, "xy"),
    ("urn:ogc:def:crs:EPSG::4326", 4326, "authority"),
    ("http://www.opengis.net/def/crs/EPSG/0/9391", 9391, "authority"),
    ("http://www.opengis.net/def/crs/OGC/1.3/CRS84", 4326, "xy"),
    ({"wkid": 102100, "latestWkid": 3857}, 3857, "xy"),
    ({"wkid": 102100}, 3857, "xy"),
    ({"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32635"}}, 32635, "authority"),
])
def test_crs_is_read_from_every_declaration_form(value: object, epsg: int, order: str) -> None:
    crs = parse_crs(value)
    assert (crs.epsg, crs.axis_order) == (epsg, order)


@pytest.mark.parametrize("value", ["EPSG:999999", "urn:ogc:def:crs:FOO::1", {"wkt": "nonsense"}, None])
def test_unknown_crs_is_a_geometry_error_naming_it(value: object) -> None:
    with pytest.raises(GeometryError, match="CRS"):
        parse_crs(value, source="layer")


def test_wfs_urn_4326_is_read_latitude_first() -> None:
    out = normalize_geometry({"type": "Point", "coordinates": [BURGAS[1], BURGAS[0]]},
                             "urn:ogc:def:crs:EPSG::4326")
    assert out.geometry["coordinates"] == [BURGAS[0], BURGAS[1]]
    assert out.fixes == ()


def test_swapped_lat_lon_is_fixed_and_reported() -> None:
    out = normalize_geometry({"type": "Point", "coordinates": [BURGAS[1], BURGAS[0]]}, 4326)
    assert out.geometry["coordinates"] == [BURGAS[0], BURGAS[1]]
    assert any("swapped" in fix for fix in out.fixes)


def test_swapped_projected_axes_are_fixed() -> None:
    x, y = from_wgs84(*BURGAS, 7801)
    out = normalize_geometry({"x": y, "y": x}, {"wkid": 7801})
    assert out.geometry["coordinates"] == pytest.approx(list(BURGAS), abs=1e-6)
    assert out.fixes


def test_geometry_outside_bulgaria_is_rejected_with_the_reason() -> None:
    with pytest.raises(GeometryError, match="outside the expected area") as err:
        normalize_geometry({"type": "Point", "coordinates": [2.3522, 48.8566]}, 4326,
                           source="parks", record="features[3]")
    assert err.value.source == "parks" and err.value.record == "features[3]"


def test_partly_outside_line_is_rejected_not_swapped() -> None:
    line = {"type": "LineString", "coordinates": [[27.4, 42.5], [30.5, 42.5]]}
    with pytest.raises(GeometryError, match="1 of 2 vertices"):
        normalize_geometry(line, 4326)


def test_projected_coordinates_declared_as_wgs84_are_rejected() -> None:
    x, y = from_wgs84(*BURGAS, 32635)
    with pytest.raises(GeometryError, match="outside"):
        normalize_geometry({"type": "Point", "coordinates": [x, y]}, 4326)


def test_self_intersecting_polygon_is_repaired_to_its_polygonal_parts() -> None:
    bowtie = {"type": "Polygon", "coordinates": [[[27.4, 42.5], [27.5, 42.6], [27.5, 42.5],
                                                  [27.4, 42.6], [27.4, 42.5]]]}
    out = normalize_geometry(bowtie, 4326)
    assert out.geometry["type"] == "MultiPolygon"
    assert shape(out.geometry).is_valid
    assert any("repaired" in fix for fix in out.fixes)


def test_unclosed_ring_is_closed() -> None:
    ring = [[27.4, 42.5], [27.5, 42.5], [27.5, 42.6], [27.4, 42.6]]
    out = normalize_geometry({"type": "Polygon", "coordinates": [ring]}, 4326)
    coords = out.geometry["coordinates"][0]
    assert coords[0] == coords[-1] and len(coords) == 5
    assert any("closed" in fix for fix in out.fixes)


def test_clockwise_polygon_is_rewound_to_the_right_hand_rule() -> None:
    cw = [[27.4, 42.5], [27.4, 42.6], [27.5, 42.6], [27.5, 42.5], [27.4, 42.5]]
    out = normalize_geometry({"type": "Polygon", "coordinates": [cw]}, 4326)
    assert shape(out.geometry).exterior.is_ccw
    assert any("reoriented" in fix for fix in out.fixes)


def test_polygon_with_no_area_is_rejected() -> None:
    flat = [[27.4, 42.5], [27.5, 42.5], [27.6, 42.5], [27.4, 42.5]]
    with pytest.raises(GeometryError, match="cannot be repaired"):
        normalize_geometry({"type": "Polygon", "coordinates": [flat]}, 4326)


def test_vertex_count_is_bounded() -> None:
    line = {"type": "LineString", "coordinates": [[27.4 + i * 1e-5, 42.5] for i in range(50)]}
    with pytest.raises(GeometryError, match="more than 10 vertices"):
        normalize_geometry(line, 4326, max_vertices=10)


def test_esri_rings_become_polygons_with_holes_by_orientation() -> None:
    outer = [[0, 0], [0, 10], [10, 10], [10, 0], [0, 0]]      # clockwise: a shell
    hole = [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]             # counter-clockwise: a hole
    island = [[20, 0], [20, 5], [25, 5], [25, 0], [20, 0]]      # clockwise: a second shell
    one = esri_to_geojson({"rings": [outer, hole]})
    assert one["type"] == "Polygon" and len(one["coordinates"]) == 2
    two = esri_to_geojson({"rings": [outer, hole, island]})
    assert two["type"] == "MultiPolygon"
    assert [len(p) for p in two["coordinates"]] == [2, 1]
    assert shape(two).is_valid and shape(two).area == pytest.approx(100 - 4 + 25)


def test_esri_point_paths_and_multipoint_in_ccs2005() -> None:
    x, y = from_wgs84(*BURGAS, 7801)
    assert normalize_geometry({"x": x, "y": y}, {"wkid": 7801}).geometry["type"] == "Point"
    path = normalize_geometry({"paths": [[[x, y], [x + 100, y + 100]]]}, {"wkid": 7801})
    assert path.geometry["type"] == "LineString"
    multi = normalize_geometry({"points": [[x, y], [x + 50, y]]}, {"wkid": 7801})
    assert multi.geometry["type"] == "MultiPoint"


def test_esri_empty_point_is_rejected() -> None:
    with pytest.raises(GeometryError, match="empty"):
        normalize_geometry({"x": None, "y": None}, 7801)


# --- property tests: any input gives a valid WGS84 geometry or a GeometryError ---------------------

numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                    st.floats(min_value=22.0, max_value=29.0), st.floats(min_value=41.0, max_value=44.5),
                    st.integers(min_value=-10**20, max_value=10**20))
junk = st.one_of(st.none(), st.booleans(), st.text(max_size=5), numbers)
position = st.one_of(st.lists(numbers, min_size=0, max_size=4), junk)
line = st.one_of(st.lists(position, max_size=8), junk)
rings = st.one_of(st.lists(line, max_size=3), junk)
coordinates = st.one_of(position, line, rings, st.lists(rings, max_size=3), junk)
kinds = st.sampled_from(["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
                         "MultiPolygon", "GeometryCollection", "Circle"])
geojson = st.builds(lambda k, c: {"type": k, "coordinates": c}, kinds, coordinates)
esri = st.one_of(st.builds(lambda x, y: {"x": x, "y": y}, junk, junk),
                 st.builds(lambda r: {"rings": r}, st.one_of(st.lists(line, max_size=3), junk)),
                 st.builds(lambda p: {"paths": p}, st.one_of(st.lists(line, max_size=3), junk)))
crs = st.sampled_from([4326, "urn:ogc:def:crs:EPSG::4326", 7801, 32635, 3857, "EPSG:9391", "bogus"])

# Near-Burgas polygons exercise the repair path (random vertices self-intersect a lot).
burgas_ring = st.lists(st.tuples(st.floats(27.3, 27.6), st.floats(42.4, 42.6)), min_size=3, max_size=9)
burgas_polygon = st.builds(lambda r: {"type": "Polygon", "coordinates": [[list(p) for p in r]]}, burgas_ring)


def _check(geometry: object, declared: object) -> None:
    try:
        out = normalize_geometry(geometry, declared, max_vertices=200)
    except GeometryError:
        return
    parsed = shape(out.geometry)
    assert parsed.is_valid and not parsed.is_empty
    minx, miny, maxx, maxy = parsed.bounds
    assert BULGARIA_BBOX.contains(minx, miny) and BULGARIA_BBOX.contains(maxx, maxy)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(geojson, esri, junk, burgas_polygon), crs)
def test_normalisation_never_crashes(geometry: object, declared: object) -> None:
    _check(geometry, declared)


@settings(max_examples=200, deadline=None)
@given(burgas_polygon)
def test_random_burgas_polygons_become_valid_or_are_rejected(geometry: dict) -> None:
    _check(geometry, 4326)
