"""Process-wide garbage-collector settings, for a process that does one job (a broker, a sync).

Both the embedded broker's server and the adapter's commands hold large batches of short-lived
objects (a 1000-entity batch allocates ~50,000 dicts and lists; a sync ~50 objects per record and
one fetch's mapped entities until its diff). With CPython's first-generation threshold of 700
that is a collection every few records, each walking what is held. Reference cycles are rare in
both, so memory is not held much longer. Measurements: bench/README.md.
"""

from __future__ import annotations

import gc

# `broker serve`: CPU per upserted entity -10-20 % (with the startup heap frozen). 100,000 rather
# than 20,000 since the broker records history: a batch then allocates ~200 objects per entity and
# the first-generation collections cost ~10 µs per entity at 20,000, ~5 at 100,000 (bench/README.md).
BROKER = (100_000, 10, 10)
# The adapter's commands: CPU of a 100,000-feature full sync -17 % (14.6-15.3 s against 17.8-18.2 s).
ADAPTER = (50_000, 20, 100)


def tune_gc(thresholds: tuple[int, int, int], *, freeze: bool = False) -> None:
    """Set the collector's thresholds; ``freeze`` moves everything alive now (imported modules,
    the startup heap) out of its reach: only for a process that runs nothing else (not the CLI,
    which also runs inside test processes)."""
    if freeze:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*thresholds)
