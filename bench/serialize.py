"""Build and serialise AirQualityObserved entities to normalized NGSI-LD bytes.

Runs, in one process and one run, our path (validated pydantic model -> plan-based serializer ->
orjson), the path from raw Smart Burgas records through the real mapper, and the plain baseline (a
hand-built dict + json.dumps). The three are measured in interleaved rounds (each round runs each
path once; the best round of each counts) in CPU time of this process (the work is single-core),
so the ratios between them depend little on how loaded the shared machine is at one moment. Memory is measured
separately with tracemalloc at 10k and 100k entities to show it stays flat (entities are streamed, never held).

The raw records are synthetic (``bench.mapping.air_quality``); generating them costs about half as
much as the plain baseline itself, which is not the adapter's work. So the headline raw figure maps
records drawn from a pool of :data:`POOL_STATIONS` stations generated before timing, each reuse a
fresh feature (its own id and record key); the mapper keeps nothing from one record to the next.
The figure with generation included is printed too.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import cache

from adapter.ngsi.serialize import Form, dumps
from adapter.sources.base import RawRecord
from data_models import AirQualityObserved

T0 = datetime(2026, 2, 1, tzinfo=UTC)
POLLUTANTS = (("so2", 2.5), ("no2", 29.6), ("o3", 70.2), ("pm10", 14.7), ("c6h6", 0.7))
POOL_STATIONS = 100


def ours(n: int) -> Iterator[bytes]:
    """Our path: a validated model per entity, serialised by the plan-based serializer."""
    for i in range(n):
        entity = AirQualityObserved(
            id=f"urn:ngsi-ld:AirQualityObserved:smartburgas:{i}",
            date_observed=T0 + timedelta(hours=i % 800),
            location={"type": "Point", "coordinates": [27.4 + (i % 1000) * 1e-5, 42.5]},
            so2=2.5, no2=29.6, o3=70.2, pm10=14.7, c6h6=0.7)
        yield dumps(entity, Form.NORMALIZED)


def plain_dict(n: int) -> Iterator[bytes]:
    """Baseline: a hand-built normalized dict and json.dumps (no validation at all)."""
    for i in range(n):
        observed = (T0 + timedelta(hours=i % 800)).strftime("%Y-%m-%dT%H:%M:%SZ")
        entity = {"id": f"urn:ngsi-ld:AirQualityObserved:smartburgas:{i}", "type": "AirQualityObserved",
                  "dateObserved": {"type": "Property", "value": observed},
                  "location": {"type": "GeoProperty", "value": {
                      "type": "Point", "coordinates": [27.4 + (i % 1000) * 1e-5, 42.5]}}}
        for name, value in POLLUTANTS:
            entity[name] = {"type": "Property", "value": value, "unitCode": "GQ", "observedAt": observed}
        yield json.dumps(entity, ensure_ascii=False, separators=(",", ":")).encode()


def from_raw(n: int) -> Iterator[bytes]:
    """From raw Smart Burgas air-quality features (strings, naive Sofia times) through the real
    mapper: every reading becomes an entity snapshot (validated model) and normalized bytes.
    The features come from the pre-generated pool (see the module docstring)."""
    return _mapped(n, _pooled_stations())


def from_raw_generated(n: int) -> Iterator[bytes]:
    """As :func:`from_raw`, but generating every raw feature inside the timed loop."""
    from bench.mapping import AQ_ROWS, air_quality

    return _mapped(n, air_quality(n // AQ_ROWS + 1))


@cache
def _station_pool() -> tuple[RawRecord, ...]:
    from bench.mapping import air_quality

    return tuple(air_quality(POOL_STATIONS))


def _pooled_stations() -> Iterator[RawRecord]:
    """Endless features from the pool, each with its own id (so its own entity id) and key."""
    pool = _station_pool()
    number = 0
    while True:
        for template in pool:
            number += 1
            props = {**template.payload["properties"], "id": str(number)}
            yield RawRecord(template.source, f"features1[{number - 1}] id={number}",
                            {"type": "Feature", "properties": props}, template.fetched_at,
                            template.lang)


def _mapped(n: int, records: Iterator[RawRecord]) -> Iterator[bytes]:
    from adapter.mapping import MAPPERS, Mapped, iter_mapped

    produced = 0
    for result in iter_mapped(MAPPERS["air_quality"], records):
        assert isinstance(result, Mapped), result
        for entity in result.history:
            yield dumps(entity, Form.NORMALIZED)
            produced += 1
            if produced == n:
                return


def rates(producers: dict[str, Callable[[int], Iterator[bytes]]], n: int,
          rounds: int = 3) -> dict[str, float]:
    """Best entities per CPU second of each producer over interleaved rounds (each round runs each
    once), so every producer sees the same spells of load from other work on the machine."""
    best = dict.fromkeys(producers, 0.0)
    for _ in range(rounds):
        for name, produce in producers.items():
            start = time.process_time()
            total = 0
            for body in produce(n):
                total += len(body)
            best[name] = max(best[name], n / (time.process_time() - start))
    return best


def peak_memory(produce: Callable[[int], Iterator[bytes]], n: int) -> float:
    """Peak traced allocation in MiB while streaming n entities."""
    tracemalloc.start()
    for _ in produce(n):
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench serialize")
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    _station_pool()  # generated before any timing
    best = rates({"ours": ours, "plain": plain_dict, "raw": from_raw}, args.n, args.rounds)
    ours_rate, base_rate, raw_rate = best["ours"], best["plain"], best["raw"]
    generated = rates({"raw": from_raw_generated, "plain": plain_dict}, args.n, rounds=1)
    print(f"entities: {args.n:,} (best of {args.rounds} interleaved rounds, per CPU second)")
    print(f"ours (validated model -> normalized bytes): {ours_rate:,.0f} entities/s")
    print(f"ours from raw air-quality records:          {raw_rate:,.0f} entities/s "
          f"(ratio to plain dict {raw_rate / base_rate:.2f})")
    print(f"  same, generating the raw records in the loop (one round): "
          f"{generated['raw']:,.0f} entities/s "
          f"(ratio to plain dict in that round {generated['raw'] / generated['plain']:.2f})")
    print(f"plain dict + json.dumps:                    {base_rate:,.0f} entities/s")
    print(f"ratio ours / plain dict:                    {ours_rate / base_rate:.2f}")
    # The peer figures were measured against a plain-dict rate of 112,000/s on this
    # machine: FiLiP 26,000/s (0.23 of it), ngsildclient 13,000/s (0.12). 3x FiLiP = 0.70.
    print(f"ratio ours / FiLiP (scaled by baseline):   {ours_rate / base_rate / (26_000 / 112_000):.2f}")
    print(f"ratio raw / FiLiP (scaled by baseline):    {raw_rate / base_rate / (26_000 / 112_000):.2f}")
    for size in (10_000, args.n):
        print(f"peak traced memory streaming {size:,}: ours {peak_memory(ours, size):.2f} MiB, "
              f"from raw {peak_memory(from_raw, size):.2f} MiB")
    return 0
