"""Embedded broker conformance: batch operations (reference summary items 17-22, section 1)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.broker_fixtures import ERRORS, assert_problem, entity, new_id

pytestmark = pytest.mark.integration


def key_values(client: httpx.Client, ident: str) -> dict:
    return client.get(f"/entities/{ident}", params={"options": "keyValues"}).json()


def test_create_all_ok_is_201_with_ids_in_order(client: httpx.Client) -> None:
    ids = [new_id() for _ in range(22)]
    response = client.post("/entityOperations/create", json=[entity(i, n=1) for i in ids])
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == ids


def test_create_with_existing_and_duplicate_ids_is_207(client: httpx.Client) -> None:
    old, new = new_id(), new_id()
    client.post("/entities", json=entity(old))
    response = client.post("/entityOperations/create", json=[entity(old), entity(new), entity(new)])
    assert response.status_code == 207
    body = response.json()
    assert list(body) == ["success", "errors"]
    assert body["success"] == [new]
    assert body["errors"] == [
        {"entityId": old, "error": {"type": ERRORS + "AlreadyExists", "title": "Entity already exists",
                                    "detail": "Cannot create an existing entity", "status": 409}},
        {"entityId": new, "error": {"type": ERRORS + "AlreadyExists", "title": "Entity already exists",
                                    "detail": "Created as part of the same request", "status": 409}}]


def test_create_all_failing_is_still_207_and_empty_array_is_400(client: httpx.Client) -> None:
    response = client.post("/entityOperations/create", json=[{"type": "T"}, {"id": "bad", "type": "T"}])
    assert response.status_code == 207
    body = response.json()
    assert body["success"] == []
    assert [e["entityId"] for e in body["errors"]] == ["No Entity::id", "bad"]
    assert body["errors"][1]["error"]["title"] == "Invalid URI - no colon found"
    assert body["errors"][1]["error"]["status"] == 400
    problem = assert_problem(client.post("/entityOperations/create", json=[]), 400, "BadRequestData",
                             "Invalid Payload Body")
    assert problem["detail"] == "Empty Array"
    assert_problem(client.post("/entityOperations/upsert", json={"id": "urn:x:1"}), 400, "BadRequestData",
                   "Invalid Payload Body")


def test_upsert_status_codes_new_existing_mixed(client: httpx.Client) -> None:
    a, b, c = new_id(), new_id(), new_id()
    first = client.post("/entityOperations/upsert", json=[entity(a, n=1), entity(b, n=1)])
    assert (first.status_code, first.json()) == (201, [a, b])
    again = client.post("/entityOperations/upsert", json=[entity(a, n=2), entity(b, n=2)])
    assert again.status_code == 204 and again.content == b""
    mixed = client.post("/entityOperations/upsert", json=[entity(a, n=3), entity(c, n=3)])
    assert (mixed.status_code, mixed.json()) == (201, [c])


def test_upsert_with_an_error_is_207(client: httpx.Client) -> None:
    a = new_id()
    response = client.post("/entityOperations/upsert", json=[entity(a), {"id": new_id()}])
    assert response.status_code == 207
    body = response.json()
    assert body["success"] == [a]
    assert body["errors"][0]["error"]["title"] == "Entity type is missing"


def test_upsert_replace_drops_missing_attributes_update_keeps_them(client: httpx.Client) -> None:
    ident = new_id()
    client.post("/entityOperations/upsert", json=[entity(ident, a=1, b=1)])
    created = client.get(f"/entities/{ident}", params={"options": "sysAttrs"}).json()["createdAt"]
    client.post("/entityOperations/upsert", json=[entity(ident, a=2)])
    replaced = client.get(f"/entities/{ident}", params={"options": "sysAttrs"}).json()
    assert "b" not in replaced and replaced["a"]["value"] == 2
    assert replaced["createdAt"] == created  # replace keeps the entity's creation time
    client.post("/entityOperations/upsert", params={"options": "update"}, json=[entity(ident, c=3)])
    assert key_values(client, ident) == {"id": ident, "type": "Thing", "a": 2, "c": 3}
    assert_problem(client.post("/entityOperations/upsert", params={"options": "update,replace"},
                               json=[entity(ident)]), 400, "BadRequestData", "URI Param Error")


def test_duplicate_ids_in_one_upsert_merge_or_last_wins(client: httpx.Client) -> None:
    ident = new_id()
    response = client.post("/entityOperations/upsert", params={"options": "update"},
                           json=[entity(ident, a=1), entity(ident, b=2)])
    assert (response.status_code, response.json()) == (201, [ident])
    assert key_values(client, ident) == {"id": ident, "type": "Thing", "a": 1, "b": 2}
    other = new_id()
    response = client.post("/entityOperations/upsert", json=[entity(other, a=1), entity(other, b=2)])
    assert (response.status_code, response.json()) == (201, [other])
    assert key_values(client, other) == {"id": other, "type": "Thing", "b": 2}


def test_upsert_replaces_or_adds_types(client: httpx.Client) -> None:
    # Multi-typed entities (GS CIM 009 4.16, ETSI 004_03_05, 004_08_01, 005_05_01): a replacing upsert
    # replaces the types, an updating one adds them. Orion-LD answers 207 "the Entity Type cannot be altered".
    ident = new_id()
    client.post("/entityOperations/upsert", json=[entity(ident, "A")])
    assert client.post("/entityOperations/upsert", json=[entity(ident, "B")]).status_code == 204
    assert key_values(client, ident)["type"] == "B"
    assert client.post("/entityOperations/upsert", params={"options": "update"},
                       json=[entity(ident, "C")]).status_code == 204
    assert key_values(client, ident)["type"] == ["B", "C"]


def test_batch_update_and_no_overwrite(client: httpx.Client) -> None:
    ident, missing = new_id(), new_id()
    client.post("/entityOperations/create", json=[entity(ident, a=1)])
    assert client.post("/entityOperations/update", json=[{"id": ident, "type": "Thing", "a": 2, "b": 2}]
                       ).status_code == 204
    assert key_values(client, ident) == {"id": ident, "type": "Thing", "a": 2, "b": 2}
    # An attribute kept by noOverwrite makes it a partial success: 207 (ETSI 005_02; Orion-LD: 204).
    kept = client.post("/entityOperations/update", params={"options": "noOverwrite"},
                       json=[{"id": ident, "a": 9, "c": 3}])
    assert kept.status_code == 207 and [e["entityId"] for e in kept.json()["errors"]] == [ident]
    assert key_values(client, ident) == {"id": ident, "type": "Thing", "a": 2, "b": 2, "c": 3}
    response = client.post("/entityOperations/update", json=[{"id": missing, "a": 1}])
    assert response.status_code == 207
    assert response.json()["errors"] == [{"entityId": missing, "error": {
        "type": ERRORS + "ResourceNotFound", "title": "Entity not found",
        "detail": "Cannot update a non-existing entity", "status": 404}}]


def test_batch_delete(client: httpx.Client) -> None:
    a, b, missing = new_id(), new_id(), new_id()
    client.post("/entityOperations/create", json=[entity(a), entity(b)])
    # The same id twice: the second is not found, 207 (ETSI 006_04_01; Orion-LD answers 204).
    twice = client.post("/entityOperations/delete", json=[a, a])
    assert twice.status_code == 207 and twice.json()["success"] == [a]
    assert [e["entityId"] for e in twice.json()["errors"]] == [a]
    response = client.post("/entityOperations/delete", json=[b, missing],
                           headers={"Content-Type": "application/ld+json"})
    assert response.status_code == 207
    body = response.json()
    assert body["success"] == [b]
    assert body["errors"][0]["entityId"] == missing
    assert body["errors"][0]["error"]["type"] == ERRORS + "ResourceNotFound"
    assert body["errors"][0]["error"]["status"] == 404
    assert_problem(client.post("/entityOperations/delete", json={"id": a}), 400, "BadRequestData")
    assert_problem(client.post("/entityOperations/delete", json=[1]), 400, "BadRequestData")
    assert_problem(client.post("/entityOperations/delete", json=["nocolon"]), 400, "BadRequestData")


def test_batch_context_placement_errors(client: httpx.Client) -> None:
    ld = {"Content-Type": "application/ld+json"}
    assert_problem(client.post("/entityOperations/upsert", json=[entity(new_id())],
                               headers={**ld, "Link": '<http://x.org/c.jsonld>'}), 400, "BadRequestData",
                   "invalid combination of HTTP headers Content-Type and Link")
    good = {**entity(new_id()), "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"}
    bare = entity(new_id())
    response = client.post("/entityOperations/upsert", json=[good, bare], headers=ld)
    assert response.status_code == 207
    assert response.json()["success"] == [good["id"]]
    assert response.json()["errors"][0]["error"]["title"] == "@context missing in JSON payload"
    response = client.post("/entityOperations/upsert", json=[good])
    assert response.status_code == 207
    assert response.json()["errors"][0]["error"]["title"].startswith("Mismatch between /Content-Type/")


def test_batch_responses_are_json_without_link_even_for_ld_accept(client: httpx.Client) -> None:
    response = client.post("/entityOperations/create", json=[entity(new_id())],
                           headers={"Accept": "application/ld+json"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert "link" not in response.headers


def test_concurrent_upserts_lose_no_update_and_never_500(client: httpx.Client, broker) -> None:
    ids = [new_id("Conc") for _ in range(50)]
    client.post("/entityOperations/upsert", json=[entity(i, "Conc") for i in ids])

    def worker(n: int) -> list[int]:
        statuses = []
        with httpx.Client(base_url=broker.url + "/ngsi-ld/v1", timeout=60) as own:
            for round_ in range(5):
                batch = [{"id": i, "type": "Conc", f"w{n}": {"type": "Property", "value": round_}}
                         for i in ids]
                statuses.append(own.post("/entityOperations/upsert", params={"options": "update"},
                                         json=batch).status_code)
        return statuses

    with ThreadPoolExecutor(6) as pool:
        statuses = [s for result in pool.map(worker, range(6)) for s in result]
    assert set(statuses) == {204}
    for ident in ids[:10]:
        kv = key_values(client, ident)
        assert all(kv[f"w{n}"] == 4 for n in range(6)), kv
