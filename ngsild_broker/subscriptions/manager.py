"""The subscriptions of every tenant: create, update, delete, persist, and notify entity changes."""

from __future__ import annotations

import asyncio
import copy
import logging
import time
import uuid
from typing import Any

import anyio.to_thread

from ngsild_broker.contexts import Context, ContextResolver
from ngsild_broker.errors import NgsiError, already_exists, bad_request, not_found
from ngsild_broker.notifier import Delivery, DeliveryError, Notifier
from ngsild_broker.operations import Change
from ngsild_broker.render import render_entity
from ngsild_broker.storage import EntityStore
from ngsild_broker.subscriptions import periodic
from ngsild_broker.subscriptions.matching import matches
from ngsild_broker.subscriptions.notification import Render, message
from ngsild_broker.subscriptions.subscription import Subscription, timestamp
from ngsild_broker.subscriptions.validation import parse_datetime, validate

logger = logging.getLogger(__name__)
MAX_SUBSCRIPTIONS = 10_000


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
        now = timestamp()
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
        if "expiresAt" in patch and parse_datetime(merged["expiresAt"], "expiresAt") <= time.time():
            raise bad_request("Invalid value for Subscription::expiresAt", "must be in the future")
        await self._check_mqtt(merged)
        if ctx.user_value is None:  # no Link / @context in the PATCH: the terms keep their meaning
            ctx = sub.ctx
        new = Subscription(tenant, ident, merged, ctx, sub.created_at, timestamp(), sub.counters,
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
            matched = [c for c in changes if matches(sub, c) is not None]
            if matched:
                sub.last_sent = now
                self.notify(sub, [c.after or c.before for c in matched],  # type: ignore[misc]
                            {c.before["id"] for c in matched if c.after is None and c.before is not None},
                            {(c.after or c.before)["id"]: c for c in matched})  # type: ignore[index]

    def notify(self, sub: Subscription, entities: list[dict[str, Any]], deleted: set[str],
               changes: dict[str, Change] | None = None) -> None:
        """Queue one notification of `entities` (`deleted`: ids notified as deleted; `changes`: the
        before/after of each, for deleted attributes and showChanges)."""
        body, headers = message(sub, entities, deleted, changes, self.render)
        endpoint = sub.doc["notification"]["endpoint"]
        info = {kv["key"]: kv["value"] for kv in endpoint.get("notifierInfo", [])}
        counters = sub.counters
        # Counted when queued: a reader polling the subscription while the receiver has not answered
        # yet already sees it (ETSI 046_12_01); the outcome follows.
        counters["timesSent"] = counters.get("timesSent", 0) + 1
        counters["lastNotification"] = timestamp()
        counters.setdefault("status", "ok")

        def done(ok: bool, reason: str | None) -> None:
            counters["lastSuccess" if ok else "lastFailure"] = timestamp()
            counters["status"] = "ok" if ok else "failed"
            if reason:
                counters["lastFailureReason"] = reason

        self.notifier.submit(Delivery(endpoint["uri"], body, headers, sub.id,
                                      int(info.get("MQTT-QoS", "0")),
                                      info.get("MQTT-Version", "mqtt5.0"), done))
