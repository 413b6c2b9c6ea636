"""Discovery and context routes: /types, /attributes, /jsonldContexts, /ex/v1/version, /ex/v1/tenants."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request, Response

from ngsild_broker.contexts import CORE_URL, Context, ContextRecord, header_uri
from ngsild_broker.entities import SYSTEM
from ngsild_broker.errors import NgsiError, bad_request, invalid_request, not_found
from ngsild_broker.instances import instances
from ngsild_broker.protocol import begin, empty, entity_headers, json_response
from ngsild_broker.state import BrokerState, broker_of
from ngsild_broker.storage import EntityFilter, EntityStore

router = APIRouter()
PREFIX = "/ngsi-ld/v1"
_KINDS = ("Hosted", "Cached", "ImplicitlyCreated")


def _attribute_stats(store: EntityStore, tenant: str, types: list[str] | None = None
                     ) -> tuple[dict[str, int], dict[str, dict[str, set[str]]]]:
    """Entity count per type and, per attribute IRI, its attribute types and entity types."""
    counts: dict[str, int] = defaultdict(int)
    attrs: dict[str, dict[str, set[str]]] = defaultdict(lambda: {"kinds": set(), "types": set(),
                                                                 "count": set()})
    for doc in store.matching(EntityFilter(tenant, types=types)):
        for entity_type in doc["type"]:
            counts[entity_type] += 1
        for iri, attr in doc.items():
            if iri in ("id", "type", "scope") or iri in SYSTEM:
                continue
            info = attrs[iri]
            info["kinds"].update(i.get("type", "Property") for i in instances(attr))
            info["types"].update(doc["type"])
            info["count"].add(doc["id"])
    return counts, attrs


async def _meta_begin(request: Request, allowed: tuple[str, ...] = ()) -> tuple[BrokerState, Any, Context]:
    broker = broker_of(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ("details", *allowed))
    ctx = await broker.contexts.from_link(request.headers.get("link"))
    return broker, incoming, ctx


@router.get(PREFIX + "/types")
async def list_types(request: Request) -> Response:
    """GET /types (EntityTypeList, or EntityType objects with details=true)."""
    broker, incoming, ctx = await _meta_begin(request)
    if incoming.params.get("details") == "true":
        counts, attrs = await broker.run(_attribute_stats, broker.store, incoming.tenant)
        body: Any = [{"id": t, "type": "EntityType", "typeName": ctx.compact(t),
                      "attributeNames": sorted(ctx.compact(a) for a, i in attrs.items() if t in i["types"])}
                     for t in sorted(counts)]
    else:
        counts = dict(await broker.run(broker.store.type_counts, incoming.tenant))
        body = {"id": f"urn:ngsi-ld:EntityTypeList:{uuid.uuid4()}", "type": "EntityTypeList",
                "typeList": sorted(ctx.compact(t) for t in counts)}
    return json_response(body, headers=entity_headers(ctx, incoming.media))


@router.get(PREFIX + "/types/{type_name:path}")
async def get_type(request: Request, type_name: str) -> Response:
    """GET /types/{type} (EntityTypeInfo)."""
    broker, incoming, ctx = await _meta_begin(request)
    iri = ctx.expand(type_name)
    counts, attrs = await broker.run(_attribute_stats, broker.store, incoming.tenant, [iri])
    if not counts.get(iri):
        raise not_found("Entity type not found", type_name)
    body = {"id": iri, "type": "EntityTypeInfo", "typeName": ctx.compact(iri), "entityCount": counts[iri],
            "attributeDetails": [{"id": a, "type": "Attribute", "attributeName": ctx.compact(a),
                                  "attributeTypes": sorted(i["kinds"])} for a, i in sorted(attrs.items())]}
    return json_response(body, headers=entity_headers(ctx, incoming.media))


def _attribute_body(iri: str, info: dict[str, set[str]], ctx: Context) -> dict[str, Any]:
    return {"id": iri, "type": "Attribute", "attributeName": ctx.compact(iri),
            "attributeCount": len(info["count"]), "attributeTypes": sorted(info["kinds"]),
            "typeNames": sorted(ctx.compact(t) for t in info["types"])}


@router.get(PREFIX + "/attributes")
async def list_attributes(request: Request) -> Response:
    """GET /attributes (AttributeList, or Attribute objects with details=true)."""
    broker, incoming, ctx = await _meta_begin(request)
    _, attrs = await broker.run(_attribute_stats, broker.store, incoming.tenant)
    if incoming.params.get("details") == "true":  # Attribute objects without counts (ETSI 026_01)
        body: Any = [{k: v for k, v in _attribute_body(a, i, ctx).items()
                      if k not in ("attributeCount", "attributeTypes")} for a, i in sorted(attrs.items())]
    else:
        body = {"id": f"urn:ngsi-ld:AttributeList:{uuid.uuid4()}", "type": "AttributeList",
                "attributeList": sorted(ctx.compact(a) for a in attrs)}
    return json_response(body, headers=entity_headers(ctx, incoming.media))


@router.get(PREFIX + "/attributes/{attr_name:path}")
async def get_attribute(request: Request, attr_name: str) -> Response:
    """GET /attributes/{attr}."""
    broker, incoming, ctx = await _meta_begin(request)
    iri = ctx.expand(attr_name)
    _, attrs = await broker.run(_attribute_stats, broker.store, incoming.tenant)
    if iri not in attrs:
        raise not_found("Attribute not found", attr_name)
    return json_response(_attribute_body(iri, attrs[iri], ctx), headers=entity_headers(ctx, incoming.media))


# -- /jsonldContexts ------------------------------------------------------------------------------
@router.get(PREFIX + "/jsonldContexts")
async def list_contexts(request: Request) -> Response:
    """GET /jsonldContexts: URLs (core first), or details."""
    broker = broker_of(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ("details", "kind"))
    kind = incoming.params.get("kind")
    if kind is not None and kind not in _KINDS:
        raise bad_request("Invalid value for URI parameter /kind/", kind)
    _boolean(incoming.params, "details")
    records = [broker.contexts.core_record(), *broker.contexts.records()]
    if kind is not None:
        records = [r for r in records if r.kind == kind and r.url != CORE_URL]
    if incoming.params.get("details") == "true":
        return json_response([r.details() for r in records])
    return json_response([r.url for r in records])


@router.post(PREFIX + "/jsonldContexts")
async def create_context(request: Request) -> Response:
    """POST /jsonldContexts: host a context; 201 with its absolute URL in Location."""
    broker = broker_of(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, (), body=True)
    assert incoming.payload is not None
    value = incoming.payload.data
    if not isinstance(value, dict) or "@context" not in value:  # GS CIM 009 5.13.2, ETSI 050_02_01
        raise invalid_request("Invalid @context", "the payload is a JSON object with an @context member")
    value = value["@context"]
    if not isinstance(value, (dict, list, str)) or not value:
        raise bad_request("Invalid @context", "a hosted context must be a non-empty JSON object or array")
    await broker.contexts.from_value(value)  # rejects what could not be used later
    record = await broker.run(broker.contexts.host, value, str(request.base_url))
    # Relative, as every other Location of the API (the ETSI suite strips the path to get the id).
    return empty(201, {"Location": header_uri(f"{PREFIX}/jsonldContexts/{record.local_id}")})


def _boolean(params: dict[str, str], name: str) -> bool:
    value = params.get(name, "false")
    if value not in ("true", "false"):
        raise bad_request(f"Invalid value for URI parameter /{name}/", value)
    return value == "true"


def _record(broker: BrokerState, ident: str) -> ContextRecord:
    if ident in (CORE_URL, "core"):
        return broker.contexts.core_record()
    record = broker.contexts.by_id(ident)
    if record is None:
        raise not_found("Context Not Found", ident)
    return record


@router.get(PREFIX + "/jsonldContexts/{ident:path}")
async def get_context(request: Request, ident: str) -> Response:
    """GET /jsonldContexts/{id}: hosted (and core) contexts are served, cached ones are not."""
    broker = broker_of(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ("details",))
    details = _boolean(incoming.params, "details")
    record = _record(broker, ident)
    if details:
        answer = json_response(record.details())
    elif record.kind == "Cached" and record.url != CORE_URL:
        raise NgsiError(422, "OperationNotSupported", "Not serving cached JSON-LD @context", record.url)
    else:
        answer = json_response({"@context": record.value})  # application/json (ETSI 053_01)
    # Being served is a use too, counted after the answer is made (ETSI 053_06_01).
    broker.contexts.touch(record)
    return answer


@router.delete(PREFIX + "/jsonldContexts/{ident:path}")
async def delete_context(request: Request, ident: str) -> Response:
    """DELETE /jsonldContexts/{id} (`reload=true` downloads a cached context again)."""
    broker = broker_of(request)
    incoming = await begin(request, broker.store, broker.settings.max_payload, ("reload",))
    reload = _boolean(incoming.params, "reload")
    if reload and broker.contexts.by_id(ident) is None and ident not in (CORE_URL, "core"):
        raise bad_request("Invalid request", "reload=true needs the id of a cached context")
    record = _record(broker, ident)
    if reload and record.kind != "Cached":
        raise bad_request("Invalid request", f"reload=true applies to cached contexts, not {record.kind}")
    if record.url == CORE_URL:
        if not reload:
            raise bad_request("Invalid request", "the core context cannot be deleted")
        return empty()
    if reload and record.kind == "Cached":
        await broker.contexts.reload(record)
    else:
        await broker.run(broker.contexts.forget, record)
    return empty()


# -- Orion-LD extensions -------------------------------------------------------------------------
@router.get("/ngsi-ld/ex/v1/version")
async def version(request: Request) -> Response:
    """Version information (Orion-LD's /ngsi-ld/ex/v1/version)."""
    return json_response({"Orion-LD version": "burgas-embedded-1.0", "branch": "embedded",
                          "core @context": CORE_URL})


@router.get("/ngsi-ld/ex/v1/tenants")
async def tenants(request: Request) -> Response:
    """The tenants created so far."""
    return json_response(broker_of(request).store.tenants())
