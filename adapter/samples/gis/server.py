"""ArcGIS-, WFS- and OGC-API-like HTTP endpoints on 127.0.0.1 over the bundled sample layers.

Used by the demo (the real GIS-Burgas endpoints are not public), the integration tests and the
bench. Each protocol is a small handler class over in-memory features with real paging; a handler is
a callable ``(request) -> dict | bytes`` over any object with ``path``, ``headers`` and
``arg(name)``, so the same handlers mount on ``tests/servers.PayloadServer`` (``server.routes.update(
handler.routes(prefix))``) or on :class:`SampleServer` here, which needs no test dependencies.

    with serve_gis_samples() as gis:
        ArcGISSource("beaches", gis.beaches_url)

    python -m adapter.samples.gis.server            # serve the samples until Ctrl-C
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from adapter.geometry import esri_to_geojson, parse_crs, transformer

HERE = Path(__file__).resolve().parent
BEACHES_PATH = "/arcgis/rest/services/Burgas/Beaches/FeatureServer/0"
WFS_PATH = "/geoserver/wfs"
OGC_PATH = "/ogc"

Handler = Callable[[Any], Any]


def _load(name: str) -> Any:
    return orjson.loads((HERE / name).read_bytes())


def _int(request: Any, name: str, default: int) -> int:
    value = request.arg(name)
    try:
        return int(value) if value not in (None, "") else default
    except ValueError:
        return default


def _map_coords(coords: Any, fn: Callable[[float, float], tuple[float, float]]) -> Any:
    if coords and isinstance(coords[0], int | float):
        return list(fn(coords[0], coords[1]))
    return [_map_coords(c, fn) for c in coords]


def _reproject(from_epsg: int, to_epsg: int, *, swap: bool = False) -> Callable[[float, float], tuple[float, float]]:
    if from_epsg == to_epsg and not swap:
        return lambda x, y: (x, y)
    t = transformer(from_epsg, to_epsg)

    def fn(x: float, y: float) -> tuple[float, float]:
        a, b = t.transform(x, y) if from_epsg != to_epsg else (x, y)
        return (b, a) if swap else (a, b)
    return fn


class ArcGISLayer:
    """A FeatureServer layer: ``?f=json`` metadata and ``/query`` with offsets, objectIds, outSR, f=geojson.

    ``exceeded_when_full`` makes a full page report ``exceededTransferLimit`` even when it is the
    last one (some servers do), so clients must cope with one extra empty page;
    ``ignore_offset`` imitates a broken server that pages forever.
    """

    def __init__(self, layer: Mapping[str, Any], features: Sequence[Mapping[str, Any]], *,
                 supports_pagination: bool | None = None, max_record_count: int | None = None,
                 exceeded_when_full: bool = False, ignore_offset: bool = False) -> None:
        self.layer = dict(layer)
        if max_record_count is not None:
            self.layer["maxRecordCount"] = max_record_count
        if supports_pagination is not None:
            self.layer["advancedQueryCapabilities"] = {
                **self.layer.get("advancedQueryCapabilities", {}), "supportsPagination": supports_pagination}
        self.features = list(features)
        self.oid = self.layer.get("objectIdField", "OBJECTID")
        self.epsg = parse_crs(self.layer.get("sourceSpatialReference")
                              or self.layer["extent"]["spatialReference"]).epsg
        self.exceeded_when_full = exceeded_when_full
        self.ignore_offset = ignore_offset

    @classmethod
    def beaches(cls, **options: Any) -> ArcGISLayer:
        """The bundled beaches layer (EPSG:7801)."""
        return cls(_load("beaches.layer.json"), _load("beaches.query.json")["features"], **options)

    def routes(self, prefix: str) -> dict[str, Handler]:
        """Path -> handler for the layer and its query."""
        return {prefix: self.metadata, prefix + "/query": self.query}

    def metadata(self, request: Any) -> Any:
        """The layer description (``?f=json``)."""
        return self.layer

    def query(self, request: Any) -> Any:
        """A feature query: ids only, an objectIds chunk, or an offset page."""
        if (request.arg("where") or "1=1") != "1=1":
            return {"error": {"code": 400, "message": "Unable to complete operation.",
                              "details": ["only where=1=1 is supported by the sample server"]}}
        if (request.arg("returnIdsOnly") or "").lower() == "true":
            return {"objectIdFieldName": self.oid,
                    "objectIds": [f["attributes"][self.oid] for f in self.features] or None}
        limit = int(self.layer.get("maxRecordCount") or 1000)
        if request.arg("objectIds"):
            wanted = {int(i) for i in request.arg("objectIds").split(",") if i.strip()}
            page = [f for f in self.features if f["attributes"][self.oid] in wanted][:limit]
            more = False
        else:
            can_page = self.layer.get("advancedQueryCapabilities", {}).get("supportsPagination")
            offset = _int(request, "resultOffset", 0) if can_page and not self.ignore_offset else 0
            count = min(_int(request, "resultRecordCount", limit), limit) if can_page else limit
            page = self.features[offset:offset + count]
            more = offset + len(page) < len(self.features) or (
                self.exceeded_when_full and len(page) == count > 0)
        out_sr = _int(request, "outSR", 0) or None
        if request.arg("f") == "geojson":
            return self._geojson(page, more, out_sr or 4326)
        epsg = out_sr or self.epsg
        fn = _reproject(self.epsg, epsg)
        features = [{"attributes": f["attributes"], "geometry": _esri_map(f.get("geometry"), fn)}
                    for f in page]
        return {"objectIdFieldName": self.oid, "geometryType": self.layer.get("geometryType"),
                "spatialReference": {"wkid": epsg, "latestWkid": epsg},
                "fields": self.layer.get("fields", []), "exceededTransferLimit": more,
                "features": features}

    def _geojson(self, page: list[Mapping[str, Any]], more: bool, epsg: int) -> Any:
        fn = _reproject(self.epsg, epsg)
        features = []
        for f in page:
            geom = f.get("geometry")
            if geom:
                geom = esri_to_geojson(geom)
                geom["coordinates"] = _map_coords(geom["coordinates"], fn)
            features.append({"type": "Feature", "id": f["attributes"][self.oid], "geometry": geom,
                             "properties": f["attributes"]})
        out: dict[str, Any] = {"type": "FeatureCollection", "features": features}
        if more:
            out["properties"] = {"exceededTransferLimit": True}  # where f=geojson puts it
        if epsg != 4326:
            out["crs"] = {"type": "name", "properties": {"name": f"EPSG:{epsg}"}}
        return out


def _esri_map(geometry: Any, fn: Callable[[float, float], tuple[float, float]]) -> Any:
    if not geometry:
        return geometry
    if "x" in geometry:
        x, y = fn(geometry["x"], geometry["y"])
        return {"x": x, "y": y}
    return {key: _map_coords(value, fn) for key, value in geometry.items()}


class WFSLayer:
    """A WFS 2.0 GetFeature endpoint (application/json) with count/startIndex and srsName.

    Coordinates follow the requested srsName's axis order like GeoServer: ``urn:ogc:def:crs:EPSG::4326``
    answers latitude first, ``EPSG:4326`` longitude first.
    """

    def __init__(self, type_name: str, collection: Mapping[str, Any], *, matched_unknown: bool = False) -> None:
        self.type_name = type_name
        self.features = list(collection["features"])
        self.native = parse_crs(collection.get("crs") or "CRS84")
        self.matched_unknown = matched_unknown

    @classmethod
    def bus_stops(cls, **options: Any) -> WFSLayer:
        """The bundled bus stops (EPSG:32635)."""
        return cls("burgas:bus_stops", _load("bus_stops.wfs.geojson"), **options)

    def routes(self, path: str) -> dict[str, Handler]:
        """Path -> handler."""
        return {path: self.get_feature}

    def get_feature(self, request: Any) -> Any:
        """GetFeature with paging; errors as JSON exception reports."""
        if (request.arg("request") or "").lower() != "getfeature":
            return _ows_error("OperationNotSupported", "only GetFeature is supported")
        if (request.arg("typeNames") or request.arg("typeName")) != self.type_name:
            return _ows_error("InvalidParameterValue", f"unknown typeNames, try {self.type_name}")
        if "json" not in (request.arg("outputFormat") or ""):
            return _ows_error("InvalidParameterValue", "only outputFormat=application/json")
        start = _int(request, "startIndex", 0)
        count = _int(request, "count", len(self.features))
        page = self.features[start:start + count]
        srs = request.arg("srsName")
        target = parse_crs(srs) if srs else self.native
        fn = _reproject(self.native.epsg, target.epsg, swap=target.swaps_input)
        features = [{**f, "geometry": {**f["geometry"], "coordinates": _map_coords(
            f["geometry"]["coordinates"], fn)}} for f in page]
        name = srs or f"urn:ogc:def:crs:EPSG::{self.native.epsg}"
        return {"type": "FeatureCollection", "features": features,
                "numberMatched": "unknown" if self.matched_unknown else len(self.features),
                "numberReturned": len(page), "timeStamp": "2025-06-01T08:00:00.000Z",
                "crs": {"type": "name", "properties": {"name": name}}}


def _ows_error(code: str, text: str) -> Any:
    return {"type": "ExceptionReport", "version": "2.0.0",
            "exceptions": [{"code": code, "text": text}]}


class OGCCollection:
    """An OGC API Features collection: landing, ``/collections``, ``/collections/{id}/items`` with next links."""

    def __init__(self, collection_id: str, title: str, collection: Mapping[str, Any]) -> None:
        self.id = collection_id
        self.title = title
        self.features = list(collection["features"])

    @classmethod
    def parks(cls) -> OGCCollection:
        """The bundled city parks (CRS84)."""
        return cls("parks", "Паркове в Бургас", _load("parks.ogc.geojson"))

    def routes(self, prefix: str) -> dict[str, Handler]:
        """Path -> handler for the collection and its items."""
        base = f"{prefix}/collections/{self.id}"
        return {base: lambda r: {"id": self.id, "title": self.title, "itemType": "feature",
                                 "crs": ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]},
                base + "/items": self.items}

    def items(self, request: Any) -> Any:
        """One page of items; ``next`` links carry offset and limit."""
        limit = max(1, min(_int(request, "limit", 10), 10_000))
        offset = max(0, _int(request, "offset", 0))
        page = self.features[offset:offset + limit]
        host = (getattr(request, "headers", None) or {}).get("Host")
        here = f"http://{host}{request.path}" if host else request.path
        links = [{"rel": "self", "type": "application/geo+json",
                  "href": f"{here}?{urlencode({'offset': offset, 'limit': limit, 'f': 'json'})}"}]
        if offset + len(page) < len(self.features):
            links.append({"rel": "next", "type": "application/geo+json",
                          "href": f"{here}?{urlencode({'offset': offset + limit, 'limit': limit, 'f': 'json'})}"})
        return {"type": "FeatureCollection", "features": page, "numberMatched": len(self.features),
                "numberReturned": len(page), "timeStamp": "2025-06-01T08:00:00Z", "links": links}


@dataclass(frozen=True)
class _Request:
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


class SampleServer:
    """A threaded loopback HTTP server over a table of path -> handler (JSON answers)."""

    def __init__(self, routes: Mapping[str, Handler], host: str = "127.0.0.1", port: int = 0) -> None:
        self.routes = dict(routes)
        self._httpd = ThreadingHTTPServer((host, port), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        """Absolute URL of ``path``."""
        return self.base_url + path

    def start(self) -> SampleServer:
        """Serve in a daemon thread."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="gis-samples", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and free the port."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        routes = self.routes

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                handler = routes.get(parts.path.rstrip("/") or "/")
                status, body = 404, b"<html><body>404 Not Found</body></html>"
                if handler is not None:
                    answer = handler(_Request(parts.path, parse_qs(parts.query, keep_blank_values=True),
                                              dict(self.headers.items())))
                    status, body = 200, answer if isinstance(answer, bytes) else orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if status == 200 else "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
                pass

        return _Handler


@dataclass(frozen=True)
class GISSamples:
    """A running sample server and the URLs to configure sources with."""

    server: SampleServer
    beaches_url: str
    wfs_url: str
    wfs_type_name: str
    ogc_url: str
    ogc_collection: str


def sample_routes(*, beaches: ArcGISLayer | None = None) -> dict[str, Handler]:
    """Every sample endpoint: ArcGIS beaches, WFS bus stops, OGC API parks."""
    routes: dict[str, Handler] = {}
    routes.update((beaches or ArcGISLayer.beaches()).routes(BEACHES_PATH))
    routes.update(WFSLayer.bus_stops().routes(WFS_PATH))
    routes.update(OGCCollection.parks().routes(OGC_PATH))
    return routes


@contextlib.contextmanager
def serve_gis_samples(*, host: str = "127.0.0.1", port: int = 0,
                      beaches: ArcGISLayer | None = None) -> Iterator[GISSamples]:
    """Serve the bundled GIS samples on loopback for the duration of the ``with`` block."""
    server = SampleServer(sample_routes(beaches=beaches), host, port).start()
    try:
        yield GISSamples(server, server.url(BEACHES_PATH), server.url(WFS_PATH), "burgas:bus_stops",
                         server.url(OGC_PATH), "parks")
    finally:
        server.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the samples until interrupted, printing the endpoint URLs."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    with serve_gis_samples(port=args.port) as gis:
        print(f"ArcGIS beaches: {gis.beaches_url}\nWFS bus stops:  {gis.wfs_url} "
              f"(typeNames={gis.wfs_type_name})\nOGC API parks:  {gis.ogc_url} "
              f"(collection {gis.ogc_collection})", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
