"""The MQTT stream against private Mosquitto instances: TLS with a verified certificate,
username/password, refused credentials, and reconnecting after the broker restarts.

Each test starts its own `mosquitto -c <conf>` on a free loopback port (the Debian binary; with
CI=true a missing binary fails, elsewhere the tests skip) and, for TLS, a self-signed certificate
made with `openssl`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import SecretStr

from adapter.config import PipelineConfig
from adapter.runtime import Runtime
from adapter.settings import Settings
from tests.test_mqtt_e2e import connected, noise_entities, reading, runner_for, source_config, until

pytestmark = pytest.mark.integration
PASSWORD = "pw-8d1f0c37e2"


def _binary(name: str) -> str:
    found = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} is not installed")
        pytest.skip(f"{name} is not installed")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    """A private mosquitto with the given configuration lines; restartable on the same port."""

    def __init__(self, directory: Path, lines: list[str]) -> None:
        self.port = _free_port()
        self.conf = directory / "mosquitto.conf"
        if os.geteuid() == 0:  # else mosquitto drops to user `mosquitto`, who cannot read tmp_path
            lines = [*lines, "user root"]
        self.conf.write_text("\n".join([f"listener {self.port} 127.0.0.1", *lines]) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen([_binary("mosquitto"), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("mosquitto did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[Mosquitto, Path]]:
    """Mosquitto with TLS (a self-signed certificate for localhost) and a password file."""
    cert, key, passwd = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "passwd"
    subprocess.run([_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    subprocess.run([_binary("mosquitto_passwd"), "-c", "-b", str(passwd), "adapter", PASSWORD],
                   check=True, capture_output=True)
    for path in (key, passwd):
        path.chmod(0o600)
    broker = Mosquitto(tmp_path, [f"certfile {cert}", f"keyfile {key}", "allow_anonymous false",
                                  f"password_file {passwd}"]).start()
    yield broker, cert
    broker.stop()


def _publish(port: int, topic: str, payload: dict[str, Any], *, ca: Path | None = None) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    if ca is not None:
        client.tls_set(ca_certs=str(ca))
        client.username_pw_set("adapter", PASSWORD)
    client.connect("localhost" if ca is not None else "127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, orjson.dumps(payload), qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _runtime(tmp_path: Path, **mqtt_settings: Any) -> Runtime:
    settings = Settings(state_dir=tmp_path / "state", embedded_broker_persist=False, **mqtt_settings)
    return Runtime(settings, PipelineConfig(sources=[]))


def test_tls_with_a_verified_certificate_and_a_password(tmp_path, tls_broker, caplog):
    broker, cert = tls_broker
    prefix = "tls"
    config = source_config(prefix, "localhost", broker.port).model_copy(
        update={"url": f"mqtts://localhost:{broker.port}"})
    caplog.set_level(logging.DEBUG)

    async def scenario() -> dict[str, float]:
        async with _runtime(tmp_path, mqtt_username="adapter", mqtt_password=SecretStr(PASSWORD),
                            mqtt_ca_file=cert) as runtime:
            runner = runner_for(runtime, config)
            await runner.start()
            try:
                await connected(runner)
                _publish(broker.port, f"{prefix}/lp/a/noise", reading("a", 1, 61.5), ca=cert)

                async def arrived() -> bool:
                    return bool(await noise_entities(runtime))
                await until(arrived)
                return await noise_entities(runtime)
            finally:
                await runner.stop()

    assert asyncio.run(scenario()) == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:a": 61.5}
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize("case", ["wrong password", "certificate not trusted"])
def test_refused_credentials_and_untrusted_certificates_never_connect(tmp_path, tls_broker, caplog, case):
    broker, cert = tls_broker
    config = source_config("tls", "localhost", broker.port).model_copy(
        update={"url": f"mqtts://localhost:{broker.port}", "reconnect_min_seconds": 1})
    settings: dict[str, Any] = {"mqtt_username": "adapter", "mqtt_password": SecretStr(PASSWORD),
                                "mqtt_ca_file": cert}
    if case == "wrong password":
        settings["mqtt_password"] = SecretStr("not-" + PASSWORD)
    else:
        settings.pop("mqtt_ca_file")  # the system CAs do not know the self-signed certificate
        settings["mqtt_tls"] = True
    caplog.set_level(logging.DEBUG)

    async def scenario() -> dict[str, Any]:
        async with _runtime(tmp_path, **settings) as runtime:
            runner = runner_for(runtime, config)
            await runner.start()
            try:
                async def failed() -> bool:
                    return runner.source.status()["last_error"] is not None
                await until(failed, timeout=20)
                return runner.source.status()
            finally:
                await runner.stop()

    status = asyncio.run(scenario())
    assert status["connected"] is False and status["connections"] == 0
    if case == "wrong password":
        assert "refused the connection" in status["last_error"]
    else:
        assert "cannot connect" in status["last_error"] or "certificate" in status["last_error"].lower()
    assert PASSWORD not in caplog.text and PASSWORD not in str(status)


def test_the_stream_reconnects_after_the_broker_restarts(tmp_path):
    broker = Mosquitto(tmp_path, ["allow_anonymous true"]).start()
    prefix = "restart"
    config = source_config(prefix, "127.0.0.1", broker.port).model_copy(
        update={"reconnect_min_seconds": 1, "reconnect_max_seconds": 2})

    async def scenario() -> tuple[dict[str, float], int]:
        async with _runtime(tmp_path) as runtime:
            runner = runner_for(runtime, config)
            await runner.start()
            try:
                await connected(runner)
                _publish(broker.port, f"{prefix}/lp/a/noise", reading("a", 1, 50.0))
                broker.stop()  # no persistence: the session is gone with it

                async def lost() -> bool:
                    return not runner.source.status()["connected"]
                await until(lost)
                broker.start()

                async def back() -> bool:
                    status = runner.source.status()
                    return status["subscribed"] and status["connections"] >= 2  # subscribed again
                await until(back, timeout=30)
                _publish(broker.port, f"{prefix}/lp/b/noise", reading("b", 2, 55.0))

                async def arrived() -> bool:
                    return len(await noise_entities(runtime)) == 2
                await until(arrived)
                return await noise_entities(runtime), runner.source.status()["connections"]
            finally:
                await runner.stop()
                broker.stop()

    entities, connections = asyncio.run(scenario())
    assert entities == {"urn:ngsi-ld:NoiseLevelObserved:lamppost:a": 50.0,
                        "urn:ngsi-ld:NoiseLevelObserved:lamppost:b": 55.0}
    assert connections >= 2
