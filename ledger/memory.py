"""Pausing the cyclic garbage collector around work that allocates many acyclic objects."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a batch is built, read, parsed or applied: a batch allocates
    thousands to hundreds of thousands of acyclic objects (events, envelopes, rows), and collecting every few
    hundred allocations over them costs up to a third of the work. The collector runs again after the batch."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
