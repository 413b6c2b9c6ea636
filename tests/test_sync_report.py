"""The run report: built during the run, frozen at its end, with typed error classes."""

from __future__ import annotations

import dataclasses

import pytest

from adapter.cli import exit_code
from adapter.errors import AuthError, ConfigError, SourceUnavailableError
from adapter.sync.report import (
    AuthorisationError,
    ConfigurationError,
    InternalError,
    ReportBuilder,
    SyncReport,
    UnavailableError,
    run_error,
)

# The keys of `--json`, /status and the state file, in their order (unchanged by the frozen report).
KEYS = ["source", "run_id", "started_at", "records_in", "mapped", "readings", "history", "history_sent",
        "history_pending", "records_rejected", "mapper_failures", "unchanged", "sent", "deleted",
        "attrs_deleted", "rejected", "pending", "complete", "not_modified", "records_unchanged",
        "duration", "last_error", "error_kind", "held_deletes", "entities_by_type", "rejections", "ok"]


def test_a_finished_report_cannot_change_and_keeps_its_json_keys() -> None:
    building = ReportBuilder("parks", "r1", "2026-01-01T00:00:00+00:00", complete=True)
    building.entities_by_type["ParkingSpot"] = 2
    building.show(f"reason {i}" for i in range(30))
    report = building.freeze()
    building.entities_by_type["ParkingSpot"] = 5  # the builder is not the report
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.sent = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        report.entities_by_type["ParkingSpot"] = 3  # type: ignore[index]
    data = report.as_dict()
    assert list(data) == KEYS
    assert data["entities_by_type"] == {"ParkingSpot": 2} and len(data["rejections"]) == 20
    assert data["error_kind"] is None and data["ok"] is True


@pytest.mark.parametrize(("exc", "error", "kind", "code"), [
    (ConfigError("bad url"), ConfigurationError, "configuration", 2),
    (AuthError("401"), AuthorisationError, "authorisation", 3),
    (RuntimeError("bug"), InternalError, "internal", 1),
    (SourceUnavailableError("down"), UnavailableError, "unavailable", 4),
])
def test_errors_are_classed_and_give_the_exit_code(exc: BaseException, error: type, kind: str, code: int) -> None:
    assert run_error(exc) is error
    report = SyncReport.failed("air", "2026-01-01T00:00:00+00:00", exc)
    assert report.error is error and report.as_dict()["error_kind"] == kind and not report.ok
    assert exit_code([report], strict=False) == code


def test_the_most_urgent_failure_gives_the_exit_code() -> None:
    at = "2026-01-01T00:00:00+00:00"
    reports = [SyncReport.failed("a", at, SourceUnavailableError("down")), SyncReport.failed("b", at, RuntimeError()),
               SyncReport.failed("c", at, AuthError("401"))]
    assert exit_code(reports, strict=False) == 3
    assert exit_code([*reports, SyncReport.failed("d", at, ConfigError("x"))], strict=False) == 2
    assert exit_code([SyncReport("e", "", at, complete=True, pending=2)], strict=False) == 4
