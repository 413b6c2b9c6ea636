"""The coordinator: each source on its interval with bounded jitter; failures back off, log once, and never
stop the other sources."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from adapter.errors import AuthError
from adapter.sync.coordinator import MAX_BACKOFF_FACTOR, Coordinator
from adapter.sync.report import SyncReport


@dataclass(frozen=True)
class Source:
    name: str
    interval_seconds: float = 60.0


class FakeRuntime:
    """Answers `sync_source` from a per-source script of outcomes ("ok", "fail", "pending", or an exception)."""

    def __init__(self, scripts: dict[str, list[object]], default: object = "ok") -> None:
        self.scripts = scripts
        self.default = default
        self.calls: dict[str, int] = {name: 0 for name in scripts}
        self.ran = asyncio.Event()

    async def sync_source(self, source: Source) -> SyncReport:
        self.calls[source.name] = self.calls.get(source.name, 0) + 1
        self.ran.set()
        script = self.scripts.get(source.name, [])
        outcome = script.pop(0) if script else self.default
        if isinstance(outcome, BaseException):
            raise outcome
        report = SyncReport(source.name, "run", "2026-01-01T00:00:00+00:00", complete=True)
        if outcome == "fail":
            report.complete = False
            report.last_error = "feed answered 500"
        elif outcome == "pending":
            report.pending = 7
        return report


class ManualClock:
    """Time moves only when told: by `advance`, or, with `auto`, by each wait's whole timeout at once."""

    def __init__(self, *, auto: bool = False) -> None:
        self.now = 1_767_225_600.0  # 2026-01-01T00:00:00Z
        self.auto = auto
        self.waits: list[float] = []  # every timeout asked for
        self._advanced = asyncio.Event()
        self._waiting = asyncio.Event()  # set whenever a wait begins or goes back to sleep

    def time(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        self.waits.append(timeout)
        deadline = self.now + timeout
        if self.auto:
            self.now = deadline
            self._waiting.set()
            await asyncio.sleep(0)  # the other sources' turn
            return
        while not event.is_set() and self.now < deadline:
            advanced = self._advanced
            self._waiting.set()
            waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(advanced.wait())]
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._advanced.set()
        self._advanced = asyncio.Event()

    async def until(self, check: Callable[[], bool]) -> None:
        """Until `check()` holds, looked at whenever a source waits (no polling)."""
        async def waited() -> None:
            while not check():
                await self.waiting()
        await asyncio.wait_for(waited(), timeout=30)  # only so that a bug fails instead of hanging

    async def waiting(self) -> None:
        """Until a source waits (again): after `advance`, it looked at the time and went on or slept."""
        self._waiting.clear()
        await self._waiting.wait()


def coordinator(runtime: FakeRuntime, *names: str, interval: float = 60.0, jitter: float = 0.0,
                clock: ManualClock | None = None) -> Coordinator:
    return Coordinator(runtime, [Source(n, interval) for n in names], jitter=jitter, rng=random.Random(1),
                       clock=clock or ManualClock())


def run_sequence(coord: Coordinator, name: str, n: int) -> list[SyncReport]:
    async def go() -> list[SyncReport]:
        return [await coord.run_source(name) for _ in range(n)]
    return asyncio.run(go())


def test_a_failing_source_logs_once_and_its_recovery_once(caplog):
    runtime = FakeRuntime({"air": ["fail", "fail", "pending", "ok", "ok", "fail", "ok"]})
    coord = coordinator(runtime, "air")
    with caplog.at_level(logging.INFO, logger="adapter.sync.coordinator"):
        run_sequence(coord, "air", 7)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    recoveries = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert warnings == ["air failed: feed answered 500", "air failed: feed answered 500"]
    assert recoveries == ["air recovered after 3 failed run(s)", "air recovered after 1 failed run(s)"]
    status = coord.status["air"]
    assert status.runs == 7 and status.failures == 0 and status.last_error is None
    assert status.last_success is not None


def test_pending_outbox_work_counts_as_a_failure_with_a_reason():
    coord = coordinator(FakeRuntime({"parks": ["pending"]}), "parks")
    run_sequence(coord, "parks", 1)
    assert coord.status["parks"].failures == 1
    assert coord.status["parks"].last_error == "7 operations pending"


def test_failures_back_off_and_the_delay_is_capped():
    runtime = FakeRuntime({"traffic": ["fail"] * 9}, default="ok")
    coord = coordinator(runtime, "traffic", interval=10.0)
    status = coord.status["traffic"]
    delays = [coord.delay(status)]
    for _ in range(9):
        run_sequence(coord, "traffic", 1)
        delays.append(coord.delay(status))
    assert delays[:7] == [10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 320.0]
    assert max(delays) == 10.0 * MAX_BACKOFF_FACTOR
    run_sequence(coord, "traffic", 1)  # recovery resets the interval
    assert coord.delay(status) == 10.0


def test_jitter_stays_within_its_bounds():
    coord = coordinator(FakeRuntime({"a": []}), "a", interval=100.0, jitter=0.1)
    status = coord.status["a"]
    delays = [coord.delay(status) for _ in range(2000)]
    assert all(90.0 <= d <= 110.0 for d in delays)
    assert max(delays) - min(delays) > 10.0  # it does spread the runs
    status.failures = 2
    assert all(360.0 <= coord.delay(status) <= 440.0 for _ in range(500))


def test_first_refresh_done_once_every_source_ran_even_if_it_failed():
    coord = coordinator(FakeRuntime({"a": ["fail"], "b": ["ok"]}), "a", "b")
    assert not coord.first_refresh_done
    run_sequence(coord, "b", 1)
    assert not coord.first_refresh_done
    run_sequence(coord, "a", 1)
    assert coord.first_refresh_done
    assert coord.status["a"].failures == 1


@pytest.mark.parametrize("error", [AuthError("broker refused access: 401"), RuntimeError("mapper bug")],
                         ids=["fatal", "unexpected"])
def test_a_failing_source_does_not_stop_the_others(error):
    runtime = FakeRuntime({"broken": [error] * 1000, "fine": []})
    clock = ManualClock(auto=True)
    coord = coordinator(runtime, "broken", "fine", clock=clock)

    async def go() -> None:
        coord.start()
        try:
            await clock.until(lambda: runtime.calls["fine"] >= 5 and runtime.calls["broken"] >= 2)
            assert all(not t.done() for t in coord._tasks), "a source loop ended"
        finally:
            await coord.stop()
    asyncio.run(go())
    assert runtime.calls["fine"] >= 5 and runtime.calls["broken"] >= 2
    broken = coord.status["broken"]
    assert broken.failures == runtime.calls["broken"] and str(error) in (broken.last_error or "")
    assert coord.status["fine"].failures == 0


def test_trigger_runs_a_source_before_its_interval():
    runtime = FakeRuntime({"a": []})
    clock = ManualClock()
    coord = coordinator(runtime, "a", interval=3600.0, clock=clock)

    async def go() -> int:
        coord.start()
        try:
            await clock.until(lambda: len(clock.waits) == 1)
            assert runtime.calls["a"] == 1 and coord.status["a"].next_run == clock.now + 3600.0
            coord.status["a"].trigger.set()
            await clock.until(lambda: len(clock.waits) == 2)
            return runtime.calls["a"]
        finally:
            await coord.stop()
    assert asyncio.run(go()) == 2


def test_a_source_runs_again_once_its_interval_has_passed_and_not_before():
    runtime = FakeRuntime({"a": ["ok", "fail"]})
    clock = ManualClock()
    coord = coordinator(runtime, "a", interval=600.0, clock=clock)

    async def go() -> None:
        coord.start()
        try:
            await clock.until(lambda: len(clock.waits) == 1)
            assert coord.status["a"].last_success == clock.now
            clock.advance(599.0)
            await clock.waiting()  # woken, it found its time not come and sleeps again
            assert runtime.calls["a"] == 1 and len(clock.waits) == 1
            clock.advance(1.0)
            await clock.until(lambda: len(clock.waits) == 2)
            assert runtime.calls["a"] == 2
            assert clock.waits == [600.0, 1200.0]  # the failed second run backs off
            assert coord.status["a"].next_run == clock.now + 1200.0
        finally:
            await coord.stop()
    asyncio.run(go())
