"""The /ngsi-ld/v1/subscriptions routes (create, list, read, patch, delete)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ngsild_broker.contexts import Context, header_uri, link_header
from ngsild_broker.errors import bad_request
from ngsild_broker.protocol import JSONLD, begin, empty, json_response, request_context
from ngsild_broker.subscriptions.manager import SubscriptionManager

PREFIX = "/ngsi-ld/v1"

router = APIRouter()


def _manager(request: Request) -> SubscriptionManager:
    return request.app.state.broker.subscriptions


def _broker(request: Request) -> Any:
    return request.app.state.broker


@router.post(PREFIX + "/subscriptions")
async def post_subscription(request: Request) -> Response:
    """Create a subscription: 201 + Location, empty body."""
    broker = _broker(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, (), body=True,
                           create_tenant=True)
    ctx = await request_context(request, broker.contexts, incoming.payload)
    assert incoming.payload is not None  # body=True
    if not isinstance(incoming.payload.data, dict):
        raise bad_request("Invalid Payload Body", "a subscription is a JSON object")
    sub = await _manager(request).create(incoming.tenant, incoming.payload.data, ctx)
    return empty(201, {"Location": header_uri(f"/ngsi-ld/v1/subscriptions/{sub.id}")})


def answer(data: Any, media: str, ctx: Context, headers: dict[str, str] | None = None,
           links: list[str] | None = None) -> Response:
    """A JSON or JSON-LD answer: the context in each body object, or in a Link header."""
    headers = dict(headers or {})
    links = list(links or [])
    if media == JSONLD:
        if isinstance(data, list):
            data = [{**d, "@context": ctx.body_value()} for d in data]
        else:
            data = {**data, "@context": ctx.body_value()}
    else:
        links.insert(0, link_header(ctx.link_url))
    if links:
        headers["Link"] = ", ".join(links)
    return json_response(data, headers=headers, media=media)


@router.get(PREFIX + "/subscriptions")
async def get_subscriptions(request: Request) -> Response:
    """List the tenant's subscriptions with limit / offset / count."""
    broker = _broker(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload,
                           ("limit", "offset", "count", "options"))
    params = incoming.params
    limit = _int_param(params, "limit", broker.settings.default_limit)
    if limit > broker.settings.max_limit:
        raise bad_request("Invalid value for URI parameter /limit/",
                          f"must be an integer value <= {broker.settings.max_limit}")
    offset = _int_param(params, "offset", 0)
    count = params.get("count") == "true" or "count" in params.get("options", "").split(",")
    if limit == 0 and not count:
        raise bad_request("Invalid value for URI parameter /limit/", "0 is only allowed with count=true")
    subs = list(_manager(request).subs.get(incoming.tenant, {}).values())
    sys_attrs = "sysAttrs" in params.get("options", "").split(",")
    ctx = await request_context(request, broker.contexts)
    page = [s.view(sys_attrs, ctx) for s in subs[offset:offset + limit]]
    headers = {"NGSILD-Results-Count": str(len(subs))} if count else {}
    return answer(page, incoming.media, ctx, headers, _page_links(limit, offset, len(subs)))


def _page_links(limit: int, offset: int, total: int) -> list[str]:
    """rel=prev / rel=next Link values of a page (GS CIM 009 5.5.9)."""
    links = []
    if offset > 0 and limit > 0:
        links.append(f'</ngsi-ld/v1/subscriptions?limit={limit}&offset={max(0, offset - limit)}>;'
                     'rel="prev";type="application/ld+json"')
    if limit > 0 and offset + limit < total:
        links.append(f'</ngsi-ld/v1/subscriptions?limit={limit}&offset={offset + limit}>;'
                     'rel="next";type="application/ld+json"')
    return links


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 15:  # "²".isdigit() is True, int() fails
        raise bad_request(f"Bad value for URI parameter /{name}/", raw)
    return int(raw)


@router.get(PREFIX + "/subscriptions/{ident:path}")
async def get_subscription(ident: str, request: Request) -> Response:
    """One subscription with its status and counters."""
    broker = _broker(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ("options",))
    sub = _manager(request).get(incoming.tenant, ident)
    ctx = await request_context(request, broker.contexts)
    return answer(sub.view("sysAttrs" in incoming.params.get("options", "").split(","), ctx),
                   incoming.media, ctx)


@router.patch(PREFIX + "/subscriptions/{ident:path}")
async def patch_subscription(ident: str, request: Request) -> Response:
    """Merge fields into a subscription: 204."""
    broker = _broker(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, (), body=True,
                           merge_patch=True)
    ctx = await request_context(request, broker.contexts, incoming.payload)
    assert incoming.payload is not None  # body=True
    await _manager(request).update(incoming.tenant, ident, incoming.payload.data, ctx)
    return empty(204)


@router.delete(PREFIX + "/subscriptions/{ident:path}")
async def delete_subscription(ident: str, request: Request) -> Response:
    """Delete a subscription: 204."""
    broker = _broker(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ())
    await _manager(request).delete(incoming.tenant, ident)
    return empty(204)
