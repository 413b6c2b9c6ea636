"""`python -m bench sync --cli`: the user's whole `burgas-adapter sync` against ngsildclient's bare push.

    python -m bench sync --cli --features 20000 100000 [--rounds 1]

Per layer size, side by side in one run:

- The layer: ArcGIS-style points in CCS2005 (EPSG:7801), 2000 per page, served by a child process
  (the same layer as `python -m bench sync`).
- Ours: `burgas-adapter sync gis.bench --broker-url ...` as a subprocess (a fresh state dir), timed
  from process start to exit, into a separately started broker process
  (`python -m ngsild_broker serve --port ... --db ...`, a fresh database).
- The peer: ngsildclient (its own virtual environment, bench/.envs/ngsildclient) reads the same
  features already in WGS84 from a JSON file before its clock starts, then builds
  `PointOfInterest` entities with the same attributes (its `Entity` builder) and pushes them with
  `Client.upsert(entities, update=True)` into an identical fresh broker process.

The broker processes get the generated @context files through `--contexts-dir` (an `index.json`
naming the file of each URL), so they resolve the context URL the entities name without the
adapter's service running. Once `sync --broker-url` publishes its @context on the target broker
first, the offline files are simply not needed; the bench works either way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.sync import API, MAPPING, PAGE, ROOT, _cpu_s, _free_port, _peer_python, _wait_ready, layer_features

NGSILDCLIENT_BUILD = r'''
import json, resource, sys, time
from urllib.parse import urlsplit
from ngsildclient import Client, Entity
url, path, context = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
features = [json.loads(line) for line in open(path, encoding="utf-8")]
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2]); t0 = time.perf_counter()
parts = urlsplit(url)
client = Client(hostname=parts.hostname, port=parts.port, verbose=False)
entities = []
for f in features:
    e = Entity("PointOfInterest", f["id"], ctx=context)
    e.prop("name", f["name"])
    e.prop("category", f["category"])
    e.prop("address", f["address"])
    e.prop("dateModified", f["dateModified"])
    e.loc(f["lat"], f["lon"])
    entities.append(e)
built = time.perf_counter() - t0
result = client.upsert(entities, update=True)
wall = time.perf_counter() - t0
print(json.dumps({"wall": wall, "build": built, "cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu0,
                  "failed": getattr(result, "n_err", None)}))
'''


def _contexts_dir(directory: Path) -> tuple[Path, list[str]]:
    """The generated @context files and an index.json (URL -> file) for `--contexts-dir`; also the
    @context value the adapter's entities carry (for the peer's entities)."""
    from adapter.ngsi.context import ContextMode, context_for
    from adapter.runtime import write_generated_contexts
    from adapter.settings import Settings
    from data_models import PointOfInterest

    files = write_generated_contexts(directory, Settings().context_base_url)
    (directory / "index.json").write_bytes(orjson.dumps({url: path.name for url, path in files.items()}))
    context = context_for(PointOfInterest, ContextMode.GENERATED)  # the value the adapter sends
    return directory, list(context) if isinstance(context, list | tuple) else [context]


def _count_default(url: str) -> int:
    """PointOfInterest entities in the broker's default tenant."""
    from adapter.ngsi.batching import link_header, link_url
    from adapter.ngsi.context import ContextMode, context_for
    from data_models import PointOfInterest

    link = link_url(context_for(PointOfInterest, ContextMode.GENERATED))
    assert link is not None  # the generated context is a URL of its own
    response = httpx.get(url + API + "/entities", params={"type": "PointOfInterest", "count": "true", "limit": "0"},
                         headers={"Link": link_header(link)}, timeout=60)
    response.raise_for_status()
    return int(response.headers["NGSILD-Results-Count"])


def _start_broker(work: Path, name: str, contexts: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen([*_broker_command(), "--port", str(port),
                                "--db", str(work / f"{name}.sqlite3"), "--contexts-dir", str(contexts)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url)
    return process, url


def _broker_command() -> list[str]:
    """`python -m ngsild_broker` (its one command) or `... serve` once the app has several."""
    shown = subprocess.run([sys.executable, "-m", "ngsild_broker", "--help"], cwd=ROOT, capture_output=True,
                           text=True, env={**os.environ, "COLUMNS": "200"})
    several = "Commands" in shown.stdout and " serve " in shown.stdout
    return [sys.executable, "-m", "ngsild_broker", *(["serve"] if several else [])]


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(10)


def _adapter_command() -> list[str]:
    script = Path(sys.executable).with_name("burgas-adapter")
    return [str(script)] if script.exists() else [sys.executable, "-m", "adapter.cli"]


def _ours(work: Path, layer_url: str, contexts: Path, env: dict[str, str]) -> dict[str, Any]:
    config = work / "pipeline.yaml"
    config.write_bytes(orjson.dumps({"sources": [{
        "name": "gis.bench", "group": "gis", "type": "arcgis", "url": layer_url, "page_size": PAGE,
        "mapping": MAPPING}]}))
    state = work / "state"
    broker, url = _start_broker(work, "broker-ours", contexts)
    try:
        broker_cpu = _cpu_s(broker.pid)
        start = time.perf_counter()
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = subprocess.Popen([*_adapter_command(), "sync", "gis.bench", "--config", str(config),
                                        "--broker-url", url, "--state-dir", str(state), "--json"],
                                       cwd=work, env=env, stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)  # its own CPU and peak RSS
            wall = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        broker_cpu = _cpu_s(broker.pid) - broker_cpu
        if process.returncode:
            return {"error": f"exit {process.returncode}: {(stderr or stdout).strip()[-1500:]}"}
        report = json.loads(stdout)[0]
        return {"wall": wall, "broker_cpu": broker_cpu, "cpu": usage.ru_utime + usage.ru_stime,
                "rss_mb": usage.ru_maxrss / 1024, "sent": report["sent"], "in_broker": _count_default(url)}
    finally:
        _stop(broker)


def _peer(work: Path, wgs84: Path, contexts: Path, context: list[str]) -> dict[str, Any]:
    python, version = _peer_python("ngsildclient", "ngsildclient")
    if python is None:
        return {"error": version}
    broker, url = _start_broker(work, "broker-peer", contexts)
    try:
        broker_cpu = _cpu_s(broker.pid)
        done = subprocess.run([str(python), "-c", NGSILDCLIENT_BUILD, url, str(wgs84), json.dumps(context)],
                              capture_output=True, text=True, timeout=3600)
        broker_cpu = _cpu_s(broker.pid) - broker_cpu
        if done.returncode:
            return {"version": version, "error": done.stderr.strip()[-1500:]}
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result.update(version=version, broker_cpu=broker_cpu, in_broker=_count_default(url))
        return result
    finally:
        _stop(broker)


def _write_wgs84(n: int, path: Path) -> None:
    """The layer's features as the peer gets them: WGS84, every attribute as our mapping writes it."""
    import datetime as dt

    with path.open("wb") as file:
        for _, lon, lat, attributes in layer_features(n):
            updated = dt.datetime.fromtimestamp(attributes["UPDATED"] / 1000, dt.UTC)
            file.write(orjson.dumps({
                "id": f"urn:ngsi-ld:PointOfInterest:gis-burgas:bench:{attributes['CODE']}",
                "name": attributes["NAME"], "category": MAPPING["constants"]["category"],
                "address": {"addressLocality": "Бургас", "addressCountry": "BG",
                            "district": attributes["DISTRICT"]},
                "dateModified": updated.strftime("%Y-%m-%dT%H:%M:%SZ"), "lon": lon, "lat": lat}) + b"\n")


def run(features: list[int], rounds: int) -> int:
    """Each size: ours and the peer, `rounds` times, alternating; prints a table."""
    rows = []
    for n in features:
        with tempfile.TemporaryDirectory(prefix="bench-sync-cli-") as tmp:
            work = Path(tmp)
            contexts, context = _contexts_dir(work / "contexts")
            wgs84 = work / "features.wgs84.jsonl"
            _write_wgs84(n, wgs84)
            env = {**os.environ, "BURGAS_CACHE_DIR": str(work / "cache"), "BURGAS_LOG_LEVEL": "WARNING",
                   "PYTHONPATH": str(ROOT)}
            layer = subprocess.Popen([sys.executable, "-m", "bench.sync", "serve-layer", str(n)], cwd=ROOT,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)}, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
            try:
                layer_url = layer.stdout.readline().strip()  # type: ignore[union-attr]
                for round_ in range(rounds):
                    run_dir = work / f"round{round_}"
                    run_dir.mkdir()
                    ours = _ours(run_dir, layer_url, contexts, env)
                    peer = _peer(run_dir, wgs84, contexts, context)
                    rows.append((n, round_, ours, peer))
                    _print_row(n, ours, peer)
                    shutil.rmtree(run_dir, ignore_errors=True)
            finally:
                layer.stdin.close()  # type: ignore[union-attr]
                layer.wait(10)
    print()
    print("| features | `burgas-adapter sync` wall s | its CPU s | its peak RSS MB | broker CPU s "
          "| ngsildclient wall s | its CPU s (building) | broker CPU s | ratio (ngsildclient wall / ours) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, _, ours, peer in rows:
        if "error" in ours or "error" in peer:
            continue
        print(f"| {n:,} | {ours['wall']:.1f} | {ours['cpu']:.1f} | {ours['rss_mb']:.0f} | {ours['broker_cpu']:.1f} "
              f"| {peer['wall']:.1f} "
              f"| {peer['cpu']:.1f} ({peer['build']:.1f}) | {peer['broker_cpu']:.1f} | "
              f"**{peer['wall'] / ours['wall']:.2f}x** |")
    good = [(n, ours) for n, _, ours, peer in rows if "error" not in ours]
    sizes = sorted({n for n, _ in good})
    if len(sizes) >= 2:
        # The adapter's CPU per feature without its start-up: the slope between the smallest and the
        # largest layer (best run of each), i.e. fetch, reproject, map, validate, diff, outbox, encode.
        small, large = (min(o["cpu"] for n, o in good if n == size) for size in (sizes[0], sizes[-1]))
        print(f"\nadapter CPU per feature (slope {sizes[0]:,} -> {sizes[-1]:,}): "
              f"{(large - small) / (sizes[-1] - sizes[0]) * 1e6:.0f} µs")
    return 0 if all("error" not in o and "error" not in p for _, _, o, p in rows) else 1


def _print_row(n: int, ours: dict[str, Any], peer: dict[str, Any]) -> None:
    if "error" in ours:
        print(f"{n:,}: burgas-adapter sync FAILED: {ours['error']}")
    else:
        print(f"{n:,}: burgas-adapter sync {ours['wall']:.2f} s wall (process start to exit), adapter CPU "
              f"{ours['cpu']:.2f} s, peak RSS {ours['rss_mb']:.0f} MB, broker CPU {ours['broker_cpu']:.2f} s, "
              f"sent {ours['sent']:,}, in broker {ours['in_broker']:,}")
    if "error" in peer:
        print(f"{n:,}: ngsildclient FAILED: {peer['error']}")
    else:
        print(f"{n:,}: ngsildclient {peer['version']} {peer['wall']:.2f} s wall (building {peer['build']:.2f} s), "
              f"client CPU {peer['cpu']:.2f} s, broker CPU {peer['broker_cpu']:.2f} s, "
              f"in broker {peer['in_broker']:,}")
    if "error" not in ours and "error" not in peer:
        print(f"{n:,}: ours is {peer['wall'] / ours['wall']:.2f}x ngsildclient's bare push (wall)", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sync --cli")
    parser.add_argument("--features", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--rounds", type=int, default=1, help="runs of each pair per size")
    args = parser.parse_args(argv)
    return run(args.features, args.rounds)
