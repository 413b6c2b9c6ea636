"""Embedded broker: behaviours the ETSI NGSI-LD conformance suite requires (docs/conformance.md)."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest

from tests.broker_fixtures import assert_problem, entity, new_id
from tests.servers import PayloadServer

pytestmark = pytest.mark.integration


def test_collection_urls_accept_a_trailing_slash(client: httpx.Client) -> None:
    ident = new_id()
    assert client.post("/entities/", json=entity(ident, n=1)).status_code == 201
    assert client.post(f"/entities/{ident}/attrs/", json={"m": 2}).status_code == 204
    assert client.patch(f"/entities/{ident}/attrs/", json={"m": 3}).status_code == 204
    assert [e["id"] for e in client.get("/entities/", params={"id": ident, "type": "Thing"}).json()] == [ident]
    sub = {"type": "Subscription", "entities": [{"type": "Thing"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/hook"}}}
    assert client.post("/subscriptions/", json=sub).status_code == 201


def test_a_verb_without_an_id_on_a_collection_is_405(client: httpx.Client) -> None:
    assert_problem(client.patch("/subscriptions/", json={"q": "a>1"}), 405, "OperationNotSupported")
    assert_problem(client.delete("/subscriptions/"), 405, "OperationNotSupported")


def test_invalid_requests_and_reserved_names(client: httpx.Client) -> None:
    assert_problem(client.post("/entities", json=[]), 400, "InvalidRequest")
    assert_problem(client.get("/entities", params={"type": "T", "bogus": "1"}), 400, "InvalidRequest")
    assert_problem(client.post("/entities", json={"id": new_id(), "type": "type"}), 400, "BadRequestData")
    assert_problem(client.get("/entities", params={"attrs": "id,type"}), 400, "BadRequestData")
    assert_problem(client.get("/entities", params={"id": new_id()}), 400, "BadRequestData", "Too broad query")
    assert_problem(client.get("/subscriptions/not-a-uri"), 400, "BadRequestData")


def multi(ident: str) -> dict:
    return {"id": ident, "type": "Thing",
            "name": [{"type": "Property", "value": "Eiffel Tower"},
                     {"type": "Property", "value": "Tour Eiffel", "datasetId": "urn:ngsi-ld:Dataset:fr"},
                     {"type": "Property", "value": "Eiffelturm", "datasetId": "urn:ngsi-ld:Dataset:de"}]}


def test_multi_attributes_keep_their_instances_apart(client: httpx.Client) -> None:
    ident = new_id()
    assert client.post("/entities", json=multi(ident)).status_code == 201
    assert [i["value"] for i in client.get(f"/entities/{ident}").json()["name"]] == [
        "Eiffel Tower", "Tour Eiffel", "Eiffelturm"]
    french = client.get(f"/entities/{ident}", params={"datasetId": "urn:ngsi-ld:Dataset:fr"}).json()
    assert french["name"] == {"type": "Property", "value": "Tour Eiffel", "datasetId": "urn:ngsi-ld:Dataset:fr"}
    default = client.get("/entities", params={"type": "Thing", "datasetId": "@none", "q": "name==\"Eiffelturm\""})
    assert [e["name"] for e in default.json()] == [{"type": "Property", "value": "Eiffel Tower"}]
    # PATCH of one instance, delete of another: the rest stays.
    fragment = {"value": "Tour Eiffel!", "datasetId": "urn:ngsi-ld:Dataset:fr"}
    assert client.patch(f"/entities/{ident}/attrs/name", json=fragment).status_code == 204
    assert client.delete(f"/entities/{ident}/attrs/name",
                         params={"datasetId": "urn:ngsi-ld:Dataset:de"}).status_code == 204
    assert [i["value"] for i in client.get(f"/entities/{ident}").json()["name"]] == ["Eiffel Tower", "Tour Eiffel!"]
    assert client.delete(f"/entities/{ident}/attrs/name",
                         params={"datasetId": "urn:ngsi-ld:Dataset:de"}).status_code == 404
    assert client.delete(f"/entities/{ident}/attrs/name", params={"deleteAll": "true"}).status_code == 204
    assert "name" not in client.get(f"/entities/{ident}").json()


def test_duplicate_dataset_ids_are_400(client: httpx.Client) -> None:
    body = multi(new_id())
    body["name"][2]["datasetId"] = "urn:ngsi-ld:Dataset:fr"
    assert_problem(client.post("/entities", json=body), 400, "BadRequestData")


def test_ngsi_ld_null_deletes_in_merge_and_updates(client: httpx.Client) -> None:
    ident = new_id()
    assert client.post("/entities", json={**multi(ident), "a": 1, "b": 2, "c": 3}).status_code == 201
    assert client.patch(f"/entities/{ident}", json={"a": {"type": "Property", "value": "urn:ngsi-ld:null"},
                                                    "name": {"type": "Property", "value": "urn:ngsi-ld:null",
                                                             "datasetId": "urn:ngsi-ld:Dataset:de"}}).status_code == 204
    assert client.patch(f"/entities/{ident}/attrs", json={"b": "urn:ngsi-ld:null"}).status_code == 204
    assert client.patch(f"/entities/{ident}/attrs/c", json={"value": "urn:ngsi-ld:null"}).status_code == 204
    got = client.get(f"/entities/{ident}").json()
    assert not {"a", "b", "c"} & set(got)
    assert [i.get("datasetId") for i in got["name"]] == [None, "urn:ngsi-ld:Dataset:fr"]


def test_scopes_are_stored_rendered_and_queried(client: httpx.Client) -> None:
    one, two = new_id(), new_id()
    scoped = {"id": one, "type": "Scoped", "scope": "/Madrid/Gardens/North"}
    assert client.post("/entities", json=scoped).status_code == 201
    assert client.post("/entities", json={"id": two, "type": "Scoped",
                                          "scope": ["/Madrid/Parks/North", "/CompanyA/Unit"]}).status_code == 201
    assert client.get(f"/entities/{one}").json()["scope"] == "/Madrid/Gardens/North"

    def found(scope_q: str) -> list[str]:
        return [e["id"] for e in client.get("/entities", params={"type": "Scoped", "scopeQ": scope_q}).json()]

    assert found("/Madrid/+/North") == [one, two]
    assert found("/CompanyA/#") == [two]
    assert found("/Madrid/Parks/North;/CompanyA/Unit") == [two]
    assert found("/Madrid/Gardens/North,/CompanyA/Unit") == [one, two]
    # append with noOverwrite adds a scope; update replaces it; DELETE .../attrs/scope removes it
    assert client.post(f"/entities/{one}/attrs", params={"options": "noOverwrite"},
                       json={"scope": "/B"}).status_code == 204
    assert client.get(f"/entities/{one}").json()["scope"] == ["/Madrid/Gardens/North", "/B"]
    assert client.patch(f"/entities/{one}/attrs", json={"scope": "/C"}).status_code == 204
    assert client.get(f"/entities/{one}").json()["scope"] == "/C"
    assert client.delete(f"/entities/{one}/attrs/scope").status_code == 204
    assert "scope" not in client.get(f"/entities/{one}").json()


def test_batch_merge_patches_existing_entities(client: httpx.Client) -> None:
    ident, missing = new_id(), new_id()
    assert client.post("/entities", json=entity(ident, a=1, b=2)).status_code == 201
    response = client.post("/entityOperations/merge", json=[
        {"id": ident, "type": "Thing", "a": 5, "b": "urn:ngsi-ld:null"}, {"id": missing, "type": "Thing", "a": 1}])
    assert response.status_code == 207
    assert response.json()["success"] == [ident]
    got = client.get(f"/entities/{ident}", params={"options": "keyValues"}).json()
    assert got == {"id": ident, "type": "Thing", "a": 5}


def test_linked_entities_inline_and_flat_with_pick(client: httpx.Client) -> None:
    building, city = new_id("Building"), new_id("City")
    assert client.post("/entities", json={"id": city, "type": "City", "name": "Paris", "size": 9}).status_code == 201
    assert client.post("/entities", json={"id": building, "type": "Building", "height": 3,
                                          "locatedAt": {"type": "Relationship", "object": city}}).status_code == 201
    inline = client.get(f"/entities/{building}", params={"join": "inline", "pick": "id,locatedAt{id,name}"}).json()
    assert inline == {"id": building, "locatedAt": {"type": "Relationship", "object": city, "entity": {
        "id": city, "name": {"type": "Property", "value": "Paris"}}}}
    flat = client.get("/entities", params={"type": "Building", "id": building, "join": "flat",
                                           "options": "keyValues", "omit": "height"}).json()
    assert flat == [{"id": building, "type": "Building", "locatedAt": city},
                    {"id": city, "type": "City", "name": "Paris", "size": 9}]
    assert_problem(client.get(f"/entities/{building}", params={"pick": "nothere"}), 404, "ResourceNotFound")
    assert_problem(client.get(f"/entities/{building}", params={"pick": "id", "attrs": "height"}), 400,
                   "BadRequestData")


def test_type_selection_all_of_and_lang(client: httpx.Client) -> None:
    both, one = new_id(), new_id()
    assert client.post("/entities", json={"id": both, "type": ["Museum", "Landmark"],
                                          "street": {"type": "LanguageProperty",
                                                     "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}}}
                       ).status_code == 201
    assert client.post("/entities", json={"id": one, "type": "Museum"}).status_code == 201
    assert [e["id"] for e in client.get("/entities", params={"type": "(Museum;Landmark)"}).json()] == [both]
    assert [e["id"] for e in client.get("/entities", params={"type": "Museum|Landmark"}).json()] == [both, one]
    street = client.get(f"/entities/{both}", params={"lang": "fr-CH,fr;q=0.9,*;q=0.5"}).json()["street"]
    assert street == {"type": "Property", "value": "Grand Place", "lang": "fr"}
    in_dutch = client.get(f"/entities/{both}", params={"lang": "nl", "options": "keyValues"}).json()
    assert in_dutch["street"] == "Grote Markt"


def test_jsonld_contexts_answers(client: httpx.Client) -> None:
    created = client.post("/jsonldContexts", json={"@context": {"Lamp": "http://example.org/Lamp"}})
    assert created.status_code == 201
    local_id = created.headers["location"].removeprefix("/ngsi-ld/v1/jsonldContexts/")
    served = client.get(f"/jsonldContexts/{local_id}")
    assert served.headers["content-type"] == "application/json"
    details = client.get(f"/jsonldContexts/{local_id}", params={"details": "true"}).json()
    assert details["kind"] == "Hosted" and details["localId"] == local_id
    assert_problem(client.get("/jsonldContexts", params={"details": "other"}), 400, "BadRequestData")
    assert_problem(client.post("/jsonldContexts", json={"Lamp": "http://example.org/Lamp"}), 400, "InvalidRequest")
    assert_problem(client.delete(f"/jsonldContexts/{local_id}", params={"reload": "true"}), 400, "BadRequestData")
    assert client.delete(f"/jsonldContexts/{local_id}").status_code == 204


def test_subscription_views_and_pages(client: httpx.Client) -> None:
    tenant = {"NGSILD-Tenant": "pages" + new_id().rsplit(":", 1)[1]}
    for n in range(3):
        body = {"id": f"urn:ngsi-ld:Subscription:p{n}", "type": "Subscription", "entities": [{"type": "T"}],
                "notification": {"endpoint": {"uri": "http://127.0.0.1:9/hook"}}}
        assert client.post("/subscriptions", json=body, headers=tenant).status_code == 201
    page = client.get("/subscriptions", params={"limit": 1, "offset": 1}, headers=tenant)
    links = page.headers["link"]
    assert '</ngsi-ld/v1/subscriptions?limit=1&offset=0>;rel="prev"' in links
    assert '</ngsi-ld/v1/subscriptions?limit=1&offset=2>;rel="next"' in links
    view = client.get("/subscriptions/urn:ngsi-ld:Subscription:p0", headers=tenant).json()
    assert "isActive" not in view and "createdAt" not in view and view["status"] == "active"
    assert "createdAt" in client.get("/subscriptions/urn:ngsi-ld:Subscription:p0", params={"options": "sysAttrs"},
                                     headers=tenant).json()
    # a PATCHed notification replaces the old one: without its endpoint it is invalid
    assert_problem(client.patch("/subscriptions/urn:ngsi-ld:Subscription:p0",
                                json={"notification": {"format": "keyValues"}}, headers=tenant), 400, "BadRequestData")
    assert_problem(client.post("/subscriptions", headers=tenant, json={
        "type": "Subscription", "entities": [{"type": "T"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/hook"}, "pick": ["a"], "attributes": ["b"]}}),
        400, "BadRequestData")


def _notifications(receiver: PayloadServer, count: int) -> list[dict]:
    deadline = time.monotonic() + 10  # a bound on waiting, not a timing assertion
    while len(receiver.requests_to("/notify")) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return [orjson.loads(r.body) for r in receiver.requests_to("/notify")]


def test_notifications_show_changes_and_periodic_ones_arrive(client: httpx.Client) -> None:
    kind = f"S{new_id()[-8:]}"
    ident = new_id(kind)
    assert client.post("/entities", json=entity(ident, kind, name="Eiffel Tower", height=300)).status_code == 201
    with PayloadServer({"/notify": {}}) as receiver:
        assert client.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": kind}],
            "notificationTrigger": ["attributeUpdated", "attributeDeleted"],
            "notification": {"endpoint": {"uri": receiver.url("/notify")}, "showChanges": True}}).status_code == 201
        assert client.patch(f"/entities/{ident}/attrs", json={"name": "Tour Eiffel"}).status_code == 204
        assert client.delete(f"/entities/{ident}/attrs/height").status_code == 204
        # delivered by parallel workers: in any order
        data = sorted((n["data"][0] for n in _notifications(receiver, 2)), key=lambda e: "previousValue" in e["height"])
        assert data[0]["name"] == {"type": "Property", "value": "Tour Eiffel", "previousValue": "Eiffel Tower"}
        assert data[1]["height"] == {"type": "Property", "value": "urn:ngsi-ld:null", "previousValue": 300}
    with PayloadServer({"/notify": {}}) as receiver:
        created = client.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": kind}], "timeInterval": 0.5,
            "notification": {"endpoint": {"uri": receiver.url("/notify")}, "pick": ["id", "name"]}})
        assert created.status_code == 201
        periodic = _notifications(receiver, 2)
        assert client.delete(created.headers["location"].removeprefix("/ngsi-ld/v1")).status_code == 204
        assert len(periodic) >= 2  # repeated although nothing changed
        assert periodic[0]["data"] == [{"id": ident, "name": {"type": "Property", "value": "Tour Eiffel"}}]


def test_context_source_registrations_are_kept_and_queried(client: httpx.Client) -> None:
    ident = "urn:ngsi-ld:ContextSourceRegistration:" + new_id().rsplit(":", 1)[1]
    registration = {"id": ident, "type": "ContextSourceRegistration", "endpoint": "http://127.0.0.1:9/source",
                    "information": [{"entities": [{"type": "Vehicle"}]}]}
    created = client.post("/csourceRegistrations/", json=registration)
    assert created.status_code == 201 and created.headers["location"] == f"/ngsi-ld/v1/csourceRegistrations/{ident}"
    assert_problem(client.post("/csourceRegistrations", json=registration), 409, "AlreadyExists")
    assert [r["id"] for r in client.get("/csourceRegistrations", params={"type": "Vehicle"}).json()] == [ident]
    assert client.get("/csourceRegistrations", params={"type": "Bus"}).json() == []
    assert client.get(f"/csourceRegistrations/{ident}").json()["endpoint"] == "http://127.0.0.1:9/source"
    assert_problem(client.post("/csourceRegistrations", json={"type": "ContextSourceRegistration"}), 400,
                   "BadRequestData")
    assert_problem(client.get("/csourceRegistrations", headers={"Accept": "text/csv"}), 406, "BadRequestData")
    assert client.delete(f"/csourceRegistrations/{ident}").status_code == 204
    assert_problem(client.get(f"/csourceRegistrations/{ident}"), 404, "ResourceNotFound")


def test_subscription_type_selection_encoded_q_and_jsonld_context(client: httpx.Client) -> None:
    kind = f"J{new_id()[-8:]}"
    core19 = "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
    with PayloadServer({"/notify": {}}) as receiver:
        assert client.post("/subscriptions", json={
            "type": "Subscription", "entities": [{"type": f"({kind}|Other)"}], "q": 'name=="Eiffel%20Tower"',
            "jsonldContext": core19, "notification": {"endpoint": {"uri": receiver.url("/notify")}}}).status_code == 201
        assert client.post("/entities", json=entity(new_id(kind), kind, name="Other Tower")).status_code == 201
        ident = new_id(kind)
        assert client.post("/entities", json=entity(ident, kind, name="Eiffel Tower")).status_code == 201
        notified = _notifications(receiver, 1)
        assert [n["data"][0]["id"] for n in notified] == [ident]
        assert core19 in receiver.requests_to("/notify")[0].headers["Link"]
    assert_problem(client.post("/subscriptions", json={
        "type": "Subscription", "entities": [{"type": kind}], "jsonldContext": "not a uri",
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/hook"}}}), 400, "BadRequestData")
