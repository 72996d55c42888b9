"""Processor sharing: every request in service progresses at once, sharing the processors.

With `processors` c and k requests in service, each one's service time runs down at
min(1, c / k) seconds of work per second, as an operating system shares its cores among
busy threads. A lone request takes exactly its service time; many take longer together,
and none waits in a line. Queueing theory's processor-sharing station (Kleinrock): its
mean response is that of FIFO with exponential service, whatever the service's
distribution, so a closed network of them keeps mean value analysis's throughput while a
lone request's time stays as steady as its service. Used by `capacity.py` for stations
with `discipline = "processor_sharing"`; touches only its own requests and the clock.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from ..core.clock import Clock

# Work left below this (seconds) is done: the virtual clock keeps whole nanoseconds.
_DONE = 1e-8


class ProcessorSharing:
    def __init__(self, processors: int, clock: Clock) -> None:
        self.processors, self.clock = processors, clock
        self.left: dict[asyncio.Future[None], float] = {}  # each request's work left
        self._last = clock.now()
        self._timer: asyncio.Task[None] | None = None

    @property
    def active(self) -> int:
        return len(self.left)

    async def serve(self, work: float) -> None:
        """Return once `work` seconds of service have been given, shared with the others."""
        if work <= 0:
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._progress()
        self.left[done] = work
        self._schedule()
        try:
            await done
        except asyncio.CancelledError:  # its caller went away: it stops taking a share
            if done in self.left:
                self._progress()
                del self.left[done]
                self._schedule()
            raise

    def _rate(self) -> float:
        return min(1.0, self.processors / len(self.left)) if self.left else 0.0

    def _progress(self) -> None:
        """Take the service given since the last change off every request's work."""
        now = self.clock.now()
        given = (now - self._last) * self._rate()
        self._last = now
        if given > 0:
            for request in self.left:
                self.left[request] -= given

    def _schedule(self) -> None:
        """Wake up when the request with the least work left would finish at this rate."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.left:
            soonest = max(0.0, min(self.left.values())) / self._rate()
            self._timer = asyncio.create_task(self._finish(soonest))

    async def _finish(self, delay: float) -> None:
        with suppress(asyncio.CancelledError):
            await self.clock.sleep(delay)
            self._timer = None
            self._progress()
            for request, left in list(self.left.items()):
                if left <= _DONE:
                    del self.left[request]
                    if not request.done():
                        request.set_result(None)
            self._schedule()
