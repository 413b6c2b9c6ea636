"""New entities' upserts, delivered as they are planned: the broker works on a batch while the adapter maps on.

The early delivery (adapter.sync.early) plans a long fetch's new entities chunk by chunk. Put in
the outbox and read back a window at a time, their batches went out in bursts: the broker sat idle
between windows, the adapter waited on the last answer of each, and every entity cost an outbox
row written, read and deleted plus a state row written twice. The pump keeps up to the client's
concurrency of batches in flight, sends the next as soon as one is answered, and records each answer
in one transaction (``Outbox.send_new``): a confirmed entity enters the state wanted and sent at
once, with no outbox row; anything else is recorded as a delivery pass would (rejected ->
quarantine; not delivered -> the outbox, for the run's final delivery, which meets and reports it).

Nothing is lost by a crash: an entity the broker has not confirmed is not in the state at all, so
the next run plans it again as new (at most the batches in flight are sent twice). Only entities
the state does not hold may go this way, each at most once per run, so their order does not
matter; while batches are in flight the pump holds the outbox's delivery lock, so that no other
deliverer sends a newer plan of one of them first.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from adapter.errors import AdapterError
from adapter.ngsi.batching import OutgoingEntity
from adapter.sync.outbox import DeliveryReport, Outbox
from adapter.sync.state import SyncPlan

if TYPE_CHECKING:
    from adapter.ngsi.client import BrokerClient

logger = logging.getLogger(__name__)


Upsert = tuple[OutgoingEntity, str, frozenset[str]]  # as in SyncPlan.upserts


class UpsertPump:
    """Sends the planned upserts of one run's new entities in batches, up to ``client.concurrency``
    in flight."""

    def __init__(self, outbox: Outbox, client: BrokerClient, tenant: str, source: str, run_id: str) -> None:
        self.outbox = outbox
        self.client = client
        self.report = DeliveryReport()  # everything the pump delivered
        self._plan = (tenant, source, run_id)
        self._queue: deque[Upsert] = deque()
        self._more = asyncio.Event()  # set when operations are queued
        self._taken = asyncio.Event()  # set when a batch leaves the queue
        self._task: asyncio.Task[None] | None = None
        self._stopped = False  # the broker failed us: the rest waits for the final delivery

    @property
    def queued(self) -> int:
        """Operations waiting to be sent (their bytes are held here)."""
        return len(self._queue)

    def add(self, plan: SyncPlan) -> None:
        """Queue a plan's upserts (planned, not applied); sending starts at the caller's next await.
        Once the pump stopped, they go to the outbox at once."""
        if self._stopped:
            self.outbox.store.apply(plan)
            return
        if not plan.upserts:
            return
        self._queue.extend(plan.upserts)
        self._more.set()
        if self._task is None or self._task.done():
            self._reap()
            self._task = asyncio.ensure_future(self._run())

    async def room(self, limit: int) -> None:
        """Wait until at most ``limit`` operations are queued (or the pump stopped): the caller's
        bound on what the pump holds, without letting the broker run dry."""
        while len(self._queue) > limit and self._task is not None and not self._task.done():
            self._taken.clear()
            taken = asyncio.ensure_future(self._taken.wait())
            await asyncio.wait([self._task, taken], return_when=asyncio.FIRST_COMPLETED)
            taken.cancel()

    async def drain(self) -> None:
        """Wait until everything queued was sent and answered (or the pump stopped)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
        self._reap()

    def cancel(self) -> None:
        """Stop sending (the run failed or was cancelled): what is not confirmed is not in the
        state, so the next run plans it again."""
        self._stopped = True
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()

    def _reap(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.debug("upsert pump stopped: %r", task.exception())

    async def _run(self) -> None:
        size = max(1, self.client.batch_max_entities)
        depth = max(1, self.client.concurrency)
        in_flight: set[asyncio.Future[Any]] = set()
        async with self.outbox.delivering:
            try:
                while True:
                    while self._queue and len(in_flight) < depth and not self._stopped:
                        batch = SyncPlan(*self._plan, upserts=[self._queue.popleft()
                                                               for _ in range(min(size, len(self._queue)))])
                        in_flight.add(asyncio.ensure_future(self._send(batch)))
                        self._taken.set()
                    if not in_flight:
                        return
                    self._more.clear()
                    more = asyncio.ensure_future(self._more.wait())
                    done, _ = await asyncio.wait({*in_flight, more}, return_when=asyncio.FIRST_COMPLETED)
                    more.cancel()
                    in_flight.difference_update(done)
            finally:
                for future in in_flight:
                    future.cancel()

    async def _send(self, batch: SyncPlan) -> None:
        try:
            go_on = await self.outbox.send_new(self.client, batch, self.report)
        except AdapterError as exc:  # not recorded: into the outbox, for the final delivery
            logger.debug("early delivery stopped: %s", exc)
            self.outbox.store.apply(batch)
            go_on = False
        if not go_on and not self._stopped:
            # The broker failed us: the rest waits in the outbox for the final delivery.
            self._stopped = True
            rest = SyncPlan(*self._plan, upserts=list(self._queue))
            self._queue.clear()
            self.outbox.store.apply(rest)
