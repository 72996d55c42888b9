"""Which event loop runs labsim, and how the collector of cyclic garbage is tuned for it.

On the real clock, uvloop where it is installed (every platform but Windows): its event
loop costs less per request, and all of labsim's hops share one loop. The virtual clock
always runs on asyncio's own loop, because it looks at the loop's ready queue to know that
every task is waiting (see `clock.py`).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

T = TypeVar("T")

# Allocations between two young collections on the virtual clock (CPython's default: 700).
# Each HTTP exchange allocates a few hundred short-lived objects, nearly all freed by
# reference counting; collecting after every couple of exchanges cost about 12 % of a
# virtual run (benchmarks/README.md). A pause here costs no simulated time, and memory
# stays flat: the few cycles are still collected, only less often.
VIRTUAL_GC_THRESHOLD = (50_000, 20, 100)


def run(main: Coroutine[Any, Any, T], *, virtual: bool = False) -> T:
    """Run `main` to completion on a new event loop, the fastest one that fits the clock."""
    if not virtual:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
        return asyncio.run(main)
    with _collector(VIRTUAL_GC_THRESHOLD):
        return asyncio.run(main)


@contextmanager
def _collector(threshold: tuple[int, int, int]) -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(*threshold)
    try:
        yield
    finally:
        gc.set_threshold(*before)
