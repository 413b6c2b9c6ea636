"""Entity routes: /entities, /entities/{id}, /entities/{id}/attrs[/{attr}], /entityOperations/query."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response

from ngsild_broker import operations as ops
from ngsild_broker.contexts import Context, header_uri
from ngsild_broker.entities import (
    EntityInput,
    check_uri,
    expand_attr_name,
    parse_attribute,
    parse_attributes,
    parse_entity,
    parse_fragment,
    parse_types,
    split_nulls,
)
from ngsild_broker.errors import NgsiError, already_exists, bad_request, invalid_request, not_found
from ngsild_broker.instances import is_null
from ngsild_broker.linked import Shaper, check_pick_omit, fetch_linked, parse_projection
from ngsild_broker.protocol import (
    GEOJSON,
    JSONLD,
    Incoming,
    begin,
    empty,
    entity_headers,
    json_response,
    request_context,
)
from ngsild_broker.query import (
    EntityQuery,
    OutputOptions,
    QueryResult,
    parse_options,
    query_from_body,
    query_from_params,
    run_query,
)
from ngsild_broker.render import render_entity, render_feature
from ngsild_broker.state import BrokerState, broker_of

router = APIRouter()
PREFIX = "/ngsi-ld/v1"
_FORMAT_PARAMS = ("options", "format", "lang", "prettyPrint", "spaces", "datasetId", "pick", "omit",
                  "join", "joinLevel", "containedBy")
QUERY_PARAMS = frozenset({"id", "type", "idPattern", "attrs", "q", "georel", "geometry", "coordinates",
                          "geoproperty", "geometryProperty", "limit", "offset", "count", "local",
                          "scopeQ", *_FORMAT_PARAMS})
_TOO_BROAD = ("Need at least one of: entity-id, entity-type, geo-location, attribute-list, "
              "Q-filter, local=true")


async def _begin(request: Request, allowed: Any = (), **kwargs: Any) -> tuple[BrokerState, Incoming]:
    broker = broker_of(request)
    return broker, await begin(request, broker.store, broker.settings.max_payload, allowed, **kwargs)


# -- responses ------------------------------------------------------------------------------------
def _shaper(broker: BrokerState, incoming: Incoming, ctx: Context, opts: OutputOptions,
            attrs: list[str] | None) -> Shaper:
    """How this request's entities are rendered: format, projections, linked entities."""
    params = incoming.params
    pick = parse_projection(params["pick"], "pick") if "pick" in params else None
    omit = parse_projection(params["omit"], "omit") if "omit" in params else None
    check_pick_omit(pick, omit, "attrs" in params)
    join = params.get("join")
    if join is not None and join not in ("inline", "flat", "@none"):
        raise bad_request("Invalid value for URI parameter /join/", join)
    level = params.get("joinLevel", "1")
    if not level.isdigit() or int(level) < 1:
        raise bad_request("Invalid value for URI parameter /joinLevel/", level)
    lang = params.get("lang")

    def render(doc: dict[str, Any]) -> dict[str, Any]:
        return render_entity(doc, ctx, opts.fmt, sys_attrs=opts.sys_attrs, attrs=attrs, lang=lang,
                             datasets=opts.datasets)

    return Shaper(render, ctx.compact, opts.fmt == "keyValues", pick, omit,
                  None if join == "@none" else join, int(level))


async def _with_linked(broker: BrokerState, tenant: str, shaper: Shaper, docs: list[dict[str, Any]]) -> None:
    if shaper.join is not None and docs:
        shaper.linked = await broker.run(fetch_linked, lambda ids: broker.store.get_many(tenant, ids),
                                         docs, shaper.level)


async def entities_response(broker: BrokerState, result: QueryResult, ctx: Context, incoming: Incoming,
                            opts: OutputOptions, attrs: list[str] | None) -> Response:
    """A list of entities in the negotiated media type, with count header and Link."""
    headers: dict[str, str] = {}
    if result.total is not None:
        headers["NGSILD-Results-Count"] = str(result.total)
    shaper = _shaper(broker, incoming, ctx, opts, attrs)
    if incoming.media == GEOJSON:
        geoproperty = ctx.expand(incoming.params.get("geometryProperty", "location"))
        features = [render_feature(d, ctx, opts.fmt, geoproperty, sys_attrs=opts.sys_attrs, attrs=attrs)
                    for d in result.docs]
        headers.update(entity_headers(ctx, GEOJSON))
        return json_response({"type": "FeatureCollection", "features": features,
                              "@context": ctx.body_value()}, headers=headers, media=GEOJSON)
    await _with_linked(broker, incoming.tenant, shaper, result.docs)
    body = shaper.entities(result.docs)
    if incoming.media == JSONLD:
        context = ctx.body_value()
        for entity in body:
            entity["@context"] = context
    headers.update(entity_headers(ctx, incoming.media, has_content=bool(body)))
    return json_response(body, headers=headers, media=incoming.media)


def _too_broad(query: EntityQuery) -> None:
    if query.too_broad:
        raise bad_request("Too broad query", _TOO_BROAD)


# -- /entities ------------------------------------------------------------------------------------
@router.post(PREFIX + "/entities")
async def create_entity(request: Request) -> Response:
    """POST /entities: 201 + Location, 409 when the id exists."""
    broker, incoming = await _begin(request, body=True, create_tenant=True)
    assert incoming.payload is not None
    if not isinstance(incoming.payload.data, dict):  # not an entity at all: the request is invalid
        raise invalid_request("Invalid Payload Body", "an entity is a JSON object")
    ctx = await request_context(request, broker.contexts, incoming.payload)
    if incoming.payload.data == {}:
        raise bad_request("Invalid Payload Body", "Empty Object")
    entity = parse_entity(incoming.payload.data, ctx)
    outcome = await broker.run(ops.batch_create, broker.store, incoming.tenant, [entity])
    if outcome.errors:
        raise already_exists("Entity already exists", entity.id)
    broker.changed(incoming.tenant, outcome.changes)
    return empty(201, {"Location": header_uri(f"{PREFIX}/entities/{entity.id}")})


@router.api_route(PREFIX + "/entities", methods=["PATCH", "PUT"])
async def entity_without_id(request: Request) -> Response:
    """PATCH/PUT /entities/ (an empty id): 400, as the ETSI suite expects (056_02_02, 054_02_02)."""
    raise bad_request("Missing entity id", f"{request.method} needs /entities/{{entityId}}")


@router.get(PREFIX + "/entities")
async def query_entities(request: Request) -> Response:
    """GET /entities."""
    broker, incoming = await _begin(request, QUERY_PARAMS, geojson=True)
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    opts = parse_options(incoming.params)
    query = query_from_params(incoming.params, incoming.tenant, ctx, opts.count,
                              broker.settings.default_limit, broker.settings.max_limit)
    _too_broad(query)
    result = await broker.run(run_query, broker.store, query)
    return await entities_response(broker, result, ctx, incoming, opts, query.attrs)


_PURGE_PARAMS = ("id", "type", "idPattern", "attrs", "q", "georel", "geometry", "coordinates",
                 "geoproperty", "local")
_PURGE_PAGE = 1000


@router.delete(PREFIX + "/entities")
async def purge_entities(request: Request) -> Response:
    """DELETE /entities: purge every entity the filter matches (NGSI-LD 1.8, "Purge Entities").

    The same filters as a query and the same too-broad rule, so an empty filter never wipes a
    tenant. Matches are deleted in pages of 1000, each one transaction; subscriptions hear of
    every deletion. 204 also when nothing matched.
    """
    broker, incoming = await _begin(request, _PURGE_PARAMS)
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    query = query_from_params(incoming.params, incoming.tenant, ctx, False,
                              broker.settings.default_limit, broker.settings.max_limit)
    _too_broad(query)
    query.limit, query.offset = _PURGE_PAGE, 0
    while True:
        page = await broker.run(run_query, broker.store, query)
        ids = [doc["id"] for doc in page.docs]
        if not ids:
            break
        outcome = await broker.run(ops.batch_delete, broker.store, incoming.tenant, ids)
        broker.changed(incoming.tenant, outcome.changes)
        if len(ids) < _PURGE_PAGE:
            break
    return empty()


@router.post(PREFIX + "/entityOperations/query")
async def post_query(request: Request) -> Response:
    """POST /entityOperations/query."""
    broker, incoming = await _begin(request, ("limit", "offset", "count", *_FORMAT_PARAMS),
                                    body=True, geojson=True)
    assert incoming.payload is not None
    ctx = await request_context(request, broker.contexts, incoming.payload)
    if isinstance(incoming.payload.data, dict):  # output members of a Query (GS CIM 009 5.2.23)
        for name in ("join", "joinLevel", "pick", "omit", "lang", "datasetId"):
            value = incoming.payload.data.get(name)
            if value is not None and name not in incoming.params:
                incoming.params[name] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    opts = parse_options(incoming.params)
    query = query_from_body(incoming.payload.data, incoming.tenant, ctx, incoming.params, opts.count,
                            broker.settings.default_limit, broker.settings.max_limit)
    _too_broad(query)
    result = await broker.run(run_query, broker.store, query)
    return await entities_response(broker, result, ctx, incoming, opts, query.attrs)


# -- /entities/{id}[/attrs[/{attr}]] ------------------------------------------------------------------
_ALLOW = {"entity": ("GET", "DELETE", "PATCH", "PUT"), "attrs": ("POST", "PATCH"),
          "attr": ("PATCH", "PUT", "DELETE")}


@router.api_route(PREFIX + "/entities/{rest:path}",
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"])
async def entity_resource(request: Request, rest: str) -> Response:
    """Dispatch on the path shape: ids may contain '/' (e.g. http://a.b.c/entity/E1)."""
    attr = None
    if rest.endswith("/attrs"):
        kind, entity_id = "attrs", rest[: -len("/attrs")]
    elif "/attrs/" in rest:
        kind = "attr"
        entity_id, attr = rest.rsplit("/attrs/", 1)
    else:
        kind, entity_id = "entity", rest
    allowed = _ALLOW[kind]
    if request.method not in allowed:
        raise NgsiError(405, "OperationNotSupported", "Method not allowed",
                        f"{request.method} is not supported on this resource",
                        headers={"Allow": ",".join(allowed)})
    check_uri(entity_id, "entity id")
    handler = _HANDLERS[(kind, request.method)]
    return await handler(request, entity_id, attr)


async def _get_entity(request: Request, entity_id: str, _: Any) -> Response:
    broker, incoming = await _begin(request, ("attrs", *_FORMAT_PARAMS, "geometryProperty", "local"),
                                    geojson=True)
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    opts = parse_options(incoming.params)
    doc = await broker.run(broker.store.get, incoming.tenant, entity_id)
    if doc is None:
        raise not_found("Entity not found", entity_id)
    attrs = None
    if "attrs" in incoming.params:
        attrs = [ctx.expand(a.strip()) for a in incoming.params["attrs"].split(",") if a.strip()]
    shaper = _shaper(broker, incoming, ctx, opts, attrs)  # parameter errors before 404s
    if attrs is not None and not any(a in doc for a in attrs):
        raise not_found("Combination Entity/Attributes Not Found", entity_id)
    if incoming.media == GEOJSON:
        geoproperty = ctx.expand(incoming.params.get("geometryProperty", "location"))
        feature = render_feature(doc, ctx, opts.fmt, geoproperty, sys_attrs=opts.sys_attrs, attrs=attrs)
        feature["@context"] = ctx.body_value()
        return json_response(feature, headers=entity_headers(ctx, GEOJSON), media=GEOJSON)
    await _with_linked(broker, incoming.tenant, shaper, [doc])
    body: Any = shaper.entities([doc]) if shaper.join == "flat" else [shaper.entity(doc)]
    if not body[0] or set(body[0]) <= {"@context"}:  # pick/omit left nothing (ETSI 018_19)
        raise not_found("No entity member left", "pick/omit selected no member of the entity")
    if incoming.media == JSONLD:
        for entity in body:
            entity["@context"] = ctx.body_value()
    return json_response(body if len(body) > 1 else body[0], headers=entity_headers(ctx, incoming.media),
                         media=incoming.media)


async def _delete_entity(request: Request, entity_id: str, _: Any) -> Response:
    broker, incoming = await _begin(request)
    change = await broker.run(ops.delete_entity, broker.store, incoming.tenant, entity_id)
    broker.changed(incoming.tenant, [change])
    return empty()


async def _with_body(request: Request, **kwargs: Any) -> tuple[BrokerState, Incoming, Context, Any]:
    broker, incoming = await _begin(request, ("options",), body=True, **kwargs)
    assert incoming.payload is not None
    ctx = await request_context(request, broker.contexts, incoming.payload)
    data = incoming.payload.data
    if not isinstance(data, dict):
        raise bad_request("Invalid Payload Body", "the payload must be a JSON object")
    if not data:
        raise bad_request("Invalid Payload Body", "Empty Object")
    return broker, incoming, ctx, data


def _no_overwrite(incoming: Incoming) -> bool:
    options = {o.strip() for o in incoming.params.get("options", "").split(",") if o.strip()}
    for option in options - {"noOverwrite"}:
        raise bad_request("Invalid value for URI param /options/", option)
    return "noOverwrite" in options


def _update_result(ctx: Context, updated: list[str], skipped: list[tuple[str, str]]) -> Response:
    if not skipped:
        return empty()
    return json_response({"updated": [ctx.compact(i) for i in updated],
                          "notUpdated": [{"attributeName": ctx.compact(i), "reason": r}
                                         for i, r in skipped]}, status=207)


async def _merge_entity(request: Request, entity_id: str, _: Any) -> Response:
    broker, incoming, ctx, data = await _with_body(request, merge_patch=True)
    kept, deletions, _ = split_nulls(data, ctx)
    entity = EntityInput(entity_id, parse_types(kept.get("type"), ctx, need_type=False),
                         parse_attributes(kept, ctx))
    _, change = await broker.run(ops.merge_entity, broker.store, incoming.tenant, entity_id, entity,
                                 deletions)
    broker.changed(incoming.tenant, [change] if change else [])
    return empty()


async def _replace_entity(request: Request, entity_id: str, _: Any) -> Response:
    broker, incoming, ctx, data = await _with_body(request)
    if "id" in data and data["id"] != entity_id:
        raise bad_request("Mismatching entity id", f"{data['id']} is not {entity_id}")
    entity = parse_entity({**data, "id": entity_id}, ctx, need_type=False)
    _, change = await broker.run(ops.replace_entity, broker.store, incoming.tenant, entity_id, entity)
    broker.changed(incoming.tenant, [change] if change else [])
    return empty()


async def _append_attrs(request: Request, entity_id: str, _: Any) -> Response:
    broker, incoming, ctx, data = await _with_body(request)
    no_overwrite = _no_overwrite(incoming)
    attrs = parse_attributes(data, ctx)
    types = parse_types(data.get("type"), ctx, need_type=False)
    (updated, skipped), change = await broker.run(ops.append_attrs, broker.store, incoming.tenant,
                                                  entity_id, attrs, no_overwrite, types)
    broker.changed(incoming.tenant, [change] if change else [])
    return _update_result(ctx, updated, skipped)


async def _update_attrs(request: Request, entity_id: str, _: Any) -> Response:
    broker, incoming, ctx, data = await _with_body(request, merge_patch=True)
    kept, deletions, ignored = split_nulls(data, ctx)
    attrs = parse_attributes(kept, ctx)
    types = parse_types(kept.get("type"), ctx, need_type=False)
    (updated, skipped), change = await broker.run(ops.update_attrs, broker.store, incoming.tenant,
                                                  entity_id, attrs, deletions, types)
    broker.changed(incoming.tenant, [change] if change else [])
    return _update_result(ctx, updated, [*skipped, *ignored])


async def _patch_attr(request: Request, entity_id: str, attr: str) -> Response:
    broker, incoming, ctx, data = await _with_body(request, merge_patch=True)
    iri = expand_attr_name(attr, ctx)
    if is_null(data):  # NGSI-LD Null: delete the instance
        _, change = await broker.run(ops.patch_attr, broker.store, incoming.tenant, entity_id, iri, None,
                                     data.get("datasetId"))
        broker.changed(incoming.tenant, [change] if change else [])
        return empty()
    fragment = parse_fragment(data, iri, ctx)
    _, change = await broker.run(ops.patch_attr, broker.store, incoming.tenant, entity_id, iri, fragment)
    broker.changed(incoming.tenant, [change] if change else [])
    return empty()


async def _replace_attr(request: Request, entity_id: str, attr: str) -> Response:
    broker, incoming, ctx, data = await _with_body(request)
    if attr == "scope":  # not an attribute (ETSI 055_03_05)
        raise bad_request("Invalid attribute name", "scope is an entity member, not an attribute")
    iri = expand_attr_name(attr, ctx)
    _, change = await broker.run(ops.replace_attr, broker.store, incoming.tenant, entity_id, iri,
                                 parse_attribute(data, iri, ctx))
    broker.changed(incoming.tenant, [change] if change else [])
    return empty()


async def _delete_attr(request: Request, entity_id: str, attr: str) -> Response:
    broker, incoming = await _begin(request, ("datasetId", "deleteAll"))
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    iri = "scope" if attr == "scope" else expand_attr_name(attr, ctx)
    dataset_id = incoming.params.get("datasetId")
    if dataset_id is not None:
        check_uri(dataset_id, "datasetId")
    _, change = await broker.run(ops.delete_attr, broker.store, incoming.tenant, entity_id, iri,
                                 dataset_id, incoming.params.get("deleteAll") == "true")
    broker.changed(incoming.tenant, [change] if change else [])
    return empty()


_HANDLERS: dict[tuple[str, str], Callable[[Request, str, Any], Awaitable[Response]]] = {
    ("entity", "GET"): _get_entity, ("entity", "DELETE"): _delete_entity,
    ("entity", "PATCH"): _merge_entity, ("entity", "PUT"): _replace_entity,
    ("attrs", "POST"): _append_attrs, ("attrs", "PATCH"): _update_attrs,
    ("attr", "PATCH"): _patch_attr, ("attr", "PUT"): _replace_attr, ("attr", "DELETE"): _delete_attr,
}
