"""Shared test setup: reference files come from ../shared through BURGAS_SHARED_DIR, never the network."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("BURGAS_SHARED_DIR", str(ROOT.parent / "shared"))
# Tests must never download reference files: an empty cache makes a missing file an error.
os.environ.setdefault("BURGAS_CACHE_DIR", str(ROOT / ".state" / "test-cache"))

# Their fixtures (`broker`, `client`, `mqtt_broker`) serve every test module without an import that
# linters see as unused; a module's own fixture of the same name takes precedence.
pytest_plugins = ["tests.broker_fixtures", "tests.mqtt_fixtures"]
