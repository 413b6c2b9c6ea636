"""Time as a dependency: what a scheduler reads and waits on, so tests can pass a clock they move."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Protocol


class Clock(Protocol):
    """Unix time, and a wait that an event cuts short."""

    def time(self) -> float: ...

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        """Until `event` is set or `timeout` seconds have passed."""
        ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=timeout)
