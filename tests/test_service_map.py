"""The map page: its read-only broker proxy (unit, no sockets) and the page in headless Chromium.

The browser tests need Debian's Chromium (`make browser` installs it; .ci/run does so before
`make test`). Without it they skip locally and fail in CI (CI=true), so CI never passes silently.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from adapter.ngsi.auth import BearerToken
from adapter.ngsi.client import BrokerClient
from adapter.service.map import MAX_LIMIT, STATIC, map_router
from tests.chromium import Chromium, Page, chromium_executable

BROKER = "http://broker.invalid:1026"
TYPES = {"id": "urn:ngsi-ld:EntityTypeList:1", "type": "EntityTypeList", "typeList": ["https://ex.org/T"]}
ENTITY = {"id": "urn:ngsi-ld:T:1", "type": "https://ex.org/T",
          "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [27.47, 42.5]}}}
# Demo types whose entities have no geometry (GTFS agency, routes, trips): listed, never drawn.
NO_GEOMETRY = {"GtfsAgency", "GtfsRoute", "GtfsTrip"}


# --- the proxy, against a mock broker -------------------------------------------------------------

class Proxied:
    """A synchronous view of an app holding only the map router, whose broker is a handler (no sockets)."""

    def __init__(self, handler, max_response_bytes: int | None = None, **client_kwargs) -> None:
        broker = BrokerClient(BROKER, http=httpx.AsyncClient(), **client_kwargs)
        limits = {} if max_response_bytes is None else {"max_response_bytes": max_response_bytes}
        self.app = FastAPI()
        self.app.include_router(map_router(
            lambda: broker, http=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **limits))

    def request(self, method: str, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        async def call() -> httpx.Response:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                         base_url="http://service") as client:
                return await client.request(method, path, params=params)
        return asyncio.run(call())

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return self.request("GET", path, params)

    def __enter__(self) -> Proxied:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def test_proxy_passes_a_page_of_one_type_with_tenant_auth_and_count() -> None:
    seen: list[httpx.Request] = []

    def broker(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=orjson.dumps([ENTITY]),
                              headers={"Content-Type": "application/json", "NGSILD-Results-Count": "7",
                                       "Set-Cookie": "broker=internal"})

    with Proxied(broker, tenant="burgas", auth=BearerToken(SecretStr("s3cret"))) as client:
        answer = client.get("/map/ngsi-ld/v1/entities",
                            params={"type": "https://ex.org/T", "limit": "1000", "offset": "0", "count": "true"})
    assert answer.status_code == 200
    assert answer.json() == [ENTITY]
    assert answer.headers["NGSILD-Results-Count"] == "7"
    assert "set-cookie" not in answer.headers
    (request,) = seen
    assert request.method == "GET"
    assert str(request.url).startswith(BROKER + "/ngsi-ld/v1/entities?")
    assert dict(request.url.params) == {"type": "https://ex.org/T", "limit": "1000", "offset": "0",
                                        "count": "true"}
    assert request.headers["NGSILD-Tenant"] == "burgas"
    assert request.headers["Authorization"] == "Bearer s3cret"


def test_proxy_types() -> None:
    with Proxied(lambda request: httpx.Response(200, json=TYPES)) as client:
        answer = client.get("/map/ngsi-ld/v1/types")
    assert answer.status_code == 200 and answer.json() == TYPES


@pytest.mark.parametrize("params", [
    {"type": "T", "georel": "near;maxDistance==1"},      # not on the list
    {"type": "T", "limit": str(MAX_LIMIT + 1)},
    {"type": "T", "offset": "-1"},
    {"type": "T", "q": "x" * 5000},
    {"limit": "10"},                                     # one type at a time
])
def test_proxy_refuses_what_the_page_never_asks(params: dict[str, str]) -> None:
    def broker(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the broker must not be asked")

    with Proxied(broker) as client:
        answer = client.get("/map/ngsi-ld/v1/entities", params=params)
    assert answer.status_code == 400
    assert answer.json()["type"] == "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"


def test_proxy_is_read_only() -> None:
    with Proxied(lambda request: httpx.Response(201)) as client:
        for method in ("POST", "PATCH", "PUT", "DELETE"):
            assert client.request(method, "/map/ngsi-ld/v1/entities", params={"type": "T"}).status_code == 405


def test_proxy_passes_client_errors_and_hides_broker_failures() -> None:
    problem = {"type": "https://uri.etsi.org/ngsi-ld/errors/BadRequestData", "title": "bad q", "detail": "q"}
    with Proxied(lambda request: httpx.Response(400, json=problem)) as client:
        answer = client.get("/map/ngsi-ld/v1/entities", params={"type": "T", "q": "a=="})
    assert answer.status_code == 400 and answer.json() == problem

    with Proxied(lambda request: httpx.Response(500, text="stack trace with internals")) as client:
        answer = client.get("/map/ngsi-ld/v1/entities", params={"type": "T"})
    assert answer.status_code == 502 and "internals" not in answer.text

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with Proxied(down) as client:
        answer = client.get("/map/ngsi-ld/v1/types")
    assert answer.status_code == 502 and answer.json()["title"] == "Broker unreachable"


def test_proxy_bounds_the_answer() -> None:
    huge = orjson.dumps([ENTITY] * 100)
    with Proxied(lambda request: httpx.Response(200, content=huge), max_response_bytes=1000) as client:
        answer = client.get("/map/ngsi-ld/v1/entities", params={"type": "T"})
    assert answer.status_code == 502 and answer.json()["title"] == "Broker answer too large"


def test_page_and_assets_are_served_and_never_leave_the_service() -> None:
    with Proxied(lambda request: httpx.Response(200, json=TYPES)) as client:
        page = client.get("/map")
        script = client.get("/map/static/map.js")
        style = client.get("/map/static/map.css")
        assert client.get("/map/static/nothing.js").status_code == 404
        assert client.get("/map/static/..%2Fmap.py").status_code == 404
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    # Offline: no absolute URL anywhere but the SVG namespace (an identifier, never fetched).
    for text in (page.text, script.text, style.text):
        assert set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", text)) <= {"http://www.w3.org/2000/svg"}
    assert {p.name for p in STATIC.iterdir()} == {"index.html", "map.js", "map.css"}


# --- the page in headless Chromium, with the Burgas demo data ---------------------------------------

@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if chromium_executable() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed; CI must install it (`make browser`, see .ci/run)")
        pytest.skip("chromium is not installed (`make browser` installs Debian's package)")
    with Chromium() as running:
        yield running


@pytest.fixture(scope="module")
def service():
    from tests.map_service import demo_map_service

    with demo_map_service() as running:
        yield running


@pytest.fixture(scope="module")
def page(browser: Chromium, service) -> Page:
    tab = browser.new_page(1280, 860)
    tab.send("Network.enable")
    tab.goto(service.url + "/map")
    state = tab.wait_for("document.body && document.body.dataset.state !== 'loading' "
                         "&& document.body.dataset.state", timeout=60)
    assert state == "ready", tab.evaluate("document.getElementById('status').textContent")
    return tab


@pytest.mark.integration
def test_every_type_is_a_layer_with_the_expected_number_of_features(page: Page, service) -> None:
    expected = service.entities_by_type()
    drawn = page.evaluate("Object.fromEntries([...document.querySelectorAll('g.layer')]"
                          ".map(g => [g.dataset.type,"
                          " [Number(g.dataset.count), g.querySelectorAll('.feature').length]]))")
    listed = page.evaluate("Object.fromEntries([...document.querySelectorAll('#layers li')]"
                           ".map(li => [li.dataset.type, [Number(li.dataset.count), Number(li.dataset.entities)]]))")
    assert set(listed) == set(expected)
    assert drawn == {t: [0, 0] if t in NO_GEOMETRY else [n, n] for t, n in expected.items()}
    assert listed == {t: [0 if t in NO_GEOMETRY else n, n] for t, n in expected.items()}
    # Points, lines and polygons: districts and paid zones are areas, GTFS shapes are lines.
    kinds = page.evaluate("Object.fromEntries([...document.querySelectorAll('g.layer')].map(g => "
                          "[g.dataset.type, g.querySelector('circle') ? 'point' : g.querySelector('path.line') "
                          "? 'line' : 'area']))")
    assert kinds["AdministrativeArea"] == kinds["OnStreetParking"] == kinds["Beach"] == "area"
    assert kinds["GtfsShape"] == "line"
    assert kinds["AirQualityObserved"] == kinds["GtfsStop"] == "point"
    assert page.evaluate("Number(document.body.dataset.features)") == sum(
        n for t, n in expected.items() if t not in NO_GEOMETRY)


@pytest.mark.integration
def test_clicking_a_feature_shows_its_current_values_and_observation_time(page: Page, service) -> None:
    # A car park whose centre is not covered by another feature, clicked with the mouse.
    target = page.evaluate("""(() => {
        for (const f of document.querySelectorAll('g.layer[data-type="OffStreetParking"] .feature')) {
            const b = f.querySelector('circle').getBoundingClientRect();
            const x = b.x + b.width / 2, y = b.y + b.height / 2;
            const hit = document.elementFromPoint(x, y);
            if (hit && hit.closest('.feature') === f) return {id: f.dataset.id, x, y};
        }
        return null;
    })()""")
    assert target is not None
    page.click(target["x"], target["y"])
    page.wait_for("!document.getElementById('popup').hidden")
    assert page.evaluate("document.getElementById('popup').dataset.id") == target["id"]
    text = page.evaluate("document.getElementById('popup').innerText")

    entity = httpx.get(f"{service.url}/map/ngsi-ld/v1/entities",
                       params={"type": "https://smartdatamodels.org/dataModel.Parking/OffStreetParking",
                               "limit": "100"}).json()
    (entity,) = [e for e in entity if e["id"] == target["id"]]
    available = entity["https://smartdatamodels.org/dataModel.Parking/availableSpotNumber"]
    name = entity["https://smartdatamodels.org/name"]["value"]
    assert "availableSpotNumber" in text
    assert re.search(rf"availableSpotNumber\s+{available['value']}\b", text), text
    assert f"Observed {available['observedAt']}" in text
    english = entity["https://burgas-ngsi-ld.github.io/ns#multilingualName"]["languageMap"]["en"]
    assert english in text and name in text

    page.click(5, 400)  # empty map closes the popup
    page.wait_for("document.getElementById('popup').hidden")


@pytest.mark.integration
def test_a_layer_can_be_hidden_and_shown(page: Page) -> None:
    toggle = "document.querySelector('#layers li[data-type=\"PointOfInterest\"] input')"
    layer = "document.querySelector('g.layer[data-type=\"PointOfInterest\"]')"
    page.evaluate(f"{toggle}.click()")
    assert page.evaluate(f"getComputedStyle({layer}).display") == "none"
    page.evaluate(f"{toggle}.click()")
    assert page.evaluate(f"getComputedStyle({layer}).display") != "none"


@pytest.mark.integration
def test_the_page_fetches_nothing_but_the_service(page: Page, service) -> None:
    urls = [event["request"]["url"] for event in page.browser.events("Network.requestWillBeSent")]
    assert any(url.endswith("/map/static/map.js") for url in urls)
    assert [url for url in urls if not url.startswith(service.url + "/")] == []


@pytest.mark.integration
@pytest.mark.parametrize(("answer", "state", "status"), [
    (httpx.Response(404, json={"type": "https://uri.etsi.org/ngsi-ld/errors/NonExistingTenant",
                               "title": "No such tenant", "detail": "burgas"}),
     "ready", "0 entities of 0 types; 0 on the map."),
    (httpx.Response(503, text="down"), "error", "Cannot read the broker: /map/ngsi-ld/v1/types: 502 "
                                               "the broker answered 503"),
])
def test_an_empty_tenant_is_an_empty_map_and_a_failing_broker_is_said(
        browser: Chromium, answer: httpx.Response, state: str, status: str) -> None:
    from tests.map_service import serve_app

    app = FastAPI()
    broker = BrokerClient(BROKER, tenant="burgas")
    app.include_router(map_router(lambda: broker, http=httpx.AsyncClient(
        transport=httpx.MockTransport(lambda request: answer))))
    with serve_app(app) as url:
        tab = browser.new_page(800, 600)
        tab.goto(url + "/map")
        assert tab.wait_for("document.body && document.body.dataset.state !== 'loading' "
                            "&& document.body.dataset.state") == state
        assert tab.evaluate("document.getElementById('status').textContent") == status
        tab.send("Page.close")
