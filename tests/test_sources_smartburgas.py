"""SmartBurgasSource: URLs, languages, envelope checks, pairing (unit tests over MockTransport)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import httpx
import orjson
import pytest

from adapter.errors import SourceFormatError, SourceUnavailableError
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.http import FetchOptions, PayloadFetcher
from adapter.sources.smartburgas import SmartBurgasSource, pair_features
from adapter.sources.smartburgas_feeds import FEEDS, SAMPLES_DIR


def feature1(fid: str, name: str) -> dict[str, Any]:
    return {"type": "Feature", "properties": {
        "detector_id": fid, "name": name, "data": [],
        "geometry": {"type": "Point", "coordinates": [27.46, 42.5]}}}


def poi(name: str) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"name": name, "description": "", "pic_url": ""},
            "geometry": {"type": "Point", "coordinates": [27.46, 42.5]}}


def source(feed: str, by_lang: dict[str, Any], url: str = "https://feeds.example/api/feed",
           requests: list[httpx.Request] | None = None, **kw: Any) -> SmartBurgasSource:
    """A source whose server answers by the ``lang`` query parameter (or ``None`` key)."""
    def handler(request: httpx.Request) -> httpx.Response:
        if requests is not None:
            requests.append(request)
        answer = by_lang[request.url.params.get("lang")]
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, content=orjson.dumps(answer))

    async def no_sleep(_: float) -> None:
        return None

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    fetcher = PayloadFetcher(client, FetchOptions(attempts=2), sleep=no_sleep, rng=random.Random(0))
    return SmartBurgasSource(feed, url, fetcher=fetcher, env={}, **kw)


def run(src: SmartBurgasSource) -> tuple[list[RawRecord], Fetch]:
    async def go() -> tuple[list[RawRecord], Fetch]:
        fetch = src.fetch()
        return [r async for r in fetch], fetch
    return asyncio.run(go())


def test_both_languages_are_requested_keeping_the_urls_own_query() -> None:
    seen: list[httpx.Request] = []
    payload = {"type": "FeatureCollection", "features1": []}
    src = source("traffic", {"bg": payload, "en": payload},
                 url="https://feeds.example/api/traffic?token=t1", requests=seen)
    run(src)
    assert sorted(str(r.url) for r in seen) == [
        "https://feeds.example/api/traffic?token=t1&lang=bg",
        "https://feeds.example/api/traffic?token=t1&lang=en"]


def test_untranslated_layers_are_fetched_once_without_lang() -> None:
    seen: list[httpx.Request] = []
    src = source("admin_regions", {None: {"type": "FeatureCollection", "features": []}},
                 requests=seen)
    records, fetch = run(src)
    assert len(seen) == 1 and "lang" not in seen[0].url.params and fetch.complete


def test_records_carry_both_languages_paired_by_id_even_when_reordered() -> None:
    bg = {"type": "FeatureCollection", "features1": [
        feature1("39", "бул. Демокрация"), feature1("40", "ddd"), feature1("39", "бул. Демокрация")]}
    en = {"type": "FeatureCollection", "features1": [
        feature1("40", "ddd"), feature1("39", "Demokratsia Blvd."), feature1("39", "Demokratsia 2"),
        feature1("77", "Only in English")]}
    records, fetch = run(source("traffic", {"bg": bg, "en": en}))
    names = [(r.key, r.lang, r.payload["properties"]["name"],
              r.translations.get("en", {}).get("properties", {}).get("name")) for r in records]
    assert names == [
        ("features1[0] detector_id=39", "bg", "бул. Демокрация", "Demokratsia Blvd."),
        ("features1[1] detector_id=40", "bg", "ddd", "ddd"),
        ("features1[2] detector_id=39", "bg", "бул. Демокрация", "Demokratsia 2"),
        ("en:features1[3] detector_id=77", "en", "Only in English", None),
    ]
    assert fetch.complete and records[0].origin.endswith("lang=bg")


def test_id_less_feeds_pair_by_position() -> None:
    bg = {"type": "FeatureCollection", "features": [poi("Ивайло"), poi("Сливница")]}
    en = {"type": "FeatureCollection", "features": [poi("Ivaylo"), poi("Slivnitsa")]}
    records, _ = run(source("billing_machines", {"bg": bg, "en": en}))
    assert [(r.key, r.in_lang("en")["properties"]["name"]) for r in records] == [
        ("features[0]", "Ivaylo"), ("features[1]", "Slivnitsa")]


def test_position_pairing_is_refused_when_the_languages_differ_in_length() -> None:
    bg = {"type": "FeatureCollection", "features": [poi("Ивайло"), poi("Сливница")]}
    en = {"type": "FeatureCollection", "features": [poi("Slivnitsa")]}
    records, fetch = run(source("taxi_ranks", {"bg": bg, "en": en}))
    assert len(records) == 2 and all(r.translations == {} for r in records)
    assert fetch.complete


def test_a_failed_english_fetch_still_yields_the_bulgarian_records() -> None:
    bg = {"type": "FeatureCollection", "features": [poi("Ивайло")]}
    records, fetch = run(source("cctv", {"bg": bg, "en": httpx.Response(503)}))
    assert len(records) == 1 and records[0].translations == {} and fetch.complete


def test_a_failed_primary_fetch_fails_the_run() -> None:
    en = {"type": "FeatureCollection", "features": []}
    src = source("cctv", {"bg": httpx.Response(500), "en": en})
    with pytest.raises(SourceUnavailableError) as info:
        run(src)
    assert info.value.source == "smartburgas.cctv"


def test_missing_features1_names_the_source() -> None:
    # The proxy's output format (features, not features1) served where the raw feed is expected.
    wrong = {"type": "FeatureCollection", "features": []}
    with pytest.raises(SourceFormatError) as info:
        run(source("air_quality", {"bg": wrong, "en": wrong}))
    assert info.value.source == "smartburgas.air_quality"
    assert "features1" in info.value.reason and "'features'" in info.value.reason


@pytest.mark.parametrize("payload", [[], "text", {"type": "FeatureCollection", "features1": {}}])
def test_wrong_envelopes_are_format_errors(payload: Any) -> None:
    with pytest.raises(SourceFormatError):
        run(source("car_parks", {"bg": payload, "en": payload}))


def test_a_bad_feature_is_yielded_and_the_others_go_on() -> None:
    bg = {"type": "FeatureCollection", "features1": [
        feature1("1", "ok"), "garbage", {"type": "Feature"}, feature1("2", "ok too")]}
    records, fetch = run(source("traffic", {"bg": bg, "en": bg}))
    assert len(records) == 4 and fetch.complete
    assert records[1].problem and "str" in records[1].problem and records[1].payload == {}
    assert records[2].problem is None and records[2].payload == {"type": "Feature"}
    assert records[3].payload["properties"]["name"] == "ok too"


def test_feature_count_is_bounded() -> None:
    bg = {"type": "FeatureCollection", "features": [poi(str(i)) for i in range(5)]}
    records, fetch = run(source("cctv", {"bg": bg, "en": bg}, max_features=3))
    assert len(records) == 3 and not fetch.complete and "only the first 3" in fetch.incomplete_reasons[0]


def test_url_comes_from_the_environment_else_the_bundled_sample() -> None:
    env_src = SmartBurgasSource("ev_chargers", env={"EV_URL": "https://x/ev"})
    assert env_src.url_for("en") == ("https://x/ev", {"lang": "en"})
    default = SmartBurgasSource("ev_chargers", env={})
    path, params = default.url_for("en")
    assert params == {} and path == str(SAMPLES_DIR / "en" / "EVPoint.json")
    static = SmartBurgasSource("paid_parking_zones", env={})
    assert static.url_for("bg") == (str(SAMPLES_DIR / "paid-parking-zones.json"), {})


def test_every_feed_has_a_bundled_sample_and_a_distinct_env_var() -> None:
    assert len(FEEDS) == 10 and len({f.env_var for f in FEEDS.values()}) == 10
    for spec in FEEDS.values():
        for lang in ("bg", "en") if spec.translated else (None,):
            assert spec.sample_path(lang).is_file(), spec.name


def test_pairing_keeps_unmatched_ids_as_orphans() -> None:
    pairing = pair_features("id", [{"properties": {"id": "1"}}],
                            [{"properties": {"id": "2"}}, {"properties": {"id": "1"}}])
    assert pairing.twin_of == {0: {"properties": {"id": "1"}}} and pairing.orphans == [0]
