"""OGC WFS 2.0 GetFeature with GeoJSON output, paged by ``count``/``startIndex``.

Paging stops on an empty page, on a short page (fewer than ``count``), when ``startIndex`` reaches
``numberMatched`` (when the server knows it; GeoServer may say ``"unknown"``), or when a server that
ignores ``count`` returns more than asked. ``srsName`` is sent as configured; the CRS of the answer
is, in order: the declared ``crs``, the answer's ``crs`` member, the ``srsName`` asked, CRS84. The
form of that name carries the axis order (``urn:ogc:def:crs:EPSG::4326`` is latitude first, see
``adapter.geometry``), and records keep it so the mapper transforms correctly.

``url`` may be a local path or ``file://`` URL of a saved GetFeature answer: read as one page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from adapter.errors import SourceFormatError
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.features import features_of, page_records, resolve_crs
from adapter.sources.http import FetchOptions, PayloadFetcher, is_local
from adapter.sources.paging import OffsetPaginator, PageLimits, PageRequest, Paginator, SinglePagePaginator, iter_pages


def wfs_has_more(payload: Mapping[str, Any], returned: int, offset: int, count: int) -> bool:
    """Whether another WFS page exists after one that returned ``returned`` features."""
    if returned < count or returned > count:  # short page, or a server ignoring count: all there is
        return False
    matched = payload.get("numberMatched", payload.get("totalFeatures"))
    if isinstance(matched, int) and not isinstance(matched, bool):
        return offset < matched
    return True  # "unknown": ask again, an empty page ends it


class WFSSource:
    """One WFS 2.0 feature type as raw records."""

    def __init__(self, name: str, url: str, type_name: str, *, srs_name: str | None = None,
                 page_size: int = 1000, crs: Any = None, params: Mapping[str, str] | None = None,
                 client: httpx.AsyncClient | None = None, options: FetchOptions | None = None,
                 limits: PageLimits = PageLimits()) -> None:
        self.name = name
        self.url = url
        self.type_name = type_name
        self.srs_name = srs_name
        self.page_size = max(1, page_size)
        self.crs = crs
        self.params = dict(params or {})  # e.g. a CQL_FILTER or an API key parameter
        self.limits = limits
        self._fetcher = PayloadFetcher(client, options)

    def fetch(self) -> Fetch:
        """One run over the whole feature type."""
        return Fetch(self.name, self._produce)

    def _first_request(self) -> tuple[PageRequest, Paginator]:
        if is_local(self.url):
            return PageRequest(self.url), SinglePagePaginator()
        params = {"service": "WFS", "version": "2.0.0", "request": "GetFeature",
                  "typeNames": self.type_name, "outputFormat": "application/json", **self.params}
        if self.srs_name:
            params["srsName"] = self.srs_name
        size = self.page_size
        return PageRequest(self.url, params), OffsetPaginator(
            "startIndex", "count", size,
            has_more=lambda payload, returned, offset: wfs_has_more(payload, returned, offset, size))

    async def _produce(self, fetch: Fetch) -> AsyncIterator[RawRecord]:
        request, paginator = self._first_request()
        index = 0
        try:
            async with aclosing(iter_pages(self._get_json, request, paginator, records_of=self._features,
                                           source=self.name, limits=self.limits)) as pages:
                async for page in pages:
                    crs = resolve_crs(self.crs, page.payload.get("crs"), self.srs_name, source=self.name)
                    for record in page_records(fetch, self.name, page, index, crs):
                        yield record
                    index += len(page.records)
        finally:
            await self._fetcher.aclose()

    async def _get_json(self, request: PageRequest) -> Any:
        payload = await self._fetcher.get_json(request.url, source=self.name, params=request.params)
        if isinstance(payload, Mapping) and payload.get("type") == "ExceptionReport":
            raise SourceFormatError(f"WFS exception from {request.url}: {payload.get('exceptions')}",
                                    source=self.name, url=request.url)
        return payload

    def _features(self, payload: Any) -> Sequence[Any]:
        return features_of(payload, source=self.name, url=self.url)
