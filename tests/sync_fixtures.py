"""Parts for end-to-end sync tests: Smart Burgas feeds on loopback, a broker that can be stopped and
restarted over the same database file, a fault-injecting proxy in front of it, and readers of what
the broker holds.

    feeds = FeedServer().start()          # serves the bundled samples; edit feeds.payloads to change them
    config = write_config(tmp_path / "burgas.yaml", feeds)
    with RestartableBroker(tmp_path / "broker.sqlite3", contexts) as broker: ...
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson

from adapter.config import PipelineConfig, load_config
from adapter.mapping.base import Rejected
from adapter.runtime import Runtime, local_reference_contexts, write_generated_contexts
from adapter.settings import Settings
from adapter.sources.smartburgas_feeds import FEEDS, LANGS
from adapter.sync.factory import build_mapper, build_source
from adapter.sync.outbox import Outbox
from adapter.sync.state import StateStore
from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.servers import PayloadServer, Reply, Request

ROOT = Path(__file__).resolve().parent.parent
API = "/ngsi-ld/v1"
CONTEXT_BASE_URL = Settings().context_base_url


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- feeds ------------------------------------------------------------------------------------------

class FeedServer(PayloadServer):
    """The Smart Burgas feeds at /api/<feed>, served from editable parsed payloads per language.

    `payloads[feed][lang]` is the parsed JSON served (untranslated feeds use "bg");
    `faults[feed]` replaces the answer (a Reply or raw bytes) until removed.
    """

    def __init__(self, feeds: Iterable[str] = FEEDS) -> None:
        super().__init__()
        self.payloads: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, Reply | bytes] = {}
        for name in feeds:
            spec = FEEDS[name]
            langs = LANGS if spec.translated else (LANGS[0],)
            self.payloads[name] = {lang: orjson.loads(spec.sample_path(lang).read_bytes()) for lang in langs}
            self.add(f"/api/{name}", self._route(name))

    def _route(self, name: str) -> Callable[[Request], Reply | bytes]:
        def route(request: Request) -> Reply | bytes:
            fault = self.faults.get(name)
            if fault is not None:
                return fault
            payloads = self.payloads[name]
            return orjson.dumps(payloads.get(request.arg("lang") or LANGS[0], payloads[LANGS[0]]))
        return route

    def features(self, feed: str) -> dict[str, list[dict[str, Any]]]:
        """lang -> the feature list served for `feed` (edit in place)."""
        key = FEEDS[feed].array_key
        return {lang: payload[key] for lang, payload in self.payloads[feed].items()}

    def edit(self, feed: str, feature_id: str, change: Callable[[dict[str, Any]], None]) -> None:
        """Apply `change` to the properties of the feature with this id, in every language."""
        id_key = FEEDS[feed].id_key
        found = 0
        for features in self.features(feed).values():
            for feature in features:
                if str(feature["properties"].get(id_key)) == feature_id:
                    change(feature["properties"])
                    found += 1
        assert found, f"{feed}: no feature {id_key}={feature_id}"

    def remove(self, feed: str, feature_id: str) -> None:
        """Drop the feature with this id from every language."""
        id_key = FEEDS[feed].id_key
        for features in self.features(feed).values():
            features[:] = [f for f in features if str(f["properties"].get(id_key)) != feature_id]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """A deep copy of the payloads (to restore later)."""
        return copy.deepcopy(self.payloads)


def sync_static(state: Path, broker_url: str, config: Any, *, base_url: str, full: bool = False,
                **pipeline: Any) -> Any:
    """One `Pipeline.run_once` of a static (GIS/GTFS) source config into a broker, over real HTTP."""
    from adapter.ngsi.client import BrokerClient
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.skip import salt_for

    async def run() -> Any:
        store = StateStore(state)
        try:
            async with httpx.AsyncClient() as http, BrokerClient(broker_url) as client:
                runner = Pipeline(store, client, context_base_url=base_url, **pipeline)
                return await runner.run_once(config.name, build_source(config, http), build_mapper(config),
                                             static=True, salt=salt_for(config), full=full)
        finally:
            store.close()
    return asyncio.run(run())


def write_config(path: Path, feeds: FeedServer, names: Iterable[str] | None = None) -> Path:
    """A pipeline file with the Smart Burgas sources pointing at `feeds`."""
    lines = ["sources:"]
    for name in names or feeds.payloads:
        lines.append(f"  - {{name: smartburgas.{name}, group: smartburgas, type: smartburgas, "
                     f"feed: {name}, url: '{feeds.url('/api/' + name)}'}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_entities(config: PipelineConfig) -> dict[str, str]:
    """entity id -> type of everything the configured sources map to right now (the truth to compare with)."""
    async def collect() -> dict[str, str]:
        out: dict[str, str] = {}
        async with httpx.AsyncClient(timeout=30.0) as http:
            for source_config in config.sources:
                mapper = build_mapper(source_config)
                async for record in build_source(source_config, http).fetch():
                    result = mapper(record)
                    if not isinstance(result, Rejected):
                        out[result.entity.id] = result.entity.entity_type
        return out
    return asyncio.run(collect())


def by_type(entities: Mapping[str, str]) -> dict[str, set[str]]:
    """type -> entity ids."""
    out: dict[str, set[str]] = {}
    for entity_id, entity_type in entities.items():
        out.setdefault(entity_type, set()).add(entity_id)
    return out


# -- brokers ----------------------------------------------------------------------------------------

def context_files(directory: Path) -> dict[str, Path]:
    """Context URL -> local file for everything the adapter's entities reference (offline broker)."""
    files = write_generated_contexts(directory, CONTEXT_BASE_URL)
    files.update(local_reference_contexts())
    index = {url: str(path) for url, path in files.items()}
    (directory / "index.json").write_bytes(orjson.dumps(index))  # for `broker serve --contexts-dir`
    return files


class RestartableBroker:
    """The embedded broker in this process, on a fixed port and database file, stoppable and restartable."""

    def __init__(self, db: Path, contexts: dict[str, Path], *, port: int | None = None,
                 max_payload: int = 1024 * 1024) -> None:
        self.settings = BrokerSettings(port=port or free_port(), db_path=db, context_files=contexts,
                                       max_payload=max_payload)
        self._broker: EmbeddedBroker | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def start(self) -> RestartableBroker:
        self._broker = EmbeddedBroker(self.settings).start()
        return self

    def stop(self) -> None:
        if self._broker is not None:
            self._broker.stop()
            self._broker = None

    def __enter__(self) -> RestartableBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BrokerServe:
    """`burgas-adapter broker serve --port P [args]` in a child process, run from `cwd` with `env`
    (default: this one's); `stop()` ends it, `kill()` SIGKILLs it; it can be started again."""

    def __init__(self, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.args = args
        self.cwd = cwd
        self.env = env
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> BrokerServe:
        self.proc = subprocess.Popen([*adapter_command(), "broker", "serve", "--port", str(self.port), *self.args],
                                     cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(self.url + API + "/types", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"broker serve did not start on {self.url}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> BrokerServe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def broker_process(db: Path, contexts_dir: Path) -> BrokerServe:
    """A broker on a database file with offline @context files: can be SIGKILLed and started again."""
    return BrokerServe("--db", str(db), "--contexts-dir", str(contexts_dir))


def broker_entities(url: str, tenant: str | None = None, *, sys_attrs: bool = False) -> dict[str, dict]:
    """Every entity of a tenant, by id (idPattern=.* paged), as the broker holds it."""
    headers = {"NGSILD-Tenant": tenant} if tenant else {}
    out: dict[str, dict] = {}
    offset = 0
    with httpx.Client(base_url=url + API, headers=headers, timeout=30.0) as http:
        while True:
            params = {"idPattern": ".*", "limit": "1000", "offset": str(offset)}
            if sys_attrs:
                params["options"] = "sysAttrs"
            response = http.get("/entities", params=params)
            if response.status_code == 404 and "NonExistingTenant" in response.text:
                return out
            response.raise_for_status()
            page = response.json()
            out.update((e["id"], e) for e in page)
            offset += len(page)
            if len(page) < 1000:
                return out


def broker_ids(url: str, tenant: str | None = None) -> dict[str, set[str]]:
    """type (from the id) -> entity ids the broker holds."""
    return by_type({i: i.split(":")[2] for i in broker_entities(url, tenant)})


def modified_at(url: str, tenant: str | None = None) -> dict[str, str]:
    """entity id -> modifiedAt (options=sysAttrs)."""
    return {i: e["modifiedAt"] for i, e in broker_entities(url, tenant, sys_attrs=True).items()}


def outbox_pending(state_file: Path) -> int:
    """Operations waiting in the outbox of a state file."""
    store = StateStore(state_file)
    try:
        return Outbox(store).pending()
    finally:
        store.close()


# -- a fault-injecting proxy in front of a broker ---------------------------------------------------

class BrokerProxy:
    """An HTTP proxy on loopback in front of a broker: counts writes and injects faults.

    - `delay`: seconds to wait before forwarding each upsert batch (so a kill lands mid-delivery);
    - `reject`: entity ids refused in a 207 (the others are forwarded and written);
    - `authorize(request_headers) -> bool`: False answers 401;
    - `before_upsert(n)`: called before the n-th upsert batch is forwarded (1-based);
    - `no_hosting`: POST /jsonldContexts answers 405, as a broker without context hosting
      (`hosting_posts` counts them);
    an unreachable upstream closes the connection without an answer (as a crashed broker does).
    """

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = 0.0
        self.reject: set[str] = set()
        self.authorize: Callable[[Mapping[str, str]], bool] | None = None
        self.before_upsert: Callable[[int], None] | None = None
        self.upserts = 0  # upsert batches received
        self.written: Counter[str] = Counter()  # entity id -> upserts the broker confirmed
        self.unauthorized = 0
        self.no_hosting = False
        self.hosting_posts = 0
        self.lock = threading.Lock()
        self._http = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                answer = proxy._answer(self.command, self.path, dict(self.headers.items()), body)
                if answer is None:
                    self.close_connection = True
                    return
                status, headers, content = answer
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_DELETE = do_PATCH = _handle

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _answer(self, method: str, path: str, headers: dict[str, str],
                body: bytes) -> tuple[int, dict[str, str], bytes] | None:
        if self.authorize is not None and not self.authorize(headers):
            with self.lock:
                self.unauthorized += 1
            return 401, {"Content-Type": "application/json"}, orjson.dumps(
                {"type": "https://uri.etsi.org/ngsi-ld/errors/Unauthorized", "title": "token expired"})
        if method == "POST" and path.split("?")[0].endswith("/jsonldContexts"):
            with self.lock:
                self.hosting_posts += 1
            if self.no_hosting:
                return 405, {"Content-Type": "application/json", "Allow": "GET"}, orjson.dumps(
                    {"type": "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported",
                     "title": "Method not allowed", "detail": "POST /ngsi-ld/v1/jsonldContexts"})
        upsert = method == "POST" and path.split("?")[0].endswith("/entityOperations/upsert")
        rejected: list[str] = []
        if upsert:
            with self.lock:
                self.upserts += 1
                n = self.upserts
            if self.before_upsert is not None:
                self.before_upsert(n)
            if self.delay:
                time.sleep(self.delay)
            items = orjson.loads(body)
            rejected = [i["id"] for i in items if i["id"] in self.reject]
            if rejected:
                items = [i for i in items if i["id"] not in self.reject]
                body = orjson.dumps(items)
        forward = {k: v for k, v in headers.items()
                   if k.lower() not in ("host", "content-length", "authorization", "connection")}
        if upsert and not items:
            status, out_headers, content = 204, {}, b""
        else:
            try:
                response = self._http.request(method, self.upstream + path, headers=forward, content=body)
            except httpx.HTTPError:
                return None
            status, content = response.status_code, response.content
            out_headers = {k: v for k, v in response.headers.items()
                           if k.lower() in ("content-type", "link", "ngsild-results-count", "location")}
        if upsert and status < 300:
            with self.lock:
                self.written.update(i["id"] for i in items)
        if rejected and status < 300:
            errors = [{"entityId": i, "error": {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
                                                "title": "Invalid entity", "detail": "refused by the test proxy",
                                                "status": 400}} for i in rejected]
            status, out_headers = 207, {"Content-Type": "application/json"}
            content = orjson.dumps({"success": [i["id"] for i in items], "errors": errors})
        return status, out_headers, content

    def __enter__(self) -> BrokerProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()


# -- the CLI in a child process -----------------------------------------------------------------------

def adapter_command() -> list[str]:
    """How to start `burgas-adapter` with the interpreter running the tests."""
    script = Path(sys.executable).parent / "burgas-adapter"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from adapter.cli import app; app()"]


def cli_env(**extra: str) -> dict[str, str]:
    """The test environment for a CLI child: fast retries, no terminal, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BURGAS_") or k in (
        "BURGAS_SHARED_DIR", "BURGAS_CACHE_DIR")}
    env.update({"BURGAS_RETRY_ATTEMPTS": "2", "BURGAS_RETRY_INITIAL_WAIT": "0.05",
                "BURGAS_RETRY_MAX_WAIT": "0.1", "BURGAS_CONNECT_TIMEOUT": "2", "NO_COLOR": "1",
                "COLUMNS": "200", "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


def run_cli(*args: str, env: Mapping[str, str] | None = None, timeout: float = 120.0,
            **extra: str) -> subprocess.CompletedProcess[str]:
    """Run `burgas-adapter <args>` to completion."""
    return subprocess.run([*adapter_command(), *args], cwd=ROOT, env=dict(env or cli_env(**extra)),
                          capture_output=True, text=True, timeout=timeout)


def start_cli(*args: str, env: Mapping[str, str] | None = None, **extra: str) -> subprocess.Popen[str]:
    """Start `burgas-adapter <args>` and return the running process."""
    return subprocess.Popen([*adapter_command(), *args], cwd=ROOT, env=dict(env or cli_env(**extra)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def runtime_sync(tmp_path: Path, config: Path, url: str, **settings: object) -> list:
    """One `Runtime.sync()` of the pipeline file into the broker at `url`, with quick retries."""
    chosen = Settings(broker_url=url, state_dir=tmp_path / "state", retry_attempts=2, retry_initial_wait=0.01,
                      retry_max_wait=0.05, connect_timeout=2.0, **settings)

    async def go() -> list:
        async with Runtime(chosen, load_config(config)) as runtime:
            return await runtime.sync()
    return asyncio.run(go())
