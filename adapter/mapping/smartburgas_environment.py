"""Smart Burgas air quality (``Air_quality_time``) -> AirQualityObserved, one entity per station.

Id: ``urn:ngsi-ld:AirQualityObserved:smartburgas:<id>`` from the feed's ``id``.

Each ``data[]`` row is one hourly reading (the feed is newest-first; any order is accepted). The
current state is the newest reading: ``dateObserved`` is its time and each pollutant carries its
value with the unitCode of the row's unit string and observedAt = that time. A pollutant empty in
the newest reading takes its newest non-empty value from at most :data:`CARRY_FORWARD` earlier,
with that reading's own observedAt (the feed repeats daily values such as pm10 and sometimes
leaves the last hours empty); older than that it is absent. Empty values are absent, never 0.
A value with an unknown unit, or unparseable, is left out with its reason (the rest stay).

``global_air_quality`` (a single digit, scale undocumented) becomes ``airQualityIndex`` as is;
``airQualityLevel`` is not derived because the scale is unknown.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from adapter.errors import MappingError
from adapter.mapping import parse
from adapter.mapping.base import Attr, FeedMapper, Mapped, attr_meta, build, read
from adapter.mapping.smartburgas_common import (
    feed_key,
    names,
    point,
    properties,
    readings,
    smartburgas_id,
)
from adapter.sources.base import RawRecord
from data_models import AirQualityObserved

CARRY_FORWARD = timedelta(hours=48)

STATION = (
    Attr("air_quality_index", "global_air_quality", parse.count),
)

# One row per pollutant: model field <- feed key, unit from the feed's "<key>_unit" string.
POLLUTANTS = (
    Attr("so2", "SO2", parse.non_negative, unit_source="SO2_unit"),
    Attr("no2", "NO2", parse.non_negative, unit_source="NO2_unit"),
    Attr("o3", "O3", parse.non_negative, unit_source="O3_unit"),
    Attr("sh2", "h2s", parse.non_negative, unit_source="h2s_unit"),
    Attr("pm10", "pm10", parse.non_negative, unit_source="pm10_unit"),
    Attr("pm25", "pm2.5", parse.non_negative, unit_source="pm2.5_unit"),
    Attr("c6h6", "Benzene", parse.non_negative, unit_source="Benzene_unit"),
    Attr("styrene", "Styrene", parse.non_negative, unit_source="Styrene_unit"),  # extension
)


def air_quality_id(props: Any) -> str:
    """``urn:ngsi-ld:AirQualityObserved:smartburgas:<id>``."""
    return smartburgas_id("AirQualityObserved", feed_key(props, "id"))


def map_air_quality(record: RawRecord) -> Mapped:
    """One station with its hourly series."""
    props = properties(record.payload)
    entity_id = air_quality_id(props)
    location = point(props.get("geometry"))
    station = read(STATION, props, strict=False)
    series = readings(props)
    if series.newest is None:
        raise MappingError("no readable reading in data" + _first(series.problems))
    notes = [*location.fixes, *station.problems, *series.problems]
    geometry: Any = location.geometry  # GeoJSON, then the Point validated with the first snapshot

    history = []
    per_reading: list[tuple[datetime, dict[str, Any], dict[str, str]]] = []
    for time, row in series.rows:
        values = read(POLLUTANTS, row, strict=False)
        if values.problems:  # the reading's local time prefixes its reasons (only when needed)
            notes.extend(f"reading {_local(row)}: {problem}" for problem in values.problems)
        per_reading.append((time, values.values, values.units))
        snapshot = build(AirQualityObserved, {
            "id": entity_id, "date_observed": time, "location": geometry, **values.values,
        }, attr_meta(AirQualityObserved, values.units))
        # The station's location is the same for every reading: validated once (with the first
        # snapshot, so a refusal names the field as before), the validated Point is passed on,
        # which pydantic takes as is (revalidate_instances="never") and which is frozen.
        geometry = snapshot.location
        history.append(snapshot)

    newest_time = series.rows[-1][0]
    current: dict[str, Any] = {}
    units: dict[str, str] = {}
    observed: dict[str, datetime] = {}
    for attr in POLLUTANTS:
        for time, values, value_units in reversed(per_reading):
            if newest_time - time > CARRY_FORWARD:
                break
            if attr.target in values:
                current[attr.target] = values[attr.target]
                observed[attr.target] = time
                if attr.target in value_units:
                    units[attr.target] = value_units[attr.target]
                break
    label = names(record, "name")
    entity = build(AirQualityObserved, {
        "id": entity_id, "date_observed": newest_time, "location": geometry,
        "name": label.name, "multilingual_name": label.multilingual,
        **station.values, **current,
    }, attr_meta(AirQualityObserved, units, observed, newest_time))
    return Mapped(entity, tuple(history), location.source_crs, tuple(notes), record.key)


def _local(row: Any) -> str:
    return str(row.get("time", "?"))[:25]


def _first(problems: list[str]) -> str:
    return f" ({problems[0]})" if problems else ""


AIR_QUALITY = FeedMapper(
    "air_quality", AirQualityObserved, map_air_quality,
    "urn:ngsi-ld:AirQualityObserved:smartburgas:<properties.id>",
)
