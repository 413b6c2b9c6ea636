"""Full sync of a 100,000-feature GIS layer into the embedded broker, a no-change re-sync, and the same
entities pushed by FiLiP and ngsildclient, side by side in one run.

    python -m bench sync [-n 100000] [--no-peers]
    python -m bench sync --cli [--features 20000 100000] [--rounds 1]   (see bench/_sync_cli.py)

- The layer: ArcGIS-style points in CCS2005 (EPSG:7801), 2000 per page, served by a child process.
- The broker: `ngsild_broker.serve` in another child process (SQLite file, WAL), offline
  @context files. Its CPU is read from /proc; the adapter's is this process's getrusage.
- Ours: `Pipeline.run_once` (fetch -> CRS transform -> map -> state diff -> outbox -> batched
  concurrent upserts), tenant "adapter". Then the same again with nothing changed.
- Peers: each in its own virtual environment under bench/.envs/<name> (created and filled with
  `pip install <name>` when missing), reading the normalized entities we sent (with @context) from a
  JSON Lines file and pushing them to their own tenant: FiLiP `entity_batch_operation(upsert)`,
  ngsildclient `Client.upsert`. Their time covers building their entity objects and the upserts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
ENVS = Path(__file__).resolve().parent / ".envs"
PAGE = 2000
API = "/ngsi-ld/v1"

MAPPING: dict[str, Any] = {
    "model": "PointOfInterest", "id_field": "CODE", "id_prefix": "gis-burgas:bench",
    "name_field": "NAME", "attributes": {"dateModified": {"source": "UPDATED", "transform": "epoch_ms"},
                                         "address.district": "DISTRICT"},
    "constants": {"category": ["highway=bus_stop", "public_transport=platform"],
                  "address.addressLocality": "Бургас", "address.addressCountry": "BG"},
}
DISTRICTS = ("Център", "Възраждане", "Лазур", "Зорница", "Изгрев", "Славейков", "Меден рудник", "Сарафово")


def layer_features(n: int) -> Iterator[tuple[int, float, float, dict[str, Any]]]:
    """The layer's n features: (object id, WGS84 lon, lat, attributes), the same in every run."""
    rng = random.Random(7801)
    for oid in range(1, n + 1):
        lon, lat = 27.38 + rng.random() * 0.16, 42.44 + rng.random() * 0.13
        yield oid, lon, lat, {"OBJECTID": oid, "CODE": f"S{100000 + oid}", "NAME": f"Спирка {oid}",
                              "DISTRICT": DISTRICTS[oid % len(DISTRICTS)], "UPDATED": 1_717_200_000_000 + oid * 1000}


# -- child processes --------------------------------------------------------------------------------

def serve_layer(n: int) -> None:
    """Child: an ArcGIS FeatureServer layer of n Burgas points on loopback; prints its URL."""
    from adapter.geometry import from_wgs84
    from adapter.samples.gis.server import ArcGISLayer, SampleServer

    features = []
    for _, lon, lat, attributes in layer_features(n):
        x, y = from_wgs84(lon, lat, 7801)
        features.append({"attributes": attributes, "geometry": {"x": round(x, 3), "y": round(y, 3)}})
    layer = {"name": "bench", "type": "Feature Layer", "geometryType": "esriGeometryPoint",
             "objectIdField": "OBJECTID", "maxRecordCount": PAGE,
             "editingInfo": {"lastEditDate": 1_717_200_000_000},
             "sourceSpatialReference": {"wkid": 7801, "latestWkid": 7801},
             "advancedQueryCapabilities": {"supportsPagination": True},
             "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID"},
                        {"name": "CODE", "type": "esriFieldTypeString"},
                        {"name": "NAME", "type": "esriFieldTypeString"},
                        {"name": "DISTRICT", "type": "esriFieldTypeString"},
                        {"name": "UPDATED", "type": "esriFieldTypeDate"}]}
    server = SampleServer(ArcGISLayer(layer, features).routes("/bench/FeatureServer/0")).start()
    print(server.base_url + "/bench/FeatureServer/0", flush=True)
    sys.stdin.read()


def serve_broker(port: int, db: str, contexts: str) -> None:
    """Child: the embedded broker in the foreground."""
    from ngsild_broker.server import serve
    from ngsild_broker.settings import BrokerSettings

    files = {url: Path(path) for url, path in orjson.loads(Path(contexts).read_bytes()).items()}
    serve(BrokerSettings(port=port, db_path=Path(db), context_files=files))


def serve_null(port: int) -> None:
    """Child: a null broker. Reads each request whole and answers at once (GET: 200 ``[]``; any
    other method: 204, which NGSI-LD gives for a batch upsert that updated every entity), storing
    nothing, so what a client pushing to it spends is its own cost: the ceiling any broker allows."""
    import asyncio as aio

    async def handle(reader: aio.StreamReader, writer: aio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if length:
                    await reader.readexactly(length)
                if head.startswith(b"GET "):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: 2\r\n\r\n[]")
                else:
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (aio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await aio.start_server(handle, "127.0.0.1", port, limit=2**26)
        async with server:
            await server.serve_forever()
    aio.run(main())


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- ours ---------------------------------------------------------------------------------------------

async def _ours(layer_url: str, broker_url: str, state: Path, export: Path, broker_pid: int) -> dict[str, Any]:
    from adapter.config import PipelineConfig
    from adapter.mapping.base import Mapped
    from adapter.ngsi.client import BrokerClient
    from adapter.sync.factory import build_mapper, build_source
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.skip import SkipIndex, SourceMarks, salt_for
    from adapter.sync.state import StateStore

    config = PipelineConfig.model_validate({"sources": [{
        "name": "gis.bench", "group": "gis", "type": "arcgis", "url": layer_url, "page_size": PAGE,
        "mapping": MAPPING}]}).sources[0]
    out: dict[str, Any] = {}
    store = StateStore(state)
    async with httpx.AsyncClient(timeout=60.0) as http, BrokerClient(broker_url, tenant="adapter") as client:
        pipeline = Pipeline(store, client, tenant="adapter")
        salt = salt_for(config)
        # full: first sync. resync: the layer's editingInfo.lastEditDate has not moved, so nothing
        # is fetched. resync_unversioned: the same layer without that date (forgotten here): every
        # page is fetched, but records mapped before are not mapped again (raw hashes).
        for run in ("full", "resync", "resync_unversioned"):
            if run == "resync_unversioned":
                index, marks = SkipIndex(store), SourceMarks("adapter", config.name, salt)
                stored = index.load(marks)
                assert stored is not None
                index.save(marks, stored, dataclasses.replace(stored, version=None))
            cpu, broker_cpu, wall = _self_cpu(), _cpu_s(broker_pid), time.perf_counter()
            report = await pipeline.run_once(config.name, build_source(config, http), build_mapper(config),
                                             static=True, salt=salt)
            wall = time.perf_counter() - wall
            out[run] = {"wall": wall, "cpu": _self_cpu() - cpu, "broker_cpu": _cpu_s(broker_pid) - broker_cpu,
                        "sent": report.sent, "unchanged": report.unchanged, "mapped": report.mapped,
                        "deleted": report.deleted, "attrs_deleted": report.attrs_deleted,
                        "pending": report.pending, "ok": report.ok, "error": report.last_error}
        # The exact entities we sent, for the peers.
        mapper = build_mapper(config)
        with export.open("wb") as file:
            async for record in build_source(config, http).fetch():
                mapped = mapper(record)
                assert isinstance(mapped, Mapped), mapped  # the bench's own layer maps whole
                outgoing = pipeline.outgoing(mapped.entity)
                body = orjson.loads(outgoing.encode(with_context=True))
                file.write(orjson.dumps(body) + b"\n")
        # Apples to apples with the peers: the same entities, from the same file, pushed by our client.
        out["push"] = await _push(client.with_tenant("adapter-push"), export, broker_pid)
    store.close()
    return out


async def _push(client: Any, export: Path, server_pid: int) -> dict[str, Any]:
    """Our client pushing the exported entities. Like the peers, the file is read before the clock
    starts; building the request objects (OutgoingEntity) and the upserts are timed."""
    from adapter.ngsi.batching import OutgoingEntity

    dicts = [orjson.loads(line) for line in export.read_bytes().splitlines()]
    cpu, server_cpu, wall = _self_cpu(), _cpu_s(server_pid), time.perf_counter()
    entities = []
    for body in dicts:
        context = body.pop("@context")
        entities.append(OutgoingEntity(body["id"], body["type"], body, context))
    result = await client.upsert(entities)
    return {"wall": time.perf_counter() - wall, "cpu": _self_cpu() - cpu,
            "broker_cpu": _cpu_s(server_pid) - server_cpu, "ok": result.ok, "sent": len(result.succeeded)}


async def _push_null(url: str, export: Path, server_pid: int) -> dict[str, Any]:
    from adapter.ngsi.client import BrokerClient

    async with BrokerClient(url, tenant="adapter-push") as client:
        return await _push(client, export, server_pid)


# -- peers --------------------------------------------------------------------------------------------

FILIP = r'''
import json, resource, sys, time
from filip.clients.ngsi_ld.cb import ContextBrokerLDClient
from filip.models.base import FiwareLDHeader
from filip.models.ngsi_ld.context import ActionTypeLD, ContextLDEntity
url, tenant, path, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dicts = [json.loads(line) for line in open(path, encoding="utf-8")]
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]); t0 = time.perf_counter()
client = ContextBrokerLDClient(url=url, fiware_header=FiwareLDHeader(ngsild_tenant=tenant))
entities = [ContextLDEntity(**d) for d in dicts]
built = time.perf_counter() - t0
for i in range(0, len(entities), chunk):
    client.entity_batch_operation(entities=entities[i:i + chunk], action_type=ActionTypeLD.UPSERT,
                                  options="update")
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "build": built, "cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0}))
'''

NGSILDCLIENT = r'''
import json, resource, sys, time
from urllib.parse import urlsplit
from ngsildclient import Client, Entity
url, tenant, path, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
dicts = [json.loads(line) for line in open(path, encoding="utf-8")]
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]); t0 = time.perf_counter()
parts = urlsplit(url)
client = Client(hostname=parts.hostname, port=parts.port, tenant=tenant, verbose=False)
entities = [Entity.from_dict(d) for d in dicts]
built = time.perf_counter() - t0
result = client.upsert(entities, update=True)
wall = time.perf_counter() - t0
failed = getattr(result, "n_err", None)
print(json.dumps({"wall": wall, "build": built, "cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0,
                  "failed": failed}))
'''

PEERS = {"filip": ("filip", FILIP), "ngsildclient": ("ngsildclient", NGSILDCLIENT)}


def _peer_python(name: str, package: str) -> tuple[Path | None, str]:
    """The peer's interpreter (creating its environment when missing), or None and why not."""
    env = ENVS / name
    python = env / "bin" / "python"
    if not python.exists():
        created = subprocess.run([sys.executable, "-m", "venv", str(env)], capture_output=True, text=True)
        if created.returncode:
            return None, f"venv failed: {created.stderr.strip()[-300:]}"
    check = subprocess.run([str(python), "-c", f"import {package}"], capture_output=True, text=True)
    if check.returncode:
        pip = subprocess.run([str(python), "-m", "pip", "install", "-q", package], capture_output=True, text=True)
        if pip.returncode:
            return None, f"pip install {package} failed: {pip.stderr.strip()[-300:]}"
    version = subprocess.run([str(python), "-m", "pip", "show", package], capture_output=True, text=True)
    line = next((v for v in version.stdout.splitlines() if v.startswith("Version:")), "Version: ?")
    return python, line.split(":", 1)[1].strip()


def _count(broker_url: str, tenant: str) -> int:
    from adapter.ngsi.batching import link_header, link_url
    from adapter.ngsi.context import ContextMode, context_for
    from data_models import PointOfInterest

    link = link_url(context_for(PointOfInterest, ContextMode.GENERATED))
    assert link is not None  # the generated context is a URL of its own
    response = httpx.get(broker_url + API + "/entities", params={"type": "PointOfInterest", "count": "true",
                                                                 "limit": "0"},
                         headers={"NGSILD-Tenant": tenant, "Link": link_header(link)}, timeout=60)
    if response.status_code == 404:
        return 0
    response.raise_for_status()
    return int(response.headers["NGSILD-Results-Count"])


def _run_peer(name: str, broker_url: str, export: Path, broker_pid: int, chunk: int, *,
              count: bool = True) -> dict[str, Any]:
    package, script = PEERS[name]
    python, version = _peer_python(name, package)
    if python is None:
        return {"error": version}
    broker_cpu = _cpu_s(broker_pid)
    done = subprocess.run([str(python), "-c", script, broker_url, name, str(export), str(chunk)],
                          capture_output=True, text=True, timeout=3600)
    if done.returncode:
        return {"version": version, "error": done.stderr.strip()[-1500:]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result.update(version=version, broker_cpu=_cpu_s(broker_pid) - broker_cpu,
                  in_broker=_count(broker_url, name) if count else None)
    return result


# -- main ---------------------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    if "--cli" in argv:  # the whole `burgas-adapter sync` process against ngsildclient (bench/_sync_cli.py)
        from bench import _sync_cli

        return _sync_cli.main([a for a in argv if a != "--cli"])
    parser = argparse.ArgumentParser(prog="python -m bench sync")
    parser.add_argument("-n", "--features", dest="n", type=int, default=100_000, help="features in the layer")
    parser.add_argument("--no-peers", action="store_true", help="skip FiLiP and ngsildclient")
    args = parser.parse_args(argv)

    from adapter.runtime import local_reference_contexts, write_generated_contexts
    from adapter.settings import Settings
    from ngsild_broker.process import ADAPTER, tune_gc

    tune_gc(ADAPTER)  # as the CLI's commands run

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        work = Path(tmp)
        files = write_generated_contexts(work / "contexts", Settings().context_base_url)
        files.update(local_reference_contexts())
        (work / "contexts.json").write_bytes(orjson.dumps({u: str(p) for u, p in files.items()}))
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        layer = subprocess.Popen([sys.executable, "-m", "bench.sync", "serve-layer", str(args.n)], cwd=ROOT,
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        broker = subprocess.Popen([sys.executable, "-m", "bench.sync", "serve-broker", str(port),
                                   str(work / "broker.sqlite3"), str(work / "contexts.json")], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        broker_url = f"http://127.0.0.1:{port}"
        try:
            layer_url = layer.stdout.readline().strip()  # type: ignore[union-attr]
            _wait_ready(broker_url)
            export = work / "entities.jsonl"
            ours = asyncio.run(_ours(layer_url, broker_url, work / "state.sqlite3", export, broker.pid))
            ours["in_broker"] = _count(broker_url, "adapter")
            ours["push"]["in_broker"] = _count(broker_url, "adapter-push")
            peers = {} if args.no_peers else {
                name: _run_peer(name, broker_url, export, broker.pid, chunk=1000) for name in PEERS}
            broker.terminate()
            broker.wait(10)
            # The same pushes against a null broker (stores nothing, answers at once): each
            # client's own cost, i.e. the best wall time any broker could give it.
            null_port = _free_port()
            null = subprocess.Popen([sys.executable, "-m", "bench.sync", "serve-null", str(null_port)],
                                    cwd=ROOT, env=env)
            try:
                null_url = f"http://127.0.0.1:{null_port}"
                _wait_ready(null_url)
                nulls: dict[str, Any] = {"ours": asyncio.run(_push_null(null_url, export, null.pid))}
                if not args.no_peers:
                    nulls.update({name: _run_peer(name, null_url, export, null.pid, chunk=1000, count=False)
                                  for name in PEERS})
            finally:
                null.terminate()
                null.wait(10)
        finally:
            layer.stdin.close()  # type: ignore[union-attr]
            layer.wait(10)
            if broker.poll() is None:
                broker.terminate()
                broker.wait(10)
    _print(args.n, ours, peers, nulls)
    return 0


def _wait_ready(url: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + API + "/types", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def _print(n: int, ours: dict[str, Any], peers: dict[str, Any], nulls: dict[str, Any]) -> None:
    full, resync = ours["full"], ours["resync"]
    print(f"features: {n:,}; in broker (tenant adapter): {ours['in_broker']:,}")
    print(f"ours full sync: {full['wall']:.1f} s, {full['sent'] / full['wall']:,.0f} entities/s, "
          f"adapter CPU {full['cpu']:.1f} s ({full['cpu'] / full['wall']:.0%} of wall), "
          f"broker CPU {full['broker_cpu']:.1f} s; sent {full['sent']:,}, ok={full['ok']}")
    for label, run in (("no-change re-sync (layer's lastEditDate unmoved: no fetch)", resync),
                       ("no-change re-sync (no layer version: every page fetched, unchanged pages skipped whole)",
                        ours["resync_unversioned"])):
        print(f"ours {label}: {run['wall']:.2f} s ({run['wall'] / full['wall']:.1%} of the full sync), "
              f"sent {run['sent']}, deleted {run['deleted']}, attrs deleted {run['attrs_deleted']}, "
              f"unchanged {run['unchanged']:,}, adapter CPU {run['cpu']:.2f} s, "
              f"broker CPU {run['broker_cpu']:.2f} s")
    push = ours["push"]
    print(f"ours push only (BrokerClient.upsert of the same file, like the peers): {push['wall']:.1f} s, "
          f"{n / push['wall']:,.0f} entities/s, client CPU {push['cpu']:.1f} s, broker CPU {push['broker_cpu']:.1f} s, "
          f"in broker {push['in_broker']:,}, ok={push['ok']}")
    rates = {}
    for name, result in peers.items():
        if "error" in result:
            print(f"{name} {result.get('version', '')}: FAILED: {result['error']}")
            continue
        rates[name] = n / result["wall"]
        print(f"{name} {result['version']}: {result['wall']:.1f} s, {rates[name]:,.0f} entities/s "
              f"(building objects {result['build']:.1f} s), client CPU {result['cpu']:.1f} s, "
              f"broker CPU {result['broker_cpu']:.1f} s, in broker {result['in_broker']:,}")
    if rates:
        best = max(rates, key=rates.get)  # type: ignore[arg-type]
        print(f"ours vs the faster peer ({best}): full sync {full['sent'] / full['wall'] / rates[best]:.1f}x, "
              f"push only {n / push['wall'] / rates[best]:.1f}x (wall); per client CPU second: full sync "
              f"{full['sent'] / full['cpu'] / (n / peers[best]['cpu']):.1f}x, push only "
              f"{n / push['cpu'] / (n / peers[best]['cpu']):.1f}x")
    if nulls:
        print("null broker (stores nothing, answers at once): each client's own cost, the best any broker allows")
        ceiling = {}
        for name, result in nulls.items():
            if "error" in result:
                print(f"  {name}: FAILED: {result['error']}")
                continue
            ceiling[name] = result["wall"]
            print(f"  {name}: {result['wall']:.2f} s ({n / result['wall']:,.0f} entities/s), client CPU "
                  f"{result['cpu']:.2f} s")
        fastest = min((k for k in ceiling if k != "ours"), key=ceiling.__getitem__, default=None)
        if fastest and "ours" in ceiling:
            print(f"  ours vs {fastest} with a null broker: {ceiling[fastest] / ceiling['ours']:.1f}x; "
                  f"5x {fastest} on the embedded broker needs a push of at most "
                  f"{peers.get(fastest, {}).get('wall', float('nan')) / 5:.1f} s wall, while the embedded "
                  f"broker alone spends {push['broker_cpu']:.1f} s of CPU on these entities")


if __name__ == "__main__":
    if sys.argv[1] == "serve-layer":
        serve_layer(int(sys.argv[2]))
    elif sys.argv[1] == "serve-null":
        serve_null(int(sys.argv[2]))
    elif sys.argv[1] == "serve-broker":
        serve_broker(int(sys.argv[2]), sys.argv[3], sys.argv[4])
