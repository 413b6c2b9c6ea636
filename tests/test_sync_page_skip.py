"""Layers without a version (WFS, OGC API Features, ArcGIS without editingInfo, GeoJSON): a page whose
records are those of a page mapped before is not read record by record, and a re-sync of an
unchanged layer writes nothing; every change still reaches the broker.

Real path: loopback GIS servers -> sources -> pipeline -> embedded broker over HTTP.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from adapter.config import PipelineConfig
from adapter.runtime import local_reference_contexts, write_generated_contexts
from adapter.samples.gis.server import ArcGISLayer, OGCCollection, WFSLayer
from adapter.sync.report import SyncReport
from adapter.sync.state import StateStore
from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.servers import PayloadServer, Reply
from tests.sync_fixtures import sync_static

pytestmark = pytest.mark.integration
PREFIX = "/arcgis/rest/services/Beaches/FeatureServer/0"
BASE_URL = "http://contexts.invalid/"
BEACH = "https://smartdatamodels.org/dataModel.PointOfInterest/Beach"
LENGTH = "https://smartdatamodels.org/dataModel.PointOfInterest/length"


@pytest.fixture()
def world(tmp_path):
    layer = ArcGISLayer.beaches()  # six features, no editingInfo: no layer version
    assert "editingInfo" not in layer.layer
    files = write_generated_contexts(tmp_path / "contexts", BASE_URL)
    files.update(local_reference_contexts())
    with PayloadServer(layer.routes(PREFIX)) as server, \
            EmbeddedBroker(BrokerSettings(port=0, context_files=files)) as broker:
        yield layer, server, broker, tmp_path


def _beaches(server: PayloadServer) -> Any:
    return _config({"name": "gis.beaches", "group": "gis", "type": "arcgis", "url": server.url(PREFIX),
                    "page_size": 4, "mapping": {
                        "model": "Beach", "id_field": "GlobalID", "name_field": "NAME",
                        "attributes": {"length": {"source": "LENGTH_M", "transform": "number"}}}})


def _config(source: dict[str, Any]) -> Any:
    return PipelineConfig.model_validate({"sources": [source]}).sources[0]


def _sync(world, config) -> SyncReport:
    *_, broker, tmp_path = world
    return sync_static(tmp_path / "state.sqlite3", broker.url, config, base_url=BASE_URL)


def _state_rows(tmp_path) -> list[tuple]:
    store = StateStore(tmp_path / "state.sqlite3")
    try:
        return store.conn.execute("SELECT * FROM entity_state ORDER BY entity_id").fetchall()
    finally:
        store.close()


def _lengths(broker) -> dict[str, float]:
    answer = httpx.get(broker.url + "/ngsi-ld/v1/entities", params={
        "type": BEACH, "options": "keyValues", "limit": 100}).json()
    return {e["id"]: e.get(LENGTH) for e in answer}


def test_an_unchanged_layer_is_read_but_nothing_is_mapped_or_written(world):
    _, server, broker, tmp_path = world
    config = _beaches(server)
    first = _sync(world, config)
    assert first.ok and first.sent == 6 and first.records_unchanged == 0
    rows = _state_rows(tmp_path)
    again = _sync(world, config)
    assert again.ok and not again.not_modified  # the layer was read: it has no version
    assert again.records_in == 6 and again.records_unchanged == 6 and again.mapped == 0
    assert again.sent == 0 and again.unchanged == 6 and again.deleted == 0
    assert _state_rows(tmp_path) == rows  # not even "last seen" was rewritten
    assert len(server.requests_to(PREFIX + "/query")) == 4  # two pages per run: it was fetched


def test_a_changed_page_alone_is_mapped_and_sent(world):
    layer, server, broker, _ = world
    config = _beaches(server)
    _sync(world, config)
    changed = copy.deepcopy(layer.features[5])  # second page (features 5 and 6)
    changed["attributes"]["LENGTH_M"] = 4321
    layer.features[5] = changed
    report = _sync(world, config)
    # The first page (4 records) was skipped whole; of the second, only the changed record was mapped.
    assert report.ok and report.records_in == 6 and report.mapped == 1 and report.records_unchanged == 5
    assert report.sent == 1 and report.unchanged == 5 and report.deleted == 0
    assert 4321 in _lengths(broker).values()
    assert _sync(world, config).mapped == 0  # the new page is remembered


def test_a_removed_record_on_a_skipped_page_is_still_deleted(world):
    layer, server, broker, _ = world
    config = _beaches(server)
    _sync(world, config)
    removed = layer.features.pop(5)  # the second page shrinks; the first is unchanged
    report = _sync(world, config)
    assert report.ok and report.deleted == 1 and report.mapped == 0 and report.unchanged == 5
    gone = removed["attributes"]["GlobalID"].strip("{}").lower()
    assert len(_lengths(broker)) == 5 and not any(gone in i for i in _lengths(broker))


def test_an_insertion_that_shifts_every_page_maps_only_the_new_record(world):
    layer, server, broker, _ = world
    config = _beaches(server)
    _sync(world, config)
    new = copy.deepcopy(layer.features[0])
    new["attributes"].update(OBJECTID=999, GlobalID="{0000AAAA-1111-2222-3333-444455556666}", NAME="Нов плаж")
    layer.features.insert(0, new)  # every page now starts one record later: no page matches
    report = _sync(world, config)
    assert report.ok and report.records_in == 7 and report.mapped == 1 and report.records_unchanged == 6
    assert report.sent == 1 and len(_lengths(broker)) == 7


def test_a_changed_record_taking_the_id_of_a_skipped_page_rebuilds_the_merged_entity(world):
    layer, server, broker, _ = world
    config = _beaches(server)
    _sync(world, config)
    last = layer.features[5]["attributes"]  # page 2, unchanged below
    moved = copy.deepcopy(layer.features[0])  # page 1
    moved["attributes"]["GlobalID"] = last["GlobalID"]  # now records 0 and 5 give one entity
    layer.features[0] = moved
    assert moved["attributes"]["LENGTH_M"] != last["LENGTH_M"]
    report = _sync(world, config)
    assert report.ok and report.records_in == 6 and report.deleted == 1
    # Merged from both records, the later one's state wins (no observation time): record 5's.
    # Built from the changed record alone (page 2 skipped, not re-read), it would carry record 0's.
    lengths = _lengths(broker)
    assert len(lengths) == 5
    entity_id = next(i for i in lengths if last["GlobalID"].strip("{}").lower() in i)
    assert lengths[entity_id] == last["LENGTH_M"]
    # An entity built from two records is never skipped: both are mapped again next time.
    again = _sync(world, config)
    assert again.mapped == 1 and again.records_unchanged == 4 and again.sent == 0


def test_a_page_with_a_rejected_record_is_read_again_each_time(world):
    layer, server, broker, _ = world
    broken = copy.deepcopy(layer.features[4])
    broken["geometry"] = {"x": 0.0, "y": 0.0}  # outside Bulgaria: rejected
    layer.features[4] = broken
    config = _beaches(server)
    first = _sync(world, config)
    assert first.records_rejected == 1 and first.sent == 5
    again = _sync(world, config)
    # Page 1 (4 good records) skipped whole; page 2 read, its rejection reported again.
    assert again.records_rejected == 1 and again.mapped == 0 and again.records_unchanged == 5
    assert again.sent == 0 and again.deleted == 0 and len(_lengths(broker)) == 5


def test_an_entity_the_state_lost_is_mapped_and_sent_again(world):
    _, server, broker, tmp_path = world
    config = _beaches(server)
    _sync(world, config)
    store = StateStore(tmp_path / "state.sqlite3")
    lost = store.conn.execute("SELECT entity_id FROM entity_state ORDER BY entity_id LIMIT 1").fetchone()[0]
    with store.transaction() as db:
        db.execute("DELETE FROM entity_state WHERE entity_id=?", (lost,))
    store.close()
    report = _sync(world, config)
    assert report.ok and report.mapped == 1 and report.sent == 1 and report.unchanged == 5


def test_wfs_ogc_api_and_geojson_layers_skip_unchanged_pages(world, tmp_path):
    _, server, broker, _ = world
    wfs = WFSLayer.bus_stops()
    ogc = OGCCollection.parks()
    server.routes.update(wfs.routes("/geoserver/wfs"))
    server.routes.update(ogc.routes("/ogc"))
    collection = {"type": "FeatureCollection", "features": ogc.features}
    server.add("/parks.geojson", Reply(json.dumps(collection).encode(), 200, "application/geo+json"))
    poi = {"model": "PointOfInterest", "id_field": "id", "id_prefix": "gis-burgas:t", "name_field": "name",
           "constants": {"category": ["leisure=park"]}}
    configs = [
        _config({"name": "gis.bus_stops", "group": "gis", "type": "wfs", "url": server.url("/geoserver/wfs"),
                 "type_name": "burgas:bus_stops", "page_size": 4, "mapping": {
                     **poi, "id_field": "stop_id", "id_prefix": "gis-burgas:bus-stop",
                     "constants": {"category": ["highway=bus_stop"]}}}),
        _config({"name": "gis.parks", "group": "gis", "type": "ogcapi", "url": server.url("/ogc"),
                 "collection": "parks", "page_size": 4, "mapping": poi}),
        _config({"name": "gis.parks_file", "group": "gis", "type": "geojson",
                 "url": server.url("/parks.geojson"), "mapping": {**poi, "id_prefix": "gis-burgas:f"}}),
    ]
    for config in configs:
        first = _sync(world, config)
        assert first.ok and first.sent == first.records_in > 0, config.name
        again = _sync(world, config)
        assert again.ok and again.records_in == first.records_in, config.name
        assert again.mapped == 0 and again.records_unchanged == first.records_in, config.name
        assert again.sent == 0 and again.deleted == 0, config.name
    # A change in one WFS page is found and sent.
    wfs.features[0] = {**wfs.features[0], "properties": {**wfs.features[0]["properties"], "name": "Ново име"}}
    changed = _sync(world, configs[0])
    assert changed.ok and changed.mapped == 1 and changed.sent == 1
