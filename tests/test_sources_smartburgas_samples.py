"""The bundled Smart Burgas samples honour the observed feed format, quirks included."""

from __future__ import annotations

import json
import re
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from adapter.samples.generate_smartburgas import generate
from adapter.sources.smartburgas_feeds import FEEDS, SAMPLES_DIR

SOFIA = ZoneInfo("Europe/Sofia")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
ZONE_TIME = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
LANGS = ("bg", "en")

PROPERTY_ORDER = {
    "air_quality": ["id", "name", "global_air_quality", "data", "geometry"],
    "traffic": ["detector_id", "name", "data", "geometry"],
    "car_parks": ["parking_id", "name", "description", "total_lots", "total_free_lots", "load",
                  "pic_url", "data", "geometry"],
    "waste": ["MobileCenterId", "MobileCenterName", "MobileCenterAddress",
              "MobileCenterDescription", "MobileCenterPics", "Citizen_Number", "Garbage_Weight",
              "data", "geometry"],
    "cctv": ["publicname", "description", "pic_url", "video_url2", "position"],
    "billing_machines": ["name", "description", "pic_url"],
    "ev_chargers": ["name", "description", "pic_url"],
    "taxi_ranks": ["name", "description", "pic_url"],
    "paid_parking_zones": ["Id", "Name", "ZoneType", "StartTime", "EndTime", "PricePerHo",
                           "SmsNumber", "Places", "DisabledPl", "ZoneNumber", "Weekdays",
                           "ZonePaymen", "NameEn", "NameRu", "Descriptio", "Descript_1", "Created",
                           "Modified", "CreatedBy", "ModifiedBy", "Descript_2"],
    "admin_regions": ["CAU"],
}
AIR_ROW = ["SO2", "SO2_unit", "NO2", "NO2_unit", "O3", "O3_unit", "h2s", "h2s_unit", "pm10",
           "pm10_unit", "pm2.5", "pm2.5_unit", "Benzene", "Benzene_unit", "Styrene",
           "Styrene_unit", "time"]
ROW_ORDER = {
    "air_quality": AIR_ROW, "traffic": ["car_count", "car_speed", "time"],
    "car_parks": ["free_lots", "time"],
    "waste": ["Garbage_id", "Garbage_name", "Garbage_Colour", "Garbage_Weight",
              "Garbage_Weight_type", "time"],
}
NEWEST_FIRST = {"air_quality": True, "car_parks": True, "traffic": False, "waste": False}


def paths() -> list[tuple[str, str | None]]:
    return [(name, lang) for name, spec in FEEDS.items()
            for lang in (LANGS if spec.translated else (None,))]


def load(name: str, lang: str | None = "bg") -> dict[str, Any]:
    return json.loads(FEEDS[name].sample_path(lang).read_text("utf-8"))


def props(name: str, lang: str | None = "bg") -> list[dict[str, Any]]:
    spec = FEEDS[name]
    return [f["properties"] for f in load(name, lang)[spec.array_key]]


def local(text: str, fold: int = 0) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=SOFIA, fold=fold)


def test_committed_samples_are_what_the_generator_writes(tmp_path: Path) -> None:
    for written in generate(tmp_path):
        relative = written.relative_to(tmp_path)
        assert (SAMPLES_DIR / relative).read_bytes() == written.read_bytes(), relative


@pytest.mark.parametrize(("name", "lang"), paths())
def test_envelope_and_feature_key_order(name: str, lang: str | None) -> None:
    spec = FEEDS[name]
    payload = load(name, lang)
    assert list(payload) == ["type", spec.array_key] and payload["type"] == "FeatureCollection"
    for feature in payload[spec.array_key]:
        if spec.array_key == "features1":
            assert list(feature) == ["type", "properties"]  # geometry lives in properties
            assert list(feature["properties"]["geometry"]) == ["type", "coordinates"]
        elif name in ("paid_parking_zones", "admin_regions"):
            assert list(feature) == ["type", "geometry", "properties"]
        else:
            assert list(feature) == ["type", "properties", "geometry"]
        assert list(feature["properties"]) == PROPERTY_ORDER[name]
        for row in feature["properties"].get("data", []):
            assert list(row) == ROW_ORDER[name]


@pytest.mark.parametrize(("name", "lang"), paths())
def test_text_layout(name: str, lang: str | None) -> None:
    text = FEEDS[name].sample_path(lang).read_text("utf-8")
    assert "\r" not in text
    if name in ("paid_parking_zones", "admin_regions"):
        lines = text.split("\n")
        assert lines[0] == '{"type":"FeatureCollection", "features": ['
        assert lines[-1] == "]}"
        body = lines[1:-1]
        assert all(line.endswith(",") for line in body[:-1]) and not body[-1].endswith(",")
        assert all(line.startswith('{"type":"Feature","geometry":') for line in body)
    else:
        assert text.startswith('{\n\t"type": "FeatureCollection",\n')
        assert re.search(r"\[\n\t+27\.\d+,\n\t+42\.\d+\n\t+\]", text)  # one number per line
        assert "  " not in re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # tabs only, outside strings


@pytest.mark.parametrize("name", [n for n, s in FEEDS.items() if s.array_key == "features1"])
@pytest.mark.parametrize("lang", LANGS)
def test_features1_feeds_hold_only_strings(name: str, lang: str) -> None:
    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key != "geometry":
                    walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]")
        else:
            assert isinstance(value, str), where

    for i, p in enumerate(props(name, lang)):
        walk(p, f"features1[{i}]")
        assert all(isinstance(c, float) for c in p["geometry"]["coordinates"])


@pytest.mark.parametrize(("name", "newest_first"), NEWEST_FIRST.items())
def test_series_order_and_naive_local_times(name: str, newest_first: bool) -> None:
    for p in props(name):
        times = [row["time"] for row in p["data"]]
        assert times and all(TIME.match(t) for t in times)
        instants = [local(t).timestamp() for t in times]
        if name == "car_parks" and p["parking_id"] == "3":
            continue  # the autumn fold: checked on its own below
        expected = sorted(instants, reverse=newest_first)
        assert instants == expected, p.get("name")


def test_air_quality_crosses_the_spring_daylight_saving_change() -> None:
    for p in props("air_quality"):
        times = [row["time"] for row in p["data"]]
        assert len(times) == 72 and times[0].startswith("2026-03-30 15:00:")
        i = next(i for i, t in enumerate(times) if t.startswith("2026-03-29 04:00"))
        assert times[i + 1].startswith("2026-03-29 02:00")  # 03:00 does not exist that night
        utc = [local(t).timestamp() for t in times]
        assert all(round((a - b) / 3600) == 1 for a, b in pairwise(utc))
        assert all(re.match(r"\d{2}:00:(0[4-9]|1[0-5])$", t[11:]) for t in times)


def test_air_quality_reports_pollutant_subsets_with_empty_units() -> None:
    stations = props("air_quality")
    for p in stations:
        for row in p["data"]:
            for pollutant in AIR_ROW[:-1:2]:
                assert (row[pollutant] == "") == (row[f"{pollutant}_unit"] == "")
                if row[pollutant]:
                    assert re.match(r"^\d+(\.\d{1,4})?$", row[pollutant])
                    assert not row[pollutant].endswith(".0")
    only_pm10 = stations[-1]["data"][0]
    assert [k for k in AIR_ROW[:-1:2] if only_pm10[k]] == ["pm10"]
    assert {row["h2s_unit"] for row in stations[0]["data"]} == {"mg/m3"}
    assert len(str(stations[-1]["geometry"]["coordinates"][0]).split(".")[1]) == 14
    station2 = stations[1]["data"]
    assert station2[0]["pm10"] == "" and station2[30]["pm10"] != ""


def test_traffic_window_counts_and_placeholders() -> None:
    features = props("traffic")
    names = {p["detector_id"]: p["name"] for p in features}
    assert names["40"] == "ddd" and names["111"] == ""
    ids = [p["detector_id"] for p in features]
    assert len(ids) == 14 and ids.count("57") == 2
    for p in features:
        assert all(int(row["car_count"]) % 4 == 0 for row in p["data"])
        assert all(7 <= int(row["car_speed"]) <= 75 for row in p["data"])
    full = features[0]["data"]
    assert len(full) == 96 and full[0]["time"].startswith("2026-03-29 02:0")
    assert full[-1]["time"].startswith("2026-03-30 02:")


def test_car_parks_have_a_stale_sensor_across_the_autumn_change() -> None:
    parks = props("car_parks")
    assert len(parks) == 7
    stale = next(p for p in parks if p["data"][0]["time"].startswith("2024-"))
    times = [row["time"][:16] for row in stale["data"]]
    assert times.count("2024-10-27 03:01") == 2  # the repeated hour after 04:00 EEST -> 03:00 EET
    for p in parks:
        assert p["total_free_lots"] == p["data"][0]["free_lots"]
        total, free = int(p["total_lots"]), int(p["total_free_lots"])
        assert p["load"] == str(round(100 * (total - free) / total))
    assert any(row["free_lots"] == "0" for p in parks for row in p["data"])
    assert any(p["pic_url"] == "" for p in parks) and any(p["pic_url"] for p in parks)


def test_waste_rows_share_times_and_units_are_mixed() -> None:
    centres = props("waste")
    assert len(centres) == 5
    names = {p["MobileCenterId"]: p["MobileCenterName"] for p in centres}
    assert names["3"] == "МЦ04"
    units = set()
    for p in centres:
        assert p["MobileCenterPics"].startswith("http") and p["MobileCenterPics"].endswith(" " * 190)
        assert "–" in p["MobileCenterDescription"]
        rows = p["data"]
        assert all(row["time"].endswith(" 10:12:00") for row in rows)
        assert rows == sorted(rows, key=lambda r: (r["time"], int(r["Garbage_id"])))
        assert all(re.match(r"^#[0-9a-f]{6}$", row["Garbage_Colour"]) for row in rows)
        units |= {row["Garbage_Weight_type"] for row in rows}
    assert units == {"КГ", "БР", "БРОЙ"}
    assert any("  " in p["MobileCenterDescription"] for p in centres)
    catalogue = {row["Garbage_name"] for p in centres for row in p["data"]}
    assert any("\u0065" in n and re.search("[а-я]", n) for n in catalogue)  # Latin e in Cyrillic
    assert any(n != n.strip() for n in catalogue)


def test_point_feeds_quirks() -> None:
    cameras = props("cctv", "en")
    assert len(cameras) == 11 and all(isinstance(c["position"], int) for c in cameras)
    assert any(re.search("[А-Яа-я]", c["publicname"]) and not re.search("[А-Яа-я]", c["description"])
               for c in cameras)
    machines = props("billing_machines")
    assert len(machines) == 48 and len({m["description"] for m in machines}) == 1
    assert any("I-ви" in m["name"] for m in machines)
    ev = props("ev_chargers")
    assert len(ev) == 17 and sum(e["pic_url"] is None for e in ev) == 6
    assert any("„" in e["name"] for e in ev) and any(e["name"].endswith(" ") for e in ev)
    taxis = props("taxi_ranks")
    assert len(taxis) == 59
    assert all(re.match(r"^(2|3|4|5|6|7|10) броя таксиметрови автомобила$", t["description"])
               for t in taxis)
    assert 15 <= sum(t["name"].endswith(" ") for t in taxis) <= 25
    text = FEEDS["taxi_ranks"].sample_path("bg").read_text("utf-8")
    assert '\\"' in text and "\u0406\u0406\u0406" in text and "Симеон I-ви" in text
    assert "Симеон \u0406-ви" in text and "Изрев" in text


def test_english_variants_are_mostly_english_with_a_bulgarian_straggler() -> None:
    cyrillic = re.compile("[А-Яа-я]")
    for name, field in [("air_quality", "name"), ("traffic", "name"), ("car_parks", "name"),
                        ("billing_machines", "name"), ("ev_chargers", "name"),
                        ("taxi_ranks", "name"), ("cctv", "publicname")]:
        bg, en = props(name, "bg"), props(name, "en")
        assert len(bg) == len(en)
        stragglers = [p[field] for p in en if cyrillic.search(p[field])]
        assert 1 <= len(stragglers) <= max(1, len(en) // 10), name


def test_coordinates_are_in_burgas_with_mixed_precision() -> None:
    decimals = set()
    for name, spec in FEEDS.items():
        if name in ("paid_parking_zones", "admin_regions"):
            continue
        for feature in load(name)[spec.array_key]:
            geometry = (feature["properties"]["geometry"] if spec.array_key == "features1"
                        else feature["geometry"])
            if not geometry["coordinates"]:
                assert (name, feature["properties"].get("detector_id")) == ("traffic", "118")
                continue  # the one detector listed without a position (deliberately broken)
            lon, lat = geometry["coordinates"]
            assert 27.37 <= lon <= 27.53 and 42.44 <= lat <= 42.57, (name, lon, lat)
            decimals.add(len(repr(lon).split(".")[1]))
    assert min(decimals) <= 3 and max(decimals) >= 13


def test_paid_parking_zones() -> None:
    features = load("paid_parking_zones", None)["features"]
    zones = [f["properties"] for f in features]
    assert len(zones) == 15
    assert sum(z["ZoneType"] == 2 for z in zones) == 11 and sum(z["ZoneType"] == 1 for z in zones) == 4
    ids = [z["Id"] for z in zones]
    assert ids != sorted(ids) and max(ids) - min(ids) + 1 > len(ids)
    for f, z in zip(features, zones, strict=True):
        ring = f["geometry"]["coordinates"][0]
        assert f["geometry"]["type"] == "Polygon" and len(f["geometry"]["coordinates"]) == 1
        assert ring[0] == ring[-1] and len(ring) >= 4
        assert z["SmsNumber"] == ("1356" if z["ZoneType"] == 2 else "1357")
        for key in ("StartTime", "EndTime", "Created", "Modified"):
            assert z[key] == "" or ZONE_TIME.match(z[key])
        assert all(isinstance(z[k], int) for k in ("Id", "ZoneType", "PricePerHo", "Places",
                                                   "DisabledPl", "ZoneNumber", "Weekdays"))
    assert {z["Weekdays"] for z in zones} == {31, 127}
    assert any(z["StartTime"] == "" for z in zones)
    assert any(z["StartTime"] and not z["StartTime"].startswith("2000/01/01") for z in zones)


def test_admin_regions() -> None:
    features = load("admin_regions", None)["features"]
    assert 8 <= len(features) <= 10
    assert features[0]["geometry"]["type"] == "Polygon"
    assert features[-1]["geometry"]["type"] == "MultiPolygon"
    names = [f["properties"]["CAU"] for f in features]
    assert all(re.match(r'^ДЦАУ "[А-Я ]+"$', n) for n in names)
    assert 'ДЦАУ "ЦЕНТЪР"' in names and names[-1] == 'ДЦАУ "ПРИМОРИЕ"'
    rings = [r for f in features for r in (
        f["geometry"]["coordinates"] if f["geometry"]["type"] == "Polygon"
        else [part[0] for part in f["geometry"]["coordinates"]])]
    assert all(r[0] == r[-1] and len(r) > 40 for r in rings)
    assert max(lat for r in rings for _, lat in r) > 42.6
