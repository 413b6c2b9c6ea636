"""The broker client and the outbox against the embedded broker over real HTTP on loopback."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from adapter.errors import EntityRejectedError
from adapter.ngsi.batching import OutgoingEntity
from adapter.ngsi.client import AttributeDelete, BrokerClient, RetryPolicy
from adapter.sync.outbox import Outbox
from adapter.sync.state import StateStore
from ngsild_broker.server import EmbeddedBroker
from ngsild_broker.settings import BrokerSettings

pytestmark = pytest.mark.integration

CORE = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"
CTX_URL = "https://example.org/burgas-test-context.jsonld"
TERMS = {"Thing": "https://example.org/Thing", "name": "https://example.org/name",
         "size": "https://example.org/size"}
INLINE = [TERMS, CORE]
FAST = RetryPolicy(attempts=2, initial_wait=0, max_wait=0)


def thing(n: int, context=INLINE, **attrs) -> OutgoingEntity:
    body = {"id": f"urn:ngsi-ld:Thing:{n}", "type": "Thing"}
    body.update({k: {"type": "Property", "value": v} for k, v in (attrs or {"name": f"t{n}"}).items()})
    return OutgoingEntity(body["id"], "Thing", body, context)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    ctx_file = tmp_path_factory.mktemp("ctx") / "ctx.jsonld"
    ctx_file.write_bytes(orjson.dumps({"@context": TERMS}))
    settings = BrokerSettings(port=0, max_payload=64 * 1024, context_files={CTX_URL: ctx_file})
    with EmbeddedBroker(settings) as running:
        yield running


def run(broker, fn, **kwargs):
    async def main():
        async with BrokerClient(broker.url, retry=FAST, **kwargs) as client:
            return await fn(client)
    return asyncio.run(main())


def test_upsert_get_query_delete_roundtrip(broker):
    async def scenario(client):
        created = await client.upsert([thing(n) for n in range(25)])
        updated = await client.upsert([thing(0, name="again", size=3)])
        got = await client.get_entity("urn:ngsi-ld:Thing:0", context=CTX_URL)
        found = await client.query({"type": "Thing"}, context=CTX_URL)
        gone_attr = await client.delete_attrs([AttributeDelete("urn:ngsi-ld:Thing:0", "size", CTX_URL),
                                               AttributeDelete("urn:ngsi-ld:Thing:0", "size", CTX_URL)])
        after_attr = await client.get_entity("urn:ngsi-ld:Thing:0", context=CTX_URL)
        deleted = await client.delete([f"urn:ngsi-ld:Thing:{n}" for n in range(25)] + ["urn:ngsi-ld:Thing:x"])
        missing = await client.get_entity("urn:ngsi-ld:Thing:3", context=CTX_URL)
        return created, updated, got, found, gone_attr, after_attr, deleted, missing
    created, updated, got, found, gone_attr, after_attr, deleted, missing = run(
        broker, scenario, tenant="roundtrip", page_size=10)
    assert created.ok and len(created.succeeded) == 25 and updated.ok
    assert got["name"]["value"] == "again" and got["size"]["value"] == 3
    assert len(found) == 25
    assert gone_attr.ok and "size" not in after_attr
    assert deleted.ok and missing is None


def test_link_mode_with_a_served_context(broker):
    async def scenario(client):
        result = await client.upsert([thing(n, context=[CTX_URL, CORE]) for n in range(3)])
        return result, await client.query({"type": "Thing"}, context=CTX_URL)
    result, found = run(broker, scenario, tenant="linkmode", context_mode="link")
    assert result.ok and sorted(e["id"] for e in found) == [f"urn:ngsi-ld:Thing:{n}" for n in range(3)]
    assert found[0]["name"]["value"].startswith("t")


def test_tenants_are_separate_and_unknown_tenant_reads_empty(broker):
    async def scenario(client):
        await client.with_tenant("alpha").upsert([thing(1)])
        return (await client.with_tenant("alpha").query({"type": "Thing"}, context=CTX_URL),
                await client.with_tenant("nobodyyet").query({"type": "Thing"}, context=CTX_URL),
                await client.with_tenant("nobodyyet").delete(["urn:ngsi-ld:Thing:1"]))
    alpha, empty, deleted = run(broker, scenario)
    assert [e["id"] for e in alpha] == ["urn:ngsi-ld:Thing:1"] and empty == [] and deleted.ok


def test_413_splits_and_quarantines_only_the_oversized_entity(broker):
    entities = [thing(n, name="x" * 3000) for n in range(40)] + [thing(99, name="y" * 100_000)]

    async def scenario(client):
        return await client.upsert(entities)
    # The client's own cap is above the broker's 64 KiB: the broker's 413s drive the splitting.
    result = run(broker, scenario, tenant="big", batch_max_bytes=400_000)
    assert len(result.succeeded) == 40
    assert isinstance(result.failed["urn:ngsi-ld:Thing:99"], EntityRejectedError)
    assert result.failed["urn:ngsi-ld:Thing:99"].context["status"] == 413


def test_outbox_sync_against_the_broker(broker, tmp_path):
    store = StateStore(tmp_path / "state.sqlite3")

    def sync(snapshot, run_id):
        store.sync_snapshot("e2e", "things", snapshot, run_id=run_id, complete=True)

        async def deliver(client):
            report = await Outbox(store).deliver(client)
            return report, await client.query({"type": "Thing"}, context=CTX_URL)
        return run(broker, deliver, tenant="e2e")

    report, found = sync([thing(n, name=f"t{n}", size=n) for n in range(30)], "r1")
    assert report.upserted == 30 and len(found) == 30
    report, _ = sync([thing(n, name=f"t{n}", size=n) for n in range(30)], "r2")
    assert report.delivered == 0
    report, found = sync([thing(0, name="renamed")] + [thing(n, name=f"t{n}", size=n) for n in range(1, 29)], "r3")
    assert (report.upserted, report.attrs_deleted, report.deleted) == (1, 1, 1)
    by_id = {e["id"]: e for e in found}
    assert len(by_id) == 29 and "urn:ngsi-ld:Thing:29" not in by_id
    assert by_id["urn:ngsi-ld:Thing:0"]["name"]["value"] == "renamed" and "size" not in by_id["urn:ngsi-ld:Thing:0"]
    assert Outbox(store).pending() == 0
    store.close()
