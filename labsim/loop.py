"""Which event loop runs labsim.

On the real clock, uvloop where it is installed (every platform but Windows): its event
loop costs less per request, and all of labsim's hops share one loop. The virtual clock
always runs on asyncio's own loop, because it looks at the loop's ready queue to know that
every task is waiting (see `clock.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


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
