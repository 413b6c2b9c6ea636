"""Fetch: a run is complete only when every record was yielded and nobody said otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapter.errors import SourceUnavailableError
from adapter.sources.base import Fetch, RawRecord, Source, utcnow


def producer(count: int, *, incomplete: str | None = None, fail_after: int | None = None):
    async def produce(fetch: Fetch) -> AsyncIterator[RawRecord]:
        for i in range(count):
            if fail_after is not None and i == fail_after:
                raise SourceUnavailableError("gone", source="s")
            yield RawRecord("s", f"features[{i}]", {"i": i}, utcnow(), "bg", {"en": {"i": i}})
        if incomplete:
            fetch.mark_incomplete(incomplete)
    return produce


async def drain(fetch: Fetch) -> list[RawRecord]:
    return [record async for record in fetch]


def test_exhausted_fetch_is_complete_and_counts_records() -> None:
    fetch = Fetch("s", producer(3))
    records = asyncio.run(drain(fetch))
    assert [r.payload["i"] for r in records] == [0, 1, 2]
    assert fetch.complete and fetch.record_count == 3
    assert fetch.started_at is not None and fetch.finished_at is not None
    assert records[1].in_lang("en") == {"i": 1} and records[1].in_lang("bg") == {"i": 1}
    assert records[1].in_lang("fr") is None


def test_a_source_can_mark_its_run_incomplete() -> None:
    fetch = Fetch("s", producer(2, incomplete="page limit reached"))
    asyncio.run(drain(fetch))
    assert not fetch.complete and fetch.incomplete_reasons == ["page limit reached"]


def test_a_failing_run_is_incomplete_and_keeps_its_error() -> None:
    fetch = Fetch("s", producer(5, fail_after=2))
    with pytest.raises(SourceUnavailableError):
        asyncio.run(drain(fetch))
    assert not fetch.complete and fetch.record_count == 2
    assert isinstance(fetch.error, SourceUnavailableError)


def test_a_run_stopped_early_is_not_complete() -> None:
    async def first_only() -> Fetch:
        fetch = Fetch("s", producer(5))
        iterator = aiter(fetch)
        await anext(iterator)
        await iterator.aclose()  # type: ignore[attr-defined]
        return fetch

    fetch = asyncio.run(first_only())
    assert not fetch.complete


def test_a_fetch_iterates_once() -> None:
    fetch = Fetch("s", producer(1))
    asyncio.run(drain(fetch))
    with pytest.raises(RuntimeError):
        aiter(fetch)


def test_protocol_is_structural() -> None:
    class Dummy:
        name = "dummy"

        def fetch(self) -> Fetch:
            return Fetch(self.name, producer(0))

    assert isinstance(Dummy(), Source)
