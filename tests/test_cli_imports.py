"""Cold start: the CLI imports FastAPI and the embedded broker only where they run (issue 11).

`burgas-adapter --help` and `sync --broker-url` (tests/test_context_hosting.py checks a real one)
must not pay for them; how fast it starts is measured, not asserted (bench/README.md).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.sync_fixtures import ROOT, cli_env

HEAVY = ("fastapi", "starlette", "uvicorn", "ngsild_broker.app", "ngsild_broker.server", "pyproj", "shapely")
REPORT = ("import atexit, sys\n"
          "atexit.register(lambda: print('LOADED', *sorted(m for m in {heavy} if m in sys.modules)))\n"
          "from adapter.cli import app\n"
          "app({args}, prog_name='burgas-adapter')\n")


def loaded(*args: str) -> list[str]:
    """The heavy modules a `burgas-adapter <args>` process had imported when it exited."""
    done = subprocess.run([sys.executable, "-c", REPORT.format(heavy=HEAVY, args=list(args))], cwd=ROOT,
                          env=cli_env(), capture_output=True, text=True, timeout=60)
    line = next((x for x in done.stdout.splitlines() if x.startswith("LOADED")), None)
    assert line is not None, done.stdout + done.stderr
    return line.split()[1:]


@pytest.mark.parametrize("args", [["--help"], ["sync", "--help"], ["broker", "serve", "--help"]])
def test_help_imports_neither_fastapi_nor_the_broker(args):
    assert loaded(*args) == []


def test_importing_the_cli_and_the_broker_cli_stays_light():
    done = subprocess.run([sys.executable, "-c", "import sys, adapter.cli, ngsild_broker.cli, ngsild_broker; "
                           f"print(sorted(m for m in {HEAVY} if m in sys.modules))"],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
