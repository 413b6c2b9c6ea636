"""One MQTT stream consumed by several worker processes, delivered by this one.

One Python process takes 3,000-3,700 MQTT messages/s through paho, mapping and the outbox (the
GIL serialises them). With ``workers: N`` in a stream's configuration, N processes each join the
stream's MQTT *shared subscription* (``$share/<group>/<topic>``: the broker hands every message
to one member) and run :class:`~adapter.sync.stream.StreamRunner` without delivery: receive, map,
coalesce, store in the parent's state file (outbox and quarantine), acknowledge. This process
delivers the outbox to the NGSI-LD broker, as for one stream, and serves their status.

What keeps the guarantees:
- A message is acknowledged by the worker that stored it, after its transaction committed.
- Each worker has its own client id and persistent session (worker 0 the stream's own client id,
  worker n ``<client_id>-w<n>``): messages for a worker that is down wait in the broker, and a
  restarted worker takes them over.
- Readings of one sensor may reach different workers and commit out of order:
  :meth:`StateStore.sync_stream` drops a reading older than one already enqueued for its entity.
- A worker that dies is restarted (with backoff); workers exit when this process goes away, so no
  orphan holds a session.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from adapter.config import MQTTSourceConfig
from adapter.mapping.mqtt import mapper_for
from adapter.ngsi.context import ContextMode
from adapter.settings import Settings
from adapter.sources.mqtt import MQTTSource
from adapter.sync.pipeline import Pipeline
from adapter.sync.stream import StreamBatch, StreamRunner

logger = logging.getLogger(__name__)

STATUS_INTERVAL = 0.5  # s between a worker's status reports
RETIRED_EXIT = 75  # a retiring worker's exit code once its session is drained and ended
RETIRE_QUIET = 2.0  # s without a message after which a retiring worker's session counts as drained
# as MQTTSourceConfig.workers allows: sessions of workers beyond a pool's size are looked for up to here
MAX_WORKERS = 16
MAX_RESTART_DELAY = 30.0
_EVENT_QUEUE_SIZE = 10_000


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker process needs (pickled to a spawned process)."""

    config: MQTTSourceConfig
    settings: Settings
    index: int
    state_file: Path
    tenant: str
    context_mode: str
    context_base_url: str
    upsert_mode: str
    log_level: int
    retire: bool = False  # a worker of an earlier, larger pool: drain its session, then end it


# --- the worker process ----------------------------------------------------------------------------

def run_worker(spec: WorkerSpec, events: Any, stop: Any) -> None:
    """Entry point of a worker process."""
    from adapter.logs import setup_logging

    setup_logging(spec.settings.log_format, spec.log_level)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent decides
    # SIGTERM (a whole process group stopped, e.g. by `timeout` or a service manager): stop
    # between batches. A flag of this process only: the shared stop event is the parent's (and
    # setting it from a signal handler could wait forever on its cross-process lock).
    signal.signal(signal.SIGTERM, _terminate)
    try:
        retired = asyncio.run(_work(spec, events, stop))
    except Exception:  # noqa: BLE001 - reported to the parent, which restarts the worker
        logger.exception("%s worker %d failed", spec.config.name, spec.index)
        raise SystemExit(1) from None
    raise SystemExit(RETIRED_EXIT if retired else 0)


_terminated = False


def _terminate(signum: int, frame: Any) -> None:
    global _terminated
    _terminated = True


async def _work(spec: WorkerSpec, events: Any, stop: Any) -> bool:
    from adapter.sync.state import StateStore

    config = spec.config
    state = StateStore(spec.state_file)
    pipeline = Pipeline(state, None, tenant=spec.tenant, context_mode=ContextMode(spec.context_mode),
                        context_base_url=spec.context_base_url, upsert_mode=spec.upsert_mode)
    source = MQTTSource.from_config(config, spec.settings, worker=spec.index)
    if spec.retire:
        source.topics = []  # subscribe to nothing; what the session held is unsubscribed on connect

    def report(kind: str, payload: dict[str, Any] | None = None) -> None:
        event = (kind, spec.index, payload, source.status(), os.getpid())
        try:
            events.put(event, timeout=5)
        except queue.Full:  # the parent is not reading: counters are lost, never messages
            logger.warning("%s worker %d: status queue full", config.name, spec.index)

    runner = StreamRunner(source, mapper_for(config.name, config.topics), pipeline,
                          batch_max_messages=config.batch_max_messages, batch_max_ms=config.batch_max_ms,
                          on_batch=lambda batch: report("batch", asdict(batch)), deliver=False)
    parent = mp.parent_process()
    await runner.start()
    retired = False
    try:
        quiet_since, seen = None, -1
        while not _terminated and not stop.is_set() and (parent is None or parent.is_alive()):
            report("status")
            await asyncio.sleep(STATUS_INTERVAL)
            if spec.retire:
                status = source.status()
                # Drained: connected, nothing waiting or in hand (all acknowledged), and quiet.
                busy = status["waiting"] or status["acknowledged"] != status["received"]
                if not status["connected"] or busy or status["received"] != seen:
                    quiet_since, seen = time.monotonic(), status["received"]
                elif time.monotonic() - quiet_since >= RETIRE_QUIET:  # type: ignore[operator]
                    source.end_session = retired = True  # its queue is drained: end the session
                    break
    finally:
        await runner.stop()  # between batches: a batch is never cut between outbox and ack
        if retired:
            state.forget_subscriptions(source.client_id)
            logger.info("%s: retired worker %d drained %d message(s); its session is ended",
                        config.name, spec.index, source.received)
        report("retired" if retired else "stopped")
        state.close()
    return retired


# --- the parent side -------------------------------------------------------------------------------

class PooledSource:
    """The stream's source as the service sees it: the workers' connections, summed up.

    Quarantined messages are replayed here (``record``/``replay`` need no connection).
    """

    def __init__(self, template: MQTTSource, workers: int) -> None:
        self.name = template.name
        self.template = template  # never started
        self.workers = workers
        self.reports: dict[int, tuple[float, dict[str, Any]]] = {}  # worker -> (when, status)
        self.restarts = 0
        self.last_exit: str | None = None  # the last worker that exited unasked, and how
        self.retired = 0  # sessions of an earlier, larger pool drained and ended

    def record(self, message: Any) -> Any:
        return self.template.record(message)

    def replay(self, topic: str, payload: bytes) -> Any:
        return self.template.replay(topic, payload)

    def down(self, index: int) -> None:
        """A worker exited: it is not connected, and its share of the messages waits in its session."""
        at, status = self.reports.get(index, (time.monotonic(), {}))
        self.reports[index] = (time.monotonic(), {**status, "connected": False, "subscribed": False, "waiting": 0,
                                                  "lag_seconds": 0.0, "down": True})

    def lag(self) -> float:
        """The largest lag a worker reported, aged by the time since its report; for a worker
        that is down, the time since it went down (its messages wait in the MQTT broker)."""
        now = time.monotonic()
        lags = [now - at if status.get("down") else
                status["lag_seconds"] + (now - at) if status.get("lag_seconds") else 0.0
                for at, status in self.reports.values()]
        return max(lags, default=0.0)

    def status(self) -> dict[str, Any]:
        """JSON-ready: the sums, and each worker's own status."""
        per_worker = [self.reports[i][1] if i in self.reports else {"connected": False}
                      for i in range(self.workers)]
        errors = [w.get("last_error") for w in per_worker if w.get("last_error")]
        return {"broker": str(self.template.address), "client_id": self.template.client_id,
                "protocol": self.template.protocol, "topics": self.template.topics,
                "share_group": self.template.share_group, "workers": self.workers,
                "connected": all(w.get("connected") for w in per_worker),
                "subscribed": all(w.get("subscribed") for w in per_worker),
                "connections": sum(w.get("connections", 0) for w in per_worker),
                "received": sum(w.get("received", 0) for w in per_worker),
                "acknowledged": sum(w.get("acknowledged", 0) for w in per_worker),
                "waiting": sum(w.get("waiting", 0) for w in per_worker),
                "lag_seconds": round(self.lag(), 3), "restarts": self.restarts,
                "last_exit": self.last_exit, "retired_sessions": self.retired,
                "last_error": errors[0] if errors else None, "per_worker": per_worker}

    # The workers connect, receive and acknowledge; these are here for the StreamSource protocol
    # (StreamPool.start runs delivery only, never the runner's receive loop).
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    async def receive(self, max_messages: int, max_wait: float) -> Sequence[Any]:
        raise RuntimeError(f"{self.name}: a pool's messages are received by its worker processes")

    def ack(self, messages: Sequence[Any]) -> int:
        raise RuntimeError(f"{self.name}: a pool's messages are acknowledged by its worker processes")


class StreamPool(StreamRunner):
    """A stream whose messages N worker processes take in; this process delivers the outbox."""

    def __init__(self, config: MQTTSourceConfig, settings: Settings, pipeline: Pipeline,
                 **kwargs: Any) -> None:
        template = MQTTSource.from_config(config, settings, worker=0)  # worker 0 has the stream's id
        super().__init__(PooledSource(template, config.workers), mapper_for(config.name, config.topics),
                         pipeline, batch_max_messages=config.batch_max_messages,
                         batch_max_ms=config.batch_max_ms, **kwargs)
        self.config = config
        self.settings = settings
        self.pooled: PooledSource = self.source  # type: ignore[assignment]
        self._context = mp.get_context("spawn")  # no fork: the parent runs threads and an event loop
        self._events: Any = None
        self._stop: Any = None
        self._processes: dict[int, Any] = {}
        self._retiring: set[int] = set()
        self._failures: dict[int, int] = {}
        self._listener: threading.Thread | None = None
        self._stopping = False

    def _spec(self, index: int) -> WorkerSpec:
        pipeline = self.pipeline
        return WorkerSpec(self.config, self.settings, index, pipeline.state.path, pipeline.tenant,
                          pipeline.context_mode.value, pipeline.context_base_url, pipeline.upsert_mode,
                          logging.getLogger().getEffectiveLevel(), retire=index in self._retiring)

    def _spawn(self, index: int) -> None:
        process = self._context.Process(target=run_worker, args=(self._spec(index), self._events, self._stop),
                                        name=f"{self.name}-w{index}", daemon=True)
        process.start()
        self._processes[index] = process

    async def start(self) -> None:
        """Start the workers, the listener of their reports, delivery and supervision."""
        self._stopping = False
        self._events = self._context.Queue(_EVENT_QUEUE_SIZE)
        self._stop = self._context.Event()
        loop = asyncio.get_running_loop()
        self._listener = threading.Thread(target=self._listen, args=(loop, self._events),
                                          name=f"{self.name}-events", daemon=True)
        self._listener.start()
        self._retiring = set(retired_sessions(self.config, self.pipeline.state))
        for index in (*range(self.config.workers), *sorted(self._retiring)):
            self._spawn(index)
        if self._retiring:
            logger.info("%s: draining and ending the sessions of %d retired worker(s): %s", self.name,
                        len(self._retiring), ", ".join(f"w{k}" for k in sorted(self._retiring)))
        logger.info("%s: %d worker processes share the subscription (group %s)", self.name,
                    self.config.workers, self.pooled.template.share_group)
        self._work.set()  # work left in the outbox by an earlier run goes out first
        self._tasks = [asyncio.create_task(self._deliver(), name=f"deliver:{self.name}"),
                       asyncio.create_task(self._supervise(), name=f"supervise:{self.name}")]

    def _listen(self, loop: asyncio.AbstractEventLoop, events: Any) -> None:
        """Worker reports -> counters and delivery wake-ups, on the event loop (a thread)."""
        while True:
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                if self._stopping and not any(p.is_alive() for p in self._processes.values()):
                    return
                continue
            except (EOFError, OSError, ValueError):
                return
            try:
                loop.call_soon_threadsafe(self._on_event, event)
            except RuntimeError:  # the loop is closed
                return

    def _on_event(self, event: tuple[str, int, dict[str, Any] | None, dict[str, Any], int]) -> None:
        kind, index, payload, status, pid = event
        current = self._processes.get(index)
        if current is not None and current.pid == pid and current.is_alive():
            # (a dead worker's last words must not make it look connected again)
            self.pooled.reports[index] = (time.monotonic(), status)
            if status.get("connected"):
                self._failures[index] = 0
        if kind == "batch" and payload is not None:  # durable whichever process stored it
            batch = StreamBatch(**payload)
            self._count(batch)
            if batch.quarantined:
                self.status.rejections = (self.status.rejections + [f"worker {index}: {batch.quarantined} "
                                                                    "message(s) quarantined"])[-5:]
            if batch.enqueued:
                self._work.set()

    async def _supervise(self) -> None:
        """Restart a worker that exited, with a growing delay if it keeps failing."""
        restart_at: dict[int, float] = {}
        while True:
            await asyncio.sleep(0.5)
            for index, process in list(self._processes.items()):
                if process.is_alive() or self._stopping:
                    continue
                if index in self._retiring and process.exitcode == RETIRED_EXIT:  # drained and ended
                    self._retiring.discard(index)
                    del self._processes[index]
                    self.pooled.reports.pop(index, None)
                    self.pooled.retired += 1
                    continue
                if index not in restart_at:
                    self.pooled.down(index)
                    failures = self._failures.get(index, 0) + 1
                    self._failures[index] = failures
                    delay = min(2.0 ** (failures - 1), MAX_RESTART_DELAY)
                    restart_at[index] = time.monotonic() + delay
                    self.pooled.last_exit = (f"worker {index} exited with code {process.exitcode} at "
                                             f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
                    logger.warning("%s: %s; restarting it in %.0f s", self.name, self.pooled.last_exit, delay)
                elif time.monotonic() >= restart_at[index]:
                    del restart_at[index]
                    self.pooled.restarts += 1
                    self._spawn(index)

    async def stop(self) -> None:
        """Ask the workers to stop between batches, wait for them, then stop delivering."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._stop is not None:
            self._stop.set()
        await asyncio.to_thread(self._join)
        if self._listener is not None:
            await asyncio.to_thread(self._listener.join, 5)
        # Release the queue's and the event's semaphores now, not at interpreter exit.
        if self._events is not None:
            self._events.close()
            self._events.join_thread()
        self._events = self._stop = None
        # What the workers stored after the last delivery waits in the outbox for the next start.

    def _join(self) -> None:
        for process in self._processes.values():
            process.join(15)
            if process.is_alive():
                logger.warning("%s: worker %s did not stop; terminating it", self.name, process.name)
                process.kill()  # (SIGTERM would only ask again for the stop it ignored)
                process.join(5)

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "workers": self.config.workers}


def build_stream(config: MQTTSourceConfig, settings: Settings, pipeline: Pipeline, **kwargs: Any) -> StreamRunner:
    """The runner of a configured stream: in this process, or in `config.workers` worker processes.

    A single-process stream also runs as a pool (of one worker) while sessions of an earlier,
    larger pool still hold shared subscriptions: they must be drained and ended first.
    """
    if config.workers > 1 or retired_sessions(config, pipeline.state):
        return StreamPool(config, settings, pipeline, **kwargs)
    return StreamRunner(MQTTSource.from_config(config, settings), mapper_for(config.name, config.topics),
                        pipeline, batch_max_messages=config.batch_max_messages,
                        batch_max_ms=config.batch_max_ms, **kwargs)


def retired_sessions(config: MQTTSourceConfig, state: Any) -> list[int]:
    """Workers beyond `config.workers` whose sessions still hold subscriptions (state file).

    The broker keeps handing such an offline member its share of new messages until the session
    expires, so they are run once more to drain and end them.
    """
    base = config.client_id or f"burgas-adapter-{config.name}"
    return [k for k in range(max(config.workers, 1), MAX_WORKERS) if state.subscriptions(f"{base}-w{k}")]
