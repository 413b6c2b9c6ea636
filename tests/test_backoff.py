"""The one retry timing (adapter.backoff): its delays, and every retry loop waiting on the clock it is given."""

from __future__ import annotations

import asyncio
import random

import httpx

from adapter.backoff import TRANSIENT_STATUSES, Backoff
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import BrokerClient, RetryPolicy
from adapter.sources.http import FetchOptions, PayloadFetcher


class RecordingClock:
    """A clock whose waits are recorded and return at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def time(self) -> float:
        return 0.0

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        self.waits.append(timeout)


def test_delays_double_from_the_initial_wait_up_to_the_cap() -> None:
    policy = Backoff(0.5, 30.0)
    assert [policy.delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert policy.delay(5000) == 30.0  # no overflow however long the failures last


def test_jitter_adds_at_most_its_seconds_and_spread_its_share() -> None:
    rng = random.Random(3)
    added = [Backoff(1.0, 10.0, jitter=0.5).delay(2, rng) for _ in range(500)]
    assert all(2.0 <= d <= 2.5 for d in added) and max(added) - min(added) > 0.3
    spread = [Backoff(100.0, 3200.0, spread=0.1).delay(3, rng) for _ in range(500)]
    assert all(360.0 <= d <= 440.0 for d in spread) and max(spread) - min(spread) > 40


def test_sources_and_the_broker_client_retry_the_same_statuses() -> None:
    assert 425 in TRANSIENT_STATUSES and 404 not in TRANSIENT_STATUSES
    for status in sorted(TRANSIENT_STATUSES):
        answers = iter([httpx.Response(status), httpx.Response(200, json=[])])
        clock = RecordingClock()

        async def fetch(answers=answers, clock=clock) -> object:
            http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: next(answers)))
            fetcher = PayloadFetcher(http, FetchOptions(attempts=2, jitter=0), clock=clock)
            return await fetcher.get_json("https://feeds.example/air", source="air")
        assert asyncio.run(fetch()) == []
        assert clock.waits == [0.5], status  # FetchOptions' first backoff, on the given clock

        answers = iter([httpx.Response(status), httpx.Response(204)])
        clock = RecordingClock()

        async def upsert(answers=answers, clock=clock) -> bool:
            http = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: next(answers)))
            client = BrokerClient("http://broker.test", http=http, clock=clock,
                                  retry=RetryPolicy(attempts=2, initial_wait=0.25, max_wait=1))
            entity = OutgoingEntity("urn:ngsi-ld:T:1", "T", {"id": "urn:ngsi-ld:T:1", "type": "T"}, [])
            return (await client.upsert([entity])).ok
        assert asyncio.run(upsert()), status
        assert len(clock.waits) == 1 and 0.25 <= clock.waits[0] <= 0.5, status


class ManualClock:
    """A clock that moves only by the waits asked of it, each at once."""

    def __init__(self) -> None:
        self.now = 1_767_225_600.0
        self.waits: list[float] = []

    def time(self) -> float:
        return self.now

    async def wait(self, event: asyncio.Event, timeout: float) -> None:
        self.waits.append(timeout)
        self.now += timeout


def test_the_broker_clients_retry_time_limit_runs_on_the_given_clock() -> None:
    requests: list[httpx.Request] = []

    def unavailable(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(503)

    clock = ManualClock()

    async def upsert() -> bool:
        http = httpx.AsyncClient(transport=httpx.MockTransport(unavailable))
        client = BrokerClient("http://broker.test", http=http, clock=clock,
                              retry=RetryPolicy(attempts=1000, max_seconds=10, initial_wait=1, max_wait=2))
        entity = OutgoingEntity("urn:ngsi-ld:T:1", "T", {"id": "urn:ngsi-ld:T:1", "type": "T"}, [])
        return (await client.upsert([entity])).ok
    assert not asyncio.run(upsert())
    # Attempts stop once 10 s have passed on the clock (not the attempt cap): the last wait crossed it.
    assert len(requests) == len(clock.waits) + 1 < 1000
    assert sum(clock.waits[:-1]) < 10 <= sum(clock.waits)
