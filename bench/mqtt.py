"""Sustained MQTT ingestion from Mosquitto on loopback into the embedded broker.

The adapter side runs in this process exactly as `burgas-adapter serve` runs a stream: Runtime
(embedded broker in-process, fresh state), MQTTSource (QoS 1, persistent session, manual acks) and
StreamRunner (micro-batches of 500 messages / 100 ms -> outbox -> ack -> broker). A child process
publishes lamppost noise readings at QoS 1 (through mosquitto_pub when installed) at a fixed offered rate for a fixed
time, over ``--sensors`` distinct sensors (round robin, so a 100 ms batch coalesces little), and measures
publish-to-queryable latency itself: every 50th message is a probe for one of 8 probe sensors,
whose LAeq is the probe's sequence number, and the child polls the broker's NGSI-LD API
(``GET /entities?id=<the 8 probes>``, every 10 ms) and notes when each value is first visible
(a value overwritten before it was seen counts as visible when a newer one is). Publisher and
poller share one clock, so the latency is end to end: publish -> Mosquitto -> adapter -> outbox
-> broker -> query answer.

Messages/s is what the adapter acknowledged (durable in the outbox) divided by the time from the
first message received to the last batch acknowledged; "all arrived" checks that every published
message was acknowledged and every sensor is in the broker at the end. "CPU µs/msg" is this
process's CPU (every thread: paho's, the stream's, the in-process broker's) from the publisher's
start until everything is acknowledged and delivered, per acknowledged message: what one message
costs whatever else the machine runs (worker processes and a --broker-process broker not included).

    python -m bench mqtt [--rates 1000,5000,8000] [--seconds 10] [--sensors 1000]
    python -m bench mqtt --process-only 40000      # StreamRunner.process alone, CPU per message
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import queue
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

PROBES = 8
PROBE_EVERY = 50
LOCATION = [27.4712, 42.4958]


def _address() -> tuple[str, int]:
    raw = os.environ.get("MQTT_URL", "127.0.0.1:1883").split("://", 1)[-1].rstrip("/")
    host, _, port = raw.rpartition(":")
    return host or "127.0.0.1", int(port or 1883)


# --- child process: publisher and probe poller --------------------------------------------------

def publish(host: str, port: int, topic_prefix: str, broker_url: str, context_url: str, rate: float,
            seconds: float, sensors: int, results: Any) -> None:
    """Publish at `rate` msg/s for `seconds`; poll the probes; put (published, latencies) in `results`."""
    import threading

    import httpx
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    # paho's network thread publishes only ~2,500 QoS 1 messages/s here: mosquitto_pub (C) reads
    # one message per line and keeps up, so the publisher is not what is measured.
    binary = shutil.which("mosquitto_pub")
    if binary is not None:
        pipe = subprocess.Popen([binary, "-h", host, "-p", str(port), "-q", "1", "-V", "mqttv5",
                                 "-t", f"{topic_prefix}/all/noise", "-l"], stdin=subprocess.PIPE, bufsize=0)
    else:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:8]}")
        client.max_inflight_messages_set(2000)
        client.max_queued_messages_set(0)
        client.connect(host, port)
        client.loop_start()
    probe_ids = [f"urn:ngsi-ld:NoiseLevelObserved:lamppost:probe-{p}" for p in range(PROBES)]
    published_at: dict[int, float] = {}  # probe sequence -> publish time
    probe_of: dict[int, int] = {}  # probe sequence -> probe sensor
    seen: dict[int, float] = {}
    stop = threading.Event()

    def poll() -> None:
        link = f'<{context_url}>; rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json"'
        params = {"type": "NoiseLevelObserved", "id": ",".join(probe_ids), "options": "keyValues",
                  "attrs": "LAeq", "limit": str(PROBES)}
        with httpx.Client(base_url=broker_url, headers={"Link": link}, timeout=10) as http:
            while not stop.is_set():
                answer = http.get("/ngsi-ld/v1/entities", params=params)
                now = time.time()
                for entity in answer.json() if answer.status_code == 200 else []:
                    value = int(entity.get("LAeq", -1))
                    probe = probe_ids.index(entity["id"])
                    published = list(probe_of.items())  # one C-level copy: the publisher adds concurrently
                    for seq in [s for s, p in published if p == probe and s <= value and s not in seen]:
                        seen[seq] = now
                time.sleep(0.01)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    total = int(rate * seconds)
    start = time.time() + 0.2
    for i in range(total):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0.0005:
            time.sleep(delay)
        if i % PROBE_EVERY == 0:
            seq = i // PROBE_EVERY
            sensor = f"probe-{seq % PROBES}"
            probe_of[seq] = seq % PROBES
            payload = {"sensor": sensor, "time": _time(seq), "location": LOCATION, "laeq": seq}
            published_at[seq] = time.time()
        else:
            sensor = f"s{i % sensors}"
            payload = {"sensor": sensor, "time": _time(i // sensors), "location": LOCATION,
                       "laeq": 40 + i % 50}
        if binary is not None:
            pipe.stdin.write(orjson.dumps(payload) + b"\n")  # type: ignore[union-attr]
        else:
            client.publish(f"{topic_prefix}/{sensor}/noise", orjson.dumps(payload), qos=1)
    if binary is not None:
        pipe.stdin.close()  # type: ignore[union-attr]
        pipe.wait(60)
    finished = time.time()
    deadline = finished + 30
    while len(seen) < len(published_at) and time.time() < deadline:
        time.sleep(0.05)
    stop.set()
    poller.join(5)
    if binary is None:
        client.disconnect()
        client.loop_stop()
    latencies = [seen[s] - published_at[s] for s in published_at if s in seen]
    results.put({"published": total, "offered_seconds": finished - start, "probes": len(published_at),
                 "latencies": latencies})


def _time(seq: int) -> str:
    """Strictly increasing observation times per probe sensor (the newest reading must win)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_748_772_000 + seq))


# --- adapter side -------------------------------------------------------------------------------

def serve_broker(port: int, state: str, base_url: str) -> None:
    """The embedded broker in its own process (what `burgas-adapter broker serve` runs)."""
    import logging

    from adapter.runtime import local_reference_contexts, write_generated_contexts
    from ngsild_broker import BrokerSettings
    from ngsild_broker.server import serve

    logging.disable(logging.WARNING)
    contexts = {**write_generated_contexts(Path(state) / "contexts", base_url), **local_reference_contexts()}
    serve(BrokerSettings(port=port, db_path=Path(state) / "broker.sqlite3", context_files=contexts))


def _child_broker(state: Path, base_url: str) -> tuple[Any, str]:
    import socket

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    child = mp.get_context("spawn").Process(target=serve_broker, args=(port, str(state), base_url), daemon=True)
    child.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/ngsi-ld/v1/types", timeout=1)
            return child, url
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def run(rate: float, seconds: float, sensors: int, broker_process: bool = False, workers: int = 1,
              mqtt_address: tuple[str, int] | None = None) -> dict[str, Any]:
    """One offered rate: adapter here, publisher in a child; returns the measurements."""
    from adapter.config import MQTTSourceConfig, PipelineConfig
    from adapter.ngsi.context import generated_context_url
    from adapter.runtime import Runtime
    from adapter.settings import Settings
    from adapter.sync.stream import StreamBatch
    from adapter.sync.stream_pool import build_stream

    host, port = mqtt_address or _address()
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    state = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    settings = Settings(state_dir=state, embedded_broker_persist=False)
    broker_child = None
    if broker_process:
        broker_child, url = _child_broker(state, settings.context_base_url)
        settings = settings.model_copy(update={"broker_url": url})
    config = MQTTSourceConfig(name="mqtt.bench", group="mqtt", type="mqtt", url=f"mqtt://{host}:{port}",
                              client_id=prefix, session_expiry_seconds=60, workers=workers,
                              topics={f"{prefix}/+/noise": "lamppost.noise"})
    batches: list[tuple[float, StreamBatch]] = []
    async with Runtime(settings, PipelineConfig(sources=[])) as runtime:
        assert runtime.pipeline is not None and runtime.client is not None
        runner = build_stream(config, settings, runtime.pipeline,
                              on_batch=lambda b: batches.append((time.monotonic(), b)))
        await runner.start()
        while not runner.source.status()["connected"]:
            await asyncio.sleep(0.05)
        await _warm_up(runner, runtime, prefix, host, port)
        results: Any = mp.get_context("spawn").Queue()
        child = mp.get_context("spawn").Process(target=publish, args=(
            host, port, prefix, runtime.broker_url,
            generated_context_url("dataModel.Environment", settings.context_base_url),
            rate, seconds, sensors, results))
        started = time.monotonic()
        cpu_started = _cpu()
        child.start()
        max_lag = 0.0
        while True:  # read the result before joining: the child cannot exit with it unread
            max_lag = max(max_lag, runner.source.lag())
            try:
                outcome = results.get_nowait()
                break
            except queue.Empty:
                if not child.is_alive():
                    outcome = results.get(timeout=5)
                    break
            await asyncio.sleep(0.05)
        child.join(10)
        deadline = time.monotonic() + 30
        while (runner.status.messages < outcome["published"] or runner.status.pending) \
                and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu = _cpu() - cpu_started
        received = runner.source.status()["received"]
        await runner.stop()
        found = await runtime.client.query({"type": "NoiseLevelObserved", "options": "keyValues",
                                            "attrs": "LAeq"}, context=[generated_context_url(
                                                "dataModel.Environment", settings.context_base_url)])
    batches = [(end, b) for end, b in batches if b.messages and end > started]
    if broker_child is not None:
        broker_child.terminate()
        broker_child.join(10)
    acked = sum(b.messages for _, b in batches)
    first = min(b_end - b.latency for b_end, b in batches) if batches else 0.0
    last = max(b_end for b_end, _ in batches) if batches else 0.0
    latencies = sorted(outcome["latencies"])
    expected_entities = len({i % sensors for i in range(outcome["published"]) if i % PROBE_EVERY}) + PROBES + 1
    return {
        "rate": rate, "published": outcome["published"], "acked": acked,
        "ingest_rate": acked / (last - first) if last > first else 0.0,
        "offered_rate": outcome["published"] / outcome["offered_seconds"],
        "batches": len(batches), "coalesced": runner.status.coalesced, "sent": runner.status.sent,
        "received": received - 1,  # minus the warm-up reading
        "entities": len(found), "all_arrived": acked == outcome["published"] and len(found) >= expected_entities,
        "probes": outcome["probes"], "probes_seen": len(latencies),
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else float("nan"),
        "max_latency": latencies[-1] if latencies else float("nan"), "max_lag": max_lag,
        "cpu_per_message": cpu / acked if acked else float("nan"),
    }


def _cpu() -> float:
    """CPU seconds of this process (every thread: paho, the stream, the in-process broker)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _warm_up(runner: Any, runtime: Any, prefix: str, host: str, port: int) -> None:
    """One reading end to end first: the broker's first upsert loads the @context (seconds, once)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    await asyncio.sleep(0.3)  # the SUBACK follows the CONNACK
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect(host, port)
    client.loop_start()
    client.publish(f"{prefix}/warm-up/noise", orjson.dumps(
        {"sensor": "warm-up", "time": "2025-06-01T10:00:00Z", "location": LOCATION, "laeq": 1}),
        qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    deadline = time.monotonic() + 30
    while runner.status.sent < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    runner.status.sent = runner.status.messages = runner.status.coalesced = 0


def process_only(messages: int, sensors: int) -> float:
    """CPU seconds per message of `StreamRunner.process` alone (map, coalesce, outbox, history,
    commit): the run's batches of 500 readings round robin over `sensors`, no MQTT, no broker."""
    from collections.abc import Sequence

    from adapter.mapping.mqtt import mapper_for
    from adapter.sources.mqtt import BrokerAddress, MQTTMessage, MQTTSource
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.state import StateStore
    from adapter.sync.stream import StreamRunner

    class Offline(MQTTSource):
        def ack(self, messages: Sequence[MQTTMessage]) -> int:
            return len(messages)  # never connected: nothing to acknowledge to

    topics = {"bench/+/noise": "lamppost.noise"}
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-") as tmp:
        store = StateStore(Path(tmp) / "state.sqlite3")
        source = Offline("mqtt.bench", BrokerAddress("127.0.0.1", 1, False), list(topics), client_id="bench")
        runner = StreamRunner(source, mapper_for(source.name, topics), Pipeline(store, None))
        now, monotonic = time.time(), time.monotonic()
        payloads = [orjson.dumps({"sensor": f"s{i % sensors}", "time": _time(i // sensors), "location": LOCATION,
                                  "laeq": 40 + i % 50}) for i in range(messages)]
        batch = [MQTTMessage("bench/all/noise", p, len(p), 1, i % 65535 + 1, now, monotonic, 0)
                 for i, p in enumerate(payloads)]
        warm = 2 * sensors  # every sensor stored twice first: the state then holds them, as in a run
        for i in range(0, warm, 500):
            runner.process(batch[i:i + 500])
        started = time.process_time()
        for i in range(warm, messages, 500):
            runner.process(batch[i:i + 500])
        cpu = time.process_time() - started
        store.close()
    return cpu / (messages - warm)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mqtt")
    parser.add_argument("--rates", default="1000,5000", help="offered msg/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--sensors", type=int, default=1000)
    parser.add_argument("--broker-process", action="store_true",
                        help="run the embedded broker in its own process (default: in-process, as `serve` does)")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes sharing the subscription (the stream's `workers` setting)")
    parser.add_argument("--own-mosquitto", action="store_true",
                        help="start a private mosquitto with docker/mosquitto.conf's queue limits instead of "
                             "using MQTT_URL (whose default configuration drops QoS 1 messages past 1000 queued)")
    parser.add_argument("--process-only", type=int, metavar="MESSAGES",
                        help="only time StreamRunner.process on this many readings (no MQTT, no broker)")
    args = parser.parse_args(argv)
    from ngsild_broker.process import ADAPTER, tune_gc

    tune_gc(ADAPTER)  # as `serve` runs (adapter.cli sets it for every command)
    if args.process_only:
        cpu = process_only(args.process_only, args.sensors)
        print(f"StreamRunner.process alone, {args.process_only:,} readings over {args.sensors:,} sensors, "
              f"batches of 500: {cpu * 1e6:.1f} µs CPU per message")
        return 0
    mosquitto = _own_mosquitto() if args.own_mosquitto else None
    host, port = mosquitto[1] if mosquitto else _address()
    where = "own process" if args.broker_process else "in-process"
    print(f"Mosquitto {host}:{port}{' (private, docker/mosquitto.conf limits)' if mosquitto else ''}; "
          f"embedded broker {where}; {args.workers} worker process(es); {args.sensors} sensors; "
          f"{args.seconds:g} s per rate; micro-batch 500 messages / 100 ms")
    print("| offered msg/s | published | acknowledged msg/s | batches | coalesced | entities sent | "
          "all arrived | latency p50 ms | p99 ms | max ms | max MQTT lag ms | CPU µs/msg |")
    print("|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for rate in (float(r) for r in args.rates.split(",")):
        r = asyncio.run(run(rate, args.seconds, args.sensors, args.broker_process, args.workers, (host, port)))
        print(f"| {r['offered_rate']:,.0f} | {r['published']:,} | {r['ingest_rate']:,.0f} | {r['batches']:,} | "
              f"{r['coalesced']:,} | {r['sent']:,} | {'yes' if r['all_arrived'] else 'NO'} "
              f"({r['entities']:,} entities) | {r['p50'] * 1000:.0f} | {r['p99'] * 1000:.0f} | "
              f"{r['max_latency'] * 1000:.0f} | {r['max_lag'] * 1000:.0f} | {r['cpu_per_message'] * 1e6:.0f} |",
              flush=True)
        if r["received"] < r["published"]:
            print(f"  (Mosquitto delivered {r['received']:,} of {r['published']:,}: it drops QoS 1 messages "
                  "beyond max_queued_messages, 1000 by default, once the adapter falls behind)")
        if r["probes_seen"] < r["probes"]:
            print(f"  ({r['probes'] - r['probes_seen']} of {r['probes']} probes never seen)")
    if mosquitto is not None:
        mosquitto[0].terminate()
        mosquitto[0].wait(10)
    return 0


def _own_mosquitto() -> tuple[subprocess.Popen[bytes], tuple[str, int]]:
    """A private mosquitto on a free loopback port, with the queue limits of docker/mosquitto.conf."""
    import re
    import socket

    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    limits = [line for line in (Path(__file__).parent.parent / "docker" / "mosquitto.conf").read_text().splitlines()
              if re.match(r"^(max_queued_messages|max_queued_bytes|max_inflight_messages)\b", line)]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    conf = Path(tempfile.mkdtemp(prefix="bench-mosquitto-")) / "mosquitto.conf"
    conf.write_text("\n".join([f"listener {port} 127.0.0.1", "allow_anonymous true", *limits]) + "\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, ("127.0.0.1", port)
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mosquitto did not start") from None
            time.sleep(0.05)
