"""Process-wide settings of an adapter process (the CLI's commands, the benchmarks)."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Fewer garbage collections in an adapter process (the CLI's commands, the bench).

    A sync holds one fetch's mapped entities until its snapshot is diffed (100,000 pydantic models
    for a large layer) while allocating ~50 objects per record; CPython's first-generation
    threshold of 700 then runs a collection every ~15 records, and each older-generation pass
    walks everything held. A 50,000 threshold cut the adapter's CPU of a 100,000-feature full
    sync by ~17 % (14.6-15.3 s against 17.8-18.2 s, bench/README.md). Reference cycles are
    rare in the sync path, so memory is not held much longer. Not frozen (``gc.freeze``): the CLI
    also runs inside test processes.
    """
    gc.set_threshold(50_000, 20, 100)
