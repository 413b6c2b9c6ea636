"""An MQTT subscription as a source of raw records, acknowledged only when the caller says so.

paho-mqtt runs its network loop in a thread; messages wait in an in-memory inbox until the
stream runner (adapter.sync.stream) takes them with :meth:`MQTTSource.receive`, has made them
durable, and calls :meth:`MQTTSource.ack`. Nothing is acknowledged automatically (paho's
``manual_ack``), so a message the adapter has not stored is redelivered by the broker.

Delivery guarantees come from the session: QoS 1 subscriptions under a stable client id with a
persistent session (MQTT 5: ``clean_start=False`` and a session expiry interval; MQTT 3.1.1:
``clean_session=False``), so messages published while the adapter is away wait in the broker.
With MQTT 5 the client announces a Receive Maximum, which bounds the messages in flight (and so
the inbox); with 3.1.1 the broker's own limit applies (Mosquitto: ``max_inflight_messages``,
20 by default). paho reconnects by itself, with exponential backoff between the configured bounds.

paho errors are translated here: invalid settings become ``ConfigError``, refused credentials
``AuthError``, network failures ``SourceUnavailableError``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from adapter.config import MQTTSourceConfig
from adapter.errors import AdapterError, AuthError, ConfigError, SourceUnavailableError
from adapter.settings import Settings
from adapter.sources.base import RawRecord

logger = logging.getLogger(__name__)

SUBSCRIBE_QOS = 1
# CONNACK reason codes that mean "these credentials are not accepted" (MQTT 5 and 3.1.1 values).
_AUTH_FAILURES = frozenset({"Bad user name or password", "Not authorized", "Banned",
                            "Bad authentication method"})


@dataclass(frozen=True, slots=True)
class MQTTMessage:
    """One received message, as long as it waits for its acknowledgement."""

    topic: str
    payload: bytes  # at most max_payload_bytes; `size` is the size the broker sent
    size: int
    qos: int
    mid: int
    received_at: float  # unix time
    received_monotonic: float
    generation: int  # the connection it came on: an ack is only valid on that connection


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker listens."""

    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, url: str, *, tls: bool = False) -> BrokerAddress:
        """``mqtt://host:port``, ``mqtts://host:port`` or ``host:port`` (default ports 1883 / 8883)."""
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(f"MQTT URL scheme {parts.scheme!r} is not mqtt:// or mqtts://")
        tls = tls or parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError("MQTT URL has an invalid port") from None
        if not parts.hostname:
            raise ConfigError("MQTT URL has no host")
        return cls(parts.hostname, port, tls)

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class MQTTSource:
    """Subscribes to topic filters (QoS 1, persistent session) and hands out messages in batches."""

    def __init__(self, name: str, address: BrokerAddress, topics: Sequence[str], *, client_id: str,
                 protocol: str = "5", session_expiry: int = 86400, receive_maximum: int = 2000,
                 keepalive: int = 30, reconnect_min: int = 1, reconnect_max: int = 60,
                 username: str | None = None, password: SecretStr | None = None,
                 ca_file: Path | None = None, max_payload_bytes: int = 65536,
                 share_group: str | None = None) -> None:
        self.name = name
        self.address = address
        self.topics = list(topics)
        self.share_group = share_group  # subscribe as one member of a shared subscription
        # Filters this session still holds from an earlier configuration (other topics, or the
        # shared/plain form of a run with another number of workers): unsubscribed on connect.
        self.forget: list[str] = []
        # Called (in paho's thread) with the filters once the broker accepted them all.
        self.on_subscribed: Callable[[list[str]], None] | None = None
        self.end_session = False  # stop() asks the broker to discard the session
        self.client_id = client_id
        self.protocol = protocol
        self.session_expiry = session_expiry
        self.receive_maximum = receive_maximum
        self.keepalive = keepalive
        self.max_payload_bytes = max_payload_bytes
        self.connected = False
        self.subscribed = False  # the broker acknowledged (SUBACK) this connection's subscriptions
        self.connections = 0
        self.received = 0
        self.acknowledged = 0
        self.last_error: str | None = None
        self.last_connected_at: float | None = None
        self._inbox: deque[MQTTMessage] = deque()
        self._generation = 0
        self._in_hand_since: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._armed = False
        self._signal_at = 1
        self._failing = False  # log a failure once, and the recovery once
        self._client = self._build_client(username, password, ca_file, reconnect_min, reconnect_max)

    @classmethod
    def from_config(cls, config: MQTTSourceConfig, settings: Settings, *,
                    worker: int | None = None) -> MQTTSource:
        """The source of a pipeline-file entry, with credentials and TLS from the settings.

        `worker` (0, 1, ...) makes it one member of the entry's shared subscription, with its own
        client id and persistent session.
        """
        if settings.mqtt_password is not None and settings.mqtt_username is None:
            raise ConfigError("BURGAS_MQTT_PASSWORD needs BURGAS_MQTT_USERNAME", source=config.name)
        address = BrokerAddress.parse(config.url, tls=settings.mqtt_tls or settings.mqtt_ca_file is not None)
        client_id = config.client_id or f"burgas-adapter-{config.name}"
        group = config.share_group or client_id
        if worker is not None:
            # Worker 0 keeps the stream's own client id, so going from one process to several
            # (or back) resumes the same session and nothing queued in it is stranded.
            client_id = client_id if worker == 0 else f"{client_id}-w{worker}"
        return cls(config.name, address, list(config.topics), client_id=client_id,
                   share_group=group if worker is not None else None, protocol=config.protocol,
                   session_expiry=config.session_expiry_seconds, receive_maximum=config.receive_maximum,
                   keepalive=config.keepalive_seconds, reconnect_min=config.reconnect_min_seconds,
                   reconnect_max=max(config.reconnect_max_seconds, config.reconnect_min_seconds),
                   username=settings.mqtt_username, password=settings.mqtt_password,
                   ca_file=settings.mqtt_ca_file, max_payload_bytes=config.max_payload_bytes)

    def _build_client(self, username: str | None, password: SecretStr | None, ca_file: Path | None,
                      reconnect_min: int, reconnect_max: int) -> mqtt.Client:
        v5 = self.protocol == "5"
        try:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                 protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
                                 clean_session=None if v5 else False, manual_ack=True)
            client.reconnect_delay_set(reconnect_min, reconnect_max)
            if username is not None:
                client.username_pw_set(username, password.get_secret_value() if password else None)
            if self.address.tls:
                client.tls_set(ca_certs=str(ca_file) if ca_file else None,
                               cert_reqs=ssl.CERT_REQUIRED)
        except (ValueError, OSError, ssl.SSLError) as exc:
            raise ConfigError(f"MQTT client settings: {type(exc).__name__}: {exc}", source=self.name) from None
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # --- lifecycle (event loop thread) --------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background (paho's thread); reconnects happen there too."""
        self._loop = asyncio.get_running_loop()
        properties = None
        kwargs: dict[str, Any] = {}
        if self.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = self.session_expiry
            properties.ReceiveMaximum = self.receive_maximum
            # The broker must not send a packet larger than this (it drops it instead), so paho
            # never reads an unbounded one. Up to it, a payload over max_payload_bytes is still
            # read, cut, and quarantined with its size, so the sender can be told.
            properties.MaximumPacketSize = self.max_packet_size
            kwargs = {"clean_start": False, "properties": properties}
        try:
            self._client.connect_async(self.address.host, self.address.port, self.keepalive, **kwargs)
        except ValueError as exc:
            raise ConfigError(f"MQTT connect settings: {exc}", source=self.name) from None
        self._client.loop_start()
        logger.info("%s: connecting to %s as %s", self.name, self.address, self.client_id)

    def stop(self) -> None:
        """Disconnect (acknowledgements already queued go out first) and stop paho's thread.

        With `end_session` set (a retired worker, MQTT 5), the broker discards the session.
        """
        if self.end_session and self.protocol == "5":
            properties = Properties(PacketTypes.DISCONNECT)
            properties.SessionExpiryInterval = 0
            self._client.disconnect(properties=properties)
        else:
            self._client.disconnect()
        self._client.loop_stop()
        self.connected = self.subscribed = False

    # --- paho callbacks (paho's thread) -------------------------------------------------------------

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                    properties: Any) -> None:
        if reason.is_failure:
            error = _connect_error(reason, self.name)
            self._fail(error)
            return
        self._generation += 1  # before any message of this connection is handed out
        self.subscribed = False  # before `connections` moves: who sees the new count sees this too
        self.connected = True
        self.connections += 1
        self.last_connected_at = time.time()
        if self._failing or self.connections == 1:
            logger.info("%s: connected to %s (session present: %s)", self.name, self.address,
                        bool(getattr(flags, "session_present", False)))
        self._failing = False
        self.last_error = None
        if not self.topics:  # a retiring worker: it only takes what its session still holds
            result = mqtt.MQTT_ERR_SUCCESS
        else:
            result, _ = client.subscribe([(self.subscription(topic), SUBSCRIBE_QOS) for topic in self.topics])
        if result != mqtt.MQTT_ERR_SUCCESS:
            self._fail(SourceUnavailableError(f"subscribe failed: {mqtt.error_string(result)}",
                                              source=self.name))
            return
        if self.forget:
            client.unsubscribe(list(self.forget))
            logger.info("%s: unsubscribed %s (no longer configured)", self.name, ", ".join(self.forget))

    def subscription(self, topic: str) -> str:
        """The filter subscribed for a configured topic pattern (shared when in a share group)."""
        return topic if self.share_group is None else f"$share/{self.share_group}/{topic}"

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        # Not strict: an exception here would end paho's network thread; one reason per filter is the spec.
        refused = [t for t, r in zip(self.topics, reasons, strict=False) if r.is_failure]
        if refused:
            self._fail(AuthError(f"the broker refused the subscription to {', '.join(refused)}",
                                 source=self.name))
            return
        self.subscribed = True
        if self.on_subscribed is not None:
            self.on_subscribed([self.subscription(t) for t in self.topics])

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._fail(SourceUnavailableError(f"cannot connect to {self.address}", source=self.name))

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode,
                       properties: Any) -> None:
        was_connected, self.connected = self.connected, False
        self.subscribed = False
        # After a refused CONNACK paho reports a disconnect too: keep the refusal as the reason.
        if reason.is_failure and was_connected:
            self._fail(SourceUnavailableError(f"disconnected from {self.address}: {reason}",
                                              source=self.name))

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        payload = message.payload
        self._inbox.append(MQTTMessage(message.topic, bytes(payload[: self.max_payload_bytes]), len(payload),
                                       message.qos, message.mid, time.time(), time.monotonic(),
                                       self._generation))
        self.received += 1
        if self._armed and len(self._inbox) >= self._signal_at and self._loop is not None:
            self._armed = False
            self._loop.call_soon_threadsafe(self._wake.set)

    def _fail(self, error: AdapterError) -> None:
        self.last_error = str(error)
        if not self._failing:
            logger.warning("%s", error)
        self._failing = True

    # --- consumer side (event loop thread) ----------------------------------------------------------

    async def receive(self, max_messages: int, max_wait: float) -> list[MQTTMessage]:
        """The next batch: up to `max_messages`, or what arrived within `max_wait` s of the first."""
        inbox = self._inbox
        await self._wait_until(lambda: len(inbox) >= 1, 1, None)
        deadline = inbox[0].received_monotonic + max_wait
        if len(inbox) < max_messages:
            await self._wait_until(lambda: len(inbox) >= max_messages, max_messages, deadline)
        batch = [inbox.popleft() for _ in range(min(max_messages, len(inbox)))]
        self._in_hand_since = batch[0].received_monotonic
        return batch

    async def _wait_until(self, done: Any, signal_at: int, deadline: float | None) -> None:
        while not done():
            self._wake.clear()
            self._signal_at = signal_at
            self._armed = True
            if done():  # arrived between the check and arming: no signal will come for it
                break
            timeout = None if deadline is None else deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                break
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                break
        self._armed = False

    def ack(self, messages: Sequence[MQTTMessage]) -> int:
        """Acknowledge messages (in the order received, as MQTT requires); returns how many.

        A message from an earlier connection is not acknowledged: the broker redelivers it on the
        new one under a packet id that may since have been reused.
        """
        sent = 0
        generation = self._generation
        for message in messages:
            if message.qos and message.generation == generation:
                self._client.ack(message.mid, message.qos)
                sent += 1
        self.acknowledged += len(messages)
        self._in_hand_since = None
        return sent

    def record(self, message: MQTTMessage) -> RawRecord:
        """A message as a raw record: the JSON object it carries, or the reason it cannot be read."""
        problem = None
        payload: Any = {}
        if message.size > self.max_payload_bytes:
            problem = f"payload of {message.size} bytes is larger than {self.max_payload_bytes}"
        else:
            try:
                payload = orjson.loads(message.payload)
            except orjson.JSONDecodeError as exc:
                problem = f"payload is not JSON: {exc}"
            else:
                if not isinstance(payload, dict):
                    problem = f"payload is a JSON {type(payload).__name__}, not an object"
                    payload = {}
        return RawRecord(self.name, message.topic, payload,
                         datetime.fromtimestamp(message.received_at, UTC), origin=message.topic,
                         problem=problem)

    def replay(self, topic: str, payload: bytes) -> RawRecord:
        """A stored payload (e.g. from quarantine) as the record a message on `topic` would give."""
        now = time.time()
        return self.record(MQTTMessage(topic, payload[: self.max_payload_bytes], len(payload), 0, 0,
                                       now, time.monotonic(), -1))

    @property
    def max_packet_size(self) -> int:
        """The MQTT 5 Maximum Packet Size announced: twice the payload limit, plus topic and headers."""
        return 2 * self.max_payload_bytes + 65_536 + 16

    @property
    def waiting(self) -> int:
        """Messages received and not yet handed out."""
        return len(self._inbox)

    def lag(self) -> float:
        """Seconds since the oldest message not yet acknowledged arrived (0 when none waits)."""
        oldest = self._in_hand_since
        if self._inbox:
            first = self._inbox[0].received_monotonic
            oldest = first if oldest is None else min(oldest, first)
        return 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)

    def status(self) -> dict[str, Any]:
        """JSON-ready state (served by /status)."""
        return {"broker": str(self.address), "client_id": self.client_id, "protocol": self.protocol,
                "topics": self.topics, "share_group": self.share_group, "connected": self.connected,
                "subscribed": self.subscribed, "connections": self.connections,
                "last_connected_at": self.last_connected_at, "received": self.received,
                "acknowledged": self.acknowledged, "waiting": self.waiting,
                "lag_seconds": round(self.lag(), 3), "last_error": self.last_error}


def _connect_error(reason: ReasonCode, source: str) -> AdapterError:
    """A refused CONNACK as the adapter's error class."""
    text = str(reason)
    if text in _AUTH_FAILURES:
        return AuthError(f"the MQTT broker refused the connection: {text}", source=source)
    return SourceUnavailableError(f"the MQTT broker refused the connection: {text}", source=source)
