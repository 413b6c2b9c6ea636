"""`python -m bench <name> [args]` runs bench.<name>.main(args); `python -m bench all` runs each."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def _names() -> list[str]:
    here = Path(__file__).parent
    return sorted(m.name for m in pkgutil.iter_modules([str(here)])
                  if not m.name.startswith("_") and m.name != "common")


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m bench <name> [args] | all\nbenchmarks: " + ", ".join(_names()))
        return 0
    names = _names() if argv[0] == "all" else [argv[0]]
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        result = module.main(argv[1:] if argv[0] != "all" else [])
        if result:
            return int(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
