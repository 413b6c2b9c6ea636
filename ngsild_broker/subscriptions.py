"""NGSI-LD subscriptions: validation and CRUD routes, matching of entity changes, notification content.

The app wires it as (app.py does): `manager = SubscriptionManager(broker_state)`, which registers
itself as `broker_state.subscriptions` for the routes; `await manager.start()` at startup,
`broker_state.on_change = manager.entities_changed`, `await manager.stop()` at shutdown, and
`app.include_router(router)` (paths carry the /ngsi-ld/v1 prefix, as the other routers' do).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import anyio.to_thread
from fastapi import APIRouter, Request, Response

from ngsild_broker import periodic
from ngsild_broker.changes import annotate
from ngsild_broker.contexts import Context, ContextResolver, header_uri, link_header
from ngsild_broker.entities import check_uri
from ngsild_broker.errors import NgsiError, already_exists, bad_request, not_found
from ngsild_broker.geo import GeoQuery, GeoQueryError, parse_geoquery
from ngsild_broker.limits import MAX_NESTING, too_deep
from ngsild_broker.notifier import Delivery, DeliveryError, Notifier
from ngsild_broker.operations import Change
from ngsild_broker.protocol import JSONLD, begin, empty, json_response, request_context
from ngsild_broker.q import QNode, QSyntaxError, parse_q
from ngsild_broker.regex import RegexError, compile_pattern
from ngsild_broker.render import render_entity
from ngsild_broker.storage import EntityStore
from ngsild_broker.type_query import parse_types as parse_type_selection

logger = logging.getLogger(__name__)

FIELDS = frozenset({"id", "type", "subscriptionName", "name", "description", "entities",
                    "watchedAttributes", "timeInterval", "q", "geoQ", "csf", "isActive", "notification",
                    "expiresAt", "expires", "throttling", "lang", "temporalQ", "scopeQ",
                    "notificationTrigger", "@context", "status", "createdAt", "modifiedAt",
                    "jsonldContext", "datasetId"})
IGNORED = ("status", "createdAt", "modifiedAt", "@context")
TRIGGERS = frozenset({"entityCreated", "entityUpdated", "entityDeleted", "attributeCreated",
                      "attributeUpdated", "attributeDeleted"})
# GS CIM 009 5.2.12: without notificationTrigger, attribute creations and updates notify (entity
# creation creates attributes); Orion-LD notifies every change, deletions included.
DEFAULT_TRIGGERS = ("attributeCreated", "attributeUpdated")
_NOT_ATTRIBUTES = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})
_PLAIN_TERM = re.compile(r"^[^(),;|]+$")  # a type name, not a type selection expression
FORMATS = {"normalized": "normalized", "keyValues": "keyValues", "simplified": "keyValues",
           "concise": "concise"}
FORMAT_HEADER = {"normalized": "Normalized", "keyValues": "Simplified", "concise": "Concise"}
ACCEPTS = ("application/json", "application/ld+json", "application/geo+json")
MAX_SUBSCRIPTIONS = 10_000
PREFIX = "/ngsi-ld/v1"
Render = Callable[..., dict[str, Any]]


def _now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _missing(what: str) -> NgsiError:
    return bad_request("Mandatory field missing", f"Subscription::{what}")


def _not_implemented(title: str, detail: str) -> NgsiError:
    return NgsiError(501, "OperationNotSupported", title, detail)


def _strings(value: Any, what: str) -> list[str]:
    if not isinstance(value, list):
        raise bad_request("Not a JSON Array", f"Subscription::{what}")
    if not value:
        raise bad_request("Empty Array", f"Subscription::{what}")
    if not all(isinstance(v, str) and v for v in value):
        raise bad_request("Invalid value", f"Subscription::{what} items must be non-empty strings")
    return value


def _datetime(value: Any, what: str) -> float:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise bad_request("Invalid DateTime", f"Subscription::{what}") from None


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # RFC 9110 token
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e\x80-\xff]*$")  # no controls (CR, LF, NUL), Latin-1


def _key_values(value: Any, what: str) -> list[dict[str, str]]:
    if not isinstance(value, list) or not all(
            isinstance(kv, dict) and set(kv) == {"key", "value"}
            and isinstance(kv["key"], str) and isinstance(kv["value"], str) and kv["key"] for kv in value):
        raise bad_request("Invalid value", f"{what} must be an array of {{key, value}} strings")
    return value


def _check_endpoint(endpoint: Any) -> None:
    if not isinstance(endpoint, dict):
        raise _missing("notification::endpoint")
    uri = endpoint.get("uri")
    if not isinstance(uri, str) or not uri:
        raise _missing("notification::endpoint::uri")
    scheme = uri.split(":", 1)[0] if ":" in uri else ""
    if scheme == "mqtts":
        raise _not_implemented("Not Implemented", "MQTT over TLS (mqtts) is not supported")
    if scheme not in ("http", "https", "mqtt") or "//" not in uri or len(uri) > 2048:
        raise bad_request("Invalid Endpoint", f"not a valid http, https or mqtt URI: {uri[:200]}")
    accept = endpoint.get("accept", "application/json")
    if accept not in ACCEPTS:
        raise bad_request("Invalid value for Subscription::notification::endpoint::accept", str(accept))
    if "receiverInfo" in endpoint:
        # Sent as HTTP headers with every notification: a value no header can carry is refused now,
        # not at each delivery.
        for kv in _key_values(endpoint["receiverInfo"], "receiverInfo"):
            if not _HEADER_NAME.match(kv["key"]) or not _HEADER_VALUE.match(kv["value"]):
                raise bad_request("Invalid value", f"receiverInfo {kv['key']!r}: not a valid HTTP header")
    if "notifierInfo" in endpoint:
        # Only the MQTT keys (S/payloadCheck/pcheckNotifierInfo.cpp:85-125).
        for kv in _key_values(endpoint["notifierInfo"], "notifierInfo"):
            key, value = kv["key"], kv["value"]
            if key == "MQTT-Version" and value not in ("mqtt5.0", "mqtt3.1.1"):
                raise bad_request("Invalid value for notifierInfo::MQTT-Version", value)
            if key == "MQTT-QoS" and value not in ("0", "1", "2"):
                raise bad_request("Invalid value for notifierInfo::MQTT-QoS", value)
            if key not in ("MQTT-Version", "MQTT-QoS"):
                raise bad_request("Invalid key in notifierInfo", key)


def validate(doc: Any) -> dict[str, Any]:
    """Check a (possibly merged) subscription payload the way Orion-LD does; returns it cleaned."""
    if not isinstance(doc, dict):
        raise bad_request("Invalid Payload Body", "a subscription is a JSON object")
    for key in doc:
        if key not in FIELDS:
            raise bad_request("Invalid field for Subscription", key)
    out = {k: v for k, v in doc.items() if k not in IGNORED}
    if "id" in out and (not isinstance(out["id"], str) or ":" not in out["id"]):
        raise bad_request("Invalid Subscription::id", "not a URI")
    if "id" in out:
        check_uri(out["id"], "Subscription::id")
    if too_deep(out):
        raise bad_request("Invalid Payload Body", f"the subscription nests deeper than {MAX_NESTING} levels")
    if out.get("type", "Subscription") != "Subscription":
        raise bad_request("Invalid value for Subscription::type", str(out.get("type")))
    if "csf" in out:
        raise _not_implemented("Not Implemented", "Subscription::csf")
    if "timeInterval" in out:
        interval = out["timeInterval"]
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise bad_request("Invalid value for Subscription::timeInterval", "must be a number > 0")
        if "watchedAttributes" in out:
            raise bad_request("Invalid Subscription", "timeInterval and watchedAttributes exclude each other")
    if "entities" in out:
        if not isinstance(out["entities"], list):
            raise bad_request("Not a JSON Array", "Subscription::entities")
        if not out["entities"]:
            raise bad_request("Empty Array", "Subscription::entities")
        for sel in out["entities"]:
            if not isinstance(sel, dict) or not isinstance(sel.get("type"), str) or not sel["type"]:
                raise _missing("entities::type")
            if "id" in sel and (not isinstance(sel["id"], str) or ":" not in sel["id"]):
                raise bad_request("Invalid Entity ID", "Subscription::entities::id is not a URI")
            if "idPattern" in sel:
                if not isinstance(sel["idPattern"], str):
                    raise bad_request("Invalid idPattern", "Subscription::entities::idPattern is not a string")
                try:
                    compile_pattern(sel["idPattern"])
                except RegexError as exc:
                    raise bad_request("Invalid idPattern", f"{sel['idPattern']}: {exc}") from None
    if "watchedAttributes" in out:
        _strings(out["watchedAttributes"], "watchedAttributes")
    if "datasetId" in out:
        _strings(out["datasetId"], "datasetId")
    if "jsonldContext" in out:
        ctx_url = out["jsonldContext"]
        if not isinstance(ctx_url, str) or ":" not in ctx_url or any(c in ctx_url for c in ' <>"'):
            raise bad_request("Invalid value for Subscription::jsonldContext", "not a URI")
    if "entities" not in out and "watchedAttributes" not in out:
        raise bad_request("Invalid Subscription", "at least one of entities and watchedAttributes")
    if "q" in out:
        if not isinstance(out["q"], str):
            raise bad_request("Invalid Q-Filter", "q must be a string")
        try:
            parse_q(unquote(out["q"]))  # percent-encoded as in a URL (ETSI 046_05_01)
        except QSyntaxError as exc:
            raise bad_request("Invalid Q-Filter", str(exc)) from None
    if "geoQ" in out:
        _geo(out["geoQ"])
    if "isActive" in out and not isinstance(out["isActive"], bool):
        raise bad_request("Invalid value for Subscription::isActive", "must be true or false")
    if "expires" in out:  # the old name
        out["expiresAt"] = out.pop("expires")
    if "expiresAt" in out:
        _datetime(out["expiresAt"], "expiresAt")
    if "throttling" in out and (isinstance(out["throttling"], bool) or not isinstance(
            out["throttling"], (int, float)) or out["throttling"] < 0):
        raise bad_request("Invalid value for Subscription::throttling", "must be a number >= 0")
    if "notificationTrigger" in out:
        triggers = _strings(out["notificationTrigger"], "notificationTrigger")
        if not set(triggers) <= TRIGGERS:
            raise bad_request("Invalid value for Subscription::notificationTrigger",
                              ", ".join(sorted(set(triggers) - TRIGGERS)))
    notification = out.get("notification")
    if notification is None:
        raise _missing("notification")
    if not isinstance(notification, dict):
        raise bad_request("Invalid value", "Subscription::notification must be an object")
    fmt = notification.get("format", "normalized")
    if fmt not in FORMATS:
        raise bad_request("Invalid value for Subscription::notification::format", str(fmt))
    if "attributes" in notification:
        _strings(notification["attributes"], "notification::attributes")
    for member in ("pick", "omit"):
        if member in notification:
            _strings(notification[member], f"notification::{member}")
    if ("pick" in notification or "omit" in notification) and "attributes" in notification:
        raise bad_request("Invalid Subscription", "notification pick/omit exclude attributes (ETSI 028_08)")
    if set(notification.get("pick", ())) & set(notification.get("omit", ())):
        raise bad_request("Invalid Subscription", "a member is both in notification pick and omit")
    _check_endpoint(notification.get("endpoint"))
    return out


def _geo(geo_q: Any) -> GeoQuery:
    if not isinstance(geo_q, dict):
        raise bad_request("Invalid value", "Subscription::geoQ must be an object")
    geometry = geo_q.get("geometry")
    if isinstance(geometry, str) and geometry != "Point" and geo_q.get("coordinates") is not None:
        # Orion-LD supports only Point in subscription geoQ (S/payloadCheck/pCheckGeometry.cpp:58-62).
        raise _not_implemented("Not Implemented", f"geoQ geometry {geometry[:32]} in subscriptions")
    try:
        return parse_geoquery(geo_q.get("georel"), geometry, geo_q.get("coordinates"),
                              geo_q.get("geoproperty", "location"))
    except GeoQueryError as exc:
        raise bad_request(exc.title, exc.detail) from None


# --- in-memory subscriptions --------------------------------------------------------------------------

@dataclass
class Subscription:
    """A subscription as matched: its payload, context, compiled filters and delivery counters."""

    tenant: str
    id: str
    doc: dict[str, Any]
    ctx: Context
    created_at: str
    modified_at: str
    counters: dict[str, Any] = field(default_factory=dict)
    last_sent: float = 0.0
    # The context notifications are compacted with: the jsonldContext member's, else `ctx`.
    notify_ctx: Context | None = None

    def __post_init__(self) -> None:
        expand = self.ctx.expand
        # Each selector's type is a type selection (`(A;B)|C`, GS CIM 009 4.17) as OR-of-AND groups.
        self.selectors = [(parse_type_selection(s["type"], expand), s.get("id"),
                           compile_pattern(s["idPattern"]) if "idPattern" in s else None)
                          for s in self.doc.get("entities", [])]
        watched = self.doc.get("watchedAttributes")
        self.watched = {expand(a) for a in watched} if watched else None
        self.q: QNode | None = parse_q(unquote(self.doc["q"])) if "q" in self.doc else None
        self.geo: GeoQuery | None = _geo(self.doc["geoQ"]) if "geoQ" in self.doc else None
        self.expires = _datetime(self.doc["expiresAt"], "expiresAt") if "expiresAt" in self.doc else None
        notification = self.doc["notification"]
        self.format = FORMATS[notification.get("format", "normalized")]
        attrs = notification.get("attributes")
        self.attrs = {expand(a) for a in attrs} if attrs else None
        self.pick = set(notification["pick"]) if "pick" in notification else None
        self.omit = set(notification["omit"]) if "omit" in notification else None
        self.triggers = set(self.doc.get("notificationTrigger", DEFAULT_TRIGGERS))

    @property
    def status(self) -> str:
        """active, paused or expired (GS CIM 009 5.2.12)."""
        if self.expires is not None and self.expires <= time.time():
            return "expired"
        return "active" if self.doc.get("isActive", True) else "paused"

    def _selected(self, entity: dict[str, Any]) -> bool:
        if not self.selectors:
            return True
        types = entity.get("type", [])
        for groups, eid, pattern in self.selectors:
            if any(all(t in types for t in group) for group in groups) \
                    and (eid is None or eid == entity["id"]) \
                    and (pattern is None or pattern.search(entity["id"])):
                return True
        return False

    def _triggers(self, change: Change) -> set[str]:
        """The notificationTrigger values a change stands for (attribute ones on watched attributes)."""
        before, after = change
        old, new = before or {}, after or {}
        out = {"entityCreated" if before is None else "entityDeleted" if after is None else "entityUpdated"}
        names = self.watched if self.watched is not None else {*old, *new} - _NOT_ATTRIBUTES
        for name in names:
            was, now = old.get(name), new.get(name)
            if was is None and now is not None:
                out.add("attributeCreated")
            elif was is not None and now is None:
                out.add("attributeDeleted")
            elif was is not None and was != now:
                # Same-value writes move the attribute's modifiedAt, so they count as updates
                # (Orion-LD notifies them unless -noNotifyFalseUpdate).
                out.add("attributeUpdated")
        return out

    def matches(self, change: Change) -> dict[str, Any] | None:
        """The entity to notify for this change, or None."""
        before, after = change
        entity = after if after is not None else before
        assert entity is not None
        triggers = self._triggers(change)
        if not triggers & self.triggers:
            return None
        if self.watched is not None and not triggers - {"entityCreated", "entityUpdated", "entityDeleted"}:
            return None  # no watched attribute changed
        return entity if self.selects(entity) else None

    def selects(self, entity: dict[str, Any]) -> bool:
        """Whether the entity passes the entity selectors, q and geoQ."""
        if not self._selected(entity):
            return False
        if self.q is not None and not self.q.matches(entity, self.ctx.expand):
            return False
        return self.geo is None or self.geo.matches_entity(entity, self.ctx.expand)

    def _terms(self, ctx: Context) -> dict[str, Any]:
        """entities[].type, watchedAttributes and notification attributes re-compacted with `ctx`."""
        out: dict[str, Any] = {}
        expand, compact = self.ctx.expand, ctx.compact
        if "entities" in self.doc:
            out["entities"] = [{**s, "type": compact(expand(s["type"]))}
                               if _PLAIN_TERM.match(s.get("type", "")) else s for s in self.doc["entities"]]
        if "watchedAttributes" in self.doc:
            out["watchedAttributes"] = [compact(expand(a)) for a in self.doc["watchedAttributes"]]
        return out

    def view(self, sys_attrs: bool = False, ctx: Context | None = None) -> dict[str, Any]:
        """The subscription as GET answers it, with status and delivery counters.

        `isActive` only when it was given and createdAt/modifiedAt only with sysAttrs (ETSI 028_01;
        Orion-LD always sends all three).
        """
        out: dict[str, Any] = {"id": self.id, "type": "Subscription"}
        out.update({k: v for k, v in self.doc.items() if k not in ("id", "type", "notification")})
        if ctx is not None:  # terms as the reader's context names them (ETSI 029_05_02)
            out.update(self._terms(ctx))
        out.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
        out["status"] = self.status
        out["jsonldContext"] = self.doc.get("jsonldContext", self.ctx.link_url)
        notification = dict(self.doc["notification"])
        notification.setdefault("format", "normalized")
        notification["endpoint"] = {"accept": "application/json", **notification["endpoint"]}
        notification.update(self.counters)
        out["notification"] = notification
        if sys_attrs:
            out["createdAt"] = self.created_at
            out["modifiedAt"] = self.modified_at
        return out

    def stored(self) -> dict[str, Any]:
        """The persisted document."""
        return {"doc": self.doc, "context": self.ctx.user_value, "createdAt": self.created_at,
                "modifiedAt": self.modified_at, "counters": self.counters}


class SubscriptionManager:
    """Holds the subscriptions of every tenant, matches entity changes and queues notifications."""

    def __init__(self, broker: Any, *, notifier: Notifier | None = None,
                 render: Render = render_entity) -> None:
        # `broker`: the app's BrokerState, or anything with a `store` (an EntityStore) and `contexts`
        # (contexts.ContextResolver).
        self.store: EntityStore = broker.store
        self.contexts: ContextResolver = broker.contexts
        broker.subscriptions = self
        self.notifier = notifier or Notifier()
        self.render = render
        self.subs: dict[str, dict[str, Subscription]] = {}
        self._periodic: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load persisted subscriptions and start delivery."""
        self.notifier.start()
        self._periodic = asyncio.get_running_loop().create_task(periodic.run(self))
        for tenant, ident, stored in await anyio.to_thread.run_sync(self.store.load_subscriptions):
            try:
                ctx = await self.contexts.from_value(stored.get("context"))
                self._put(Subscription(tenant, ident, stored["doc"], ctx, stored["createdAt"],
                                       stored["modifiedAt"], stored.get("counters", {}),
                                       notify_ctx=await self._notify_context(stored["doc"])))
            except (NgsiError, KeyError, ValueError) as exc:
                logger.error("cannot restore subscription %s: %s", ident, exc)

    async def stop(self) -> None:
        """Deliver what is queued, persist the counters, stop."""
        if self._periodic is not None:
            self._periodic.cancel()
            await asyncio.gather(self._periodic, return_exceptions=True)
        await self.notifier.aclose()
        for subs in self.subs.values():
            for sub in subs.values():
                await self._persist(sub)

    def _put(self, sub: Subscription) -> None:
        self.subs.setdefault(sub.tenant, {})[sub.id] = sub

    async def _persist(self, sub: Subscription) -> None:
        await anyio.to_thread.run_sync(self.store.put_subscription, sub.tenant, sub.id, sub.stored())

    def get(self, tenant: str, ident: str) -> Subscription:
        """The subscription; 400 when `ident` is not a URI (ETSI 029_01_02, 030_01_01), else 404."""
        if ":" not in ident or any(c in ident for c in ' <>"{}|\\^`'):
            raise bad_request("Invalid Subscription::id", f"not a URI: {ident[:200]}")
        sub = self.subs.get(tenant, {}).get(ident)
        if sub is None:
            raise not_found("Subscription not found", ident)
        return sub

    async def create(self, tenant: str, doc: dict[str, Any], ctx: Context) -> Subscription:
        """Validate, check the MQTT server, store; 409 for an existing id."""
        doc = validate(doc)
        ident = doc.setdefault("id", f"urn:ngsi-ld:Subscription:{uuid.uuid4()}")
        if ident in self.subs.get(tenant, {}):
            raise already_exists("Subscription already exists", ident)
        if sum(len(s) for s in self.subs.values()) >= MAX_SUBSCRIPTIONS:
            raise bad_request("Too many subscriptions", f"at most {MAX_SUBSCRIPTIONS}")
        await self._check_mqtt(doc)
        notify_ctx = await self._notify_context(doc)
        now = _now()
        sub = Subscription(tenant, ident, doc, ctx, now, now, {}, notify_ctx=notify_ctx)
        self._put(sub)
        await self._persist(sub)
        return sub

    async def update(self, tenant: str, ident: str, patch: Any, ctx: Context) -> None:
        """Merge a PATCH payload into the subscription (its context becomes the patch's)."""
        sub = self.get(tenant, ident)
        if not isinstance(patch, dict) or not patch:
            raise bad_request("Invalid Payload Body", "Empty Object")
        if "id" in patch and patch["id"] != ident:
            raise bad_request("Invalid Subscription::id", "the id cannot be changed")
        # Each member given replaces the old one, `notification` too (ETSI 029_03_01: a notification
        # without its endpoint is invalid; Orion-LD merges the notification members).
        merged = validate({**sub.doc, **{k: v for k, v in patch.items() if k != "@context"}})
        if "expiresAt" in patch and _datetime(merged["expiresAt"], "expiresAt") <= time.time():
            raise bad_request("Invalid value for Subscription::expiresAt", "must be in the future")
        await self._check_mqtt(merged)
        if ctx.user_value is None:  # no Link / @context in the PATCH: the terms keep their meaning
            ctx = sub.ctx
        new = Subscription(tenant, ident, merged, ctx, sub.created_at, _now(), sub.counters,
                           notify_ctx=await self._notify_context(merged))
        self._put(new)
        await self._persist(new)

    async def delete(self, tenant: str, ident: str) -> None:
        """Remove a subscription or 404."""
        self.get(tenant, ident)
        del self.subs[tenant][ident]
        await anyio.to_thread.run_sync(self.store.delete_subscription, tenant, ident)

    async def _notify_context(self, doc: dict[str, Any]) -> Context | None:
        """The jsonldContext member's context (504 when it cannot be had), else None."""
        if "jsonldContext" not in doc:
            return None
        ctx = await self.contexts.from_value(doc["jsonldContext"])
        if ctx.user_value is None:  # a core context URL: notifications name it as given (v1.9...)
            ctx = copy.copy(ctx)
            ctx.user_value = doc["jsonldContext"]
        return ctx

    async def _check_mqtt(self, doc: dict[str, Any]) -> None:
        endpoint = doc["notification"]["endpoint"]
        if not endpoint["uri"].startswith("mqtt://"):
            return
        info = {kv["key"]: kv["value"] for kv in endpoint.get("notifierInfo", [])}
        try:
            await anyio.to_thread.run_sync(self.notifier.mqtt.check, endpoint["uri"],
                                           info.get("MQTT-Version", "mqtt5.0"))
        except DeliveryError as exc:
            # Orion-LD connects at creation time (S/serviceRoutines/orionldPostSubscriptions.cpp:418).
            raise NgsiError(500, "InternalError", "Unable to connect to MQTT server", str(exc)) from None

    # -- notifications -----------------------------------------------------------------------------
    async def entities_changed(self, tenant: str, changes: list[Change]) -> None:
        """Queue one notification per matching subscription with every matching entity; never waits."""
        subs = self.subs.get(tenant)
        if not subs:
            return
        now = time.time()
        for sub in list(subs.values()):
            if sub.status != "active" or "timeInterval" in sub.doc:
                continue
            throttling = sub.doc.get("throttling")
            if throttling and now - sub.last_sent < throttling:
                continue  # Orion-LD drops notifications inside the throttling window
            matched = [c for c in changes if sub.matches(c) is not None]
            if matched:
                sub.last_sent = now
                self.notify(sub, [c.after or c.before for c in matched],  # type: ignore[misc]
                            {c.before["id"] for c in matched if c.after is None and c.before is not None},
                            {(c.after or c.before)["id"]: c for c in matched})  # type: ignore[index]

    def notify(self, sub: Subscription, entities: list[dict[str, Any]], deleted: set[str],
               changes: dict[str, Change] | None = None) -> None:
        """Queue one notification of `entities` (`deleted`: ids notified as deleted; `changes`: the
        before/after of each, for deleted attributes and showChanges)."""
        notification = sub.doc["notification"]
        endpoint = notification["endpoint"]
        accept = endpoint.get("accept", "application/json")
        sys_attrs = bool(notification.get("sysAttrs"))
        show_changes = bool(notification.get("showChanges"))
        ctx = sub.notify_ctx or sub.ctx
        datasets = sub.doc.get("datasetId")
        data = []
        for entity in entities:
            change = (changes or {}).get(entity["id"])
            if entity["id"] in deleted:
                rendered = {"id": entity["id"], "type": _one([ctx.compact(t) for t in entity["type"]]),
                            "deletedAt": _now()}
            else:
                rendered = self.render(entity, ctx, sub.format, sys_attrs=sys_attrs, attrs=sub.attrs,
                                       lang=sub.doc.get("lang"),
                                       **({"datasets": datasets} if datasets else {}))
            if change is not None:
                rendered = annotate(rendered, change.before, change.after, ctx.compact,
                                    show_changes=show_changes, key_values=sub.format == "keyValues",
                                    wanted=lambda iri: sub.attrs is None or iri in sub.attrs,
                                    watched=sub.watched)
            data.append(project(rendered, sub.pick, sub.omit))
        body: dict[str, Any] = {"id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}", "type": "Notification",
                                "subscriptionId": sub.id, "notifiedAt": _now(), "data": data}
        headers = {"Ngsild-Attribute-Format": FORMAT_HEADER[sub.format]}
        if accept == JSONLD:
            headers["Content-Type"] = JSONLD
            body["@context"] = ctx.body_value()
            for entity in data:  # each entity is a JSON-LD document (ETSI 046_14_01)
                entity["@context"] = ctx.body_value()
        else:
            headers["Content-Type"] = "application/json"
            headers["Link"] = link_header(ctx.link_url)
        if sub.tenant:
            headers["NGSILD-Tenant"] = sub.tenant
        for kv in endpoint.get("receiverInfo", []):
            headers[kv["key"]] = kv["value"]
        info = {kv["key"]: kv["value"] for kv in endpoint.get("notifierInfo", [])}
        counters = sub.counters
        # Counted when queued: a reader polling the subscription while the receiver has not answered
        # yet already sees it (ETSI 046_12_01); the outcome follows.
        counters["timesSent"] = counters.get("timesSent", 0) + 1
        counters["lastNotification"] = _now()
        counters.setdefault("status", "ok")

        def done(ok: bool, reason: str | None) -> None:
            counters["lastSuccess" if ok else "lastFailure"] = _now()
            counters["status"] = "ok" if ok else "failed"
            if reason:
                counters["lastFailureReason"] = reason

        self.notifier.submit(Delivery(endpoint["uri"], body, headers, sub.id,
                                      int(info.get("MQTT-QoS", "0")),
                                      info.get("MQTT-Version", "mqtt5.0"), done))


def project(entity: dict[str, Any], pick: set[str] | None, omit: set[str] | None) -> dict[str, Any]:
    """A notified entity with the subscription's pick/omit applied (id and type are members too)."""
    if pick is not None:
        entity = {k: v for k, v in entity.items() if k in pick}
    if omit is not None:
        entity = {k: v for k, v in entity.items() if k not in omit}
    return entity


def _one(types: list[str]) -> str | list[str]:
    return types[0] if len(types) == 1 else types


# --- routes -------------------------------------------------------------------------------------

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


def _answer(data: Any, media: str, ctx: Context, headers: dict[str, str] | None = None,
            links: list[str] | None = None) -> Response:
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
    return _answer(page, incoming.media, ctx, headers, _page_links(limit, offset, len(subs)))


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
    return _answer(sub.view("sysAttrs" in incoming.params.get("options", "").split(","), ctx),
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
