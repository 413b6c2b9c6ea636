"""Smart Burgas local times: Europe/Sofia -> UTC across both daylight-saving changes, any series order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapter.mapping import MAPPERS, Mapped, map_one
from adapter.mapping.localtime import (
    SOFIA,
    LocalTimeError,
    is_ambiguous,
    local_to_utc,
    localize_series,
    parse_local,
    parse_slashed,
)
from tests.smartburgas_records import FETCHED_AT, aq_row, aq_station, detector, record, sample_records

# 2026: EET -> EEST on 29 March (03:00-03:59 skipped); 2025: EEST -> EET on 26 October
# (03:00-03:59 twice).


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_winter_and_summer_times_get_their_offsets():
    assert local_to_utc("2026-02-27 15:00:05") == utc("2026-02-27T13:00:05")  # EET, UTC+2
    assert local_to_utc("2026-07-01 15:00:05") == utc("2026-07-01T12:00:05")  # EEST, UTC+3


def test_underscore_between_date_and_time_is_accepted():
    assert local_to_utc("2026-02-27_15:00:05") == local_to_utc("2026-02-27 15:00:05")


@pytest.mark.parametrize("text", ["", "2026-02-27", "27.02.2026 15:00", "2026-02-30 10:00:00",
                                  "2026-02-27 25:00:00", None, 1772197205, "x" * 500])
def test_unreadable_times_raise_with_the_value(text):
    with pytest.raises(LocalTimeError):
        local_to_utc(text)


def test_a_time_in_the_spring_gap_does_not_exist():
    with pytest.raises(LocalTimeError, match="does not exist"):
        local_to_utc("2026-03-29 03:30:00")


def test_a_lone_time_in_the_repeated_autumn_hour_is_its_first_occurrence():
    assert is_ambiguous(parse_local("2025-10-26 03:30:00"))
    assert local_to_utc("2025-10-26 03:30:00") == utc("2025-10-26T00:30:00")  # EEST


AUTUMN = ["2025-10-26 02:00:05", "2025-10-26 03:00:06", "2025-10-26 03:00:04", "2025-10-26 04:00:07"]
AUTUMN_UTC = [utc("2025-10-25T23:00:05"), utc("2025-10-26T00:00:06"), utc("2025-10-26T01:00:04"),
              utc("2025-10-26T02:00:07")]


@pytest.mark.parametrize("newest_first", [False, True])
def test_the_repeated_autumn_hour_is_resolved_in_either_series_order(newest_first):
    times = [parse_local(t) for t in AUTUMN]
    expected = list(AUTUMN_UTC)
    if newest_first:
        times, expected = times[::-1], expected[::-1]
    assert localize_series(times) == expected


def test_a_quarter_hour_series_through_the_repeated_hour_stays_strictly_increasing():
    wall = ["02:45", "03:00", "03:15", "03:30", "03:45", "03:00", "03:15", "03:30", "03:45", "04:00"]
    times = [parse_local(f"2025-10-26 {w}:00") for w in wall]
    instants = localize_series(times)
    assert all(b - a == timedelta(minutes=15) for a, b in pairwise(instants))


def _aq_series(times: list[str]) -> list[dict[str, str]]:
    return [aq_row(t, NO2=str(10 + i)) for i, t in enumerate(times)]


@pytest.mark.parametrize("newest_first", [False, True])
def test_air_quality_current_state_is_the_newest_reading_across_the_autumn_change(newest_first):
    rows = _aq_series(AUTUMN)
    if newest_first:
        rows = rows[::-1]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    assert isinstance(mapped, Mapped)
    assert [h.date_observed for h in mapped.history] == AUTUMN_UTC
    assert mapped.entity.date_observed == AUTUMN_UTC[-1]
    assert mapped.entity.no2 == 13.0  # the 04:00 reading's value, whatever the order


@pytest.mark.parametrize("newest_first", [False, True])
def test_a_reading_in_the_spring_gap_is_left_out_with_its_reason_and_the_rest_go_on(newest_first):
    times = ["2026-03-29 02:00:08", "2026-03-29 03:00:05", "2026-03-29 04:00:06"]
    rows = _aq_series(times)
    if newest_first:
        rows = rows[::-1]
    mapped = map_one(MAPPERS["air_quality"], record("air_quality", aq_station(rows)))
    assert [h.date_observed for h in mapped.history] == [utc("2026-03-29T00:00:08"),
                                                         utc("2026-03-29T01:00:06")]
    assert mapped.entity.no2 == 12.0
    (note,) = mapped.notes
    assert "2026-03-29 03:00:05 does not exist" in note


def test_bundled_air_quality_series_crosses_the_spring_change_in_one_hour_steps():
    mapped = map_one(MAPPERS["air_quality"], sample_records("air_quality")[0])
    times = [h.date_observed for h in mapped.history]
    steps = {round((b - a).total_seconds() / 3600) for a, b in pairwise(times)}
    assert steps == {1}  # 04:00 EEST follows 02:00 EET: one hour, not two


def test_traffic_periods_span_the_previous_reading_or_the_nominal_quarter_hour():
    rows = [("32", "18", "2026-02-08 02:00:10"), ("48", "21", "2026-02-08 02:17:51"),
            ("40", "46", "2026-02-08 03:30:00")]  # a gap of 72 minutes before the last
    mapped = map_one(MAPPERS["traffic"], record("traffic", detector(rows)))
    spans = [(h.date_observed_from, h.date_observed_to) for h in mapped.history]
    assert spans[0] == (utc("2026-02-08T00:00:10") - timedelta(minutes=15), utc("2026-02-08T00:00:10"))
    assert spans[1] == (utc("2026-02-08T00:00:10"), utc("2026-02-08T00:17:51"))
    assert spans[2] == (utc("2026-02-08T01:15:00"), utc("2026-02-08T01:30:00"))
    entity = mapped.entity
    assert (entity.intensity, entity.average_vehicle_speed) == (40.0, 46.0)
    assert (entity.date_observed_from, entity.date_observed_to) == spans[2]


def test_traffic_series_through_the_spring_gap_is_ordered_in_utc():
    rows = [("8", "50", "2026-03-29 02:45:10"), ("12", "51", "2026-03-29 04:02:30")]
    mapped = map_one(MAPPERS["traffic"], record("traffic", detector(rows)))
    first, second = mapped.history
    # 02:45 EET = 00:45Z, 04:02 EEST = 01:02Z: 17 minutes apart, so the period is the gap.
    assert second.date_observed_from == first.date_observed_to == utc("2026-03-29T00:45:10")


def test_stale_car_park_keeps_its_old_time_and_values_but_no_status():
    mapped = map_one(MAPPERS["car_parks"], record("car_parks", {
        "parking_id": "2", "name": "Паркинг Опера", "description": "", "total_lots": "211",
        "total_free_lots": "1", "load": "100", "pic_url": "",
        "data": [{"free_lots": "1", "time": "2024-10-16 16:01:04"},
                 {"free_lots": "0", "time": "2024-10-16 15:01:02"}],
        "geometry": {"type": "Point", "coordinates": [27.4659222364426, 42.5128453969435]}}))
    entity = mapped.entity
    assert entity.observation_date_time == utc("2024-10-16T13:01:04")
    assert (entity.available_spot_number, entity.occupied_spot_number) == (1, 210)
    assert entity.status is None
    assert mapped.history[0].status == ["full"]  # the old readings keep theirs


def test_fresh_car_park_has_a_status():
    mapped = map_one(MAPPERS["car_parks"], record("car_parks", {
        "parking_id": "4", "name": "Паркинг", "total_lots": "96",
        "data": [{"free_lots": "5", "time": "2026-03-30 15:02:07"}],
        "geometry": {"type": "Point", "coordinates": [27.4698, 42.4950]}}, fetched_at=FETCHED_AT))
    assert mapped.entity.status == ["almostFull"]
    assert mapped.entity.occupancy == round(91 / 96, 4)


def test_zone_times_of_day_and_timestamps():
    assert parse_slashed("2000/01/01 07:00:00.000") == datetime(2000, 1, 1, 7)
    assert parse_slashed("2025/10/15 06:00:00.308").microsecond == 308000


@given(start=st.sampled_from([datetime(2025, 10, 25, 22), datetime(2026, 3, 28, 22)]),
       step_minutes=st.sampled_from([15, 60]), count=st.integers(2, 40),
       newest_first=st.booleans(), seconds=st.integers(0, 59))
def test_regular_series_across_a_dst_change_map_to_strictly_increasing_instants(
        start, step_minutes, count, newest_first, seconds):
    # Build the series in UTC and write it as the feed would (naive local wall times).
    first = start.replace(tzinfo=SOFIA).astimezone(UTC) + timedelta(seconds=seconds)
    instants = [first + timedelta(minutes=step_minutes * i) for i in range(count)]
    wall = [i.astimezone(SOFIA).replace(tzinfo=None) for i in instants]
    if newest_first:
        wall, instants = wall[::-1], instants[::-1]
    assert localize_series(wall) == instants
