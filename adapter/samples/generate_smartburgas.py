"""Generate the bundled Smart Burgas sample payloads (deterministic, seeded, our own data).

    python -m adapter.samples.generate_smartburgas            # (re)write adapter/samples/smartburgas
    python -m adapter.samples.generate_smartburgas --out DIR  # write elsewhere (tests compare bytes)

The files follow the observed format of the real feeds (see ``smartburgas/README.md``): key order,
``features`` vs ``features1``, geometry inside ``properties`` for ``features1`` feeds, every number a
string there, ``""`` for missing values, naive Europe/Sofia local times, newest-first or oldest-first
per feed, TAB-indented pretty printing (compact one-feature-per-line for the two static layers), and
the quirks the adapter must survive. Names, places, values and texts are invented for Burgas.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

SEED = 20260330
OUT_DIR = Path(__file__).resolve().parent / "smartburgas"
SOFIA = ZoneInfo("Europe/Sofia")
# "Now" of the samples: 2026-03-30 15:00 EEST, the day after the spring daylight-saving change.
NOW_UTC = datetime(2026, 3, 30, 12, 0, tzinfo=UTC)
PAD_WIDTH = 250  # MobileCenterPics is right-padded like a fixed-width DB column

Feature = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# small helpers


def rng_for(name: str) -> random.Random:
    """A generator per feed, so changing one feed leaves the others byte-identical."""
    return random.Random(f"{SEED}:{name}")


def local(instant: datetime) -> str:
    """Naive Europe/Sofia wall time as the feeds write it."""
    return instant.astimezone(SOFIA).strftime("%Y-%m-%d %H:%M:%S")


def num(value: float, decimals: int) -> str:
    """A decimal string with at most ``decimals`` decimals and no trailing zeros ("46", "2.5")."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def coord(rng: random.Random, lo: float, hi: float, decimals: int) -> float:
    """A coordinate in [lo, hi] rounded to ``decimals`` places."""
    return round(rng.uniform(lo, hi), decimals)


def point(lon: float, lat: float) -> dict[str, Any]:
    """A GeoJSON point, [lon, lat]."""
    return {"type": "Point", "coordinates": [lon, lat]}


TRANSLIT = dict(zip(
    "абвгдежзийклмнопрстуфхцчшщъьюяіѝ",
    ["a", "b", "v", "g", "d", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s",
     "t", "u", "f", "h", "ts", "ch", "sh", "sht", "a", "y", "yu", "ya", "i", "i"], strict=True))


def translit(text: str) -> str:
    """Bulgarian Cyrillic to Latin (the official streamlined system), keeping case."""
    out = []
    for ch in text:
        low = ch.lower()
        if low in TRANSLIT:
            latin = TRANSLIT[low]
            out.append(latin.capitalize() if ch != low else latin)
        else:
            out.append(ch)
    return "".join(out)


EN_WORDS = [
    (r"\bбул\.", "blvd. "), (r"\bул\.", "str. "), (r"\bж\.к\.?", "qt. "), (r"\bпл\.", "sq. "),
    (r"\bбл\.", "bl. "), (r"\bпред\b", "in front of"), (r"\bсрещу\b", "opposite"),
    (r"\bдо\b", "next to"), (r"\bи\b", "and"), (r"\bв паркинга\b", "in the car park"),
    (r"\bпарк\b", "park"), (r"\bгара\b", "station"), (r"\bПлощад\b", "Square"),
    (r"\bпазар\b", "market"), (r"\bболница\b", "hospital"), (r"\bхотел\b", "hotel"),
]


def to_english(text: str) -> str:
    """A plausible English rendering of a Bulgarian place text: common words, then transliteration."""
    for pattern, repl in EN_WORDS:
        text = re.sub(pattern, repl, text)
    # Keep the source's own spacing quirks (double/trailing spaces) but not the ones we added.
    text = re.sub(r"(?<=\.) (?= )", "", text)
    return translit(text)


def write_pretty(path: Path, collection: dict[str, Any]) -> None:
    """TAB-indented, one value per line, ``"key": value``, LF: the mock files' formatting."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(collection, ensure_ascii=False, indent="\t"), encoding="utf-8",
                    newline="\n")


def write_compact(path: Path, features: Sequence[Feature]) -> None:
    """The static layers' formatting: a header line, one compact feature per line, then ``]}``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ['{"type":"FeatureCollection", "features": [']
    for i, feature in enumerate(features):
        text = json.dumps(feature, ensure_ascii=False, separators=(",", ":"))
        lines.append(text + ("," if i < len(features) - 1 else ""))
    lines.append("]}")
    path.write_text("\n".join(lines), encoding="utf-8", newline="\n")


def collection(array_key: str, features: list[Feature]) -> dict[str, Any]:
    """The envelope: exactly ``type`` then the array, nothing else."""
    return {"type": "FeatureCollection", array_key: features}


# ---------------------------------------------------------------------------------------------
# air quality: features1, hourly, NEWEST first, 72 h crossing 2026-03-29 03:00 (EET -> EEST)

POLLUTANTS = ("SO2", "NO2", "O3", "h2s", "pm10", "pm2.5", "Benzene", "Styrene")
UNITS = {"h2s": "mg/m3"}  # every other pollutant is "ug/m3" (ASCII u)
# name: (typical, spread, decimals)
LEVELS = {"SO2": (6.0, 5.0, 1), "NO2": (28.0, 10.0, 1), "O3": (55.0, 18.0, 1),
          "h2s": (0.0022, 0.0007, 4), "pm10": (28.0, 12.0, 1), "pm2.5": (16.0, 7.0, 1),
          "Benzene": (0.9, 0.5, 1), "Styrene": (1.2, 0.8, 2)}
AIR_STATIONS = [
    # id, bg name, en name, global index, pollutants reported, lon, lat
    ("1", "Долно Езерово", "Dolno Ezerovo", "4",
     ("SO2", "NO2", "O3", "h2s", "pm10", "Benzene"), 27.3847, 42.5163),
    ("2", "Меден рудник", "Meden Rudnik", "3",
     ("SO2", "NO2", "O3", "h2s", "pm10", "Benzene"), 27.4183, 42.4572),
    ("3", "ДОАС „Никола Вапцаров“", "DOAS “Nikola Vaptsarov”", "2",
     ("SO2", "NO2", "O3", "pm10"), 27.4747, 42.5093),
    # The English feed forgets to translate this one (the Bulgarian straggler).
    ("4", "Горно Езерово", "Горно Езерово", "3",
     ("NO2", "pm10", "pm2.5", "Benzene", "Styrene"), 27.4011, 42.5307),
    ("5", "Лазур ", "Lazur ", "1", ("pm10",), 27.48318830211674, 42.51604927733718),
]
AIR_HOURS = 72


def air_quality(lang: str) -> dict[str, Any]:
    """Five stations, 72 hourly readings each, newest first."""
    rng = rng_for("air_quality")
    features = []
    for sid, bg, en, gaq, reported, lon, lat in AIR_STATIONS:
        rows = []
        previous: dict[str, str] | None = None
        for k in range(AIR_HOURS):
            instant = NOW_UTC - timedelta(hours=k) + timedelta(seconds=rng.randint(4, 15))
            day = (instant.astimezone(SOFIA) - timedelta(hours=1)).date()
            day_rng = random.Random(f"{SEED}:pm:{sid}:{day}")
            row: dict[str, str] = {}
            for p in POLLUTANTS:
                blank = p not in reported or (sid == "2" and p == "pm10" and k < 23)
                if blank:
                    value = ""
                elif p in ("pm10", "pm2.5"):
                    # A daily mean repeated every hour (it changes once a day, after 01:00).
                    typical, spread, dec = LEVELS[p]
                    value = num(max(1.0, day_rng.gauss(typical, spread / 2)), dec)
                else:
                    typical, spread, dec = LEVELS[p]
                    diurnal = 1 + 0.3 * math.sin((instant.hour - 8) / 24 * 2 * math.pi)
                    factor = diurnal if p != "O3" else 2 - diurnal
                    value = num(max(0.0001, rng.gauss(typical * factor, spread / 2)), dec)
                # Some hours read exactly like the previous hour, e.g. an unchanged 1 h mean.
                row[p] = value
                row[f"{p}_unit"] = "" if value == "" else UNITS.get(p, "ug/m3")
            if previous is not None and rng.random() < 0.06:
                row = {key: previous[key] for key in row}
            previous = row
            rows.append({**row, "time": local(instant)})
        features.append({"type": "Feature", "properties": {
            "id": sid, "name": bg if lang == "bg" else en, "global_air_quality": gaq,
            "data": rows, "geometry": point(lon, lat)}})
    return collection("features1", features)


# ---------------------------------------------------------------------------------------------
# traffic: features1, ~15 min, OLDEST first, a UTC-day window shown in local time

DETECTORS = [
    # id, bg name, en name, lon, lat
    ("39", "бул. Тодор Александров - изток", "Todor Aleksandrov Blvd. - east",
     27.460318702449, 42.502917765211),
    ("40", "ddd", "ddd", 27.447702514231, 42.508820316604),
    ("43", "бул. Захари Стоянов - юг", "Zahari Stoyanov Blvd. - south",
     27.469255321708, 42.526810941233),
    ("44", "бул. Захари Стоянов - север", "Zahari Stoyanov Blvd. - north",
     27.469401102867, 42.527233418812),
    ("52", "ул. Транспортна", "Transportna Str.", 27.440913867031, 42.503381204477),
    ("57", "бул. Демокрация - запад", "Demokratsia Blvd. - west",
     27.466514903127, 42.500122840519),
    ("58", "бул. Демокрация - изток", "Demokratsia Blvd. - east",
     27.471893022640, 42.501448735902),
    ("61", "бул. Стефан Стамболов / Меден рудник", "бул. Стефан Стамболов / Меден рудник",
     27.431208441913, 42.468052270815),
    ("64", "Пътен възел Лазур", "Lazur junction", 27.478322069513, 42.515711342088),
    ("75", "бул. Янко Комитов", "Yanko Komitov Blvd.", 27.451117709314, 42.531702239964),
    ("102", "Сарафово - входящ", "Sarafovo - inbound", 27.518843350672, 42.553309127730),
    ("111", "", "", 27.462511948806, 42.514870337125),
]
DUPLICATE_DETECTOR = "57"  # served twice: the second copy repeats its last readings


def traffic(lang: str) -> dict[str, Any]:
    """Twelve detectors over 2026-03-29 00:00Z..2026-03-30 00:00Z, plus one duplicated id."""
    rng = rng_for("traffic")
    start = datetime(2026, 3, 29, tzinfo=UTC)
    features = []
    duplicate: Feature | None = None
    for did, bg, en, lon, lat in DETECTORS:
        dropped = set(rng.sample(range(96), rng.choice((0, 0, 1, 2))))
        if did == "111":
            dropped |= {92, 93, 94}  # a long gap before the window's end
        base = rng.uniform(0.6, 1.4)
        rows = []
        for slot in range(96):
            if slot in dropped:
                continue
            instant = start + timedelta(minutes=15 * slot, seconds=rng.randint(5, 11 * 60))
            hour = instant.astimezone(SOFIA).hour + instant.minute / 60
            rush = math.exp(-((hour - 8.5) ** 2) / 3) + math.exp(-((hour - 17.5) ** 2) / 4)
            per_quarter = max(1, round(base * (3 + 55 * rush + 20 * (7 < hour < 21))
                                       * rng.uniform(0.8, 1.2)))
            speed = max(7, min(75, round(rng.gauss(52 - 30 * rush, 7))))
            # The feed reports a 15-min count scaled to vehicles per hour: always a multiple of 4.
            rows.append({"car_count": str(per_quarter * 4), "car_speed": str(speed),
                         "time": local(instant)})
        properties = {"detector_id": did, "name": bg if lang == "bg" else en, "data": rows,
                      "geometry": point(lon, lat)}
        features.append({"type": "Feature", "properties": properties})
        if did == DUPLICATE_DETECTOR:
            duplicate = {"type": "Feature", "properties": {
                **properties, "data": [dict(r) for r in rows[-6:]]}}
    assert duplicate is not None
    features.insert(len(features) - 2, duplicate)
    # A detector the platform still lists with no position (the map client's proxy skips such
    # features with a warning, §1.3): the adapter must reject it with its reason, and only it.
    features.append({"type": "Feature", "properties": {
        "detector_id": "118", "name": "бул. Иван Вазов" if lang == "bg" else "Ivan Vazov Blvd.",
        "data": [{"car_count": "48", "car_speed": "41", "time": local(start + timedelta(minutes=15 * k))}
                 for k in range(3)],
        "geometry": {"type": "Point", "coordinates": []}}})
    return collection("features1", features)


# ---------------------------------------------------------------------------------------------
# car parks: features1, hourly, NEWEST first; one stale sensor from October 2024

CAR_PARKS = [
    # id, bg name, en name, total, minute of logging, lon, lat, stale, picture
    ("3", "Паркинг Летен театър", "Summer Theatre Car Park", 164, 1,
     27.4846126931906, 42.4987712254851, True, ""),
    ("4", "Паркинг Хотел България", "Hotel Bulgaria Car Park", 96, 2,
     27.4698037207126, 42.4950612883417, False,
     "http://pics.smartburgas.eu/parking/smart/hotel-bulgaria.jpg"),
    ("5", "Паркинг Морска гара", "Passenger Port Car Park", 230, 1,
     27.4773504218734, 42.4894481025662, False, ""),
    ("6", "Паркинг Спортна зала „Бойчо Брънзов“", "Boycho Branzov Sports Hall Car Park", 140, 3,
     27.4573391824961, 42.5093271104592, False,
     "http://pics.smartburgas.eu/parking/smart/sport-hall.jpg"),
    ("8", "Паркинг Възраждане", "Vazrazhdane Car Park", 72, 2,
     27.4545210377421, 42.4985310468271, False, ""),
    ("9", "Паркинг Парк Езеро", "Паркинг Парк Езеро", 118, 3,
     27.4462381956207, 42.5174008239016, False, ""),
    ("11", "Паркинг Гара Бургас", "Burgas Railway Station Car Park", 205, 4,
     27.4659814407725, 42.4912640273854, False, ""),
]
PARK_HOURS = 48
STALE_END_UTC = datetime(2024, 10, 27, 14, 0, tzinfo=UTC)  # crosses 2024-10-27 04:00 EEST->03:00 EET


def car_parks(lang: str) -> dict[str, Any]:
    """Seven car parks, 48 hourly free-lot counts each, newest first."""
    rng = rng_for("car_parks")
    features = []
    for pid, bg, en, total, minute, lon, lat, stale, pic in CAR_PARKS:
        end = STALE_END_UTC if stale else NOW_UTC
        rows = []
        for k in range(PARK_HOURS):
            if pid == "5" and k == 30:
                continue  # the logger missed an hour
            instant = end - timedelta(hours=k) + timedelta(minutes=minute,
                                                          seconds=rng.randint(1, 14))
            hour = instant.astimezone(SOFIA).hour
            busy = 0.35 + 0.6 * math.exp(-((hour - 13) ** 2) / 18)
            free = max(0, min(total, round(total * (1 - busy) + rng.gauss(0, total * 0.05))))
            if pid == "4" and 11 <= hour <= 14:
                free = 0  # full at lunchtime
            rows.append({"free_lots": str(free), "time": local(instant)})
        free_now = int(rows[0]["free_lots"])
        load = round(100 * (total - free_now) / total)
        if lang == "bg":
            name = bg
            description = ("Обществен паркинг със система за отчитане на свободните места. "
                           "Повече информация: https://www.transportburgas.bg/bg/паркинги")
        else:
            name = en
            description = ("Public car park with a free-space counting system. "
                           "More information: https://www.transportburgas.bg/en/parking")
        features.append({"type": "Feature", "properties": {
            "parking_id": pid, "name": name, "description": description,
            "total_lots": str(total), "total_free_lots": str(free_now), "load": str(load),
            "pic_url": pic, "data": rows, "geometry": point(lon, lat)}})
    return collection("features1", features)


# ---------------------------------------------------------------------------------------------
# mobile waste centres: features1, one row per deposit, OLDEST first, always 10:12:00

GARBAGE = [
    # id, bg name (quirks kept), en name, colour, unit
    ("11", "Цв\u0065тни метали", "Non-ferrous metals", "#8a4b2c", "КГ"),  # Latin e in Cyrillic
    ("12", "Черни метали ", "Ferrous metals ", "#2b2b2b", "КГ"),
    ("13", "Стъкло (бутилки и буркани)", "Glass (bottles and jars)", "#1fae3a", "КГ"),
    ("14", "Пластмасови опаковки, ПЕТ бутилки", "Plastic packaging, PET bottles", "#f2d60b", "КГ"),
    ("15", "Хартия и картон", "Paper and cardboard", "#2f5fd0", "КГ"),
    ("16", " Едрогабаритно ел. оборудване", " Large electrical equipment", "#c02bc9", "БРОЙ"),
    ("17", "Дребно ел. оборудване", "Small electrical equipment", "#e7a6f0", "КГ"),
    ("18", "Луминесцентни лампи", "Fluorescent lamps", "#9ad45e", "БРОЙ"),
    ("19", "Батерии и акумулатори", "Batteries and accumulators", "#0f8f3c", "КГ"),
    ("20", "Лекарства с изтекъл срок", "Expired medicines", "#b3c96e", "КГ"),
    ("21", "Текстил и обувки", "Textiles and shoes", "#c4556e", "КГ"),
    ("22", "Автомобилни гуми", "Автомобилни гуми", "#555555", "БР"),
    ("23", "Опаковки от бои и лакове", "Paint and varnish containers", "#a9c4d1", "БРОЙ"),
    ("24", "Тонер касети", "Toner cartridges", "#303030", "БР"),
    ("26", "телевизори и монитори ", "tv sets and monitors ", "#3d1040", "БРОЙ"),
    ("27", "Компютри  и лаптопи", "Computers  and laptops", "#b8b8b8", "КГ"),
]
WASTE_CENTRES = [
    # id, name, bg address, en address, lon, lat, deposit days
    ("1", "МЦ01", "ж.к.Меден рудник, до бл.412", "Meden Rudnik qt., next to bl. 412",
     27.421374, 42.4559, 9),
    ("2", "МЦ02", "ж.к.Славейков, паркинг до бл.58", "Slaveykov qt., car park next to bl. 58",
     27.4614452, 42.5196301, 2),
    ("3", "МЦ04", "ж.к.Изгрев, ул.Ропотамо", "Izgrev qt., Ropotamo Str.",
     27.4702931, 42.5285517, 5),
    ("4", "МЦ03", "ж.к.Зорница, до бл.21", "Zornitsa qt., next to bl. 21", 27.4839, 42.5289, 3),
    ("5", "МЦ05", "кв.Сарафово, ул.Рибарска", "Sarafovo, Ribarska Str.",
     27.5192276, 42.5561033, 4),
]
WASTE_TIME = "10:12:00"


def waste_description(lang: str, spacing: str) -> str:
    """The centres' shared description; some centres have double spaces, all have an EN DASH."""
    if lang == "bg":
        return ("Работно време: Понеделник - Петък–9:00-17:00 ч., Събота–9:00-13:00 ч." + spacing
                + "Почивка: 13:00-13:30 ч. Информация: https://www.burgas.bg/bg/otpadaci" + spacing
                + "Мобилен пункт за безплатно предаване на излязло от употреба електрическо и "
                "електронно оборудване, батерии, луминесцентни лампи, лекарства с изтекъл срок, "
                "опаковки от бои и лакове, тонер касети, автомобилни гуми, текстил и обувки")
    return ("Opening hours: Monday - Friday–9:00-17:00, Saturday–9:00-13:00." + spacing
            + "Break: 13:00-13:30. Information: https://www.burgas.bg/en/waste" + spacing
            + "Mobile point for free hand-over of waste electrical and electronic equipment, "
            "batteries, fluorescent lamps, expired medicines, paint and varnish containers, "
            "toner cartridges, car tyres, textiles and shoes")


def waste(lang: str) -> dict[str, Any]:
    """Five mobile centres with deposits on a few days each, oldest first."""
    rng = rng_for("waste")
    first_day = datetime(2026, 2, 10)
    features = []
    for cid, name, addr_bg, addr_en, lon, lat, days in WASTE_CENTRES:
        dates = sorted(rng.sample(range(0, 45), days))
        rows = []
        total = 0.0
        for offset in dates:
            day = (first_day + timedelta(days=offset)).strftime("%Y-%m-%d")
            for gid, gbg, gen, colour, unit in sorted(rng.sample(GARBAGE, rng.randint(1, 5)),
                                                      key=lambda g: int(g[0])):
                if unit == "КГ":
                    weight = "0" if rng.random() < 0.08 else num(rng.uniform(0.1, 40.0), 2)
                    total += float(weight)
                else:
                    weight = str(rng.randint(1, 6))
                rows.append({"Garbage_id": gid, "Garbage_name": gbg if lang == "bg" else gen,
                             "Garbage_Colour": colour, "Garbage_Weight": weight,
                             "Garbage_Weight_type": unit, "time": f"{day} {WASTE_TIME}"})
        spacing = "  " if cid in ("1", "4") else " "
        features.append({"type": "Feature", "properties": {
            "MobileCenterId": cid, "MobileCenterName": name,
            "MobileCenterAddress": addr_bg if lang == "bg" else addr_en,
            "MobileCenterDescription": waste_description(lang, spacing),
            "MobileCenterPics": f"http://pics.smartburgas.eu/waste/mobile/{cid}.jpg".ljust(PAD_WIDTH),
            "Citizen_Number": str(rng.randint(3, 80)), "Garbage_Weight": num(total, 2),
            "data": rows, "geometry": point(lon, lat)}})
    return collection("features1", features)


# ---------------------------------------------------------------------------------------------
# CCTV: features, top-level geometry, no id; position is a JSON number

CAMERAS = [
    # bg name, en name, picture slug, stream slug, heading, lon, lat
    ("бул. Стефан Стамболов и ул. Транспортна", "Stefan Stambolov Blvd. and Transportna St",
     "transportna", "transportna", 250, 27.4357710337639, 42.4891043615218),
    ("Пристанище Бургас, Морска гара", "Port of Burgas, Passenger Terminal",
     "morskagara", "port", 135, 27.4781063381862, 42.4901274420361),
    ("Площад „Тройката“", "Troykata Square", "troykata", "troykata", 20,
     27.4662150938511, 42.4954238116074),
    ("Мост Сарафово", "Sarafovo Bridge", "sarafovo", "sarafovo-most", 95,
     27.5081352639198, 42.5470192314768),
    ("Морска градина, Казиното", "Sea Garden, the Casino", "casino", "casino", 300,
     27.4851709485054, 42.4983325104681),
    ("бул. Захари Стоянов и бул. Трансформаторна", "Zahari Stoyanov Blvd. and Transformatorna Blvd.",
     "zstoyanov", "zstoyanov", 180, 27.469011354446, 42.5253001618576),
    ("Вапцаров и Демокрация", "Vaptsarov and Demokratsia", "vaptsarov", "vaptsarov", 70,
     27.4734802961349, 42.5019264817238),
    ("Езеро Вая, рибарско селище", "Vaya Lake, fishermen's village", "vaya", "vaya-lake", 225,
     27.3884165287018, 42.4984172940528),
    ("Биоразнообразие, Пода", "Биоразнообразие, Пода", "poda", "biodiversity-poda", 160,
     27.4610245418548, 42.4526790142059),
    ("Кръгово Лазур", "Lazur roundabout", "lazur", "lazur", 90, 27.4786603450775, 42.5160742341269),
    ("Летище Бургас, вход", "Burgas Airport, entrance", "airport", "airport", 5,
     27.5160551071167, 42.5642371177673),
]


CAMERA_EN_DESCRIPTION = {"Биоразнообразие, Пода": "Biodiversity, Poda"}


def cctv(lang: str) -> dict[str, Any]:
    """Eleven cameras; the English feed keeps one Bulgarian publicname."""
    features = []
    for bg, en, pic, stream, heading, lon, lat in CAMERAS:
        name = bg if lang == "bg" else en
        # In the English feed an untranslated camera keeps its Bulgarian publicname but has an
        # English description.
        description = CAMERA_EN_DESCRIPTION.get(name, name) if lang == "en" else name
        features.append({"type": "Feature", "properties": {
            "publicname": name, "description": description,
            "pic_url": f"http://pics.smartburgas.eu/cam/{pic}.jpg",
            "video_url2": f"https://pics.smartburgas.eu/m3u8/{stream}.m3u8", "position": heading},
            "geometry": point(lon, lat)})
    return collection("features", features)


# ---------------------------------------------------------------------------------------------
# billing machines: features, no id, identical description and picture in all 48

BILLING_NAMES = [
    "Ивайло/Сливница", "Ивайло", "Сливница", "ул.Александровска и ул.Гурко",
    "ул.Фердинандова и ул.Милин камък", "Ж.П. Гара", "Морска гара", "Общината", "РЗИ",
    "ул.Цар Симеон \u0049-ви и ул.Оборище",  # Latin I
    "ул.Лермонтов", "Лермонтов 2", "ул.Гладстон и ул.Христо Ботев", "ул.Шейново",
    "ул.Булаир/ул.Морска", "бул.Демокрация и ул.Копривщица", "ул.Хан Крум", "ул.Хан Аспарух",
    "ул.Св. Климент Охридски", "ул.Трайко Китанчев", "ул.Пробуда", "Пробуда 2",
    "ул.Македония и ул.Гео Милев", "ул.Любен Каравелов", "ул.Мара Гидик", "ул.Константин Фотинов",
    "ул.Сан Стефано", "ул.Иван Вазов", "Иван Вазов 2", "ул.Страхил войвода", "ул.Генерал Скобелев",
    "ул.Филип Кутев", "ул.Рилска", "ул.Ген. Гурко и ул.Славянска", "ул.Алеко Богориди",
    "бул.Стефан Стамболов", "ул.Възраждане", "ул.Георги Кирков", "ул.Княз Борис I",
    "ул.Митрополит Симеон", "ул.Васил Априлов", "ул.Цариградска", "ул.Ген. Гурко 2",
    "Съдебна палата", "Пазар Възраждане", "Площад Тройката", "ул.Уилям Гладстон 2",
    "бул.Демокрация и бул.Стефан Стамболов",
]
BILLING_DESCRIPTION = {
    "bg": "Правилата за платено паркиране в синя и зелена зона ще намерите на "
          "www.transportburgas.bg/bg/платено-паркиране",
    "en": "The rules for paid parking in the blue and green zones are at "
          "www.transportburgas.bg/en/paid-parking",
}
BILLING_PICTURE = "http://pics.smartburgas.eu/parking/zone/billingmashine.jpg"
SHARED_POINT = [27.4772, 42.5018]  # a billing machine and a taxi rank share this exact point


def billing_machines(lang: str) -> dict[str, Any]:
    """Forty-eight ticket machines in the centre, coordinates with 4 or 13 decimals."""
    rng = rng_for("billing")
    features = []
    for i, name in enumerate(BILLING_NAMES):
        decimals = 4 if i % 3 == 1 else 13
        lon = coord(rng, 27.455, 27.484, decimals)
        lat = coord(rng, 42.489, 42.506, decimals)
        if name == "бул.Демокрация и бул.Стефан Стамболов":
            lon, lat = SHARED_POINT
        shown = name if lang == "bg" or name == "Ж.П. Гара" else to_english(name)
        features.append({"type": "Feature", "properties": {
            "name": shown, "description": BILLING_DESCRIPTION[lang], "pic_url": BILLING_PICTURE},
            "geometry": point(lon, lat)})
    return collection("features", features)


# ---------------------------------------------------------------------------------------------
# EV chargers: features, no id, free-text descriptions, pic_url may be JSON null

EV_POINTS = [
    # bg name, en name, bg description, en description, picture, lon, lat
    ("Бизнес Парк Бургас", "Burgas Business Park", "22 KW", "22 KW", None,
     27.4518830472231, 42.5307765011846),
    ("Община Бургас", "Burgas Municipality", "50 KW", "50 KW", None, 27.4697114, 42.4941213),
    ("Летище Бургас", "Burgas Airport", "150 KW", "150 KW", None, 27.5152318, 42.5631047),
    ("Сарафово ", "Sarafovo ", "Платена зарядна станция за електромобили",
     "Paid charging station for electric vehicles", None, 27.5210573, 42.5589094),
    ("Площад „Баба Ганка“", "“Baba Ganka” Square",
     "Една бърза зарядна станция с мощност 60 kW DC ",
     "One fast charging station, 60 kW DC ", None, 27.4681903, 42.4967255),
    ("ж.к. Изгрев, ул. „Странджа“", "Izgrev qt., “Strandzha” Str.",
     "Една бърза зарядна станция с мощност 50 kW DC  и една стандартна зарядна станция с мощност "
     "22 kW AC. ", "One fast charging station, 50 kW DC  and one standard charging station, "
     "22 kW AC. ", "https://smartburgas.eu/uploads/files/izgrev-strandzha.jpg",
     27.4715528, 42.5271902),
    ("Спортен комплекс „Изгрев“", "“Izgrev” Sports Complex", "1 бр. двойна станция с два конектора",
     "1 double station with two connectors", "http://pics.smartburgas.eu/parking/charger/izgrev.jpg",
     27.4756102316403, 42.5298877309381),
    ("Морска Градина,  „Приморска“ алея ", "Sea Garden,  “Primorska” alley ",
     "Една стандартна зарядна станция с мощност 22 kW AC", "One standard charging station, 22 kW AC",
     "http://pics.smartburgas.eu/parking/charger/primorska.jpg", 27.4849922, 42.4992001),
    ("ж.к Славейков, до бл. 60", "Slaveykov qt, next to bl. 60", "11 KW", "11 KW",
     "http://pics.smartburgas.eu/parking/charger/slaveykov.jpg", 27.4604412, 42.5169073),
    ("Rent-E Cars Burgas", "Rent-E Cars Burgas", "2 x 22 kW AC, Type 2", "2 x 22 kW AC, Type 2",
     None, 27.4485031, 42.5021448),
    ("Паркинг „Гара Бургас“", "“Burgas Station” Car Park",
     "Две бързи зарядни станции с мощност 120 kW DC (CCS/CHAdeMO)",
     "Two fast charging stations, 120 kW DC (CCS/CHAdeMO)",
     "https://smartburgas.eu/uploads/files/gara-charger.jpg", 27.4658731024552, 42.4914872017436),
    ("Меден рудник, ул. „Оборище“", "Meden Rudnik, “Oborishte” Str.", "43 kW AC ", "43 kW AC ",
     "http://pics.smartburgas.eu/parking/charger/meden-rudnik.jpg", 27.4208116, 42.4572919),
    ("Търговски център „Galleria“", "“Galleria” Shopping Centre", "Безплатно зареждане, 2 x 11 kW",
     "Free charging, 2 x 11 kW", "https://smartburgas.eu/uploads/files/galleria.jpg",
     27.4553710651398, 42.5224417328834),
    ("Лазур, до Дом на Културата", "Lazur, next to the House of Culture", "22 kW AC",
     "22 kW AC", "http://pics.smartburgas.eu/parking/charger/lazur.jpg", 27.4797012, 42.5124381),
    ("ж.к. Зорница, ул. „Тракия“", "ж.к. Зорница, ул. „Тракия“",
     "Една бърза зарядна станция с мощност 100 kW DC", "Една бърза зарядна станция с мощност 100 kW DC",
     "http://pics.smartburgas.eu/parking/charger/zornitsa.jpg", 27.4867123, 42.5262781),
    ("Крайморие", "Kraymorie", "7,4 kW AC", "7,4 kW AC",
     "http://pics.smartburgas.eu/parking/charger/kraymorie.jpg", 27.4803325, 42.4470188),
    ("Ветрен, Център", "Vetren, Centre", "", "", "http://pics.smartburgas.eu/parking/charger/vetren.jpg",
     27.4381927, 42.5630441),
]


def ev_chargers(lang: str) -> dict[str, Any]:
    """Seventeen chargers; the English feed leaves one entry wholly in Bulgarian."""
    features = []
    for bg, en, dbg, den, pic, lon, lat in EV_POINTS:
        features.append({"type": "Feature", "properties": {
            "name": bg if lang == "bg" else en, "description": dbg if lang == "bg" else den,
            "pic_url": pic}, "geometry": point(lon, lat)})
    return collection("features", features)


# ---------------------------------------------------------------------------------------------
# taxi ranks: features, no id, long free-text names with escaped quotes and spacing quirks

TAXI_STREETS = ["Александровска", "Христо Ботев", "Фердинандова", "Славянска", "Гладстон",
                "Иван Вазов", "Македония", "Сан Стефано", "Трайко Китанчев", "Оборище",
                "Шейново", "Струма", "Ген.Гурко", "Пробуда", "Цариградска", "Транспортна",
                "Янко Комитов", "Перущица", "Княз Борис I", "Сливница", "Индустриална",
                "Одрин"]
TAXI_BOULEVARDS = ["Демокрация", "Стефан Стамболов", "Захари Стоянов", "Тодор Александров",
                   "Мария Луиза", "Сан Стефано", "Васил Левски", "Никола Петков"]
TAXI_LANDMARKS = ["Младежки дом", "пазар \"Краснодар\"", "УМБАЛ Бургас", "хотел \"Мираж\"",
                  "Спортна зала", "Съдебна палата", "ЖП гара", "Автогара Запад", "Автогара Юг",
                  "Морска гара", "кино \"Тракия\"", "ТЦ \"Мол Галерия\"", "НАП", "Общината",
                  "Летен театър", "поликлиника", "Медицински център", "бензиностанция",
                  "парк \"Езеро\"", "Операта", "Драматичен театър"]
TAXI_QUARTERS = ["Изгрев", "Зорница", "Славейков", "Лазур", "Меден рудник", "Братя Миладинови",
                 "Възраждане", "Сарафово", "Крайморие", "Победа", "Долно Езерово"]
TAXI_SPECIAL = [
    # Names whose quirks matter; placed at fixed positions in the feed.
    'бул."Демокрация", пред \u0406\u0406\u0406-та поликлиника, в паркинга',  # Cyrillic І
    'ул."Хр.Ботев", в уширението преди  Автогара Юг ',  # double and trailing space
    'ж.к."Изрев", до парк "Изгрев", пред  бл.41',  # typo Изрев for Изгрев, double space
    'бул."Стефан Стамболов", северно от бл.140  (подхода към РЗИ)',
    'на ул."Славянска между ул."Хан Аспарух" и ул."Лермонтов" (на гърба на църквата "Св.Богородица"',
    'на ул."Цар Симеон \u0049-ви", до хотел "България"',  # Latin I
    'на ул."Цар Симеон \u0406-ви", в пресечката с бул."А.Богориди"',  # Cyrillic І
]


def taxi_name(rng: random.Random, index: int) -> str:
    """A free-text rank location in one of the feed's styles."""
    style = index % 5
    if style == 0:
        return f'бул."{rng.choice(TAXI_BOULEVARDS)}", пред {rng.choice(TAXI_LANDMARKS)}'
    if style == 1:
        return f'ул."{rng.choice(TAXI_STREETS[:-1])}", срещу {rng.choice(TAXI_LANDMARKS)}'
    if style == 2:
        return f'ж.к."{rng.choice(TAXI_QUARTERS)}", до бл.{rng.randint(1, 140)}'
    if style == 3:
        return (f'ул."{rng.choice(TAXI_STREETS[:-1])}" и ул."{rng.choice(TAXI_STREETS[:-1])}", '
                f"до {rng.choice(TAXI_LANDMARKS)}")
    return f'{rng.choice(TAXI_LANDMARKS)}, в паркинга'


def taxi_ranks(lang: str) -> dict[str, Any]:
    """Fifty-nine ranks; about twenty names end in a space; coordinates with 3-5 or 13 decimals."""
    rng = rng_for("taxi")
    specials = {0: 0, 7: 1, 15: 2, 22: 3, 31: 4, 38: 5, 47: 6}
    features = []
    for i in range(59):
        name = TAXI_SPECIAL[specials[i]] if i in specials else taxi_name(rng, i)
        if i not in specials and rng.random() < 0.3:
            name += " "
        cars = rng.choice((2, 3, 4, 5, 6, 7, 10))
        picture = (f"http://pics.smartburgas.eu/parking/taxi/t{i + 1}.jpg" if i < 36
                   else "http://pics.smartburgas.eu/parking/taxi/defaulttaxi.jpg")
        if i == 40:
            picture = "http://pics.smartburgas.eu/parking/taxi/t12i.jpg"
        if i % 4 == 3:
            lon, lat = coord(rng, 27.44, 27.50, 13), coord(rng, 42.48, 42.53, 13)
        else:
            decimals = rng.choice((3, 4, 4, 5))
            lon, lat = coord(rng, 27.40, 27.53, decimals), coord(rng, 42.45, 42.56, decimals)
        if i == 12:
            lon, lat = SHARED_POINT
        if lang == "bg":
            shown, description = name, f"{cars} броя таксиметрови автомобила"
        else:
            # One rank is left untranslated in the English feed.
            shown = name if i == 50 else to_english(name)
            description = f"{cars} taxi cars"
        features.append({"type": "Feature", "properties": {
            "name": shown, "description": description, "pic_url": picture},
            "geometry": point(lon, lat)})
    return collection("features", features)


# ---------------------------------------------------------------------------------------------
# paid-parking zones: static, compact, geometry BEFORE properties, shapefile-truncated keys

ZONES = [
    # Id, name, type (1 green, 2 blue), zone number, centre lon, lat, start, end, weekdays, modified by
    (71, "Синя зона 12", 2, 12, 27.4725, 42.4968, "2000/01/01 08:00:00.000",
     "2000/01/01 18:00:00.000", 31, "system"),
    (70, "Синя зона 11", 2, 11, 27.4688, 42.4993, "2000/01/01 08:00:00.000",
     "2000/01/01 18:00:00.000", 31, "system"),
    (68, "Синя зона 9", 2, 1, 27.4650, 42.4935, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "m.dimitrova"),
    (69, "Синя зона 10", 2, 1, 27.4612, 42.4960, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "m.dimitrova"),
    (57, "Синя зона 2", 2, 1, 27.4700, 42.4930, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "m.dimitrov"),
    (56, "Синя зона 1", 2, 1, 27.4675, 42.4958, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "admin"),
    (58, "Синя зона 3", 2, 1, 27.4745, 42.4942, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "system"),
    (64, "Синя зона 7", 2, 1, 27.4637, 42.4998, "2026/01/12 07:30:00.218",
     "2026/01/12 17:30:00.651", 31, "m.dimitrova"),
    (60, "Синя зона 5", 2, 1, 27.4762, 42.4979, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "system"),
    (59, "Синя зона 4", 2, 1, 27.4715, 42.5012, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "system"),
    (62, "Синя зона 6", 2, 1, 27.4665, 42.5030, "2000/01/01 09:00:00.000",
     "2000/01/01 19:00:00.000", 31, "system"),
    (74, "Зелена зона 3", 1, 1, 27.4568, 42.5042, "", "", 31, "m.dimitrova"),
    (73, "Зелена зона 2", 1, 1, 27.4530, 42.4995, "", "", 127, "system"),
    (72, "Зелена зона 1", 1, 1, 27.4792, 42.5055, "", "", 31, "m.dimitrova"),
    (75, "Зелена зона 4", 1, 1, 27.4822, 42.5095, "2000/01/01 08:00:00.000",
     "2000/01/01 18:00:00.000", 31, "admin"),
]
ZONE_RU = {1: "Зелёная зона", 2: "Синяя зона"}


def zone_ring(rng: random.Random, lon: float, lat: float) -> list[list[float]]:
    """A closed, simple ring around a centre (star-shaped, so it never self-intersects)."""
    count = rng.randint(5, 11)
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(count))
    ring = []
    for angle in angles:
        radius = rng.uniform(0.0009, 0.0013)
        decimals = rng.randint(12, 15)
        ring.append([round(lon + radius * 1.35 * math.cos(angle), decimals),
                     round(lat + radius * math.sin(angle), decimals)])
    return [*ring, list(ring[0])]


def paid_parking_zones() -> list[Feature]:
    """Fifteen zones (eleven blue, four green), unsorted ids with gaps."""
    rng = rng_for("zones")
    features = []
    for zid, name, ztype, znum, lon, lat, start, end, weekdays, modified_by in ZONES:
        number = name.rsplit(" ", 1)[1]
        colour_en = "Blue" if ztype == 2 else "Green"
        # Russian names mix spellings: some zones keep the Bulgarian one.
        name_ru = name if zid in (70, 58) else f"{ZONE_RU[ztype]} {number}"
        places, disabled = (380, 18) if name == "Синя зона 1" else (rng.choice((0, 1)), rng.choice((0, 1)))
        modified = ("2024/11/11 20:05:21.283" if modified_by == "system"
                    else f"2026/01/{rng.randint(10, 28):02d} {rng.randint(8, 17):02d}:"
                         f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}")
        features.append({"type": "Feature",
                         "geometry": {"type": "Polygon", "coordinates": [zone_ring(rng, lon, lat)]},
                         "properties": {
                             "Id": zid, "Name": name, "ZoneType": ztype, "StartTime": start,
                             "EndTime": end, "PricePerHo": 2 if ztype == 2 else 1,
                             "SmsNumber": "1356" if ztype == 2 else "1357", "Places": places,
                             "DisabledPl": disabled, "ZoneNumber": znum, "Weekdays": weekdays,
                             "ZonePaymen": 3, "NameEn": f"{colour_en} zone {number}",
                             "NameRu": name_ru, "Descriptio": "", "Descript_1": "",
                             "Created": "2024/11/11 20:05:21.283", "Modified": modified,
                             "CreatedBy": "system", "ModifiedBy": modified_by,
                             "Descript_2": ""}})
    return features


# ---------------------------------------------------------------------------------------------
# administrative districts (cau): static, compact, Polygon / MultiPolygon, one key CAU

# A coarse tiling of the city's districts: rings over shared corner points, so neighbours share
# their borders exactly (each border is densified identically from both sides).
CORNERS = {
    "A": (27.4400, 42.4950), "B": (27.4580, 42.4930), "C": (27.4700, 42.4860),
    "D": (27.4860, 42.4880), "E": (27.4880, 42.5030), "F": (27.4590, 42.5080),
    "G": (27.4720, 42.5100), "H": (27.4940, 42.5180), "I": (27.4400, 42.5120),
    "J": (27.4580, 42.5220), "K": (27.4780, 42.5210), "L": (27.4480, 42.5350),
    "M": (27.4700, 42.5380), "N": (27.5000, 42.5330),
}
TILED = [
    ("ЦЕНТЪР", "BCDEGF"), ("ВЪЗРАЖДАНЕ", "ABFI"), ("ЛАЗУР", "GEHK"), ("СЛАВЕЙКОВ", "IFGKJ"),
    ("ИЗГРЕВ", "JKML"), ("ЗОРНИЦА", "KHNM"),
]
# Districts away from the tiled core: (name, [(centre lon, lat, radius lon, radius lat), ...]).
ISLANDS = [
    ("ВЕТРЕН", [(27.4300, 42.5900, 0.0300, 0.0380)]),
    ("МЕДЕН РУДНИК", [(27.4240, 42.4560, 0.0150, 0.0110)]),
    ("ПРИМОРИЕ", [(27.5350, 42.5590, 0.0160, 0.0110), (27.4830, 42.4440, 0.0120, 0.0070),
                  (27.5750, 42.5900, 0.0070, 0.0050)]),
]


def precise(value: float) -> float:
    """A coordinate with 14 to 16 decimals, as the district export has (same value, same digits)."""
    return round(value, 14 + int(abs(value) * 1e7) % 3)


def border(a: str, b: str, steps: int = 24) -> list[tuple[float, float]]:
    """Points from corner a to corner b (b excluded), wiggled the same way whichever side asks."""
    first, second = sorted((a, b))
    rng = random.Random(f"{SEED}:border:{first}{second}")
    (x0, y0), (x1, y1) = CORNERS[first], CORNERS[second]
    phase, amp = rng.uniform(0, math.pi), rng.uniform(0.0002, 0.0006)
    length = math.hypot(x1 - x0, y1 - y0)
    nx, ny = -(y1 - y0) / length, (x1 - x0) / length
    points = []
    for i in range(steps):
        t = i / steps
        wiggle = amp * math.sin(math.pi * t) * math.sin(3 * math.pi * t + phase)
        points.append((x0 + (x1 - x0) * t + nx * wiggle, y0 + (y1 - y0) * t + ny * wiggle))
    if (first, second) != (a, b):
        # Walk the same border backwards: from b's end to a's end, excluding b.
        points = [CORNERS[second], *reversed(points[1:])]
    return points


def tiled_ring(corners: str) -> list[list[float]]:
    """A closed ring through the given corners with densified shared borders."""
    ring: list[list[float]] = []
    for a, b in zip(corners, corners[1:] + corners[0], strict=True):
        ring.extend([precise(x), precise(y)] for x, y in border(a, b))
    return [*ring, list(ring[0])]


def island_ring(rng: random.Random, lon: float, lat: float, rx: float, ry: float,
                steps: int = 90) -> list[list[float]]:
    """A closed, star-shaped (hence simple) ring with a ragged outline."""
    ring = []
    for i in range(steps):
        angle = 2 * math.pi * i / steps
        scale = 1 + 0.18 * math.sin(3 * angle + 1) + rng.uniform(-0.05, 0.05)
        ring.append([precise(lon + rx * scale * math.cos(angle)),
                     precise(lat + ry * scale * math.sin(angle))])
    return [*ring, list(ring[0])]


def admin_regions() -> list[Feature]:
    """Nine district administrations; the first reaches far north, the last is a MultiPolygon."""
    rng = rng_for("cau")

    def feature(name: str, geometry: dict[str, Any]) -> Feature:
        return {"type": "Feature", "geometry": geometry, "properties": {"CAU": f'ДЦАУ "{name}"'}}

    vetren, meden, primorie = ISLANDS
    features = [feature(vetren[0], {"type": "Polygon",
                                    "coordinates": [island_ring(rng, *vetren[1][0])]})]
    for name, corners in TILED:
        features.append(feature(name, {"type": "Polygon", "coordinates": [tiled_ring(corners)]}))
    features.append(feature(meden[0], {"type": "Polygon",
                                       "coordinates": [island_ring(rng, *meden[1][0])]}))
    features.append(feature(primorie[0], {"type": "MultiPolygon", "coordinates": [
        [island_ring(rng, *part, steps=60)] for part in primorie[1]]}))
    return features


# ---------------------------------------------------------------------------------------------

TRANSLATED: dict[str, Callable[[str], dict[str, Any]]] = {
    "Air_quality_time.json": air_quality, "Cars_count.json": traffic,
    "SmartCarParks_time.json": car_parks, "Mobiletrash.json": waste, "CCTV.json": cctv,
    "Billing_machines.json": billing_machines, "EVPoint.json": ev_chargers,
    "Taxi_ranks.json": taxi_ranks,
}
STATIC: dict[str, Callable[[], list[Feature]]] = {
    "paid-parking-zones.json": paid_parking_zones, "cau.json": admin_regions,
}


def generate(out: Path = OUT_DIR, langs: Iterable[str] = ("bg", "en")) -> list[Path]:
    """Write every sample under ``out``; returns the paths written."""
    written = []
    for lang in langs:
        for file, build in TRANSLATED.items():
            path = out / lang / file
            write_pretty(path, build(lang))
            written.append(path)
    for file, build_static in STATIC.items():
        path = out / file
        write_compact(path, build_static())
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: write the samples."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
