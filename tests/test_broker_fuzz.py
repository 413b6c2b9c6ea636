"""Fuzzing the broker's HTTP API over loopback (issue 12): random methods, paths, parameters, headers
and bodies, built from the shapes NGSI-LD requests take and from hostile text.

Every answer must be below 500, every error a ProblemDetails (application/json with type and title);
afterwards the broker still answers and the entities preloaded in a tenant the fuzzer never names
are unchanged. The one 5xx allowed is 504 LdContextNotAvailable: some requests name a context on a
port where nothing listens, and the broker reports that upstream failure as Orion-LD does.
Bounded: a fixed number of examples (a few seconds). Under CI the examples are derandomized (the
same every run, so a merge is never blocked by chance); locally every run explores new ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ngsild_broker import BrokerSettings, EmbeddedBroker
from tests.broker_fixtures import BASE, CORE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
KEEP_TENANT = "preloaded"
DEAD = "http://127.0.0.1:9"  # nothing listens: downloads and notifications fail at once

NASTY = ["", " ", "\u0000", "\u202e", "\ufeff", "\u200b", "Бургас", "😀", "a" * 300, "(a+)+$", r"(a)\1",
         '") OR 1=1 --', "'; DROP TABLE entities; --", "%00", "../../etc/passwd", "file:///etc/passwd",
         "http://[::1", "9" * 30, "-1", "1e308", "NaN", "null", "urn:ngsi-ld:Fuzz:1", "a,b", "a;b|c"]
text = st.one_of(st.sampled_from(NASTY), st.text(max_size=40))
ids = st.one_of(st.sampled_from(["urn:ngsi-ld:Fuzz:1", "urn:ngsi-ld:Fuzz:2", "urn:ngsi-ld:Stop:Бургас-9",
                                 "http://a.b/c/E1", "urn:ngsi-ld:Subscription:f1"]),
                st.builds(lambda s: f"urn:ngsi-ld:Fuzz:{s}", st.text(max_size=12)), text)
names = st.one_of(st.sampled_from(["name", "temperature", "location", "rel", "type", "id", "@context",
                                   "createdAt", "observedAt", "value", "https://x.org/a"]), text)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**63, 2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(names, inner, max_size=4)),
                           max_leaves=12)
positions = st.lists(st.one_of(st.floats(-200, 200), st.sampled_from([999, 1e308, -1e308, 0])),
                     min_size=1, max_size=3)
geometries = st.one_of(
    st.fixed_dictionaries({"type": st.just("Point"), "coordinates": positions}),
    st.fixed_dictionaries({"type": st.sampled_from(["Polygon", "LineString", "Bogus"]),
                           "coordinates": st.lists(st.lists(positions, max_size=5), max_size=2)}))
attributes = st.one_of(
    json_values,
    st.builds(lambda v: {"type": "Property", "value": v}, json_values),
    st.builds(lambda o: {"type": "Relationship", "object": o}, ids),
    st.builds(lambda g: {"type": "GeoProperty", "value": g}, geometries),
    st.builds(lambda d: {"type": "Property", "value": d}, st.integers(50, 400).map(
        lambda n: orjson.loads(b"[" * n + b"]" * n))))
entities = st.builds(lambda i, t, a: {"id": i, "type": t, **a}, ids,
                     st.one_of(st.sampled_from(["Fuzz", "Stop"]), text, st.lists(text, max_size=2)),
                     st.dictionaries(names, attributes, max_size=4))
contexts = st.one_of(st.sampled_from([CORE, f"{DEAD}/c.jsonld", "http://[::1", "file:///../secret.jsonld",
                                      "nocolon"]),
                     st.dictionaries(names, st.one_of(text, st.just({"@id": "https://x.org/a"})), max_size=3),
                     json_values)
subscriptions = st.fixed_dictionaries(
    {"type": st.just("Subscription"),
     "entities": st.lists(st.fixed_dictionaries({"type": st.sampled_from(["Fuzz", "Stop"])},
                                                optional={"idPattern": text, "id": ids}), max_size=2),
     "notification": st.just({"endpoint": {"uri": f"{DEAD}/notify"}})},
    optional={"q": text, "id": ids, "watchedAttributes": st.lists(names, max_size=2)})
bodies = st.one_of(
    st.none(), entities, st.lists(entities, max_size=4), subscriptions, json_values,
    st.builds(lambda e, c: {**e, "@context": c}, entities, contexts),
    st.builds(lambda q: {"type": "Query", "entities": [{"type": "Fuzz", "idPattern": q}], "q": q}, text),
    st.fixed_dictionaries({"type": st.just("Query")}, optional={
        "entities": st.one_of(json_values, st.lists(st.dictionaries(
            st.sampled_from(["id", "type", "idPattern"]), st.one_of(text, json_values), max_size=3), max_size=2)),
        "attrs": st.one_of(json_values, st.lists(names, max_size=2)), "q": st.one_of(text, json_values),
        "geoQ": st.one_of(json_values, st.dictionaries(st.sampled_from(["georel", "geometry", "coordinates",
                                                                         "geoproperty"]), json_values))}),
    st.binary(max_size=64))


def _segment(value: str) -> str:
    return quote(value, safe=":/")


paths = st.one_of(
    st.sampled_from(["/entities", "/entityOperations/create", "/entityOperations/upsert",
                     "/entityOperations/update", "/entityOperations/delete", "/entityOperations/query",
                     "/entityOperations/bogus", "/subscriptions", "/types", "/attributes", "/jsonldContexts",
                     "/nowhere"]),
    st.builds(lambda i: f"/entities/{_segment(i)}", ids),
    st.builds(lambda i: f"/entities/{_segment(i)}/attrs", ids),
    st.builds(lambda i, a: f"/entities/{_segment(i)}/attrs/{_segment(a)}", ids, names),
    st.builds(lambda i: f"/subscriptions/{_segment(i)}", ids),
    st.builds(lambda t: f"/types/{_segment(t)}", text),
    st.builds(lambda t: f"/jsonldContexts/{_segment(t)}", text))
PARAMS = ["id", "type", "idPattern", "attrs", "q", "georel", "geometry", "coordinates", "geoproperty",
          "limit", "offset", "count", "options", "format", "local", "details", "kind", "lang", "bogus"]
param_values = st.one_of(text, st.sampled_from(["Fuzz", "near;maxDistance==1000", "Point", "[27.4,42.5]",
                                                "[[[27,42],[28,42],[28,43],[27,42]]]", "true", "0", "5",
                                                "keyValues", "sysAttrs,count", 'name~="(a+)+$"',
                                                "temperature>2", str(2**63)]))
params = st.dictionaries(st.sampled_from(PARAMS), param_values, max_size=4)
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
                      max_size=40).map(str.strip)  # the client refuses surrounding whitespace
headers = st.fixed_dictionaries({}, optional={
    "Content-Type": st.sampled_from(["application/json", "application/ld+json", "application/merge-patch+json",
                                     "text/plain", "application/json; charset=utf-8"]),
    "Accept": st.sampled_from(["application/json", "application/ld+json", "application/geo+json", "*/*",
                               "text/html", "application/json;q=0"]),
    "Link": st.one_of(st.sampled_from([f'<{CORE}>', f'<{DEAD}/c.jsonld>', "<http://[::1>",
                                       "<file:///../secret.jsonld>", "nonsense"]), header_text),
    "NGSILD-Tenant": st.one_of(st.sampled_from(["fuzz", "FUZZ", "a.b", "x" * 60]), header_text.filter(
        lambda t: t.strip().lower() != KEEP_TENANT)),
})


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[tuple[EmbeddedBroker, list[dict[str, Any]]]]:
    settings_ = BrokerSettings(port=0, context_timeout=1.0, context_attempts=1)
    with EmbeddedBroker(settings_) as running:
        keep = [{"id": f"urn:ngsi-ld:Keep:{n}", "type": "Keep",
                 "name": {"type": "Property", "value": f"kept {n}"},
                 "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [27.4 + n / 100, 42.5]}}}
                for n in range(20)]
        answer = httpx.post(running.url + BASE + "/entityOperations/upsert", json=keep,
                            headers={"NGSILD-Tenant": KEEP_TENANT})
        assert answer.status_code == 201, answer.text
        yield running, keep


@pytest.fixture(scope="module")
def http(fuzzed: tuple[EmbeddedBroker, Any]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzzed[0].url + BASE, timeout=30) as client:
        yield client


def _check(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    upstream = response.status_code == 504 and "/LdContextNotAvailable" in response.text
    assert response.status_code < 500 or upstream, f"{where}: {response.text[:500]}"
    if response.status_code >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), where
        problem = response.json()
        assert isinstance(problem, dict) and problem.get("type") and problem.get("title"), \
            f"{where}: {response.text[:500]}"


@settings(max_examples=300, deadline=None, database=None, derandomize=bool(os.environ.get("CI")),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large])
@given(method=st.sampled_from(["GET", "POST", "PATCH", "PUT", "DELETE"]), path=paths, query=params,
       head=headers, body=bodies)
def test_fuzzed_requests_never_fail_the_broker(http: httpx.Client, method: str, path: str,
                                               query: dict[str, str], head: dict[str, str], body: Any) -> None:
    # json, not orjson: the over-nested values are deeper than orjson encodes.
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body).encode()
    encoded = {name: value.encode("latin-1") for name, value in head.items()}
    _check(http.request(method, path, params=query, headers=encoded, content=content))


def test_broker_is_intact_after_fuzzing(http: httpx.Client, fuzzed: tuple[EmbeddedBroker, Any]) -> None:
    # Runs after the fuzz test in this module (pytest keeps file order).
    assert http.get("/types").status_code == 200
    assert http.post("/entities", json={"id": "urn:ngsi-ld:Fuzz:after", "type": "Fuzz"}).status_code in (201, 409)
    tenant = {"NGSILD-Tenant": KEEP_TENANT}
    for kept in fuzzed[1]:
        got = http.get(f"/entities/{kept['id']}", headers=tenant)
        assert got.status_code == 200, got.text
        assert got.json() == kept
    listed = http.get("/entities", params={"type": "Keep", "limit": 100, "count": "true"}, headers=tenant)
    assert listed.headers["ngsild-results-count"] == "20"

