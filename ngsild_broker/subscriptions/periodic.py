"""Periodic subscriptions (`timeInterval`, GS CIM 009 5.8.1): every interval, one notification with every
entity the subscription selects, whether it changed or not. Entity changes do not notify them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import anyio.to_thread

from ngsild_broker.storage import EntityFilter, EntityStore
from ngsild_broker.subscriptions.matching import selects
from ngsild_broker.subscriptions.subscription import Subscription

logger = logging.getLogger(__name__)
TICK_S = 0.25
MAX_ENTITIES = 1000  # per notification: a periodic subscription is a report, not an export


def selected_entities(store: EntityStore, sub: Subscription) -> list[dict[str, Any]]:
    """The stored entities `sub` selects (types, ids, idPattern, q, geoQ), oldest first (blocking)."""
    types = sorted({t for groups, _, _ in sub.selectors for group in groups for t in group}) or None
    out: list[dict[str, Any]] = []
    for doc in store.matching(EntityFilter(sub.tenant, types=types)):
        if selects(sub, doc):
            out.append(doc)
            if len(out) >= MAX_ENTITIES:
                break
    return out


async def run(manager: Any) -> None:
    """Notify each due periodic subscription; runs until cancelled (the manager's lifetime)."""
    last: dict[tuple[str, str], float] = {}
    while True:
        await asyncio.sleep(TICK_S)
        now = time.monotonic()
        for tenant, subs in list(manager.subs.items()):
            for sub in list(subs.values()):
                interval = sub.doc.get("timeInterval")
                if not interval or sub.status != "active":
                    continue
                key = (tenant, sub.id)
                if now - last.setdefault(key, now) < interval:
                    continue
                last[key] = now
                try:
                    entities = await anyio.to_thread.run_sync(selected_entities, manager.store, sub)
                except Exception:  # one broken subscription must not stop the others
                    logger.exception("periodic subscription %s failed", sub.id)
                    continue
                if entities:
                    manager.notify(sub, entities, set())
