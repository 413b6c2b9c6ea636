"""GIS sources: ArcGIS, WFS 2.0, OGC API Features and GeoJSON, paged through real loopback servers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapter.errors import SourceFormatError
from adapter.geometry import normalize_geometry
from adapter.samples.gis.server import BEACHES_PATH, ArcGISLayer, OGCCollection, WFSLayer, serve_gis_samples
from adapter.sources.arcgis import ArcGISSource
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.geojson import GeoJSONSource
from adapter.sources.http import FetchOptions
from adapter.sources.ogcapi import OGCAPIFeaturesSource
from adapter.sources.paging import NextLinkPaginator, OffsetPaginator, PageLimits, PageRequest, iter_pages
from adapter.sources.wfs import WFSSource
from tests.servers import PayloadServer, Reply, Request

SAMPLES = Path(__file__).resolve().parent.parent / "adapter" / "samples" / "gis"
FAST = FetchOptions(attempts=1, timeout=5)


def collect(source: Any) -> tuple[Fetch, list[RawRecord]]:
    async def run() -> tuple[Fetch, list[RawRecord]]:
        fetch = source.fetch()
        return fetch, [record async for record in fetch]
    return asyncio.run(run())


def beach_layer(**options: Any) -> ArcGISLayer:
    return ArcGISLayer.beaches(**options)


@pytest.fixture
def server() -> Iterator[PayloadServer]:
    with PayloadServer() as running:
        yield running


def mount(server: PayloadServer, routes: dict[str, Any]) -> None:
    server.routes.update(routes)


# --- paginators without sockets ---------------------------------------------------------------------

def test_offset_paginator_advances_by_what_the_server_returned() -> None:
    paginator = OffsetPaginator("startIndex", "count", 10, has_more=lambda *_: True)
    request = PageRequest("http://x/wfs")
    paginator.init_request(request)
    paginator.update_state({}, [1] * 7)  # a server capping the page below the limit
    paginator.update_request(request)
    assert request.params == {"startIndex": "7", "count": "10"}
    paginator.update_state({}, [])
    assert not paginator.has_next_page


def test_next_link_paginator_resolves_relative_links() -> None:
    paginator = NextLinkPaginator()
    request = PageRequest("http://x/ogc/collections/parks/items", {"limit": "2"})
    paginator.init_request(request)
    paginator.update_state({"links": [{"rel": "next", "href": "items?offset=2"}]}, [1, 2])
    paginator.update_request(request)
    assert request.url == "http://x/ogc/collections/parks/items?offset=2" and request.params == {}


def test_paging_forever_stops_with_an_error_naming_the_source() -> None:
    async def endless(request: PageRequest) -> Any:
        offset = int(request.params["o"])
        return {"features": [offset]}
    pages = iter_pages(endless, PageRequest("http://x"), OffsetPaginator("o", "n", 1, has_more=lambda *_: True),
                       records_of=lambda p: p["features"], source="layer-x", limits=PageLimits(max_pages=5))

    async def drain() -> None:
        async for _ in pages:
            pass
    with pytest.raises(SourceFormatError, match="still paging after 5 pages") as err:
        asyncio.run(drain())
    assert err.value.source == "layer-x"


def _three_pages(events: list[str], gate: asyncio.Event | None = None):
    async def get_json(request: PageRequest) -> Any:
        offset = int(request.params["o"])
        events.append(f"sent {offset}")
        try:
            if gate is not None and offset > 0:
                await gate.wait()
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            events.append(f"cancelled {offset}")
            raise
        return {"features": [offset], "more": offset < 2}
    return iter_pages(get_json, PageRequest("http://x"),
                      OffsetPaginator("o", "n", 1, has_more=lambda payload, *_: payload["more"]),
                      records_of=lambda p: p["features"], source="layer-x")


def test_the_next_page_is_requested_while_the_consumer_works_on_this_one() -> None:
    events: list[str] = []

    async def consume() -> None:
        async for page in _three_pages(events):
            events.append(f"working on {page.records[0]}")
            for _ in range(3):  # the consumer's own awaits (e.g. a database write)
                await asyncio.sleep(0)
            events.append(f"done with {page.records[0]}")
    asyncio.run(consume())
    assert events.index("sent 1") < events.index("done with 0")
    assert events.index("sent 2") < events.index("done with 1")
    assert events.count("sent 0") == events.count("sent 1") == events.count("sent 2") == 1
    assert "sent 3" not in events  # the last page says there is no more: nothing read past it


def test_stopping_early_cancels_the_page_read_ahead() -> None:
    from contextlib import aclosing

    events: list[str] = []

    async def first_page_only() -> None:
        gate = asyncio.Event()  # never set: page 2 stays in flight
        async with aclosing(_three_pages(events, gate)) as pages:
            async for _page in pages:
                await asyncio.sleep(0)
                break
        await asyncio.sleep(0)
    asyncio.run(first_page_only())
    assert "sent 1" in events and "cancelled 1" in events


@pytest.mark.integration
def test_arcgis_asks_for_the_next_page_before_the_records_of_this_one_are_consumed(
        server: PayloadServer) -> None:
    layer = beach_layer()
    server.add(BEACHES_PATH, layer.metadata)
    server.add(BEACHES_PATH + "/query", layer.query)
    source = ArcGISSource("beaches", server.url(BEACHES_PATH), page_size=4, options=FAST)

    during_page_1: list[int] = []

    async def run() -> list[str]:
        keys = []
        fetch = source.fetch()
        async for record in fetch:
            keys.append(record.key)
            if len(keys) == 1:  # still on page 1: the server must already have page 2's request
                for _ in range(500):
                    if len(server.requests_to(BEACHES_PATH + "/query")) == 2:
                        break
                    await asyncio.sleep(0.01)
                during_page_1.append(len(server.requests_to(BEACHES_PATH + "/query")))
        return keys
    keys = asyncio.run(run())
    offsets = [r.arg("resultOffset") for r in server.requests_to(BEACHES_PATH + "/query")]
    assert len(keys) == 6 and offsets == ["0", "4"] and during_page_1 == [2]


# --- ArcGIS -------------------------------------------------------------------------------------------

@pytest.mark.integration
def test_arcgis_pages_by_offset_and_converts_dates(server: PayloadServer) -> None:
    mount(server, beach_layer(max_record_count=4).routes(BEACHES_PATH))
    fetch, records = collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))
    assert fetch.complete and len(records) == 6
    queries = server.requests_to(BEACHES_PATH + "/query")
    assert [q.arg("resultOffset") for q in queries] == ["0", "4"]
    central = records[0].payload
    assert central["properties"]["NAME"] == "Централен плаж" and central["crs"] == "EPSG:7801"
    assert central["properties"]["SEASON_OPEN"] == datetime(2025, 5, 31, 21, 0, tzinfo=UTC)
    assert central["properties"]["SEASON_CLOSE"].tzinfo is UTC
    assert records[3].payload["properties"]["SEASON_OPEN"] is not None
    geometry = normalize_geometry(central["geometry"], central["crs"])
    assert geometry.geometry["type"] == "Polygon" and geometry.source_crs == "EPSG:7801"


@pytest.mark.integration
def test_arcgis_last_page_exactly_full_costs_one_empty_page(server: PayloadServer) -> None:
    mount(server, beach_layer(max_record_count=3, exceeded_when_full=True).routes(BEACHES_PATH))
    fetch, records = collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))
    assert fetch.complete and len(records) == 6
    assert [q.arg("resultOffset") for q in server.requests_to(BEACHES_PATH + "/query")] == ["0", "3", "6"]


@pytest.mark.integration
def test_arcgis_geojson_reads_exceeded_transfer_limit_under_properties(server: PayloadServer) -> None:
    mount(server, beach_layer(max_record_count=2).routes(BEACHES_PATH))
    fetch, records = collect(ArcGISSource("beaches", server.url(BEACHES_PATH), output="geojson",
                                          options=FAST))
    assert fetch.complete and len(records) == 6
    assert len(server.requests_to(BEACHES_PATH + "/query")) == 3
    assert records[0].payload["crs"] == "EPSG:4326"
    point = normalize_geometry(records[0].payload["geometry"], records[0].payload["crs"])
    assert 27.4 < point.geometry["coordinates"][0][0][0] < 27.6


@pytest.mark.integration
def test_arcgis_out_sr_is_sent_and_the_answer_crs_is_kept(server: PayloadServer) -> None:
    mount(server, beach_layer().routes(BEACHES_PATH))
    _, records = collect(ArcGISSource("beaches", server.url(BEACHES_PATH), out_sr=32635, options=FAST))
    assert server.requests_to(BEACHES_PATH + "/query")[0].arg("outSR") == "32635"
    assert records[0].payload["crs"] == "EPSG:32635"
    assert normalize_geometry(records[0].payload["geometry"], records[0].payload["crs"]).fixes == ()


@pytest.mark.integration
def test_arcgis_layer_without_pagination_pages_by_object_ids(server: PayloadServer) -> None:
    mount(server, beach_layer(supports_pagination=False, max_record_count=4).routes(BEACHES_PATH))
    fetch, records = collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))
    assert fetch.complete and [r.payload["id"] for r in records] == [1, 2, 3, 4, 5, 6]
    queries = server.requests_to(BEACHES_PATH + "/query")
    assert queries[0].arg("returnIdsOnly") == "true"
    assert [q.arg("objectIds") for q in queries[1:]] == ["1,2,3,4", "5,6"]


@pytest.mark.integration
@pytest.mark.parametrize("paging", [True, False])
def test_arcgis_empty_layer_is_a_complete_empty_fetch(server: PayloadServer, paging: bool) -> None:
    layer = ArcGISLayer(ArcGISLayer.beaches().layer, [], supports_pagination=paging)
    mount(server, layer.routes(BEACHES_PATH))
    fetch, records = collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))
    assert fetch.complete and records == []


@pytest.mark.integration
def test_arcgis_server_ignoring_the_offset_is_stopped(server: PayloadServer) -> None:
    mount(server, beach_layer(max_record_count=2, ignore_offset=True).routes(BEACHES_PATH))
    with pytest.raises(SourceFormatError, match="repeats page 1") as err:
        collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))
    assert err.value.source == "beaches"


@pytest.mark.integration
def test_arcgis_layer_that_pages_forever_stops_after_the_page_limit(server: PayloadServer) -> None:
    layer = ArcGISLayer.beaches()

    def endless(request: Request) -> Any:
        offset = int(request.arg("resultOffset") or 0)
        return {"spatialReference": {"wkid": 7801}, "exceededTransferLimit": True,
                "features": [{"attributes": {"OBJECTID": offset + 1}, "geometry": None}]}
    server.add(BEACHES_PATH, layer.metadata)
    server.add(BEACHES_PATH + "/query", endless)
    source = ArcGISSource("endless", server.url(BEACHES_PATH), options=FAST,
                          limits=PageLimits(max_pages=20))
    with pytest.raises(SourceFormatError, match="still paging after 20 pages") as err:
        collect(source)
    assert err.value.source == "endless"


@pytest.mark.integration
def test_html_error_page_is_a_format_error_naming_the_source(server: PayloadServer) -> None:
    server.add(BEACHES_PATH, Reply("<html><body>Proxy error</body></html>", 200, "text/html"))
    with pytest.raises(SourceFormatError, match="HTML") as err:
        collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))
    assert err.value.source == "beaches"


@pytest.mark.integration
def test_arcgis_error_object_is_translated(server: PayloadServer) -> None:
    server.add(BEACHES_PATH, ArcGISLayer.beaches().metadata)
    server.add(BEACHES_PATH + "/query", {"error": {"code": 400, "message": "Invalid query"}})
    with pytest.raises(SourceFormatError, match="Invalid query"):
        collect(ArcGISSource("beaches", server.url(BEACHES_PATH), options=FAST))


def test_arcgis_reads_a_saved_query_file() -> None:
    fetch, records = collect(ArcGISSource("beaches", str(SAMPLES / "beaches.query.json")))
    assert fetch.complete and len(records) == 6
    assert isinstance(records[0].payload["properties"]["LAST_INSPECTION"], datetime)


# --- WFS ----------------------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize(("page_size", "unknown", "requests"), [
    (15, False, 3),   # 15 + 15 + 10
    (20, False, 2),   # exactly full last page, numberMatched says it is the last
    (20, True, 3),    # exactly full last page, numberMatched "unknown": one extra empty page
])
def test_wfs_pages_by_start_index(server: PayloadServer, page_size: int, unknown: bool,
                                  requests: int) -> None:
    mount(server, WFSLayer.bus_stops(matched_unknown=unknown).routes("/wfs"))
    fetch, records = collect(WFSSource("stops", server.url("/wfs"), "burgas:bus_stops",
                                       page_size=page_size, options=FAST))
    assert fetch.complete and len(records) == 40
    assert len({r.payload["properties"]["stop_id"] for r in records}) == 40
    assert len(server.requests_to("/wfs")) == requests
    assert records[0].payload["crs"] == "urn:ogc:def:crs:EPSG::32635"


@pytest.mark.integration
def test_wfs_urn_4326_answer_is_latitude_first_and_normalises_to_lon_lat(server: PayloadServer) -> None:
    mount(server, WFSLayer.bus_stops().routes("/wfs"))
    _, records = collect(WFSSource("stops", server.url("/wfs"), "burgas:bus_stops",
                                   srs_name="urn:ogc:def:crs:EPSG::4326", options=FAST))
    first = records[0].payload
    assert first["geometry"]["coordinates"][0] == pytest.approx(42.4907, abs=1e-6)  # latitude first
    out = normalize_geometry(first["geometry"], first["crs"])
    assert out.geometry["coordinates"] == pytest.approx([27.4717, 42.4907], abs=1e-6)
    assert out.fixes == ()


@pytest.mark.integration
def test_wfs_exception_report_is_a_format_error(server: PayloadServer) -> None:
    mount(server, WFSLayer.bus_stops().routes("/wfs"))
    with pytest.raises(SourceFormatError, match="unknown typeNames"):
        collect(WFSSource("stops", server.url("/wfs"), "burgas:nope", options=FAST))


@pytest.mark.integration
def test_wfs_empty_layer(server: PayloadServer) -> None:
    mount(server, WFSLayer("t", {"type": "FeatureCollection", "features": []}).routes("/wfs"))
    fetch, records = collect(WFSSource("empty", server.url("/wfs"), "t", options=FAST))
    assert fetch.complete and records == []


# --- OGC API Features ------------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize(("limit", "requests"), [(4, 2), (3, 2), (1, 6)])
def test_ogcapi_follows_next_links(server: PayloadServer, limit: int, requests: int) -> None:
    mount(server, OGCCollection.parks().routes("/ogc"))
    fetch, records = collect(OGCAPIFeaturesSource("parks", server.url("/ogc"), "parks", limit=limit,
                                                  options=FAST))
    assert fetch.complete and [r.payload["id"] for r in records] == [f"park-0{i}" for i in range(1, 7)]
    assert len(server.requests_to("/ogc/collections/parks/items")) == requests
    lake = records[2].payload
    out = normalize_geometry(lake["geometry"], lake["crs"])
    assert len(out.geometry["coordinates"]) == 2 and out.fixes == ()  # the pond is a hole


@pytest.mark.integration
def test_ogcapi_next_link_loop_is_an_error(server: PayloadServer) -> None:
    def looping(request: Request) -> Any:
        return {"type": "FeatureCollection", "features": [{"type": "Feature", "id": request.arg("p")}],
                "links": [{"rel": "next", "href": "items?p=1" if request.arg("p") != "1" else "items?p=2"}
                          if request.arg("p") != "2" else {"rel": "next", "href": "items?p=1"}]}
    server.add("/ogc/collections/x/items", looping)
    with pytest.raises(SourceFormatError, match="repeats an earlier request"):
        collect(OGCAPIFeaturesSource("loop", server.url("/ogc"), "x", options=FAST))


@pytest.mark.integration
def test_ogcapi_empty_collection(server: PayloadServer) -> None:
    mount(server, OGCCollection("none", "none", {"features": []}).routes("/ogc"))
    fetch, records = collect(OGCAPIFeaturesSource("none", server.url("/ogc"), "none", options=FAST))
    assert fetch.complete and records == []


# --- GeoJSON and the bundled sample server -------------------------------------------------------------

def test_geojson_file_with_a_crs_member(tmp_path: Path) -> None:
    (tmp_path / "stops.geojson").write_bytes((SAMPLES / "bus_stops.wfs.geojson").read_bytes())
    fetch, records = collect(GeoJSONSource("stops", str(tmp_path / "stops.geojson"), id_field="stop_id"))
    assert fetch.complete and len(records) == 40 and records[0].payload["id"] == "S01"
    assert records[0].payload["crs"] == "urn:ogc:def:crs:EPSG::32635"


def test_geojson_without_features_is_a_format_error(tmp_path: Path) -> None:
    (tmp_path / "bad.geojson").write_text('{"type": "FeatureCollection", "features1": []}')
    with pytest.raises(SourceFormatError, match="no 'features'"):
        collect(GeoJSONSource("bad", str(tmp_path / "bad.geojson")))


@pytest.mark.integration
def test_bundled_sample_server_serves_every_layer() -> None:
    with serve_gis_samples() as gis:
        sources = [ArcGISSource("beaches", gis.beaches_url, options=FAST),
                   WFSSource("stops", gis.wfs_url, gis.wfs_type_name, options=FAST),
                   OGCAPIFeaturesSource("parks", gis.ogc_url, gis.ogc_collection, options=FAST)]
        counts = []
        for source in sources:
            fetch, records = collect(source)
            assert fetch.complete
            for record in records:
                normalize_geometry(record.payload["geometry"], record.payload["crs"])
            counts.append(len(records))
    assert counts == [6, 40, 6]
