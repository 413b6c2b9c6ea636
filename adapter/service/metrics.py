"""Prometheus metrics of the service: what flowed (counters, histograms) and what waits (gauges).

Counters and histograms are fed by the coordinator's reports and the streams' batches; gauges
(outbox depth, quarantine, MQTT lag and connection) are read from the live objects at scrape time.
Each app has its own registry, so several apps (tests) never share series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from adapter.sync.report import SyncReport
from adapter.sync.stream import StreamBatch

if TYPE_CHECKING:
    from adapter.service.app import Service

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0)
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ServiceMetrics:
    """The service's metric families and the hooks that feed them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.records = Counter("burgas_records", "Records (polled) or messages (streams) read",
                               ["source"], registry=r)
        self.sent = Counter("burgas_entities_sent", "Entity upserts the broker confirmed",
                            ["source"], registry=r)
        self.rejected = Counter("burgas_entities_rejected", "Records or entities quarantined, by stage "
                                "(mapping: unreadable record; broker: refused entity)",
                                ["source", "stage"], registry=r)
        self.coalesced = Counter("burgas_stream_coalesced", "Stream readings folded into a newer reading "
                                 "of the same entity within a micro-batch", ["source"], registry=r)
        self.batch_latency = Histogram("burgas_batch_latency_seconds", "Stream micro-batch latency: first "
                                       "message received -> batch durable and acknowledged",
                                       ["source"], buckets=_LATENCY_BUCKETS, registry=r)
        self.delivery = Histogram("burgas_delivery_seconds", "One delivery pass of a stream's outbox to "
                                  "the broker", ["source"], buckets=_LATENCY_BUCKETS, registry=r)
        self.sync_duration = Histogram("burgas_sync_duration_seconds", "One run of a polled source",
                                       ["source"], buckets=_DURATION_BUCKETS, registry=r)

    def observe_sync(self, report: SyncReport) -> None:
        """A polled source's run report."""
        source = report.source
        self.records.labels(source).inc(report.records_in)
        self.sent.labels(source).inc(report.sent)
        self.rejected.labels(source, "mapping").inc(report.records_rejected)
        self.rejected.labels(source, "broker").inc(report.rejected)
        self.sync_duration.labels(source).observe(report.duration)

    def observe_batch(self, batch: StreamBatch) -> None:
        """A stream's micro-batch."""
        self.records.labels(batch.source).inc(batch.messages)
        self.rejected.labels(batch.source, "mapping").inc(batch.quarantined)
        self.coalesced.labels(batch.source).inc(batch.coalesced)
        self.batch_latency.labels(batch.source).observe(batch.latency)

    def observe_delivery(self, report: SyncReport) -> None:
        """A stream's delivery pass."""
        self.sent.labels(report.source).inc(report.sent)
        self.rejected.labels(report.source, "broker").inc(report.rejected)
        self.delivery.labels(report.source).observe(report.duration)

    def watch(self, service: Service) -> None:
        """Read the service's gauges at every scrape."""
        self.registry.register(_LiveGauges(lambda: service))


class _LiveGauges(Collector):
    """Gauges computed when scraped: outbox depth, quarantine size, MQTT lag and connection."""

    def __init__(self, service: Callable[[], Service]) -> None:
        self._service = service

    def describe(self) -> list[Any]:
        return []  # computed at scrape time; nothing to check at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        service = self._service()
        outbox = GaugeMetricFamily("burgas_outbox_depth", "Operations waiting in the outbox",
                                   labels=["source"])
        quarantine = GaugeMetricFamily("burgas_quarantine_items", "Items in quarantine", labels=["source"])
        lag = GaugeMetricFamily("burgas_mqtt_lag_seconds", "Age of the oldest MQTT message received and "
                                "not yet acknowledged (0 when none waits)", labels=["source"])
        connected = GaugeMetricFamily("burgas_mqtt_connected", "1 while connected to the MQTT broker",
                                      labels=["source"])
        waiting = GaugeMetricFamily("burgas_mqtt_waiting_messages", "MQTT messages received, not yet "
                                    "taken into a batch", labels=["source"])
        configured = {s.name for s in service.config.sources if s.enabled}  # a series each, 0 too
        depth, held = service.outbox_depth(), service.quarantine_counts()
        for source in sorted(configured | set(depth)):
            outbox.add_metric([source], depth.get(source, 0))
        for source in sorted(configured | set(held)):
            quarantine.add_metric([source], held.get(source, 0))
        for runner in service.streams:
            lag.add_metric([runner.name], runner.source.lag())
            state = runner.source.status()
            connected.add_metric([runner.name], 1.0 if state.get("connected") else 0.0)
            waiting.add_metric([runner.name], state.get("waiting", 0))
        yield from (outbox, quarantine, lag, connected, waiting)


router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(request: Request) -> Response:
    """Records, entities sent and rejected, batch latency, outbox depth, MQTT lag (text format)."""
    service: Service = request.app.state.service
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
