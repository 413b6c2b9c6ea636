"""Embedded broker conformance: tenants (summary item 23, section 3), restart persistence, notifications wiring."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.broker_fixtures import BASE, assert_problem, entity, link, new_id
from tests.servers import PayloadServer

pytestmark = pytest.mark.integration


def test_unknown_tenant_is_404_until_a_creating_write(client: httpx.Client) -> None:
    tenant = {"NGSILD-Tenant": "Lazy_Tenant"}
    body = assert_problem(client.get("/entities", params={"type": "T"}, headers=tenant), 404,
                          "NonExistingTenant", "No such tenant")
    assert body["detail"] == "lazy_tenant"
    assert_problem(client.post("/entityOperations/update", json=[entity(new_id())], headers=tenant), 404,
                   "NonExistingTenant")
    response = client.post("/entityOperations/upsert", json=[entity(new_id(), "T")], headers=tenant)
    assert response.status_code == 201
    assert response.headers["ngsild-tenant"] == "lazy_tenant"
    listed = client.get("/entities", params={"type": "T"}, headers=tenant)
    assert listed.status_code == 200 and len(listed.json()) == 1
    assert listed.headers["ngsild-tenant"] == "lazy_tenant"


def test_two_tenants_side_by_side(client: httpx.Client) -> None:
    ident = new_id()
    for tenant, value in (("alpha", 1), ("beta", 2)):
        assert client.post("/entities", json=entity(ident, n=value),
                           headers={"NGSILD-Tenant": tenant}).status_code == 201
    for tenant, value in (("alpha", 1), ("beta", 2)):
        got = client.get(f"/entities/{ident}", params={"options": "keyValues"}, headers={"NGSILD-Tenant": tenant})
        assert got.json()["n"] == value
    assert_problem(client.get(f"/entities/{ident}"), 404, "ResourceNotFound")
    assert client.delete(f"/entities/{ident}", headers={"NGSILD-Tenant": "alpha"}).status_code == 204
    assert client.get(f"/entities/{ident}", headers={"NGSILD-Tenant": "beta"}).status_code == 200
    assert {"alpha", "beta"} <= set(httpx.get(str(client.base_url).replace(BASE, "") + "ngsi-ld/ex/v1/tenants").json())


def test_invalid_tenant_names_and_duplicated_headers_are_400(client: httpx.Client) -> None:
    assert_problem(client.get("/entities", params={"type": "T"}, headers={"NGSILD-Tenant": "a.b"}), 400,
                   "BadRequestData", "Invalid tenant name")
    assert_problem(client.get("/entities", params={"type": "T"},
                              headers={"NGSILD-Tenant": "a", "Fiware-Service": "b"}), 400,
                   "BadRequestData", "HTTP header duplication")


def test_restart_keeps_entities_contexts_and_subscriptions(tmp_path: Path) -> None:
    settings = BrokerSettings(port=0, db_path=tmp_path / "broker.sqlite")
    ident = new_id("Bin")
    with PayloadServer({"/ctx.jsonld": {"@context": {"Bin": "https://example.org/waste#Bin"}}}) as srv:
        remote = srv.url("/ctx.jsonld")
        with EmbeddedBroker(settings) as first, httpx.Client(base_url=first.url + BASE) as http:
            assert http.post("/entities", json=entity(ident, "Bin", fill=1), headers={
                **link(remote), "NGSILD-Tenant": "kept"}).status_code == 201
            # The payload is {"@context": ...} (GS CIM 009 5.13.2; Orion-LD also takes the bare value).
            hosted = http.post("/jsonldContexts", json={"@context": {"Lamp": "http://example.org/Lamp"}}
                               ).headers["location"]
            sub = http.post("/subscriptions", json={
                "type": "Subscription", "entities": [{"type": "Bin"}],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}},
                headers={"NGSILD-Tenant": "kept"})
            assert sub.status_code == 201
        hosted_id = hosted.rsplit("/", 1)[1]
        with EmbeddedBroker(settings) as second, httpx.Client(base_url=second.url + BASE) as http:
            got = http.get(f"/entities/{ident}", headers={**link(remote), "NGSILD-Tenant": "kept"})
            assert got.status_code == 200 and got.json()["type"] == "Bin"
            assert http.get(f"/jsonldContexts/{hosted_id}").json() == {
                "@context": {"Lamp": "http://example.org/Lamp"}}
            assert http.get(sub.headers["location"].removeprefix(BASE),
                            headers={"NGSILD-Tenant": "kept"}).status_code == 200
        assert len(srv.requests_to("/ctx.jsonld")) == 1  # the downloaded context was persisted


def test_entity_writes_reach_subscribers_without_blocking(client: httpx.Client) -> None:
    kind = f"N{new_id()[-8:]}"
    with PayloadServer({"/notify": {}}) as receiver:
        assert client.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": kind}],
            "notification": {"endpoint": {"uri": receiver.url("/notify")}}}).status_code == 201
        ident = new_id(kind)
        assert client.post("/entityOperations/upsert", json=[entity(ident, kind, n=1)]).status_code == 201
        deadline = time.monotonic() + 10
        while not receiver.requests_to("/notify") and time.monotonic() < deadline:
            time.sleep(0.05)
        notes = receiver.requests_to("/notify")
        assert notes, "no notification arrived"
        assert ident in notes[0].body.decode()
