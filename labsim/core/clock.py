"""The one clock every component reads: real (wall) time or virtual (simulated) time.

A clock has `now()` (seconds, monotonic) and `async sleep(seconds)`. Injected latency,
cache TTLs, worker task durations and the bench's own latency measurements all go
through it, so swapping the clock swaps the time of the whole topology at once.

Besides time, a clock has `exchanges`, which is told about every HTTP exchange labsim
itself makes: the caller opens it (`open`), it is parked while the serving component has
it whole or while it waits for a free connection in the caller's pool (`parked`), it
moves again when the reply is sent or a connection is granted (`moving`), and the caller
closes it when it has read the reply (`close`). The real clock's `exchanges` is a null
object that ignores all this; the virtual clock needs it, because its exchanges may travel
over real sockets (or over in-memory pipes, `pipe.py`, whose bytes wait in the loop's
ready queue). Nobody asks which clock they have: they use what it offers.

The virtual clock's guarantee
-----------------------------
Simulated time jumps to the earliest pending wake-up only when the system is quiet:

1. no labsim HTTP exchange is in transit: every request labsim sent has been fully read
   by the component that serves it (or waits for a pool connection that only other work
   can free), and every response a component produced has been fully read by its caller;
2. the event loop has no ready callback left, so every task is waiting for something.

Together these mean every piece of work is parked on the clock (or waiting for work that
is). Time never advances because the kernel was slow to deliver loopback bytes: a busy
machine makes a run take longer in wall time, never in simulated time.

Order is fixed too, not only time. The kernel delivers bytes from different sockets in
whatever order it likes, so every request a component receives and every reply a caller
reads waits at a `barrier` until the system is quiet, and all that arrived at that moment
go on in the order their exchanges were opened. Wake-ups at the same simulated time fire
in the order their sleeps were taken (a sequence number breaks ties, as in SimPy), and
time is kept in integer nanoseconds so it never drifts. So a run depends only on its
scenario and seed, however busy the machine is.

The event loop's own time is left alone: aiohttp's keep-alive and client timeouts keep
running on wall time and never fire because of a jump in simulated time.

If the system is quiet and nothing sleeps, yet a run is still waiting, no wake-up can
ever come: `VirtualClock.run` reports that as `StalledError` instead of hanging. A
`background` sleep (an observer's, such as the bench's sampler) does not count: it wakes
up while other work is asleep, after everything else due at the same moment, and never
moves time on by itself, so watching a run changes none of its figures.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

_NS = 1_000_000_000
# Kinds of heap entries; at the same time, barriers go first and background sleeps last.
_BARRIER, _SLEEP, _BACKGROUND = 0, 1, 2


class StalledError(RuntimeError):
    """The simulation is waiting on something no clock wake-up can bring."""


class Exchanges(Protocol):
    """Labsim's own HTTP exchanges, as the clock needs to know them."""

    active: bool  # whether it tracks anything (the HTTP client hooks its pools only then)

    def open(self) -> int | None: ...

    def opened(self, header: str | None) -> int | None: ...

    def parked(self, exchange: int) -> None: ...

    def moving(self, exchange: int) -> None: ...

    def close(self, exchange: int | None) -> None: ...

    def caller_waits(self, exchange: int) -> bool: ...

    async def barrier(self, exchange: int) -> None: ...


class Clock(Protocol):
    """What components need from time."""

    name: str  # for reports: "real" or "virtual"

    @property
    def exchanges(self) -> Exchanges: ...

    def now(self) -> float: ...

    async def sleep(self, seconds: float, *, background: bool = False) -> None: ...

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]: ...

    async def run(self, awaitable: Awaitable[T]) -> T: ...


class NoExchanges:
    """The real clock's exchanges: nothing to track, real time passes by itself."""

    active = False

    def open(self) -> int | None:
        return None

    def opened(self, header: str | None) -> int | None:
        return None  # an exchange header reaching a real-clock run is nobody's

    def parked(self, exchange: int) -> None:
        pass

    def moving(self, exchange: int) -> None:
        pass

    def close(self, exchange: int | None) -> None:
        pass

    def caller_waits(self, exchange: int) -> bool:
        return True

    async def barrier(self, exchange: int) -> None:
        pass


def _exchange_id(header: str | None) -> int | None:
    # isdecimal() alone admits other scripts' digits; the length keeps int() cheap.
    if header and len(header) <= 18 and header.isascii() and header.isdecimal():
        return int(header)
    return None


class RealClock:
    """Wall-clock time: `time.monotonic` and `asyncio.sleep`."""

    name = "real"
    exchanges: Exchanges = NoExchanges()

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, *, background: bool = False) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def timeout(self, seconds: float) -> AbstractAsyncContextManager[object]:
        """Raise TimeoutError in the block if it takes longer than `seconds`."""
        return asyncio.timeout(seconds)

    async def run(self, awaitable: Awaitable[T]) -> T:
        return await awaitable


class VirtualClock:
    """Simulated time that jumps ahead whenever every piece of work is parked on it."""

    name = "virtual"

    def __init__(self, start: float = 0.0, stall_grace: float = 0.5) -> None:
        self._now_ns = round(start * _NS)
        # (due ns, kind, order, push, future): barriers before sleeps at the same time, then
        # by exchange id (barriers) or by when the sleep was taken (sleeps).
        self._timers: list[tuple[int, int, int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._pushes = itertools.count()
        self.exchanges = _VirtualExchanges(self)
        self._changed: asyncio.Event | None = None
        self._stall_grace = stall_grace
        self._abandoned = 0  # timers cancelled before they were due, still in the heap
        # Sleeps, alarms and barriers in the heap that can still fire: the work asleep.
        # Background sleeps are left out, so they never keep a stalled run going.
        self._waiting = 0

    def now(self) -> float:
        return self._now_ns / _NS

    async def sleep(self, seconds: float, *, background: bool = False) -> None:
        """Wake up `seconds` of simulated time from now.

        A `background` sleep (an observer's, such as the bench's sampler) never keeps
        time going on its own: when only background sleeps are left, the run has stalled.
        It wakes after every other sleep due at the same time.
        """
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        kind = _BACKGROUND if background else _SLEEP
        self._push(self._now_ns + round(seconds * _NS), kind, next(self._seq), future)
        await self._wait(future, kind)

    async def _wait(self, future: asyncio.Future[None], kind: int) -> None:
        try:
            await future
        except asyncio.CancelledError:
            if future.cancelled() and kind != _BACKGROUND:
                self._waiting -= 1  # its task was cancelled: it will never fire
            raise

    @asynccontextmanager
    async def timeout(self, seconds: float) -> AsyncIterator[None]:
        """Raise TimeoutError in the block if it takes longer than `seconds` simulated."""
        task = asyncio.current_task()
        assert task is not None
        inside, expired = True, False

        def expire(alarm: asyncio.Future[None]) -> None:
            nonlocal expired
            # The alarm's callback runs a loop turn after it rings: the block may be over.
            if inside and not alarm.cancelled():
                expired = True
                task.cancel()

        alarm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        alarm.add_done_callback(expire)
        self._push(self._now_ns + round(seconds * _NS), _SLEEP, next(self._seq), alarm)
        try:
            yield
        except asyncio.CancelledError:
            if expired and task.uncancel() == 0:
                raise TimeoutError from None
            raise
        finally:
            inside = False
            if not alarm.done():
                alarm.cancel()
                self._waiting -= 1
                self._forget_abandoned()

    def _forget_abandoned(self) -> None:
        # Most timeouts end long before they are due; without this sweep the heap would
        # keep one dead entry per request for the whole timeout.
        self._abandoned += 1
        if self._abandoned > 1024 and self._abandoned * 2 > len(self._timers):
            self._timers = [t for t in self._timers if not t[-1].done()]
            heapq.heapify(self._timers)
            self._abandoned = 0

    async def _barrier(self, exchange: int) -> None:
        """Resume once the system is quiet, in exchange order among all that wait now.

        Bytes from different sockets reach the loop in whatever order the kernel delivers
        them. Every request a component receives and every reply a caller reads passes
        here, so work that happens at the same simulated time always goes on in the same
        order: the order its exchanges were opened in.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(self._now_ns, _BARRIER, exchange, future)
        await self._wait(future, _BARRIER)

    def _push(self, due: int, kind: int, order: int, future: asyncio.Future[None]) -> None:
        # The last number is unique, so two entries never compare their futures: an
        # exchange cancelled at its barrier can meet its own next barrier at that moment.
        heapq.heappush(self._timers, (due, kind, order, next(self._pushes), future))
        self._waiting += kind != _BACKGROUND
        self._poke()

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` while driving simulated time; raise StalledError on deadlock."""
        if not hasattr(asyncio.get_running_loop(), "_ready"):
            raise RuntimeError("the virtual clock needs asyncio's own event loop")
        task = asyncio.ensure_future(awaitable)
        driver = asyncio.create_task(self._drive(task))
        try:
            return await task
        except asyncio.CancelledError:
            if driver.done() and not driver.cancelled() and driver.exception() is not None:
                raise driver.exception() from None  # type: ignore[misc]
            raise
        finally:
            driver.cancel()
            await asyncio.gather(driver, return_exceptions=True)

    def _poke(self) -> None:
        if self._changed is not None:
            self._changed.set()

    def _quiet(self, loop: asyncio.AbstractEventLoop) -> bool:
        # `_ready` is the loop's queue of runnable callbacks (CPython's BaseEventLoop);
        # empty means every task is blocked.
        return not self.exchanges.in_transit and not loop._ready  # type: ignore[attr-defined]

    async def _drive(self, main: asyncio.Future[Any]) -> None:
        loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        while not main.done():
            await asyncio.sleep(0)
            if self.exchanges.in_transit:
                self._changed.clear()
                if self.exchanges.in_transit:
                    await self._changed.wait()
                continue
            if not self._quiet(loop):
                continue
            if self._work_asleep():
                self._fire_next()
                continue
            # Quiet with nothing asleep: only outside I/O could wake anyone now.
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), self._stall_grace)
            except TimeoutError:
                if self._quiet(loop) and not self._work_asleep() and not main.done():
                    main.cancel(StalledError.__name__)
                    raise StalledError(
                        "virtual clock stalled: every task waits, none on the clock"
                    ) from None

    def _work_asleep(self) -> bool:
        return self._waiting > 0

    def _fire_next(self) -> None:
        while self._timers and self._timers[0][-1].cancelled():
            heapq.heappop(self._timers)
        if not self._timers:
            return
        due = self._timers[0][0]
        self._now_ns = max(self._now_ns, due)
        while self._timers and self._timers[0][0] == due:
            _, kind, _, _, future = heapq.heappop(self._timers)
            if not future.done():
                future.set_result(None)
                self._waiting -= kind != _BACKGROUND


class _VirtualExchanges:
    """A virtual clock's exchanges: those open (the caller waits) and those in transit."""

    active = True

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._open: set[int] = set()
        self.in_transit: set[int] = set()

    def open(self) -> int | None:
        exchange = next(self._ids)
        self._open.add(exchange)
        self.in_transit.add(exchange)
        return exchange

    def opened(self, header: str | None) -> int | None:
        """The exchange an `X-Labsim-Exchange` header names, if this clock opened it.

        Anything else (a client's own header, a stale or malformed id) is ignored.
        """
        exchange = _exchange_id(header)
        return exchange if exchange in self._open else None

    def parked(self, exchange: int) -> None:
        self.in_transit.discard(exchange)
        self._clock._poke()

    def moving(self, exchange: int) -> None:
        # A caller that already gave up will never read a reply: do not wait for it.
        if exchange in self._open:
            self.in_transit.add(exchange)

    def close(self, exchange: int | None) -> None:
        if exchange is not None:
            self._open.discard(exchange)
            self.in_transit.discard(exchange)
            self._clock._poke()

    def caller_waits(self, exchange: int) -> bool:
        """Whether the caller still waits for the reply (it has not given up).

        A component asks this rather than its socket: when the kernel tells it of a
        closed connection is up to the kernel, when the caller gave up is simulated time.
        """
        return exchange in self._open

    async def barrier(self, exchange: int) -> None:
        await self._clock._barrier(exchange)
