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


def stuck_after(count: int, closed: list[str]):
    """A producer that yields `count` records, then waits for ever (a stuck upstream)."""
    async def produce(fetch: Fetch) -> AsyncIterator[RawRecord]:
        try:
            for i in range(count):
                yield RawRecord("s", f"features[{i}]", {"i": i}, utcnow())
            await asyncio.Event().wait()
        finally:
            closed.append("closed")
    return produce


def test_a_fetch_past_its_deadline_is_unavailable_and_incomplete() -> None:
    closed: list[str] = []
    fetch = Fetch("s", stuck_after(2, closed))
    fetch.deadline = 0.05
    with pytest.raises(SourceUnavailableError, match=r"within its 0.05 s deadline \(2 records read\)"):
        asyncio.run(drain(fetch))
    assert not fetch.complete and fetch.record_count == 2 and closed == ["closed"]


def test_the_deadline_never_interrupts_the_consumer_only_the_next_wait_on_the_source() -> None:
    fetch = Fetch("s", producer(3))
    fetch.deadline = 0.02
    seen: list[str] = []

    async def run() -> None:
        try:
            async for record in fetch:
                await asyncio.sleep(0.1)  # the consumer's own work (delivery) outlives the deadline
                seen.append(f"done {record.key}")
        except SourceUnavailableError:
            seen.append("deadline")
    asyncio.run(run())
    # The first record comes before the deadline (no wait); its work finishes; the next wait ends.
    assert seen == ["done features[0]", "deadline"] and not fetch.complete


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def run() -> None:
        fetch = Fetch("s", stuck_after(0, []))
        fetch.deadline = 60
        task = asyncio.ensure_future(drain(fetch))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    asyncio.run(run())
