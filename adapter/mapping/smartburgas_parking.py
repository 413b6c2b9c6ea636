"""Smart Burgas car parks -> OffStreetParking, paid-parking zones -> OnStreetParking.

Car parks (``SmartCarParks_time``), id ``urn:ngsi-ld:OffStreetParking:smartburgas:<parking_id>``.
``data[]`` rows (newest-first, hourly) hold ``free_lots``. The current state is the newest row:
``availableSpotNumber`` = its free lots, ``occupiedSpotNumber`` = total - free, ``occupancy`` =
occupied / total (0..1), ``observationDateTime`` (the observedAt of those values) = its time, and
``status`` = ``full`` (0 free), ``almostFull`` (occupancy >= 0.9) or ``spacesAvailable``.
A stale sensor (newest row older than :data:`STALE_AFTER` before the fetch) is kept with its old
times and values, but gets no ``status``: the model's enum has no "unknown", and claiming
``closedAbnormal`` would say more than the feed knows. ``total_free_lots`` and ``load`` repeat the
newest row and are not read; more free lots than lots leaves occupancy out with the reason.

Paid-parking zones (``paid-parking-zones.json``), id ``urn:ngsi-ld:OnStreetParking:smartburgas:<Id>``.
``ZoneType`` 2 = blue, 1 = green (``category``); ``PricePerHo`` is the hourly price, taken as BGN
(the layer was exported in 2024, before the euro changeover); ``SmsNumber`` pays by SMS;
``permitActiveHours`` = ``{"<colour>ZonePermit": "Mo-Fr 09:00-18:00"}`` from ``Weekdays`` (bit 0 =
Monday, so 31 = Mo-Fr, 127 = Mo-Su) and the time of day of ``StartTime``/``EndTime`` (their date
part is a placeholder); left out when the times are empty. ``Places`` of 0 or 1 are placeholders
in the export and are left out. ``Created``/``Modified`` are local times -> dateCreated/Modified.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from adapter.errors import MappingError
from adapter.mapping import parse
from adapter.mapping.base import Attr, FeedMapper, Mapped, build, read
from adapter.mapping.localtime import LocalTimeError, parse_slashed, to_utc
from adapter.mapping.smartburgas_common import (
    area,
    feed_key,
    names,
    point,
    properties,
    readings,
    smartburgas_id,
)
from adapter.sources.base import RawRecord
from data_models import OffStreetParking, OnStreetParking

STALE_AFTER = timedelta(hours=24)
ALMOST_FULL = 0.9

CAR_PARK_SIZE = (
    Attr("total_spot_number", "total_lots", parse.count),  # strict: occupancy depends on it
)
CAR_PARK = (
    Attr("description", "description", parse.text),
    Attr("images", "pic_url", lambda v: [u] if (u := parse.url(v)) else None),
)
CAR_PARK_READING = (
    Attr("available_spot_number", "free_lots", parse.count),
)


def car_park_id(props: Any) -> str:
    """``urn:ngsi-ld:OffStreetParking:smartburgas:<parking_id>``."""
    return smartburgas_id("OffStreetParking", feed_key(props, "parking_id"))


def occupancy_values(free: int, total: int | None) -> tuple[dict[str, Any], str | None]:
    """occupied, occupancy and status for ``free`` of ``total`` lots (or the reason they are left out)."""
    if total is None:
        return {}, None
    if free > total:
        return {}, f"free_lots {free} > total_lots {total}: occupancy left out"
    occupied = total - free
    ratio = round(occupied / total, 4)
    status = "full" if free == 0 else "almostFull" if ratio >= ALMOST_FULL else "spacesAvailable"
    return {"occupied_spot_number": occupied, "occupancy": ratio, "status": [status]}, None


def map_car_park(record: RawRecord) -> Mapped:
    """One car park with its hourly free-lot series."""
    props = properties(record.payload)
    entity_id = car_park_id(props)
    location = point(props.get("geometry"))
    size = read(CAR_PARK_SIZE, props, strict=True).values
    total = size.pop("total_spot_number", None) or None  # 0 lots: unknown size
    if total is not None:
        size["total_spot_number"] = total
    static = read(CAR_PARK, props, strict=False)
    series = readings(props)
    notes = [*location.fixes, *static.problems, *series.problems]
    history = []
    current: dict[str, Any] = {}
    for time, row in series.rows:
        reading = read(CAR_PARK_READING, row, strict=False, where=f"reading {str(row.get('time'))[:25]}: ")
        notes.extend(reading.problems)
        values: dict[str, Any] = {"observation_date_time": time, **reading.values}
        if "available_spot_number" in reading.values:
            derived, problem = occupancy_values(reading.values["available_spot_number"], total)
            values.update(derived)
            if problem:
                notes.append(f"reading {str(row.get('time'))[:25]}: {problem}")
        history.append(build(OffStreetParking, {"id": entity_id, "location": location.geometry, **values}))
        current = values
    newest: datetime | None = series.rows[-1][0] if series.rows else None
    if newest is not None and record.fetched_at - newest > STALE_AFTER:
        current.pop("status", None)  # stale sensor: keep the values and their old time, no status
    label = names(record, "name")
    entity = build(OffStreetParking, {
        "id": entity_id, "location": location.geometry, "name": label.name,
        "multilingual_name": label.multilingual, **size, **static.values, **current,
    })
    return Mapped(entity, tuple(history), location.source_crs, tuple(notes), record.key)


CAR_PARKS = FeedMapper(
    "car_parks", OffStreetParking, map_car_park,
    "urn:ngsi-ld:OffStreetParking:smartburgas:<properties.parking_id>",
)


# --- paid-parking zones ---------------------------------------------------------------------------

ZONE_COLOUR = {1: "green", 2: "blue"}
_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")


def weekdays(mask: Any) -> str:
    """A ``Weekdays`` bitmask (bit 0 = Monday) as opening-hours days: 31 -> "Mo-Fr", 127 -> "Mo-Su"."""
    bits = parse.count(mask)
    if not 0 < bits < 128:
        raise ValueError(f"Weekdays {parse.show(mask)} is not a 7-day bitmask")
    days = [i for i in range(7) if bits >> i & 1]
    runs: list[list[int]] = []
    for day in days:
        if runs and runs[-1][-1] == day - 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(_DAYS[r[0]] if len(r) == 1 else f"{_DAYS[r[0]]}-{_DAYS[r[-1]]}" for r in runs)


def time_of_day(value: Any) -> str:
    """``"2000/01/01 09:00:00.000"`` -> ``"09:00"`` (the date part is a placeholder)."""
    try:
        clock = parse_slashed(value)
    except LocalTimeError as exc:
        raise ValueError(str(exc)) from None
    return f"{clock:%H:%M}" if clock.second == 0 else f"{clock:%H:%M:%S}"


def local_timestamp(value: Any) -> datetime:
    """``"2024/11/11 20:05:21.283"`` (Sofia) -> UTC."""
    try:
        return to_utc(parse_slashed(value))
    except LocalTimeError as exc:
        raise ValueError(str(exc)) from None


def places(value: Any) -> int | None:
    """Spot count; 0 and 1 are placeholders in the export."""
    result = parse.count(value)
    return result if result > 1 else None


ZONE = (
    Attr("price_per_hour", "PricePerHo", parse.non_negative),
    Attr("sms_payment_number", "SmsNumber", lambda v: parse.text(str(v) if isinstance(v, int) else v)),
    Attr("total_spot_number", "Places", places),
    Attr("date_created", "Created", local_timestamp),
    Attr("date_modified", "Modified", local_timestamp),
)
ZONE_HOURS = (
    Attr("days", "Weekdays", weekdays),
    Attr("start", "StartTime", time_of_day),
    Attr("end", "EndTime", time_of_day),
)


def zone_id(props: Any) -> str:
    """``urn:ngsi-ld:OnStreetParking:smartburgas:<Id>``."""
    return smartburgas_id("OnStreetParking", feed_key(props, "Id"))


def map_zone(record: RawRecord) -> Mapped:
    """One paid-parking zone polygon."""
    props = properties(record.payload)
    entity_id = zone_id(props)
    shape = area(record.payload.get("geometry"))
    values = read(ZONE, props, strict=False)
    hours = read(ZONE_HOURS, props, strict=False)
    kind = props.get("ZoneType")
    colour = ZONE_COLOUR.get(kind) if isinstance(kind, int) and not isinstance(kind, bool) else None
    if colour is None:
        raise MappingError(f"ZoneType {parse.show(kind)} is neither 1 (green) nor 2 (blue)")
    active = None
    if {"days", "start", "end"} <= hours.values.keys():
        h = hours.values
        active = {f"{colour}ZonePermit": f"{h['days']} {h['start']}-{h['end']}"}
    label = names(record, "Name", extra={"en": "NameEn", "ru": "NameRu"})
    entity = build(OnStreetParking, {
        "id": entity_id, "location": shape.geometry, "name": label.name,
        "multilingual_name": label.multilingual,
        "category": [f"{colour}Zone", "feeCharged"],
        "required_permit": [f"{colour}ZonePermit"], "permit_active_hours": active,
        "price_currency": "BGN" if "price_per_hour" in values.values else None,
        "allowed_vehicle_type": ["car"], **values.values,
    })
    return Mapped(entity, (), shape.source_crs, (*shape.fixes, *values.problems, *hours.problems),
                  record.key)


PAID_PARKING_ZONES = FeedMapper(
    "paid_parking_zones", OnStreetParking, map_zone,
    "urn:ngsi-ld:OnStreetParking:smartburgas:<properties.Id>",
)
