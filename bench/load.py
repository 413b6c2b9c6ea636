"""Broker under load, then killed: `python -m bench load [--duration 60] [--clients 20] [--entities 10000]`.

Phase 1: the broker runs as its own process (`python -m ngsild_broker --port P --db F`), holding
`--entities` Burgas-like entities; `--clients` concurrent clients mix batch upserts, q filters, GET by
id and geo queries for `--duration` seconds. Reported: answers per operation, 5xx (must be 0), other
errors, p50/p99 per operation, the broker's RSS before and after.

Phase 2: writers create and update entities while the broker is killed with SIGKILL `--kills` times;
after each restart on the same database every write that was acknowledged (2xx) must be there.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx
import orjson

from bench.broker import TYPES, _entity, _rss_mib

BASE = "/ngsi-ld/v1"
JSON = {"Content-Type": "application/json"}
# Operation mix of phase 1 (weights): writes are batches of 10 entities, as a sync sends them.
MIX = {"upsert": 3, "q": 2, "get": 4, "geo": 2}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_broker(db: Path, port: int) -> subprocess.Popen:
    """The broker in its own process, as an operator runs it; returns once it answers."""
    child = subprocess.Popen([sys.executable, "-m", "ngsild_broker", "--port", str(port),
                              "--db", str(db)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{BASE}/types", timeout=2).status_code == 200:
                return child
        except httpx.TransportError:
            time.sleep(0.05)
    child.kill()
    raise RuntimeError("broker did not start")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def _client(http: httpx.AsyncClient, rng: random.Random, count: int, until: float,
                  times: dict[str, list[float]], statuses: dict[str, dict[int, int]]) -> None:
    ops, weights = list(MIX), list(MIX.values())
    while time.monotonic() < until:
        op = rng.choices(ops, weights)[0]
        if op == "upsert":
            start_n = rng.randrange(count)
            body = orjson.dumps([_entity((start_n + i) % count, rng) for i in range(10)])
            request = http.build_request("POST", BASE + "/entityOperations/upsert", content=body, headers=JSON)
        elif op == "q":
            request = http.build_request("GET", BASE + "/entities", params={
                "type": rng.choice(TYPES), "q": f"temperature>{rng.randint(0, 34)}", "limit": 50})
        elif op == "get":
            n = rng.randrange(count)
            kind = "Building" if n % 5 == 4 else TYPES[n % 4]
            request = http.build_request("GET", f"{BASE}/entities/urn:ngsi-ld:{kind}:burgas-{n}")
        else:
            lon, lat = 27.35 + rng.random() * 0.2, 42.45 + rng.random() * 0.11
            request = http.build_request("GET", BASE + "/entities", params={
                "type": rng.choice(TYPES), "georel": "near;maxDistance==300", "geometry": "Point",
                "coordinates": f"[{lon:.5f},{lat:.5f}]", "limit": 50})
        started = time.perf_counter()
        try:
            response = await http.send(request)
            status = response.status_code
        except httpx.HTTPError:
            status = 0  # no answer at all
        times[op].append((time.perf_counter() - started) * 1000)
        statuses[op][status] += 1


async def _load(url: str, clients: int, count: int, duration: float) -> tuple[dict, dict]:
    times: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
        until = time.monotonic() + duration
        await asyncio.gather(*(_client(http, random.Random(i), count, until, times, statuses)
                               for i in range(clients)))
    return times, statuses


def load_phase(count: int, clients: int, duration: float) -> bool:
    """Phase 1; returns True when no answer was a 5xx and none was missing."""
    with tempfile.TemporaryDirectory() as tmp:
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        child = start_broker(Path(tmp) / "b.sqlite", port)
        try:
            rng = random.Random(7)
            with httpx.Client(base_url=url, timeout=120) as http:
                for i in range(0, count, 1000):
                    body = orjson.dumps([_entity(n, rng) for n in range(i, min(i + 1000, count))])
                    http.post(BASE + "/entityOperations/upsert", content=body, headers=JSON).raise_for_status()
            rss_before, _ = _rss_mib(child.pid)
            times, statuses = asyncio.run(_load(url, clients, count, duration))
            rss_after, peak = _rss_mib(child.pid)
        finally:
            child.terminate()
            child.wait(30)
    print(f"load: {clients} clients, {duration:.0f} s, {count:,} entities; broker RSS {rss_before:.0f} MiB "
          f"before, {rss_after:.0f} MiB after (peak {peak:.0f} MiB)")
    print("| operation | requests | req/s | 5xx | no answer | other 4xx | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    failures = 0
    for op in MIX:
        codes = statuses[op]
        fivexx = sum(n for code, n in codes.items() if code >= 500)
        missing = codes.get(0, 0)
        other = sum(n for code, n in codes.items() if 400 <= code < 500)
        failures += fivexx + missing
        total = sum(codes.values())
        print(f"| {op} | {total:,} | {total / duration:,.0f} | {fivexx} | {missing} | {other} | "
              f"{_percentile(times[op], 0.5):.1f} | {_percentile(times[op], 0.99):.1f} |")
    return failures == 0


async def _writer(url: str, writer: int, acked: dict[str, int], stop: asyncio.Event) -> None:
    """Creates `urn:ngsi-ld:Ack:<writer>-<n>` and sets `urn:ngsi-ld:Ack:<writer>` seq=n, recording 2xx."""
    n = 0
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        while not stop.is_set():
            n += 1
            batch = [{"id": f"urn:ngsi-ld:Ack:{writer}-{n}", "type": "Ack", "seq": {"type": "Property", "value": n}},
                     {"id": f"urn:ngsi-ld:Ack:{writer}", "type": "Ack", "seq": {"type": "Property", "value": n}}]
            try:
                response = await http.post(BASE + "/entityOperations/upsert", content=orjson.dumps(batch),
                                           headers=JSON)
            except httpx.HTTPError:
                return  # the broker is gone: what was acknowledged so far is what must survive
            if 200 <= response.status_code < 300:
                acked[f"urn:ngsi-ld:Ack:{writer}-{n}"] = n
                acked[f"urn:ngsi-ld:Ack:{writer}"] = n


async def _writes_until_killed(url: str, child: subprocess.Popen, writers: int, after: float) -> dict[str, int]:
    acked: dict[str, int] = {}
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_writer(url, w, acked, stop)) for w in range(writers)]
    await asyncio.sleep(after)
    os.kill(child.pid, signal.SIGKILL)  # mid-write: requests are in flight
    child.wait()
    stop.set()
    await asyncio.gather(*tasks)
    return acked


def kill_phase(kills: int, writers: int = 4) -> bool:
    """Phase 2; returns True when no acknowledged write was lost."""
    lost_total = 0
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "b.sqlite"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        for round_ in range(1, kills + 1):
            child = start_broker(db, port)
            acked = asyncio.run(_writes_until_killed(url, child, writers, after=2.0 + round_ * 0.37))
            child = start_broker(db, port)
            try:
                lost = []
                with httpx.Client(base_url=url, timeout=30) as http:
                    for ident, seq in acked.items():
                        got = http.get(f"{BASE}/entities/{ident}", params={"options": "keyValues"})
                        # A later write may have landed without its answer: at least the acked value.
                        if got.status_code != 200 or got.json()["seq"] < seq:
                            lost.append(ident)
            finally:
                child.terminate()
                child.wait(30)
            lost_total += len(lost)
            print(f"kill -9 round {round_}: {len(acked):,} acknowledged writes checked after restart, "
                  f"{len(lost)} lost" + (f" (e.g. {lost[:3]})" if lost else ""))
    return lost_total == 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench load", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed load")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=3, help="SIGKILL rounds (0: none)")
    args = parser.parse_args(argv)
    ok = load_phase(args.entities, args.clients, args.duration)
    ok = kill_phase(args.kills) and ok
    print("load: OK" if ok else "load: FAILED (5xx, missing answers or lost acknowledged writes)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
