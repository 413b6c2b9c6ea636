"""One retry timing for the whole adapter: exponential backoff with jitter, on an injectable clock.

Every loop that waits before trying again (a source's HTTP request, a broker request, a stream's
batch or delivery, a failing source's next run) takes its delay from a :class:`Backoff`, and
every HTTP client retries the same :data:`TRANSIENT_STATUSES`.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import RetryCallState

from adapter.clock import Clock, sleep

# Answers a later identical request may not get: timeout, too early, too many requests, and the
# server or a gateway failing.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial * 2**(n-1)`` seconds after the n-th consecutive failure, at most ``maximum``;
    plus up to ``jitter`` seconds, and then ± ``spread`` of the delay (both uniform), so that
    many waiting clients do not all come back at once."""

    initial: float
    maximum: float
    jitter: float = 0.0
    spread: float = 0.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failures`` (>= 1) consecutive failures."""
        exponent = max(0, failures - 1)
        # Past the cap the power is not computed (2**1100 as a float overflows).
        base = self.maximum if exponent > 64 else min(self.maximum, self.initial * 2 ** exponent)
        rng = rng or _RNG
        if self.jitter:
            base += rng.uniform(0, self.jitter)
        if self.spread:
            base *= 1 + rng.uniform(-self.spread, self.spread)
        return base

    async def pause(self, failures: int, clock: Clock, rng: random.Random | None = None) -> None:
        """Wait the delay after ``failures`` consecutive failures on ``clock``."""
        await sleep(clock, self.delay(failures, rng))

    def tenacity_wait(self, rng: random.Random | None = None) -> Callable[[RetryCallState], float]:
        """This policy as a tenacity ``wait`` (attempt n failed: the delay after n failures)."""
        return lambda state: self.delay(state.attempt_number, rng)


def clock_sleep(clock: Clock) -> Callable[[float], Awaitable[None]]:
    """``asyncio.sleep`` on ``clock`` (for tenacity's ``sleep``)."""
    return lambda seconds: sleep(clock, seconds)


_RNG = random.Random()
