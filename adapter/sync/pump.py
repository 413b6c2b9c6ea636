"""Upserts just enqueued, delivered as they come: the broker works on a batch while the adapter maps on.

The early delivery (adapter.sync.early) enqueues a long fetch's new entities chunk by chunk. Read
back from the outbox a window at a time, their batches went out in bursts: the broker sat idle
between windows, and the adapter waited on the last answer of each. The pump takes a chunk's
operations as the state wrote them (the same seqs and bytes, see ``outbox.enqueued_upserts``),
keeps up to the client's concurrency of batches in flight, and sends the next batch as soon as one
is answered. Each answer is committed on arrival (``Outbox.send_batch``, the transaction of a
delivery pass), so durability is the outbox's: a crash re-sends at most the batches in flight.

Only operations of entities without other pending work may go this way, in any order: the early
delivery enqueues only entities the state did not hold. While batches are in flight the pump holds
the outbox's delivery lock, so no other deliverer sends them meanwhile. Whatever is not confirmed
(transient failures, a broker down, a lost @context) stays in the outbox for the run's final
delivery, which meets and reports it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

from adapter.errors import AdapterError
from adapter.sync.outbox import DeliveryReport, Outbox, OutboxOp

if TYPE_CHECKING:
    from adapter.ngsi.client import BrokerClient

logger = logging.getLogger(__name__)


class UpsertPump:
    """Sends queued upserts in batches, up to ``client.concurrency`` in flight."""

    def __init__(self, outbox: Outbox, client: BrokerClient) -> None:
        self.outbox = outbox
        self.client = client
        self.report = DeliveryReport()  # everything the pump delivered
        self._queue: deque[OutboxOp] = deque()
        self._more = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False  # the broker failed us: the rest waits for the final delivery

    @property
    def queued(self) -> int:
        """Operations waiting to be sent (their bytes are held here)."""
        return len(self._queue)

    def add(self, ops: list[OutboxOp]) -> None:
        """Queue operations already in the outbox; sending starts at the caller's next await."""
        if self._stopped or not ops:
            return
        self._queue.extend(ops)
        self._more.set()
        if self._task is None or self._task.done():
            self._reap()
            self._task = asyncio.ensure_future(self._run())

    async def drain(self) -> None:
        """Wait until everything queued was sent and answered (or the pump stopped)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])
        self._reap()

    def cancel(self) -> None:
        """Stop sending (the run failed or was cancelled): what is unconfirmed stays in the outbox."""
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
                        batch = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
                        in_flight.add(asyncio.ensure_future(self._send(batch)))
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

    async def _send(self, batch: list[OutboxOp]) -> None:
        try:
            go_on = await self.outbox.send_batch(self.client, batch, self.report)
        except AdapterError as exc:  # the final delivery meets (and reports) it again
            logger.debug("early delivery stopped: %s", exc)
            go_on = False
        if not go_on:
            self._stopped = True
            self._queue.clear()
