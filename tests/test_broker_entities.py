"""Embedded broker conformance: entity endpoints (reference summary items 1-7, 9, 10, 14-16; section 2)."""

from __future__ import annotations

import re

import httpx
import orjson
import pytest

from tests.broker_fixtures import CORE, DEFAULT_VOCAB, assert_problem, entity, new_id

pytestmark = pytest.mark.integration


def create(client: httpx.Client, body: dict, **kwargs) -> httpx.Response:
    response = client.post("/entities", json=body, **kwargs)
    assert response.status_code == 201, response.text
    return response


def test_create_answers_201_with_relative_location_and_empty_body(client: httpx.Client) -> None:
    ident = new_id()
    response = create(client, entity(ident, temperature=21.5))
    assert response.headers["location"] == f"/ngsi-ld/v1/entities/{ident}"
    assert response.headers["content-length"] == "0"
    assert response.content == b""


def test_url_ids_appear_raw_in_location_and_path(client: httpx.Client) -> None:
    ident = "http://a.b.c/entity/E1"
    response = create(client, entity(ident, n=1))
    assert response.headers["location"] == "/ngsi-ld/v1/entities/http://a.b.c/entity/E1"
    assert client.get("/entities/http://a.b.c/entity/E1").json()["id"] == ident
    assert client.delete("/entities/http://a.b.c/entity/E1").status_code == 204


def test_second_create_of_same_id_is_409_already_exists(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident))
    body = assert_problem(client.post("/entities", json=entity(ident)), 409, "AlreadyExists",
                          "Entity already exists")
    assert body["detail"] == ident


def test_malformed_json_is_400_invalid_request(client: httpx.Client) -> None:
    response = client.post("/entities", content=b'{"id": "urn:x:1", ', headers={"Content-Type": "application/json"})
    body = assert_problem(response, 400, "InvalidRequest", "JSON Parse Error")
    assert body["detail"] == "Invalid JSON payload"


@pytest.mark.parametrize(("payload", "title", "detail"), [
    ({"id": "nocolon", "type": "T"}, "Invalid URI - no colon found", "id"),
    ({"id": "urn:ngsi-ld:T:with space", "type": "T"}, "Invalid URI - invalid character", "id"),
    ({"type": "T"}, "Entity id is missing", "The 'id' field is mandatory"),
    ({"id": "urn:ngsi-ld:T:1"}, "Entity type is missing", "The 'type' field is mandatory"),
])
def test_invalid_entity_ids_and_types_are_400(client: httpx.Client, payload: dict, title: str,
                                               detail: str) -> None:
    body = assert_problem(client.post("/entities", json=payload), 400, "BadRequestData", title)
    assert body["detail"] == detail


@pytest.mark.parametrize(("attr", "title"), [
    (None, "The use of NULL value is not recommended for JSON-LD (the whole attribute gets ignored)"),
    ({"type": "Propertyyy", "value": 1}, "Invalid value for attribute /type/"),
    ({"type": "Property", "object": "urn:x:1", "value": 1}, "Forbidden field for a Property: object"),
    ({"type": "Relationship", "value": 1, "object": "urn:x:1"}, "Forbidden field for a Relationship: value"),
    ({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1, 2], "x": 1}},
     "Unexpected Field in value of GeoProperty"),
    ({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [1]}}, "Invalid GeoJSON"),
])
def test_invalid_attributes_are_400_bad_request_data(client: httpx.Client, attr: object, title: str) -> None:
    assert_problem(client.post("/entities", json={"id": new_id(), "type": "T", "a": attr}), 400,
                   "BadRequestData", title)


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", None, "Application/JSON"])
def test_other_content_types_are_415(client: httpx.Client, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/entities", content=orjson.dumps(entity(new_id())), headers=headers)
    body = assert_problem(response, 415, "BadRequestData", "unsupported format of payload")
    assert body["detail"] == "only application/json and application/ld+json are supported"


def test_content_type_parameters_are_ignored(client: httpx.Client) -> None:
    response = client.post("/entities", content=orjson.dumps(entity(new_id())),
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 201


def test_unacceptable_accept_is_406_and_missing_accept_is_json(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, n=1))
    assert_problem(client.get(f"/entities/{ident}", headers={"Accept": "text/html"}), 406,
                   "BadRequestData", "Invalid Accept mime-type")
    raw = httpx.Request("GET", f"{str(client.base_url).rstrip('/')}/entities/{ident}")
    assert "accept" not in raw.headers
    response = client.send(raw)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


def test_payload_over_the_limit_is_413(client: httpx.Client) -> None:
    big = entity(new_id(), blob="x" * (1024 * 1024 + 10))
    body = assert_problem(client.post("/entities", json=big), 413, "BadRequestData", "Request Entity too large")
    assert re.fullmatch(r"payload size: \d+, max size supported: 1048576", body["detail"])


def test_get_unknown_entity_is_404(client: httpx.Client) -> None:
    body = assert_problem(client.get("/entities/urn:ngsi-ld:T:none"), 404, "ResourceNotFound",
                          "Entity not found")
    assert body["detail"] == "urn:ngsi-ld:T:none"


def test_get_with_attrs_matching_none_is_404(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, a=1))
    assert_problem(client.get(f"/entities/{ident}", params={"attrs": "zzz"}), 404, "ResourceNotFound",
                   "Combination Entity/Attributes Not Found")
    assert list(client.get(f"/entities/{ident}", params={"attrs": "a"}).json()) == ["id", "type", "a"]


# Unknown/unsupported parameters and bad options are InvalidRequest (GS CIM 009, ETSI suite 059_01,
# 018_16); Orion-LD answers BadRequestData. pick/omit are supported since the ETSI work.
@pytest.mark.parametrize(("params", "kind", "title", "detail"), [
    ({"bogus": "a"}, "InvalidRequest", "Unknown URI parameter", "bogus"),
    ({"q": "a==1"}, "InvalidRequest", "Unsupported URI parameter", "q"),
    ({"attrs": ""}, "BadRequestData", "Empty right-hand-side for a URI parameter", "attrs"),
    ({"options": "bogus"}, "InvalidRequest", "Invalid value for URI param /options/", "bogus"),
    ({"options": "keyValues,concise"}, "BadRequestData", "Incoherent value for /options/ URI param", None),
    ({"options": "keyValues,sysAttrs"}, "BadRequestData", "Incoherent value for /options/ URI param", None),
])
def test_uri_parameter_errors_are_400(client: httpx.Client, params: dict, kind: str, title: str,
                                      detail: str | None) -> None:
    ident = new_id()
    create(client, entity(ident, a=1))
    body = assert_problem(client.get(f"/entities/{ident}", params=params), 400, kind, title)
    if detail is not None:
        assert body["detail"] == detail


def test_output_formats(client: httpx.Client) -> None:
    ident = new_id()
    create(client, {"id": ident, "type": "T", "p": {"type": "Property", "value": 12, "unitCode": "CEL"},
                    "plain": 5, "r": {"type": "Relationship", "object": "urn:ngsi-ld:X:1"},
                    "location": {"type": "Point", "coordinates": [27.47, 42.5]}})
    normalized = client.get(f"/entities/{ident}").json()
    assert normalized["plain"] == {"type": "Property", "value": 5}
    assert normalized["location"] == {"type": "GeoProperty",
                                      "value": {"type": "Point", "coordinates": [27.47, 42.5]}}
    kv = client.get(f"/entities/{ident}", params={"options": "keyValues"}).json()
    assert kv == {"id": ident, "type": "T", "p": 12, "plain": 5, "r": "urn:ngsi-ld:X:1",
                  "location": {"type": "Point", "coordinates": [27.47, 42.5]}}
    assert client.get(f"/entities/{ident}", params={"options": "simplified"}).json() == kv
    concise = client.get(f"/entities/{ident}", params={"format": "concise", "options": "keyValues"}).json()
    assert concise["plain"] == 5
    assert concise["p"] == {"value": 12, "unitCode": "CEL"}
    assert concise["r"] == {"object": "urn:ngsi-ld:X:1"}
    assert concise["location"] == {"type": "Point", "coordinates": [27.47, 42.5]}
    sys = client.get(f"/entities/{ident}", params={"options": "sysAttrs"}).json()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d\dZ", sys["createdAt"])
    assert re.fullmatch(r".*\.\d\d\dZ", sys["p"]["modifiedAt"])
    assert "createdAt" not in normalized


def test_response_context_link_header_and_ld_json_body(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, a=1))
    plain = client.get(f"/entities/{ident}")
    assert plain.headers["link"] == (f'<{CORE}>; rel="http://www.w3.org/ns/json-ld#context"; '
                                     'type="application/ld+json"')
    assert "@context" not in plain.json()
    ld = client.get(f"/entities/{ident}", headers={"Accept": "application/ld+json"})
    assert ld.headers["content-type"] == "application/ld+json"
    assert "link" not in ld.headers
    assert ld.json()["@context"] == CORE


def test_creation_context_is_not_remembered(client: httpx.Client) -> None:
    ident = new_id()
    ctx = {"Car": "http://example.org/Car", "speed": "http://example.org/speed"}
    response = client.post("/entities", json={"@context": ctx, "id": ident, "type": "Car", "speed": 3},
                           headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 201
    stored = client.get(f"/entities/{ident}").json()
    assert stored["type"] == "http://example.org/Car"
    assert stored["http://example.org/speed"] == {"type": "Property", "value": 3}
    with_ctx = client.post("/entityOperations/query", json={"type": "Query", "entities": [{"id": ident, "type": "Car"}],
                                                            "@context": ctx},
                           headers={"Content-Type": "application/ld+json",
                                    "Accept": "application/ld+json"}).json()
    assert with_ctx[0]["type"] == "Car" and with_ctx[0]["speed"]["value"] == 3
    assert with_ctx[0]["@context"] == ctx  # the request's context unchanged (GS CIM 009, ETSI suite)


def test_unknown_terms_expand_under_the_default_vocabulary(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, "Widget", size=3))
    detail = client.get("/attributes", params={"details": "true"}).json()
    assert any(a["id"] == DEFAULT_VOCAB + "size" and a["attributeName"] == "size" for a in detail)


def test_append_attributes_and_no_overwrite_partial_success(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, a=1))
    assert client.post(f"/entities/{ident}/attrs", json={"b": 2}).status_code == 204
    response = client.post(f"/entities/{ident}/attrs", params={"options": "noOverwrite"},
                           json={"a": 9, "c": 3})
    assert response.status_code == 207
    assert response.json() == {"updated": ["c"], "notUpdated": [
        {"attributeName": "a", "reason": "attribute already exists: overwrite is not allowed"}]}
    assert client.get(f"/entities/{ident}", params={"options": "keyValues"}).json() == {
        "id": ident, "type": "Thing", "a": 1, "b": 2, "c": 3}
    assert_problem(client.post("/entities/urn:ngsi-ld:T:none/attrs", json={"a": 1}), 404,
                   "ResourceNotFound", "Entity does not exist")


def test_patch_attributes_updates_only_existing_ones(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, a=1, b=2))
    assert client.patch(f"/entities/{ident}/attrs", json={"a": 10}).status_code == 204
    response = client.patch(f"/entities/{ident}/attrs", json={"b": 20, "zz": 1})
    assert response.status_code == 207
    assert response.json()["updated"] == ["b"]
    assert response.json()["notUpdated"] == [
        {"attributeName": "zz", "reason": f"attribute doesn't exist: {DEFAULT_VOCAB}zz"}]
    kv = client.get(f"/entities/{ident}", params={"options": "keyValues"}).json()
    assert (kv["a"], kv["b"], "zz" in kv) == (10, 20, False)
    assert_problem(client.patch("/entities/urn:ngsi-ld:T:none/attrs", json={"a": 1}), 404,
                   "ResourceNotFound", "Entity does not exist")


def test_single_attribute_patch_put_delete(client: httpx.Client) -> None:
    ident = new_id()
    create(client, {"id": ident, "type": "T", "a": {"type": "Property", "value": 1, "unitCode": "CEL"}})
    assert client.patch(f"/entities/{ident}/attrs/a", json={"value": 2}).status_code == 204
    assert client.get(f"/entities/{ident}").json()["a"] == {"type": "Property", "value": 2, "unitCode": "CEL"}
    assert client.put(f"/entities/{ident}/attrs/a", json={"type": "Property", "value": 3}).status_code == 204
    assert client.get(f"/entities/{ident}").json()["a"] == {"type": "Property", "value": 3}
    assert client.delete(f"/entities/{ident}/attrs/a").status_code == 204
    assert_problem(client.delete(f"/entities/{ident}/attrs/a"), 404, "ResourceNotFound",
                   "Entity/Attribute not found")


def test_merge_and_replace_entity(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident, a=1, b=2))
    assert client.patch(f"/entities/{ident}", json={"a": 5, "b": None, "c": 3},
                        headers={"Content-Type": "application/merge-patch+json"}).status_code == 204
    assert client.get(f"/entities/{ident}", params={"options": "keyValues"}).json() == {
        "id": ident, "type": "Thing", "a": 5, "c": 3}
    assert client.put(f"/entities/{ident}", json={"type": "Thing", "d": 4}).status_code == 204
    assert client.get(f"/entities/{ident}", params={"options": "keyValues"}).json() == {
        "id": ident, "type": "Thing", "d": 4}


def test_delete_entity_then_404(client: httpx.Client) -> None:
    ident = new_id()
    create(client, entity(ident))
    assert client.delete(f"/entities/{ident}").status_code == 204
    assert_problem(client.delete(f"/entities/{ident}"), 404, "ResourceNotFound")
    assert_problem(client.get(f"/entities/{ident}"), 404, "ResourceNotFound")


def test_wrong_verb_is_405_with_allow_and_unknown_path_404(client: httpx.Client) -> None:
    response = client.delete("/types")
    assert_problem(response, 405, "OperationNotSupported")
    assert set(response.headers["allow"].split(",")) == {"GET"}
    response = client.post(f"/entities/{new_id()}")
    assert set(response.headers["allow"].split(",")) == {"GET", "DELETE", "PATCH", "PUT"}
    # PUT/PATCH /entities/ is an entity operation without its id: 400 (ETSI suite 054_02_02,
    # 056_02_02); Orion-LD answers 405 with Allow: GET,POST,DELETE.
    assert_problem(client.put("/entities"), 400, "BadRequestData")
    body = assert_problem(client.post("/entityOperations/bogus", json=[]), 404, "ResourceNotFound",
                          "Service Not Found")
    assert body["detail"] == "/ngsi-ld/v1/entityOperations/bogus"


def test_empty_payloads_and_bodies_on_get(client: httpx.Client) -> None:
    assert_problem(client.post("/entities", json={}), 400, "BadRequestData", "Invalid Payload Body")
    assert_problem(client.post("/entities", content=b"", headers={"Content-Type": "application/json"}),
                   400, "BadRequestData", "payload missing")
    assert_problem(client.request("GET", "/entities/urn:x:1", content=b"{}"), 400, "BadRequestData",
                   "Unexpected payload body")


def test_concise_and_simplified_input_are_accepted(client: httpx.Client) -> None:
    ident = new_id()
    create(client, {"id": ident, "type": "T", "p": 1, "r": {"object": "urn:x:1"},
                    "location": {"type": "Point", "coordinates": [27.4, 42.5]},
                    "q": {"value": 2, "observedAt": "2024-01-01T00:00:00Z"}})
    got = client.get(f"/entities/{ident}").json()
    assert got["p"] == {"type": "Property", "value": 1}
    assert got["r"] == {"type": "Relationship", "object": "urn:x:1"}
    assert got["location"]["type"] == "GeoProperty"
    assert got["q"] == {"type": "Property", "value": 2, "observedAt": "2024-01-01T00:00:00Z"}
