"""A minimal in-memory NGSI-LD broker for client and outbox tests: a MockTransport handler or a loopback server.

It implements what the sync engine uses (batch upsert update/replace, batch delete, attribute
delete, GET entities) with Orion-LD experimental answers, counts every write, and can be told to
fail (`down`, `reject`) to exercise the outbox.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import orjson

ERR = "https://uri.etsi.org/ngsi-ld/errors/"


class FakeBroker:
    """Entities per tenant, write counters and failure switches."""

    def __init__(self, delay: float = 0.0) -> None:
        self.tenants: dict[str, dict[str, dict]] = {}
        self.writes: Counter[str] = Counter()  # entity id -> upserts applied
        self.requests = 0
        self.down = False  # answer 503 to everything
        self.reject: set[str] = set()  # entity ids refused with a 400 item in a 207
        self.delay = delay
        self.lock = threading.Lock()

    def entities(self, tenant: str = "") -> dict[str, dict]:
        """The entities of one tenant."""
        return self.tenants.get(tenant, {})

    def answer(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, bytes]:
        """One request -> (status, JSON body)."""
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.requests += 1
            if self.down:
                return 503, orjson.dumps({"type": ERR + "InternalError", "title": "down", "detail": "x"})
            tenant = headers.get("ngsild-tenant", "")
            store = self.tenants.setdefault(tenant, {})
            if method == "POST" and path.endswith("/entityOperations/upsert"):
                items = orjson.loads(body)
                created, errors = [], []
                for item in items:
                    item.pop("@context", None)
                    if item["id"] in self.reject:
                        errors.append({"entityId": item["id"], "error": {
                            "type": ERR + "BadRequestData", "title": "Invalid Entity", "detail": "test",
                            "status": 400}})
                        continue
                    old = store.get(item["id"])
                    if old is None:
                        created.append(item["id"])
                    if old is not None and query.get("options") == "update":
                        store[item["id"]] = {**old, **item}
                    else:
                        store[item["id"]] = item
                    self.writes[item["id"]] += 1
                if errors:
                    ok = [i["id"] for i in items if i["id"] not in self.reject]
                    return 207, orjson.dumps({"success": ok, "errors": errors})
                return (201, orjson.dumps(created)) if created else (204, b"")
            if method == "POST" and path.endswith("/entityOperations/delete"):
                errors = []
                for entity_id in orjson.loads(body):
                    if store.pop(entity_id, None) is None:
                        errors.append({"entityId": entity_id, "error": {
                            "type": ERR + "ResourceNotFound", "title": "Entity not found", "status": 404}})
                return (207, orjson.dumps({"success": [], "errors": errors})) if errors else (204, b"")
            parts = path.split("/")
            if method == "DELETE" and "attrs" in parts:
                entity_id, attr = unquote(parts[-3]), unquote(parts[-1])
                entity = store.get(entity_id)
                if entity is None or attr not in entity:
                    return 404, orjson.dumps({"type": ERR + "ResourceNotFound",
                                              "title": "Entity/Attribute not found", "detail": attr})
                del entity[attr]
                return 204, b""
            if method == "GET" and path.endswith("/entities"):
                return 200, orjson.dumps(list(store.values()))
            return 404, orjson.dumps({"type": ERR + "ResourceNotFound", "title": "Service Not Found",
                                      "detail": path})

    def handler(self, request: httpx.Request) -> httpx.Response:
        """MockTransport handler."""
        status, content = self.answer(request.method, request.url.raw_path.decode().split("?")[0],
                                      dict(request.url.params),
                                      {k.lower(): v for k, v in request.headers.items()}, request.content)
        return httpx.Response(status, content=content, headers={"Content-Type": "application/json"})

    def serve(self) -> LoopbackBroker:
        """Serve this broker on 127.0.0.1 (a free port) in a thread."""
        return LoopbackBroker(self)


class LoopbackBroker:
    """A threaded HTTP server in front of a FakeBroker; use as a context manager."""

    def __init__(self, broker: FakeBroker) -> None:
        fake = broker

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, content = fake.answer(self.command, parts.path, query, headers, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackBroker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
