"""Which entity changes a subscription notifies: entity selectors, triggers, watched attributes, q, geoQ."""

from __future__ import annotations

from typing import Any

from ngsild_broker.operations import Change
from ngsild_broker.subscriptions.subscription import Subscription

_NOT_ATTRIBUTES = frozenset({"id", "type", "scope", "createdAt", "modifiedAt"})


def _selected(sub: Subscription, entity: dict[str, Any]) -> bool:
    if not sub.selectors:
        return True
    types = entity.get("type", [])
    for groups, eid, pattern in sub.selectors:
        if any(all(t in types for t in group) for group in groups) \
                and (eid is None or eid == entity["id"]) \
                and (pattern is None or pattern.search(entity["id"])):
            return True
    return False


def _triggers(sub: Subscription, change: Change) -> set[str]:
    """The notificationTrigger values a change stands for (attribute ones on watched attributes)."""
    before, after = change
    old, new = before or {}, after or {}
    out = {"entityCreated" if before is None else "entityDeleted" if after is None else "entityUpdated"}
    names = sub.watched if sub.watched is not None else {*old, *new} - _NOT_ATTRIBUTES
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


def matches(sub: Subscription, change: Change) -> dict[str, Any] | None:
    """The entity to notify for this change, or None."""
    before, after = change
    entity = after if after is not None else before
    assert entity is not None
    triggers = _triggers(sub, change)
    if not triggers & sub.triggers:
        return None
    if sub.watched is not None and not triggers - {"entityCreated", "entityUpdated", "entityDeleted"}:
        return None  # no watched attribute changed
    return entity if selects(sub, entity) else None


def selects(sub: Subscription, entity: dict[str, Any]) -> bool:
    """Whether the entity passes the entity selectors, q and geoQ."""
    if not _selected(sub, entity):
        return False
    if sub.q is not None and not sub.q.matches(entity, sub.ctx.expand):
        return False
    return sub.geo is None or sub.geo.matches_entity(entity, sub.ctx.expand)
