"""Temporal routes (NGSI-LD 1.8 temporal API) under /ngsi-ld/v1/temporal/.

- POST /temporal/entities: add history. When the entity has no current state yet it is created from
  the newest instance of each attribute; an existing current entity is never touched (Orion-LD's
  TRoE takes history without rewriting the present; the adapter's backfill relies on it).
- GET /temporal/entities, POST /temporal/entityOperations/query, GET /temporal/entities/{id}.
- DELETE /temporal/entities/{id}: the history only (the current entity stays).
- POST /temporal/entities/{id}/attrs: append instances.
- DELETE /temporal/entities/{id}/attrs/{attr}[?datasetId|deleteAll], PATCH and DELETE of
  /temporal/entities/{id}/attrs/{attr}/{instanceId}.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import APIRouter, Request, Response

from ngsild_broker.aggregate import aggregate_entity
from ngsild_broker.contexts import Context
from ngsild_broker.entities import (
    EntityInput,
    check_uri,
    expand_attr_name,
    location_bbox,
    new_document,
    now_iso,
    parse_attribute,
    parse_types,
)
from ngsild_broker.errors import NgsiError, bad_request, invalid_request, not_found
from ngsild_broker.operations import Change
from ngsild_broker.protocol import (
    JSONLD,
    KNOWN_PARAMS,
    Incoming,
    check_params,
    empty,
    entity_headers,
    json_response,
    negotiate,
    no_body,
    read_json,
    request_context,
    tenant_of,
)
from ngsild_broker.render import render_attribute
from ngsild_broker.state import BrokerState, broker_of
from ngsild_broker.temporal_query import (
    TemporalEntity,
    TemporalQuery,
    fill,
    from_body,
    from_params,
    select,
)
from ngsild_broker.temporal_store import TemporalStore, format_time, parse_instance_id

router = APIRouter()
PREFIX = "/ngsi-ld/v1/temporal"
_QUERY_PARAMS = ("id", "type", "idPattern", "attrs", "q", "georel", "geometry", "coordinates",
                 "geoproperty", "timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "options",
                 "format", "aggrMethods", "aggrPeriodDuration", "limit", "offset", "count", "local",
                 "datasetId", "lang", "prettyPrint", "spaces", "pick", "omit")
_RETRIEVE_PARAMS = ("attrs", "timerel", "timeAt", "endTimeAt", "timeproperty", "lastN", "options",
                    "format", "aggrMethods", "aggrPeriodDuration", "datasetId", "lang", "prettyPrint",
                    "spaces", "pick", "omit")
_SIMPLIFIED_KEY = {"Property": "values", "GeoProperty": "values", "Relationship": "objects",
                   "LanguageProperty": "languageMaps", "JsonProperty": "jsons", "VocabProperty": "vocabs",
                   "ListProperty": "valueLists", "ListRelationship": "objectLists"}
_TOO_BROAD = "Need at least one of: entity-type, attribute-list, Q-filter, geo-query, local=true"


# URI parameters only the temporal API knows (protocol.check_params rejects them elsewhere).
_TEMPORAL_ONLY = frozenset({"aggrMethods", "aggrPeriodDuration", "pick", "omit"})
_KNOWN = KNOWN_PARAMS | _TEMPORAL_ONLY


async def _begin(request: Request, allowed: tuple[str, ...], *, body: bool = False,
                 create_tenant: bool = False) -> tuple[BrokerState, Incoming]:
    """protocol.begin's checks, in its order, with the temporal API's parameters known."""
    broker = broker_of(request)
    media = negotiate(request, geojson=False)
    params = check_params(request, allowed, _KNOWN)
    tenant_of(request, broker.store, create=True)  # name checks before the payload
    if body and request.headers.get("content-length") in (None, "0") and \
            "chunked" not in request.headers.get("transfer-encoding", ""):
        raise invalid_request("payload missing", "a JSON payload is required")
    payload = await read_json(request, broker.settings.max_payload) if body else None
    if not body:
        no_body(request)
    return broker, Incoming(params, media, tenant_of(request, broker.store, create=create_tenant), payload)


def _history(broker: BrokerState) -> TemporalStore:
    history = broker.store.history
    if history is None:
        raise NgsiError(501, "OperationNotSupported", "Temporal API disabled",
                        "this broker runs without attribute history")
    return history


# -- rendering ------------------------------------------------------------------------------------
def _render_entity(entity: TemporalEntity, tq: TemporalQuery, ctx: Context,
                   history: TemporalStore) -> dict[str, Any]:
    types = [ctx.compact(t) for t in entity.types]
    out: dict[str, Any] = {"id": entity.id, "type": types[0] if len(types) == 1 else types}
    if tq.fmt == "aggregatedValues":
        for iri, body in aggregate_entity(history, tq, entity).items():
            out[ctx.compact(iri)] = body
        return out
    for iri, instances in entity.attrs.items():
        name = ctx.compact(iri)
        if tq.fmt == "temporalValues":
            groups = _simplified(instances, tq)
            out[name] = groups[0] if len(groups) == 1 else groups
            continue
        rendered = []
        for inst in instances:
            attr = inst.attribute(tq.sys_attrs)
            deleted_at = attr.pop("deletedAt", None)
            item = render_attribute(attr, ctx, "normalized", tq.sys_attrs)
            if deleted_at is not None:
                item["deletedAt"] = deleted_at
            rendered.append(item)
        out[name] = rendered
    return out


_WRAPPED = {"LanguageProperty": "languageMap", "JsonProperty": "json", "VocabProperty": "vocab"}


def _simplified(instances: list[Any], tq: TemporalQuery) -> list[dict[str, Any]]:
    """The simplified temporal representation (4.5.9): [value, time] pairs, one group per datasetId."""
    prop = ("deletedAt" if tq.deleted else "observedAt" if tq.column == "obs"
            else "createdAt" if tq.column == "created" else "modifiedAt")
    groups: dict[Any, dict[str, Any]] = {}
    for inst in instances:
        dataset = inst.meta.get("datasetId")
        group = groups.get(dataset)
        if group is None:
            group = groups[dataset] = {"type": inst.kind}
            if dataset is not None:
                group["datasetId"] = dataset
            group[_SIMPLIFIED_KEY.get(inst.kind, "values")] = []
        moment = inst.time_of(prop)
        value = {_WRAPPED[inst.kind]: inst.value} if inst.kind in _WRAPPED else inst.value
        group[_SIMPLIFIED_KEY.get(inst.kind, "values")].append(
            [value, format_time(moment) if moment is not None else None])
    return list(groups.values()) or [{"type": "Property", "values": []}]


def _project(body: dict[str, Any], tq: TemporalQuery) -> dict[str, Any]:
    """pick / omit on the rendered entity's members (id, type, attribute names)."""
    if tq.pick:
        body = {k: v for k, v in body.items() if k in tq.pick}
    if tq.omit:
        body = {k: v for k, v in body.items() if k not in tq.omit}
    return body


def _answer(body: Any, ctx: Context, media: str, content_range: str | None,
            extra: dict[str, str] | None = None) -> Response:
    headers = dict(extra or {})
    if content_range is not None:
        headers["Content-Range"] = content_range
    if media == JSONLD:
        context = ctx.body_value()
        for entity in body if isinstance(body, list) else [body]:
            entity["@context"] = context
    headers.update(entity_headers(ctx, media, has_content=bool(body)))
    return json_response(body, status=206 if content_range else 200, headers=headers, media=media)


# -- queries --------------------------------------------------------------------------------------
async def _run_query(broker: BrokerState, history: TemporalStore, tq: TemporalQuery, ctx: Context,
                     media: str) -> Response:
    if tq.too_broad:
        raise bad_request("Too broad query", _TOO_BROAD)

    def work() -> tuple[list[dict[str, Any]], int, str | None]:
        matched = select(history, tq)
        page = matched[tq.offset:tq.offset + tq.limit]
        content_range = fill(history, tq, page, broker.settings.temporal_limit)
        body = [_project(_render_entity(e, tq, ctx, history), tq) for e in page]
        return body, len(matched), content_range

    body, total, content_range = await broker.run(work)
    extra = {"NGSILD-Results-Count": str(total)} if tq.count else None
    return _answer(body, ctx, media, content_range, extra)


@router.get(PREFIX + "/entities")
async def query_temporal(request: Request) -> Response:
    """GET /temporal/entities."""
    broker, incoming = await _begin(request, _QUERY_PARAMS)
    history = _history(broker)
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    tq = from_params(incoming.params, incoming.tenant, ctx, broker.settings.default_limit,
                     broker.settings.max_limit)
    return await _run_query(broker, history, tq, ctx, incoming.media)


@router.post(PREFIX + "/entityOperations/query")
async def post_query_temporal(request: Request) -> Response:
    """POST /temporal/entityOperations/query."""
    broker, incoming = await _begin(request, ("limit", "offset", "count", "options", "format",
                                              "aggrMethods", "aggrPeriodDuration", "lang"), body=True)
    history = _history(broker)
    ctx = await request_context(request, broker.contexts, incoming.payload)
    assert incoming.payload is not None
    tq = from_body(incoming.payload.data, incoming.params, incoming.tenant, ctx,
                   broker.settings.default_limit, broker.settings.max_limit)
    return await _run_query(broker, history, tq, ctx, incoming.media)


# -- creation ---------------------------------------------------------------------------------------
def _instances_of(data: dict[str, Any], ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Attribute IRI -> normalized instances of a temporal payload (an instance or an array of them)."""
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, value in data.items():
        if name in ("id", "type", "@context", "createdAt", "modifiedAt", "scope", "@id", "@type"):
            continue
        iri = expand_attr_name(name, ctx)
        items = value if isinstance(value, list) and (not value or isinstance(value[0], dict)) else [value]
        parsed = []
        for item in items:
            attr = parse_attribute(item, iri, ctx)
            observed = attr.get("observedAt")
            if observed is not None and not observed.endswith("Z"):
                raise bad_request("Invalid DateTime", f"{iri}: observedAt must be a UTC DateTime "
                                  "ending in Z")
            parsed.append(attr)
        attrs[iri] = parsed
    return attrs


def _newest(instances: list[dict[str, Any]]) -> dict[str, Any]:
    return max(instances, key=lambda a: a.get("observedAt") or "")


def _add_history(store: Any, tenant: str, entity_id: str, types: list[str] | None,
                 attrs: dict[str, list[dict[str, Any]]], create_current: bool,
                 need_entity: bool = False) -> tuple[bool, Change | None]:
    """Record instances (and create the current entity when it has none); (history was new, change)."""
    history: TemporalStore = store.history
    change = None
    with store.write() as tx:
        tx.ensure_tenant(tenant)
        existed = history.entity(tenant, entity_id, tx.conn) is not None
        if need_entity and not existed:
            raise not_found("Entity does not exist", entity_id)
        history.add(tx.conn, tenant, entity_id, types, attrs)
        if create_current and types and not tx.get_many(tenant, [entity_id]):
            current = {iri: dict(_newest(items)) for iri, items in attrs.items() if items}
            doc = new_document(EntityInput(entity_id, types, current), now_iso())
            tx.insert(tenant, doc, location_bbox(doc))
            change = Change(None, doc)
    return not existed, change


@router.post(PREFIX + "/entities")
async def create_temporal(request: Request) -> Response:
    """POST /temporal/entities: 201 when the entity had no history, 204 when instances were added."""
    broker, incoming = await _begin(request, (), body=True, create_tenant=True)
    _history(broker)
    ctx = await request_context(request, broker.contexts, incoming.payload)
    assert incoming.payload is not None
    data = incoming.payload.data
    if not isinstance(data, dict) or not data:
        raise invalid_request("Invalid Payload Body", "the payload must be a non-empty JSON object")
    if "id" not in data:
        raise bad_request("Entity id is missing", "The 'id' field is mandatory")
    entity_id = check_uri(data["id"], "id")
    types = parse_types(data.get("type"), ctx)
    attrs = _instances_of(data, ctx)
    created, change = await broker.run(_add_history, broker.store, incoming.tenant, entity_id, types,
                                       attrs, True)
    if change is not None:
        broker.changed(incoming.tenant, [change])
    if created:
        return empty(201, {"Location": f"{PREFIX}/entities/{entity_id}"})
    return empty()


# -- /temporal/entities/{id}[/attrs[/{attr}[/{instanceId}]]] -------------------------------------
@router.api_route(PREFIX + "/entities/{rest:path}", methods=["GET", "POST", "PATCH", "DELETE"])
async def temporal_resource(request: Request, rest: str) -> Response:
    """Dispatch on the path shape: ids may contain '/'."""
    if rest == "":  # /temporal/entities/ is the collection
        if request.method == "POST":
            return await create_temporal(request)
        if request.method == "GET":
            return await query_temporal(request)
        raise NgsiError(405, "OperationNotSupported", "Method not allowed",
                        f"{request.method} is not supported on this resource", headers={"Allow": "GET,POST"})
    attr = instance = None
    if rest.endswith("/attrs"):
        kind, entity_id = "attrs", rest[: -len("/attrs")]
    elif "/attrs/" in rest:
        entity_id, tail = rest.rsplit("/attrs/", 1)
        attr, _, instance = tail.partition("/")
        kind = "instance" if instance else "attr"
    else:
        kind, entity_id = "entity", rest
    allowed = {"entity": ("GET", "DELETE"), "attrs": ("POST",), "attr": ("DELETE",),
               "instance": ("PATCH", "DELETE")}[kind]
    if request.method not in allowed:
        raise NgsiError(405, "OperationNotSupported", "Method not allowed",
                        f"{request.method} is not supported on this resource",
                        headers={"Allow": ",".join(allowed)})
    check_uri(entity_id, "entity id")
    if kind == "instance" and not attr:  # .../attrs//{instanceId}: the ETSI suite's two answers
        if request.method == "DELETE":
            raise bad_request("Invalid attribute name", "no attribute name in the path")
        raise NgsiError(405, "OperationNotSupported", "Method not allowed", "no attribute name in the path",
                        headers={"Allow": ""})
    if attr is not None and unquote(attr) in (".", ".."):  # dot segments, also percent-encoded twice
        raise bad_request("Invalid attribute name", f"{attr!r} is not an attribute name")
    if kind == "entity":
        return await (_retrieve(request, entity_id) if request.method == "GET"
                      else _delete_entity(request, entity_id))
    if kind == "attrs":
        return await _append(request, entity_id)
    if kind == "attr":
        return await _delete_attr(request, entity_id, attr or "")
    return await _instance(request, entity_id, attr or "", instance or "")


async def _retrieve(request: Request, entity_id: str) -> Response:
    broker, incoming = await _begin(request, _RETRIEVE_PARAMS)
    history = _history(broker)
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    tq = from_params(incoming.params, incoming.tenant, ctx, broker.settings.default_limit,
                     broker.settings.max_limit)

    def work() -> tuple[dict[str, Any], str | None]:
        found = select(history, tq, single=entity_id)
        if not found:
            raise not_found("Entity not found", entity_id)
        content_range = fill(history, tq, found, broker.settings.temporal_limit)
        entity = found[0]
        if tq.attrs is not None and not entity.attrs:
            raise not_found("Combination Entity/Attributes Not Found", entity_id)
        body = _project(_render_entity(entity, tq, ctx, history), tq)
        if not body:
            raise not_found("No entity member matches pick/omit", entity_id)
        return body, content_range

    body, content_range = await broker.run(work)
    return _answer(body, ctx, incoming.media, content_range)


def _delete_history(store: Any, tenant: str, entity_id: str) -> bool:
    with store.write() as tx:
        return store.history.delete_entity(tx.conn, tenant, entity_id)


async def _delete_entity(request: Request, entity_id: str) -> Response:
    broker, incoming = await _begin(request, ())
    _history(broker)
    if not await broker.run(_delete_history, broker.store, incoming.tenant, entity_id):
        raise not_found("Entity not found", entity_id)
    return empty()


async def _append(request: Request, entity_id: str) -> Response:
    broker, incoming = await _begin(request, (), body=True)
    _history(broker)
    ctx = await request_context(request, broker.contexts, incoming.payload)
    assert incoming.payload is not None
    data = incoming.payload.data
    if not isinstance(data, dict) or not data:
        raise bad_request("Invalid Payload Body", "the payload must be a non-empty JSON object")
    types = parse_types(data["type"], ctx) if "type" in data else None
    attrs = _instances_of(data, ctx)
    await broker.run(_add_history, broker.store, incoming.tenant, entity_id, types, attrs, False, True)
    return empty()


def _on_history(store: Any, tenant: str, entity_id: str, fn: Any) -> Any:
    with store.write() as tx:
        found = store.history.entity(tenant, entity_id, tx.conn)
        if found is None:
            raise not_found("Entity not found", entity_id)
        return fn(tx.conn, found[0])


async def _delete_attr(request: Request, entity_id: str, attr: str) -> Response:
    broker, incoming = await _begin(request, ("datasetId", "deleteAll"))
    history = _history(broker)
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    iri = expand_attr_name(attr, ctx)
    delete_all = incoming.params.get("deleteAll") == "true"
    dataset_id = incoming.params.get("datasetId")
    deleted = await broker.run(_on_history, broker.store, incoming.tenant, entity_id,
                               lambda conn, eid: history.delete_attr(conn, eid, iri, dataset_id, delete_all))
    if not deleted:
        raise not_found("Attribute not found", iri)
    return empty()


async def _instance(request: Request, entity_id: str, attr: str, instance: str) -> Response:
    is_patch = request.method == "PATCH"
    broker, incoming = await _begin(request, (), body=is_patch)
    history = _history(broker)
    ctx = await request_context(request, broker.contexts, incoming.payload)
    iri = expand_attr_name(attr, ctx)
    check_uri(instance, "instanceId")
    iid = parse_instance_id(instance)
    if iid is None:
        raise not_found("Instance not found", instance)
    if is_patch:
        assert incoming.payload is not None
        data = incoming.payload.data
        if not isinstance(data, dict) or not data:
            raise bad_request("Invalid Payload Body", "the payload must be a non-empty JSON object")
        if set(data) - {"@context"} != {attr} and set(data) - {"@context"} != {ctx.compact(iri)}:
            fragment = parse_attribute(data, iri, ctx)
        else:
            raw = data.get(attr, data.get(ctx.compact(iri)))
            fragment = parse_attribute(raw[0] if isinstance(raw, list) and raw else raw, iri, ctx)
        ok = await broker.run(_on_history, broker.store, incoming.tenant, entity_id,
                              lambda conn, eid: history.replace_instance(conn, eid, iri, iid, fragment))
    else:
        ok = await broker.run(_on_history, broker.store, incoming.tenant, entity_id,
                              lambda conn, eid: history.delete_instance(conn, eid, iri, iid))
    if not ok:
        raise not_found("Instance not found", instance)
    return empty()

