"""`make demo` (burgas-adapter demo): the README's first command, end to end through real parts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_output() -> str:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BURGAS_BROKER_URL", None)
    done = subprocess.run([sys.executable, "-m", "adapter.cli", "demo"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_demo_syncs_every_bundled_source_completely(demo_output):
    from adapter.config import load_config

    header = next(line for line in demo_output.splitlines() if "┃ source" in line)
    columns = [c.strip() for c in header.split("┃")]
    for source in load_config().select(None):  # every enabled source
        row = next(line for line in demo_output.splitlines() if f" {source.name} " in line)
        cells = [c.strip() for c in row.split("│")]
        # complete, nothing pending
        assert cells[columns.index("complete")] == "yes" and cells[columns.index("pending")] == "0", row


def test_demo_shows_entities_per_type_and_the_rejected_record_with_its_reason(demo_output):
    counts = dict(re.findall(r"│ (\w+)\s+│\s+(\d+) │", demo_output))
    assert counts["AirQualityObserved"] == "5" and counts["GtfsStop"] == "40"
    assert counts["TrafficFlowObserved"] == "12"  # 13 detectors, one listed twice, one without position
    assert "detector_id=118" in demo_output and "a Point needs [lng, lat], got []" in demo_output


def test_second_demo_sync_sends_nothing(demo_output):
    assert re.search(r"Second sync \(nothing changed\): 0 entities sent, \d+ unchanged", demo_output)


def test_demo_queries_answer_with_real_entities(demo_output):
    answers = [int(n) for n in re.findall(r"→ (\d+) entities", demo_output)]
    assert len(answers) == 3 and all(n > 0 for n in answers)
    assert "georel=near;maxDistance==3000" in demo_output
    assert "q=availableSpotNumber>0" in demo_output
    assert "GtfsStop entities inside the district" in demo_output
