"""Generate the bundled GTFS sample ``burgasbus.zip``: Бургасбус, 5 routes, 40 stops, trips, shapes.

Written by us with approximate real positions; deterministic (same bytes on every run):

    python -m adapter.samples.gtfs.generate

The stop table is shared with the WFS bus-stop sample layer (``adapter/samples/gis``).
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
ZIP_PATH = HERE / "burgasbus.zip"
AGENCY_ID = "BB"

# id, code, name, English name, district, lat, lon
STOPS: list[tuple[str, str, str, str, str, float, float]] = [
    ("S01", "1001", "Автогара Юг", "Bus Station South", "Център", 42.49070, 27.47170),
    ("S02", "1002", "Централна гара", "Central Railway Station", "Център", 42.49130, 27.47270),
    ("S03", "1003", "Пл. „Тройката“", "Troykata Square", "Център", 42.49560, 27.47000),
    ("S04", "1004", "Общината", "Municipality", "Център", 42.49420, 27.47420),
    ("S05", "1005", "Ул. „Александровска“", "Aleksandrovska St.", "Център", 42.49750, 27.47150),
    ("S06", "1006", "Бул. „Демокрация“", "Demokratsia Blvd.", "Възраждане", 42.50120, 27.46810),
    ("S07", "1007", "Бул. „Стефан Стамболов“", "Stefan Stambolov Blvd.", "Възраждане", 42.50350, 27.46200),
    ("S08", "1008", "Братя Миладинови", "Bratya Miladinovi", "Братя Миладинови", 42.50720, 27.45980),
    ("S09", "1009", "Ж.к. „Славейков“", "Slaveykov", "Славейков", 42.51380, 27.45300),
    ("S10", "1010", "Ж.к. „Изгрев“ – Пазара", "Izgrev Market", "Изгрев", 42.52050, 27.45820),
    ("S11", "1011", "Ж.к. „Изгрев“ – бл. 44", "Izgrev Block 44", "Изгрев", 42.52300, 27.46400),
    ("S12", "1012", "Ж.к. „Зорница“", "Zornitsa", "Зорница", 42.51550, 27.47250),
    ("S13", "1013", "Ж.к. „Лазур“ – Пазара", "Lazur Market", "Лазур", 42.50470, 27.47900),
    ("S14", "1014", "Хотел „Приморец“", "Primorets Hotel", "Център", 42.49200, 27.48100),
    ("S15", "1015", "Морска градина – вход", "Sea Garden Entrance", "Център", 42.49700, 27.48000),
    ("S16", "1016", "Северен плаж", "North Beach", "Лазур", 42.50850, 27.48350),
    ("S17", "1017", "Автогара Запад", "Bus Station West", "Победа", 42.50920, 27.43850),
    ("S18", "1018", "Кв. „Победа“", "Pobeda", "Победа", 42.49780, 27.44700),
    ("S19", "1019", "Долно Езерово", "Dolno Ezerovo", "Долно Езерово", 42.50500, 27.38600),
    ("S20", "1020", "Горно Езерово", "Gorno Ezerovo", "Горно Езерово", 42.52300, 27.39850),
    ("S21", "1021", "Ветрен – Минерални бани", "Vetren Mineral Baths", "Ветрен", 42.56200, 27.40100),
    ("S22", "1022", "Бизнес парк Славейков", "Slaveykov Business Park", "Славейков", 42.51800, 27.44400),
    ("S23", "1023", "Ж.к. „Меден рудник“ – зона А", "Meden Rudnik Zone A", "Меден рудник", 42.45900, 27.41900),
    ("S24", "1024", "Ж.к. „Меден рудник“ – зона Б", "Meden Rudnik Zone B", "Меден рудник", 42.45450, 27.41200),
    ("S25", "1025", "Ж.к. „Меден рудник“ – зона В", "Meden Rudnik Zone V", "Меден рудник", 42.45200, 27.42300),
    ("S26", "1026", "Бул. „Княгиня Мария Луиза“", "Knyaginya Maria Luiza Blvd.", "Център", 42.48650, 27.45600),
    ("S27", "1027", "Университет „Проф. д-р Асен Златаров“", "Prof. Asen Zlatarov University", "Меден рудник",
     42.47350, 27.43400),
    ("S28", "1028", "Атанасовско езеро", "Atanasovsko Lake", "Лазур", 42.52900, 27.48800),
    ("S29", "1029", "Солници", "Salt Pans", "Сарафово", 42.53800, 27.49200),
    ("S30", "1030", "Летище Бургас", "Burgas Airport", "Сарафово", 42.56650, 27.51350),
    ("S31", "1031", "Сарафово – Център", "Sarafovo Centre", "Сарафово", 42.56050, 27.52100),
    ("S32", "1032", "Сарафово – Плажа", "Sarafovo Beach", "Сарафово", 42.56300, 27.52700),
    ("S33", "1033", "Път Бургас – Созопол", "Burgas–Sozopol Road", "Крайморие", 42.47600, 27.47300),
    ("S34", "1034", "Пода", "Poda", "Крайморие", 42.45600, 27.47700),
    ("S35", "1035", "Крайморие – Център", "Kraymorie Centre", "Крайморие", 42.44600, 27.50300),
    ("S36", "1036", "Крайморие – Пристанище", "Kraymorie Harbour", "Крайморие", 42.44350, 27.50850),
    ("S37", "1037", "Мол „Галерия“", "Galleria Mall", "Братя Миладинови", 42.50830, 27.45570),
    ("S38", "1038", "Ж.к. „Изгрев“ – Болница", "Izgrev Hospital", "Изгрев", 42.52600, 27.45300),
    ("S39", "1039", "Бул. „Тодор Александров“", "Todor Aleksandrov Blvd.", "Славейков", 42.51100, 27.44600),
    ("S40", "1040", "Ж.к. „Лазур“ – Училище", "Lazur School", "Лазур", 42.50750, 27.47500),
]

# short name, long name, colour, stops outbound
ROUTES: list[tuple[str, str, str, list[str]]] = [
    ("1", "Ж.к. „Лазур“ – Център – Крайморие", "E30613",
     ["S40", "S13", "S15", "S14", "S04", "S01", "S33", "S34", "S35", "S36"]),
    ("4", "Автогара Юг – Университет – Ж.к. „Меден рудник“", "0072BC",
     ["S01", "S02", "S26", "S27", "S23", "S24", "S25"]),
    ("11", "Автогара Юг – Летище – Сарафово", "009640",
     ["S01", "S03", "S05", "S06", "S12", "S28", "S29", "S30", "S31", "S32"]),
    ("15", "Автогара Запад – Ж.к. „Изгрев“ – Северен плаж", "F7A800",
     ["S17", "S39", "S22", "S09", "S10", "S38", "S11", "S12", "S13", "S16"]),
    ("17", "Автогара Юг – Горно Езерово – Ветрен", "8E44AD",
     ["S01", "S05", "S06", "S07", "S08", "S37", "S17", "S19", "S20", "S21"]),
]

DEPARTURES = ["06:00:00", "08:30:00", "12:15:00", "17:40:00", "23:50:00"]  # last runs past midnight


def _dist_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlat = math.radians(b[0] - a[0])
    dlon = math.radians(b[1] - a[1]) * math.cos(math.radians((a[0] + b[0]) / 2))
    return 6_371_000 * math.hypot(dlat, dlon)


def _add(hms: str, seconds: float) -> str:
    h, m, s = (int(p) for p in hms.split(":"))
    total = h * 3600 + m * 60 + s + int(round(seconds / 60.0)) * 60
    return f"{total // 3600:02d}:{total % 3600 // 60:02d}:{total % 60:02d}"  # GTFS allows hours >= 24


def _csv(rows: Sequence[Sequence[object]], *, bom: bool = False) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8")


def build() -> dict[str, bytes]:
    """The feed's files, name -> bytes."""
    where = {s[0]: (s[5], s[6]) for s in STOPS}
    files: dict[str, bytes] = {}
    # A BOM and CRLF, as exported by spreadsheet tools: readers must cope.
    files["agency.txt"] = _csv([
        ["agency_id", "agency_name", "agency_url", "agency_timezone", "agency_lang", "agency_phone"],
        [AGENCY_ID, "Бургасбус", "https://www.burgasbus.info", "Europe/Sofia", "bg", "+359 56 851 260"],
    ], bom=True)
    files["stops.txt"] = _csv(
        [["stop_id", "stop_code", "stop_name", "stop_desc", "stop_lat", "stop_lon", "wheelchair_boarding"]]
        + [[sid, code, name, district, f"{lat:.5f}", f"{lon:.5f}", 1 if int(code) % 3 else 2]
           for sid, code, name, _en, district, lat, lon in STOPS])
    files["routes.txt"] = _csv(
        [["route_id", "agency_id", "route_short_name", "route_long_name", "route_type", "route_color",
          "route_text_color"]]
        + [[f"R{short}", AGENCY_ID, short, long, 3, colour, "FFFFFF"] for short, long, colour, _ in ROUTES])
    files["calendar.txt"] = _csv([
        ["service_id", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
         "start_date", "end_date"],
        ["WD", 1, 1, 1, 1, 1, 0, 0, "20250101", "20251231"],
        ["WE", 0, 0, 0, 0, 0, 1, 1, "20250101", "20251231"],
    ])
    trips: list[list[object]] = [["route_id", "service_id", "trip_id", "trip_headsign", "direction_id", "shape_id"]]
    times: list[list[object]] = [["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence"]]
    shapes: list[list[object]] = [
        ["shape_id", "shape_pt_lat", "shape_pt_lon", "shape_pt_sequence", "shape_dist_traveled"]]
    for short, _long, _colour, outbound in ROUTES:
        for direction, stops in enumerate((outbound, outbound[::-1])):
            shape_id = f"SH{short}_{direction}"
            # Shape: the stops plus a midpoint between each pair, with running distance in metres.
            points: list[tuple[float, float]] = []
            for a, b in zip(stops, stops[1:], strict=False):
                pa, pb = where[a], where[b]
                points += [pa, ((pa[0] + pb[0]) / 2 + 0.0004, (pa[1] + pb[1]) / 2 - 0.0003)]
            points.append(where[stops[-1]])
            travelled = 0.0
            for seq, point in enumerate(points, start=1):
                if seq > 1:
                    travelled += _dist_m(points[seq - 2], point)
                shapes.append([shape_id, f"{point[0]:.6f}", f"{point[1]:.6f}", seq, f"{travelled:.1f}"])
            for service in ("WD", "WE"):
                for n, start in enumerate(DEPARTURES if service == "WD" else DEPARTURES[1:4]):
                    trip_id = f"T{short}_{direction}_{service}_{n + 1:02d}"
                    trips.append([f"R{short}", service, trip_id, STOPS[_index(stops[-1])][2],
                                  direction, shape_id])
                    clock = start
                    for seq, stop in enumerate(stops, start=1):
                        if seq > 1:
                            # ~22 km/h average in town plus 30 s dwell.
                            clock = _add(clock, _dist_m(where[stops[seq - 2]], where[stop]) / 6.1 + 30)
                        times.append([trip_id, clock, clock, stop, seq])
    files["trips.txt"] = _csv(trips)
    files["stop_times.txt"] = _csv(times)
    files["shapes.txt"] = _csv(shapes)
    files["feed_info.txt"] = _csv([
        ["feed_publisher_name", "feed_publisher_url", "feed_lang", "feed_start_date", "feed_end_date",
         "feed_version"],
        ["Burgas NGSI-LD adapter (sample)", "https://burgas-ngsi-ld.github.io/", "bg", "20250101",
         "20251231", "sample-1"],
    ])
    return files


def _index(stop_id: str) -> int:
    return next(i for i, s in enumerate(STOPS) if s[0] == stop_id)


def write(path: Path = ZIP_PATH) -> Path:
    """Write the zip with fixed timestamps so the bytes are reproducible."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in build().items():
            info = zipfile.ZipInfo(name, date_time=(2025, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return path


if __name__ == "__main__":
    print(write())
