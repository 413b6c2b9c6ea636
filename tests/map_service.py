"""The map served over real HTTP with the Burgas demo data, for the browser tests and docs/map.png.

`demo_map_service()` starts a FastAPI app on a free loopback port whose lifespan enters a
`Runtime` (embedded broker, fresh state) and syncs the bundled demo data, and includes the map
router against the runtime's broker client. Regenerate the screenshot with

    .venv/bin/python -m tests.map_service docs/map.png
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from adapter.config import load_config
from adapter.runtime import Runtime
from adapter.service.map import map_router
from adapter.settings import Settings
from adapter.sync.report import SyncReport


@dataclass
class MapService:
    """The running service: its base URL and the reports of the demo sync."""

    url: str = ""
    reports: list[SyncReport] = field(default_factory=list)
    runtime: Runtime | None = None

    def entities_by_type(self) -> dict[str, int]:
        """How many entities of each type the demo sync sent."""
        totals: dict[str, int] = {}
        for report in self.reports:
            for entity_type, n in report.entities_by_type.items():
                totals[entity_type] = totals.get(entity_type, 0) + n
        return totals


def demo_app(service: MapService, state_dir: Path) -> FastAPI:
    """An app with only the map router, whose lifespan runs the runtime and the demo sync."""
    settings = Settings(state_dir=state_dir, broker_url=None, embedded_broker_persist=False,
                        ngsi_context="generated")
    runtime = Runtime(settings, load_config())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime:
            service.runtime = runtime
            service.reports = await runtime.sync()
            yield

    app = FastAPI(lifespan=lifespan)

    def client():  # the runtime's client exists once the lifespan has started
        assert runtime.client is not None
        return runtime.client

    app.include_router(map_router(client))
    return app


@contextmanager
def demo_map_service(timeout: float = 120.0) -> Iterator[MapService]:
    """The map with the demo data on http://127.0.0.1:<free port>; stopped on exit."""
    service = MapService()
    with tempfile.TemporaryDirectory(prefix="burgas-map-") as state_dir:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(demo_app(service, Path(state_dir)), log_level="warning",
                                               lifespan="on", access_log=False))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                                  name=f"map-service-{port}")
        thread.start()
        deadline = time.monotonic() + timeout
        try:
            while not server.started:
                if not thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError("the map service did not start")
                time.sleep(0.02)
            service.url = f"http://127.0.0.1:{port}"
            yield service
        finally:
            server.should_exit = True
            thread.join(timeout)
            sock.close()


def screenshot(target: Path, width: int = 1280, height: int = 860) -> None:
    """Save a PNG of the map with every demo layer shown."""
    from tests.chromium import Chromium

    with demo_map_service() as service, Chromium() as browser:
        page = browser.new_page(width, height)
        page.goto(service.url + "/map")
        page.wait_for("document.body && document.body.dataset.state !== 'loading' && document.body.dataset.state")
        first = page.evaluate(
            "(() => { const f = document.querySelector('.layer[data-type=\"AirQualityObserved\"] circle');"
            " const b = f.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; })()")
        page.click(*first)
        page.wait_for("!document.getElementById('popup').hidden")
        target.write_bytes(page.screenshot())


if __name__ == "__main__":
    screenshot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/map.png"))
