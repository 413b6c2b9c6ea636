"""Delivery of notifications over HTTP and MQTT, from a bounded queue, off the request path."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import anyio.to_thread
import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

logger = logging.getLogger(__name__)

USER_AGENT = "burgas-embedded-broker"
HTTP_TIMEOUT = 10.0
MQTT_TIMEOUT = 5.0


class DeliveryError(Exception):
    """A notification could not be delivered (kept as the subscription's lastFailure reason)."""


@dataclass(frozen=True)
class MqttTarget:
    """`mqtt://[user:pass@]host:port/topic` taken apart (Orion-LD S/mqtt/mqttParse.cpp)."""

    host: str
    port: int
    topic: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, uri: str) -> MqttTarget:
        """Split an mqtt:// URI; raises ValueError when host, port or topic is missing."""
        parts = urlsplit(uri)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError("an MQTT endpoint is mqtt://[user:pass@]host:port/topic")
        # Orion-LD builds "host:port" with no default port (S/mqtt/mqttConnect.cpp:46).
        if parts.port is None:
            raise ValueError("the MQTT endpoint needs an explicit port")
        topic = uri.split("//", 1)[1].split("/", 1)[1] if "/" in uri.split("//", 1)[1] else ""
        if not topic:
            raise ValueError("the MQTT endpoint needs a topic")
        return cls(parts.hostname, parts.port, topic,
                   unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None)


@dataclass
class Delivery:
    """One notification to send: where, what, and the callback told about the outcome."""

    uri: str
    body: dict[str, Any]
    headers: dict[str, str]
    subscription_id: str
    mqtt_qos: int = 0
    mqtt_version: str = "mqtt5.0"
    done: Callable[[bool, str | None], None] = field(default=lambda ok, reason: None)


class MqttPool:
    """Connected paho clients, one per broker address and credentials, reused across notifications."""

    def __init__(self) -> None:
        self._clients: dict[tuple[Any, ...], mqtt.Client] = {}
        self._lock = threading.Lock()

    def _connect(self, target: MqttTarget, version: str) -> mqtt.Client:
        protocol = mqtt.MQTTv311 if version == "mqtt3.1.1" else mqtt.MQTTv5
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        if target.username is not None:
            client.username_pw_set(target.username, target.password)
        connected = threading.Event()
        client.on_connect = lambda c, u, flags, reason, props: connected.set()
        try:
            client.connect(target.host, target.port, keepalive=60)
        except (OSError, ValueError) as exc:
            raise DeliveryError(f"cannot connect to MQTT server {target.host}:{target.port}: {exc}") from exc
        client.loop_start()
        if not connected.wait(MQTT_TIMEOUT) or not client.is_connected():
            client.loop_stop()
            client.disconnect()
            raise DeliveryError(f"MQTT server {target.host}:{target.port} refused the connection")
        return client

    def client(self, target: MqttTarget, version: str) -> mqtt.Client:
        """A connected client for the target (blocking; call from a worker thread)."""
        key = (target.host, target.port, target.username, target.password, version)
        with self._lock:
            client = self._clients.get(key)
            if client is not None and client.is_connected():
                return client
            if client is not None:
                client.loop_stop()
            client = self._clients[key] = self._connect(target, version)
            return client

    def check(self, uri: str, version: str = "mqtt5.0") -> None:
        """Connect now (subscription creation); raises DeliveryError when the server is unreachable."""
        try:
            target = MqttTarget.parse(uri)
        except ValueError as exc:
            raise DeliveryError(str(exc)) from exc
        self.client(target, version)

    def publish(self, delivery: Delivery) -> None:
        """Publish `{"metadata": headers, "body": notification}`, retain off (S/mqtt/mqttNotify.cpp)."""
        try:
            target = MqttTarget.parse(delivery.uri)
        except ValueError as exc:
            raise DeliveryError(str(exc)) from exc
        client = self.client(target, delivery.mqtt_version)
        payload = orjson.dumps({"metadata": delivery.headers, "body": delivery.body})
        info = client.publish(target.topic, payload, qos=delivery.mqtt_qos, retain=False)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise DeliveryError(f"MQTT publish failed: {mqtt.error_string(info.rc)}")
        if delivery.mqtt_qos > 0:
            try:
                info.wait_for_publish(MQTT_TIMEOUT)
            except (RuntimeError, ValueError) as exc:
                raise DeliveryError(f"MQTT publish failed: {exc}") from exc
            if not info.is_published():
                raise DeliveryError("MQTT publish not acknowledged in time")

    def close(self) -> None:
        """Disconnect every client."""
        with self._lock:
            for client in self._clients.values():
                client.disconnect()
                client.loop_stop()
            self._clients.clear()


class Notifier:
    """Background workers draining a bounded queue of deliveries; submit() never waits."""

    def __init__(self, client: httpx.AsyncClient | None = None, *, queue_size: int = 10_000,
                 workers: int = 4, mqtt_pool: MqttPool | None = None) -> None:
        self._client = client
        self._owns_client = client is None
        self.mqtt = mqtt_pool or MqttPool()
        self._queue: asyncio.Queue[Delivery] | None = None
        self._queue_size = queue_size
        self._workers_n = workers
        self._workers: list[asyncio.Task[None]] = []
        self.dropped = 0

    def start(self) -> None:
        """Start the workers on the running loop."""
        if self._workers:
            return
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=HTTP_TIMEOUT, follow_redirects=False)
        self._queue = asyncio.Queue(self._queue_size)
        self._workers = [asyncio.get_running_loop().create_task(self._work())
                         for _ in range(self._workers_n)]

    def submit(self, delivery: Delivery) -> bool:
        """Queue a delivery; False (and the delivery counted as failed) when the queue is full."""
        if self._queue is None:
            self.start()
        assert self._queue is not None
        try:
            self._queue.put_nowait(delivery)
            return True
        except asyncio.QueueFull:
            self.dropped += 1
            logger.warning("notification queue full: dropping a notification of %s", delivery.subscription_id)
            delivery.done(False, "notification queue full")
            return False

    async def join(self) -> None:
        """Wait until every queued delivery was attempted (tests, shutdown)."""
        if self._queue is not None:
            await self._queue.join()

    async def aclose(self) -> None:
        """Finish queued deliveries, stop the workers and close connections."""
        await self.join()
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        if self._client is not None and self._owns_client:
            await self._client.aclose()
            self._client = None
        await anyio.to_thread.run_sync(self.mqtt.close)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            try:
                await self.deliver(delivery)
                delivery.done(True, None)
            except DeliveryError as exc:
                logger.info("notification of %s to %s failed: %s", delivery.subscription_id,
                            delivery.uri, exc)
                delivery.done(False, str(exc))
            except Exception:  # a bug must not kill the worker; the subscription shows the failure
                logger.exception("notification of %s failed", delivery.subscription_id)
                delivery.done(False, "internal error")
            finally:
                self._queue.task_done()

    async def deliver(self, delivery: Delivery) -> None:
        """Send one notification now; raises DeliveryError."""
        if delivery.uri.startswith("mqtt://"):
            await anyio.to_thread.run_sync(self.mqtt.publish, delivery)
            return
        await self._post(delivery)

    async def _post(self, delivery: Delivery) -> None:
        assert self._client is not None
        sep = "&" if "?" in delivery.uri else "?"
        url = f"{delivery.uri}{sep}subscriptionId={quote(delivery.subscription_id, safe=':')}"
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **delivery.headers}
        try:
            request = self._client.build_request("POST", url, content=orjson.dumps(delivery.body),
                                                 headers=headers)
            response = await self._client.send(request, stream=True)
            await response.aclose()  # the receiver's answer is not read: nothing to bound
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"endpoint answered {response.status_code}")

