"""A GeoJSON FeatureCollection from a file or a URL, in one piece.

The CRS is the declared ``crs`` if configured, else the collection's ``crs`` member (GeoJSON 2008,
still written by QGIS and GeoServer), else CRS84 as RFC 7946 says. The whole document is one
payload, so the fetcher's byte bound is what keeps it bounded; ``max_records`` caps the features.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from adapter.errors import SourceFormatError
from adapter.sources.base import Fetch, RawRecord
from adapter.sources.features import feature_record, features_of, page_key, prepared, resolve_crs
from adapter.sources.http import FetchOptions, PayloadFetcher, decode_json
from adapter.sources.paging import records_digest


class GeoJSONSource:
    """A GeoJSON file or URL as raw records."""

    def __init__(self, name: str, url: str, *, crs: Any = None, id_field: str | None = None,
                 max_records: int = 1_000_000, client: httpx.AsyncClient | None = None,
                 options: FetchOptions | None = None) -> None:
        self.name = name
        self.url = url
        self.crs = crs
        self.id_field = id_field
        self.max_records = max_records
        self._fetcher = PayloadFetcher(client, options)

    def fetch(self) -> Fetch:
        """One run: read the document and yield its features."""
        return Fetch(self.name, self._produce)

    async def version(self) -> str | None:
        """The document's version (file size and time, or ETag / Last-Modified): an unchanged
        one lets the sync skip the fetch (adapter.sync.skip)."""
        try:
            return await self._fetcher.version(self.url, source=self.name)
        finally:
            await self._fetcher.aclose()

    async def _produce(self, fetch: Fetch) -> AsyncIterator[RawRecord]:
        try:
            raw = await self._fetcher.get(self.url, source=self.name)
        finally:
            await self._fetcher.aclose()
        payload = decode_json(raw, source=self.name)
        features = features_of(payload, source=self.name, url=self.url)
        if len(features) > self.max_records:
            raise SourceFormatError(f"{len(features)} features, more than the limit of "
                                    f"{self.max_records}", source=self.name)
        crs = resolve_crs(self.crs, payload.get("crs"), source=self.name)
        if fetch.page_filter is not None and fetch.skip_page(
                page_key(records_digest(features), crs, self.id_field), len(features)):
            return
        for index, feature in prepared(features, crs):
            yield feature_record(self.name, feature, index, crs=crs, fetched_at=raw.fetched_at,
                                 origin=raw.url, id_field=self.id_field)
