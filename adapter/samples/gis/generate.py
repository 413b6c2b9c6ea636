"""Generate the bundled GIS sample layers for Burgas (written by us, approximate real positions).

Deterministic: the same files on every run.

    python -m adapter.samples.gis.generate

- ``beaches.layer.json`` + ``beaches.query.json``: an ArcGIS FeatureServer layer (metadata and the
  full query answer, Esri JSON) in BGS2005 / CCS2005 (EPSG:7801), Polygon/MultiPolygon rings.
- ``bus_stops.wfs.geojson``: a WFS 2.0 GetFeature answer (application/json) in WGS 84 / UTM 35N
  (EPSG:32635), points; the stops of the GTFS sample.
- ``parks.ogc.geojson``: an OGC API Features collection in WGS84 (CRS84), polygons, one with a hole.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from adapter.geometry import from_wgs84, transformer
from adapter.samples.gtfs.generate import ROUTES, STOPS

HERE = Path(__file__).resolve().parent
CCS2005 = 7801
UTM35N = 32635


def _ms(day: str) -> int:
    """Epoch milliseconds of a Sofia-summer local midnight given as YYYY-MM-DD (UTC+3)."""
    dt = datetime.fromisoformat(day + "T00:00:00+03:00")
    return int(dt.astimezone(UTC).timestamp() * 1000)


def _rect(lat: float, lon: float, length: float, width: float, bearing: float, epsg: int,
          *, clockwise: bool) -> list[list[float]]:
    """A closed rectangle ring around (lat, lon), long side along ``bearing`` (degrees from north)."""
    cx, cy = from_wgs84(lon, lat, epsg)
    ux, uy = math.sin(math.radians(bearing)), math.cos(math.radians(bearing))  # along the shore
    vx, vy = uy, -ux                                                           # across it
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]  # counter-clockwise when v points right of u
    ring = [[cx + a * ux * length / 2 + b * vx * width / 2, cy + a * uy * length / 2 + b * vy * width / 2]
            for a, b in corners]
    area2 = sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True))
    if (area2 < 0) != clockwise:
        ring.reverse()
    return [[round(x, 3), round(y, 3)] for x, y in ring] + [[round(ring[0][0], 3), round(ring[0][1], 3)]]


# name, English name, lat, lon, length m, width m, shore bearing, type, lifeguard, blue flag, concession
BEACHES: list[tuple[Any, ...]] = [
    ("Централен плаж", "Central Beach", 42.49350, 27.48550, 1400, 60, 20, "градски", 1, 1,
     "Община Бургас"),
    ("Северен плаж", "North Beach", 42.50950, 27.48800, 900, 45, 30, "градски", 1, 1,
     "Община Бургас"),
    ("Атанасовска коса", "Atanasovska Kosa", 42.53000, 27.49600, 1500, 40, 20, "див", 0, 0, ""),
    ("Сарафово", "Sarafovo", 42.56250, 27.52800, 500, 35, 60, "курортен", 1, 1,
     "Сарафово Бийч ЕООД"),
    ("Крайморие", "Kraymorie", 42.44500, 27.51100, 700, 35, 100, "курортен", 1, 0,
     "Крайморие Плаж ООД"),
    ("Ченгене скеле", "Chengene Skele", 42.43900, 27.48200, 400, 25, 70, "див", 0, 0, ""),
]

BEACH_FIELDS = [
    {"name": "OBJECTID", "type": "esriFieldTypeOID", "alias": "OBJECTID"},
    {"name": "NAME", "type": "esriFieldTypeString", "alias": "Име", "length": 100},
    {"name": "NAME_EN", "type": "esriFieldTypeString", "alias": "Name", "length": 100},
    {"name": "BEACH_TYPE", "type": "esriFieldTypeString", "alias": "Вид", "length": 20},
    {"name": "LENGTH_M", "type": "esriFieldTypeDouble", "alias": "Дължина (м)"},
    {"name": "AREA_M2", "type": "esriFieldTypeDouble", "alias": "Площ (м2)"},
    {"name": "LIFEGUARD", "type": "esriFieldTypeSmallInteger", "alias": "Спасител"},
    {"name": "BLUE_FLAG", "type": "esriFieldTypeSmallInteger", "alias": "Син флаг"},
    {"name": "CONCESSION", "type": "esriFieldTypeString", "alias": "Концесионер", "length": 100},
    {"name": "SEASON_OPEN", "type": "esriFieldTypeDate", "alias": "Начало на сезона", "length": 8},
    {"name": "SEASON_CLOSE", "type": "esriFieldTypeDate", "alias": "Край на сезона", "length": 8},
    {"name": "LAST_INSPECTION", "type": "esriFieldTypeDate", "alias": "Последна проверка", "length": 8},
    {"name": "GlobalID", "type": "esriFieldTypeGlobalID", "alias": "GlobalID", "length": 38},
]
SR_7801 = {"wkid": CCS2005, "latestWkid": CCS2005}


def _ring_area(ring: list[list[float]]) -> float:
    return abs(sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:], strict=False))) / 2


def beaches() -> tuple[dict[str, Any], dict[str, Any]]:
    """The ArcGIS layer metadata and its full query answer (Esri JSON, EPSG:7801)."""
    features = []
    for oid, (name, name_en, lat, lon, length, width, bearing, kind, guard, flag, concession) in \
            enumerate(BEACHES, start=1):
        if name == "Сарафово":
            # Two sections either side of the fishing pier: one feature, two outer rings.
            rings = [_rect(lat - 0.0012, lon - 0.0030, length, width, bearing, CCS2005, clockwise=True),
                     _rect(lat + 0.0012, lon + 0.0030, length, width, bearing, CCS2005, clockwise=True)]
        else:
            rings = [_rect(lat, lon, length, width, bearing, CCS2005, clockwise=True)]
        features.append({
            "attributes": {
                "OBJECTID": oid, "NAME": name, "NAME_EN": name_en, "BEACH_TYPE": kind,
                "LENGTH_M": float(length * len(rings)), "AREA_M2": round(sum(map(_ring_area, rings)), 1),
                "LIFEGUARD": guard, "BLUE_FLAG": flag, "CONCESSION": concession or None,
                "SEASON_OPEN": _ms("2025-06-01") if guard else None,
                "SEASON_CLOSE": _ms("2025-09-30") if guard else None,
                "LAST_INSPECTION": _ms(f"2025-05-{10 + oid:02d}"),
                "GlobalID": f"{{6B1D3C2A-0F4E-4E8A-9C11-{oid:012d}}}",
            },
            "geometry": {"rings": rings},
        })
    layer = {
        "currentVersion": 11.1, "id": 0, "name": "Плажове", "type": "Feature Layer",
        "description": "Плажна ивица на Община Бургас (примерни данни)",
        "geometryType": "esriGeometryPolygon", "objectIdField": "OBJECTID",
        "globalIdField": "GlobalID", "displayField": "NAME",
        "sourceSpatialReference": SR_7801,
        "extent": {"xmin": 655000, "ymin": 4697000, "xmax": 667000, "ymax": 4716000,
                   "spatialReference": SR_7801},
        "maxRecordCount": 1000, "standardMaxRecordCount": 2000,
        "supportedQueryFormats": "JSON, geoJSON, PBF",
        "advancedQueryCapabilities": {"supportsPagination": True, "supportsOrderBy": True,
                                      "supportsQueryWithResultType": True},
        "fields": BEACH_FIELDS,
    }
    query = {
        "objectIdFieldName": "OBJECTID", "globalIdFieldName": "GlobalID",
        "geometryType": "esriGeometryPolygon", "spatialReference": SR_7801,
        "fields": BEACH_FIELDS, "exceededTransferLimit": False, "features": features,
    }
    return layer, query


def bus_stops() -> dict[str, Any]:
    """A WFS 2.0 GetFeature JSON answer in EPSG:32635 with every bus stop."""
    served: dict[str, list[str]] = {}
    for short, _long, _colour, stops in ROUTES:
        for stop in stops:
            served.setdefault(stop, []).append(short)
    features = []
    for n, (sid, code, name, name_en, district, lat, lon) in enumerate(STOPS, start=1):
        x, y = from_wgs84(lon, lat, UTM35N)
        features.append({
            "type": "Feature", "id": f"bus_stops.{n}",
            "geometry": {"type": "Point", "coordinates": [round(x, 2), round(y, 2)]},
            "geometry_name": "geom",
            "properties": {
                "stop_id": sid, "stop_code": code, "name": name, "name_en": name_en,
                "district": district, "shelter": n % 4 != 0, "wheelchair": 1 if int(code) % 3 else 2,
                "routes": " ".join(served.get(sid, [])),
                "updated": f"2025-03-{1 + n % 28:02d}T09:30:00Z",
            },
        })
    return {"type": "FeatureCollection", "features": features, "totalFeatures": len(features),
            "numberMatched": len(features), "numberReturned": len(features),
            "timeStamp": "2025-06-01T08:00:00.000Z",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32635"}}}


# id, name, English name, category, lat, lon, length, width, bearing, district, playground, dogs, hole
PARKS: list[tuple[Any, ...]] = [
    ("park-01", "Морска градина", "Sea Garden", "крайморски парк", 42.49500, 27.48200, 2200, 350, 20,
     "Център", True, False, None),
    ("park-02", "Парк „Изгрев“", "Izgrev Park", "квартален парк", 42.52450, 27.45900, 500, 250, 45,
     "Изгрев", True, True, None),
    ("park-03", "Парк „Езеро Вая“", "Lake Vaya Park", "крайезерен парк", 42.50000, 27.42500, 600, 300, 0,
     "Победа", True, True, (150, 80)),
    ("park-04", "Парк „Минерални бани“", "Mineral Baths Park", "балнеопарк", 42.56500, 27.41600, 400, 300,
     10, "Ветрен", False, False, None),
    ("park-05", "Парк „Славейков“", "Slaveykov Park", "квартален парк", 42.51600, 27.44900, 300, 200,
     30, "Славейков", True, False, None),
    ("park-06", "Парк „Росенец“", "Rosenets Park", "горски парк", 42.43700, 27.46600, 1200, 800, 60,
     "Крайморие", False, True, None),
]


def parks() -> dict[str, Any]:
    """An OGC API Features items answer (CRS84) with every park."""
    back = transformer(UTM35N, 4326)
    features = []
    for (pid, name, name_en, category, lat, lon, length, width, bearing, district, playground, dogs,
         hole) in PARKS:
        rings_utm = [_rect(lat, lon, length, width, bearing, UTM35N, clockwise=False)]
        if hole:  # the pond: a clockwise inner ring (RFC 7946 right-hand rule)
            rings_utm.append(_rect(lat, lon, hole[0], hole[1], bearing, UTM35N, clockwise=True))
        area = _ring_area(rings_utm[0]) - sum(_ring_area(r) for r in rings_utm[1:])
        rings = [[[round(c, 7) for c in back.transform(x, y)] for x, y in ring] for ring in rings_utm]
        features.append({
            "type": "Feature", "id": pid,
            "geometry": {"type": "Polygon", "coordinates": rings},
            "properties": {
                "name": name, "nameEn": name_en, "category": category, "district": district,
                "areaHa": round(area / 10_000, 2), "openingHours": "Mo-Su 00:00-24:00",
                "playground": playground, "dogArea": dogs,
                "lastRenovated": f"20{17 + len(pid) % 3 + int(pid[-1]):02d}-05-1{pid[-1]}",
            },
        })
    return {"type": "FeatureCollection", "features": features, "numberMatched": len(features),
            "numberReturned": len(features), "timeStamp": "2025-06-01T08:00:00Z", "links": []}


def _write(name: str, payload: Any) -> Path:
    path = HERE / name
    path.write_bytes(orjson.dumps(payload, option=orjson.OPT_INDENT_2) + b"\n")
    return path


def write() -> list[Path]:
    """Write every sample layer next to this module."""
    layer, query = beaches()
    return [_write("beaches.layer.json", layer), _write("beaches.query.json", query),
            _write("bus_stops.wfs.geojson", bus_stops()), _write("parks.ogc.geojson", parks())]


if __name__ == "__main__":
    for written in write():
        print(written)
