"""The ten Smart Burgas feeds served from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from adapter.errors import SourceFormatError, SourceUnavailableError
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.http import FetchOptions, PayloadFetcher
from adapter.sources.smartburgas import SmartBurgasSource
from adapter.sources.smartburgas_feeds import FEEDS, FeedSpec
from tests.servers import PayloadServer, Reply, Request

pytestmark = pytest.mark.integration

EXPECTED_RECORDS = {"air_quality": 5, "traffic": 14, "car_parks": 7, "waste": 5, "cctv": 11,
                    "billing_machines": 48, "ev_chargers": 17, "taxi_ranks": 59,
                    "paid_parking_zones": 15, "admin_regions": 9}


def sample_route(spec: FeedSpec):
    """Serve the bundled sample in the language asked for, like the upstream does."""
    def route(request: Request) -> Reply:
        lang = request.arg("lang")
        if spec.translated and lang not in ("bg", "en"):
            return Reply(b'{"error":"unsupported lang"}', 500)
        return Reply(spec.sample_path(lang).read_bytes())
    return route


def run(src: SmartBurgasSource) -> tuple[list[RawRecord], Fetch]:
    async def go() -> tuple[list[RawRecord], Fetch]:
        fetch = src.fetch()
        try:
            return [r async for r in fetch], fetch
        finally:
            await src.fetcher.aclose()
    return asyncio.run(go())


async def _no_sleep(_: float) -> None:
    return None


def fast_fetcher(**options: object) -> PayloadFetcher:
    return PayloadFetcher(None, FetchOptions(**options), sleep=_no_sleep,  # type: ignore[arg-type]
                          rng=random.Random(0))


@pytest.fixture(scope="module")
def feed_server():
    with PayloadServer({f"/api/{name}": sample_route(spec) for name, spec in FEEDS.items()}) as s:
        yield s


@pytest.mark.parametrize("name", list(FEEDS))
def test_every_feed_is_read_completely_over_http(feed_server: PayloadServer, name: str) -> None:
    spec = FEEDS[name]
    # The URL is taken from the feed's environment variable, with a query string of its own.
    env = {spec.env_var: feed_server.url(f"/api/{name}?apikey=demo")}
    records, fetch = run(SmartBurgasSource(name, env=env))
    assert fetch.complete and len(records) == EXPECTED_RECORDS[name]
    if spec.translated:
        assert all(r.lang == "bg" and "en" in r.translations for r in records)
        # The URL's own query is kept beside lang=; its API key is not carried into records.
        assert records[0].origin.endswith("apikey=**REDACTED**&lang=bg")
        if spec.id_key:
            for r in records:
                assert r.payload["properties"][spec.id_key] == r.translations["en"]["properties"][spec.id_key]
    else:
        assert all(not r.translations for r in records)
    langs = sorted(r.arg("lang") or "" for r in feed_server.requests_to(f"/api/{name}"))
    assert langs[-2:] == (["bg", "en"] if spec.translated else langs[-2:])


def test_english_names_arrive_with_the_bulgarian_record(feed_server: PayloadServer) -> None:
    env = {"TRAFFIC_URL": feed_server.url("/api/traffic")}
    records, _ = run(SmartBurgasSource("traffic", env=env))
    first = records[0]
    assert first.payload["properties"]["name"].startswith("бул.")
    assert first.translations["en"]["properties"]["name"].endswith("Blvd. - east")
    duplicated = [r for r in records if r.payload["properties"]["detector_id"] == "57"]
    assert len(duplicated) == 2  # the source does not dedup: the mapper merges


def test_retries_through_a_flapping_server_then_succeeds() -> None:
    calls = {"n": 0}
    spec = FEEDS["cctv"]

    def flapping(request: Request) -> Reply:
        calls["n"] += 1
        if calls["n"] <= 2:
            return Reply("<html><body>502 Bad Gateway</body></html>", 502, "text/html")
        return sample_route(spec)(request)

    with PayloadServer({"/cctv": flapping}) as server:
        src = SmartBurgasSource("cctv", server.url("/cctv"), fetcher=fast_fetcher(), langs=("bg",))
        records, fetch = run(src)
    assert fetch.complete and len(records) == 11 and calls["n"] == 3


def test_an_html_error_page_with_status_200_is_a_format_error() -> None:
    page = "<html><head><title>Maintenance</title></head><body>Back soon</body></html>"
    with PayloadServer({"/air": Reply(page, 200, "text/html; charset=utf-8")}) as server:
        src = SmartBurgasSource("air_quality", server.url("/air"), fetcher=fast_fetcher())
        with pytest.raises(SourceFormatError) as info:
            run(src)
    assert info.value.source == "smartburgas.air_quality" and "Maintenance" in info.value.reason


def test_truncated_json_from_the_server_is_a_format_error() -> None:
    body = FEEDS["car_parks"].sample_path("bg").read_bytes()[:5000]
    with PayloadServer({"/parks": body}) as server:
        src = SmartBurgasSource("car_parks", server.url("/parks"), fetcher=fast_fetcher())
        with pytest.raises(SourceFormatError, match="truncated"):
            run(src)


def test_missing_features1_from_the_server_is_a_format_error() -> None:
    with PayloadServer({"/traffic": {"type": "FeatureCollection"}}) as server:
        src = SmartBurgasSource("traffic", server.url("/traffic"), fetcher=fast_fetcher())
        with pytest.raises(SourceFormatError, match="features1") as info:
            run(src)
    assert info.value.source == "smartburgas.traffic"


def test_an_oversized_feed_is_refused() -> None:
    body = FEEDS["air_quality"].sample_path("bg").read_bytes()
    with PayloadServer({"/air": body}) as server:
        src = SmartBurgasSource("air_quality", server.url("/air"),
                                fetcher=fast_fetcher(max_bytes=len(body) // 2))
        with pytest.raises(SourceFormatError, match="limit"):
            run(src)


def test_an_unreachable_feed_is_unavailable() -> None:
    with PayloadServer() as server:
        url = server.url("/gone")
    # The server is stopped: nothing listens on that port any more.
    src = SmartBurgasSource("ev_chargers", url, fetcher=fast_fetcher(attempts=2, connect_timeout=2))
    with pytest.raises(SourceUnavailableError) as info:
        run(src)
    assert info.value.source == "smartburgas.ev_chargers"


def test_the_real_client_is_injectable() -> None:
    with PayloadServer({"/ev": sample_route(FEEDS["ev_chargers"])}) as server:
        async def go() -> int:
            async with httpx.AsyncClient(headers={"User-Agent": "burgas-test"}) as client:
                src = SmartBurgasSource("ev_chargers", server.url("/ev"), client=client)
                return len([r async for r in src.fetch()])
        assert asyncio.run(go()) == 17
        assert all(r.headers.get("User-Agent") == "burgas-test" for r in server.requests)
