"""A real MQTT broker for integration tests, and a listener that collects published messages.

`mqtt_broker` (session fixture) gives (host, port): MQTT_URL (default 127.0.0.1:1883) when something
answers there, else a `mosquitto -p <free port>` started for the session, else the test fails when
CI=true and is skipped otherwise. (The pure-Python amqtt broker is no fallback: 0.12.1 refuses
MQTT 5, which the stream source speaks by default, with "Unsupported protocol version"; it has no
shared subscriptions; and, tried with MQTT 3.1.1 and clean_session=False, it did not queue QoS 1
messages for an offline session, which the "nothing lost while the adapter is down" tests check.
Those tests would then fail or have to skip, so they fail loudly only where Mosquitto is expected.)
The fixtures (`mqtt_broker`, `publisher`: a QoS 1 publisher to it, `prefix`: a topic prefix of the
test's own) reach every test module through conftest.py's `pytest_plugins`; import `MqttListener` and
`Publisher` from here.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion


def _address() -> tuple[str, int]:
    raw = os.environ.get("MQTT_URL", "127.0.0.1:1883")
    raw = raw.split("://", 1)[-1].rstrip("/")
    host, _, port = raw.rpartition(":")
    return host or "127.0.0.1", int(port or 1883)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[tuple[str, int]]:
    """(host, port) of a running MQTT broker."""
    host, port = _address()
    if _answers(host, port):
        yield host, port
        return
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no MQTT broker at {host}:{port} and no mosquitto binary")
        pytest.skip(f"no MQTT broker at {host}:{port} and no mosquitto binary")
    port = _free_port()
    proc = subprocess.Popen([binary, "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _answers("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not start on port {port}")
            time.sleep(0.05)
        yield "127.0.0.1", port
    finally:
        proc.terminate()
        proc.wait(10)


class MqttListener:
    """Subscribes to a topic and queues every message as (topic, decoded JSON, qos, retain)."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: queue.Queue[tuple[str, Any, int, bool]] = queue.Queue()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2)
        subscribed = queue.Queue()
        self._client.on_message = lambda c, u, msg: self.messages.put(
            (msg.topic, orjson.loads(msg.payload), msg.qos, bool(msg.retain)))
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=2)
        self._client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.put(True)
        self._client.connect(host, port)
        self._client.loop_start()
        subscribed.get(timeout=10)

    def next(self, timeout: float = 10.0) -> tuple[str, Any, int, bool]:
        """The next message (raises queue.Empty after `timeout`)."""
        return self.messages.get(timeout=timeout)

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> MqttListener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Publisher:
    """A QoS 1 publisher that waits for each PUBACK."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}")
        self.client.connect(host, port)
        self.client.loop_start()

    def send(self, topic: str, payload: bytes | dict[str, Any]) -> None:
        body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        self.client.publish(topic, body, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(mqtt_broker: tuple[str, int]) -> Iterator[Publisher]:
    pub = Publisher(*mqtt_broker)
    yield pub
    pub.close()


@pytest.fixture
def prefix() -> str:
    """A topic prefix (and client id) of its own, so tests sharing a broker never see each other's messages."""
    return f"test-{uuid.uuid4().hex[:10]}"
