"""What the state file says about each source: entities, pending work, quarantine, last run."""

from __future__ import annotations

from typing import Any

import orjson

from adapter.redaction import redact
from adapter.settings import Settings
from adapter.sync.deletes import held_counts
from adapter.sync.history import HistoryOutbox
from adapter.sync.report import SyncReport
from adapter.sync.state import StateStore

_RUNS = """
CREATE TABLE IF NOT EXISTS runs (
    tenant TEXT NOT NULL, source TEXT NOT NULL, run_id TEXT NOT NULL, started_at TEXT NOT NULL,
    ok INTEGER NOT NULL, report TEXT NOT NULL, PRIMARY KEY (tenant, source)
) WITHOUT ROWID;
"""


def record_run(store: StateStore, tenant: str, report: SyncReport) -> None:
    """Keep the last report of a source (what `status` and /status show), credentials redacted."""
    store.conn.executescript(_RUNS)
    with store.transaction() as db:
        db.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
                   (tenant, report.source, report.run_id, report.started_at, int(report.ok),
                    orjson.dumps(report.as_dict()).decode()))


def last_runs(store: StateStore) -> dict[tuple[str, str], dict[str, Any]]:
    """(tenant, source) -> last report."""
    store.conn.executescript(_RUNS)
    # Redacted on the way out too: a state file written before reports were redacted.
    return {(t, s): redact(orjson.loads(r)) for t, s, r in
            store.conn.execute("SELECT tenant, source, report FROM runs")}


def read_status(settings: Settings) -> dict[str, Any]:
    """Per (tenant, source): entities held, pending outbox operations (and history operations),
    quarantined items, deletions held by the mass-deletion guard, last run."""
    store = StateStore(settings.state_file)
    try:
        conn = store.conn
        rows: dict[tuple[str, str], dict[str, Any]] = {}

        def row(tenant: str, source: str) -> dict[str, Any]:
            return rows.setdefault((tenant, source), {"tenant": tenant, "source": source, "entities": 0,
                                                      "pending": 0, "quarantined": 0,
                                                      "held_deletes": 0})
        for t, s, n in conn.execute("SELECT tenant, source, COUNT(*) FROM entity_state "
                                    "WHERE want_hash IS NOT NULL GROUP BY tenant, source"):
            row(t, s)["entities"] = n
        for t, s, n in conn.execute("SELECT tenant, source, COUNT(*) FROM outbox GROUP BY tenant, source"):
            row(t, s)["pending"] = n
        for t, s, n in HistoryOutbox(store).pending_by_source():  # readings for the temporal API
            row(t, s)["history_pending"] = n
        for t, s, n in conn.execute("SELECT tenant, source, COUNT(*) FROM quarantine GROUP BY tenant, source"):
            row(t, s)["quarantined"] = n
        for (t, s), n in held_counts(store).items():
            row(t, s)["held_deletes"] = n
        for (t, s), report in last_runs(store).items():
            r = row(t, s)
            r["last_run"] = report.get("started_at")
            r["last_error"] = report.get("last_error")
            r["last_report"] = report
        return {"state_file": str(settings.state_file), "sources": sorted(rows.values(),
                key=lambda r: (r["tenant"], r["source"]))}
    finally:
        store.close()
