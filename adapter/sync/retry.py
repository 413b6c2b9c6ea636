"""`quarantine retry`: send quarantined entities again and re-map quarantined records."""

from __future__ import annotations

from typing import Any

from adapter.config import MQTTSourceConfig, PipelineConfig
from adapter.settings import Settings
from adapter.sync.quarantine import Quarantine, QuarantineEntry
from adapter.sync.state import StateStore, utcnow


async def retry_quarantine(settings: Settings, config: PipelineConfig,
                           ids: list[int] | None) -> dict[str, Any]:
    """Entity operations go back to the outbox; records are mapped again: a polled source's by
    running it in full (every record, versions and raw hashes ignored), a stream's from the stored
    message. A record that now maps leaves quarantine; one that still fails stays, with its reason
    refreshed. Records of sources that are unknown or disabled, or whose run did not complete,
    stay quarantined untouched.
    """
    from adapter.runtime import Runtime
    from adapter.sync.report import SyncReport

    store = StateStore(settings.state_file)
    try:
        quarantine = Quarantine(store)
        chosen = ids if ids is not None else quarantine.ids()
        started = utcnow()
        records = quarantine.retry(chosen)
    finally:
        store.close()
    sources = sorted({r.source for r in records})
    enabled = {s.name: s for s in config.sources if s.enabled}
    resolved: list[int] = []
    not_retried = sorted(s for s in sources if s not in enabled)
    async with Runtime(settings, config) as runtime:
        assert runtime.pipeline is not None and runtime.state is not None
        quarantine = Quarantine(runtime.state)
        for source in sources:
            cfg = enabled.get(source)
            entries = [r for r in records if r.source == source]
            if cfg is None:
                continue
            if isinstance(cfg, MQTTSourceConfig):
                resolved.extend(_retry_stream(cfg, settings, runtime.pipeline, entries))
                continue
            run = await runtime.sync_source(cfg, full=True)
            if not run.complete or run.last_error is not None:
                not_retried.append(source)
                continue
            still = {e.id: e.last_seen for e in quarantine.entries(source=source)}
            passed = [e.id for e in entries if e.id in still and still[e.id] < started]
            quarantine.remove(passed)
            resolved.extend(passed)
        report = SyncReport("quarantine", "", started)
        await runtime.pipeline.deliver(report)
        still_quarantined = quarantine.count()
    return {"entities": len(chosen) - len(records), "records": len(records), "sources": sources,
            "records_resolved": len(resolved), "not_retried": not_retried, "sent": report.sent,
            "still_quarantined": still_quarantined}


def _retry_stream(cfg: MQTTSourceConfig, settings: Settings, pipeline: Any,
                  entries: list[QuarantineEntry]) -> list[int]:
    """Map a stream's quarantined messages again from their stored payloads (no connection)."""
    from adapter.mapping.mqtt import mapper_for
    from adapter.sources.mqtt import MQTTSource
    from adapter.sync.stream import StreamRunner

    runner = StreamRunner(MQTTSource.from_config(cfg, settings), mapper_for(cfg.name, cfg.topics), pipeline)
    return runner.retry(entries)
