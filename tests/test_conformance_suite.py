"""The ETSI NGSI-LD conformance suite's fast groups against the embedded broker: the groups meant to
pass completely, ~10-15 s each (`make conformance` runs all nine). Each group may fail only the tests
docs/conformance.md lists with their reason.

The suite lives in ../shared/conformance (not part of this repository): without it the test is
skipped, except in CI, where it must be there. run.sh installs the suite's own Python packages once
into ~/.cache/ngsi-ld-test-suite/venv (PyPI only).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT.parent / "shared" / "conformance"

# Group -> ids of the tests allowed to fail (docs/conformance.md says why); every other test passes.
GROUPS: dict[str, frozenset[str]] = {
    "ContextInformation/Provision/Entities": frozenset(),
    "ContextInformation/Provision/BatchEntities": frozenset(),
    "ContextInformation/Consumption/Discovery": frozenset(),
}


def _suite_or_skip() -> Path:
    if (SUITE / "run.sh").is_file():
        return SUITE
    if os.environ.get("CI") == "true":
        pytest.fail(f"the ETSI suite is missing at {SUITE} (CI provides ../shared)")
    pytest.skip(f"no ETSI conformance suite at {SUITE}")


def _failures(out: Path) -> dict[str, set[str]]:
    csv.field_size_limit(1 << 30)
    failed: dict[str, set[str]] = {}
    with (out / "failures.tsv").open(newline="") as rows:
        for row in csv.reader(rows, delimiter="\t"):
            if len(row) >= 2:
                failed.setdefault(row[0], set()).add(row[1].split(" ", 1)[0])
    return failed


@pytest.mark.timeout(900)  # the first run also installs the suite's packages (pip, ~1 min)
def test_fast_groups_fail_only_the_documented_tests(tmp_path: Path) -> None:
    suite = _suite_or_skip()
    command = (f"{sys.executable} -m ngsild_broker --port {{port}} --memory "
               f"--contexts-dir {suite / 'contexts'}")
    venv = Path(os.environ.get("SUITE_VENV", Path.home() / ".cache" / "ngsi-ld-test-suite" / "venv"))
    # One run.sh per group, side by side (each has its own broker, port, copy of the suite and OUT):
    # the groups mostly wait on HTTP round trips. The first run ever installs the suite's venv, which
    # two run.sh at once would race on, so then one run.sh takes every group.
    batches = [[group] for group in GROUPS] if (venv / "bin" / "robot").exists() else [list(GROUPS)]
    runs: list[tuple[Path, subprocess.Popen[str]]] = []
    for index, batch in enumerate(batches):
        out = tmp_path / f"conformance-{index}"
        runs.append((out, subprocess.Popen(
            ["bash", str(suite / "run.sh"), "-c", command, *batch], cwd=ROOT,
            env={**os.environ, "OUT": str(out)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)))
    summary, errors = "", ""
    failed: dict[str, set[str]] = {}
    try:
        for out, run in runs:
            stdout, stderr = run.communicate(timeout=900)
            summary += (out / "summary.txt").read_text() if (out / "summary.txt").is_file() else stdout
            errors += stderr[-2000:]
            failed.update(_failures(out))
    finally:
        for _, run in runs:
            if run.poll() is None:
                run.kill()
                run.wait()
    ran = [line for line in summary.splitlines() if " tests, " in line]
    assert len(ran) == len(GROUPS), summary + errors  # every group ran
    for group, allowed in GROUPS.items():
        unexpected = failed.get(group.replace("/", "_"), set()) - allowed
        assert not unexpected, f"{group}: unexpected failures {sorted(unexpected)}\n{summary}"
