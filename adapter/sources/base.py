"""The source protocol: a source fetches and yields raw records, nothing else.

A source never maps, schedules or talks to the broker. One run of a source is a :class:`Fetch`:
iterate it for :class:`RawRecord` values, then read ``fetch.complete`` to learn whether every record
of the source was yielded (only then may a sync treat entities it did not see as gone)::

    fetch = source.fetch()
    async for record in fetch:
        ...                                  # map, quarantine, batch
    if fetch.complete:
        ...                                  # safe to reconcile deletions

Errors while iterating follow ``adapter.errors``: ``SourceUnavailableError`` (retry later) and
``SourceFormatError`` for a whole payload that cannot be read. A single bad record is *not* an error
here: the source yields it (with ``problem`` set when the source already knows what is wrong) and the
mapper quarantines it, so one bad feature never stops the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from adapter.errors import SourceUnavailableError


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RawRecord:
    """One record exactly as the source delivered it, with where it came from.

    ``payload`` is the record in ``lang`` (the primary language, or None for language-less sources).
    ``translations`` holds the same record fetched in other languages, keyed by language code
    (e.g. ``{"en": {...}}``); it is empty for untranslated sources or when no partner was found.
    ``key`` locates the record inside its fetch for logs and quarantine (e.g. ``"features1[3] id=12"``);
    it is not an entity id. ``origin`` is the URL or path the payload was read from.
    """

    source: str
    key: str
    payload: Mapping[str, Any]
    fetched_at: datetime
    lang: str | None = None
    translations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    origin: str | None = None
    problem: str | None = None

    def in_lang(self, lang: str) -> Mapping[str, Any] | None:
        """The payload in ``lang``: the primary one, a translation, or None."""
        if lang == self.lang:
            return self.payload
        return self.translations.get(lang)


RecordProducer = Callable[["Fetch"], AsyncIterator[RawRecord]]
PageFilter = Callable[[bytes, int], bool]
"""``(page key, records on the page) -> whether the consumer already holds that page's records``."""


class Fetch:
    """One run of a source: an async iterable of records that knows afterwards whether it was complete.

    A source builds it from an async generator function taking the Fetch itself, so the generator can
    call :meth:`mark_incomplete` (e.g. a page limit was hit, a language variant failed). The run is
    ``complete`` only if the generator finished without an exception and nobody marked it incomplete.
    A Fetch can be iterated once.

    A consumer that remembers earlier runs may set ``page_filter`` before iterating: paged sources
    then ask it about each page (:meth:`skip_page`) and yield none of the records of a page it
    already holds, so an unchanged page costs its download and one hash, nothing per record
    (adapter.sync.skip). ``skipped_records`` counts the records not yielded for that reason.

    ``deadline`` (seconds, set before iterating) bounds the whole run's waiting on the source:
    past it the run ends with :class:`SourceUnavailableError`, whatever the source was doing.
    """

    def __init__(self, source: str, produce: RecordProducer) -> None:
        self.source = source
        self._produce = produce
        self._started = False
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.record_count = 0
        self.complete = False
        self.incomplete_reasons: list[str] = []
        self.error: BaseException | None = None
        self.page_filter: PageFilter | None = None
        self.skipped_records = 0
        self.deadline: float | None = None

    def skip_page(self, key: bytes, count: int) -> bool:
        """Whether to leave out a page's ``count`` records: the consumer holds them (see above).

        ``key`` must change whenever any record the page gives would change: the producer derives
        it from the page's records and everything else it puts into a record (e.g. the CRS).
        """
        if not count or self.page_filter is None or not self.page_filter(key, count):
            return False
        self.skipped_records += count
        return True

    def mark_incomplete(self, reason: str) -> None:
        """Record that this run did not see every record of the source, and why."""
        self.incomplete_reasons.append(reason)

    def __aiter__(self) -> AsyncIterator[RawRecord]:
        if self._started:
            raise RuntimeError(f"fetch of {self.source} was already iterated")
        self._started = True
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RawRecord]:
        self.started_at = utcnow()
        records = self._produce(self)
        deadline = _Deadline(self.deadline)
        exhausted = False
        try:
            while True:
                # Inline rather than a context manager: this runs once per record.
                deadline.begin()
                try:
                    record = await anext(records)
                except StopAsyncIteration:
                    break
                except asyncio.CancelledError:
                    deadline.interrupted()
                    raise
                finally:
                    deadline.end()
                self.record_count += 1
                yield record
            exhausted = True
        except _DeadlinePassedError:
            exc = SourceUnavailableError(
                f"the fetch did not finish within its {self.deadline:g} s deadline "
                f"({self.record_count} records read)", source=self.source)
            self.error = exc
            self.mark_incomplete(str(exc))
            raise exc from None
        except GeneratorExit:
            # The consumer stopped early (break, cancellation): the run saw only part of the source.
            self.mark_incomplete("consumer stopped before the end")
            raise
        except BaseException as exc:
            self.error = exc
            self.mark_incomplete(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            deadline.cancel()
            self.finished_at = utcnow()
            self.complete = exhausted and not self.incomplete_reasons
            close = getattr(records, "aclose", None)
            if close is not None:
                await close()


class _DeadlinePassedError(Exception):
    """Internal: the fetch's deadline passed while it waited on the source."""


class _Deadline:
    """One timer for a whole fetch (a timeout per record would cost a timer each).

    When it fires while the task waits on the source (between :meth:`begin` and :meth:`end`),
    the task is cancelled and the wait ends in _DeadlinePassedError; when it fires while the
    consumer works (maps, delivers), nothing is interrupted and the next wait ends at once.
    """

    def __init__(self, seconds: float | None) -> None:
        self.passed = False
        self._waiting = False
        self._cancelled = False  # this timer cancelled the task
        self._task = asyncio.current_task()
        self._handle = None if seconds is None else \
            asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        self.passed = True
        if self._waiting and self._task is not None:
            self._cancelled = True
            self._task.cancel()

    def begin(self) -> None:
        """A wait on the source starts (raises _DeadlinePassedError when the deadline is past)."""
        if self.passed:
            raise _DeadlinePassedError
        self._waiting = True

    def interrupted(self) -> None:
        """The wait was cancelled: raises _DeadlinePassedError when by this timer alone."""
        if self._cancelled:
            self._cancelled = False
            if self._task is None or self._task.uncancel() == 0:
                raise _DeadlinePassedError  # else cancelled from outside too: that wins

    def end(self) -> None:
        """The wait is over; a cancellation the source swallowed still ends the fetch."""
        self._waiting = False
        if self._cancelled:
            self._cancelled = False
            if self._task is not None:
                self._task.uncancel()
            raise _DeadlinePassedError

    def cancel(self) -> None:
        """Stop the timer."""
        if self._handle is not None:
            self._handle.cancel()


@runtime_checkable
class VersionedSource(Protocol):
    """A source that can tell cheaply whether anything changed since a run (e.g. an ArcGIS
    layer's ``editingInfo.lastEditDate``): the sync then skips the fetch entirely."""

    async def version(self) -> str | None:
        """An opaque version of the source's content, or None when it cannot tell."""
        ...


@runtime_checkable
class Source(Protocol):
    """Anything that fetches raw records: Smart Burgas feeds, GIS layers, GTFS feeds."""

    name: str

    def fetch(self) -> Fetch:
        """Start one run; iterating the returned Fetch performs the I/O."""
        ...
