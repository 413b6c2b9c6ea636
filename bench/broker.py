"""Embedded broker: batch upsert rate, type+limit, geo within, q numeric latencies and RSS.

`python -m bench broker [10000 100000 ...]` starts the broker in a child process (file database,
WAL) and drives it over loopback HTTP with a Burgas-like mix (80 % points, 20 % polygons). Besides the
wall-clock rates it reports the server's CPU time per upserted entity (and per geo query), which varies
far less than the rates on a shared machine.
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

BASE = "/ngsi-ld/v1"
TYPES = ("WeatherObserved", "ParkingSpot", "Streetlight", "WasteContainer")
JSON = {"Content-Type": "application/json"}
WITHIN = "[[[27.42,42.48],[27.48,42.48],[27.48,42.53],[27.42,42.53],[27.42,42.48]]]"


def _entity(n: int, rng: random.Random) -> dict:
    lon, lat = 27.35 + rng.random() * 0.2, 42.45 + rng.random() * 0.11
    geometry: dict[str, Any]
    if n % 5 == 4:
        d = 0.0005
        geometry = {"type": "Polygon", "coordinates": [[[lon, lat], [lon + d, lat], [lon + d, lat + d],
                                                        [lon, lat + d], [lon, lat]]]}
        kind = "Building"
    else:
        geometry = {"type": "Point", "coordinates": [round(lon, 6), round(lat, 6)]}
        kind = TYPES[n % 4]
    return {"id": f"urn:ngsi-ld:{kind}:burgas-{n}", "type": kind,
            "temperature": {"type": "Property", "value": round(rng.uniform(-5, 35), 1), "unitCode": "CEL",
                            "observedAt": "2026-11-28T10:00:00Z"},
            "name": {"type": "Property", "value": f"Burgas object {n}"},
            "refDevice": {"type": "Relationship", "object": f"urn:ngsi-ld:Device:{n % 97}"},
            "location": {"type": "GeoProperty", "value": geometry}}


def _rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (less noisy than wall time on a shared machine)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p50(http: httpx.Client, params: dict, runs: int = 30, pid: int | None = None) -> tuple[float, float]:
    """p50 wall ms of a query, and (with `pid`) the server's mean CPU ms per request."""
    times = []
    cpu = _cpu_s(pid) if pid is not None else 0.0
    for _ in range(runs):
        start = time.perf_counter()
        response = http.get(BASE + "/entities", params=params)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    return statistics.median(times), ((_cpu_s(pid) - cpu) / runs * 1000 if pid is not None else 0.0)


_local = threading.local()
# How the child is started (`python -m bench.broker --serve ...`); an A/B script may point it at a wrapper.
_SERVE_CMD = ["-m", "bench.broker"]


def _post(url: str, body: bytes) -> None:
    http = getattr(_local, "http", None)
    if http is None:
        http = _local.http = httpx.Client(base_url=url, timeout=120)
    http.post(BASE + "/entityOperations/upsert", content=body, headers=JSON).raise_for_status()


def _serve(port: int, db: str, history: bool) -> None:
    from ngsild_broker.server import serve
    from ngsild_broker.settings import BrokerSettings
    serve(BrokerSettings(port=port, db_path=Path(db), temporal=history))


def run(count: int, history: bool = True) -> dict:
    """Measure one database size; returns the figures. ``history=False`` is `broker serve --no-history`
    (no attribute history recorded: Orion-LD without TRoE, the broker this bench measured before the
    temporal API)."""
    with tempfile.TemporaryDirectory() as tmp:
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        child = subprocess.Popen([sys.executable, *_SERVE_CMD, "--serve", str(port), f"{tmp}/b.sqlite",
                                  *([] if history else ["--no-history"])],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=url, timeout=120) as http:
                for _ in range(200):
                    try:
                        http.get(BASE + "/types")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                rng = random.Random(7)
                # Bodies are serialised up front (orjson, as the adapter's client does): the figure is the
                # broker's rate, not the benchmark client's JSON encoder.
                batches = [orjson.dumps([_entity(n, rng) for n in range(i, min(i + 1000, count))])
                           for i in range(0, count, 1000)]
                sizes = [min(1000, count - i) for i in range(0, count, 1000)]
                start, cpu = time.perf_counter(), _cpu_s(child.pid)
                for batch in batches:
                    http.post(BASE + "/entityOperations/upsert", content=batch, headers=JSON).raise_for_status()
                upsert_rate = count / (time.perf_counter() - start)
                upsert_cpu = (_cpu_s(child.pid) - cpu) / count * 1e6
                # Re-upsert (update path: every entity exists) of the first 10 batches.
                start = time.perf_counter()
                for batch in batches[:10]:
                    http.post(BASE + "/entityOperations/upsert", content=batch, headers=JSON).raise_for_status()
                reupsert_rate = sum(sizes[:10]) / (time.perf_counter() - start)
                # Two clients: one batch's JSON/validation overlaps the other's SQLite write.
                start = time.perf_counter()
                with ThreadPoolExecutor(2) as pool:
                    list(pool.map(lambda b: _post(url, b), batches[:20]))
                concurrent_rate = sum(sizes[:20]) / (time.perf_counter() - start)
                figures = {
                    "entities": count, "history": int(history), "upsert/s": upsert_rate,
                    "upsert server CPU µs/entity": upsert_cpu,
                    "re-upsert/s": reupsert_rate,
                    "re-upsert/s 2 clients": concurrent_rate,
                    "type+limit=100 p50 ms": _p50(http, {"type": "ParkingSpot", "limit": 100})[0],
                    "type+limit=100 offset=far p50 ms": _p50(http, {"type": "ParkingSpot", "limit": 100,
                                                                    "offset": count // 8})[0],
                }
                # Geo queries: also the server's CPU per request (steadier than wall time when shared).
                figures["geo within p50 ms"], figures["geo within server CPU ms"] = _p50(http, {
                    "type": "ParkingSpot", "georel": "within", "geometry": "Polygon", "coordinates": WITHIN,
                    "limit": 100}, pid=child.pid)
                figures["geo within all types+count p50 ms"], figures["geo all+count server CPU ms"] = _p50(
                    http, {"local": "true", "georel": "within", "geometry": "Polygon", "coordinates": WITHIN,
                           "limit": 100, "count": "true"}, runs=10, pid=child.pid)
                figures |= {
                    "q numeric p50 ms": _p50(http, {"type": "ParkingSpot", "q": "temperature>30", "limit": 100})[0],
                    "q numeric+count p50 ms": _p50(http, {"type": "ParkingSpot", "q": "temperature>30",
                                                          "limit": 100, "count": "true"}, runs=10)[0],
                }
                figures["RSS MiB"], figures["peak RSS MiB"] = _rss_mib(child.pid)
                return figures
        finally:
            child.terminate()
            child.wait(30)


def in_process(count: int, history: bool = True) -> dict:
    """The same batches without HTTP: `parse_entity` and `operations.batch_upsert` on a file store
    in this process; thread CPU µs per entity, median over the batches after the first five (the
    checkpoint thread and the HTTP layer left out). Under `valgrind --tool=callgrind` the difference
    of two sizes gives instructions per entity, which no other load on the machine changes."""
    import asyncio

    from ngsild_broker import operations
    from ngsild_broker.contexts import ContextResolver
    from ngsild_broker.entities import parse_entity
    from ngsild_broker.process import BROKER, tune_gc
    from ngsild_broker.settings import BrokerSettings
    from ngsild_broker.sqlite.store import SqliteStore
    from ngsild_broker.temporal_store import TemporalStore

    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "b.sqlite")
        if history:
            store.history = TemporalStore(store)
        ctx = asyncio.run(ContextResolver(BrokerSettings(db_path=None), store).from_value(None))
        rng = random.Random(7)
        batches = [orjson.dumps([_entity(n, rng) for n in range(i, min(i + 1000, count))])
                   for i in range(0, count, 1000)]
        tune_gc(BROKER)
        parse, upsert = [], []
        for batch in batches:
            start = time.thread_time()
            items = [parse_entity(raw, ctx) for raw in orjson.loads(batch)]
            parsed = time.thread_time()
            operations.batch_upsert(store, "", list(items), False)
            parse.append(parsed - start)
            upsert.append(time.thread_time() - parsed)
        store.close()
    return {"entities": count, "history": int(history),
            "parse µs/entity": statistics.median(parse[5:] or parse) * 1000,
            "upsert µs/entity": statistics.median(upsert[5:] or upsert) * 1000}


def main(argv: list[str]) -> int:
    """Run the sizes given (default 10,000 and 100,000) and print a Markdown table; with
    `--no-history` the broker records no attribute history; with `--in-process` no server (see
    `in_process`)."""
    if argv[:1] == ["--serve"]:
        _serve(int(argv[1]), argv[2], history="--no-history" not in argv)
        return 0
    if "--in-process" in argv:
        sizes = [int(a) for a in argv if a.isdigit()] or [100_000]
        for n in sizes:
            print(in_process(n, "--no-history" not in argv))
        return 0
    history = "--no-history" not in argv
    sizes = [int(a) for a in argv if a != "--no-history"] or [10_000, 100_000]
    rows = [run(n, history) for n in sizes]
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---:|" * len(keys))
    for row in rows:
        counts = ("entities", "history", "upsert/s", "re-upsert/s", "re-upsert/s 2 clients")
        print("| " + " | ".join(f"{row[k]:,.0f}" if k in counts else f"{row[k]:.1f}" for k in keys) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
