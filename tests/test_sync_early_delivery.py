"""Early delivery: a long fetch's entities reach the broker while later pages are still being read,
and the run ends exactly as one that delivered at the end.

Real path: a loopback ArcGIS layer of 3,000 points -> pipeline -> embedded broker over HTTP.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import httpx
import pytest

from adapter.config import PipelineConfig
from adapter.geometry import from_wgs84
from adapter.ngsi.client import BrokerClient
from adapter.runtime import local_reference_contexts, write_generated_contexts
from adapter.samples.gis.server import ArcGISLayer
from adapter.sync.report import SyncReport
from adapter.sync.state import StateStore
from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.servers import PayloadServer
from tests.sync_fixtures import sync_static

pytestmark = pytest.mark.integration
BASE_URL = "http://contexts.invalid/"
PREFIX = "/bench/FeatureServer/0"
POI = "https://smartdatamodels.org/dataModel.PointOfInterest/PointOfInterest"
N, PAGE = 3000, 500


def _layer() -> ArcGISLayer:
    rng = random.Random(7)
    features = []
    for oid in range(1, N + 1):
        x, y = from_wgs84(27.38 + rng.random() * 0.16, 42.44 + rng.random() * 0.13, 7801)
        features.append({"attributes": {"OBJECTID": oid, "CODE": f"S{oid}", "NAME": f"Спирка {oid}"},
                         "geometry": {"x": round(x, 3), "y": round(y, 3)}})
    return ArcGISLayer({"name": "stops", "type": "Feature Layer", "geometryType": "esriGeometryPoint",
                        "objectIdField": "OBJECTID", "maxRecordCount": PAGE,
                        "sourceSpatialReference": {"wkid": 7801},
                        "advancedQueryCapabilities": {"supportsPagination": True},
                        "fields": [{"name": "OBJECTID", "type": "esriFieldTypeOID"},
                                   {"name": "CODE", "type": "esriFieldTypeString"},
                                   {"name": "NAME", "type": "esriFieldTypeString"}]}, features)


@pytest.fixture()
def world(tmp_path):
    layer = _layer()
    files = write_generated_contexts(tmp_path / "contexts", BASE_URL)
    files.update(local_reference_contexts())
    with PayloadServer(layer.routes(PREFIX)) as server, \
            EmbeddedBroker(BrokerSettings(port=0, context_files=files)) as broker:
        yield layer, server, broker, tmp_path


def _config(server: PayloadServer) -> Any:
    return PipelineConfig.model_validate({"sources": [{
        "name": "gis.stops", "group": "gis", "type": "arcgis", "url": server.url(PREFIX), "page_size": PAGE,
        "mapping": {"model": "PointOfInterest", "id_field": "CODE", "id_prefix": "gis-burgas:stop",
                    "name_field": "NAME", "constants": {"category": ["highway=bus_stop"]}}}]}).sources[0]


def _sync(world, *, early_delivery: int = 1000) -> SyncReport:
    _, server, broker, tmp_path = world
    return sync_static(tmp_path / "state.sqlite3", broker.url, _config(server), base_url=BASE_URL,
                       early_delivery=early_delivery)


def _count(broker) -> int:
    response = httpx.get(broker.url + "/ngsi-ld/v1/entities",
                         params={"type": POI, "count": "true", "limit": "0"})
    return int(response.headers.get("NGSILD-Results-Count", 0)) if response.status_code == 200 else 0


def _names(broker) -> dict[str, Any]:
    out: dict[str, Any] = {}
    offset = 0
    while True:
        page = httpx.get(broker.url + "/ngsi-ld/v1/entities", params={
            "type": POI, "options": "keyValues", "limit": 1000, "offset": offset}).json()
        out.update((e["id"], e.get("https://smartdatamodels.org/name")) for e in page)
        if len(page) < 1000:
            return out
        offset += 1000


def test_entities_reach_the_broker_while_later_pages_are_still_being_read(world):
    layer, server, broker, _ = world
    seen_by_last_page: list[int] = []
    query = layer.query

    def last_page_waits_for_the_broker(request):
        if request.arg("resultOffset") == str(N - PAGE):
            deadline = time.monotonic() + 30
            while _count(broker) < 1000 and time.monotonic() < deadline:
                time.sleep(0.05)
            seen_by_last_page.append(_count(broker))
        return query(request)
    server.add(PREFIX + "/query", last_page_waits_for_the_broker)
    report = _sync(world)
    # Without early delivery nothing reaches the broker before the last page is read.
    assert seen_by_last_page and seen_by_last_page[0] >= 1000
    assert report.ok and report.mapped == N and report.sent == N and report.unchanged == 0
    assert report.pending == 0 and _count(broker) == N
    # Every entity's state says this run saw it (those planned early are not written twice).
    assert _last_seen_runs(world) == {report.run_id}
    again = _sync(world)
    assert again.ok and again.sent == 0 and again.unchanged == N


def _last_seen_runs(world) -> set[str | None]:
    store = StateStore(world[3] / "state.sqlite3")
    try:
        return {s.last_seen_run for s in store.entities("", "gis.stops")}
    finally:
        store.close()


def test_a_record_merged_after_its_entity_was_delivered_early_is_sent_again_merged(world):
    layer, server, broker, _ = world
    # The first and the last feature give one entity; the last one (read after early delivery) wins.
    layer.features[-1]["attributes"]["CODE"] = "S1"
    layer.features[-1]["attributes"]["NAME"] = "Последна"
    report = _sync(world, early_delivery=100)
    assert report.ok and report.mapped == N - 1 and report.pending == 0
    names = _names(broker)
    assert len(names) == N - 1
    assert names["urn:ngsi-ld:PointOfInterest:gis-burgas:stop:S1"] == "Последна"
    # Known entities are never delivered early: a half-built S1 is not sent on later runs.
    again = _sync(world, early_delivery=100)
    assert again.ok and again.sent == 0 and again.unchanged == N - 1 and again.attrs_deleted == 0


def test_a_fetch_that_fails_part_way_keeps_what_was_delivered_early_and_deletes_nothing(world):
    layer, server, broker, _ = world
    assert _sync(world).sent == N
    query = layer.query
    failed = threading.Event()

    def fails_at_the_end(request):
        if request.arg("resultOffset") == str(N - PAGE):
            failed.set()
            return {"error": {"code": 503, "message": "unavailable"}}
        return query(request)
    for feature in layer.features:
        feature["attributes"]["NAME"] += " (нов)"
    server.add(PREFIX + "/query", fails_at_the_end)
    report = _sync(world)
    assert failed.is_set() and not report.complete and report.deleted == 0
    assert report.sent == N - PAGE and _count(broker) == N  # every page but the last one, nothing deleted
    names = _names(broker)
    assert sum(1 for name in names.values() if name.endswith("(нов)")) == N - PAGE


def test_a_bounded_delivery_turn_leaves_the_rest_for_the_next_turn(world):
    from adapter.ngsi.batching import OutgoingEntity
    from adapter.sync.outbox import Outbox

    *_, broker, tmp_path = world
    context = ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"]
    entities = [OutgoingEntity(f"urn:ngsi-ld:Thing:{i}", "Thing",
                               {"id": f"urn:ngsi-ld:Thing:{i}", "type": "Thing",
                                "n": {"type": "Property", "value": i}}, context) for i in range(30)]

    async def run() -> tuple[int, int, int, int]:
        store = StateStore(tmp_path / "turns.sqlite3")
        try:
            store.sync_snapshot("", "things", entities, run_id="r", complete=False)
            outbox = Outbox(store, window=7)
            async with BrokerClient(broker.url) as client:
                first = await outbox.deliver(client, source="things", max_ops=10)
                rest = await outbox.deliver(client, source="things")
            return first.upserted, first.remaining, rest.upserted, rest.remaining
        finally:
            store.close()
    assert asyncio.run(run()) == (10, 20, 20, 0)
