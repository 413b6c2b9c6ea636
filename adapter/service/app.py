"""The service app: one Runtime, the coordinator of polled sources and the streams, behind FastAPI.

``create_app(settings, config)`` returns the app; its lifespan enters the Runtime (which starts
the embedded broker when no broker URL is configured), starts the coordinator (polled sources on
their intervals) and one StreamRunner per MQTT source (a StreamPool of worker processes where `workers` > 1),
and stops them all on shutdown.

Adding to the service (the map page, other pages): pass routers and static directories ::

    create_app(settings, config,
               routers=[lambda service: map_router(service.broker_client)],
               static={"/map/static": Path(".../static/map")})

or append the same kind of item to :data:`EXTRA_ROUTERS` / :data:`EXTRA_STATIC` below, which
`burgas-adapter serve` uses. A router item is an ``APIRouter`` or a callable ``Service ->
APIRouter`` (called once, when the app is created; ``service.broker_client()`` and
``service.runtime`` are usable only once the lifespan has started). A router's own lifespan is
merged into the app's by FastAPI and runs inside the Runtime's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from adapter import __version__
from adapter.config import MQTTSourceConfig, PipelineConfig, load_config
from adapter.errors import ConfigError
from adapter.ngsi.client import BrokerClient
from adapter.runtime import Runtime
from adapter.service import admin, contexts, health, status
from adapter.service.map import map_router
from adapter.service.metrics import ServiceMetrics
from adapter.service.metrics import router as metrics_router
from adapter.settings import Settings, load_settings
from adapter.sync.coordinator import Coordinator
from adapter.sync.report import SyncReport
from adapter.sync.stream import StreamRunner
from adapter.sync.stream_pool import build_stream

logger = logging.getLogger(__name__)

RouterItem = APIRouter | Callable[["Service"], APIRouter]
EXTRA_ROUTERS: list[RouterItem] = [lambda service: map_router(service.broker_client)]
"""Routers `serve` adds to every app (e.g. the map page)."""
EXTRA_STATIC: dict[str, Path] = {}
"""URL prefix -> directory of static files `serve` mounts on every app."""

DESCRIPTION = """Brings Smart Burgas, GIS-Burgas and live MQTT sensors into an NGSI-LD broker as
Smart Data Models. This is the adapter's own operations API (OASC MIM0 asks every component to
describe its API): health and readiness, status, Prometheus metrics, the generated JSON-LD
@context documents, and admin actions behind an API key (`X-API-Key`; without BURGAS_API_KEY
they answer 503). The entities themselves are read from the NGSI-LD broker's API."""


class _ObservedRuntime:
    """The Runtime as the coordinator sees it, with each run's report fed to the metrics."""

    def __init__(self, runtime: Runtime, metrics: ServiceMetrics) -> None:
        self._runtime = runtime
        self._metrics = metrics

    async def sync_source(self, source_config: Any, *, full: bool | None = None) -> SyncReport:
        report = await self._runtime.sync_source(source_config, full=full)
        self._metrics.observe_sync(report)
        return report


class Service:
    """Everything the routes need: settings, configuration, runtime, coordinator, streams, metrics."""

    def __init__(self, settings: Settings, config: PipelineConfig) -> None:
        self.settings = settings
        self.config = config
        self.metrics = ServiceMetrics()
        self.runtime: Runtime | None = None
        self.coordinator: Coordinator | None = None
        self.streams: list[StreamRunner] = []
        self.started_at: float | None = None
        enabled = config.select(None)
        self.polled = [s for s in enabled if not isinstance(s, MQTTSourceConfig)]
        self.streamed = [s for s in enabled if isinstance(s, MQTTSourceConfig)]
        self.metrics.watch(self)

    @property
    def running(self) -> bool:
        """The lifespan has started everything."""
        return self.started_at is not None

    @property
    def ready(self) -> bool:
        """Every polled source has run once (streams are ready as soon as they run)."""
        return self.coordinator is not None and self.coordinator.first_refresh_done

    def broker_client(self) -> BrokerClient:
        """The NGSI-LD client the service writes with (its URL, tenant and auth)."""
        if self.runtime is None or self.runtime.client is None:
            raise RuntimeError("the service has not started")
        return self.runtime.client

    def stream(self, name: str) -> StreamRunner | None:
        """The stream runner of a source, if it is a stream."""
        return next((s for s in self.streams if s.name == name), None)

    def outbox_depth(self) -> dict[str, int]:
        """Source -> operations waiting in the outbox."""
        if self.runtime is None or self.runtime.state is None:
            return {}
        rows = self.runtime.state.conn.execute("SELECT source, COUNT(*) FROM outbox GROUP BY source")
        return dict(rows.fetchall())

    def quarantine_counts(self) -> dict[str, int]:
        """Source -> quarantined items."""
        if self.runtime is None or self.runtime.state is None:
            return {}
        rows = self.runtime.state.conn.execute("SELECT source, COUNT(*) FROM quarantine GROUP BY source")
        return dict(rows.fetchall())

    @asynccontextmanager
    async def run(self) -> AsyncIterator[Service]:
        """Start the runtime, the streams and the coordinator; stop them in reverse order."""
        async with Runtime(self.settings, self.config) as runtime:
            assert runtime.pipeline is not None
            self.runtime = runtime
            streams = []
            for cfg in self.streamed:
                streams.append(build_stream(cfg, self.settings, runtime.pipeline,
                                            on_batch=self.metrics.observe_batch,
                                            on_delivery=self.metrics.observe_delivery))
            self.streams = streams
            self.coordinator = Coordinator(_ObservedRuntime(runtime, self.metrics), self.polled)
            try:
                for stream in streams:
                    await stream.start()
                self.coordinator.start()
                self.started_at = time.time()
                logger.info("service started: %d polled source(s), %d stream(s), broker %s",
                            len(self.polled), len(streams),
                            "embedded" if runtime.broker is not None else "configured")
                yield self
            finally:
                self.started_at = None
                await self.coordinator.stop()
                for stream in streams:
                    await stream.stop()
                logger.info("service stopped")


def create_app(settings: Settings | None = None, config: PipelineConfig | None = None, *,
               routers: Sequence[RouterItem] = (), static: Mapping[str, Path] | None = None) -> FastAPI:
    """The service app (see the module docstring for adding routers and static files)."""
    settings = settings or load_settings()
    config = config or load_config()
    service = Service(settings, config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service.run():
            yield

    app = FastAPI(title="Burgas NGSI-LD adapter", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    app.state.service = service
    for router in (health.router, status.router, metrics_router, contexts.router, admin.router):
        app.include_router(router)
    for item in (*EXTRA_ROUTERS, *routers):
        app.include_router(item if isinstance(item, APIRouter) else item(service))
    for prefix, directory in {**EXTRA_STATIC, **(static or {})}.items():
        if not Path(directory).is_dir():
            raise ConfigError(f"static directory {directory} for {prefix} does not exist")
        app.mount(prefix, StaticFiles(directory=directory), name=f"static:{prefix}")
    return app
