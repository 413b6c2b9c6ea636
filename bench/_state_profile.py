"""`python -m bench._state_profile [-n 20000]`: the adapter's SQLite time per entity in one full sync.

The layer (bench.sync's ArcGIS points, a child process) is synced in this process into the embedded
broker (another child process) under cProfile, then the time spent inside sqlite3's C methods is
split by the adapter function that called them, per entity of the layer.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench.sync import MAPPING, PAGE, ROOT, _free_port, _wait_ready

SQLITE = ("sqlite3.Connection", "sqlite3.Cursor")


async def _sync(layer_url: str, broker_url: str, state: Path) -> tuple[float, int]:
    from adapter.config import PipelineConfig
    from adapter.ngsi.client import BrokerClient
    from adapter.sync.factory import build_mapper, build_source
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.skip import salt_for
    from adapter.sync.state import StateStore

    config = PipelineConfig.model_validate({"sources": [{
        "name": "gis.bench", "group": "gis", "type": "arcgis", "url": layer_url, "page_size": PAGE,
        "mapping": MAPPING}]}).sources[0]
    store = StateStore(state)
    async with httpx.AsyncClient(timeout=60.0) as http, BrokerClient(broker_url, tenant="adapter") as client:
        pipeline = Pipeline(store, client, tenant="adapter")
        started = time.perf_counter()
        report = await pipeline.run_once(config.name, build_source(config, http), build_mapper(config),
                                         static=True, salt=salt_for(config))
        wall = time.perf_counter() - started
    store.close()
    assert report.ok and report.pending == 0, report
    return wall, report.sent


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._state_profile")
    parser.add_argument("-n", "--features", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    from adapter.runtime import local_reference_contexts, write_generated_contexts
    from adapter.settings import Settings

    with tempfile.TemporaryDirectory(prefix="bench-state-") as tmp:
        work = Path(tmp)
        files = write_generated_contexts(work / "contexts", Settings().context_base_url)
        files.update(local_reference_contexts())
        (work / "contexts.json").write_bytes(orjson.dumps({u: str(p) for u, p in files.items()}))
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        layer = subprocess.Popen([sys.executable, "-m", "bench.sync", "serve-layer", str(args.features)],
                                 cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        broker = subprocess.Popen([sys.executable, "-m", "bench.sync", "serve-broker", str(port),
                                   str(work / "broker.sqlite3"), str(work / "contexts.json")], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            layer_url = layer.stdout.readline().strip()  # type: ignore[union-attr]
            broker_url = f"http://127.0.0.1:{port}"
            _wait_ready(broker_url)
            profile = cProfile.Profile()
            profile.enable()
            wall, sent = asyncio.run(_sync(layer_url, broker_url, work / "state.sqlite3"))
            profile.disable()
        finally:
            layer.stdin.close()  # type: ignore[union-attr]
            layer.wait(10)
            broker.terminate()
            broker.wait(10)
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    by_caller: dict[str, float] = {}
    total = 0.0
    for (_, _, name), (_, _, tt, _, callers) in stats.items():
        if not any(kind in name for kind in SQLITE):
            continue
        total += tt
        for (cfile, _, cname), (_, _, ctt, _) in callers.items():
            method = name.split("'")[1] if "'" in name else name
            key = f"{method} <- {Path(cfile).parent.name}/{Path(cfile).name}:{cname}"
            by_caller[key] = by_caller.get(key, 0.0) + ctt
    n = args.features
    commits = sum(v[1] for k, v in stats.items() if k[2] == "transaction")
    print(f"{n} features, {sent} sent, wall {wall:.1f} s (profiled); SQLite C time {total:.2f} s = "
          f"{total / n * 1e6:.1f} µs per entity; {commits} transactions")
    for key, seconds in sorted(by_caller.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {seconds / n * 1e6:6.1f} µs  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
