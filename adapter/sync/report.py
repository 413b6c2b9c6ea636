"""What one sync of one source did: the report the CLI prints and the service serves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class SyncReport:
    """Counts and outcome of one run of one source."""

    source: str
    run_id: str
    started_at: str
    records_in: int = 0
    mapped: int = 0  # entities the mapper produced (after merging equal ids)
    readings: int = 0  # time-series readings that reached the pipeline (history snapshots)
    records_rejected: int = 0  # records the mapper rejected (quarantined)
    mapper_failures: int = 0  # of those, records on which the mapper itself failed (a bug)
    unchanged: int = 0
    sent: int = 0  # upserts the broker confirmed
    deleted: int = 0
    attrs_deleted: int = 0
    rejected: int = 0  # entities the broker rejected (quarantined)
    pending: int = 0  # operations still in the outbox (broker unreachable)
    complete: bool = False  # the fetch saw every record of the source
    not_modified: bool = False  # the source's version had not moved: nothing was fetched
    records_unchanged: int = 0  # records not mapped again: their content was mapped before
    duration: float = 0.0
    last_error: str | None = None
    entities_by_type: dict[str, int] = field(default_factory=dict)
    rejections: list[str] = field(default_factory=list)  # first reasons, for display

    @property
    def ok(self) -> bool:
        """The source was fetched completely and nothing waits in the outbox."""
        return self.complete and self.pending == 0 and self.last_error is None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for /status and `--json`)."""
        return {**asdict(self), "ok": self.ok}
