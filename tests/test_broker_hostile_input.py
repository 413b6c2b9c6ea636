"""Hostile input never freezes the broker, never commits then errors, never answers 500 (issue 12).

Regexes (q `~=`, idPattern, subscription idPattern) run in linear time; ids with invisible
characters are 400 and IRIs are %-encoded in headers; over-nested values and out-of-range positions
fail their own entity only; malformed query parameters and Link headers are 400.
"""

from __future__ import annotations

import threading
from urllib.parse import quote

import httpx
import pytest

from tests.broker_fixtures import BASE, assert_problem, entity, link, new_id

pytestmark = pytest.mark.integration
LD = {"Content-Type": "application/ld+json"}
# `(a+)+$` against "aaa...a!" backtracks 2^n times in a backtracking engine (Python's re: hours).
EVIL = "(a+)+$"
VICTIM = "a" * 40 + "!"


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


# -- regexes: linear time --------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_catastrophic_q_regex_completes_while_other_requests_are_answered(client: httpx.Client,
                                                                          broker) -> None:
    kind = f"Evil{new_id()[-8:]}"
    victim, plain = new_id(kind), new_id(kind)
    assert client.post("/entityOperations/upsert", json=[
        entity(victim, kind, name=VICTIM), entity(plain, kind, name="aaaa")]).status_code == 201
    answers: dict[str, httpx.Response] = {}

    def evil() -> None:
        with httpx.Client(base_url=broker.url + BASE, timeout=25) as other:
            answers["q"] = other.get("/entities", params={"type": kind, "q": f'name~="{EVIL}"'})

    thread = threading.Thread(target=evil)
    thread.start()
    # While the pathological query runs (or after it), a simple read is answered.
    answers["get"] = client.get(f"/entities/{plain}")
    thread.join()
    assert answers["get"].status_code == 200
    assert answers["q"].status_code == 200, answers["q"].text
    assert [e["id"] for e in answers["q"].json()] == [plain]  # "aaaa" ends in a's; VICTIM ends in "!"


@pytest.mark.timeout(30)
def test_catastrophic_id_pattern_gives_correct_results(client: httpx.Client) -> None:
    prefix = f"urn:ngsi-ld:Evil{new_id()[-8:]}:"
    ids = [prefix + "a" * 40 + "!", prefix + "a" * 40]
    assert client.post("/entityOperations/upsert", json=[entity(i, "Evil") for i in ids]).status_code == 201
    got = client.get("/entities", params={"idPattern": f"^{prefix}{EVIL}", "type": "Evil"})
    assert got.status_code == 200, got.text
    assert [e["id"] for e in got.json()] == [ids[1]]
    body = {"type": "Query", "entities": [{"idPattern": f"^{prefix}{EVIL}", "type": "Evil"}]}
    assert [e["id"] for e in client.post("/entityOperations/query", json=body).json()] == [ids[1]]
    q_got = client.get("/entities", params={"type": "Evil", "q": 'name~="x"', "idPattern": prefix})
    assert q_got.status_code == 200 and q_got.json() == []


@pytest.mark.timeout(30)
def test_subscription_with_catastrophic_id_pattern_does_not_stall_writes(client: httpx.Client) -> None:
    sub = {"type": "Subscription", "entities": [{"type": "Evil", "idPattern": EVIL}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none"}}}
    created = client.post("/subscriptions", json=sub)
    assert created.status_code == 201, created.text
    try:
        ident = "urn:ngsi-ld:Evil:" + "a" * 40 + "!"
        assert client.post("/entityOperations/upsert", json=[entity(ident, "Evil", n=1)]).status_code in (201, 204)
        assert client.patch(f"/entities/{ident}/attrs", json={"n": 2}).status_code == 204
        assert client.get(f"/entities/{ident}").json()["n"]["value"] == 2
    finally:
        client.delete(created.headers["location"].removeprefix(BASE))


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=a)b", "(?<!a)b"])
def test_patterns_needing_backtracking_are_400_with_the_reason(client: httpx.Client, pattern: str) -> None:
    body = assert_problem(client.get("/entities", params={"type": "T", "idPattern": pattern}), 400,
                          "BadRequestData", "Invalid idPattern")
    assert "backreferences and lookaround assertions are not supported" in body["detail"]
    assert_problem(client.get("/entities", params={"type": "T", "q": f'name~="{pattern}"'}), 400,
                   "BadRequestData", "Invalid Q-Filter")
    sub = {"type": "Subscription", "entities": [{"type": "T", "idPattern": pattern}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none"}}}
    assert_problem(client.post("/subscriptions", json=sub), 400, "BadRequestData", "Invalid idPattern")


# -- ids: never committed then failed -------------------------------------------------------------
def test_non_ascii_id_is_created_once_with_a_percent_encoded_location(client: httpx.Client) -> None:
    ident = f"urn:ngsi-ld:Stop:Бургас-{new_id()[-6:]}"
    created = client.post("/entities", json=entity(ident, "Stop", name="Бургас"))
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location == f"{BASE}/entities/" + quote(ident, safe=":")
    assert location.isascii()
    assert client.get(location.removeprefix(BASE)).json()["id"] == ident
    assert_problem(client.post("/entities", json=entity(ident, "Stop")), 409, "AlreadyExists")


def test_non_ascii_subscription_id_gets_a_percent_encoded_location(client: httpx.Client) -> None:
    ident = f"urn:ngsi-ld:Subscription:Бургас-{new_id()[-6:]}"
    sub = {"id": ident, "type": "Subscription", "entities": [{"type": "Stop"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none"}}}
    created = client.post("/subscriptions", json=sub)
    assert created.status_code == 201, created.text
    assert created.headers["location"].isascii()
    assert client.get(f"/subscriptions/{ident}").json()["id"] == ident
    assert client.delete(f"/subscriptions/{ident}").status_code == 204


# ETSI ngsi-ld-test-suite 451_02: invisible, bidi-control and non-characters are not in an id.
@pytest.mark.parametrize("codepoint", [0x0000, 0x001F, 0x202E, 0x200B, 0xFEFF, 0x2028, 0x00A0, 0x003C,
                                       0xFE0F, 0xE0100, 0xFDD0, 0xFFFE, 0x115F, 0x3164, 0xFFA0, 0x2800])
def test_ids_with_invisible_characters_are_400_and_not_stored(client: httpx.Client, codepoint: int) -> None:
    ident = f"urn:ngsi-ld:Vehicle:A{chr(codepoint)}B{new_id()[-6:]}"
    assert_problem(client.post("/entities", json=entity(ident, "Vehicle")), 400, "BadRequestData")
    batch = client.post("/entityOperations/upsert", json=[entity(ident, "Vehicle")])
    assert batch.status_code == 207 and batch.json()["errors"][0]["error"]["status"] == 400
    assert client.get("/entities", params={"type": "Vehicle", "q": "!nothing", "limit": 1000}).status_code == 200
    assert all(e["id"] != ident for e in client.get("/entities", params={"type": "Vehicle",
                                                                          "limit": 1000}).json())


def test_non_ascii_relationship_object_is_still_accepted(client: httpx.Client) -> None:  # 451_02_07
    ident = new_id("Vehicle")
    body = {"id": ident, "type": "Vehicle", "isParked": {"type": "Relationship",
                                                         "object": "urn:ngsi-ld:Ciudad:París"}}
    assert client.post("/entities", json=body).status_code == 201
    bad = {**body, "id": new_id("Vehicle"), "isParked": {"type": "Relationship", "object": "urn:a\u202eb"}}
    assert_problem(client.post("/entities", json=bad), 400, "BadRequestData")


# -- nesting: one entity's error, not the batch's --------------------------------------------------
def test_over_nested_value_fails_its_own_entity_in_a_batch(client: httpx.Client) -> None:
    kind = f"Deep{new_id()[-8:]}"
    good = [entity(new_id(kind), kind, n=i) for i in range(100)]
    deep_id = new_id(kind)
    batch = [*good[:50], entity(deep_id, kind, v=nested(300)), *good[50:]]
    answer = client.post("/entityOperations/upsert", json=batch)
    assert answer.status_code == 207, answer.text
    assert sorted(answer.json()["success"]) == sorted(e["id"] for e in good)
    [error] = answer.json()["errors"]
    assert error["entityId"] == deep_id and error["error"]["status"] == 400
    assert "nested deeper" in error["error"]["detail"]
    count = client.get("/entities", params={"type": kind, "count": "true", "limit": 0})
    assert count.headers["ngsild-results-count"] == "100"


@pytest.mark.parametrize("value", [nested(300), {"type": "Property", "value": nested(100)},
                                   {"type": "Property", "value": 1, "sub": {"value": nested(100)}},
                                   {"type": "JsonProperty", "json": nested(100)}])
def test_over_nested_values_are_400_on_single_entity_endpoints(client: httpx.Client, value: object) -> None:
    ident = new_id("Deep")
    body = assert_problem(client.post("/entities", json={"id": ident, "type": "Deep", "v": value}), 400,
                          "BadRequestData")
    assert "nested deeper" in body["detail"]
    assert client.post("/entities", json=entity(ident, "Deep", n=1)).status_code == 201
    assert_problem(client.patch(f"/entities/{ident}/attrs", json={"v": value}), 400, "BadRequestData")
    assert_problem(client.post(f"/entities/{ident}/attrs", json={"v": value}), 400, "BadRequestData")
    assert_problem(client.put(f"/entities/{ident}/attrs/n", json=value if isinstance(value, dict)
                              else {"value": value}), 400, "BadRequestData")
    assert client.get(f"/entities/{ident}").json()["n"]["value"] == 1


def test_values_nested_within_the_limit_round_trip(client: httpx.Client) -> None:
    ident = new_id("Deep")
    assert client.post("/entities", json=entity(ident, "Deep", v=nested(60))).status_code == 201
    assert client.get(f"/entities/{ident}").json()["v"]["value"] == nested(60)


# -- GeoJSON on write ------------------------------------------------------------------------------
@pytest.mark.parametrize("coordinates", [[23.4, 999], [1e308, 42.5], [-181, 0], [0, -90.5]])
def test_out_of_range_positions_are_400_and_their_batch_entity_fails_alone(client: httpx.Client,
                                                                         coordinates: list) -> None:
    kind = f"Geo{new_id()[-8:]}"
    bad = {"id": new_id(kind), "type": kind,
           "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": coordinates}}}
    body = assert_problem(client.post("/entities", json=bad), 400, "BadRequestData", "Invalid GeoJSON")
    assert "latitude" in body["detail"]
    ring = [[27.4, 42.4], [27.5, 42.4], coordinates, [27.4, 42.4]]
    polygon = {**bad, "id": new_id(kind), "location": {"type": "GeoProperty",
                                                       "value": {"type": "Polygon", "coordinates": [ring]}}}
    assert_problem(client.post("/entities", json=polygon), 400, "BadRequestData", "Invalid GeoJSON")
    good = entity(new_id(kind), kind, n=1)
    answer = client.post("/entityOperations/upsert", json=[bad, good])
    assert answer.status_code == 207
    assert answer.json()["success"] == [good["id"]]
    assert answer.json()["errors"][0]["entityId"] == bad["id"]


# -- query parameters and headers -------------------------------------------------------------------
def test_sql_looking_attrs_are_400_and_change_nothing(client: httpx.Client) -> None:
    kind = f"Sql{new_id()[-8:]}"
    ident = new_id(kind)
    client.post("/entities", json=entity(ident, kind, name="x"))
    for attrs in ('name") OR 1=1 --', "name'--", 'a"b'):
        assert_problem(client.get("/entities", params={"type": kind, "attrs": attrs}), 400, "BadRequestData")
        assert_problem(client.post("/entityOperations/query", json={"type": "Query", "attrs": [attrs]}), 400,
                       "BadRequestData")
    assert [e["id"] for e in client.get("/entities", params={"type": kind, "attrs": "name"}).json()] == [ident]


def test_attrs_whose_iri_has_a_quote_are_matched_exactly(client: httpx.Client) -> None:
    # A context may map a plain name to an IRI a JSON path cannot quote: the SQL still binds it.
    ctx = {"odd": 'https://example.org/a"b', "odd2": "https://example.org/a\\c"}
    kind = f"Odd{new_id()[-8:]}"
    ident = new_id(kind)
    body = {"id": ident, "type": kind, "odd": 1, "@context": ctx}
    assert client.post("/entities", json=body, headers=LD).status_code == 201
    query = {"type": "Query", "entities": [{"type": kind}], "attrs": ["odd"], "@context": ctx}
    got = client.post("/entityOperations/query", json=query, headers=LD)
    assert got.status_code == 200, got.text
    assert [e["id"] for e in got.json()] == [ident]
    query["attrs"] = ["odd2"]
    assert client.post("/entityOperations/query", json=query, headers=LD).json() == []


@pytest.mark.parametrize("offset", [str(2**63), str(2**64 + 5), "99999999999999999999999"])
def test_huge_offsets_are_400(client: httpx.Client, offset: str) -> None:
    assert_problem(client.get("/entities", params={"type": "T", "offset": offset}), 400, "BadRequestData")
    assert_problem(client.get("/subscriptions", params={"offset": offset}), 400, "BadRequestData")
    assert_problem(client.get("/subscriptions", params={"offset": "²"}), 400, "BadRequestData")


@pytest.mark.parametrize("url", ["http://[::1", "http://[::1]:99999999/c", "http://[zz]/c"])
def test_unparsable_link_urls_are_400(client: httpx.Client, url: str) -> None:
    assert_problem(client.get("/entities", params={"type": "T"}, headers=link(url)), 400, "BadRequestData")
    assert_problem(client.post("/entities", json=entity(new_id()), headers=link(url)), 400, "BadRequestData")
    body = {**entity(new_id()), "@context": url}
    assert_problem(client.post("/entities", json=body, headers=LD), 400, "BadRequestData")


def test_deeply_nested_context_is_400(client: httpx.Client) -> None:
    deep: object = {"name": "https://example.org/name"}
    for _ in range(500):
        deep = [deep]
    assert_problem(client.post("/entities", json={**entity(new_id()), "@context": deep}, headers=LD), 400,
                   "BadRequestData", "Invalid @context")
    deep_def: object = "https://example.org/x"
    for _ in range(500):
        deep_def = {"@id": "https://example.org/x", "@context": deep_def}
    assert_problem(client.post("/entities", json={**entity(new_id()), "@context": {"x": deep_def}},
                               headers=LD), 400, "BadRequestData", "Invalid @context")
    assert_problem(client.post("/jsonldContexts", json={"@context": deep}), 400, "BadRequestData")


@pytest.mark.timeout(30)
def test_catastrophic_regex_through_the_service_map_proxy(client: httpx.Client, broker) -> None:
    # The service's unauthenticated /map proxy forwards q to the broker (here over real HTTP).
    import asyncio

    from fastapi import FastAPI

    from adapter.ngsi.client import BrokerClient
    from adapter.service.map import map_router

    kind = f"Evil{new_id()[-8:]}"
    plain = new_id(kind)
    assert client.post("/entityOperations/upsert", json=[
        entity(new_id(kind), kind, name=VICTIM), entity(plain, kind, name="aaaa")]).status_code == 201

    async def through_proxy() -> httpx.Response:
        async with httpx.AsyncClient() as to_broker:
            app = FastAPI()
            app.include_router(map_router(lambda: BrokerClient(broker.url, http=to_broker), http=to_broker))
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as svc:
                return await svc.get("/map/ngsi-ld/v1/entities", params={"type": kind, "q": f'name~="{EVIL}"'})

    answer = asyncio.run(through_proxy())
    assert answer.status_code == 200, answer.text
    assert [e["id"] for e in answer.json()] == [plain]


@pytest.mark.parametrize(("key", "value"), [("X-Ok", "a\r\nInjected: 1"), ("X Bad", "v"), ("X-Ok", "Бургас"),
                                            ("X-Ok", "\u0000")])
def test_receiver_info_that_no_header_can_carry_is_400(client: httpx.Client, key: str, value: str) -> None:
    sub = {"type": "Subscription", "entities": [{"type": "T"}],
           "notification": {"endpoint": {"uri": "http://127.0.0.1:9/none",
                                         "receiverInfo": [{"key": key, "value": value}]}}}
    assert_problem(client.post("/subscriptions", json=sub), 400, "BadRequestData")


@pytest.mark.parametrize("body", [{"type": "Query", "entities": 2.5}, {"type": "Query", "entities": [{"type": [1]}]},
                                  {"type": "Query", "entities": [{"type": "T", "idPattern": 5}]},
                                  {"type": "Query", "entities": [{"type": "T"}], "geoQ": [1, 2]},
                                  {"type": "Query", "entities": [{"type": "T"}],
                                   "geoQ": {"georel": 1, "geometry": "Point", "coordinates": [27, 42]}}])
def test_query_bodies_of_the_wrong_shape_are_400(client: httpx.Client, body: dict) -> None:
    assert_problem(client.post("/entityOperations/query", json=body), 400, "BadRequestData")


@pytest.mark.parametrize("attr", [{"type": ["Property"], "value": 1}, {"type": {"a": 1}, "object": "urn:x"},
                                  {"type": "GeoProperty", "value": {"type": ["Point"], "coordinates": [1, 2]}}])
def test_attribute_types_that_are_not_strings_are_400(client: httpx.Client, attr: object) -> None:
    ident = new_id()
    assert_problem(client.post("/entities", json={"id": ident, "type": "T", "a": attr}), 400, "BadRequestData")
    assert client.post("/entities", json=entity(ident, a=1)).status_code == 201
    assert_problem(client.patch(f"/entities/{ident}", json={"a": attr}), 400, "BadRequestData")
    assert_problem(client.put(f"/entities/{ident}/attrs/a", json=attr), 400, "BadRequestData")
