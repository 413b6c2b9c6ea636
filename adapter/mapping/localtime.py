"""Smart Burgas times: naive Europe/Sofia wall-clock strings -> aware UTC datetimes.

The feeds write ``YYYY-MM-DD HH:MM:SS`` (sometimes ``YYYY-MM-DD_HH:MM:SS``) with no zone; the city
runs on EET (UTC+2) in winter and EEST (UTC+3) in summer. Two hours a year need care:

* the spring gap (last Sunday of March, 03:00-03:59 does not exist): such a reading is rejected
  with its reason, never shifted to a guess;
* the autumn repeat (last Sunday of October, 03:00-03:59 happens twice): a lone time takes the
  first occurrence (``fold=0``, EEST); in a series, :func:`localize_series` walks the readings in
  time order (newest-first feeds are walked backwards) and a wall time inside the repeated hour that
  does not move forward from the previous one starts the second occurrence (``fold=1``, EET).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

SOFIA = ZoneInfo("Europe/Sofia")

_LOCAL = re.compile(r"(\d{4})-(\d{2})-(\d{2})[ _T](\d{2}):(\d{2}):(\d{2})")
# Paid-parking zones: "2000/01/01 07:00:00.000" (a shapefile export).
_SLASHED = re.compile(r"(\d{4})/(\d{2})/(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?")
_MAX_TEXT = 40
# The feeds' usual spelling, ASCII digits only: such a string reads as fromisoformat reads it
# (~0.15 µs instead of ~1.5 µs through _LOCAL and int()). Anything else (spaces around, Unicode
# digits, which _LOCAL's \d also accepts) goes the general way.
_PLAIN_LOCAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[ _T][0-9]{2}:[0-9]{2}:[0-9]{2}")


class LocalTimeError(ValueError):
    """A local time that cannot be read or does not exist in Europe/Sofia."""


def parse_local(text: object) -> datetime:
    """``YYYY-MM-DD HH:MM:SS`` (or with ``_``) as a naive wall-clock datetime."""
    if type(text) is str and len(text) == 19 and _PLAIN_LOCAL.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # an impossible date or time: the general way says why, in its words
    match = _LOCAL.fullmatch(text.strip()) if isinstance(text, str) and len(text) <= _MAX_TEXT else None
    if match is None:
        raise LocalTimeError(f"time {_show(text)} is not YYYY-MM-DD HH:MM:SS")
    year, month, day, hour, minute, second = map(int, match.groups())
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise LocalTimeError(f"time {_show(text)}: {exc}") from None


def parse_slashed(text: object) -> datetime:
    """``YYYY/MM/DD HH:MM:SS[.mmm]`` as a naive wall-clock datetime (milliseconds kept)."""
    match = _SLASHED.fullmatch(text.strip()) if isinstance(text, str) and len(text) <= _MAX_TEXT else None
    if match is None:
        raise LocalTimeError(f"time {_show(text)} is not YYYY/MM/DD HH:MM:SS.mmm")
    *parts, fraction = match.groups()
    year, month, day, hour, minute, second = map(int, parts)
    micro = int((fraction or "0").ljust(6, "0"))
    try:
        return datetime(year, month, day, hour, minute, second, micro)
    except ValueError as exc:
        raise LocalTimeError(f"time {_show(text)}: {exc}") from None


# Europe/Sofia offsets per local wall-clock hour. zoneinfo costs a few µs per conversion and the
# feeds send thousands of readings from the same few hours, so each hour is probed once: its
# offset for fold=0 and fold=1 at its first and last instant. An hour where these agree and that
# is no gap (every transition of Sofia's rules is on the hour, so that is every hour but the
# spring gap) converts by subtraction; the gap hour, or an hour whose offset changes inside it
# (historical LMT changes), is marked None and always takes the full zoneinfo path.
_Hour = tuple[timedelta, timedelta] | None
_HOURS: dict[int, _Hour] = {}
_MAX_HOURS = 50_000  # ~5.7 years of hours, then start afresh (bounded memory)


def _hour(naive: datetime) -> _Hour:
    """(offset at fold=0, offset at fold=1) of the wall-clock hour of ``naive``, or None."""
    key = naive.toordinal() * 24 + naive.hour
    try:
        return _HOURS[key]
    except KeyError:
        if len(_HOURS) >= _MAX_HOURS:
            _HOURS.clear()
        start = datetime(naive.year, naive.month, naive.day, naive.hour)
        entry = _HOURS[key] = _probe_hour(start)
        return entry


def _probe_hour(start: datetime) -> _Hour:
    edges = (start, start.replace(minute=59, second=59, microsecond=999_999))
    offsets: dict[int, set[timedelta]] = {
        fold: {e.replace(tzinfo=SOFIA, fold=fold).utcoffset() or timedelta(0) for e in edges} for fold in (0, 1)}
    if len(offsets[0]) != 1 or len(offsets[1]) != 1:
        return None  # the offset changes inside this hour
    try:
        for edge in edges:
            _zoneinfo_to_utc(edge, 0)
            _zoneinfo_to_utc(edge, 1)
    except (LocalTimeError, OverflowError):
        return None  # the spring gap (or the ends of datetime's range): the full path decides
    return (next(iter(offsets[0])), next(iter(offsets[1])))


def is_ambiguous(naive: datetime) -> bool:
    """True inside the repeated autumn hour (the wall time happens twice)."""
    hour = _hour(naive)
    if hour is not None:
        return hour[0] != hour[1]
    local = naive.replace(tzinfo=SOFIA)
    return local.replace(fold=0).utcoffset() != local.replace(fold=1).utcoffset()


def to_utc(naive: datetime, fold: int = 0) -> datetime:
    """A Sofia wall-clock time as aware UTC; the spring gap raises :class:`LocalTimeError`."""
    hour = _hour(naive)
    if hour is not None and (fold == 0 or fold == 1) and naive.tzinfo is None:
        return (naive - hour[fold]).replace(tzinfo=UTC)
    return _zoneinfo_to_utc(naive, fold)


def _zoneinfo_to_utc(naive: datetime, fold: int) -> datetime:
    local = naive.replace(tzinfo=SOFIA, fold=fold)
    utc = local.astimezone(UTC)
    if utc.astimezone(SOFIA).replace(tzinfo=None) != naive:
        raise LocalTimeError(f"local time {naive:%Y-%m-%d %H:%M:%S} does not exist in Europe/Sofia "
                             "(skipped by the daylight-saving change)")
    return utc


def local_to_utc(text: object) -> datetime:
    """One feed time string as aware UTC (a lone time in the repeated hour takes fold=0)."""
    return to_utc(parse_local(text))


def localize_series(times: Sequence[datetime | None]) -> list[datetime | LocalTimeError]:
    """Naive wall times of one series (any order) -> UTC instants, or the error per reading.

    ``None`` entries (unparseable) are skipped and come back as errors. The series direction is
    read from its first and last valid times; the repeated autumn hour is resolved in time order.
    """
    out: list[datetime | LocalTimeError] = [
        LocalTimeError("unreadable time") if t is None else t for t in times]  # all replaced below
    valid = [i for i, t in enumerate(times) if t is not None]
    if not valid:
        return out
    first, last = times[valid[0]], times[valid[-1]]
    order = list(reversed(valid)) if first > last else valid  # type: ignore[operator]
    previous: datetime | None = None  # last wall time seen inside a repeated hour
    second_pass_day = None  # the date whose repeated hour is already in its second occurrence
    for i in order:
        naive = times[i]
        assert naive is not None
        hour = _hour(naive)
        if hour is not None and hour[0] == hour[1] and naive.tzinfo is None:
            out[i] = (naive - hour[0]).replace(tzinfo=UTC)  # an ordinary hour: what to_utc gives
            continue
        fold = 0
        if is_ambiguous(naive):
            day = naive.date()
            if second_pass_day == day or (previous is not None and previous.date() == day
                                          and naive <= previous):
                fold, second_pass_day = 1, day
            previous = naive
        try:
            out[i] = to_utc(naive, fold)
        except LocalTimeError as exc:
            out[i] = exc
    return out


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


__all__ = ["SOFIA", "LocalTimeError", "is_ambiguous", "local_to_utc", "localize_series",
           "parse_local", "parse_slashed", "to_utc"]
