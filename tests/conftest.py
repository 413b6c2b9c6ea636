"""Shared test setup: reference files come from ../shared through BURGAS_SHARED_DIR, never the network;
the developer's shell cannot change results (adapter settings and feed URLs are cleared)."""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapter.config import BUNDLED_CONFIG
from adapter.sources.smartburgas_feeds import FEEDS

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
