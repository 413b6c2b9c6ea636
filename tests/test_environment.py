"""A developer's shell cannot change test results: BURGAS_* settings and feed URLs never reach a test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adapter.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SHELL = {"BURGAS_TENANT": "from-the-shell", "BURGAS_BROKER_URL": "http://shell.invalid:1026",
         "TRAFFIC_URL": "http://shell.invalid/Cars_count.json", "GIS_PARKS_URL": "http://shell.invalid/parks"}


def test_settings_and_feed_urls_of_the_shell_do_not_reach_a_test():
    env = {**os.environ, **SHELL, "ENVIRONMENT_PROBE": "1"}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                          f"{__file__}::test_probe"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr


def test_probe():
    if os.environ.get("ENVIRONMENT_PROBE") != "1":
        pytest.skip("run in a child pytest by the test above")
    assert not set(SHELL) & set(os.environ)
    settings = load_settings()
    assert settings.tenant is None and settings.broker_url is None
    assert os.environ["BURGAS_SHARED_DIR"]  # the test run's own knobs stay
