"""Batch routes: POST /entityOperations/{create,upsert,update,delete} (ETSI / experimental answers)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ngsild_broker import operations as ops
from ngsild_broker.contexts import Context
from ngsild_broker.entities import check_uri, parse_entity, split_nulls
from ngsild_broker.errors import NgsiError, bad_request, not_found
from ngsild_broker.protocol import JSONLD, begin, empty, json_response
from ngsild_broker.state import BrokerState, broker_of

router = APIRouter()
PREFIX = "/ngsi-ld/v1/entityOperations/"


def _entity_id_of(raw: Any) -> str:
    """The entityId of a failed item; placeholders as Orion-LD's experimental mode."""
    if not isinstance(raw, dict) or "id" not in raw:
        return "No Entity::id"
    return raw["id"] if isinstance(raw["id"], str) else "Invalid Entity::id"


def _options(params: dict[str, str], allowed: set[str]) -> set[str]:
    options = {o.strip() for o in params.get("options", "").split(",") if o.strip()}
    for option in options - allowed:
        raise bad_request("Invalid value for URI param /options/", option)
    if {"update", "replace"} <= options:
        raise bad_request("URI Param Error", "options=update and options=replace exclude each other")
    return options


async def _items(broker: BrokerState, request: Request, data: list[Any], media: str,
                 need_type: bool, merge: bool = False) -> list[ops.Item]:
    """Each array item parsed with its own context; failures become per-entity errors."""
    link = request.headers.get("link")
    if media == JSONLD and link is not None:
        raise bad_request("invalid combination of HTTP headers Content-Type and Link",
                          "Content-Type is application/ld+json and a Link header is present")
    link_ctx: Context | None = await broker.contexts.from_link(link) if media != JSONLD else None
    items: list[ops.Item] = []
    for raw in data:
        try:
            if isinstance(raw, dict) and media != JSONLD and "@context" in raw:
                raise bad_request("Mismatch between /Content-Type/ and contents of the request payload "
                                  "body", "Content-Type is application/json but the entity has an @context")
            if link_ctx is not None:
                ctx = link_ctx
            elif isinstance(raw, dict) and "@context" not in raw:
                raise bad_request("@context missing in JSON payload",
                                  "Content-Type is application/ld+json but the entity has no @context")
            else:
                ctx = await broker.contexts.from_value(raw.get("@context") if isinstance(raw, dict) else None)
            if merge and isinstance(raw, dict):
                kept, deletions, _ = split_nulls(raw, ctx)
                item = parse_entity(kept, ctx, need_type=False)
                item.deletions = deletions
                items.append(item)
            else:
                items.append(parse_entity(raw, ctx, need_type=need_type))
        except NgsiError as err:
            items.append((_entity_id_of(raw), err))
    return items


@router.post(PREFIX + "{operation}")
async def batch(request: Request, operation: str) -> Response:
    """One batch operation; 201 / 204 / 207 as GS CIM 009 (Orion-LD experimental mode)."""
    if operation not in ("create", "upsert", "update", "delete", "merge"):
        raise not_found("Service Not Found", request.url.path)
    broker = broker_of(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ("options",), body=True,
                           create_tenant=operation in ("create", "upsert"))
    assert incoming.payload is not None
    data = incoming.payload.data
    if not isinstance(data, list):
        raise bad_request("Invalid Payload Body", "Must be a JSON Array")
    if not data:
        raise bad_request("Invalid Payload Body", "Empty Array")
    store, tenant = broker.store, incoming.tenant
    if operation == "delete":
        for item in data:
            if not isinstance(item, str):
                raise bad_request("Invalid Payload Body", "Array items must be JSON Strings")
            check_uri(item, "Array items must be valid URIs")
        outcome = await broker.run(ops.batch_delete, store, tenant, data)
    else:
        options = _options(incoming.params, {"update", "replace"} if operation == "upsert"
                           else {"noOverwrite"} if operation == "update" else set())  # merge: none
        items = await _items(broker, request, data, incoming.payload.media,
                             operation not in ("update", "merge"), merge=operation == "merge")
        if operation == "merge":
            outcome = await broker.run(ops.batch_merge, store, tenant, items)
        elif operation == "create":
            outcome = await broker.run(ops.batch_create, store, tenant, items)
        elif operation == "upsert":
            outcome = await broker.run(ops.batch_upsert, store, tenant, items, "update" in options)
        else:
            outcome = await broker.run(ops.batch_update, store, tenant, items, "noOverwrite" in options)
    broker.changed(tenant, outcome.changes)
    if outcome.errors:
        return json_response(outcome.body(), status=207)
    if operation in ("create", "upsert") and outcome.created:
        return json_response(outcome.created, status=201)
    return empty()
