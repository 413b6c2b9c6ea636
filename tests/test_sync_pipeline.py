"""The pipeline keeps going past a record it cannot use, and says why (no sockets: no broker)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import orjson
import pytest
from pydantic import ValidationError

from adapter.mapping.base import Mapped
from adapter.sources.base import Fetch, RawRecord
from adapter.sync.pipeline import Pipeline
from adapter.sync.state import StateStore
from data_models import KeyPerformanceIndicator, OffStreetParking

NOW = datetime(2026, 3, 30, tzinfo=UTC)


class ListSource:
    """A source over a fixed list of records."""

    name = "test.kpi"

    def __init__(self, payloads: list[dict]) -> None:
        self.payloads = payloads

    def fetch(self) -> Fetch:
        async def produce(fetch: Fetch):
            for i, payload in enumerate(self.payloads):
                yield RawRecord(self.name, f"rows[{i}]", payload, NOW)
        return Fetch(self.name, produce)


def kpi(record: RawRecord) -> Mapped:
    payload = record.payload
    return Mapped(KeyPerformanceIndicator(
        id=f"urn:ngsi-ld:KeyPerformanceIndicator:test:{payload['n']}", name=f"KPI {payload['n']}",
        kpi_value=payload["value"], date_created=NOW), record=record.key)


def test_an_entity_json_cannot_carry_is_quarantined_and_the_others_go_on(tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")
    pipeline = Pipeline(store, None)
    source = ListSource([{"n": 1, "value": {"total": 3}}, {"n": 2, "value": {"total": 2**70}},
                         {"n": 3, "value": {"total": 5}}])
    report = asyncio.run(pipeline.run_once(source.name, source, kpi))
    assert report.mapped == 3 and report.records_rejected == 1
    [entry] = pipeline.quarantine.entries()
    assert entry.locator == "rows[1]" and "cannot be encoded as JSON" in entry.reason
    queued = {op.entity_id for op in pipeline.outbox.ops()}
    assert queued == {"urn:ngsi-ld:KeyPerformanceIndicator:test:1",
                      "urn:ngsi-ld:KeyPerformanceIndicator:test:3"}
    body = orjson.loads(pipeline.outbox.ops()[0].body)
    assert body["kpiValue"]["value"] == {"total": 3}
    store.close()


@pytest.mark.parametrize("value, reason", [(2**64, "less than or equal to 9223372036854775807"),
                                           (-1, "greater than or equal to 0")])
def test_counts_beyond_64_bits_or_negative_are_refused_by_the_model(value, reason):
    with pytest.raises(ValidationError, match=reason) as caught:
        OffStreetParking(id="urn:ngsi-ld:OffStreetParking:x", available_spot_number=value,
                         location={"type": "Point", "coordinates": [27.47, 42.50]})
    assert caught.value.errors()[0]["loc"] == ("available_spot_number",)


def _mapper(fail: dict[int, Exception]):
    """A FeedMapper (so map_one's error handling applies) that raises `fail[n]` for record n."""
    from adapter.mapping.base import FeedMapper

    def map_kpi(record: RawRecord) -> Mapped:
        error = fail.get(record.payload["n"])
        if error is not None:
            raise error
        return kpi(record)
    return FeedMapper("test.kpi", KeyPerformanceIndicator, map_kpi, "n")


def _two_runs(tmp_path, second: dict[int, Exception], n: int = 4):
    store = StateStore(tmp_path / "state.sqlite3")
    pipeline = Pipeline(store, None)
    source = ListSource([{"n": i, "value": i} for i in range(n)])
    first = asyncio.run(pipeline.run_once(source.name, source, _mapper({})))
    assert first.complete and first.mapped == n
    report = asyncio.run(pipeline.run_once(source.name, source, _mapper(second)))
    deletes = {op.entity_id for op in pipeline.outbox.ops() if op.op == "delete"}
    store.close()
    return report, deletes


def test_a_mapper_bug_on_a_record_deletes_nothing(tmp_path):
    report, deletes = _two_runs(tmp_path, {2: AttributeError("'NoneType' object has no attribute 'x'")})
    assert deletes == set() and report.complete is False and report.mapper_failures == 1
    assert "the mapper failed on 1 record(s): nothing deleted" in report.last_error


def test_a_run_rejecting_most_of_its_records_deletes_nothing(tmp_path):
    bad = ValueError("expected a number")
    report, deletes = _two_runs(tmp_path, {1: bad, 2: bad, 3: bad})
    assert deletes == set() and report.complete is False
    assert report.last_error == "3 of 4 records were rejected: nothing deleted this run"


def test_a_few_rejected_records_still_let_a_complete_run_delete_their_entities(tmp_path):
    report, deletes = _two_runs(tmp_path, {3: ValueError("expected a number")})
    assert report.complete is True and report.last_error is None
    assert deletes == {"urn:ngsi-ld:KeyPerformanceIndicator:test:3"}
