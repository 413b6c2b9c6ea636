"""Map synthetic Smart Burgas air-quality and traffic readings to entities and normalized bytes.

A "record" here is one raw reading (a ``data[]`` row): half are hourly air-quality rows (stations
of :data:`AQ_ROWS` readings, newest-first, 17 string keys each), half traffic rows (detectors of
:data:`TRAFFIC_ROWS` readings, oldest-first), generated lazily in the feeds' exact format. Every
reading becomes a history snapshot and every feature a current entity; all are serialised to
normalized NGSI-LD bytes. Two ways through the mappers:

* ``stream``: :func:`adapter.mapping.iter_mapped`, feature by feature (the memory floor);
* ``fetch``: :func:`adapter.mapping.map_records`, which holds one fetch's results to merge
  equal ids, so its memory grows with the size of the fetch.

Run: ``python -m bench mapping [-n 100000] [--write]`` (``--write`` appends to bench/README.md).
"""

from __future__ import annotations

import argparse
import platform
import random
import time
import tracemalloc
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapter.mapping import MAPPERS, Mapped, iter_mapped, map_records
from adapter.ngsi.serialize import Form, dumps
from adapter.sources.base import RawRecord

AQ_ROWS = 24
TRAFFIC_ROWS = 96
FETCHED_AT = datetime(2026, 3, 30, 12, 5, tzinfo=UTC)
T0 = datetime(2026, 3, 30, 15, 0, 5)  # naive Sofia local, as the feed writes it
README = Path(__file__).parent / "README.md"
POLLUTANTS = (("SO2", "ug/m3"), ("NO2", "ug/m3"), ("O3", "ug/m3"), ("h2s", "mg/m3"),
              ("pm10", "ug/m3"), ("pm2.5", "ug/m3"), ("Benzene", "ug/m3"), ("Styrene", "ug/m3"))


def air_quality(stations: int, seed: int = 1) -> Iterator[RawRecord]:
    """Air-quality features of AQ_ROWS hourly readings each, newest first, numbers as strings."""
    rnd = random.Random(seed)
    for s in range(stations):
        rows = []
        for h in range(AQ_ROWS):
            row: dict[str, str] = {}
            for key, unit in POLLUTANTS:
                empty = key in ("pm2.5", "Styrene") or rnd.random() < 0.1
                value = "" if empty else f"{rnd.uniform(0.5, 70):.{1 if unit == 'ug/m3' else 4}f}"
                row[key], row[f"{key}_unit"] = value, "" if empty else unit
            row["time"] = f"{T0 - timedelta(hours=h, seconds=rnd.randint(0, 10)):%Y-%m-%d %H:%M:%S}"
            rows.append(row)
        props = {"id": str(s + 1), "name": f"Станция {s + 1}", "global_air_quality": str(rnd.randint(1, 6)),
                 "data": rows, "geometry": {"type": "Point", "coordinates": [
                     round(27.37 + rnd.random() * 0.16, 14), round(42.44 + rnd.random() * 0.13, 14)]}}
        yield RawRecord("smartburgas.air_quality", f"features1[{s}] id={s + 1}",
                        {"type": "Feature", "properties": props}, FETCHED_AT, "bg")


def traffic(detectors: int, seed: int = 2) -> Iterator[RawRecord]:
    """Traffic features of TRAFFIC_ROWS ~15-minute readings each, oldest first."""
    rnd = random.Random(seed)
    start = T0 - timedelta(hours=24)
    for d in range(detectors):
        rows = []
        at = start
        for _ in range(TRAFFIC_ROWS):
            at += timedelta(seconds=rnd.randint(780, 1020))
            rows.append({"car_count": str(4 * rnd.randint(1, 225)), "car_speed": str(rnd.randint(7, 75)),
                         "time": f"{at:%Y-%m-%d %H:%M:%S}"})
        props = {"detector_id": str(d + 1), "name": "" if d % 7 == 0 else f"ул. Детектор {d + 1} - запад",
                 "data": rows, "geometry": {"type": "Point", "coordinates": [
                     round(27.37 + rnd.random() * 0.16, 12), round(42.44 + rnd.random() * 0.13, 12)]}}
        yield RawRecord("smartburgas.traffic", f"features1[{d}] detector_id={d + 1}",
                        {"type": "Feature", "properties": props}, FETCHED_AT, "bg")


Way = Callable[[str, Iterable[RawRecord]], Iterator[Mapped | object]]


def _stream(feed: str, records: Iterable[RawRecord]):
    return iter_mapped(MAPPERS[feed], records)


WAYS: dict[str, Way] = {"stream": _stream, "fetch": map_records}


def run(readings: int, way: Way) -> tuple[int, int, int]:
    """Map and serialise ``readings`` raw readings; returns (readings, entities, bytes)."""
    half = readings // 2
    stations, detectors = half // AQ_ROWS, (readings - half) // TRAFFIC_ROWS
    entities = size = 0
    for feed, records in (("air_quality", air_quality(stations)), ("traffic", traffic(detectors))):
        for result in way(feed, records):
            if not isinstance(result, Mapped):
                raise RuntimeError(f"synthetic record rejected: {result}")
            for entity in (result.entity, *result.history):
                size += len(dumps(entity, Form.NORMALIZED))
                entities += 1
    return stations * AQ_ROWS + detectors * TRAFFIC_ROWS, entities, size


def rate(readings: int, way: Way, repeat: int = 2) -> tuple[float, int, int]:
    """Best readings/s over ``repeat`` runs, with the entity and byte counts."""
    best = 0.0
    for _ in range(repeat):
        start = time.perf_counter()
        done, entities, size = run(readings, way)
        best = max(best, done / (time.perf_counter() - start))
    return best, entities, size


def peak_memory(readings: int, way: Way) -> float:
    """Peak traced allocation in MiB while mapping ``readings`` readings."""
    tracemalloc.start()
    run(readings, way)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mapping")
    parser.add_argument("-n", type=int, default=100_000, help="raw readings (half air quality, half traffic)")
    parser.add_argument("--write", action="store_true", help="append the results to bench/README.md")
    args = parser.parse_args(argv)
    lines = [f"readings: {args.n:,} ({args.n // 2 // AQ_ROWS:,} air-quality stations x {AQ_ROWS}, "
             f"{(args.n - args.n // 2) // TRAFFIC_ROWS:,} traffic detectors x {TRAFFIC_ROWS})"]
    for name, way in WAYS.items():
        per_s, entities, size = rate(args.n, way)
        lines.append(f"{name}: {per_s:,.0f} readings/s -> {entities:,} entities, "
                     f"{size / 2**20:.1f} MiB normalized")
        for n in (10_000, args.n):
            lines.append(f"{name}: peak traced memory mapping {n:,} readings: {peak_memory(n, way):.2f} MiB")
    print("\n".join(lines))
    if args.write:
        _append(lines)
    return 0


def _append(lines: list[str]) -> None:
    heading = "## Mapping"
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    stamp = f"{datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}"
    block = f"\n`python -m bench mapping` ({stamp}):\n\n```\n" + "\n".join(lines) + "\n```\n"
    if heading not in text:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{__doc__.split(chr(10))[0]}\n"
    # Results go at the end of the Mapping section, before the next heading of the same level.
    start = text.index(heading) + len(heading)
    end = text.find("\n## ", start)
    end = len(text) if end == -1 else end
    text = text[:end].rstrip("\n") + "\n" + block + text[end:]
    README.write_text(text, encoding="utf-8")
