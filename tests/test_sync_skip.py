"""A no-change re-sync does (almost) no work: unmoved layer versions skip the fetch, unchanged
records of static sources skip the mapper; any change still reaches the broker."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.config import PipelineConfig
from adapter.runtime import local_reference_contexts, write_generated_contexts
from adapter.samples.gis.server import ArcGISLayer
from adapter.sync.report import SyncReport
from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.servers import PayloadServer
from tests.sync_fixtures import sync_static

pytestmark = pytest.mark.integration
PREFIX = "/arcgis/rest/services/Beaches/FeatureServer/0"
BASE_URL = "http://contexts.invalid/"


@pytest.fixture()
def world(tmp_path):
    layer = ArcGISLayer.beaches()
    layer.layer["editingInfo"] = {"lastEditDate": 1_700_000_000_000}
    files = write_generated_contexts(tmp_path / "contexts", BASE_URL)
    files.update(local_reference_contexts())
    with PayloadServer(layer.routes(PREFIX)) as server, \
            EmbeddedBroker(BrokerSettings(port=0, context_files=files)) as broker:
        yield layer, server, broker, tmp_path


def _config(server: PayloadServer, **mapping: Any) -> Any:
    return PipelineConfig.model_validate({"sources": [{
        "name": "gis.beaches", "group": "gis", "type": "arcgis", "url": server.url(PREFIX),
        "page_size": 4, "mapping": {"model": "Beach", "id_field": "GlobalID", "name_field": "NAME",
                                    "attributes": {"length": {"source": "LENGTH_M", "transform": "number"}},
                                    **mapping}}]}).sources[0]


def _sync(world, config, *, full: bool = False) -> SyncReport:
    _, _, broker, tmp_path = world
    return sync_static(tmp_path / "state.sqlite3", broker.url, config, base_url=BASE_URL, full=full)


def _lengths(broker) -> dict[str, float]:
    answer = httpx.get(broker.url + "/ngsi-ld/v1/entities", params={
        "type": "https://smartdatamodels.org/dataModel.PointOfInterest/Beach", "options": "keyValues",
        "limit": 100}).json()
    return {e["id"]: e.get("https://smartdatamodels.org/dataModel.PointOfInterest/length") for e in answer}


def test_an_unmoved_layer_version_skips_the_fetch(world):
    layer, server, broker, _ = world
    config = _config(server)
    first = _sync(world, config)
    assert first.ok and first.sent == 6 and not first.not_modified
    queries = len(server.requests_to(PREFIX + "/query"))
    again = _sync(world, config)
    assert again.ok and again.not_modified and again.sent == 0 and again.unchanged == 6
    assert len(server.requests_to(PREFIX + "/query")) == queries  # no feature was fetched


def test_a_moved_version_fetches_and_only_changed_records_are_mapped_and_sent(world):
    layer, server, broker, _ = world
    config = _config(server)
    _sync(world, config)
    changed = copy.deepcopy(layer.features[2])
    changed["attributes"]["LENGTH_M"] = 4321
    layer.features[2] = changed
    removed = layer.features.pop(5)
    layer.layer["editingInfo"] = {"lastEditDate": 1_700_000_100_000}
    report = _sync(world, config)
    assert report.ok and not report.not_modified
    assert report.records_unchanged == 4 and report.mapped == 1 and report.sent == 1
    assert report.deleted == 1
    lengths = _lengths(broker)
    assert len(lengths) == 5 and 4321 in lengths.values()
    gone = removed["attributes"]["GlobalID"].strip("{}").lower()
    assert not any(gone in entity_id for entity_id in lengths)


def test_without_a_layer_version_unchanged_records_still_skip_the_mapper(world):
    layer, server, broker, _ = world
    del layer.layer["editingInfo"]
    config = _config(server)
    assert _sync(world, config).sent == 6
    again = _sync(world, config)
    assert again.ok and not again.not_modified
    assert again.records_in == 6 and again.records_unchanged == 6 and again.mapped == 0
    assert again.sent == 0 and again.unchanged == 6 and again.deleted == 0


def test_a_new_mapping_or_full_maps_everything_again(world):
    _, server, broker, _ = world
    assert _sync(world, _config(server)).sent == 6
    full = _sync(world, _config(server), full=True)
    assert full.mapped == 6 and full.records_unchanged == 0 and full.sent == 0  # same content
    remapped = _sync(world, _config(server, constants={"address.addressLocality": "Бургас"}))
    assert not remapped.not_modified and remapped.mapped == 6 and remapped.sent == 6


def _gtfs_sync(world, url: str) -> SyncReport:
    config = PipelineConfig.model_validate({"sources": [{
        "name": "gtfs.burgasbus", "group": "gtfs", "type": "gtfs", "url": url}]}).sources[0]
    return _sync(world, config)


def test_an_unchanged_gtfs_file_is_not_read_again_and_a_touched_one_maps_nothing_new(world, tmp_path):
    import os
    import shutil

    from adapter.samples.serving import SampleServers

    feed = tmp_path / "burgasbus.zip"
    shutil.copy(SampleServers().resolve("samples:gtfs/burgasbus.zip"), feed)
    first = _gtfs_sync(world, str(feed))
    assert first.ok and first.sent == 136
    again = _gtfs_sync(world, str(feed))
    assert again.not_modified and again.records_in == 0 and again.unchanged == 136
    stat = feed.stat()
    os.utime(feed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # re-published, same bytes
    touched = _gtfs_sync(world, str(feed))
    assert not touched.not_modified and touched.records_in == 136
    assert touched.records_unchanged == 136 and touched.mapped == 0 and touched.sent == 0


def test_a_gtfs_url_with_an_unchanged_etag_is_not_downloaded_again(world):
    from adapter.samples.serving import SampleServers
    from tests.servers import Reply

    _, server, _, _ = world
    body = Path(SampleServers().resolve("samples:gtfs/burgasbus.zip")).read_bytes()
    server.add("/gtfs/burgasbus.zip", Reply(body, 200, "application/zip", {"ETag": '"v1"'}))
    url = server.url("/gtfs/burgasbus.zip")
    assert _gtfs_sync(world, url).sent == 136
    again = _gtfs_sync(world, url)
    assert again.not_modified and again.sent == 0
    downloads = [r for r in server.requests_to("/gtfs/burgasbus.zip") if r.method == "GET"]
    assert len(downloads) == 1


def _source_state(tmp_path: Path, config: Any) -> tuple[Any, list[str]]:
    """The source's stored SourceState and the state file's tables."""
    from adapter.sync.skip import SkipIndex, SourceMarks, salt_for
    from adapter.sync.state import StateStore

    store = StateStore(tmp_path / "state.sqlite3")
    try:
        tables = [row[0] for row in store.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return SkipIndex(store).load(SourceMarks("", config.name, salt_for(config))), tables
    finally:
        store.close()


def test_a_source_keeps_its_incremental_state_as_one_value(world):
    _, server, _, tmp_path = world
    config = _config(server)
    _sync(world, config)
    state, _ = _source_state(tmp_path, config)
    assert state.version is not None and len(state.pages) == 2  # six features, four a page
    assert state.records == ("", "")  # every record is on a page (kept once)
    assert len(state.record_entities()) == 6 and len(set(state.record_entities().values())) == 6


def test_a_state_file_of_the_old_skip_tables_maps_everything_once_and_sends_nothing(world):
    import sqlite3

    _, server, _, tmp_path = world
    config = _config(server)
    assert _sync(world, config).sent == 6
    # A state file written before SourceState: the three tables of the old index, no source_state.
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.executescript("""
            DROP TABLE source_state;
            CREATE TABLE source_version (tenant TEXT, source TEXT, salt TEXT, version TEXT);
            CREATE TABLE raw_page (tenant TEXT, source TEXT, page_key BLOB, salt TEXT, raw_hashes TEXT,
                                   entity_ids TEXT);
            CREATE TABLE raw_record (tenant TEXT, source TEXT, raw_hash TEXT, salt TEXT, entity_id TEXT);
            INSERT INTO raw_record VALUES ('', 'gis.beaches', 'x', 'y', 'urn:ngsi-ld:Beach:1');
        """)
    again = _sync(world, config)  # the old tables are dropped: the layer is read and mapped again
    assert again.ok and not again.not_modified and again.records_unchanged == 0 and again.mapped == 6
    assert again.sent == 0 and again.unchanged == 6  # the entities' state was kept: nothing goes again
    state, tables = _source_state(tmp_path, config)
    assert not {"source_version", "raw_page", "raw_record"} & set(tables) and len(state.pages) == 2
    assert _sync(world, config).not_modified  # and the version is known again
