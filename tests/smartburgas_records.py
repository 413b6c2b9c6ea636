"""Raw records for mapper tests: from the bundled Smart Burgas samples, or built by hand."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from functools import cache
from typing import Any

from adapter.sources.base import RawRecord
from adapter.sources.smartburgas_feeds import FEEDS

# "Now" of the bundled samples is 2026-03-30 15:00 Europe/Sofia (EEST): fetched a few minutes later.
FETCHED_AT = datetime(2026, 3, 30, 12, 5, tzinfo=UTC)


@cache
def _features(feed: str, lang: str) -> list[Any]:
    spec = FEEDS[feed]
    return json.loads(spec.sample_path(lang).read_text(encoding="utf-8"))[spec.array_key]


def sample_records(feed: str, *, langs: tuple[str, ...] = ("bg", "en")) -> list[RawRecord]:
    """Every feature of a bundled sample as the source yields it (bg payload, en twin by position)."""
    spec = FEEDS[feed]
    primary = _features(feed, "bg")
    others = _features(feed, "en") if spec.translated and "en" in langs else [None] * len(primary)
    records = []
    for index, (feature, twin) in enumerate(zip(primary, others, strict=True)):
        records.append(RawRecord(spec.source_name, f"{spec.array_key}[{index}]",
                                 copy.deepcopy(feature), FETCHED_AT, "bg",
                                 {"en": copy.deepcopy(twin)} if twin is not None else {}))
    return records


def sample_record(feed: str, index: int, *, rows: slice | None = None) -> RawRecord:
    """One sample record, its ``data[]`` (and its twin's) cut to ``rows``."""
    record = sample_records(feed)[index]
    if rows is not None:
        for feature in (record.payload, *record.translations.values()):
            props = feature["properties"]
            props["data"] = props["data"][rows]
    return record


def record(feed: str, properties: Any, *, geometry: Any = None, en: Any = None,
           key: str = "features1[0]", lang: str = "bg", fetched_at: datetime = FETCHED_AT,
           problem: str | None = None) -> RawRecord:
    """A hand-built record; ``geometry`` goes top-level (``features`` feeds) when given."""
    def feature(props: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "Feature", "properties": props}
        if geometry is not None:
            out["geometry"] = geometry
        return out

    return RawRecord(FEEDS[feed].source_name, key, feature(properties), fetched_at, lang,
                     {"en": feature(en)} if en is not None else {}, problem=problem)


def aq_row(time: str, **values: str) -> dict[str, str]:
    """An air-quality data[] row in the feed's 17-key shape (units ug/m3 unless given)."""
    row: dict[str, str] = {}
    for key in ("SO2", "NO2", "O3", "h2s", "pm10", "pm2.5", "Benzene", "Styrene"):
        value = values.get(key.replace(".", ""), "")
        unit = values.get(f"{key.replace('.', '')}_unit", "mg/m3" if key == "h2s" else "ug/m3")
        row[key], row[f"{key}_unit"] = value, unit if value else ""
    row["time"] = time
    return row


def aq_station(rows: list[dict[str, str]], *, id: str = "1", name: str = "Долно Езерово",
               coordinates: Any = (27.4488, 42.5215)) -> dict[str, Any]:
    """Air-quality feature properties around ``rows``."""
    return {"id": id, "name": name, "global_air_quality": "4", "data": rows,
            "geometry": {"type": "Point", "coordinates": list(coordinates)}}


def detector(rows: list[tuple[str, str, str]], *, id: str = "39", name: str = "ул. Индустриална - запад",
             coordinates: Any = (27.455178197637, 42.490486074395)) -> dict[str, Any]:
    """Traffic feature properties from (car_count, car_speed, time) rows."""
    return {"detector_id": id, "name": name,
            "data": [{"car_count": c, "car_speed": s, "time": t} for c, s, t in rows],
            "geometry": {"type": "Point", "coordinates": list(coordinates)}}
