"""Early delivery: a long fetch's new entities reach the broker while the rest is mapped.

Mapping a large layer takes seconds, and so does the broker's work on what it receives; done one
after the other they add up. Once a fetch has mapped ``threshold`` entities not yet planned, those
the state does not hold are planned (upserts only, exactly as the final plan would: the state diff
is the same) and handed to an upsert pump (adapter.sync.pump), which keeps batches in flight while
the mapping loop goes on (it lets them run every few hundred records) and records each answer.
Entity deletes still wait for the end of a complete fetch (the final plan). An entity planned early
is let go by the fetch (memory stays flat in the layer size) unless it carries readings; a later
record giving the same entity makes the run read the source again to merge them. Small sources
never reach the threshold and run as before. What the pump holds is bounded (MAX_QUEUED
operations): beyond that the fetch waits for it.

What the pump could not deliver waits in the outbox for the final delivery of the run, which
reports (or raises) what stops it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from adapter.sync.outbox import DeliveryReport
from adapter.sync.pump import UpsertPump

if TYPE_CHECKING:
    from adapter.mapping.base import Mapped
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.report import ReportBuilder

# Entities mapped and not yet planned: one batch, so the broker starts soon and the run ends with
# little left to send.
EARLY_DELIVERY_THRESHOLD = 1000
MAX_QUEUED = 5000  # operations the pump may queue (their bytes) before the fetch waits for it


class EarlyDelivery:
    """The ``progress`` hook of one run's fetch (``map_fetch``): enqueue in chunks, deliver meanwhile."""

    def __init__(self, pipeline: Pipeline, name: str, report: ReportBuilder, run_id: str, *,
                 threshold: int = EARLY_DELIVERY_THRESHOLD) -> None:
        self.pipeline = pipeline
        self.name = name
        self.report = report
        self.run_id = run_id
        self.threshold = max(1, threshold)
        self.enqueued: dict[str, Mapped] = {}  # entity id -> the result planned early (by identity)
        # Planned early and let go by the fetch (entity id -> type): held no more, memory stays flat.
        self.let_go: dict[str, str] = {}
        self.upserted: set[str] = set()  # ids the early plans sent as upserts
        self.failed: dict[str, Mapped] = {}  # quarantined early (could not be encoded)
        self._waiting: list[str] = []
        client = pipeline.client
        self._pump = UpsertPump(pipeline.outbox, client, pipeline.tenant, name, run_id) \
            if client is not None else None

    async def __call__(self, by_id: dict[str, Mapped], fresh: list[str]) -> None:
        self._waiting.extend(fresh)
        if len(self._waiting) >= self.threshold:
            self._enqueue(by_id)
        if self._pump is not None:
            if self._pump.queued > MAX_QUEUED:
                await self._pump.room(MAX_QUEUED)
            else:
                await asyncio.sleep(0)  # the answers in and the next batches out, now

    def _enqueue(self, by_id: dict[str, Mapped]) -> None:
        # Only entities the state does not hold yet (a first sync, added features): a known entity
        # may be one built from several records, and sending it before its last record is read
        # would send a half-built entity, then the whole one, on every run. Being new, they have
        # no other pending work either, so the pump may send them in any order.
        known = self.pipeline.state.held(self.pipeline.tenant, self.name, self._waiting)
        chunk = {i: by_id[i] for i in self._waiting if i not in known and i not in self.upserted}
        self._waiting = []
        if not chunk:
            return
        outgoing = self.pipeline.encodable(chunk, self.report)
        if len(outgoing) < len(chunk):  # (rare: some could not be encoded)
            encoded = {entity.id for entity in outgoing}
            self.failed.update((i, m) for i, m in chunk.items() if i not in encoded)
        state = self.pipeline.state
        plan = state.plan(self.pipeline.tenant, self.name, outgoing, run_id=self.run_id, complete=False,
                          delete_missing=False, upsert_mode=self.pipeline.upsert_mode)  # type: ignore[arg-type]
        if self._pump is not None:
            self._pump.add(plan)  # recorded in the state as the broker answers
        else:
            state.apply(plan)
        for entity in outgoing:
            mapped = chunk[entity.id]
            if mapped.history:  # its readings are enqueued with the final plan
                self.enqueued[entity.id] = mapped
            else:
                del by_id[entity.id]
                self.let_go[entity.id] = entity.type
        self.upserted.update(entity.id for entity, _, _ in plan.upserts)

    def unchanged_since(self, by_id: dict[str, Mapped]) -> set[str]:
        """Ids enqueued early whose result has not changed since (no later record merged in)."""
        return {i for i, mapped in self.enqueued.items() if by_id.get(i) is mapped} | self.gone(by_id).keys()

    def gone(self, by_id: dict[str, Mapped]) -> dict[str, str]:
        """Entities let go after their early plan that no later record gave again (id -> type)."""
        return {i: t for i, t in self.let_go.items() if i not in by_id}

    def lost_merge(self, by_id: dict[str, Mapped]) -> bool:
        """A record gave an entity already let go: the merge needs its first record, which is no
        longer held, so the source must be read again (without early delivery)."""
        return not self.let_go.keys().isdisjoint(by_id)

    def failed_since(self, by_id: dict[str, Mapped]) -> set[str]:
        """Ids quarantined early whose result has not changed since (not to be quarantined twice)."""
        return {i for i, mapped in self.failed.items() if by_id.get(i) is mapped}

    async def finish(self) -> None:
        """Wait for the batches queued and in flight; what they did goes into the report."""
        if self._pump is not None:
            await self._pump.drain()
            self.report.count_delivery(self._pump.report)
            self._pump.report = DeliveryReport()

    def cancel(self) -> None:
        """Stop delivering (the run itself failed or was cancelled)."""
        if self._pump is not None:
            self._pump.cancel()
