"""Loopback HTTP servers for integration tests: serve recorded payloads on 127.0.0.1, free port.

A :class:`PayloadServer` maps a path to a *route*: bytes, str, a dict/list (served as JSON), a
:class:`Reply`, or a callable ``(request) -> Reply | bytes | str | dict | list``. Callables see the
parsed query string, so paging servers (ArcGIS offsets, WFS startIndex, OGC API next links) are
handlers in this module or in a test. Every request is recorded in ``server.requests``.

    with PayloadServer({"/feed": {"features1": []}}) as server:
        url = server.url("/feed")

or with the ``payload_server`` fixture (see ``tests/conftest.py`` or import :func:`payload_server`).
Add new protocol handlers (ArcGIS, WFS, OGC API) as functions returning a route callable.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest


@dataclass
class Reply:
    """A full HTTP answer: status, body and headers."""

    body: bytes | str = b""
    status: int = 200
    content_type: str = "application/json; charset=utf-8"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """What a handler sees: method, path, the raw query and the parsed query (lists of values)."""

    method: str
    path: str
    query_string: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default


Route = bytes | str | dict | list | Reply | Callable[[Request], Any]


def to_reply(value: Any) -> Reply:
    """Normalise what a route gives into a Reply (dict/list become JSON)."""
    if isinstance(value, Reply):
        return value
    if isinstance(value, bytes):
        return Reply(value)
    if isinstance(value, str):
        return Reply(value.encode("utf-8"))
    return Reply(orjson.dumps(value))


class PayloadServer:
    """A threaded HTTP server on 127.0.0.1 serving a mutable table of routes."""

    def __init__(self, routes: Mapping[str, Route] | None = None) -> None:
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path`` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def add(self, path: str, route: Route) -> str:
        """Serve ``route`` at ``path``; returns its URL."""
        self.routes[path] = route
        return self.url(path)

    def requests_to(self, path: str) -> list[Request]:
        """Requests received for ``path``."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> PayloadServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="payload-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> PayloadServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _dispatch(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
        route = self.routes.get(request.path)
        if route is None:
            return Reply(b"<html><body>404 Not Found</body></html>", 404, "text/html")
        if callable(route):
            return to_reply(route(request))
        return to_reply(route)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, parts.path, parts.query,
                                  parse_qs(parts.query, keep_blank_values=True),
                                  dict(self.headers.items()), body)
                reply = server._dispatch(request)
                payload = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                headers = dict(reply.headers)
                headers.setdefault("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass  # keep test output clean

        return Handler


@pytest.fixture
def payload_server() -> Iterator[PayloadServer]:
    """A started :class:`PayloadServer` with no routes; add them with ``server.add(path, route)``."""
    with PayloadServer() as server:
        yield server
