"""`make demo` (burgas-adapter demo): the README's first command, end to end through real parts.

It runs as a new user meets it: from a clean copy of the repository (tracked files only), with no
../shared beside it, an empty download cache and no usable network (every proxy variable points at
a closed port), after the Makefile's set-up step (`python -m adapter.reference`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration
NO_NETWORK = "http://127.0.0.1:9"  # the discard port: nothing listens there


def clean_clone(target: Path) -> Path:
    """The repository's tracked files (as in the working tree) copied to `target`."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source, copy = ROOT / name, target / name
        if not source.exists() and not source.is_symlink():
            continue  # deleted in the working tree, not yet committed
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, copy, follow_symlinks=False)
    return target


@pytest.fixture(scope="module")
def offline_clone(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A clean clone and the environment of a machine without ../shared, cache or network."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git repository to copy")
    clone = clean_clone(tmp_path_factory.mktemp("clone") / "burgas")
    empty = tmp_path_factory.mktemp("no-shared")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BURGAS_") and k.lower() not in ("no_proxy", "pythonpath")}
    env.update({"COLUMNS": "200", "BURGAS_SHARED_DIR": str(empty),
                "BURGAS_CACHE_DIR": str(tmp_path_factory.mktemp("empty-cache")),
                "XDG_CACHE_HOME": str(tmp_path_factory.mktemp("xdg-cache")),
                "HTTPS_PROXY": NO_NETWORK, "HTTP_PROXY": NO_NETWORK, "ALL_PROXY": NO_NETWORK,
                "https_proxy": NO_NETWORK, "http_proxy": NO_NETWORK, "all_proxy": NO_NETWORK})
    return clone, env


@pytest.fixture(scope="module")
def demo_output(offline_clone) -> str:
    clone, env = offline_clone
    where = subprocess.run([sys.executable, "-c", "import adapter, ngsild_broker; "
                            "print(adapter.__file__); print(ngsild_broker.__file__)"],
                           cwd=clone, env=env, capture_output=True, text=True, timeout=60)
    assert all(Path(p).is_relative_to(clone) for p in where.stdout.split()), where.stdout + where.stderr
    setup = subprocess.run([sys.executable, "-m", "adapter.reference"], cwd=clone, env=env,
                           capture_output=True, text=True, timeout=120)
    assert setup.returncode == 0, setup.stdout + setup.stderr  # offline: warns and goes on
    done = subprocess.run([sys.executable, "-m", "adapter.cli", "demo"], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not any(Path(env["BURGAS_CACHE_DIR"]).iterdir())  # nothing was downloaded
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


def test_demo_reads_a_stations_last_readings_from_the_temporal_api(demo_output):
    shown = re.search(r"no2 at .+, the last 8 readings\nGET \S+/temporal/entities/(\S+)\?\S+\n((?:  \S+  \S+\n)+)"
                      r"  → (\d+) readings", demo_output)
    assert shown is not None, demo_output
    times = [line.split()[0] for line in shown.group(2).splitlines()]
    assert int(shown.group(3)) == len(times) == 8
    assert times == sorted(times) and len(set(times)) == 8  # eight distinct hourly readings, oldest first
