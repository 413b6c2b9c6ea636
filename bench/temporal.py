"""Temporal API of the embedded broker: backfill rate, bytes per instance, lastN and daily averages.

`python -m bench temporal [--scale S]` (S=1: the issue's sizes):
1. builds a history of 9,000,000 instances directly through `TemporalStore.add_rows` (300 air-quality
   stations x 4 pollutants x hourly readings going back ~312 days) in a SQLite file: the fast way to a
   large table; then
2. starts the broker on that file in a child process (`serve()`, temporal_limit=1000 as an adapter
   deployment would set it) and backfills 1,000,000 readings over HTTP, as the adapter does
   (`POST /temporal/entities`, one traffic detector x 2 quantities x 96 fifteen-minute readings per
   request): readings/s and the server's RSS after every tenth of the backfill (memory flat?);
3. bytes per stored instance: the database file (after a checkpoint) / instances;
4. p50 of `GET /temporal/entities/{station}?lastN=24` (4 attributes x 24) at 10,000,000 instances;
5. p50 of daily averages over 30 days for 100 stations (`aggregatedValues`, `aggrMethods=avg`,
   `aggrPeriodDuration=P1D`, one attribute).
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson

BASE = "/ngsi-ld/v1"
JSON = {"Content-Type": "application/json"}
VOCAB = "https://uri.etsi.org/ngsi-ld/default-context/"  # no @context: the default vocabulary
POLLUTANTS = ("pm10", "pm25", "no2", "o3")
END = datetime(2026, 11, 30, tzinfo=UTC)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_base(db: Path, stations: int, hours: int) -> int:
    """Air-quality history written straight through the store; returns the instance count."""
    from ngsild_broker.sqlite import SqliteStore
    from ngsild_broker.temporal_store import TemporalStore
    store = SqliteStore(db)
    history = TemporalStore(store)
    rng = random.Random(3)
    end_ms = int(END.timestamp() * 1000)
    start_ms = end_ms - hours * 3_600_000
    meta = {"unitCode": "GQ"}
    count = 0
    for station in range(stations):
        ident = f"urn:ngsi-ld:AirQualityObserved:burgas-{station}"
        with store.write() as tx:
            for name in POLLUTANTS:
                level = rng.uniform(5, 60)
                rows = ((start_ms + h * 3_600_000, round(level + rng.uniform(-5, 5), 1), meta)
                        for h in range(hours))
                history.add_rows(tx.conn, "", ident, [VOCAB + "AirQualityObserved"], VOCAB + name, rows)
                count += hours
    store.close()
    return count


def _detector_body(detector: int, day: int, rng: random.Random) -> bytes:
    start = END - timedelta(days=day + 1)
    readings = [start + timedelta(minutes=15 * i) for i in range(96)]
    return orjson.dumps({
        "id": f"urn:ngsi-ld:TrafficFlowObserved:burgas-{detector}", "type": "TrafficFlowObserved",
        "intensity": [{"type": "Property", "value": rng.randint(0, 400), "observedAt": _iso(t),
                       "unitCode": "E50"} for t in readings],
        "averageVehicleSpeed": [{"type": "Property", "value": round(rng.uniform(10, 70), 1),
                                 "observedAt": _iso(t), "unitCode": "KMH"} for t in readings]})


def _p50(http: httpx.Client, path: str, params: dict, runs: int) -> tuple[float, httpx.Response]:
    times: list[float] = []
    response: httpx.Response | None = None
    for _ in range(runs):
        start = time.perf_counter()
        response = http.get(BASE + path, params=params)
        times.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
    assert response is not None  # runs >= 1
    return statistics.median(times), response


def run(scale: float, backfill: int | None = None) -> dict:
    stations = 300
    base_hours = max(800, int(7_500 * scale))  # 300 x 4 x 7,500 = 9,000,000; >= 31 days
    detectors = 100
    backfill = backfill if backfill is not None else int(1_000_000 * scale)
    days = max(1, int(round(backfill / (detectors * 192))))  # 192 readings per request
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "b.sqlite"
        start = time.perf_counter()
        base = build_base(db, stations, base_hours)
        build_s = time.perf_counter() - start
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        child = subprocess.Popen([sys.executable, "-m", "bench.temporal", "--serve", str(port), str(db)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                for _ in range(400):
                    try:
                        http.get(BASE + "/types")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                rng = random.Random(5)
                requests = [(d, day) for day in range(days) for d in range(detectors)]
                rss = [_rss_mib(child.pid)]
                tenth = max(1, len(requests) // 10)
                start = time.perf_counter()
                for n, (detector, day) in enumerate(requests, 1):
                    body = _detector_body(detector, day, rng)
                    http.post(BASE + "/temporal/entities", content=body, headers=JSON).raise_for_status()
                    if n % tenth == 0:
                        rss.append(_rss_mib(child.pid))
                backfill_s = time.perf_counter() - start
                readings = len(requests) * 192
                station = f"urn:ngsi-ld:AirQualityObserved:burgas-{stations // 2}"
                last_ms, last = _p50(http, f"/temporal/entities/{station}", {"lastN": 24}, 50)
                assert sum(len(v) for k, v in last.json().items() if k not in ("id", "type")) == 96
                window_end = END - timedelta(hours=1)
                aggr = {"type": "AirQualityObserved", "attrs": "pm10",
                        "options": "aggregatedValues", "aggrMethods": "avg", "aggrPeriodDuration": "P1D",
                        "timerel": "between", "timeAt": _iso(window_end - timedelta(days=30)),
                        "endTimeAt": _iso(window_end), "limit": 100}
                aggr_ms, answer = _p50(http, "/temporal/entities", aggr, 20)
                entities = answer.json()
                assert len(entities) == 100 and all(len(e["pm10"]["avg"]) >= 30 for e in entities), \
                    [len(e.get("pm10", {}).get("avg", [])) for e in entities][:5]
        finally:
            child.terminate()
            child.wait(30)
        with sqlite3.connect(db) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            instances = conn.execute("SELECT count(*) FROM t_instances").fetchone()[0]
        size = db.stat().st_size + (os.path.getsize(f"{db}-wal") if os.path.exists(f"{db}-wal") else 0)
    return {"base instances": base, "base build s": build_s, "backfilled readings": readings,
            "backfill readings/s": readings / backfill_s, "stored instances": instances,
            "bytes/instance": size / instances, "db MiB": size / 2**20,
            "lastN=24 p50 ms": last_ms, "30-day daily avg x100 p50 ms": aggr_ms,
            "server RSS MiB during backfill": " ".join(f"{r:.0f}" for r in rss)}


def _serve(port: int, db: str) -> None:
    from ngsild_broker.server import serve
    from ngsild_broker.settings import BrokerSettings
    serve(BrokerSettings(port=port, db_path=Path(db), temporal_limit=1000))


def main(argv: list[str]) -> int:
    """Run at the given scale and print the figures."""
    if argv[:1] == ["--serve"]:
        _serve(int(argv[1]), argv[2])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench temporal")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="fraction of the issue's sizes (1: 9M built + 1M backfilled)")
    parser.add_argument("--backfill", type=int, default=None,
                        help="readings to backfill over HTTP (default: 1,000,000 x scale)")
    args = parser.parse_args(argv)
    figures = run(args.scale, args.backfill)
    for key, value in figures.items():
        print(f"{key}: {value:,.1f}" if isinstance(value, float) else f"{key}: {value:,}"
              if isinstance(value, int) else f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
