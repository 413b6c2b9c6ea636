"""ArcGIS REST FeatureServer/MapServer layers: read the layer, then page through its query.

1. ``<layer>?f=json`` gives ``maxRecordCount``, ``advancedQueryCapabilities.supportsPagination``,
   ``objectIdField``, ``fields`` (for ``esriFieldTypeDate``) and the layer's spatial reference.
2. A layer that can page is queried with ``resultOffset``/``resultRecordCount`` until
   ``exceededTransferLimit`` is false (top level for ``f=json``, under ``properties`` for
   ``f=geojson``) or a page is empty. A layer that cannot page gives its object ids
   (``returnIdsOnly=true``) and is queried in chunks of ``objectIds``.
3. Each feature becomes a raw record (see ``features.py``): Esri ``attributes`` as ``properties``,
   epoch-millisecond dates as aware UTC datetimes, geometry untouched with the response's CRS.

``url`` may also be a local path or ``file://`` URL of a saved query response (an Esri FeatureSet
or GeoJSON): it is read as one page, its own ``fields`` and ``spatialReference`` standing in for the
layer metadata. ArcGIS reports errors as HTTP 200 with an ``error`` object; those are translated.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx

from adapter.errors import AuthError, SourceFormatError, SourceUnavailableError
from adapter.geometry import SourceCRS
from adapter.sources.base import Fetch, RawRecord, utcnow
from adapter.sources.features import feature_record, features_of, page_key, page_size, resolve_crs
from adapter.sources.http import FetchOptions, PayloadFetcher, is_local
from adapter.sources.paging import (
    IdChunkPaginator,
    OffsetPaginator,
    PageLimits,
    PageRequest,
    Paginator,
    SinglePagePaginator,
    iter_pages,
)

logger = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def exceeded_transfer_limit(payload: Mapping[str, Any], *_: int) -> bool:
    """ArcGIS's "more records exist" flag: top level (f=json) or under ``properties`` (f=geojson)."""
    if payload.get("exceededTransferLimit") is True:
        return True
    props = payload.get("properties")
    return isinstance(props, Mapping) and props.get("exceededTransferLimit") is True


def epoch_ms_to_datetime(value: Any) -> datetime:
    """An Esri date (milliseconds since 1970-01-01 UTC) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"not epoch milliseconds: {value!r}")
    return _EPOCH + timedelta(milliseconds=value)


class ArcGISSource:
    """An ArcGIS REST layer (``.../FeatureServer/<n>`` or ``.../MapServer/<n>``) as raw records."""

    def __init__(self, name: str, url: str, *, output: Literal["json", "geojson"] = "json",
                 out_sr: int | None = None, where: str = "1=1", out_fields: str = "*",
                 page_size: int | None = None, crs: Any = None,
                 client: httpx.AsyncClient | None = None, options: FetchOptions | None = None,
                 limits: PageLimits = PageLimits()) -> None:
        self.name = name
        self.url = url.rstrip("/") if not is_local(url) else url
        self.output = output
        self.out_sr = out_sr
        self.where = where
        self.out_fields = out_fields
        self.page_size = page_size
        self.crs = crs  # declared CRS: overrides whatever the server says (for misconfigured layers)
        self.limits = limits
        self._fetcher = PayloadFetcher(client, options)

    def fetch(self) -> Fetch:
        """One run over the whole layer."""
        return Fetch(self.name, self._produce)

    async def version(self) -> str | None:
        """The layer's last edit time (``editingInfo.lastEditDate``), with the query it answers.

        ArcGIS bumps it on every edit of the layer's data, so an unchanged value means the
        features are the same; None when the layer does not publish it (or is a local file).
        """
        if is_local(self.url):
            return None
        try:
            layer = await self._get_json(PageRequest(self.url, {"f": "json"}))
        finally:
            await self._fetcher.aclose()
        editing = layer.get("editingInfo") if isinstance(layer, Mapping) else None
        edited = editing.get("lastEditDate") if isinstance(editing, Mapping) else None
        if not isinstance(edited, (int, str)) or isinstance(edited, bool):
            return None
        return f"lastEditDate={edited};where={self.where};outFields={self.out_fields};outSR={self.out_sr}"

    async def _produce(self, fetch: Fetch) -> AsyncIterator[RawRecord]:
        try:
            if is_local(self.url):
                layer: Mapping[str, Any] = {}
                request = PageRequest(self.url)
                paginator: Paginator = SinglePagePaginator()
            else:
                layer = await self._get_json(PageRequest(self.url, {"f": "json"}))
                request, paginator = await self._plan(layer)
            index = 0
            async with aclosing(iter_pages(self._get_json, request, paginator,
                                           records_of=self._features, source=self.name,
                                           limits=self.limits)) as pages:
                async for page in pages:
                    meta = layer or page.payload
                    crs = self._crs(page.payload, layer)
                    dates = _date_fields(meta.get("fields") or page.payload.get("fields"))
                    id_field = _id_field(meta) or _id_field(page.payload)
                    key = page_key(page.digest, crs, id_field, sorted(dates))
                    if fetch.skip_page(key, len(page.records)):
                        index += len(page.records)
                        continue
                    fetched_at = utcnow()
                    for feature in page.records:
                        yield self._record(feature, index, crs, dates, id_field, fetched_at, page.url)
                        index += 1
        finally:
            await self._fetcher.aclose()

    async def _plan(self, layer: Mapping[str, Any]) -> tuple[PageRequest, Paginator]:
        if "fields" not in layer and "type" not in layer:
            raise SourceFormatError(f"{self.url} is not an ArcGIS layer (no fields/type in its "
                                    "metadata); the URL must end in /FeatureServer/<n>",
                                    source=self.name)
        size = page_size(self.page_size, layer.get("maxRecordCount"))
        params = {"where": self.where, "outFields": self.out_fields, "returnGeometry": "true",
                  "f": self.output}
        if self.out_sr is not None:
            params["outSR"] = str(self.out_sr)
        id_field = _id_field(layer)
        if id_field:
            params["orderByFields"] = f"{id_field} ASC"  # a stable order keeps offsets meaningful
        query = f"{self.url}/query"
        advanced = layer.get("advancedQueryCapabilities")
        if isinstance(advanced, Mapping) and advanced.get("supportsPagination") is True:
            return PageRequest(query, params), OffsetPaginator(
                "resultOffset", "resultRecordCount", size, has_more=exceeded_transfer_limit)
        ids = await self._object_ids(query)
        logger.info("source %s: layer cannot page; fetching %d features by objectIds in chunks of %d",
                    self.name, len(ids), size)
        return PageRequest(query, params), IdChunkPaginator(ids, size)

    async def _object_ids(self, query: str) -> list[Any]:
        answer = await self._get_json(PageRequest(query, {"where": self.where, "returnIdsOnly": "true",
                                                          "f": "json"}))
        ids = answer.get("objectIds") if isinstance(answer, Mapping) else None
        if ids is None:
            return []  # ArcGIS answers null for an empty layer
        if not isinstance(ids, list):
            raise SourceFormatError(f"objectIds from {query} is not an array", source=self.name)
        if len(ids) > self.limits.max_records:
            raise SourceFormatError(f"layer has {len(ids)} features, more than the limit of "
                                    f"{self.limits.max_records}", source=self.name)
        return sorted(ids, key=lambda i: (not isinstance(i, int), i if isinstance(i, int) else str(i)))

    async def _get_json(self, request: PageRequest) -> Any:
        payload = await self._fetcher.get_json(request.url, source=self.name, params=request.params)
        if isinstance(payload, Mapping) and isinstance(payload.get("error"), Mapping):
            raise _arcgis_error(self.name, request.url, payload["error"])
        return payload

    def _features(self, payload: Any) -> Sequence[Any]:
        return features_of(payload, source=self.name, url=self.url)

    def _crs(self, page: Mapping[str, Any], layer: Mapping[str, Any]) -> SourceCRS:
        if self.output == "geojson" or "spatialReference" not in page:
            # f=geojson is WGS84 unless outSR asked otherwise, and then it carries a crs member.
            return resolve_crs(self.crs, page.get("crs"), self.out_sr, source=self.name)
        return resolve_crs(self.crs, page.get("spatialReference"), self.out_sr,
                           _layer_sr(layer), source=self.name)

    def _record(self, feature: Any, index: int, crs: SourceCRS, dates: frozenset[str],
                id_field: str | None, fetched_at: datetime, origin: str) -> RawRecord:
        key = "attributes" if isinstance(feature, Mapping) and "attributes" in feature else "properties"
        record = feature_record(self.name, feature, index, crs=crs, fetched_at=fetched_at,
                                origin=origin, properties_key=key, id_field=id_field)
        if not dates or record.problem:
            return record
        props = record.payload["properties"]
        bad = []
        for name in dates & props.keys():
            if props[name] is not None:
                try:
                    props[name] = epoch_ms_to_datetime(props[name])
                except (ValueError, OverflowError):
                    bad.append(name)
        if bad:
            return replace(record, problem=f"date fields {sorted(bad)} are not epoch milliseconds")
        return record


def _id_field(meta: Mapping[str, Any]) -> str | None:
    for key in ("objectIdField", "objectIdFieldName"):
        if isinstance(name := meta.get(key), str):
            return name
    for field in meta.get("fields") or []:
        if isinstance(field, Mapping) and field.get("type") == "esriFieldTypeOID":
            return field.get("name")
    return None


def _date_fields(fields: Any) -> frozenset[str]:
    if not isinstance(fields, list):
        return frozenset()
    return frozenset(f["name"] for f in fields if isinstance(f, Mapping)
                     and f.get("type") == "esriFieldTypeDate" and isinstance(f.get("name"), str))


def _layer_sr(layer: Mapping[str, Any]) -> Any:
    for key in ("sourceSpatialReference", "spatialReference"):
        if layer.get(key):
            return layer[key]
    extent = layer.get("extent")
    return extent.get("spatialReference") if isinstance(extent, Mapping) else None


def _arcgis_error(source: str, url: str, error: Mapping[str, Any]) -> Exception:
    code = error.get("code")
    message = f"ArcGIS error {code} from {url}: {error.get('message')} {error.get('details') or ''}".strip()
    if code in (401, 403, 498, 499):  # 498/499: invalid / missing token
        return AuthError(message, source=source, url=url)
    if isinstance(code, int) and code >= 500:
        return SourceUnavailableError(message, source=source, url=url)
    return SourceFormatError(message, source=source, url=url)
