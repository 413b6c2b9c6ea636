"""Runs each source on its interval, with jitter and backoff, the way Home Assistant's
DataUpdateCoordinator does: the loop owns timing, first-refresh state, last success / last error,
and logs a failure once and the recovery once. A failing source never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from typing import Any

from adapter.clock import Clock, SystemClock
from adapter.errors import FatalError
from adapter.sync.report import SyncReport

logger = logging.getLogger(__name__)

MAX_BACKOFF_FACTOR = 32


@dataclass
class SourceStatus:
    """What the coordinator knows about one source (served by /status)."""

    name: str
    interval: float
    runs: int = 0
    failures: int = 0  # consecutive
    last_report: SyncReport | None = None
    last_success: float | None = None  # unix time
    last_error: str | None = None
    next_run: float | None = None  # unix time
    running: bool = False
    trigger: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"name": self.name, "interval_seconds": self.interval, "runs": self.runs,
                "consecutive_failures": self.failures, "last_success": self.last_success,
                "last_error": self.last_error, "next_run": self.next_run, "running": self.running,
                "last_report": self.last_report.as_dict() if self.last_report else None}


class Coordinator:
    """Schedules configured sources against one Runtime."""

    def __init__(self, runtime: Any, sources: list[Any], *, jitter: float = 0.1,
                 rng: random.Random | None = None, clock: Clock | None = None) -> None:
        self.runtime = runtime
        self.sources = {s.name: s for s in sources}
        self.status = {s.name: SourceStatus(s.name, s.interval_seconds) for s in sources}
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.clock = clock or SystemClock()
        self._locks = {name: asyncio.Lock() for name in self.sources}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def first_refresh_done(self) -> bool:
        """Every source has run at least once (readiness)."""
        return all(s.runs > 0 for s in self.status.values())

    def delay(self, status: SourceStatus) -> float:
        """Seconds until the next run: the interval, backed off after failures, with jitter."""
        factor = min(2 ** status.failures, MAX_BACKOFF_FACTOR) if status.failures else 1
        return status.interval * factor * (1 + self.rng.uniform(-self.jitter, self.jitter))

    async def run_source(self, name: str, *, full: bool = False) -> SyncReport:
        """One run of one source now (also what POST /sync/{source} calls); `full`: map every record."""
        status = self.status[name]
        async with self._locks[name]:
            status.running = True
            try:
                report = await (self.runtime.sync_source(self.sources[name], full=True) if full
                                else self.runtime.sync_source(self.sources[name]))
            except FatalError as exc:
                report = SyncReport(name, "", "")
                report.last_error = str(exc)
            except Exception as exc:  # a bug in one source must not end its loop (or, via gather, all)
                if status.failures == 0:
                    logger.exception("%s: unexpected error", name)
                report = SyncReport(name, "", "")
                report.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                status.running = False
        self._record(status, report)
        return report

    def _record(self, status: SourceStatus, report: SyncReport) -> None:
        status.runs += 1
        status.last_report = report
        if report.ok:
            if status.failures:
                logger.info("%s recovered after %d failed run(s)", status.name, status.failures)
            status.failures = 0
            status.last_success = self.clock.time()
            status.last_error = None
        else:
            if status.failures == 0:
                logger.warning("%s failed: %s", status.name,
                               report.last_error or f"{report.pending} operations wait in the outbox")
            status.failures += 1
            status.last_error = report.last_error or f"{report.pending} operations pending"

    async def _loop(self, name: str) -> None:
        status = self.status[name]
        while True:
            await self.run_source(name)
            wait = self.delay(status)
            status.next_run = self.clock.time() + wait
            status.trigger.clear()
            await self.clock.wait(status.trigger, wait)

    def start(self) -> None:
        """Start one task per source."""
        self._tasks = [asyncio.create_task(self._loop(name), name=f"sync:{name}") for name in self.sources]

    async def stop(self) -> None:
        """Cancel the source tasks and wait for them."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def run_forever(self) -> None:
        """Run until cancelled."""
        self.start()
        try:
            await asyncio.gather(*self._tasks)
        finally:
            await self.stop()
