"""The ``samples:`` URL scheme of the bundled configuration: bundled data instead of real endpoints.

* ``samples:gis/beaches``, ``samples:gis/bus_stops``, ``samples:gis/parks``: the ArcGIS layer, WFS
  endpoint and OGC API root of the bundled GIS layers, served over HTTP on loopback so that the
  demo exercises the real protocols and their paging. One server per :class:`SampleServers`,
  started on the first such URL; :meth:`SampleServers.close` stops it.
* ``samples:<path>`` of a bundled file (``samples:gtfs/burgasbus.zip``): its path, read directly.

Any other URL is returned unchanged. :class:`SampleServers` is a
:class:`~adapter.sources.urls.UrlResolver`: the CLI (sync, run, serve, export, demo) hands one to the
runtime, which closes it when it stops; the sync and the service never import this module.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

from adapter.errors import ConfigError
from adapter.samples.gis.server import BEACHES_PATH, OGC_PATH, WFS_PATH, SampleServer, sample_routes
from adapter.sources.urls import SAMPLES_SCHEME

logger = logging.getLogger(__name__)

SCHEME = SAMPLES_SCHEME
SAMPLES_DIR = Path(__file__).resolve().parent
SERVED: dict[str, str] = {
    "gis/beaches": BEACHES_PATH,
    "gis/bus_stops": WFS_PATH,
    "gis/parks": OGC_PATH,
}
"""Served sample name -> path on the loopback server."""


def is_sample(url: str) -> bool:
    """True for a ``samples:`` URL."""
    return url.startswith(SCHEME)


class SampleServers:
    """Resolves ``samples:`` URLs, starting the loopback GIS server once, on first use."""

    def __init__(self, start: Callable[[], SampleServer] | None = None) -> None:
        self._start = start or (lambda: SampleServer(sample_routes()).start())
        self._server: SampleServer | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True while the loopback server runs."""
        return self._server is not None

    def resolve(self, url: str) -> str:
        """The URL or path a ``samples:`` URL stands for; other URLs unchanged."""
        if not is_sample(url):
            return url
        name = url[len(SCHEME):].strip("/")
        path = SERVED.get(name)
        if path is not None:
            return self._served().url(path)
        file = (SAMPLES_DIR / name).resolve()
        if name and file.is_relative_to(SAMPLES_DIR) and file.is_file():
            return str(file)
        known = ", ".join(sorted(SERVED) + ["<bundled file, e.g. gtfs/burgasbus.zip>"])
        raise ConfigError(f"unknown sample {url!r}; known: {known}")

    def _served(self) -> SampleServer:
        with self._lock:
            if self._server is None:
                self._server = self._start()
                logger.info("GIS samples served at %s", self._server.base_url)
            return self._server

    def close(self) -> None:
        """Stop the loopback server if it runs (a later resolve starts a new one)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.stop()
            logger.info("GIS sample server stopped")
