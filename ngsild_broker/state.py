"""The broker's shared state, reachable from every route as `request.app.state.broker`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from fastapi import Request

from ngsild_broker.contexts import ContextResolver
from ngsild_broker.operations import Change
from ngsild_broker.settings import BrokerSettings
from ngsild_broker.storage import EntityStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


class BrokerState:
    """Settings, store, context resolver and the subscription hook of one running broker."""

    def __init__(self, settings: BrokerSettings, store: EntityStore, contexts: ContextResolver) -> None:
        self.settings = settings
        self.store = store
        self.contexts = contexts
        # Set by the subscription manager: an async callable (tenant, changes) -> None.
        self.on_change: Callable[[str, list[Change]], Any] | None = None
        self.subscriptions: Any = None  # the SubscriptionManager registers itself here
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking store work in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))

    def changed(self, tenant: str, changes: list[Change]) -> None:
        """Tell subscriptions about committed changes, in the background (never blocks the request)."""
        if self.on_change is None or not changes:
            return
        task = asyncio.get_running_loop().create_task(self.on_change(tenant, changes))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("subscription hook failed: %r", task.exception())

    async def drain(self) -> None:
        """Wait for pending subscription hooks (shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def broker_of(request: Request) -> BrokerState:
    """The BrokerState of the app serving `request`."""
    return request.app.state.broker
