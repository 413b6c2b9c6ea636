"""Change detection: the work a run leaves out because it cannot have changed, behind one interface.

The plain path of a run (adapter.sync.pipeline: fetch -> map -> diff -> outbox -> deliver) asks
one :class:`ChangeDetection` per run what it may leave out, and tells it what the run did:

- **source version** (``VersionedSource.version()``): unmoved since the last complete run -> no
  fetch at all (:meth:`source_unchanged`);
- **page and record skipping** for static sources (adapter.sync.skip): pages and records mapped
  before are not mapped again (the fetch's ``skipper``); their entities count as present;
- **early delivery** (adapter.sync.early): a long fetch's new entities reach the outbox and the
  broker while the rest is mapped (the fetch's ``progress``); they are not planned again.

The source's incremental state (:class:`adapter.sync.skip.SourceState`: version, pages, records)
is loaded once as the run starts; after the run's plan is applied, :meth:`save` stores the updated
value for the next run.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from adapter.errors import AdapterError
from adapter.sources.base import Source, VersionedSource
from adapter.sync.early import EarlyDelivery
from adapter.sync.skip import RecordSkipper, SkipIndex, SourceMarks, SourceState

if TYPE_CHECKING:
    from adapter.mapping.base import Mapped
    from adapter.sync.pipeline import Pipeline
    from adapter.sync.report import ReportBuilder
    from adapter.sync.state import SyncPlan

logger = logging.getLogger(__name__)


class ChangeDetection:
    """What one run may leave out, and what it left out (see the module docstring)."""

    def __init__(self, pipeline: Pipeline, marks: SourceMarks, report: ReportBuilder, *,
                 full: bool = False) -> None:
        self.marks = marks
        self.full = full  # map everything again (versions and raw hashes ignored), remember it all
        self.index = SkipIndex(pipeline.state)
        self.stored = self.index.load(marks)  # as saved: the state to replace
        self.state = (self.stored or SourceState(marks.salt)).under(marks.salt)  # what the run uses
        self.version: str | None = None  # the source's version now, once looked up
        self.skipper: RecordSkipper | None = None
        self.early = EarlyDelivery(pipeline, marks.source, report, report.run_id,
                                   threshold=pipeline.early_delivery)

    # --- before the fetch ----------------------------------------------------------------------

    async def source_unchanged(self, source: Source, deadline: float | None) -> bool:
        """The source's version has not moved since the last complete run: nothing to fetch.
        Otherwise the fetch's skipper is made ready."""
        m = self.marks
        if not self.full:
            self.version = await _version(source, deadline)
            if self.version is not None and self.version == self.state.version:
                return True
        if m.static:
            self.skipper = RecordSkipper.empty() if self.full else \
                RecordSkipper(self.state, lambda: self.index.held(m.tenant, m.source))
        return False

    @property
    def progress(self) -> EarlyDelivery:
        """The fetch's progress hook (early delivery)."""
        return self.early

    # --- after the fetch -----------------------------------------------------------------------

    def must_reread(self, by_id: dict[str, Mapped]) -> bool:
        """A changed record gives the entity of a skipped page: the merge needs that page's records,
        which were not read. Then page skipping stops and the source must be read again."""
        if self.skipper is None or self.skipper.page_ids.isdisjoint(by_id):
            return False
        self.skipper.reset(pages=False)
        return True

    def nothing_changed(self, fetch: Any, rejected: int, state_count: Callable[[], int]) -> bool:
        """Every page was one mapped before and the state holds nothing else (``state_count()``
        entities): as if the source had published an unmoved version (no plan, no writes)."""
        if self.skipper is None or fetch is None or rejected or \
                not self.skipper.unchanged_everywhere(fetch, state_count()):
            return False
        if self.version is not None:
            self._keep(replace(self.state, version=self.version))
        return True

    def settled(self, by_id: dict[str, Mapped]) -> set[str]:
        """Ids enqueued early whose result has not changed since (no later record merged in)."""
        return self.early.unchanged_since(by_id)

    def failed(self, by_id: dict[str, Mapped]) -> set[str]:
        """Ids quarantined early whose result has not changed since (not to be quarantined twice)."""
        return self.early.failed_since(by_id)

    def present(self) -> list[str]:
        """Entities the run saw without mapping them (skipped records and pages)."""
        return [*self.skipper.skipped, *self.skipper.page_ids] if self.skipper is not None else []

    @property
    def records_unchanged(self) -> int:
        """Records not mapped again: their content was mapped before."""
        s = self.skipper
        return sum(map(len, s.skipped.values())) + s.page_records if s is not None else 0

    def unchanged(self, plan: SyncPlan) -> int:
        """Entities of the plan the run found unchanged (not counting those sent early)."""
        return len(set(plan.unchanged) - self.early.upserted)

    def save(self, *, complete: bool, held: int) -> None:
        """The state reflects this run now: remember what the next one may skip. A run holding
        deletions keeps no version: the next run fetches again to confirm them."""
        state = self.skipper.after(self.state, complete=complete) if self.skipper is not None else self.state
        self._keep(replace(state, version=self.version if complete and not held else None))

    def _keep(self, state: SourceState) -> None:
        self.index.save(self.marks, self.stored, state)
        self.stored = self.state = state

    # --- the early delivery --------------------------------------------------------------------

    async def finish(self) -> None:
        """Wait for the early delivery in progress; its counts go into the report."""
        await self.early.finish()

    def cancel(self) -> None:
        """The run failed or was cancelled: stop the early delivery."""
        self.early.cancel()


async def _version(source: Source, deadline: float | None) -> str | None:
    if not isinstance(source, VersionedSource):
        return None
    try:
        async with asyncio.timeout(deadline):  # the fetch deadline bounds this look too
            return await source.version()
    except (AdapterError, TimeoutError) as exc:  # the fetch will meet (and report) the same problem
        logger.debug("%s: no version: %r", source.name, exc)
        return None
