"""Python's garbage collector during a run.

A full sync allocates millions of short-lived documents; reference counting frees them, as
they hold no cycles. With the default thresholds the cycle collector still ran ~1,400 times in a
run of 10k listings (6,500 at 50k), each time walking what it tracks, Dagster's definitions and
the imported modules included: 1.3 s of the run's 13 s of CPU at 10k, 6.1 s of 61 s at 50k
(measured with `gc.callbacks`). During a run the objects alive when it starts are left out of
collections (`gc.freeze`) and the youngest generation is collected after 10,000 allocations
rather than 700: 0.4 s at 10k, 2.4 s at 50k, and the peak RSS at 50k 500 MiB against 529.
The oldest generation is still collected after every collection of the middle one: what does
form cycles (the SQLite engines Dagster's storage opens, one per connection: 457 in a run of
2k listings) must not pile up, and with thresholds of 50,000 / 20 / 100 it did, by 100 MiB at
50k. Both settings are put back when the run ends, so a long-lived process (tests, in-process
runs) frees what a run left as before.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

RUN_THRESHOLDS = (10_000, 10, 1)


@contextmanager
def run_collector() -> Iterator[None]:
    """The collector tuned for a run while the block runs, as it was afterwards."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RUN_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
