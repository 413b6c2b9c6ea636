"""Request checks shared by every route (Orion-LD's order and texts) and JSON responses.

Subscription routes use the same helpers: `tenant_of`, `check_params`, `read_json`,
`request_context`, `json_response`, `negotiate`.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request, Response

from ngsild_broker.contexts import Context, ContextResolver, link_header
from ngsild_broker.errors import NgsiError, bad_request, invalid_request
from ngsild_broker.lang import ranked
from ngsild_broker.storage import DEFAULT_TENANT, EntityStore

JSON = "application/json"
JSONLD = "application/ld+json"
GEOJSON = "application/geo+json"
MERGE_PATCH = "application/merge-patch+json"

# Every URI parameter Orion-LD knows (S/mhd/mhdConnectionInit.cpp); others are "Unknown".
KNOWN_PARAMS = frozenset({
    "id", "type", "idPattern", "typePattern", "attrs", "q", "csf", "georel", "geometry", "coordinates",
    "geoproperty", "geometryProperty", "lang", "options", "format", "limit", "offset", "count", "local",
    "onlyIds", "entityMap", "orderBy", "reverse", "expandValues", "details", "kind", "reload",
    "datasetId", "deleteAll", "observedAt", "prettyPrint", "spaces", "timerel", "timeAt", "endTimeAt",
    "timeproperty", "lastN", "attributeFormat", "subscriptionId", "entityTypeList", "contextSource",
    "scopeQ", "pick", "omit", "join", "joinLevel", "containedBy", "jsonKeys",
})
_TENANT_BAD = re.compile(r"[/. \"\\$]")
_TENANT_KNOWN = re.compile(r"^[A-Za-z0-9_-]*$")


def check_params(request: Request, allowed: Collection[str],
                 known: Collection[str] = KNOWN_PARAMS) -> dict[str, str]:
    """The URI parameters, rejecting unknown, unsupported and empty ones.

    Unknown and unsupported parameters are 400 InvalidRequest (GS CIM 009 and the ETSI suite,
    059_01); Orion-LD answers BadRequestData.
    """
    params: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in known:
            raise invalid_request("Unknown URI parameter", name)
        if name not in allowed:
            raise invalid_request("Unsupported URI parameter", name)
        if value == "":
            raise bad_request("Empty right-hand-side for a URI parameter", name)
        params[name] = value
    return params


def tenant_of(request: Request, store: EntityStore, *, create: bool = False) -> str:
    """The request's tenant (lower-cased); 404 NonExistingTenant unless it exists or `create`."""
    headers = request.headers
    ngsild = headers.get("ngsild-tenant")
    fiware = headers.get("fiware-service")
    if ngsild is not None and fiware is not None and ngsild.lower() != fiware.lower():
        raise bad_request("HTTP header duplication", "NGSILD-Tenant and Fiware-Service differ")
    name = ngsild if ngsild is not None else fiware
    if name is None or name == "":
        return DEFAULT_TENANT
    if len(name) > 52 or _TENANT_BAD.search(name) or not _TENANT_KNOWN.match(name):
        raise bad_request("Invalid tenant name", name)
    tenant = name.lower()
    if not create and not store.tenant_exists(tenant):
        raise NgsiError(404, "NonExistingTenant", "No such tenant", tenant)
    return tenant


def negotiate(request: Request, *, geojson: bool = True) -> str:
    """The response media type chosen from Accept (406 when none of ours is acceptable)."""
    accept = request.headers.get("accept")
    if not accept:
        return JSON
    for media in (m.lower() for m in ranked(accept)):  # the same q-value ranking as Accept-Language
        if media in (JSON, JSONLD) or (geojson and media == GEOJSON):
            return media
        if media in ("*/*", "application/*"):
            return JSON
    raise NgsiError(406, "BadRequestData", "Invalid Accept mime-type",
                    f"accepted: {JSON}, {JSONLD}" + (f", {GEOJSON}" if geojson else ""))


def no_body(request: Request) -> None:
    """GET and DELETE carry no payload."""
    length = request.headers.get("content-length")
    if length and length != "0":
        raise bad_request("Unexpected payload body", f"{request.method} requests take no payload")


@dataclass(slots=True)
class Payload:
    """A parsed request body and its media type."""

    data: Any
    media: str


async def read_json(request: Request, max_payload: int, *, merge_patch: bool = False) -> Payload:
    """The JSON body after Content-Type (415), size (413) and syntax (400) checks."""
    raw_type = request.headers.get("content-type")
    media = raw_type.split(";", 1)[0].strip() if raw_type else ""
    allowed = (JSON, JSONLD, MERGE_PATCH) if merge_patch else (JSON, JSONLD)
    if media not in allowed:
        raise NgsiError(415, "BadRequestData", "unsupported format of payload",
                        "only application/json and application/ld+json are supported")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_payload:
        raise _too_large(int(declared), max_payload)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_payload:
            raise _too_large(len(body), max_payload)
    if not body.strip():
        raise bad_request("payload missing", "a JSON payload is required")
    try:
        data = orjson.loads(bytes(body))
    except orjson.JSONDecodeError as exc:
        raise invalid_request("JSON Parse Error", "Invalid JSON payload") from exc
    return Payload(data, JSON if media == MERGE_PATCH else media)


def _too_large(size: int, max_payload: int) -> NgsiError:
    return NgsiError(413, "BadRequestData", "Request Entity too large",
                     f"payload size: {size}, max size supported: {max_payload}")


async def request_context(request: Request, resolver: ContextResolver,
                          payload: Payload | None = None) -> Context:
    """The active context: Link header for application/json, body @context for ld+json."""
    link = request.headers.get("link")
    if payload is None or payload.media != JSONLD:
        if payload is not None and isinstance(payload.data, dict) and "@context" in payload.data:
            raise bad_request("Mismatch between /Content-Type/ and contents of the request payload body",
                              "Content-Type is application/json but the payload has an @context")
        return await resolver.from_link(link)
    if link is not None:
        raise bad_request("invalid combination of HTTP headers Content-Type and Link",
                          "Content-Type is application/ld+json and a Link header is present")
    if isinstance(payload.data, dict):
        if "@context" not in payload.data:
            raise bad_request("@context missing in JSON payload",
                              "Content-Type is application/ld+json but the payload has no @context")
        return await resolver.from_value(payload.data["@context"])
    return await resolver.from_link(None)


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                  media: str = JSON) -> Response:
    """A JSON response serialised with orjson."""
    return Response(orjson.dumps(data), status_code=status, headers=headers, media_type=media)


def empty(status: int = 204, headers: dict[str, str] | None = None) -> Response:
    """A response without a body."""
    return Response(status_code=status, headers=headers)


def entity_headers(ctx: Context, media: str, has_content: bool = True) -> dict[str, str]:
    """Link header for application/json (and geo+json) answers that carry entities."""
    if media == JSONLD or not has_content:
        return {}
    return {"Link": link_header(ctx.link_url)}


@dataclass(slots=True)
class Incoming:
    """A request past the common checks: URI params, response media type, tenant, payload."""

    params: dict[str, str]
    media: str
    tenant: str
    payload: Payload | None


async def begin(request: Request, store: EntityStore, max_payload: int, allowed: Collection[str], *,
                body: bool = False, create_tenant: bool = False, geojson: bool = False,
                merge_patch: bool = False) -> Incoming:
    """Common checks in Orion-LD's order: Accept, size, params, Content-Type, JSON, tenant."""
    media = negotiate(request, geojson=geojson)
    declared = request.headers.get("content-length")
    if body and declared and declared.isdigit() and int(declared) > max_payload:
        raise _too_large(int(declared), max_payload)
    params = check_params(request, allowed)
    tenant_of(request, store, create=True)  # name checks before the payload
    payload = await read_json(request, max_payload, merge_patch=merge_patch) if body else None
    if not body:
        no_body(request)
    return Incoming(params, media, tenant_of(request, store, create=create_tenant), payload)
