"""Paging as a two-phase object: read the page (``update_state``), then change the next request.

After dlt's ``rest_client/paginators.py``. A paginator only decides; :func:`iter_pages` does the
I/O, streams one page at a time, and enforces the hard limits every paged source shares:

- at most ``max_pages`` pages and ``max_records`` records, else a :class:`SourceFormatError` naming
  the source (a layer that pages forever must not run forever);
- a request that repeats an earlier one (a ``next`` link pointing back, an offset that does not
  move) or a page whose records repeat the previous page (a server ignoring the offset) is an error.

    paginator = OffsetPaginator("resultOffset", "resultRecordCount", 1000, has_more=exceeded)
    async for page in iter_pages(get_json, PageRequest(url, params), paginator, source="beaches"):
        ...  # page.records
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urljoin

import orjson

from adapter.errors import SourceFormatError


@dataclass(slots=True)
class PageRequest:
    """The next request to send: a URL and its query parameters (mutated by paginators)."""

    url: str
    params: dict[str, str] = field(default_factory=dict)

    def fingerprint(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """A hashable identity of the request, to detect loops."""
        return self.url, tuple(sorted(self.params.items()))


@dataclass(frozen=True, slots=True)
class Page:
    """One decoded page: its number (1-based), the URL asked, the whole payload, its records and a
    digest of the records (``b""`` for an empty page)."""

    number: int
    url: str
    payload: Mapping[str, Any]
    records: Sequence[Any]
    digest: bytes = b""


@dataclass(frozen=True, slots=True)
class PageLimits:
    """Hard caps for one fetch of a paged source."""

    max_pages: int = 10_000
    max_records: int = 2_000_000


class Paginator(Protocol):
    """Reads each page, then prepares the next request; ``has_next_page`` says whether to go on."""

    has_next_page: bool

    def init_request(self, request: PageRequest) -> None:
        """Set the paging parameters of the first request."""
        ...

    def update_state(self, payload: Mapping[str, Any], records: Sequence[Any]) -> None:
        """Read a page; set ``has_next_page``."""
        ...

    def update_request(self, request: PageRequest) -> None:
        """Change ``request`` into the request for the next page."""
        ...


class SinglePagePaginator:
    """No paging: one request (files, layers without paging, static GeoJSON)."""

    has_next_page = True

    def init_request(self, request: PageRequest) -> None:
        """Nothing to set."""

    def update_state(self, payload: Mapping[str, Any], records: Sequence[Any]) -> None:
        """One page is all there is."""
        self.has_next_page = False

    def update_request(self, request: PageRequest) -> None:
        """Never called after the only page."""


HasMore = Callable[[Mapping[str, Any], int, int], bool]
"""``(payload, records on this page, offset after this page) -> whether another page exists``."""


class OffsetPaginator:
    """Offset/limit paging (ArcGIS ``resultOffset``/``resultRecordCount``, WFS ``startIndex``/``count``).

    The offset advances by the records actually returned (servers may cap a page below the limit);
    an empty page always ends the layer, so a last page that is exactly full costs one empty request.
    """

    def __init__(self, offset_param: str, limit_param: str, limit: int, *, has_more: HasMore,
                 offset: int = 0) -> None:
        self.offset_param = offset_param
        self.limit_param = limit_param
        self.limit = limit
        self.offset = offset
        self.has_more = has_more
        self.has_next_page = True

    def init_request(self, request: PageRequest) -> None:
        """First page: offset and limit parameters."""
        self.update_request(request)

    def update_state(self, payload: Mapping[str, Any], records: Sequence[Any]) -> None:
        """Advance by the page's record count; stop on an empty page or when the server says so."""
        self.offset += len(records)
        self.has_next_page = bool(records) and self.has_more(payload, len(records), self.offset)

    def update_request(self, request: PageRequest) -> None:
        """Set offset and limit."""
        request.params[self.offset_param] = str(self.offset)
        request.params[self.limit_param] = str(self.limit)


class IdChunkPaginator:
    """Pages through a known id list in chunks (ArcGIS ``objectIds`` when a layer cannot page)."""

    def __init__(self, ids: Sequence[Any], chunk: int, *, param: str = "objectIds") -> None:
        self.ids = ids
        self.chunk = max(1, chunk)
        self.param = param
        self.index = 0
        self.has_next_page = bool(ids)

    def init_request(self, request: PageRequest) -> None:
        """First chunk of ids."""
        self.update_request(request)

    def update_state(self, payload: Mapping[str, Any], records: Sequence[Any]) -> None:
        """Move to the next chunk; done when the ids are used up."""
        self.index += self.chunk
        self.has_next_page = self.index < len(self.ids)

    def update_request(self, request: PageRequest) -> None:
        """Ask for the current chunk of ids."""
        request.params[self.param] = ",".join(str(i) for i in self.ids[self.index:self.index + self.chunk])


class NextLinkPaginator:
    """Follows ``links`` with ``rel=next`` (OGC API Features); relative links resolve against the page."""

    def __init__(self) -> None:
        self.has_next_page = True
        self.next_url: str | None = None
        self.current_url = ""

    def init_request(self, request: PageRequest) -> None:
        """The first request is sent as configured."""
        self.current_url = request.url

    def update_state(self, payload: Mapping[str, Any], records: Sequence[Any]) -> None:
        """Find the next link; an empty page ends the collection whatever the links say."""
        self.next_url = None
        links = payload.get("links")
        if records and isinstance(links, list):
            for link in links:
                if isinstance(link, Mapping) and link.get("rel") == "next" and isinstance(link.get("href"), str):
                    self.next_url = urljoin(self.current_url, link["href"])
                    break
        self.has_next_page = self.next_url is not None

    def update_request(self, request: PageRequest) -> None:
        """The next link already carries every parameter."""
        assert self.next_url is not None
        request.url = self.current_url = self.next_url
        request.params = {}


def records_digest(records: Sequence[Any]) -> bytes:
    """A digest of a page's records, exactly as sent (order included)."""
    try:
        body = orjson.dumps(records, default=str)
    except (orjson.JSONEncodeError, TypeError):  # e.g. an integer beyond 64 bits in one record
        body = repr(records).encode()
    return hashlib.blake2b(body, digest_size=16).digest()


GetJSON = Callable[[PageRequest], Awaitable[Any]]
RecordsOf = Callable[[Any], Sequence[Any]]


async def iter_pages(get_json: GetJSON, request: PageRequest, paginator: Paginator, *,
                     records_of: RecordsOf, source: str,
                     limits: PageLimits = PageLimits()) -> AsyncGenerator[Page, None]:
    """Fetch and yield pages until the paginator stops, within ``limits``; see the module docstring.

    One page is read ahead: the request for page n+1 is sent before page n is yielded, so the
    server prepares it (and the network carries it) while the consumer maps page n. Paging
    depends only on the page itself, never on what the consumer does with it. Closing the
    iterator early cancels the request in flight (use ``contextlib.aclosing``).
    """
    paginator.init_request(request)
    seen_requests: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    previous_digest: bytes | None = None
    total = 0

    def send(number: int) -> tuple[str, dict[str, str], asyncio.Future[Any]]:
        if number > limits.max_pages:
            raise SourceFormatError(
                f"still paging after {limits.max_pages} pages ({total} records): the layer pages "
                f"forever or max_pages is too low (last request {request.url} {request.params})",
                source=source)
        fingerprint = request.fingerprint()
        if fingerprint in seen_requests:
            raise SourceFormatError(f"page {number} repeats an earlier request ({request.url} "
                                    f"{request.params}): the server's paging loops", source=source)
        seen_requests.add(fingerprint)
        sent = PageRequest(request.url, dict(request.params))
        future = asyncio.ensure_future(get_json(sent))
        future.add_done_callback(_consume_outcome)
        return sent.url, sent.params, future

    if not paginator.has_next_page:
        return
    number = 1
    in_flight: tuple[str, dict[str, str], asyncio.Future[Any]] | None = send(number)
    refused: SourceFormatError | None = None  # raised after the page before it is yielded
    try:
        while in_flight is not None:
            url, params, future = in_flight
            in_flight = None
            payload = await future
            records = records_of(payload)
            digest = b""
            if records:
                digest = records_digest(records)
                if digest == previous_digest:
                    raise SourceFormatError(f"page {number} repeats page {number - 1} ({url} "
                                            f"{params}): the server ignores the paging "
                                            "parameters", source=source)
                previous_digest = digest
            total += len(records)
            if total > limits.max_records:
                raise SourceFormatError(f"more than {limits.max_records} records after {number} pages",
                                        source=source)
            paginator.update_state(payload, records)
            page = Page(number, url, payload, records, digest)
            if paginator.has_next_page:
                paginator.update_request(request)
                number += 1
                try:
                    in_flight = send(number)
                except SourceFormatError as exc:
                    refused = exc
                else:
                    # Let the request go out now: mapping a page never waits on I/O, so without
                    # this turn of the loop it would only start when the next page is awaited.
                    await asyncio.sleep(0)
            yield page
            if refused is not None:
                raise refused
    finally:
        if in_flight is not None:
            in_flight[2].cancel()
            await asyncio.wait([in_flight[2]])  # settled before the caller closes its HTTP client


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    """A read-ahead nobody awaits (the consumer stopped) must not log "exception never retrieved"."""
    if not future.cancelled():
        future.exception()
