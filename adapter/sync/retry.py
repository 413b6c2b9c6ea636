"""`quarantine retry`: send quarantined entities again and re-map quarantined records."""

from __future__ import annotations

from typing import Any

from adapter.config import PipelineConfig
from adapter.settings import Settings
from adapter.sync.quarantine import Quarantine
from adapter.sync.state import StateStore, utcnow


async def retry_quarantine(settings: Settings, config: PipelineConfig,
                           ids: list[int] | None) -> dict[str, Any]:
    """Entity operations go back to the outbox; records are re-mapped by re-syncing their source.

    A record whose source no longer rejects it is removed from quarantine; one that still fails
    stays, with its reason refreshed.
    """
    from adapter.runtime import Runtime

    store = StateStore(settings.state_file)
    try:
        quarantine = Quarantine(store)
        chosen = ids if ids else [e.id for e in quarantine.list()]
        started = utcnow()
        records = quarantine.retry(chosen)
    finally:
        store.close()
    sources = sorted({r.source for r in records})
    known = {s.name for s in config.sources}
    async with Runtime(settings, config) as runtime:
        await runtime.sync([s for s in sources if s in known])
        assert runtime.pipeline is not None and runtime.state is not None
        from adapter.sync.report import SyncReport
        report = SyncReport("quarantine", "", started)
        await runtime.pipeline.deliver(report)
        quarantine = Quarantine(runtime.state)
        resolved = [r.id for r in records
                    if all(e.last_seen < started for e in quarantine.list(source=r.source)
                           if e.id == r.id)]
        quarantine.remove(resolved)
        still = len(quarantine.list())
    return {"entities": len(chosen) - len(records), "records": len(records), "sources": sources,
            "still_quarantined": still}
