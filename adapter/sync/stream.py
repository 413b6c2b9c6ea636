"""A streaming source end to end: micro-batches of messages -> outbox -> acknowledgement -> broker.

One task takes a batch from the source (every N messages or T ms after the first, whichever comes
first), maps it, coalesces repeated readings of one entity into one update with the newest value
(``adapter.mapping.base.merge``), enqueues the result in the durable outbox and quarantines what
could not be read, all committed before the batch is acknowledged. A second task delivers the
outbox to the broker, so a slow or absent broker never holds up acknowledgements; the outbox keeps
the work until the broker confirms it. A stream never lists all its entities, so nothing is
deleted because it was not seen.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from adapter.backoff import Backoff
from adapter.clock import Clock, SystemClock, sleep
from adapter.errors import FatalError, MappingError
from adapter.mapping.base import Mapped, Rejected, fold
from adapter.ngsi.serialize import Form, to_dict
from adapter.sources.base import RawRecord
from adapter.sync.history import Series
from adapter.sync.pipeline import Pipeline, RecordMapper
from adapter.sync.quarantine import QuarantineEntry
from adapter.sync.report import ReportBuilder, SyncReport
from adapter.sync.state import SyncPlan

logger = logging.getLogger(__name__)

MAX_DELIVERY_BACKOFF = 30.0
STORE_BACKOFF = Backoff(2.0, MAX_DELIVERY_BACKOFF)  # a batch the state file cannot take
DELIVERY_BACKOFF = Backoff(0.5, MAX_DELIVERY_BACKOFF)  # a broker that is down
DELIVERY_MAX_OPS = 2000  # operations per delivery pass: a report (and a turn for the consumer) after each
MAX_DELIVERY_PAUSE = 1.0  # s between passes at most, however long the last one took
MAX_CLOCK_AHEAD = 600  # s a reading may be dated after its arrival (device clocks drift)
_REJECTION_LOG_INTERVAL = 60.0


def _not_ahead(result: Mapped | Rejected, record: RawRecord, received: float) -> Mapped | Rejected:
    """Refuse a reading dated well after its arrival (`received`, unix time).

    Stream readings older than the newest stored one are dropped as stale, so one reading from a
    device whose clock runs years ahead would otherwise silence that sensor until then.
    """
    if isinstance(result, Rejected):
        return result
    observed = result.entity.observation_time()
    if observed is None:
        return result
    ahead = observed.timestamp() - received
    if ahead > MAX_CLOCK_AHEAD:
        return Rejected.of(record, f"observation time {observed.isoformat()} is {ahead / 60:,.0f} minutes "
                                   f"after the message arrived (more than {MAX_CLOCK_AHEAD // 60} allowed): "
                                   "is the device's clock wrong?")
    return result


def _fold(by_id: dict[str, Mapped], origins: dict[str, list[Any]], result: Mapped, origin: Any,
          readings: dict[str, list[Any]] | None = None) -> None:
    """Coalesce a reading into the batch (newest state wins) and note where it came from (and,
    with ``readings``, every reading: each message is one, and the history keeps them all)."""
    fold(by_id, result)
    key = result.entity.id
    origins.setdefault(key, []).append(origin)
    if readings is not None:
        readings.setdefault(key, []).extend((*result.history, result.entity))


class StreamMessage(Protocol):
    """What a streaming source hands out (adapter.sources.mqtt.MQTTMessage)."""

    topic: str
    payload: bytes
    received_at: float  # unix time
    received_monotonic: float


class StreamSource(Protocol):
    """A source of message batches that are acknowledged once durable."""

    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    async def receive(self, max_messages: int, max_wait: float) -> Sequence[Any]: ...
    def ack(self, messages: Sequence[Any]) -> int: ...
    def record(self, message: Any) -> RawRecord: ...
    def replay(self, topic: str, payload: bytes) -> RawRecord: ...
    def lag(self) -> float: ...
    def status(self) -> dict[str, Any]: ...


@dataclass
class StreamBatch:
    """What one micro-batch did."""

    source: str
    messages: int = 0
    entities: int = 0  # entities after coalescing
    coalesced: int = 0  # readings folded into a newer one of the same entity
    enqueued: int = 0  # entities that changed and went to the outbox
    history: int = 0  # attribute instances enqueued for the temporal API (readings not coalesced away)
    stale: int = 0  # entities whose reading was older than one already enqueued
    quarantined: int = 0
    latency: float = 0.0  # first message received -> batch acknowledged (s)


@dataclass
class StreamStatus:
    """Totals of one stream (served by /status)."""

    name: str
    batches: int = 0
    messages: int = 0
    coalesced: int = 0
    enqueued: int = 0
    history: int = 0  # attribute instances enqueued for the temporal API
    stale: int = 0
    quarantined: int = 0
    sent: int = 0
    rejected: int = 0
    pending: int = 0
    last_batch_at: float | None = None
    last_delivery: dict[str, Any] | None = None
    last_error: str | None = None
    rejections: list[str] = field(default_factory=list)  # the last few reasons

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class StreamRunner:
    """Runs one streaming source into the pipeline's outbox and broker."""

    def __init__(self, source: StreamSource, mapper: RecordMapper, pipeline: Pipeline, *,
                 batch_max_messages: int = 500, batch_max_ms: int = 100,
                 on_batch: Callable[[StreamBatch], None] | None = None,
                 on_delivery: Callable[[SyncReport], None] | None = None, deliver: bool = True,
                 history: bool = True, clock: Clock | None = None) -> None:
        self.source = source
        self.history = history  # every reading also goes to the broker's temporal API
        self.clock = clock or SystemClock()  # what retries wait on
        self.deliver = deliver  # False in a worker process: its parent delivers the outbox
        self.name = source.name
        self.mapper = mapper
        self.pipeline = pipeline
        self.batch_max_messages = batch_max_messages
        self.batch_max_wait = batch_max_ms / 1000
        self.on_batch = on_batch
        self.on_delivery = on_delivery
        self.status = StreamStatus(self.name)
        self._work = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_rejection_log = 0.0

    # --- one batch -------------------------------------------------------------------------------

    def process(self, messages: Sequence[Any]) -> StreamBatch:
        """Map, coalesce, enqueue and quarantine one batch, then acknowledge it."""
        batch = StreamBatch(self.name, messages=len(messages))
        by_id: dict[str, Mapped] = {}
        sources: dict[str, list[Any]] = {}  # entity id -> its messages
        rejected: list[tuple[Any, Rejected]] = []
        readings: dict[str, list[Any]] | None = {} if self.history else None
        for message in messages:
            record = self.source.record(message)
            result = _not_ahead(self.mapper(record), record, message.received_at)
            if isinstance(result, Rejected):
                rejected.append((message, result))
                continue
            _fold(by_id, sources, result, message, readings)
        batch.coalesced = len(messages) - len(rejected) - len(by_id)
        pipeline = self.pipeline
        documents: dict[str, dict[str, Any]] = {}
        with pipeline.state.transaction() as db:  # the batch's states and readings: one commit
            plan, unencodable = self._enqueue(by_id, db, documents)
            if readings:
                batch.history = pipeline.enqueue_history(self.name, [
                    Series(by_id[key].entity, found, pipeline.context_of(by_id[key].entity), documents[key])
                    for key, found in readings.items() if key not in unencodable], db=db)
        for key, error in unencodable.items():  # e.g. a value JSON cannot carry: this entity only
            message = sources[key][-1]
            rejected.append((message, Rejected(self.name, message.topic, error.reason)))
        batch.entities = len(by_id) - len(unencodable)
        batch.enqueued = len(plan.upserts)
        batch.stale = len(plan.stale)
        if rejected:
            self._quarantine(rejected)
            batch.quarantined = len(rejected)
        # Everything is durable now (outbox and quarantine committed): only now acknowledge.
        self.source.ack(messages)
        if messages:
            batch.latency = time.monotonic() - min(m.received_monotonic for m in messages)
        self._count(batch)
        if batch.enqueued or batch.history:
            self._work.set()
        return batch

    def retry(self, entries: Sequence[QuarantineEntry]) -> list[int]:
        """Map quarantined messages again: those that now map are enqueued and leave quarantine."""
        by_id: dict[str, Mapped] = {}
        entries_of: dict[str, list[QuarantineEntry]] = {}
        quarantine = self.pipeline.quarantine

        def still_bad(entry: QuarantineEntry, error: Any) -> None:  # its reason is refreshed
            quarantine.add(tenant=entry.tenant, source=self.name, kind="record", locator=entry.locator,
                           error=error, payload=entry.payload)

        for entry in entries:
            topic = entry.locator.rsplit(" #", 1)[0]
            record = self.source.replay(topic, entry.payload or b"")
            # Dated far ahead of now, it still would silence the sensor.
            result = _not_ahead(self.mapper(record), record, time.time())
            if isinstance(result, Rejected):
                still_bad(entry, result.error())
                continue
            _fold(by_id, entries_of, result, entry)
        # A retried reading older than the sensor's current one is stale and not sent again.
        with self.pipeline.state.transaction() as db:
            _, unencodable = self._enqueue(by_id, db)
        for key, error in unencodable.items():
            for entry in entries_of[key]:
                still_bad(entry, error)
        resolved = [e.id for key, found in entries_of.items() if key not in unencodable for e in found]
        quarantine.remove(resolved)
        self._work.set()
        return resolved

    def _enqueue(self, by_id: dict[str, Mapped], db: sqlite3.Connection,
                 documents: dict[str, dict[str, Any]] | None = None) -> tuple[SyncPlan, dict[str, MappingError]]:
        """Encode and enqueue mapped entities (in the transaction `db`); also returns the ones
        that cannot be encoded, by entity id. `documents` receives each entity's normalized form
        (its history takes its instances from it)."""
        pipeline = self.pipeline
        items, unencodable = [], {}
        for key, mapped in by_id.items():
            document = to_dict(mapped.entity, Form.NORMALIZED)
            if documents is not None:
                documents[key] = document
            try:
                items.append((pipeline.outgoing(mapped.entity, document), mapped.entity.observation_time()))
            except MappingError as exc:
                unencodable[key] = exc
        plan = pipeline.state.sync_stream(pipeline.tenant, self.name, items, run_id=uuid.uuid4().hex,
                                          upsert_mode=pipeline.upsert_mode, db=db,  # type: ignore[arg-type]
                                          keep_pending=self.history)
        return plan, unencodable

    def _quarantine(self, rejected: list[tuple[Any, Rejected]]) -> None:
        quarantine = self.pipeline.quarantine
        with self.pipeline.state.transaction() as db:
            for message, rejection in rejected:
                # One entry per topic and distinct payload: a sensor repeating the same bad message
                # refreshes its entry instead of adding one per message.
                digest = hashlib.blake2b(message.payload, digest_size=6).hexdigest()
                quarantine.add(tenant=self.pipeline.tenant, source=self.name, kind="record",
                               locator=f"{message.topic} #{digest}", error=rejection.error(),
                               payload=bytes(message.payload), db=db)
        quarantine.trim(self.pipeline.tenant, self.name)
        reasons = [f"{m.topic}: {r.reason}" for m, r in rejected[-5:]]
        self.status.rejections = (self.status.rejections + reasons)[-5:]
        now = time.monotonic()
        if now - self._last_rejection_log >= _REJECTION_LOG_INTERVAL:
            self._last_rejection_log = now
            logger.warning("%s: %d message(s) quarantined, e.g. %s", self.name, len(rejected), reasons[-1])

    def _count(self, batch: StreamBatch) -> None:
        status = self.status
        status.batches += 1
        status.messages += batch.messages
        status.coalesced += batch.coalesced
        status.enqueued += batch.enqueued
        status.history += batch.history
        status.stale += batch.stale
        status.quarantined += batch.quarantined
        status.last_batch_at = time.time()
        if self.on_batch is not None:
            self.on_batch(batch)

    # --- tasks -----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the source and start consuming and delivering."""
        self._track_subscriptions()
        self.source.start()
        self._work.set()  # work left in the outbox by an earlier run goes out first
        self._tasks = [asyncio.create_task(self._consume(), name=f"stream:{self.name}")]
        if self.deliver:
            self._tasks.append(asyncio.create_task(self._deliver(), name=f"deliver:{self.name}"))

    def _track_subscriptions(self) -> None:
        """Unsubscribe filters an earlier configuration left in the persistent session, and
        remember the current ones once the broker has accepted them."""
        client_id = getattr(self.source, "client_id", None)
        subscription = getattr(self.source, "subscription", None)
        if client_id is None or subscription is None:
            return
        state = self.pipeline.state
        current = {subscription(topic) for topic in self.source.topics}  # type: ignore[attr-defined]
        self.source.forget = sorted(set(state.subscriptions(client_id)) - current)  # type: ignore[attr-defined]
        loop = asyncio.get_running_loop()

        def subscribed(filters: list[str]) -> None:  # paho's thread -> the event loop's
            loop.call_soon_threadsafe(state.set_subscriptions, client_id, filters)
        self.source.on_subscribed = subscribed  # type: ignore[attr-defined]

    async def stop(self) -> None:
        """Stop between batches (a batch is never cut between outbox and ack), then disconnect."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.to_thread(self.source.stop)

    async def _consume(self) -> None:
        failures = 0
        while True:
            messages = await self.source.receive(self.batch_max_messages, self.batch_max_wait)
            while True:
                try:
                    self.process(messages)
                    failures = 0
                    break
                except Exception as exc:  # noqa: BLE001 - e.g. the state file is full or locked
                    # Not acknowledged: keep the batch and retry it, while the broker holds back
                    # new messages once the receive window is full.
                    failures += 1
                    self.status.last_error = f"cannot store a batch: {type(exc).__name__}: {exc}"
                    if failures == 1:
                        logger.exception("%s: cannot store a batch; retrying", self.name)
                    await STORE_BACKOFF.pause(failures, self.clock)
            # With a backlog `receive` returns without suspending: let the delivery task (and
            # whatever else shares the loop) have its turn between batches, or it starves.
            await asyncio.sleep(0)

    async def _deliver(self) -> None:
        down = 0  # consecutive deliveries that sent nothing with work waiting
        while True:
            await self._work.wait()
            self._work.clear()
            building = ReportBuilder(self.name, "", datetime.now(UTC).isoformat(timespec="seconds"))
            started = time.monotonic()
            try:
                await self.pipeline.deliver(building, source=self.name, max_ops=DELIVERY_MAX_OPS)
            except FatalError as exc:
                building.last_error = str(exc)
                building.pending = self._pending()
            except Exception as exc:  # noqa: BLE001 - e.g. the state file locked or full: retry later
                building.last_error = f"delivery failed: {type(exc).__name__}: {exc}"
                building.pending = max(self._pending(), 1)  # (the backoff below needs it non-zero)
            building.duration = time.monotonic() - started
            report = building.freeze()
            self._delivered(report)
            waiting = report.pending + report.history_pending
            if waiting and not (report.sent or report.rejected or report.history_sent):
                down += 1  # the broker is down
                await DELIVERY_BACKOFF.pause(down, self.clock)
                self._work.set()
            elif waiting:
                # More waits: a pass again after a pause as long as this one took, so delivery
                # takes at most about half the time and the consumer the rest (receiving and
                # storing). Meanwhile newer states of an entity replace its pending update where
                # no reading is lost by it (SyncPlan.keep_pending): fewer, fuller upserts.
                await sleep(self.clock, min(report.duration, MAX_DELIVERY_PAUSE))
                self._work.set()
            else:
                down = 0

    def _pending(self) -> int:
        try:
            return self.pipeline.outbox.pending(tenant=self.pipeline.tenant, source=self.name)
        except Exception:  # noqa: BLE001 - the state file itself is what fails
            return self.status.pending

    def _delivered(self, report: SyncReport) -> None:
        status = self.status
        status.sent += report.sent
        status.rejected += report.rejected
        status.pending = report.pending
        if report.last_error != status.last_error:
            if report.last_error:
                logger.warning("%s: delivery failed: %s", self.name, report.last_error)
            elif status.last_error:
                logger.info("%s: delivery recovered", self.name)
        status.last_error = report.last_error
        status.last_delivery = {"at": report.started_at, "sent": report.sent, "rejected": report.rejected,
                                "pending": report.pending, "seconds": round(report.duration, 4)}
        if self.on_delivery is not None:
            self.on_delivery(report)

    def as_dict(self) -> dict[str, Any]:
        """Stream totals and the source's connection state (for /status)."""
        return {**self.status.as_dict(), "kind": "stream", "source": self.source.status(),
                "batch_max_messages": self.batch_max_messages,
                "batch_max_ms": round(self.batch_max_wait * 1000)}
