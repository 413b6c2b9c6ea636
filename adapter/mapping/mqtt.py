"""Live sensor messages (MQTT JSON payloads) -> entities, one mapper per sensor family.

Payload formats are documented in docs/mqtt-payloads.md. Every family shares an envelope:
``sensor`` (the device's stable id), ``time`` (ISO 8601 with offset, naive = Europe/Sofia, or
epoch milliseconds) and, for the lampposts, ``location`` ([lon, lat] WGS84, inside the Burgas area).
Each message is the sensor's complete current reading: it replaces the previous one.

Families and ids:

* ``lamppost.noise``   -> NoiseLevelObserved ``urn:ngsi-ld:NoiseLevelObserved:lamppost:<sensor>``
* ``lamppost.weather`` -> WeatherObserved    ``urn:ngsi-ld:WeatherObserved:lamppost:<sensor>``
* ``lamppost.air``     -> AirQualityObserved ``urn:ngsi-ld:AirQualityObserved:lamppost:<sensor>``
* ``river.level``      -> FloodMonitoring    ``urn:ngsi-ld:FloodMonitoring:flood-warning:<sensor>``
  (FloodMonitoring, not WaterObserved: the official model is the one with the station's alert and
  danger thresholds and a flood status, which is what a flood-warning station reports)
* ``ngsi-ld``          -> the entity itself, in NGSI-LD normalized form (any model we know)

:class:`TopicMapper` resolves a topic through the configured pattern -> family table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from paho.mqtt.client import topic_matches_sub
from pydantic import ValidationError

from adapter.errors import ConfigError, GeometryError, MappingError
from adapter.mapping import parse
from adapter.mapping.base import Attr, FeedMapper, Mapped, Rejected, build, map_one, read
from adapter.mapping.localtime import LocalTimeError, to_utc
from adapter.mapping.smartburgas_common import BURGAS_AREA
from adapter.ngsi.ids import entity_id
from adapter.ngsi.serialize import from_normalized
from adapter.sources.base import RawRecord
from data_models import AirQualityObserved, Entity, FloodMonitoring, NoiseLevelObserved, WeatherObserved

_SENSOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_MAX_TIME_TEXT = 40
# Epoch milliseconds accepted: 2000-01-01 .. 2100-01-01 (a seconds value would land in 1970).
_EPOCH_MS = (946_684_800_000, 4_102_444_800_000)
MAX_NOISE_PERIOD = 86_400


@lru_cache(maxsize=65536)
def _id(entity_type: str, prefix: str, sensor: str) -> str:
    return entity_id(entity_type, prefix, sensor)  # the same few sensors, thousands of times a second


def sensor_key(payload: Mapping[str, Any]) -> str:
    """The ``sensor`` field: letters, digits, ``._-``, at most 64 characters."""
    value = payload.get("sensor")
    if not isinstance(value, str) or not _SENSOR.match(value):
        raise MappingError(f"sensor: expected an id of letters, digits and ._- (got {parse.show(value)})")
    return value


def observed_time(payload: Mapping[str, Any], received: datetime | None = None) -> datetime:
    """The ``time`` field as aware UTC.

    A naive time is Sofia wall-clock time. In the repeated autumn hour it could be either of two
    instants: the one nearer to when the message was `received` is taken (a lone reading cannot
    tell otherwise, and taking the first would make every reading of the second hour look older
    than those of the first, i.e. stale).
    """
    value = payload.get("time")
    if isinstance(value, int) and not isinstance(value, bool):
        if not _EPOCH_MS[0] <= value < _EPOCH_MS[1]:
            raise MappingError(f"time: {value} is not epoch milliseconds between 2000 and 2100")
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str) or len(value) > _MAX_TIME_TEXT:
        raise MappingError(f"time: expected ISO 8601 text or epoch milliseconds (got {parse.show(value)})")
    try:
        parsed = datetime.fromisoformat(value.strip())
        if parsed.tzinfo is not None:
            return parsed.astimezone(UTC)
        first = to_utc(parsed)
        if received is None:
            return first
        second = to_utc(parsed, fold=1)
        return min((first, second), key=lambda t: abs((t - received).total_seconds()))
    except LocalTimeError as exc:
        raise MappingError(f"time: {exc}") from None
    except ValueError:
        raise MappingError(f"time: {parse.show(value)} is not ISO 8601") from None


def point(payload: Mapping[str, Any], *, required: bool = True) -> dict[str, Any] | None:
    """The ``location`` field ([lon, lat]) as a GeoJSON Point inside the Burgas area."""
    value = payload.get("location")
    if value is None and not required:
        return None
    if not isinstance(value, list) or len(value) != 2:
        raise GeometryError(f"location: expected [lon, lat] (got {parse.show(value)})")
    try:
        lon, lat = parse.number(value[0]), parse.number(value[1])
    except ValueError as exc:
        raise GeometryError(f"location: {exc}") from None
    if not BURGAS_AREA.contains(lon, lat):
        raise GeometryError(f"location: [{lon}, {lat}] is outside the Burgas area (is it [lat, lon]?)")
    return {"type": "Point", "coordinates": [lon, lat]}


def _name(payload: Mapping[str, Any]) -> str | None:
    value = payload.get("name")
    if parse.is_blank(value):
        return None
    try:
        return parse.name(value)
    except ValueError as exc:
        raise MappingError(f"name: {exc}") from None


def _percent(value: Any) -> float:
    result = parse.number(value)
    if not 0 <= result <= 100:
        raise ValueError(f"{parse.show(value)} is not a percentage from 0 to 100")
    return result / 100


def _degrees(value: Any) -> float:
    result = parse.number(value)
    if not 0 <= result <= 360:
        raise ValueError(f"{parse.show(value)} is not a direction from 0 to 360 degrees")
    return result


def _readings(table: tuple[Attr, ...], payload: Mapping[str, Any]) -> dict[str, Any]:
    """The table's values (a bad value rejects the message); at least one must be present."""
    values = read(table, payload).values
    if not values:
        raise MappingError("no reading: expected at least one of " + ", ".join(a.source for a in table))
    return values


def _common(payload: Mapping[str, Any]) -> dict[str, Any]:
    return {"name": _name(payload)}


# --- lampposts on Bogoridi Street -----------------------------------------------------------------

NOISE = (
    Attr("l_aeq", "laeq", parse.non_negative),
    Attr("l_amax", "lamax", parse.non_negative),
    Attr("las", "las", parse.non_negative),
)


def map_noise(record: RawRecord) -> Mapped:
    """``lamppost.noise``: A-weighted levels over the period ending at ``time``."""
    payload = record.payload
    end = observed_time(payload, record.fetched_at)
    period = payload.get("period_s", 60)
    try:
        seconds = parse.number(period)
    except ValueError as exc:
        raise MappingError(f"period_s: {exc}") from None
    if not 0 < seconds <= MAX_NOISE_PERIOD:
        raise MappingError(f"period_s: {parse.show(period)} is not 1..{MAX_NOISE_PERIOD} seconds")
    entity = build(NoiseLevelObserved, {
        "id": _id("NoiseLevelObserved", "lamppost", sensor_key(payload)),
        "date_observed_from": end - timedelta(seconds=seconds), "date_observed_to": end,
        "date_observed": end, "location": point(payload), **_common(payload),
        **_readings(NOISE, payload)})
    return Mapped(entity, record=record.key)


WEATHER = (
    Attr("temperature", "temperature", parse.number),
    Attr("relative_humidity", "humidity", _percent),
    Attr("atmospheric_pressure", "pressure", parse.non_negative),  # hPa (A97)
    Attr("wind_speed", "wind_speed", parse.non_negative),
    Attr("wind_direction", "wind_direction", _degrees),
    Attr("gust_speed", "gust_speed", parse.non_negative),
    Attr("precipitation", "precipitation", parse.non_negative),
    Attr("illuminance", "illuminance", parse.non_negative),
)


def map_weather(record: RawRecord) -> Mapped:
    """``lamppost.weather``: temperature, humidity, pressure, wind, rain, light."""
    payload = record.payload
    entity = build(WeatherObserved, {
        "id": _id("WeatherObserved", "lamppost", sensor_key(payload)),
        "date_observed": observed_time(payload, record.fetched_at), "location": point(payload), **_common(payload),
        **_readings(WEATHER, payload)})
    return Mapped(entity, record=record.key)


AIR = (
    Attr("pm1", "pm1", parse.non_negative),
    Attr("pm25", "pm25", parse.non_negative),
    Attr("pm10", "pm10", parse.non_negative),
    Attr("no2", "no2", parse.non_negative),
    Attr("o3", "o3", parse.non_negative),
    Attr("so2", "so2", parse.non_negative),
    Attr("co", "co", parse.non_negative),  # mg/m³ (GP), the model's unit for CO
    Attr("air_quality_index", "aqi", parse.count),
)


def map_air(record: RawRecord) -> Mapped:
    """``lamppost.air``: particles and gases in µg/m³ (CO in mg/m³), an optional index."""
    payload = record.payload
    entity = build(AirQualityObserved, {
        "id": _id("AirQualityObserved", "lamppost", sensor_key(payload)),
        "date_observed": observed_time(payload, record.fetched_at), "location": point(payload),
        "type_of_location": "outdoor", **_common(payload), **_readings(AIR, payload)})
    return Mapped(entity, record=record.key)


# --- river-level stations of the flood-warning system ---------------------------------------------

RIVER = (
    Attr("current_level", "level", parse.number),
    Attr("measured_distance", "distance", parse.non_negative),
)
THRESHOLDS = (
    Attr("reference_level", "reference_level", parse.number),
    Attr("alert_level", "alert_level", parse.number),
    Attr("danger_level", "danger_level", parse.number),
)
FLOOD_STATUSES = {"normal": "Normal", "alert": "Alert", "danger": "Danger"}


def flood_status(level: float | None, alert: float | None, danger: float | None) -> str | None:
    """Normal / Alert / Danger from the level and the station's thresholds, when known."""
    if level is None or (alert is None and danger is None):
        return None
    if danger is not None and level >= danger:
        return "Danger"
    if alert is not None and level >= alert:
        return "Alert"
    return "Normal"


def map_river_level(record: RawRecord) -> Mapped:
    """``river.level``: water level against the station's alert and danger thresholds."""
    payload = record.payload
    station = sensor_key(payload)
    values = {**_readings(RIVER, payload), **read(THRESHOLDS, payload).values}
    status = payload.get("status")
    if parse.is_blank(status):
        status = flood_status(values.get("current_level"), values.get("alert_level"),
                              values.get("danger_level"))
    elif not isinstance(status, str) or status.casefold() not in FLOOD_STATUSES:
        raise MappingError(f"status: expected Normal, Alert or Danger (got {parse.show(status)})")
    else:
        status = FLOOD_STATUSES[status.casefold()]
    entity = build(FloodMonitoring, {
        "id": _id("FloodMonitoring", "flood-warning", station), "station_id": station,
        "observation_date_time": observed_time(payload, record.fetched_at), "location": point(payload, required=False),
        "flood_level_status": status, **_common(payload), **values})
    return Mapped(entity, record=record.key)


# --- NGSI-LD normalized entities ------------------------------------------------------------------

def map_normalized(record: RawRecord) -> Mapped:
    """``ngsi-ld``: an entity in normalized form (compact terms or expanded IRIs; @context ignored)."""
    try:
        entity = from_normalized(dict(record.payload))
    except ValidationError:
        raise  # map_one gives the model's reasons
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise MappingError(f"not an NGSI-LD normalized entity: {exc}") from None
    return Mapped(entity, record=record.key)


FAMILIES: Mapping[str, FeedMapper] = {m.feed: m for m in (
    FeedMapper("lamppost.noise", NoiseLevelObserved, map_noise,
               "urn:ngsi-ld:NoiseLevelObserved:lamppost:<sensor>"),
    FeedMapper("lamppost.weather", WeatherObserved, map_weather,
               "urn:ngsi-ld:WeatherObserved:lamppost:<sensor>"),
    FeedMapper("lamppost.air", AirQualityObserved, map_air,
               "urn:ngsi-ld:AirQualityObserved:lamppost:<sensor>"),
    FeedMapper("river.level", FloodMonitoring, map_river_level,
               "urn:ngsi-ld:FloodMonitoring:flood-warning:<sensor>"),
    FeedMapper("ngsi-ld", Entity, map_normalized, "the payload's own id"),
)}
"""Sensor family name -> its mapper (the values of a source's ``topics`` table)."""

_MAX_CACHED_TOPICS = 100_000


class TopicMapper:
    """Maps a message by its topic: the first pattern of the table that matches names the family."""

    def __init__(self, source: str, topics: Mapping[str, str]) -> None:
        for pattern, family in topics.items():
            if family not in FAMILIES:
                raise ConfigError(f"unknown sensor family {family!r} for topic {pattern!r}; "
                                  f"known: {', '.join(FAMILIES)}", source=source)
            if not _valid_filter(pattern):
                raise ConfigError(f"{pattern!r} is not a valid MQTT topic filter", source=source)
        self.source = source
        self.topics = dict(topics)
        self._cache: dict[str, FeedMapper | None] = {}

    def family(self, topic: str) -> FeedMapper | None:
        """The mapper of a topic, or None when no pattern matches."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found = next((FAMILIES[f] for p, f in self.topics.items() if topic_matches_sub(p, topic)), None)
        if len(self._cache) >= _MAX_CACHED_TOPICS:
            self._cache.clear()  # topics come from outside: keep the cache bounded
        self._cache[topic] = found
        return found

    def __call__(self, record: RawRecord) -> Mapped | Rejected:
        mapper = self.family(record.origin or "")
        if mapper is None:
            return Rejected.of(record, f"no sensor family for topic {record.origin!r}")
        return map_one(mapper, record)


def _valid_filter(pattern: str) -> bool:
    if not pattern or len(pattern.encode()) > 65535 or "\x00" in pattern:
        return False
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return True


def mapper_for(source: str, topics: Mapping[str, str]) -> TopicMapper:
    """The record mapper of an MQTT source's topic table."""
    return TopicMapper(source, topics)


__all__ = ["FAMILIES", "TopicMapper", "flood_status", "mapper_for", "observed_time", "point",
           "sensor_key"]
