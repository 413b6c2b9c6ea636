"""Two sources writing the same entity (e.g. a GIS layer and a live feed sharing ids): a source that
drops the entity or one of its attributes never deletes what the other still writes.

Real path: two loopback ArcGIS layers -> pipeline -> embedded broker over HTTP.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import httpx
import pytest

from adapter.config import PipelineConfig
from adapter.embedded_broker import BrokerSettings, EmbeddedBroker
from adapter.ngsi.client import BrokerClient
from adapter.runtime import local_reference_contexts, write_generated_contexts
from adapter.samples.gis.server import ArcGISLayer
from adapter.sync.factory import build_mapper, build_source
from adapter.sync.pipeline import Pipeline
from adapter.sync.report import SyncReport
from adapter.sync.skip import salt_for
from adapter.sync.state import StateStore
from tests.servers import PayloadServer

pytestmark = pytest.mark.integration
BASE_URL = "http://contexts.invalid/"
SDM = "https://smartdatamodels.org/dataModel.PointOfInterest/"
LENGTH, FACILITIES = SDM + "length", SDM + "facilities"
FIRST = "6b1d3c2a-0f4e-4e8a-9c11-000000000001"  # the first beach's GlobalID, as the id ends


@pytest.fixture()
def world(tmp_path):
    a, b = ArcGISLayer.beaches(), ArcGISLayer.beaches()
    files = write_generated_contexts(tmp_path / "contexts", BASE_URL)
    files.update(local_reference_contexts())
    with PayloadServer({**a.routes("/a/FeatureServer/0"), **b.routes("/b/FeatureServer/0")}) as server, \
            EmbeddedBroker(BrokerSettings(port=0, context_files=files)) as broker:
        yield {"a": a, "b": b}, server, broker, tmp_path


def _config(server: PayloadServer, name: str, attributes: dict[str, Any]) -> Any:
    return PipelineConfig.model_validate({"sources": [{
        "name": f"gis.{name}", "group": "gis", "type": "arcgis", "url": server.url(f"/{name}/FeatureServer/0"),
        "mapping": {"model": "Beach", "id_field": "GlobalID", "id_prefix": "gis-burgas:shared",
                    "name_field": "NAME", "attributes": attributes}}]}).sources[0]


A_ATTRS = {"length": {"source": "LENGTH_M", "transform": "number"}}
B_ATTRS = {"length": {"source": "LENGTH_M", "transform": "number"},
           "facilities": {"source": "LIFEGUARD", "transform": "boolean", "values": {"true": ["lifeGuard"],
                                                                                     "false": None}}}


def _sync(world, config) -> SyncReport:
    *_, broker, tmp_path = world

    async def run() -> SyncReport:
        store = StateStore(tmp_path / "state.sqlite3")
        try:
            async with httpx.AsyncClient() as http, BrokerClient(broker.url) as client:
                pipeline = Pipeline(store, client, context_base_url=BASE_URL)
                return await pipeline.run_once(config.name, build_source(config, http),
                                               build_mapper(config), static=True, salt=salt_for(config))
        finally:
            store.close()
    return asyncio.run(run())


def _entity(broker) -> dict[str, Any] | None:
    answer = httpx.get(broker.url + "/ngsi-ld/v1/entities", params={
        "type": SDM + "Beach", "options": "keyValues", "limit": 100}).json()
    return next((e for e in answer if e["id"].endswith(FIRST)), None)


def _drop_first(layer: ArcGISLayer) -> None:
    layer.features = [f for f in layer.features if not f["attributes"]["GlobalID"].lower().endswith(FIRST + "}")]


def test_an_entity_another_source_still_writes_is_not_deleted_only_the_leavers_attributes(world):
    layers, server, broker, _ = world
    a = _config(server, "a", {"description": "BEACH_TYPE"})
    b = _config(server, "b", B_ATTRS)
    assert _sync(world, a).sent == 6 and _sync(world, b).sent == 6
    both = _entity(broker)  # a: name, description; b: name, length, facilities
    assert both is not None and {"description", FACILITIES, LENGTH} <= set(both)  # description: core term
    _drop_first(layers["a"])
    report = _sync(world, a)
    # Source b still writes the entity: it stays, without the attribute only a wrote.
    assert report.ok and report.deleted == 0 and report.attrs_deleted == 1
    kept = _entity(broker)
    assert kept is not None and kept[FACILITIES] == both[FACILITIES] and kept[LENGTH] == both[LENGTH]
    assert set(kept) == set(both) - {"description"}
    # Once the last source lets it go, the entity is deleted.
    _drop_first(layers["b"])
    last = _sync(world, b)
    assert last.ok and last.deleted == 1 and _entity(broker) is None


def test_an_attribute_one_source_drops_stays_while_another_source_writes_it(world):
    layers, server, broker, _ = world
    a, b = _config(server, "a", A_ATTRS), _config(server, "b", B_ATTRS)
    _sync(world, a)
    _sync(world, b)
    changed = copy.deepcopy(layers["a"].features[0])
    changed["attributes"]["LENGTH_M"] = None  # source a no longer knows the length
    layers["a"].features[0] = changed
    report = _sync(world, a)
    assert report.ok and report.sent == 1 and report.attrs_deleted == 0
    assert _entity(broker)[LENGTH] == 1400  # b's value stays


def test_an_entity_only_one_source_writes_is_still_deleted(world):
    layers, server, broker, _ = world
    a = _config(server, "a", A_ATTRS)
    _sync(world, a)
    _drop_first(layers["a"])
    report = _sync(world, a)
    assert report.ok and report.deleted == 1 and _entity(broker) is None
