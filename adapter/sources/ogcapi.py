"""OGC API Features: ``/collections/{id}/items?limit=&f=json``, following ``links`` with rel=next.

Without ``crs`` the answer is CRS84 (longitude first). With ``crs`` (an OGC URI, Part 2) the server
answers in that CRS and its axis order, and records carry the URI so the mapper transforms
correctly. ``url`` is the API root (the landing page); it may instead be a local path or
``file://`` URL of a saved items answer, read as one page.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import httpx

from adapter.sources.base import Fetch, RawRecord
from adapter.sources.features import features_of, page_records, resolve_crs
from adapter.sources.http import FetchOptions, PayloadFetcher, is_local
from adapter.sources.paging import (
    NextLinkPaginator,
    PageLimits,
    PageRequest,
    Paginator,
    SinglePagePaginator,
    iter_pages,
)


class OGCAPIFeaturesSource:
    """One OGC API Features collection as raw records."""

    def __init__(self, name: str, url: str, collection: str, *, limit: int = 1000,
                 crs: str | None = None, client: httpx.AsyncClient | None = None,
                 options: FetchOptions | None = None, limits: PageLimits = PageLimits()) -> None:
        self.name = name
        self.url = url
        self.collection = collection
        self.limit = max(1, limit)
        self.crs = crs
        self.limits = limits
        self._fetcher = PayloadFetcher(client, options)

    def fetch(self) -> Fetch:
        """One run over the whole collection."""
        return Fetch(self.name, self._produce)

    def _first_request(self) -> tuple[PageRequest, Paginator]:
        if is_local(self.url):
            return PageRequest(self.url), SinglePagePaginator()
        params = {"limit": str(self.limit), "f": "json"}
        if self.crs:
            params["crs"] = self.crs
        items = f"{self.url.rstrip('/')}/collections/{self.collection}/items"
        return PageRequest(items, params), NextLinkPaginator()

    async def _produce(self, fetch: Fetch) -> AsyncIterator[RawRecord]:
        request, paginator = self._first_request()
        crs = resolve_crs(self.crs, source=self.name)
        index = 0
        try:
            async with aclosing(iter_pages(self._get_json, request, paginator, records_of=self._features,
                                           source=self.name, limits=self.limits)) as pages:
                async for page in pages:
                    for record in page_records(fetch, self.name, page, index, crs):
                        yield record
                    index += len(page.records)
        finally:
            await self._fetcher.aclose()

    async def _get_json(self, request: PageRequest) -> Any:
        return await self._fetcher.get_json(request.url, source=self.name, params=request.params)

    def _features(self, payload: Any) -> Sequence[Any]:
        return features_of(payload, source=self.name, url=self.url)
