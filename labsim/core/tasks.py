"""Background tasks' end: how a component (or the dashboard) stops the tasks it started."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any


async def cancel_all(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel `tasks` and wait until each has ended, whatever it raised.

    The tasks are listed first: a task's done callback may remove it from `tasks` (a set
    that keeps tasks alive until they end) while this waits.
    """
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
