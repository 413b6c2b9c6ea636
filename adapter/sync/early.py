"""Early delivery: a long fetch's upserts reach the outbox and the broker while the rest is mapped.

Mapping a large layer takes seconds, and so does the broker's work on what it receives; done one
after the other they add up. Once a fetch has mapped ``threshold`` entities not yet enqueued, they are
planned and applied (upserts and attribute deletes only, exactly as the final plan would: the state
diff is the same) and a delivery starts in the background, which the mapping loop lets run every
few hundred records. Entity deletes still wait for the end of a complete fetch (the final plan), and
an entity merged with a later record after it was enqueued is planned again then. Small sources
never reach the threshold and run as before.

Delivery errors here are left to the final delivery of the run, which finds the same operations
still in the outbox and reports (or raises) what stops them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from adapter.errors import AdapterError

if TYPE_CHECKING:
    from adapter.mapping.base import Mapped
    from adapter.sync.outbox import DeliveryReport
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.report import SyncReport

logger = logging.getLogger(__name__)

EARLY_DELIVERY_THRESHOLD = 5000  # entities mapped and not yet enqueued


class EarlyDelivery:
    """The ``progress`` hook of one run's fetch (``map_fetch``): enqueue in chunks, deliver meanwhile."""

    def __init__(self, pipeline: Pipeline, name: str, report: SyncReport, run_id: str, *,
                 threshold: int = EARLY_DELIVERY_THRESHOLD) -> None:
        self.pipeline = pipeline
        self.name = name
        self.report = report
        self.run_id = run_id
        self.threshold = max(1, threshold)
        self.enqueued: dict[str, Mapped] = {}  # entity id -> the result planned early (by identity)
        self.upserted: set[str] = set()  # ids the early plans sent as upserts
        self.failed: dict[str, Mapped] = {}  # quarantined early (could not be encoded)
        self._waiting: list[str] = []
        self._task: asyncio.Task[DeliveryReport | None] | None = None
        self._deliveries: list[DeliveryReport] = []

    async def __call__(self, by_id: dict[str, Mapped], fresh: list[str]) -> None:
        self._waiting.extend(fresh)
        if len(self._waiting) >= self.threshold:
            self._enqueue(by_id)
        if self._task is not None:
            if self._task.done():
                last = self._collect()
                if last is not None and last.delivered and last.remaining:
                    self._start()  # what the last turn left (it delivers one chunk per turn)
            else:
                await asyncio.sleep(0)  # the delivery's answers and next requests go out now

    def _enqueue(self, by_id: dict[str, Mapped]) -> None:
        # Only entities the state does not hold yet (a first sync, added features): a known entity
        # may be one built from several records, and sending it before its last record is read
        # would send a half-built entity, then the whole one, on every run.
        known = self.pipeline.state.held(self.pipeline.tenant, self.name, self._waiting)
        chunk = {i: by_id[i] for i in self._waiting if i not in known}
        self._waiting = []
        if not chunk:
            return
        outgoing = self.pipeline.encodable(chunk, self.report)
        encoded = {entity.id for entity in outgoing}
        self.failed.update((i, m) for i, m in chunk.items() if i not in encoded)
        plan = self.pipeline.state.sync_snapshot(
            self.pipeline.tenant, self.name, outgoing, run_id=self.run_id, complete=False,
            delete_missing=False, upsert_mode=self.pipeline.upsert_mode)  # type: ignore[arg-type]
        self.enqueued.update((entity.id, chunk[entity.id]) for entity in outgoing)
        self.upserted.update(entity.id for entity, _, _ in plan.upserts)
        self._start()

    def _start(self) -> None:
        if self.pipeline.client is not None and (self._task is None or self._task.done()):
            if self._task is not None:
                self._collect()
            self._task = asyncio.ensure_future(self._deliver())

    async def _deliver(self) -> DeliveryReport | None:
        try:
            # One chunk's worth per turn: a stream waiting to deliver gets the outbox in between.
            return await self.pipeline.outbox.deliver(self.pipeline.client,  # type: ignore[arg-type]
                                                      tenant=self.pipeline.tenant, source=self.name,
                                                      max_ops=self.threshold)
        except AdapterError as exc:  # the final delivery meets (and reports) it again
            logger.debug("%s: early delivery stopped: %s", self.name, exc)
            return None

    def _collect(self) -> DeliveryReport | None:
        task, self._task = self._task, None
        if task is None or task.cancelled() or task.result() is None:
            return None
        self._deliveries.append(task.result())  # type: ignore[arg-type]
        return task.result()

    def unchanged_since(self, by_id: dict[str, Mapped]) -> set[str]:
        """Ids enqueued early whose result has not changed since (no later record merged in)."""
        return {i for i, mapped in self.enqueued.items() if by_id.get(i) is mapped}

    def failed_since(self, by_id: dict[str, Mapped]) -> set[str]:
        """Ids quarantined early whose result has not changed since (not to be quarantined twice)."""
        return {i for i, mapped in self.failed.items() if by_id.get(i) is mapped}

    async def finish(self) -> None:
        """Wait for the delivery in progress and add what it did to the report."""
        if self._task is not None:
            await asyncio.wait([self._task])
            self._collect()
        for delivery in self._deliveries:
            self.report.sent += delivery.upserted
            self.report.deleted += delivery.deleted
            self.report.attrs_deleted += delivery.attrs_deleted
            self.report.rejected += delivery.rejected
            for error in delivery.rejections[: max(0, 20 - len(self.report.rejections))]:
                self.report.rejections.append(str(error))
        self._deliveries = []

    def cancel(self) -> None:
        """Stop the delivery in progress (the run itself failed or was cancelled)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
