"""Shared test setup: reference files come from ../shared through BURGAS_SHARED_DIR, never the network;
the developer's shell cannot change results (adapter settings and feed URLs are cleared)."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.config import BUNDLED_CONFIG
from adapter.errors import ConfigError
from adapter.sources.smartburgas_feeds import FEEDS
from tests.reference_files import shared_missing

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("BURGAS_SHARED_DIR", str(ROOT.parent / "shared"))
# Tests must never download reference files: an empty cache makes a missing file an error.
os.environ.setdefault("BURGAS_CACHE_DIR", str(ROOT / ".state" / "test-cache"))

# Their fixtures (`broker`, `client`, `mqtt_broker`...) serve every test module without an import that
# linters see as unused; a module's own fixture of the same name takes precedence.
pytest_plugins = ["tests.broker_fixtures", "tests.mqtt_fixtures"]

# The knobs of the test run itself, kept: where reference files are, an external broker to test
# against (docs/orion-ld.md) and the Mosquitto to use (README "Tests").
KEPT = frozenset({"BURGAS_SHARED_DIR", "BURGAS_CACHE_DIR", "BURGAS_TEST_BROKER_URL", "MQTT_URL"})
# Feed URLs (README "Configuration"): the Smart Burgas feeds' and every ${VAR} of the bundled pipeline.
FEED_VARIABLES = frozenset({spec.env_var for spec in FEEDS.values()} | set(
    re.findall(r"\$\{(\w+)", BUNDLED_CONFIG.read_text(encoding="utf-8"))))


def _outside_settings() -> list[str]:
    return [name for name in os.environ
            if name not in KEPT and (name.startswith("BURGAS_") or name in FEED_VARIABLES)]


# Cleared once here too, for the fixtures of wider scope (a module's broker) set up before the first test.
for _name in _outside_settings():
    del os.environ[_name]


@pytest.fixture(autouse=True)
def _no_settings_from_the_shell(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts without BURGAS_* settings or feed URLs (a test sets what it needs)."""
    for name in _outside_settings():
        monkeypatch.delenv(name)
    yield


def _needs_reference_files(error: BaseException | None) -> bool:
    """The error (or one it came from) is a reference file neither in ../shared nor downloadable."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, ConfigError) and error.context.get("offline"):
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A test that failed only for a missing reference file (see tests/reference_files.py) is skipped."""
    outcome = yield
    if call.excinfo is None or not shared_missing() or not _needs_reference_files(call.excinfo.value):
        return
    report = outcome.get_result()
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] or 0,
                       f"Skipped: needs the Smart Data Models reference files of ../shared ({call.excinfo.value})")
