"""Context source registrations and their subscriptions, as records only (GS CIM 009 5.9, 5.11).

The broker keeps and answers them (create, query, retrieve, update, delete) so that discovery clients
work, but never forwards a request to a registered source (no distributed operations). They live
in memory: a restart forgets them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response

from ngsild_broker.contexts import Context
from ngsild_broker.entities import check_uri
from ngsild_broker.errors import already_exists, bad_request, not_found
from ngsild_broker.protocol import begin, empty, request_context
from ngsild_broker.state import broker_of
from ngsild_broker.subscriptions.routes import answer

router = APIRouter()
PREFIX = "/ngsi-ld/v1"
MAX_RECORDS = 10_000


@dataclass
class Kind:
    """One of the two collections: its path, NGSI-LD type and the member it cannot do without."""

    path: str
    type: str
    required: str


REGISTRATIONS = Kind("csourceRegistrations", "ContextSourceRegistration", "information")
SUBSCRIPTIONS = Kind("csourceSubscriptions", "Subscription", "notification")


def _validate(kind: Kind, doc: Any) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise bad_request("Invalid Payload Body", f"a {kind.type} is a JSON object")
    out = {k: v for k, v in doc.items() if k != "@context"}
    if out.get("type", kind.type) != kind.type:
        raise bad_request(f"Invalid value for {kind.type}::type", str(out.get("type")))
    if "id" in out:
        check_uri(out["id"], f"{kind.type}::id")
    if kind.required not in out:
        raise bad_request("Mandatory field missing", f"{kind.type}::{kind.required}")
    if kind is REGISTRATIONS:
        if not isinstance(out["information"], list) or not out["information"]:
            raise bad_request("Invalid value", "ContextSourceRegistration::information is a non-empty array")
        if not isinstance(out.get("endpoint"), str) or ":" not in out["endpoint"]:
            raise bad_request("Mandatory field missing", "ContextSourceRegistration::endpoint")
    elif not isinstance(out["notification"], dict):
        raise bad_request("Invalid value", "Subscription::notification is an object")
    out["type"] = kind.type
    return out


def _types(doc: dict[str, Any], ctx: Context) -> set[str]:
    """Expanded entity types a registration (information[].entities[]) or subscription names."""
    selectors = [s for info in doc.get("information", []) if isinstance(info, dict)
                 for s in info.get("entities", []) if isinstance(s, dict)]
    selectors += [s for s in doc.get("entities", []) if isinstance(s, dict)]
    return {ctx.expand(s["type"]) for s in selectors if isinstance(s.get("type"), str)}


def _routes(kind: Kind) -> None:
    base = f"{PREFIX}/{kind.path}"

    @router.post(base, name=f"create_{kind.path}")
    async def create(request: Request) -> Response:
        broker = broker_of(request)
        incoming = await begin(request, broker.store, broker.settings.max_payload, (), body=True,
                               create_tenant=True)
        ctx = await request_context(request, broker.contexts, incoming.payload)
        doc = _validate(kind, incoming.payload.data if incoming.payload else None)
        ident = doc.setdefault("id", f"urn:ngsi-ld:{kind.type}:{uuid.uuid4()}")
        records = _store(request, kind).setdefault(incoming.tenant, {})
        if ident in records:
            raise already_exists(f"{kind.type} already exists", ident)
        if sum(len(r) for r in _store(request, kind).values()) >= MAX_RECORDS:
            raise bad_request(f"Too many {kind.path}", f"at most {MAX_RECORDS}")
        records[ident] = {"doc": doc, "context": ctx}
        return empty(201, {"Location": f"{base}/{ident}"})

    @router.get(base, name=f"query_{kind.path}")
    async def query(request: Request) -> Response:
        broker = broker_of(request)
        incoming = await begin(request, broker.store, broker.settings.max_payload,
                               ("id", "type", "limit", "offset", "count", "options", "attrs", "q",
                                "csf", "georel", "geometry", "coordinates", "geoproperty", "timeAt",
                                "timerel", "endTimeAt", "local"))
        ctx = await broker.contexts.from_link(request.headers.get("link"))
        ids = set(incoming.params["id"].split(",")) if "id" in incoming.params else None
        types = {ctx.expand(t) for t in incoming.params["type"].split(",")} if "type" in incoming.params else None
        found = [r["doc"] for r in _store(request, kind).get(incoming.tenant, {}).values()
                 if (ids is None or r["doc"]["id"] in ids)
                 and (types is None or types & _types(r["doc"], r["context"]))]
        return answer(found, incoming.media, ctx)

    @router.get(base + "/{ident:path}", name=f"retrieve_{kind.path}")
    async def retrieve(ident: str, request: Request) -> Response:
        broker = broker_of(request)
        incoming = await begin(request, broker.store, broker.settings.max_payload, ("options",))
        record = _record(request, kind, incoming.tenant, ident)
        ctx = await broker.contexts.from_link(request.headers.get("link"))
        return answer(record["doc"], incoming.media, ctx)

    @router.patch(base + "/{ident:path}", name=f"update_{kind.path}")
    async def update(ident: str, request: Request) -> Response:
        broker = broker_of(request)
        incoming = await begin(request, broker.store, broker.settings.max_payload, (), body=True)
        record = _record(request, kind, incoming.tenant, ident)
        patch = incoming.payload.data if incoming.payload else None
        if not isinstance(patch, dict) or not patch:
            raise bad_request("Invalid Payload Body", "Empty Object")
        record["doc"] = _validate(kind, {**record["doc"], **patch, "id": ident})
        return empty(204)

    @router.delete(base + "/{ident:path}", name=f"delete_{kind.path}")
    async def delete(ident: str, request: Request) -> Response:
        broker = broker_of(request)
        incoming = await begin(request, broker.store, broker.settings.max_payload, ())
        _record(request, kind, incoming.tenant, ident)
        del _store(request, kind)[incoming.tenant][ident]
        return empty(204)


def _store(request: Request, kind: Kind) -> dict[str, dict[str, dict[str, Any]]]:
    """This broker's records of `kind`: tenant -> id -> {doc, context}."""
    return request.app.state.csource.setdefault(kind.path, {})


def _record(request: Request, kind: Kind, tenant: str, ident: str) -> dict[str, Any]:
    check_uri(ident, f"{kind.type}::id")
    record = _store(request, kind).get(tenant, {}).get(ident)
    if record is None:
        raise not_found(f"{kind.type} not found", ident)
    return record


_routes(REGISTRATIONS)
_routes(SUBSCRIPTIONS)
