"""Typed strings for values the official schemas keep as text: dates, times, durations, colours, zones.

NGSI-LD has no date-only or time-only value type, so these travel as strings; the types make
sure that what travels is well formed (a GTFS colour, an ISO 8601 date or duration, an IANA zone).
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field, Strict


def _pattern(regex: str, what: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value

    return AfterValidator(check)


def _check_date(value: str) -> str:
    date.fromisoformat(value)  # rejects 2024-02-30 that the pattern lets through
    return value


def _check_time(value: str) -> str:
    time.fromisoformat(value)
    return value


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone") from exc
    return value


# "2016-07-31" (JSON Schema format "date").
IsoDate = Annotated[str, Strict(), _pattern(r"\d{4}-\d{2}-\d{2}", "an ISO 8601 date (YYYY-MM-DD)"),
                    AfterValidator(_check_date)]
# "09:00" or "09:00:00" (JSON Schema format "time" without zone, as opening hours use it).
TimeOfDay = Annotated[str, Strict(), _pattern(r"\d{2}:\d{2}(:\d{2})?", "a time of day (HH:MM[:SS])"),
                      AfterValidator(_check_time)]
# "PT2H", "P1DT30M": an ISO 8601 duration (maximumParkingDuration).
IsoDuration = Annotated[str, Strict(), _pattern(
    r"P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?",
    "an ISO 8601 duration (e.g. PT2H)")]
# "#ffca95": a CSS hex colour (Smart Burgas waste types).
HexColor = Annotated[str, Strict(), _pattern(r"#[0-9A-Fa-f]{6}", "a #rrggbb colour")]
# "FFFFFF": a GTFS colour (six hex digits, no '#').
GtfsColor = Annotated[str, Strict(), _pattern(r"[0-9A-Fa-f]{6}", "a GTFS colour (six hex digits)")]
# "Europe/Sofia".
TimeZoneName = Annotated[str, Strict(), AfterValidator(_check_zone)]
# Integers the schema bounds below by 1 (capacity, socketNumber, laneId, totalSpotNumber).
PositiveInt = Annotated[int, Strict(), Field(ge=1, le=2**63 - 1)]
# A compass direction in degrees, 0..360 (wind, swell, camera heading).
Degrees = Annotated[float, Strict(), Field(ge=0, le=360, allow_inf_nan=False)]
# A non-empty string (names and codes that an empty string would make meaningless).
NonEmptyText = Annotated[str, Strict(), Field(min_length=1)]
