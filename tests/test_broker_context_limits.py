"""@context downloads are bounded (issue 12): decompressed size capped while streaming, a few at once,
and a request never makes the broker read a file outside --contexts-dir."""

from __future__ import annotations

import gc
import gzip
import threading
import time
import tracemalloc
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson
import pytest

from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.broker_fixtures import BASE, assert_problem, entity, free_port, link, new_id
from tests.servers import PayloadServer, Reply

pytestmark = pytest.mark.integration
MIB = 1 << 20
BOMB_BLOCKS = 32768  # 32 GiB of JSON once inflated, 32 MiB on the wire


class BombServer:
    """Serves a gzip bomb (a 1 MiB block deflated to ~1 KiB, repeated) and counts the bytes it sent."""

    def __init__(self) -> None:
        deflate = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        # After a full flush the compressor starts afresh: every block deflates to the same bytes.
        self.head = deflate.compress(b'{"@context": {"x": "') + deflate.flush(zlib.Z_FULL_FLUSH)
        self.block = deflate.compress(b"a" * MIB) + deflate.flush(zlib.Z_FULL_FLUSH)
        self.total = len(self.head) + len(self.block) * BOMB_BLOCKS
        self.sent = 0
        self.done = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                self.send_response(200)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(outer.total))
                self.end_headers()
                try:
                    self.wfile.write(outer.head)
                    outer.sent += len(outer.head)
                    for _ in range(BOMB_BLOCKS):
                        self.wfile.write(outer.block)
                        outer.sent += len(outer.block)
                except OSError:  # the broker hung up: what we count is what it could have read
                    pass
                finally:
                    outer.done.set()

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/bomb.jsonld"
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def bomb() -> Iterator[BombServer]:
    server = BombServer()
    yield server
    server.close()


def test_gzip_bomb_context_is_400_without_inflating_it(bomb: BombServer) -> None:
    settings = BrokerSettings(port=0, context_timeout=10.0, context_attempts=1)
    with EmbeddedBroker(settings) as running, httpx.Client(base_url=running.url + BASE, timeout=60) as http:
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            answer = http.post("/entities", json=entity(new_id()), headers=link(bomb.url))
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        body = assert_problem(answer, 400, "BadRequestData", "Invalid @context")
        assert "larger than" in body["detail"]
        # At most max_context_bytes (4 MiB) is ever inflated; httpx inflated a whole 64 KiB network
        # chunk at once (64 MiB of this bomb).
        assert peak - baseline < 24 * MIB, f"peak {(peak - baseline) / MIB:.1f} MiB"
        assert current - baseline < 4 * MIB, f"kept {(current - baseline) / MIB:.1f} MiB after the 400"
        assert bomb.done.wait(30)
        assert bomb.sent < bomb.total // 4, f"the broker read {bomb.sent} of {bomb.total} bytes"
        assert http.get("/entities", params={"type": "Thing"}).status_code == 200


def test_gzip_compressed_context_is_used() -> None:
    doc = orjson.dumps({"@context": {"Bin": "https://example.org/waste#Bin"}})
    reply = Reply(gzip.compress(doc), headers={"Content-Encoding": "gzip"})
    with PayloadServer({"/ctx.jsonld": reply}) as srv, \
            EmbeddedBroker(BrokerSettings(port=0)) as running, \
            httpx.Client(base_url=running.url + BASE) as http:
        ident = new_id("Bin")
        created = http.post("/entities", json=entity(ident, "Bin"), headers=link(srv.url("/ctx.jsonld")))
        assert created.status_code == 201
        assert http.get(f"/entities/{ident}").json()["type"] == "https://example.org/waste#Bin"
        corrupt = Reply(gzip.compress(doc)[:-12] + b"garbage!garbage!", headers={"Content-Encoding": "gzip"})
        srv.add("/bad.jsonld", corrupt)
        assert_problem(http.post("/entities", json=entity(new_id()), headers=link(srv.url("/bad.jsonld"))),
                       400, "BadRequestData")


def test_concurrent_context_downloads_are_bounded() -> None:
    active = 0
    most = 0
    lock = threading.Lock()

    def slow(_request: object) -> dict:
        nonlocal active, most
        with lock:
            active += 1
            most = max(most, active)
        time.sleep(0.3)  # holds the download open so that others overlap it
        with lock:
            active -= 1
        return {"@context": {"Bin": "https://example.org/waste#Bin"}}

    paths = [f"/ctx{i}.jsonld" for i in range(10)]
    settings = BrokerSettings(port=0, max_context_downloads=3)
    with PayloadServer(dict.fromkeys(paths, slow)) as srv, EmbeddedBroker(settings) as running:
        answers: list[int] = []

        def post(path: str) -> None:
            with httpx.Client(base_url=running.url + BASE, timeout=30) as http:
                answers.append(http.post("/entities", json=entity(new_id("Bin"), "Bin"),
                                         headers=link(srv.url(path))).status_code)

        threads = [threading.Thread(target=post, args=(p,)) for p in paths]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert answers == [201] * 10
    assert 1 <= most <= 3


def test_requests_never_read_files_outside_the_contexts_dir(tmp_path: Path) -> None:
    contexts = tmp_path / "contexts"
    (contexts / "inside").mkdir(parents=True)
    secret = tmp_path / "secret.jsonld"
    secret.write_bytes(orjson.dumps({"@context": {"Secret": "https://example.org/SECRET#Secret"}}))
    (contexts / "inside" / "ok.jsonld").write_bytes(
        orjson.dumps({"@context": {"Secret": "https://example.org/ok#Secret"}}))
    (contexts / "index.json").write_bytes(orjson.dumps({"http://mapped.example/c.jsonld": "../secret.jsonld"}))
    port = free_port()  # nothing listens: a download attempt fails fast
    settings = BrokerSettings(port=0, contexts_dir=contexts, context_attempts=1, context_timeout=2.0)
    with EmbeddedBroker(settings) as running, httpx.Client(base_url=running.url + BASE) as http:
        for url in ("file:///../secret.jsonld", f"file://{secret}", f"http://127.0.0.1:{port}/../secret.jsonld",
                    f"http://127.0.0.1:{port}/../../secret.jsonld", "http://mapped.example/c.jsonld"):
            answer = http.post("/entities", json=entity(new_id("Secret"), "Secret"), headers=link(url))
            assert answer.status_code in (400, 504), (url, answer.text)
            assert "SECRET" not in answer.text
        for ident in (e["id"] for e in http.get("/entities", params={"local": "true"}).json()):
            assert "SECRET" not in http.get(f"/entities/{ident}").text
        ident = new_id("Secret")
        assert http.post("/entities", json=entity(ident, "Secret"),
                         headers=link("http://inside/ok.jsonld")).status_code == 201
        assert http.get(f"/entities/{ident}").json()["type"] == "https://example.org/ok#Secret"


@pytest.mark.timeout(30)
def test_trickling_context_server_gets_a_504_not_a_held_slot() -> None:
    class Trickle(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(200):  # one byte every 0.1 s: each read is within the read timeout
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                pass

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        settings = BrokerSettings(port=0, context_timeout=0.5, context_attempts=1, max_context_downloads=1)
        with EmbeddedBroker(settings) as running, httpx.Client(base_url=running.url + BASE, timeout=20) as http:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/slow.jsonld"
            assert_problem(http.post("/entities", json=entity(new_id()), headers=link(url)), 504,
                           "LdContextNotAvailable")
    finally:
        httpd.shutdown()
        httpd.server_close()
