"""Fetch a payload over HTTP(S) or from a file, bounded, retried, and decoded as JSON.

Every HTTP source uses :class:`PayloadFetcher` so that all of them behave the same way:

- one injectable ``httpx.AsyncClient`` (the fetcher makes and closes its own when none is given);
- retries with exponential backoff and jitter (tenacity) on *transient* failures only: connection
  errors, timeouts, HTTP 429 and 5xx (``Retry-After`` is honoured up to ``backoff_max``);
- the body is streamed and the download aborted past ``max_bytes`` (decoded size, so a compressed
  bomb is bounded too);
- errors are translated here, at the boundary: the network or the peer failing gives
  :class:`SourceUnavailableError`, 401/403 gives :class:`AuthError`, and a body that is not the
  JSON we asked for (an HTML error page, truncated JSON, empty, not UTF-8) gives
  :class:`SourceFormatError`; each names the source, the URL and the reason;
- ``file://`` URLs and plain paths (the bundled samples) go through the same interface, with the
  same size bound and JSON errors. Query parameters do not apply to files.

    fetcher = PayloadFetcher(client)
    payload = await fetcher.get_json("https://host/feed", source="traffic", params={"lang": "bg"})
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit
from urllib.request import url2pathname

import httpx
import orjson
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from adapter.errors import AuthError, SourceFormatError, SourceUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 50 * 1024 * 1024
TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SNIPPET = 120


@dataclass(frozen=True, slots=True)
class FetchOptions:
    """Timeouts, retry policy and size bound for one source."""

    timeout: float = 30.0
    connect_timeout: float = 10.0
    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    jitter: float = 0.5
    max_bytes: int = DEFAULT_MAX_BYTES
    headers: Mapping[str, str] = field(default_factory=lambda: {"Accept": "application/json"})

    def httpx_timeout(self) -> httpx.Timeout:
        """The httpx timeout these options describe."""
        return httpx.Timeout(self.timeout, connect=self.connect_timeout)


@dataclass(frozen=True, slots=True)
class Payload:
    """Raw bytes of one response with what is needed to judge them."""

    url: str
    body: bytes
    status: int = 200
    content_type: str = ""
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class _TransientError(Exception):
    """Internal: a failure worth retrying; carries what the final error should say."""

    def __init__(self, reason: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


def is_local(url: str) -> bool:
    """True for ``file://`` URLs and plain filesystem paths."""
    scheme = urlsplit(url).scheme.lower()
    # One-letter "schemes" are Windows drive letters, i.e. paths.
    return scheme in ("", "file") or len(scheme) == 1


def local_path(url: str) -> Path:
    """The filesystem path of a ``file://`` URL or plain path."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "file":
        return Path(url2pathname(unquote(parts.path)))
    return Path(url)


def with_params(url: str, params: Mapping[str, str] | None) -> str:
    """``url`` with ``params`` set, keeping any query it already has (a key given again is replaced)."""
    if not params:
        return url
    # One parse and one encode (httpx.URL.copy_set_param re-parses the URL per parameter: ~1.5 ms
    # for a paged query's seven); the same form as httpx writes (spaces as +, reserved escaped).
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def decode_json(payload: Payload, *, source: str) -> Any:
    """Parse a payload as JSON, or raise SourceFormatError saying what the body is instead."""
    body = payload.body
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]  # a UTF-8 BOM is harmless; orjson refuses it
    stripped = body.lstrip()
    if not stripped:
        raise _format_error(source, payload, "empty response body")
    if stripped[:1] == b"<" or "html" in payload.content_type.lower():
        raise _format_error(source, payload, f"HTML page instead of JSON: {_snippet(stripped)!r}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "unexpected end of data" in exc.msg or ("UTF-8" in exc.msg and _cut_in_a_character(body)):
            reason = f"truncated JSON after {len(body)} bytes"
        elif "UTF-8" in exc.msg:
            reason = "body is not valid UTF-8"
        else:
            reason = f"invalid JSON at byte {exc.pos}: {exc.msg}; starts {_snippet(stripped)!r}"
        raise _format_error(source, payload, reason) from None


def _cut_in_a_character(body: bytes) -> bool:
    """True when only an incomplete UTF-8 sequence at the very end keeps ``body`` from decoding."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.reason == "unexpected end of data"
    return False


def _snippet(body: bytes) -> str:
    return body[:_SNIPPET].decode("utf-8", "replace").replace("\n", " ")


def _format_error(source: str, payload: Payload, reason: str) -> SourceFormatError:
    return SourceFormatError(f"{reason} (from {payload.url}, HTTP {payload.status})",
                             source=source, url=payload.url, status=payload.status)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


class _Backoff:
    """Exponential backoff with full jitter, raised to the server's Retry-After when it asks."""

    def __init__(self, options: FetchOptions, rng: random.Random) -> None:
        self.options = options
        self.rng = rng

    def __call__(self, state: RetryCallState) -> float:
        o = self.options
        delay: float = min(o.backoff_max, o.backoff_initial * 2 ** (state.attempt_number - 1))
        delay += self.rng.uniform(0, o.jitter)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _TransientError) and exc.retry_after is not None:
            delay = max(delay, min(exc.retry_after, o.backoff_max))
        return delay


class PayloadFetcher:
    """Fetches bounded payloads over HTTP(S) or from files, with retries; see the module docstring."""

    def __init__(self, client: httpx.AsyncClient | None = None, options: FetchOptions | None = None,
                 *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.options = options or FetchOptions()
        self._own_client = client is None
        self._client = client
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def client(self) -> httpx.AsyncClient:
        """The HTTP client, created on first use when none was injected."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.options.httpx_timeout(),
                                             follow_redirects=True)
        return self._client

    async def aclose(self) -> None:
        """Close the client if this fetcher made it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> PayloadFetcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def version(self, url: str, *, source: str) -> str | None:
        """A cheap version of a whole document: a file's size and modification time, or the
        server's ETag / Last-Modified from a HEAD request; None when there is none to be had
        (then the caller simply fetches). Never raises for network trouble."""
        try:
            if is_local(url):
                stat = await asyncio.to_thread(local_path(url).stat)
                return f"size={stat.st_size};mtime_ns={stat.st_mtime_ns}"
            response = await self.client.head(url, headers=dict(self.options.headers),
                                               follow_redirects=True)
        except (OSError, httpx.HTTPError) as exc:
            logger.debug("source %s: no version for %s: %s", source, url, exc)
            return None
        if response.status_code != 200:
            return None
        tag = response.headers.get("etag")
        if tag and not tag.startswith("W/"):  # a weak tag may stay while the bytes change
            return f"etag={tag}"
        modified = response.headers.get("last-modified")
        length = response.headers.get("content-length", "")
        return f"last-modified={modified};length={length}" if modified else None

    async def get_json(self, url: str, *, source: str,
                       params: Mapping[str, str] | None = None) -> Any:
        """GET ``url`` (with ``params``) and return the decoded JSON."""
        return decode_json(await self.get(url, source=source, params=params), source=source)

    async def get(self, url: str, *, source: str,
                  params: Mapping[str, str] | None = None) -> Payload:
        """GET ``url`` (with ``params``) and return its bounded body; retries transient failures."""
        if is_local(url):
            return await asyncio.to_thread(self._read_file, url, source)
        full_url = with_params(url, params)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.options.attempts)),
            wait=_Backoff(self.options, self._rng),
            retry=retry_if_exception_type(_TransientError),
            sleep=self._sleep,
            before_sleep=lambda state: logger.info(
                "source %s: attempt %d for %s failed (%s), retrying", source,
                state.attempt_number, full_url, state.outcome.exception() if state.outcome else "?"),
            reraise=True,
        )
        try:
            return await retrying(self._get_once, full_url, source)
        except _TransientError as exc:
            raise SourceUnavailableError(
                f"{exc.reason} (from {full_url}, after {self.options.attempts} attempts)",
                source=source, url=full_url, status=exc.status) from None

    async def _get_once(self, url: str, source: str) -> Payload:
        try:
            async with self.client.stream("GET", url, headers=dict(self.options.headers),
                                          timeout=self.options.httpx_timeout()) as response:
                status = response.status_code
                if status in TRANSIENT_STATUS:
                    raise _TransientError(f"HTTP {status}", status=status,
                                     retry_after=_retry_after(response))
                if status in (401, 403):
                    raise AuthError(f"HTTP {status} from {url}", source=source, url=url,
                                    status=status)
                if status >= 400:
                    raise SourceUnavailableError(f"HTTP {status} from {url}", source=source,
                                                 url=url, status=status)
                body = await self._read_bounded(response, url, source)
                return Payload(str(response.url), body, status,
                               response.headers.get("Content-Type", ""))
        except httpx.TimeoutException as exc:
            raise _TransientError(f"timeout ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            # Connect/read/protocol errors: the peer or the network failed, a retry may help.
            raise _TransientError(f"network error ({type(exc).__name__}: {exc})") from None
        except httpx.InvalidURL as exc:
            raise SourceUnavailableError(f"invalid URL {url!r}: {exc}", source=source,
                                         url=url) from None

    async def _read_bounded(self, response: httpx.Response, url: str, source: str) -> bytes:
        limit = self.options.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise self._too_large(source, url, int(declared), response.status_code)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise self._too_large(source, url, size, response.status_code)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, source: str, url: str, size: int, status: int) -> SourceFormatError:
        return SourceFormatError(
            f"response larger than the {self.options.max_bytes} byte limit "
            f"(at least {size} bytes) from {url}", source=source, url=url, status=status)

    def _read_file(self, url: str, source: str) -> Payload:
        path = local_path(url)
        limit = self.options.max_bytes
        try:
            with path.open("rb") as handle:
                body = handle.read(limit + 1)
        except OSError as exc:
            raise SourceUnavailableError(f"cannot read {path}: {exc.strerror or exc}",
                                         source=source, url=str(path)) from None
        if len(body) > limit:
            raise self._too_large(source, str(path), len(body), 200)
        return Payload(str(path), body, 200, "application/json")
