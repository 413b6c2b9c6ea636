"""The raw record shape every GIS source yields, and the helpers they share to build it.

A GIS record's payload is GeoJSON-Feature-like whatever the wire format was::

    {"type": "Feature",
     "id": 12,                                  # the feature/object id, or None
     "properties": {"Name": "...", ...},        # Esri "attributes" or GeoJSON "properties", as sent
     "geometry": {...} | None,                  # as sent: Esri JSON or GeoJSON, in the source CRS
     "crs": "EPSG:7801"}                        # the source CRS, in a form parse_crs reads back

Geometry is *not* transformed here: nothing maps in a source (``prepared`` only lets the geometry
module transform a chunk's points in one call ahead of the mapper, see
``adapter.geometry.prepare_points``; the records stay as sent). The mapper calls
``adapter.geometry.normalize_geometry(payload["geometry"], payload["crs"])``, which gives WGS84
GeoJSON plus the source CRS as metadata, or a GeometryError that quarantines only that record.
``crs`` is ``urn:ogc:def:crs:EPSG::<n>`` when the coordinates follow the CRS's own axis order (e.g.
latitude first for EPSG:4326 from WFS 2.0) and ``EPSG:<n>`` when they are x/y (lon/lat) order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from adapter.errors import GeometryError, SourceFormatError
from adapter.geometry import CRS84, SourceCRS, parse_crs, prepare_points
from adapter.sources.base import RawRecord, utcnow


def crs_spec(crs: SourceCRS) -> str:
    """The string kept in a record's ``crs``: it round-trips through ``parse_crs`` with its axis order."""
    return f"urn:ogc:def:crs:EPSG::{crs.epsg}" if crs.axis_order == "authority" else crs.name


def resolve_crs(*candidates: Any, source: str) -> SourceCRS:
    """The first declared CRS among ``candidates`` (config, response, request, layer), else CRS84.

    An unknown CRS fails the whole source: every geometry in it would be unreadable.
    """
    for candidate in candidates:
        if candidate not in (None, "", {}):
            try:
                return parse_crs(candidate, source=source)
            except GeometryError as exc:
                raise SourceFormatError(exc.reason, source=source) from None
    return CRS84


def features_of(payload: Any, *, source: str, url: str, key: str = "features") -> Sequence[Any]:
    """The feature array of a page, or SourceFormatError naming what the page is instead."""
    if not isinstance(payload, Mapping):
        raise SourceFormatError(f"expected a JSON object from {url}, got {type(payload).__name__}",
                                source=source)
    features = payload.get(key)
    if features is None and key not in payload:
        raise SourceFormatError(f"no {key!r} array in the response from {url} (keys: "
                                f"{sorted(map(str, payload))[:10]})", source=source)
    if features is None:
        return []
    if not isinstance(features, list):
        raise SourceFormatError(f"{key!r} in the response from {url} is "
                                f"{type(features).__name__}, not an array", source=source)
    return features


def feature_record(source: str, feature: Any, index: int, *, crs: SourceCRS, fetched_at: datetime,
                   origin: str, properties_key: str = "properties",
                   id_field: str | None = None) -> RawRecord:
    """One raw record in the shape of the module docstring; a malformed feature carries ``problem``."""
    problem = None
    if not isinstance(feature, Mapping):
        problem = f"feature is {type(feature).__name__}, not an object"
        feature = {}
    props = feature.get(properties_key)
    if props is None:
        props = {}
    elif not isinstance(props, Mapping):
        problem = f"{properties_key!r} is {type(props).__name__}, not an object"
        props = {}
    fid = props.get(id_field) if id_field else None
    if fid is None:
        fid = feature.get("id")
    payload = {"type": "Feature", "id": fid, "properties": dict(props),
               "geometry": feature.get("geometry"), "crs": crs_spec(crs)}
    key = f"features[{index}]" + (f" id={fid}" if fid is not None else "")
    return RawRecord(source=source, key=key, payload=payload, fetched_at=fetched_at, origin=origin,
                     problem=problem)


PREPARE_CHUNK = 2000


def prepared(features: Sequence[Any], crs: SourceCRS, start: int = 0) -> Iterator[tuple[int, Any]]:
    """``enumerate(features, start)``, with each chunk's point geometries handed to
    :func:`adapter.geometry.prepare_points` just before its records are yielded."""
    for offset in range(0, len(features), PREPARE_CHUNK):
        chunk = features[offset:offset + PREPARE_CHUNK]
        prepare_points([f.get("geometry") for f in chunk if isinstance(f, Mapping)], crs)
        yield from enumerate(chunk, start + offset)


def page_key(records_digest: bytes, crs: SourceCRS, *shaping: Any) -> bytes:
    """What identifies a page's raw records (``Fetch.skip_page``): the page's records as sent, the
    CRS written into each record, and whatever else shapes them (id field, date fields...)."""
    context = orjson.dumps([crs_spec(crs), *shaping], default=str)
    return hashlib.blake2b(records_digest + context, digest_size=16).digest()


def page_records(fetch: Any, source: str, page: Any, start: int, crs: SourceCRS) -> Iterator[RawRecord]:
    """The raw records of one GeoJSON page numbered from ``start``; none when the consumer
    already holds the page (``Fetch.skip_page``)."""
    if fetch.skip_page(page_key(page.digest, crs), len(page.records)):
        return
    fetched_at = utcnow()
    for index, feature in prepared(page.records, crs, start):
        yield feature_record(source, feature, index, crs=crs, fetched_at=fetched_at, origin=page.url)


def page_size(configured: int | None, server_max: Any, default: int = 1000) -> int:
    """The page size to ask for: the configured one, never above what the server allows."""
    size = configured or default
    if isinstance(server_max, int) and not isinstance(server_max, bool) and server_max > 0:
        size = min(size, server_max)
    return max(1, size)

