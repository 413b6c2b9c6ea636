"""The mass-deletion guard: a complete fetch that would delete much of a source waits for a second.

An upstream that answers 200 with an empty or cut-down list (a renamed array key, a broken
export, a filter gone wrong) looks exactly like a source whose entities were removed. So when a
complete fetch would delete more than ``max_share`` of a source's entities, or all of them, those
deletions are *held*: nothing is sent, the state keeps the entities, and the run reports it. They
are released when the following complete fetch still misses the same entities (the loss is
confirmed), or when an operator allows them (``burgas-adapter sync --allow-deletes SOURCE``).

The held entity ids are kept in the state file (table ``held_deletes``), so a confirmation works
across processes and restarts; an incomplete run neither confirms nor forgets them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from adapter.sync.state import StateStore, SyncPlan, utcnow

logger = logging.getLogger(__name__)

DEFAULT_MAX_DELETE_SHARE = 0.2

# One statement (execute, not executescript: that would commit a transaction in progress).
_HELD = """
CREATE TABLE IF NOT EXISTS held_deletes (
    tenant TEXT NOT NULL, source TEXT NOT NULL, entity_id TEXT NOT NULL, held_at TEXT NOT NULL,
    PRIMARY KEY (tenant, source, entity_id)
) WITHOUT ROWID
"""


@dataclass
class DeleteReview:
    """What a complete run may delete now, and what it holds."""

    send: list[tuple[str, str]] = field(default_factory=list)  # (id, type) deleted now
    held: list[tuple[str, str]] = field(default_factory=list)  # (id, type) held until confirmed
    released: int = 0  # of `send`, deletions a previous run held and this one confirmed
    reason: str | None = None  # why `held` is held, for the log and the report


def held_ids(store: StateStore, tenant: str, source: str) -> set[str]:
    """Entity ids whose deletion a previous run held."""
    store.conn.execute(_HELD)
    return {row[0] for row in store.conn.execute(
        "SELECT entity_id FROM held_deletes WHERE tenant=? AND source=?", (tenant, source))}


def held_counts(store: StateStore) -> dict[tuple[str, str], int]:
    """(tenant, source) -> deletions held (for `status`, /status and the metrics)."""
    store.conn.execute(_HELD)
    return {(t, s): n for t, s, n in store.conn.execute(
        "SELECT tenant, source, COUNT(*) FROM held_deletes GROUP BY tenant, source")}


def review(store: StateStore, tenant: str, source: str, deletes: list[tuple[str, str]], total: int,
           *, max_share: float = DEFAULT_MAX_DELETE_SHARE, allowed: bool = False) -> DeleteReview:
    """Split a complete run's deletions into those sent now and those held (see the module doc).

    ``total`` is how many entities the source had before the run. Deletions a previous run held
    and this one still wants are confirmed; the others are held when they are more than
    ``max_share`` of ``total``, or all of it. ``allowed`` sends everything.
    """
    before = held_ids(store, tenant, source)
    confirmed = [d for d in deletes if d[0] in before]
    fresh = [d for d in deletes if d[0] not in before]
    outcome = DeleteReview(released=len(confirmed))
    if not allowed and fresh and (len(fresh) >= total or len(fresh) > max_share * total):
        outcome.send, outcome.held = confirmed, fresh
        share = f"all {total}" if len(fresh) >= total else f"{len(fresh)} of {total}"
        outcome.reason = (f"the fetch would delete {share} entities (the limit is {max_share:.0%} "
                          "of them, and never all at once): held until the next complete fetch "
                          f"confirms them, or `burgas-adapter sync --allow-deletes {source}`")
    else:
        outcome.send = deletes
    return outcome


def remember(store: StateStore, tenant: str, source: str, outcome: DeleteReview) -> None:
    """Keep exactly this run's held deletions for the source (a complete run's verdict replaces
    the last one), and say once in the log what was held or released."""
    store.conn.execute(_HELD)
    now = utcnow()
    with store.transaction() as db:
        db.execute("DELETE FROM held_deletes WHERE tenant=? AND source=?", (tenant, source))
        db.executemany("INSERT INTO held_deletes VALUES (?, ?, ?, ?)",
                       [(tenant, source, entity_id, now) for entity_id, _ in outcome.held])
    if outcome.held:
        logger.warning("%s: %s", source, outcome.reason)
    if outcome.released:
        logger.info("%s: %d held deletion(s) confirmed by this fetch: deleting them", source,
                    outcome.released)


class DeleteGuard:
    """The guard as one run of a source uses it: review the plan, then remember the verdict."""

    def __init__(self, max_share: float = DEFAULT_MAX_DELETE_SHARE, allowed: bool = False) -> None:
        self.max_share = max_share
        self.allowed = allowed
        self.outcome: DeleteReview | None = None

    def review(self, state: StateStore, tenant: str, source: str, plan: SyncPlan) -> int:
        """Take the held deletions out of a complete run's ``plan`` before it is applied;
        returns how many are held."""
        total = state.count(tenant, source)  # before the plan is applied
        self.outcome = review(state, tenant, source, plan.deletes, total, max_share=self.max_share,
                              allowed=self.allowed)
        plan.deletes = self.outcome.send
        return len(self.outcome.held)

    def remember(self, state: StateStore, tenant: str, source: str) -> None:
        """Keep the reviewed run's held deletions (after its plan is applied)."""
        if self.outcome is not None:
            remember(state, tenant, source, self.outcome)
