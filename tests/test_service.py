"""The service with its lifespan running: health, readiness, status, metrics, @context, OpenAPI,
the API key, and secrets that never show in /status or the logs."""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from adapter.config import PipelineConfig
from adapter.ngsi.context import generated_context_document, subjects
from adapter.service.app import create_app
from adapter.settings import load_settings
from tests.map_service import serve_app
from tests.servers import PayloadServer, Request

pytestmark = pytest.mark.integration

SECRETS = {"BURGAS_BROKER_TOKEN": "tok-8f3b1c0e5d", "BURGAS_API_KEY": "key-41d2a9b7e6",
           "BURGAS_MQTT_PASSWORD": "pw-c7e19a2f40"}
PARKS = {"type": "FeatureCollection", "features": [
    {"type": "Feature", "id": 1, "geometry": {"type": "Point", "coordinates": [27.4746, 42.4937]},
     "properties": {"id": "p1", "name": "Морска градина"}},
    {"type": "Feature", "id": 2, "geometry": {"type": "Point", "coordinates": [27.4597, 42.5091]},
     "properties": {"id": "p2", "name": "Изгрев"}},
]}


class Feed:
    """A loopback GeoJSON feed that answers only once released (readiness is observable before)."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.server = PayloadServer({"/parks.geojson": self._answer}).start()

    def _answer(self, request: Request) -> Any:
        self.released.wait(30)
        return PARKS

    @property
    def url(self) -> str:
        return self.server.url("/parks.geojson")


@pytest.fixture
def feed() -> Iterator[Feed]:
    served = Feed()
    yield served
    served.released.set()
    served.server.stop()


def pipeline(feed: Feed, mqtt: tuple[str, int]) -> PipelineConfig:
    return PipelineConfig.model_validate({"sources": [
        {"name": "gis.parks", "group": "gis", "type": "geojson", "url": feed.url, "interval_seconds": 3600,
         "mapping": {"model": "PointOfInterest", "id_field": "id", "id_prefix": "test:park", "name_field": "name",
                     "constants": {"category": ["leisure=park"]}}},
        {"name": "mqtt.live", "group": "mqtt", "type": "mqtt", "url": f"mqtt://{mqtt[0]}:{mqtt[1]}",
         "client_id": f"svc-{uuid.uuid4().hex[:10]}", "session_expiry_seconds": 60,
         "topics": {f"test-{uuid.uuid4().hex[:8]}/+/noise": "lamppost.noise"}},
    ]})


@pytest.fixture
def env(monkeypatch, tmp_path) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BURGAS_MQTT_USERNAME", "adapter")
    monkeypatch.setenv("BURGAS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("BURGAS_EMBEDDED_BROKER_PERSIST", "false")


@contextmanager
def served(app: FastAPI) -> Iterator[httpx.Client]:
    """The app served over real HTTP on a free loopback port (lifespan on), and a client for it."""
    with serve_app(app) as url, httpx.Client(base_url=url, timeout=30.0) as client:
        yield client


def wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while client.get("/ready").status_code != 200:
        assert time.monotonic() < deadline, "not ready in time"
        time.sleep(0.05)


def test_endpoints_with_the_lifespan_running(env, feed, mqtt_broker):
    app = create_app(load_settings(), pipeline(feed, mqtt_broker))
    with served(app) as client:
        assert client.get("/health").json() == {"status": "ok"}
        starting = client.get("/ready")
        assert starting.status_code == 503
        assert starting.json() == {"status": "starting", "waiting_for": ["gis.parks"]}
        feed.released.set()
        wait_ready(client)

        status = client.get("/status").json()
        parks = status["sources"]["gis.parks"]
        assert parks["kind"] == "polled" and parks["runs"] == 1 and parks["last_error"] is None
        assert parks["last_report"]["sent"] == 2 and parks["next_run"] > time.time()
        stream = status["sources"]["mqtt.live"]
        assert stream["kind"] == "stream" and stream["source"]["client_id"].startswith("svc-")
        assert status["broker"]["embedded"] is True and status["service"]["ready"] is True
        assert status["settings"]["broker_token"] == "**REDACTED**"
        assert status["config"]["sources"][0]["name"] == "gis.parks"

        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        for line in ('burgas_records_total{source="gis.parks"} 2.0',
                     'burgas_entities_sent_total{source="gis.parks"} 2.0',
                     'burgas_entities_rejected_total{source="gis.parks",stage="mapping"} 0.0',
                     'burgas_mqtt_lag_seconds{source="mqtt.live"}',
                     'burgas_outbox_depth{source="gis.parks"} 0.0', 'burgas_outbox_depth{source="mqtt.live"} 0.0',
                     'burgas_quarantine_items{source="gis.parks"} 0.0',
                     'burgas_sync_duration_seconds_count{source="gis.parks"} 1.0'):
            assert line in metrics.text

        context = client.get("/contexts/dataModel.Environment.jsonld")
        assert context.headers["content-type"] == "application/ld+json"
        assert context.json() == generated_context_document("dataModel.Environment")
        assert client.get("/contexts").json() == {"subjects": subjects()}
        assert client.get("/contexts/dataModel.Nowhere.jsonld").status_code == 404

        openapi = client.get("/openapi.json").json()
        assert {"/health", "/ready", "/status", "/metrics", "/contexts/{subject}.jsonld", "/sync/{source}",
                "/quarantine", "/quarantine/retry"} <= set(openapi["paths"])
        assert openapi["components"]["securitySchemes"]["APIKeyHeader"] == {
            "type": "apiKey", "in": "header", "name": "X-API-Key",
            "description": "The value of BURGAS_API_KEY; without it set, admin endpoints answer 503"}


def test_admin_endpoints_need_the_api_key(env, feed, mqtt_broker):
    feed.released.set()
    app = create_app(load_settings(), pipeline(feed, mqtt_broker))
    key = {"X-API-Key": SECRETS["BURGAS_API_KEY"]}
    with served(app) as client:
        wait_ready(client)
        for method, path in (("POST", "/sync/gis.parks"), ("GET", "/quarantine"), ("POST", "/quarantine/retry")):
            assert client.request(method, path).status_code == 401
            assert client.request(method, path, headers={"X-API-Key": "key-41d2a9b7e7"}).status_code == 401
        report = client.post("/sync/gis.parks", headers=key)
        assert report.status_code == 200 and report.json()["unchanged"] == 2
        assert client.post("/sync/gis.nowhere", headers=key).status_code == 404
        assert client.post("/sync/mqtt.live", headers=key).status_code == 409
        assert client.get("/quarantine", headers=key).json() == {"total": 0, "items": []}
        retried = client.post("/quarantine/retry", headers=key, json={"ids": []})
        assert retried.status_code == 200 and retried.json()["still_quarantined"] == 0


def test_admin_endpoints_are_disabled_without_a_key(env, feed, mqtt_broker, monkeypatch):
    monkeypatch.delenv("BURGAS_API_KEY")
    feed.released.set()
    with served(create_app(load_settings(), pipeline(feed, mqtt_broker))) as client:
        answer = client.post("/sync/gis.parks", headers={"X-API-Key": "anything"})
        assert answer.status_code == 503 and "BURGAS_API_KEY" in answer.json()["detail"]


def test_secrets_never_appear_in_status_metrics_or_logs(env, feed, mqtt_broker, caplog):
    caplog.set_level(logging.DEBUG)
    feed.released.set()
    config = pipeline(feed, mqtt_broker)  # a layer URL carrying a token (as ArcGIS ones do)
    config.sources[0] = config.sources[0].model_copy(update={"url": feed.url + "?token=tok-91c2e5"})
    app = create_app(load_settings(), config)
    with served(app) as client:
        wait_ready(client)
        client.post("/sync/gis.parks", headers={"X-API-Key": SECRETS["BURGAS_API_KEY"]})
        client.post("/sync/gis.parks", headers={"X-API-Key": "wrong-" + SECRETS["BURGAS_API_KEY"]})
        shown = [client.get(path).text for path in ("/status", "/metrics", "/openapi.json")]
    status = orjson.loads(shown[0])
    assert status["settings"]["api_key"] == status["settings"]["mqtt_password"] == "**REDACTED**"
    assert status["settings"]["mqtt_username"] == "adapter"
    for secret in SECRETS.values():
        for text in (*shown, caplog.text):
            assert secret not in text
    assert "tok-91c2e5" not in shown[0] and "token=**REDACTED**" in shown[0].replace("%2A", "*")
    assert "service started" in caplog.text  # the logs were captured


def test_a_stream_with_worker_processes_reports_each_worker(env, feed, mqtt_broker):
    config = pipeline(feed, mqtt_broker)
    config.sources[1] = config.sources[1].model_copy(update={"workers": 2})
    feed.released.set()
    with served(create_app(load_settings(), config)) as client:
        wait_ready(client)
        deadline = time.monotonic() + 60
        while True:
            source = client.get("/status").json()["sources"]["mqtt.live"]["source"]
            if source["subscribed"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert source["subscribed"] is True and source["connected"] is True and source["workers"] == 2
        assert [w["client_id"] for w in source["per_worker"]] == [source["client_id"], source["client_id"] + "-w1"]
        assert all(w["connected"] for w in source["per_worker"])
        assert "mqtt_password" not in str(source) and SECRETS["BURGAS_MQTT_PASSWORD"] not in str(source)
        assert 'burgas_mqtt_connected{source="mqtt.live"} 1.0' in client.get("/metrics").text
        # Readings through the workers show in the parent's metrics.
        from tests.mqtt_fixtures import Publisher
        from tests.test_mqtt_e2e import reading
        prefix = next(iter(config.sources[1].topics)).split("/")[0]
        publisher = Publisher(*mqtt_broker)
        try:
            for i in range(6):
                publisher.send(f"{prefix}/s{i}/noise", reading(f"s{i}", 1, 50.0 + i))
        finally:
            publisher.close()
        wanted = ('burgas_records_total{source="mqtt.live"} 6.0', 'burgas_entities_sent_total{source="mqtt.live"} 6.0')
        deadline = time.monotonic() + 30
        while not all(line in (text := client.get("/metrics").text) for line in wanted):
            assert time.monotonic() < deadline, [line for line in wanted if line not in text]
            time.sleep(0.1)
        count = re.search(r'burgas_batch_latency_seconds_count\{source="mqtt.live"\} (\d+)', text)
        assert count is not None and int(count.group(1)) >= 1
