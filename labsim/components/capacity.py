"""A component's slots and waiting line: a station (ARCHITECTURE, rule 7).

With `concurrency` above 0 a component serves at most that many requests at once; up to
`queue_size` more wait for a slot, first come first served; past that, 503 with
`Retry-After: 1`. A request holds its slot for a draw of `service` and while its handler
runs, so a gateway holds its slot while it waits for the cache or the database, as a
thread-per-request server does; with `holds = "service"` it holds the slot for the
service time only, then lets go before its handler runs, as a CPU or a lock is held
(the interpreter lock of a threaded Python server: waiting on a socket holds nothing).
With `discipline = "processor_sharing"` nobody waits in a line: every admitted request
shares the `concurrency` processors (`sharing.py`) for its service time, as an operating
system shares cores among threads, then its handler runs; up to `concurrency +
queue_size` share at once, past that 503. Its busy slots are min(k, concurrency) of the
k sharing, and its queue the rest.
The component's `latency` comes before all this (in the middleware) and holds no slot;
so do its faults. `/health`, `/metrics` and `/admin/`
take no slot.

Measured here, once, on the shared clock: busy slots and the queue's length, integrated
over time since the component started (utilization, mean queue length); each admitted
request's wait for its slot (a `Histogram`, zero waits included); requests refused.

Order, on either clock: a slot that frees up passes straight to the longest waiter, so
nobody arriving later can take it first. On the virtual clock, requests that arrive at
the same simulated time reach this point in exchange order (the middleware's barrier), so
who waits behind whom is fixed. A waiting request needs no clock wake-up: it waits for
the requests in the slots, which are themselves asleep on the clock or waiting on an
exchange, so the virtual clock goes on without it and never stalls because of it.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..core.clock import Clock
from ..core.metrics import Histogram
from ..model.station import CapacityFigures
from .answers import JSONError
from .sharing import ProcessorSharing

R = TypeVar("R")


class Capacity:
    """Slots, a FIFO waiting line and service time for one component, with their figures."""

    def __init__(
        self,
        component: str,
        slots: int,
        queue_size: int,
        service: Callable[[], float],
        clock: Clock,
        holds: str = "request",
        discipline: str = "fifo",
    ) -> None:
        self.component = component
        self.for_service_only = holds == "service"
        shared = discipline == "processor_sharing"
        self.sharing = ProcessorSharing(slots, clock) if shared else None
        self.slots, self.queue_size = slots, queue_size
        self.service, self.clock = service, clock
        self.busy = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.waits = Histogram()
        self.rejected = 0
        self.started = self._last = clock.now()
        self._busy_area = 0.0  # slot-seconds
        self._queue_area = 0.0  # request-seconds
        self._sharing_now = self._shared_queue = 0  # processor sharing: in service, beyond c

    async def hold(self, handler: Callable[[Any], Awaitable[R]], request: Any) -> R:
        """`handler(request)` in a slot, after the service time; 503 when none is to be had."""
        if self.sharing is not None:
            return await self._shared(handler, request)
        await self._acquire()
        try:
            seconds = self.service()
            if seconds > 0:
                await self.clock.sleep(seconds)
            if not self.for_service_only:
                return await handler(request)
        finally:
            self._release()
        return await handler(request)

    async def spend(self, seconds: float) -> None:
        """`seconds` of work in a slot (an endpoint's cpu step under `holds = "service"`),
        waiting in line for one; 503 when none is to be had."""
        if self.sharing is not None:
            await self._shared(self._nothing, None, seconds)
            return
        await self._acquire()
        try:
            await self.clock.sleep(seconds)
        finally:
            self._release()

    @staticmethod
    async def _nothing(_: Any) -> None:
        return None

    async def _shared(
        self, handler: Callable[[Any], Awaitable[R]], request: Any, seconds: float | None = None
    ) -> R:
        assert self.sharing is not None
        if self.sharing.active >= self.slots + self.queue_size:
            self._refuse()
        self.waits.add(0.0)
        self._advance()
        self._count_shared(+1)
        try:
            await self.sharing.serve(self.service() if seconds is None else seconds)
        finally:
            self._advance()
            self._count_shared(-1)
        return await handler(request)

    def _refuse(self) -> None:
        self.rejected += 1
        raise JSONError(
            503,
            f"{self.component} is at capacity ({self.slots} of {self.slots} slots busy, "
            f"{self._queued()} waiting; queue_size {self.queue_size})",
            headers={"Retry-After": "1"},
            component=self.component,
        )

    def _queued(self) -> int:
        return len(self.waiting) + self._shared_queue

    def _count_shared(self, change: int) -> None:
        self._sharing_now += change
        self.busy = min(self._sharing_now, self.slots)
        self._shared_queue = self._sharing_now - self.busy

    async def _acquire(self) -> None:
        if self.busy < self.slots:  # a free slot means nobody waits: the line is empty
            self._advance()
            self.busy += 1
            self.waits.add(0.0)
            return
        if len(self.waiting) >= self.queue_size:
            self._refuse()
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._advance()
        self.waiting.append(granted)
        arrived = self.clock.now()
        try:
            await granted
        except asyncio.CancelledError:  # e.g. the component stops while it waits
            if granted.cancelled():
                self._advance()
                if granted in self.waiting:  # `_release` drops cancelled ones it meets
                    self.waiting.remove(granted)
            else:
                self._release()  # the slot came just as it was cancelled: pass it on
            raise
        self.waits.add(self.clock.now() - arrived)

    def _release(self) -> None:
        self._advance()
        while self.waiting:
            granted = self.waiting.popleft()
            if not granted.done():
                granted.set_result(None)  # the slot passes on: still busy
                return
        self.busy -= 1

    def _advance(self) -> None:
        """Add the time since the last change to the integrals, before a change."""
        now = self.clock.now()
        if now > self._last:
            span = now - self._last
            self._busy_area += self.busy * span
            self._queue_area += self._queued() * span
            self._last = now

    def figures(self) -> CapacityFigures:
        """The station's figures now."""
        self._advance()
        now = self.clock.now()
        span = max(0.0, now - self.started)
        waits = dataclasses.replace(self.waits, buckets=Counter(self.waits.buckets))
        return CapacityFigures(
            slots=self.slots,
            queue_size=self.queue_size,
            busy_now=self.busy,
            utilization=self._busy_area / (self.slots * span) if span > 0 else 0.0,
            busy_slot_seconds=self._busy_area,
            queue_length_now=self._queued(),
            queue_length_mean=self._queue_area / span if span > 0 else 0.0,
            queue_wait=waits,
            rejected=self.rejected,
            at_s=now,
            span_s=span,
        )
