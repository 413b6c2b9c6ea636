"""Embedded broker conformance: queries (reference summary items 11-13, 15; section 2 GET /entities; section 6)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.broker_fixtures import assert_problem, entity, link

pytestmark = pytest.mark.integration


@pytest.fixture
def kind(client: httpx.Client) -> str:
    """A fresh entity type with 25 entities n=0..24, located along a line in Burgas."""
    name = f"Q{uuid.uuid4().hex[:8]}"
    batch = []
    for n in range(25):
        body = entity(f"urn:ngsi-ld:{name}:{n:03d}", name, n=n, label=f"item {n}")
        body["location"] = {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [27.40 + n * 0.01, 42.50]}}
        body["owner"] = {"type": "Relationship", "object": f"urn:ngsi-ld:Owner:{n % 3}"}
        batch.append(body)
    assert client.post("/entityOperations/create", json=batch).status_code == 201
    return name


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [e["id"] for e in response.json()]


def test_too_broad_query_is_400(client: httpx.Client) -> None:
    body = assert_problem(client.get("/entities"), 400, "BadRequestData", "Too broad query")
    assert body["detail"].startswith("Need at least one of: entity-id, entity-type")
    assert client.get("/entities", params={"local": "true", "limit": 1}).status_code == 200


def test_default_limit_20_creation_order_and_offsets(client: httpx.Client, kind: str) -> None:
    page = ids(client.get("/entities", params={"type": kind}))
    assert page == [f"urn:ngsi-ld:{kind}:{n:03d}" for n in range(20)]
    assert ids(client.get("/entities", params={"type": kind, "offset": 20, "limit": 10})) == [
        f"urn:ngsi-ld:{kind}:{n:03d}" for n in range(20, 25)]
    past = client.get("/entities", params={"type": kind, "offset": 100})
    assert (past.status_code, past.json()) == (200, [])
    assert "link" not in past.headers


@pytest.mark.parametrize(("params", "title"), [
    ({"limit": "1001"}, "Invalid value for URI parameter /limit/"),
    ({"limit": "-1"}, "Bad value for URI parameter /limit/"),
    ({"limit": "0"}, "Invalid value for URI parameter /limit/"),
])
def test_limit_errors(client: httpx.Client, kind: str, params: dict, title: str) -> None:
    body = assert_problem(client.get("/entities", params={"type": kind, **params}), 400, "BadRequestData", title)
    if params["limit"] == "1001":
        assert body["detail"] == "must be an integer value <= 1000"


def test_count_header(client: httpx.Client, kind: str) -> None:
    response = client.get("/entities", params={"type": kind, "count": "true", "limit": 5})
    assert response.headers["ngsild-results-count"] == "25"
    assert len(response.json()) == 5
    zero = client.get("/entities", params={"type": kind, "count": "true", "limit": 0})
    assert (zero.json(), zero.headers["ngsild-results-count"]) == ([], "25")
    assert client.get("/entities", params={"type": kind, "options": "count", "q": "n<3"}
                      ).headers["ngsild-results-count"] == "3"


def test_id_idpattern_type_lists_and_attrs(client: httpx.Client, kind: str) -> None:
    wanted = [f"urn:ngsi-ld:{kind}:001", f"urn:ngsi-ld:{kind}:003"]
    # ids alone are a too-broad query (GS CIM 009 5.7.2, ETSI 019_03_05; Orion-LD accepts them)
    assert_problem(client.get("/entities", params={"id": ",".join(wanted)}), 400, "BadRequestData")
    assert ids(client.get("/entities", params={"id": ",".join(wanted), "type": kind})) == wanted
    assert ids(client.get("/entities", params={"idPattern": f"{kind}:00[12]$"})) == [
        f"urn:ngsi-ld:{kind}:001", f"urn:ngsi-ld:{kind}:002"]
    assert len(ids(client.get("/entities", params={"type": f"{kind},NoSuchType", "limit": 100}))) == 25
    projected = client.get("/entities", params={"type": kind, "attrs": "n", "limit": 1}).json()[0]
    assert set(projected) == {"id", "type", "n"}
    assert ids(client.get("/entities", params={"type": kind, "attrs": "nothere"})) == []


@pytest.mark.parametrize(("q", "expected"), [
    ("n==3", [3]), ("n>22", [23, 24]), ("n==1,2", [1, 2]), ("n==3..5", [3, 4, 5]),
    ("n<2|n>23", [0, 1, 24]), ("n>=2;n<=3", [2, 3]), ('label=="item 7"', [7]), ("label~=item 1.", list(range(10, 20))),
    ("owner==urn:ngsi-ld:Owner:1;n<10", [1, 4, 7]), ("n!=0;n<3", [1, 2]), ("nothere", []), ("!nothere;n<1", [0]),
])
def test_q_filters(client: httpx.Client, kind: str, q: str, expected: list[int]) -> None:
    got = ids(client.get("/entities", params={"type": kind, "q": q, "limit": 100}))
    assert got == [f"urn:ngsi-ld:{kind}:{n:03d}" for n in expected]


def test_q_syntax_error_is_400(client: httpx.Client, kind: str) -> None:
    assert_problem(client.get("/entities", params={"type": kind, "q": "n=="}), 400, "BadRequestData")


def test_geo_queries(client: httpx.Client, kind: str) -> None:
    near = client.get("/entities", params={"type": kind, "georel": "near;maxDistance==1000",
                                           "geometry": "Point", "coordinates": "[27.40,42.50]"})
    assert ids(near) == [f"urn:ngsi-ld:{kind}:000", f"urn:ngsi-ld:{kind}:001"]
    within = client.get("/entities", params={
        "type": kind, "georel": "within", "geometry": "Polygon", "count": "true",
        "coordinates": "[[[27.445,42.4],[27.475,42.4],[27.475,42.6],[27.445,42.6],[27.445,42.4]]]"})
    assert ids(within) == [f"urn:ngsi-ld:{kind}:{n:03d}" for n in (5, 6, 7)]
    assert within.headers["ngsild-results-count"] == "3"
    far = client.get("/entities", params={"type": kind, "georel": "near;minDistance==15000",
                                          "geometry": "Point", "coordinates": "[27.40,42.50]"})
    assert ids(far) == [f"urn:ngsi-ld:{kind}:{n:03d}" for n in range(19, 25)]  # 0.01 deg ~ 821 m
    assert_problem(client.get("/entities", params={"type": kind, "georel": "within", "geometry": "Polygon"}),
                   400, "BadRequestData", "Incomplete geometry")


def test_geojson_feature_collection(client: httpx.Client, kind: str) -> None:
    response = client.get("/entities", params={"type": kind, "limit": 2},
                          headers={"Accept": "application/geo+json"})
    assert response.headers["content-type"] == "application/geo+json"
    body = response.json()
    assert body["type"] == "FeatureCollection"
    feature = body["features"][0]
    assert feature["type"] == "Feature" and feature["id"] == f"urn:ngsi-ld:{kind}:000"
    assert feature["geometry"] == {"type": "Point", "coordinates": [27.40, 42.50]}
    assert feature["properties"]["n"] == {"type": "Property", "value": 0}


def test_post_query_matches_get(client: httpx.Client, kind: str) -> None:
    response = client.post("/entityOperations/query", params={"limit": 3, "count": "true"}, json={
        "type": "Query", "entities": [{"type": kind}], "q": "n>=10", "attrs": ["n"]})
    assert ids(response) == [f"urn:ngsi-ld:{kind}:{n:03d}" for n in (10, 11, 12)]
    assert response.headers["ngsild-results-count"] == "15"
    geo = client.post("/entityOperations/query", json={
        "type": "Query", "entities": [{"type": kind}],
        "geoQ": {"georel": "near;maxDistance==500", "geometry": "Point", "coordinates": [27.41, 42.50]}})
    assert ids(geo) == [f"urn:ngsi-ld:{kind}:001"]


def test_query_with_another_context_finds_nothing(client: httpx.Client, kind: str, broker) -> None:
    hosted = client.post("/jsonldContexts", json={"@context": {kind: f"http://other.example/{kind}"}})
    assert hosted.status_code == 201
    response = client.get("/entities", params={"type": kind}, headers=link(broker.url + hosted.headers["location"]))
    assert response.json() == []


def test_output_options_apply_to_queries(client: httpx.Client, kind: str) -> None:
    kv = client.get("/entities", params={"type": kind, "limit": 1, "options": "keyValues"}).json()[0]
    assert kv["n"] == 0 and kv["owner"] == "urn:ngsi-ld:Owner:0"
    ld = client.get("/entities", params={"type": kind, "limit": 1}, headers={"Accept": "application/ld+json"})
    assert ld.json()[0]["@context"] == "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld"


def test_types_and_attributes(client: httpx.Client, kind: str) -> None:
    assert kind in client.get("/types").json()["typeList"]
    info = client.get(f"/types/{kind}").json()
    assert info["type"] == "EntityTypeInfo" and info["entityCount"] == 25
    assert {a["attributeName"] for a in info["attributeDetails"]} == {"n", "label", "location", "owner"}
    attrs = client.get("/attributes").json()
    assert attrs["type"] == "AttributeList" and "owner" in attrs["attributeList"]
    detail = client.get("/attributes/owner").json()
    assert detail["attributeTypes"] == ["Relationship"] and kind in detail["typeNames"]
    assert_problem(client.get("/types/NoSuchTypeAnywhere"), 404, "ResourceNotFound")
