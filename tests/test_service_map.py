"""The map page: its read-only broker proxy (unit, no sockets) and the page in headless Chromium.

The browser tests need Debian's Chromium (`make browser` installs it; .ci/run does so before
`make test`). Without it they skip locally and fail in CI (CI=true), so CI never passes silently.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

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


WINDOW = {"timerel": "between", "timeAt": "2026-03-29T12:00:05Z", "endTimeAt": "2026-03-30T12:00:06Z"}


def test_proxy_passes_one_entitys_history_window_with_its_content_range() -> None:
    seen: list[httpx.Request] = []

    def broker(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(206, json={"id": "urn:ngsi-ld:T:1", "type": "T"},
                              headers={"Content-Range": "date-time 2026-03-29T12:00:05Z-2026-03-29T20:00:00Z/*"})

    with Proxied(broker, tenant="burgas") as client:
        answer = client.get("/map/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:T:1", params=WINDOW)
    assert answer.status_code == 206
    assert answer.headers["Content-Range"] == "date-time 2026-03-29T12:00:05Z-2026-03-29T20:00:00Z/*"
    (request,) = seen
    assert request.url.raw_path.decode().startswith("/ngsi-ld/v1/temporal/entities/urn%3Angsi-ld%3AT%3A1?")
    assert dict(request.url.params) == WINDOW and request.headers["NGSILD-Tenant"] == "burgas"


def test_proxy_reads_history_from_the_temporal_url_when_set() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "urn:ngsi-ld:T:1", "type": "T"})

    broker = BrokerClient(BROKER, http=httpx.AsyncClient())
    app = FastAPI()
    app.include_router(map_router(lambda: broker, http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
                                  temporal_url="http://mintaka.invalid:8080/"))

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://s") as client:
            return await client.get("/map/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:T:1", params=WINDOW)
    assert asyncio.run(call()).status_code == 200
    assert str(seen[0].url).startswith("http://mintaka.invalid:8080/ngsi-ld/v1/temporal/entities/")


@pytest.mark.parametrize("params", [
    {},                                                                   # no window: the whole history
    {**WINDOW, "endTimeAt": "2026-04-30T12:00:06Z"},                      # a month
    {**WINDOW, "timeAt": "2026-03-29T12:00:05"},                          # no time zone
    {**WINDOW, "timerel": "after"},
    {**WINDOW, "lastN": "100000"},
    {**WINDOW, "options": "aggregatedValues"},
    {**WINDOW, "georel": "near;maxDistance==1"},
])
def test_proxy_refuses_history_queries_the_page_never_asks(params: dict[str, str]) -> None:
    def broker(request: httpx.Request) -> httpx.Response:
        raise AssertionError("the broker must not be asked")

    with Proxied(broker) as client:
        answer = client.get("/map/ngsi-ld/v1/temporal/entities/urn:ngsi-ld:T:1", params=params)
        assert answer.status_code == 400, answer.text
        assert client.get("/map/ngsi-ld/v1/temporal/entities/not an id", params=WINDOW).status_code == 400


def test_page_and_assets_are_served_and_never_leave_the_service() -> None:
    with Proxied(lambda request: httpx.Response(200, json=TYPES)) as client:
        page = client.get("/map")
        script = client.get("/map/static/map.js")
        chart = client.get("/map/static/chart.js")
        style = client.get("/map/static/map.css")
        assert client.get("/map/static/nothing.js").status_code == 404
        assert client.get("/map/static/..%2Fmap.py").status_code == 404
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    # Offline: no absolute URL anywhere but the SVG namespace (an identifier, never fetched).
    assert chart.headers["content-type"].startswith("text/javascript")
    for text in (page.text, script.text, style.text, chart.text):
        assert set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", text)) <= {"http://www.w3.org/2000/svg"}
    assert {p.name for p in STATIC.iterdir()} == {"index.html", "map.js", "map.css", "chart.js"}


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


def _history_in_window(service, entity_id: str, end: str) -> dict[str, int]:
    """Quantity -> readings the broker's temporal API holds for the chart's 24 h up to `end`."""
    from tests.test_history_e2e import stored

    upper = datetime.fromisoformat(end)
    counts: dict[str, int] = {}
    for (name, observed), n in stored(service.broker_url, entity_id).items():
        if timedelta(0) <= upper - datetime.fromisoformat(observed) <= timedelta(hours=24):
            counts[name] = counts.get(name, 0) + n
    return counts


def _open_sensor(page: Page, kind: str) -> dict:
    """Click the first unobstructed feature of a type; returns its id and the chart's series once drawn."""
    page.evaluate("document.getElementById('popup-close').click()")
    target = page.evaluate(f"""(() => {{
        for (const f of document.querySelectorAll('g.layer[data-type="{kind}"] .feature')) {{
            const b = f.querySelector('circle').getBoundingClientRect();
            const x = b.x + b.width / 2, y = b.y + b.height / 2;
            const hit = document.elementFromPoint(x, y);
            if (hit && hit.closest('.feature') === f) return {{id: f.dataset.id, x, y}};
        }}
        return null;
    }})()""")
    assert target is not None, kind
    # A move with no button held (Page.click moves with the left button down, which drags the map
    # when an earlier release went unseen), then press and release.
    for kind, button in (("mouseMoved", "none"), ("mousePressed", "left"), ("mouseReleased", "left")):
        page.send("Input.dispatchMouseEvent", {"type": kind, "x": target["x"], "y": target["y"], "button": button,
                                               "buttons": 1 if kind == "mousePressed" else 0, "clickCount": 1})
    page.wait_for(f"document.getElementById('popup').dataset.id === {target['id']!r}")
    state = page.wait_for("(c => c && c.dataset.state !== 'loading' && c.dataset.state)"
                          "(document.querySelector('#popup .chart'))", timeout=30)
    assert state == "ready", page.evaluate("document.querySelector('#popup .chart').innerText")
    target["series"] = page.evaluate("Object.fromEntries([...document.querySelectorAll('#popup .chart g.series')]"
                                     ".map(g => [g.dataset.attr, [Number(g.dataset.points), g.dataset.unit,"
                                     " g.querySelectorAll('circle').length]]))")
    target["text"] = page.evaluate("document.querySelector('#popup .chart').textContent")
    target["observed"] = page.evaluate("document.querySelector('#popup .observed').textContent")
    return target


@pytest.mark.integration
def test_clicking_an_air_quality_station_charts_its_last_24_hours_per_pollutant(page: Page, service) -> None:
    opened = _open_sensor(page, "AirQualityObserved")
    end = opened["observed"].removeprefix("Observed ")
    expected = _history_in_window(service, opened["id"], end)
    assert {a: n for a, (n, _, _) in opened["series"].items()} == expected  # every reading, one line each
    assert all(dots == n for n, _, dots in opened["series"].values())
    assert opened["series"]["no2"][1] == "µg/m³" and 20 <= opened["series"]["no2"][0] <= 25
    local = datetime.fromisoformat(end).astimezone(ZoneInfo("Europe/Sofia"))
    assert f"Last 24 h to {local.day} {local:%b %Y}, {local:%H:%M}" in opened["text"]
    assert "(Europe/Sofia)" in opened["text"] and local.tzname() in opened["text"]
    # The axis is in local hours: its labels are multiples of 6 hours of Sofia time.
    labels = page.evaluate("[...document.querySelectorAll('#popup .chart .axis text:not(.day)')]"
                           ".map(t => t.textContent)")
    assert labels and set(labels) <= {"00:00", "06:00", "12:00", "18:00"}


@pytest.mark.integration
def test_a_traffic_detector_chart_holds_its_96_quarter_hours_and_a_car_park_its_occupancy(page: Page, service) -> None:
    traffic = _open_sensor(page, "TrafficFlowObserved")
    expected = _history_in_window(service, traffic["id"], traffic["observed"].removeprefix("Observed "))
    assert {a: n for a, (n, _, _) in traffic["series"].items()} == expected
    assert traffic["series"]["intensity"][0] == 96 and traffic["series"]["averageVehicleSpeed"][1] == "km/h"
    parking = _open_sensor(page, "OffStreetParking")
    assert parking["series"]["availableSpotNumber"][0] > 1 and parking["series"]["availableSpotNumber"][1] == "spaces"
    page.evaluate("document.getElementById('popup-close').click()")


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


@pytest.mark.integration
def test_a_chart_follows_partial_temporal_answers_page_by_page(browser: Chromium) -> None:
    from ngsild_broker import BrokerSettings, EmbeddedBroker
    from tests.map_service import serve_app

    end = datetime(2026, 3, 29, 12, 0, tzinfo=ZoneInfo("UTC"))  # the spring change (03:00 EET -> EEST) inside
    times = [end - timedelta(minutes=30 * n) for n in range(48)][::-1]
    sensor = "urn:ngsi-ld:NoiseLevelObserved:lamppost:paged"
    stamp = lambda t: t.strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    with EmbeddedBroker(BrokerSettings(port=0, temporal_limit=5)) as broker:  # 48 readings: 10 pages
        api = broker.url + "/ngsi-ld/v1"
        assert httpx.post(api + "/entities", json={
            "id": sensor, "type": "NoiseLevelObserved",
            "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [27.47, 42.5]}},
            "LAeq": {"type": "Property", "value": 60.0, "unitCode": "2N", "observedAt": stamp(times[-1])},
        }).status_code == 201
        assert httpx.post(api + "/temporal/entities/" + sensor + "/attrs", json={"LAeq": [
            {"type": "Property", "value": 40.0 + n % 9, "unitCode": "2N", "observedAt": stamp(t)}
            for n, t in enumerate(times[:-1])]}).status_code == 204
        app = FastAPI()
        client = BrokerClient(broker.url)
        app.include_router(map_router(lambda: client))
        with serve_app(app) as url:
            tab = browser.new_page(1000, 800)
            tab.goto(url + "/map")
            assert tab.wait_for("document.body && document.body.dataset.state !== 'loading' "
                                "&& document.body.dataset.state") == "ready"
            tab.evaluate("document.querySelector('g.layer .feature').dispatchEvent("
                         "new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))")
            assert tab.wait_for("(c => c && c.dataset.state !== 'loading' && c.dataset.state)"
                                "(document.querySelector('#popup .chart'))", timeout=30) == "ready"
            series = tab.evaluate("[...document.querySelectorAll('#popup .chart g.series')].map(g => "
                                  "[g.dataset.attr, Number(g.dataset.points)])")
            labels = tab.evaluate("[...document.querySelectorAll('#popup .chart .axis text:not(.day)')]"
                                  ".map(t => t.textContent)")
            tab.send("Page.close")
    assert series == [["LAeq", 48]]  # every reading, read over ten partial answers
    # Local hours on both sides of the change: 18:00 and 00:00 EET (UTC+2), 06:00 and 12:00 EEST (UTC+3).
    assert labels == ["18:00", "00:00", "06:00", "12:00"]
