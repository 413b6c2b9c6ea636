"""The map page: the broker's entities on a map of Burgas, read by the browser through a proxy.

`GET /map` serves a dependency-free page (static/map/: HTML, JS, CSS; no CDN, no tiles) that draws
every entity with a GeoProperty on an equirectangular SVG map, one toggleable layer per type.
The page reads the NGSI-LD API itself, through a same-origin, read-only, bounded pass-through:

    GET /map/ngsi-ld/v1/types      -> broker GET /ngsi-ld/v1/types
    GET /map/ngsi-ld/v1/entities   -> broker GET /ngsi-ld/v1/entities (whitelisted parameters)

so it needs no CORS on the broker, and the broker's credentials and tenant stay on the server.
The proxy borrows the base URL, tenant and auth of the service's `BrokerClient`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from importlib.resources import files

import httpx
import orjson
from fastapi import APIRouter, FastAPI, Request, Response

from adapter.errors import AdapterError
from adapter.ngsi.client import BrokerClient

logger = logging.getLogger(__name__)

API = "/ngsi-ld/v1"
STATIC = files("adapter.service") / "static" / "map"
# Query parameters the page may pass on; everything else is refused (read-only, no geo-queries
# that could cost the broker more than a page of one type).
ENTITY_PARAMS = frozenset({"type", "attrs", "q", "limit", "offset", "count", "options", "lang"})
TYPE_PARAMS = frozenset({"details"})
MAX_LIMIT = 1000  # Orion-LD's and the embedded broker's largest page
MAX_OFFSET = 100_000
MAX_PARAM_CHARS = 2048
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# Broker answers passed back verbatim; anything else is reported as 502.
PASSED_STATUSES = frozenset({200, 400, 404})
_ASSET = re.compile(r"^[a-z0-9_-]{1,64}\.(js|css|svg)$")
_MEDIA = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8",
          "svg": "image/svg+xml"}
_PROBLEM = "application/json"


def _problem(status: int, title: str, detail: str) -> Response:
    """An NGSI-LD style ProblemDetails answer from the proxy itself."""
    body = {"type": "https://uri.etsi.org/ngsi-ld/errors/" +
            ("BadRequestData" if status == 400 else "InternalError"), "title": title, "detail": detail}
    return Response(orjson.dumps(body), status_code=status, media_type=_PROBLEM)


def _checked_params(query: Mapping[str, str], allowed: frozenset[str]) -> dict[str, str] | Response:
    """The query parameters to forward, or a 400 answer naming the first refused one."""
    params: dict[str, str] = {}
    for name, value in query.items():
        if name not in allowed:
            return _problem(400, "Parameter not allowed", f"the map proxy does not pass on {name!r}")
        if len(value) > MAX_PARAM_CHARS:
            return _problem(400, "Parameter too long", f"{name} exceeds {MAX_PARAM_CHARS} characters")
        params[name] = value
    for name, bound in (("limit", MAX_LIMIT), ("offset", MAX_OFFSET)):
        if name in params and not (params[name].isdigit() and int(params[name]) <= bound):
            return _problem(400, "Bad paging", f"{name} must be an integer from 0 to {bound}")
    return params


class BrokerProxy:
    """Read-only pass-through of GET requests to the broker a `BrokerClient` writes to."""

    def __init__(self, broker: Callable[[], BrokerClient], http: httpx.AsyncClient, *,
                 max_response_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._broker = broker
        self._http = http
        self.max_response_bytes = max_response_bytes

    async def get(self, path: str, params: Mapping[str, str]) -> Response:
        """Forward one GET; the answer is the broker's (status, JSON body, result count) or a 502."""
        broker = self._broker()
        headers = {"Accept": "application/json"}
        if broker.tenant:
            headers["NGSILD-Tenant"] = broker.tenant
        try:
            if broker.auth is not None:
                headers.update(await broker.auth.headers(self._http))
            request = self._http.build_request("GET", broker.base_url + API + path, params=params,
                                               headers=headers)
            response = await self._http.send(request, stream=True)
            try:
                body = await self._read_bounded(response)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            logger.warning("map proxy: broker unreachable: %s", type(exc).__name__)
            return _problem(502, "Broker unreachable", f"{type(exc).__name__} from the broker")
        except _TooLargeError:
            return _problem(502, "Broker answer too large", f"more than {self.max_response_bytes} bytes")
        except AdapterError as exc:  # a token that cannot be had: the reason stays in the log
            logger.warning("map proxy: %s", exc)
            return _problem(502, "Broker not readable", type(exc).__name__)
        if response.status_code not in PASSED_STATUSES:
            logger.warning("map proxy: broker answered %d to GET %s", response.status_code, path)
            return _problem(502, "Broker error", f"the broker answered {response.status_code}")
        passed = {"NGSILD-Results-Count": response.headers["NGSILD-Results-Count"]} \
            if "NGSILD-Results-Count" in response.headers else {}
        media = response.headers.get("content-type", "application/json").split(";")[0]
        return Response(body, status_code=response.status_code, headers=passed,
                        media_type=media if media.endswith("json") else "application/json")

    async def _read_bounded(self, response: httpx.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_response_bytes:
                raise _TooLargeError
            chunks.append(chunk)
        return b"".join(chunks)


class _TooLargeError(Exception):
    """The broker's answer exceeded the proxy's byte bound."""


def _asset(name: str) -> Response:
    """One file of static/map, by a plain name (no paths), or 404."""
    match = _ASSET.match(name)
    resource = STATIC / name
    if match is None or not resource.is_file():
        return Response(status_code=404)
    return Response(resource.read_bytes(), media_type=_MEDIA[match.group(1)],
                    headers={"Cache-Control": "no-cache"})


def map_router(broker: Callable[[], BrokerClient], *, http: httpx.AsyncClient | None = None,
               max_response_bytes: int = MAX_RESPONSE_BYTES) -> APIRouter:
    """The map page and its proxy; `broker` returns the service's client once the lifespan started.

    Without `http`, the router opens its own client in its lifespan (FastAPI merges the lifespan of
    an included router into the app's).
    """
    holder: dict[str, httpx.AsyncClient] = {} if http is None else {"http": http}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if http is not None:  # the caller's client, closed by the caller
            yield
            return
        async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0)) as own:
            holder["http"] = own
            yield
        del holder["http"]

    router = APIRouter(lifespan=lifespan, tags=["map"])

    def proxy() -> BrokerProxy:
        if "http" not in holder:
            raise RuntimeError("the map router's lifespan has not run (include it with app.include_router)")
        return BrokerProxy(broker, holder["http"], max_response_bytes=max_response_bytes)

    @router.get("/map", include_in_schema=False)
    async def page() -> Response:
        """The map page."""
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @router.get("/map/static/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        """The page's script, stylesheet and icons."""
        return _asset(name)

    @router.get("/map" + API + "/types", summary="Entity types in the broker (read-only proxy)")
    async def types(request: Request) -> Response:
        params = _checked_params(request.query_params, TYPE_PARAMS)
        if isinstance(params, Response):
            return params
        return await proxy().get("/types", params)

    @router.get("/map" + API + "/entities", summary="Entities of one type (read-only, paged proxy)")
    async def entities(request: Request) -> Response:
        params = _checked_params(request.query_params, ENTITY_PARAMS)
        if isinstance(params, Response):
            return params
        if not params.get("type"):
            return _problem(400, "Type required", "the map proxy reads one entity type at a time")
        return await proxy().get("/entities", params)

    return router
