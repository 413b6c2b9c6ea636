"""Retention of the attribute history: instances older than `temporal_retention_days` are pruned.

Once at startup and then every `PRUNE_INTERVAL_S` in a worker thread; without the setting nothing
runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ngsild_broker.state import BrokerState

logger = logging.getLogger(__name__)
PRUNE_INTERVAL_S = 3600.0


async def _loop(broker: BrokerState) -> None:
    history = broker.store.history
    while True:
        try:
            deleted = await broker.run(history.prune_expired)
            if deleted:
                logger.info("temporal retention: %d instances pruned", deleted)
        except Exception:  # a failed pass (e.g. disk full) is retried at the next interval
            logger.exception("temporal retention pass failed")
        await asyncio.sleep(PRUNE_INTERVAL_S)


def start_retention(broker: BrokerState) -> asyncio.Task[None] | None:
    """The pruning task, or None when history or retention is off."""
    history = broker.store.history
    if history is None or history.retention_days is None:
        return None
    return asyncio.get_running_loop().create_task(_loop(broker), name="temporal-retention")


async def stop_retention(task: asyncio.Task[None] | None) -> None:
    """Cancel the pruning task (shutdown)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
