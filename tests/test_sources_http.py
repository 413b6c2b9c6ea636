"""PayloadFetcher: retries, size bound, JSON errors, file paths (unit tests, no sockets)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from adapter.errors import AuthError, SourceFormatError, SourceUnavailableError
from adapter.sources.http import FetchOptions, PayloadFetcher, with_params


class Recorder:
    """A MockTransport handler that answers from a list and records the requests."""

    def __init__(self, *answers: httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer(request) if callable(answer) else answer


def fetcher(handler: Recorder, **options: object) -> tuple[PayloadFetcher, list[float]]:
    """A fetcher over a MockTransport whose sleeps are recorded, not slept."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return PayloadFetcher(client, FetchOptions(**options), sleep=sleep,  # type: ignore[arg-type]
                          rng=random.Random(1)), slept


def get_json(f: PayloadFetcher, url: str = "https://feeds.example/air", **kw: object) -> object:
    return asyncio.run(f.get_json(url, source="smartburgas.air_quality", **kw))  # type: ignore[arg-type]


def test_transient_5xx_is_retried_with_growing_backoff_then_succeeds() -> None:
    handler = Recorder(httpx.Response(503), httpx.Response(502),
                       httpx.Response(200, json={"features1": []}))
    f, slept = fetcher(handler)
    assert get_json(f) == {"features1": []}
    assert len(handler.requests) == 3
    assert len(slept) == 2 and slept[1] > slept[0] > 0


def test_network_failure_after_all_attempts_names_source_and_url() -> None:
    handler = Recorder(httpx.ConnectError("connection refused"))
    f, slept = fetcher(handler, attempts=3)
    with pytest.raises(SourceUnavailableError) as info:
        get_json(f)
    assert len(handler.requests) == 3 and len(slept) == 2
    assert info.value.source == "smartburgas.air_quality"
    assert info.value.context["url"] == "https://feeds.example/air"
    assert "ConnectError" in info.value.reason


def test_timeouts_are_transient() -> None:
    handler = Recorder(httpx.ReadTimeout("slow"), httpx.Response(200, json=[1]))
    f, _ = fetcher(handler)
    assert get_json(f) == [1]


def test_retry_after_on_429_is_honoured_up_to_the_cap() -> None:
    handler = Recorder(httpx.Response(429, headers={"Retry-After": "7"}),
                       httpx.Response(200, json={}))
    f, slept = fetcher(handler, backoff_max=30.0)
    get_json(f)
    assert slept[0] >= 7


def test_client_errors_are_not_retried() -> None:
    handler = Recorder(httpx.Response(404, text="not here"))
    f, slept = fetcher(handler)
    with pytest.raises(SourceUnavailableError) as info:
        get_json(f)
    assert len(handler.requests) == 1 and not slept
    assert info.value.context["status"] == 404


def test_refused_credentials_are_an_auth_error() -> None:
    f, _ = fetcher(Recorder(httpx.Response(403)))
    with pytest.raises(AuthError):
        get_json(f)


def test_html_error_page_is_a_format_error_with_a_snippet() -> None:
    page = "<!DOCTYPE html><html><head><title>Service Unavailable</title></head></html>"
    f, _ = fetcher(Recorder(httpx.Response(200, text=page, headers={"Content-Type": "text/html"})))
    with pytest.raises(SourceFormatError) as info:
        get_json(f)
    assert "HTML" in info.value.reason and "Service Unavailable" in info.value.reason
    assert info.value.source == "smartburgas.air_quality"
    assert "https://feeds.example/air" in str(info.value)


@pytest.mark.parametrize("body", [
    b'{"type": "FeatureCollection", "featu', b'{"features1": [{"name": "\xd0\x91\xd1',  # cut inside a letter
])
def test_truncated_json_is_reported_as_truncated(body: bytes) -> None:
    f, _ = fetcher(Recorder(httpx.Response(200, content=body)))
    with pytest.raises(SourceFormatError, match="truncated JSON"):
        get_json(f)


@pytest.mark.parametrize(("body", "reason"), [
    (b"", "empty"), (b"   \n", "empty"), (b'{"a": 1} trailing', "invalid JSON"),
    (b'{"a": "\xff"}', "UTF-8"),
])
def test_unreadable_bodies_are_format_errors(body: bytes, reason: str) -> None:
    f, _ = fetcher(Recorder(httpx.Response(200, content=body)))
    with pytest.raises(SourceFormatError, match=reason):
        get_json(f)


def test_a_byte_order_mark_is_accepted() -> None:
    f, _ = fetcher(Recorder(httpx.Response(200, content=b'\xef\xbb\xbf{"ok": true}')))
    assert get_json(f) == {"ok": True}


def test_declared_oversized_response_is_refused() -> None:
    f, _ = fetcher(Recorder(httpx.Response(200, content=b"x" * 5000)), max_bytes=1000)
    with pytest.raises(SourceFormatError, match="1000 byte limit"):
        get_json(f)


def test_streamed_response_is_aborted_past_the_limit() -> None:
    chunks_sent: list[int] = []

    async def endless() -> object:
        for _ in range(10_000):
            chunks_sent.append(1)
            yield b"[" * 1024

    handler = Recorder(lambda request: httpx.Response(200, content=endless()))
    f, _ = fetcher(handler, max_bytes=10 * 1024)
    with pytest.raises(SourceFormatError, match="limit"):
        get_json(f)
    assert len(chunks_sent) < 20  # stopped reading long before the end


def test_params_are_added_to_an_existing_query_string() -> None:
    handler = Recorder(httpx.Response(200, json={}))
    f, _ = fetcher(handler)
    get_json(f, "https://feeds.example/api?key=abc&lang=xx", params={"lang": "en"})
    assert handler.requests[0].url.params.get_list("lang") == ["en"]
    assert handler.requests[0].url.params["key"] == "abc"
    assert with_params("https://h/p", {"lang": "bg"}) == "https://h/p?lang=bg"
    # The form httpx itself writes: a given key replaced, spaces as +, reserved characters escaped.
    assert with_params("https://h/q?a=1&lang=xx&lang=yy", {"lang": "bg", "where": "1=1",
                                                          "orderByFields": "OBJECTID ASC", "outFields": "*"}) \
        == "https://h/q?a=1&lang=bg&where=1%3D1&orderByFields=OBJECTID+ASC&outFields=%2A"


def test_files_and_file_urls_read_through_the_same_interface(tmp_path: Path) -> None:
    path = tmp_path / "Кирилица feed.json"
    path.write_bytes(b'{"features": []}')
    f = PayloadFetcher(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: 1 / 0)))
    assert asyncio.run(f.get_json(str(path), source="s")) == {"features": []}
    assert asyncio.run(f.get_json(path.as_uri(), source="s", params={"lang": "en"})) == {"features": []}


def test_missing_or_oversized_files_give_clear_errors(tmp_path: Path) -> None:
    f = PayloadFetcher(options=FetchOptions(max_bytes=10))
    with pytest.raises(SourceUnavailableError, match="cannot read"):
        asyncio.run(f.get_json(str(tmp_path / "absent.json"), source="s"))
    big = tmp_path / "big.json"
    big.write_bytes(b"[" + b"1," * 100 + b"1]")
    with pytest.raises(SourceFormatError, match="limit"):
        asyncio.run(f.get_json(str(big), source="s"))
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"features": [')
    with pytest.raises(SourceFormatError, match="truncated") as info:
        asyncio.run(PayloadFetcher().get_json(str(broken), source="s"))
    assert str(broken) in str(info.value)


def test_a_redirect_loop_is_source_unavailable_and_not_retried() -> None:
    handler = Recorder(lambda request: httpx.Response(302, headers={"Location": str(request.url)}))
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    f = PayloadFetcher(client, FetchOptions(attempts=3))
    with pytest.raises(SourceUnavailableError, match="too many redirects"):
        get_json(f)
    assert len(handler.requests) == 21  # httpx's limit of 20 redirects, once


@pytest.mark.parametrize("error, expected", [
    (httpx.DecodingError("bad gzip"), SourceFormatError),
    (httpx.UnsupportedProtocol("no ftp"), SourceUnavailableError),
])
def test_every_httpx_error_is_translated_at_the_boundary(error: Exception, expected: type) -> None:
    f, _ = fetcher(Recorder(error), attempts=1)
    with pytest.raises(expected):
        get_json(f)


class _Trickle(httpx.AsyncByteStream):
    """A body that never ends: one byte, then a long wait (each read well inside the read timeout)."""

    async def __aiter__(self):  # type: ignore[override]
        while True:
            yield b" "
            await asyncio.sleep(0.05)


def test_a_request_past_its_deadline_is_retried_then_unavailable() -> None:
    handler = Recorder(lambda request: httpx.Response(200, stream=_Trickle()))
    f, slept = fetcher(handler, attempts=2, deadline=0.2)
    with pytest.raises(SourceUnavailableError, match="0.2 s request deadline"):
        get_json(f)
    assert len(handler.requests) == 2 and len(slept) == 1
