"""The service with the Burgas demo data over real HTTP, for the map's browser tests and docs/map.png.

`demo_map_service()` runs `create_app` (the real service: lifespan, Runtime with the embedded
broker, the coordinator's first refresh of every bundled source, the map router) with a fresh state
directory on a free loopback port, and returns once `/ready` answers 200. Regenerate the
screenshot with

    .venv/bin/python -m tests.map_service docs/map.png
    .venv/bin/python -m tests.map_service docs/map-chart.png   # a station's 24-hour chart
"""

from __future__ import annotations

import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from adapter.config import load_config
from adapter.samples.serving import SampleServers
from adapter.service.app import create_app
from adapter.settings import Settings


@dataclass
class MapService:
    """The running service: its base URL and the embedded broker's."""

    url: str
    broker_url: str

    def entities_by_type(self) -> dict[str, int]:
        """Entity type (short name) -> how many the broker holds, asked of the broker directly."""
        api = self.broker_url + "/ngsi-ld/v1"
        counts = {}
        for iri in httpx.get(api + "/types").json()["typeList"]:
            answer = httpx.get(api + "/entities", params={"type": iri, "count": "true", "limit": "0"})
            counts[iri.replace("#", "/").rsplit("/", 1)[-1]] = int(answer.headers["NGSILD-Results-Count"])
        return counts


@contextmanager
def serve_app(app: FastAPI, ready_path: str | None = None, timeout: float = 120.0) -> Iterator[str]:
    """Serve an app (lifespan on) on a free loopback port; yields its base URL once `ready_path` is 200."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"map-service-{port}")
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while not (server.started and (ready_path is None or httpx.get(url + ready_path).status_code == 200)):
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the service did not become ready")
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


@contextmanager
def demo_map_service() -> Iterator[MapService]:
    """The service with the demo data on http://127.0.0.1:<free port>; stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="burgas-map-") as state_dir:
        settings = Settings(state_dir=Path(state_dir), broker_url=None, embedded_broker_persist=False,
                            ngsi_context="generated", tenant=None)
        app = create_app(settings, load_config(), urls=SampleServers())
        with serve_app(app, "/ready") as url:
            yield MapService(url, app.state.service.runtime.broker_url)


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


def chart_screenshot(target: Path, kind: str = "AirQualityObserved", width: int = 1280, height: int = 860) -> None:
    """Save a PNG of the map with the popup and 24-hour chart of the first sensor of `kind`."""
    from tests.chromium import Chromium

    with demo_map_service() as service, Chromium() as browser:
        page = browser.new_page(width, height)
        page.goto(service.url + "/map")
        page.wait_for("document.body && document.body.dataset.state !== 'loading' && document.body.dataset.state")
        point = page.evaluate(
            f"(() => {{ const f = document.querySelector('.layer[data-type=\"{kind}\"] circle');"
            " const b = f.getBoundingClientRect(); return [b.x + b.width / 2, b.y + b.height / 2]; })()")
        page.click(*point)
        page.wait_for("(c => c && c.dataset.state === 'ready')(document.querySelector('#popup .chart'))", timeout=30)
        target.write_bytes(page.screenshot())


if __name__ == "__main__":
    # python -m tests.map_service docs/map.png | docs/map-chart.png [type]
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/map.png")
    if out.name == "map-chart.png":
        chart_screenshot(out, *sys.argv[2:3])
    else:
        screenshot(out)
