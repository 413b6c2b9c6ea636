"""Smart Burgas traffic counters -> TrafficFlowObserved, EV chargers -> EVChargingStation.

Traffic (``Cars_count``), id ``urn:ngsi-ld:TrafficFlowObserved:smartburgas:<detector_id>``.
Each ``data[]`` row (oldest-first, about every 15 minutes) is one period ending at its ``time``:
``dateObservedTo`` = the row's time, ``dateObservedFrom`` = the previous row's time when that is
at most :data:`MAX_PERIOD` earlier, else ``time - NOMINAL_PERIOD`` (a longer gap is missing data,
not a longer count). ``intensity`` is ``car_count`` as published (always a multiple of 4, which
suggests a 15-minute count scaled to vehicles per hour; it is not rescaled), and
``averageVehicleSpeed`` is ``car_speed`` in km/h. The current state is the newest period; values
are not carried forward from older periods. Placeholder names ("", "ddd") give no name.

EV chargers (``EVPoint``), id ``urn:ngsi-ld:EVChargingStation:smartburgas:<name_key>`` (Bulgarian
name slug + position to 4 decimals; the feed has no id). The free-text description is parsed by
:func:`parse_charger`; its defaults are documented there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from adapter.errors import MappingError
from adapter.mapping import parse
from adapter.mapping.base import Attr, FeedMapper, Mapped, build, read
from adapter.mapping.smartburgas_common import (
    feed_key,
    names,
    point,
    position_key,
    properties,
    readings,
    smartburgas_id,
)
from adapter.sources.base import RawRecord
from data_models import EVChargingStation, TrafficFlowObserved

NOMINAL_PERIOD = timedelta(minutes=15)
MAX_PERIOD = timedelta(minutes=30)

DETECTOR_READING = (
    Attr("intensity", "car_count", parse.non_negative),
    Attr("average_vehicle_speed", "car_speed", parse.non_negative),  # km/h (model unit KMH)
)


def traffic_id(props: Any) -> str:
    """``urn:ngsi-ld:TrafficFlowObserved:smartburgas:<detector_id>``."""
    return smartburgas_id("TrafficFlowObserved", feed_key(props, "detector_id"))


def map_traffic(record: RawRecord) -> Mapped:
    """One detector with its 24 h of ~15-minute counts."""
    props = properties(record.payload)
    entity_id = traffic_id(props)
    location = point(props.get("geometry"))
    series = readings(props)
    if series.newest is None:
        raise MappingError("no readable reading in data"
                           + (f" ({series.problems[0]})" if series.problems else ""))
    notes = [*location.fixes, *series.problems]
    history = []
    previous = None
    values: dict[str, Any] = {}
    for time, row in series.rows:
        start = previous if previous is not None and time - previous <= MAX_PERIOD else time - NOMINAL_PERIOD
        reading = read(DETECTOR_READING, row, strict=False, where=f"reading {str(row.get('time'))[:25]}: ")
        notes.extend(reading.problems)
        values = {"date_observed": time, "date_observed_from": start, "date_observed_to": time,
                  **reading.values}
        history.append(build(TrafficFlowObserved, {"id": entity_id, **values}))
        previous = time
    label = names(record, "name")
    entity = build(TrafficFlowObserved, {
        "id": entity_id, "location": location.geometry, "name": label.name,
        "multilingual_name": label.multilingual, **values,
    })
    return Mapped(entity, tuple(history), location.source_crs, tuple(notes), record.key)


TRAFFIC = FeedMapper(
    "traffic", TrafficFlowObserved, map_traffic,
    "urn:ngsi-ld:TrafficFlowObserved:smartburgas:<properties.detector_id>",
)


# --- EV chargers ----------------------------------------------------------------------------------

# "22 kW DC", "50 KW", "7,4 kW AC", "2 x 22 kW AC", "22 квт"
_POWER = re.compile(r"(?:(\d{1,2})\s*[xх×]\s*)?(\d{1,4}(?:[.,]\d{1,2})?)\s*(?:kw|квт)\b\.?\s*(ac|dc)?",
                    re.IGNORECASE)
# "Една бърза ... 50 kW", "Две бързи ... 120 kW": how many points a power mention stands for.
_COUNT_WORDS = {"един": 1, "една": 1, "едно": 1, "два": 2, "две": 2, "три": 3, "четири": 4,
                "пет": 5, "шест": 6, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_COUNT = re.compile(r"\b(" + "|".join(_COUNT_WORDS) + r")\b|\b(\d{1,2})\s*бр\b", re.IGNORECASE)
_DUAL = re.compile(r"двойна|два\s+конектора|2\s+конектора|dual|two\s+connectors", re.IGNORECASE)
_FREE = re.compile(r"безплатн|free\s+of\s+charge|\bfree\b", re.IGNORECASE)
_CONNECTORS = (
    (re.compile(r"type\s*2|тип\s*2|mennekes", re.IGNORECASE), "Type2"),
    (re.compile(r"\bccs\b|combo", re.IGNORECASE), "CCS/SAE"),
    (re.compile(r"chademo", re.IGNORECASE), "CHAdeMO"),
    (re.compile(r"schuko|шуко", re.IGNORECASE), "Wall_Euro"),
)
# AC charging in Europe tops out at 22 kW (Type 2, three-phase 32 A): a bare power above it is DC.
AC_MAX_KW = 22.0
DEFAULT_SOCKET = {"AC": "Type2", "DC": "CCS/SAE"}  # the European standards (AFIR)


@dataclass(frozen=True, slots=True)
class Charger:
    """What a charger's free-text description says."""

    capacity: int
    socket_number: int | None
    socket_type: list[str]
    current_type: list[str] | None
    rated_power: float | None
    free: bool


def parse_charger(description: str) -> Charger:
    """Read capacity, sockets, current and power from text like "22 kW DC и ... 22 kW AC".

    Defaults (documented): each power mention is one charging point unless a multiplier
    (``2 x 22 kW``) or a count word before it since the previous mention ("Две бързи зарядни
    станции с мощност 120 kW") says more; ``capacity`` is the sum, at least 1; a "dual station with two
    connectors" has capacity 2 and 2 sockets; a power without AC/DC is DC above 22 kW and AC up to it; sockets are the
    connectors named in the text, else Type2 for AC and CCS/SAE for DC, else ``Other``;
    ``ratedPower`` is the highest power (kW). "Безплатна"/"free" gives chargeType ``free``; a
    paid station gets no chargeType (the tariff kind is unknown).
    """
    points = 0
    powers: list[float] = []
    currents: set[str] = set()
    since = 0
    for match in _POWER.finditer(description):
        many, kw, current = match.groups()
        before, since = description[since:match.start()], match.end()
        power = float(kw.replace(",", "."))
        if power <= 0:
            continue
        points += int(many) if many else _count_before(before)
        powers.append(power)
        currents.add(current.upper() if current else ("DC" if power > AC_MAX_KW else "AC"))
    sockets = None
    if _DUAL.search(description):
        points = max(points, 2)
        sockets = 2
    named = [socket for pattern, socket in _CONNECTORS if pattern.search(description)]
    socket_type = named or [DEFAULT_SOCKET[c] for c in sorted(currents)] or ["Other"]
    return Charger(capacity=max(points, 1), socket_number=sockets, socket_type=socket_type,
                   current_type=sorted(currents) or None,
                   rated_power=max(powers) if powers else None,
                   free=bool(_FREE.search(description)))


def _count_before(text: str) -> int:
    counts = [_COUNT_WORDS.get((m.group(1) or "").casefold()) or int(m.group(2) or 1)
              for m in _COUNT.finditer(text)]
    return max(counts[-1], 1) if counts else 1


EV_STATIC = (
    Attr("description", "description", parse.text),
    Attr("see_also", "pic_url", parse.url),  # the photo; the model has no image attribute
)


def ev_id(label_key: str) -> str:
    """``urn:ngsi-ld:EVChargingStation:smartburgas:<name slug>:<lng>,<lat>``."""
    return smartburgas_id("EVChargingStation", label_key)


def map_ev_charger(record: RawRecord) -> Mapped:
    """One charging station (no time series)."""
    props = properties(record.payload)
    location = point(record.payload.get("geometry"))
    label = names(record, "name")
    static = read(EV_STATIC, props, strict=False)
    charger = parse_charger(static.values.get("description") or "")
    entity = build(EVChargingStation, {
        "id": ev_id(position_key(label, location.geometry, record=record)),
        "location": location.geometry, "name": label.name, "multilingual_name": label.multilingual,
        **static.values,
        "capacity": charger.capacity, "socket_number": charger.socket_number,
        "socket_type": charger.socket_type, "current_type": charger.current_type,
        "rated_power": charger.rated_power, "allowed_vehicle_type": ["car"],
        "charge_type": ["free"] if charger.free else None,
    })
    return Mapped(entity, (), location.source_crs, (*location.fixes, *static.problems), record.key)


EV_CHARGERS = FeedMapper(
    "ev_chargers", EVChargingStation, map_ev_charger,
    "urn:ngsi-ld:EVChargingStation:smartburgas:<slug(bg name)>:<lng>,<lat> (4 decimals)",
)
