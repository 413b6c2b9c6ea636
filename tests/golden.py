"""Golden files: what a mapper or the serializer produces, compared byte for byte with a reviewed file.

A missing file fails like a changed one; `UPDATE_GOLDEN=1` (re)writes the files, to be reviewed in the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def assert_golden(golden: Path, produced: bytes) -> None:
    """`produced` equals the golden file's bytes (with UPDATE_GOLDEN=1: becomes them)."""
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_bytes(produced)
    if not golden.exists():
        pytest.fail(f"no golden file {golden.relative_to(ROOT)}: write it with UPDATE_GOLDEN=1 and review it")
    assert produced.decode() == golden.read_bytes().decode()
