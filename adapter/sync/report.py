"""What one sync of one source did: the report the CLI prints and the service serves.

The fields are declared once, in :class:`RunCounts`. A run counts into a mutable
:class:`ReportBuilder`; what it hands out is the frozen :class:`SyncReport` (``builder.freeze()``).
Why a run failed is a :class:`RunError` class, chosen from the exception by :func:`run_error`: the
CLI's exit code and the ``error_kind`` of the JSON come from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import FrozenInstanceError, dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from adapter.errors import AdapterError, AuthError, ConfigError
from adapter.redaction import redact

if TYPE_CHECKING:
    from adapter.sync.outbox import DeliveryReport


class RunError:
    """Why a run stopped; the subclasses say who must act. Used as classes, never instantiated."""

    kind: ClassVar[str]  # the report's "error_kind"
    exit_code: ClassVar[int]  # adapter.cli's exit code for a run failing this way
    urgency: ClassVar[int]  # the most urgent of several failed runs gives the exit code


class ConfigurationError(RunError):
    """The configuration must change (a person acts)."""

    kind, exit_code, urgency = "configuration", 2, 0


class AuthorisationError(RunError):
    """Credentials were refused (a person acts)."""

    kind, exit_code, urgency = "authorisation", 3, 1


class InternalError(RunError):
    """A bug in the adapter."""

    kind, exit_code, urgency = "internal", 1, 2


class UnavailableError(RunError):
    """A source or the broker could not be reached or read: the next run may succeed."""

    kind, exit_code, urgency = "unavailable", 4, 3


def run_error(exc: BaseException) -> type[RunError]:
    """The class of a run's error: authorisation and configuration need a person, the rest waits."""
    if isinstance(exc, AuthError):
        return AuthorisationError
    if isinstance(exc, ConfigError):
        return ConfigurationError
    if isinstance(exc, AdapterError):
        return UnavailableError
    return InternalError


@dataclass
class RunCounts:
    """Counts and outcome of one run of one source, declared once: a run counts into a
    ReportBuilder and hands out a SyncReport, both of them RunCounts."""

    source: str
    run_id: str
    started_at: str
    records_in: int = 0
    mapped: int = 0  # entities the mapper produced (after merging equal ids)
    readings: int = 0  # time-series readings that reached the pipeline (history snapshots)
    history: int = 0  # attribute instances of those readings enqueued for the temporal API
    history_sent: int = 0  # attribute instances the broker's temporal API confirmed
    history_pending: int = 0  # instance operations still in the history outbox
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
    error: type[RunError] | None = None  # what last_error is, for exit codes (see adapter.cli)
    held_deletes: int = 0  # deletions the mass-deletion guard held (adapter.sync.deletes)
    # A dict and a list while the run counts (ReportBuilder), read-only once it ends (SyncReport).
    entities_by_type: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    rejections: Sequence[str] = ()  # first reasons, for display

    @property
    def ok(self) -> bool:
        """The source was fetched completely and nothing waits in the outbox."""
        return self.complete and self.pending == 0 and self.history_pending == 0 and self.last_error is None

    @property
    def error_kind(self) -> str | None:
        """The error's kind as the JSON names it."""
        return self.error.kind if self.error is not None else None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for /status, `--json` and the state file), credentials redacted."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "error":
                out["error_kind"] = self.error_kind
                continue
            out[f.name] = dict(value) if f.name == "entities_by_type" else \
                list(value) if f.name == "rejections" else value
        return redact({**out, "ok": self.ok})


@dataclass
class SyncReport(RunCounts):
    """What one run did, as handed out: frozen (built by a ReportBuilder).

    Frozen by hand: a frozen dataclass cannot extend the mutable RunCounts, so assigning to a field
    after __init__ raises FrozenInstanceError as a frozen dataclass would."""

    entities_by_type: MappingProxyType[str, int] = field(default_factory=lambda: MappingProxyType({}))
    rejections: tuple[str, ...] = ()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__ or name not in self.__dataclass_fields__:  # __init__ sets each once
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    @classmethod
    def failed(cls, source: str, started_at: str, exc: BaseException, message: str | None = None) -> SyncReport:
        """The report of a run that an error stopped before it counted anything."""
        return cls(source, "", started_at, last_error=message or str(exc), error=run_error(exc))


_SHOWN_REJECTIONS = 20


@dataclass
class ReportBuilder(RunCounts):
    """A report while its run goes on: the pipeline, the outbox's deliveries and the early
    delivery count into it; ``freeze()`` gives the SyncReport."""

    entities_by_type: dict[str, int] = field(default_factory=dict)
    rejections: list[str] = field(default_factory=list)

    def fail(self, exc: BaseException, message: str | None = None) -> None:
        """The run met this error (its message, or ``message``, becomes last_error)."""
        self.last_error = message or str(exc)
        self.error = run_error(exc)

    def count_delivery(self, delivery: DeliveryReport) -> None:
        """Add what one outbox delivery did (what waits is counted as pending by the caller)."""
        self.sent += delivery.upserted
        self.deleted += delivery.deleted
        self.attrs_deleted += delivery.attrs_deleted
        self.rejected += delivery.rejected
        # Only rejections: the error of what waits in the outbox is last_error.
        self.show(delivery.rejections)

    def show(self, reasons: Iterable[object]) -> None:
        """Keep the first rejection reasons for display."""
        for reason in reasons:
            if len(self.rejections) >= _SHOWN_REJECTIONS:
                return
            self.rejections.append(str(reason))

    def freeze(self) -> SyncReport:
        """The finished report."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["entities_by_type"] = MappingProxyType(dict(self.entities_by_type))
        values["rejections"] = tuple(self.rejections)
        return SyncReport(**values)
