"""Points take a short path (and a page's points one vectorised transform): the same result as the
general reader, which still answers for every point the short path cannot take."""

from __future__ import annotations

import random

import pytest

from adapter import geometry
from adapter.errors import GeometryError
from adapter.geometry import BULGARIA_BBOX, from_wgs84, normalize_geometry, parse_crs, prepare_points


def _general(geom: object, crs: str) -> geometry.NormalizedGeometry:
    return geometry._normalize(geom, parse_crs(crs), BULGARIA_BBOX, geometry.DEFAULT_MAX_VERTICES)


def _points(n: int, epsg: int) -> list[tuple[float, float]]:
    rng = random.Random(epsg)
    return [from_wgs84(27.38 + rng.random() * 0.16, 42.44 + rng.random() * 0.13, epsg) for _ in range(n)]


@pytest.mark.parametrize("crs", ["EPSG:7801", "EPSG:32635", "EPSG:4326", "urn:ogc:def:crs:EPSG::4326"])
def test_points_equal_the_general_path(crs: str) -> None:
    epsg = parse_crs(crs).epsg
    points = _points(50, epsg)
    if parse_crs(crs).swaps_input:
        points = [(y, x) for x, y in points]
    esri = [{"x": round(x, 3), "y": round(y, 3)} for x, y in points]
    geojson = [{"type": "Point", "coordinates": [x, y]} for x, y in points]
    for geom in (*esri, *geojson):
        assert normalize_geometry(geom, crs) == _general(geom, crs)
    assert prepare_points(esri + geojson, parse_crs(crs)) == (0 if crs == "EPSG:4326" else 100)
    for geom in (*esri, *geojson):
        assert normalize_geometry(geom, crs) == _general(geom, crs)
        assert normalize_geometry(dict(geom), crs) == _general(geom, crs)  # a copy: not the prepared object


def test_prepared_result_counts_only_for_its_crs_and_object() -> None:
    x, y = _points(1, 7801)[0]
    geom = {"x": x, "y": y}
    prepare_points([geom], parse_crs(7801))
    # The same object read in another CRS is transformed from that CRS, not taken from the page.
    as_utm = normalize_geometry({"x": 500000.0, "y": 4700000.0}, "EPSG:32635")
    assert normalize_geometry(geom, "EPSG:7801").geometry != as_utm.geometry
    with pytest.raises(GeometryError, match="outside the expected area"):
        normalize_geometry(geom, "EPSG:32635")  # 7801 metres read as UTM 35N lie far from Bulgaria
    prepare_points([], parse_crs(7801))
    assert not geometry._prepared


def test_points_the_short_path_leaves_to_the_general_one() -> None:
    # Swapped lat/lon is still detected and fixed (the short path leaves a point outside the box).
    swapped = {"x": 42.5, "y": 27.45}
    prepare_points([swapped], parse_crs(4326))
    fixed = normalize_geometry(swapped, "EPSG:4326")
    assert fixed.geometry["coordinates"] == [27.45, 42.5]
    assert any("swapped axes" in fix for fix in fixed.fixes)
    for bad, reason in (({"x": "NaN", "y": 1.0}, "empty Esri point"), ({"x": True, "y": 42.0}, "finite numbers"),
                        ({"type": "Point", "coordinates": [27.4, float("inf")]}, "finite numbers"),
                        ({"x": 27.4}, "finite numbers"), ({"type": "Point", "coordinates": [1.0, 2.0]}, "outside")):
        with pytest.raises(GeometryError, match=reason):
            normalize_geometry(bad, "EPSG:4326")
    # A third coordinate is dropped as the general reader drops it.
    assert normalize_geometry({"type": "Point", "coordinates": [27.4, 42.5, 12.0]}, "EPSG:4326").geometry == {
        "type": "Point", "coordinates": [27.4, 42.5]}
