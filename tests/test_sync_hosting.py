"""The outbox names the hosted @context when it delivers (adapter.sync.hosting): work queued before
(while the broker was down, under another BURGAS_CONTEXT_BASE_URL, by an older version) arrives at
a broker that can resolve nothing but what it hosts; in link mode as in body mode."""

from __future__ import annotations

import httpx
import pytest

from adapter.config import load_config
from adapter.sync.hosting import subject_of
from tests.sync_fixtures import (
    API,
    BrokerProxy,
    FeedServer,
    RestartableBroker,
    broker_ids,
    by_type,
    expected_entities,
    free_port,
    outbox_pending,
    write_config,
)
from tests.sync_fixtures import (
    runtime_sync as sync,
)

pytestmark = pytest.mark.integration
NAMES = ("air_quality", "car_parks")
CAR_PARK = "urn:ngsi-ld:OffStreetParking:smartburgas:4"


@pytest.fixture
def feeds():
    with FeedServer() as server:
        yield server




def test_subject_of_recognises_served_urls_of_any_base_and_nothing_else():
    assert subject_of("http://127.0.0.1:8080/contexts/dataModel.Parking.jsonld") == "dataModel.Parking"
    assert subject_of("https://old.example/burgas/ctx/dataModel.Parking.jsonld") == "dataModel.Parking"
    official = "https://raw.githubusercontent.com/smart-data-models/dataModel.Parking/master/context.jsonld"
    assert subject_of(official) is None
    assert subject_of("http://b:1026/ngsi-ld/v1/jsonldContexts/dataModel.Parking.jsonld") is None
    assert subject_of("http://127.0.0.1:8080/contexts/dataModel.Nothing.jsonld") is None


@pytest.mark.parametrize("mode", ["body", "link"])
def test_work_queued_under_another_context_url_arrives_through_the_hosted_one(tmp_path, feeds, mode):
    config = write_config(tmp_path / "burgas.yaml", feeds, NAMES)
    port = free_port()
    old_base = {"context_base_url": "http://old-adapter.example:8080/contexts/", "context_mode": mode}
    down = sync(tmp_path, config, f"http://127.0.0.1:{port}", **old_base)
    queued = outbox_pending(tmp_path / "state" / "state.sqlite3")
    assert queued > 0 and all(r.pending for r in down)
    # A broker that knows no context but the ones posted to it; the setting is back to its default.
    with RestartableBroker(tmp_path / "broker.sqlite3", {}, port=port) as broker, BrokerProxy(broker.url) as proxy:
        reports = sync(tmp_path, config, proxy.url, context_mode=mode)
        assert all(r.ok for r in reports), [(r.source, r.last_error) for r in reports]
        assert sum(r.sent for r in reports) == queued
        assert broker_ids(broker.url) == by_type(expected_entities(load_config(config)))
        assert outbox_pending(tmp_path / "state" / "state.sqlite3") == 0
        assert proxy.hosting_posts == 2  # one per subject, not per source or batch


@pytest.mark.parametrize("mode", ["body", "link"])
def test_context_lost_mid_run_is_published_again_and_the_next_run_sends_everything(tmp_path, feeds, mode):
    config = write_config(tmp_path / "burgas.yaml", feeds, NAMES)
    broker = RestartableBroker(tmp_path / "unused.sqlite3", {})
    broker.settings = broker.settings.model_copy(update={"db_path": None})  # in memory
    with broker, BrokerProxy(broker.url) as proxy:
        assert all(r.ok for r in sync(tmp_path, config, proxy.url, context_mode=mode))
        feeds.edit("car_parks", "4", lambda p: p["data"][0].update(free_lots="11"))
        restarts: list[int] = []

        def restart_once(n: int) -> None:
            if not restarts:
                restarts.append(n)
                broker.stop()
                broker.start()
        proxy.before_upsert = restart_once
        reports = sync(tmp_path, config, proxy.url, context_mode=mode)
        assert restarts and all(r.ok and r.pending == 0 for r in reports), [(r.source, r.last_error) for r in reports]
        parking = httpx.get(f"{broker.url}{API}/entities/{CAR_PARK}", params={"options": "keyValues"}).json()
        assert parking["https://smartdatamodels.org/dataModel.Parking/availableSpotNumber"] == 11
        # The restart emptied the broker: the next run sends everything again, and it converges.
        expected = expected_entities(load_config(config))
        again = sync(tmp_path, config, proxy.url, context_mode=mode)
        assert all(r.ok for r in again) and sum(r.sent for r in again) == len(expected)
        assert broker_ids(broker.url) == by_type(expected)
