"""Garbage-collector settings for long-running processes (`serve`, `worker`).

Measured under webhook load: CPython's full (generation 2) collections walked every
object the process had loaded (FastAPI, SQLAlchemy, the provider SDKs) and paused the
event loop for up to ~200 ms, which was the ingest p99. Once start-up is done, those
objects are frozen out of collection (`gc.freeze`), and young collections run less often:
nearly everything a request allocates is freed by reference counting, not by the GC.
"""

from __future__ import annotations

import gc


def settle_heap(threshold: int) -> None:
    """Call once start-up is done: freeze what is loaded, and collect young objects after
    `threshold` net allocations of containers (CPython: 700; 0 keeps CPython's)."""
    gc.collect()
    gc.freeze()
    if threshold > 0:
        _, middle, old = gc.get_threshold()
        gc.set_threshold(threshold, middle, old)
