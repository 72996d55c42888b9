"""An open load whose rate changes while it runs: the load the dashboard steers.

Arrivals follow a rate that is a step function of time, set by `steer`: the n-th request
arrives where the cumulative intensity Λ(t) = ∫ rate dt reaches the n-th point of a
unit-rate process (`arrivals.arrival_times` at rate 1, seeded: Poisson or evenly spaced).
So a Poisson load stays a Poisson process at every rate, a change of rate moves only the
arrivals still to come, and the same seed and the same changes give the same arrivals.
As in `open_load.py`, an arrival is sent whatever is in flight, and one that would exceed
`max_in_flight` is not sent and is counted as dropped.

It touches only what it is given: a clock, and a `send` that makes one request and
returns its status (None: no answer); `http_send` makes one that sends to the entry. Or,
given a `FlowLoad` (`steered_flows.py`), each arrival is one whole run of a user flow:
then its counts and `max_in_flight` are of runs, and the flow's steps have figures of
their own.
Figures are counters since the start, and the latencies of the answers of the last
`window` seconds (bounded: at most `keep` of them).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.clock import Clock
from ..core.http import DownstreamError, HttpClient
from ..core.tasks import cancel_all
from ..model.load import ENDPOINTS
from .arrivals import arrival_times
from .steered_flows import FlowLoad
from .window import Window, ms, quantile

Send = Callable[[str], Awaitable[int | None]]


@dataclass
class Intensity:
    """Λ(t) of a rate that steps: `before` at `since`, then `rate` a second."""

    rate: float
    since: float
    before: float = 0.0

    def at(self, t: float) -> float:
        return self.before + self.rate * (t - self.since)

    def change(self, rate: float, now: float) -> None:
        self.before, self.since, self.rate = self.at(now), now, rate

    def when(self, target: float) -> float:
        """When Λ reaches `target` at the present rate (never, at a rate of 0)."""
        if self.rate <= 0:
            return math.inf
        return self.since + max(0.0, target - self.before) / self.rate


__all__ = ["Counts", "Intensity", "SteeredLoad", "http_send", "quantile", "request_of"]


@dataclass
class Counts:
    """What the load did since it started: requests, or a flow's runs."""

    arrived: int = 0  # arrivals scheduled: sent + dropped
    sent: int = 0  # a flow's: runs started
    answered: int = 0  # with any HTTP status; a flow's: runs that got to their end
    failed: int = 0  # 4xx or 5xx, or no answer; a flow's: runs with a request failed
    dropped: int = 0  # not sent: `max_in_flight` were in flight
    cut: int = 0  # in flight when the load stopped, and cancelled (a run: or ended early)


class SteeredLoad:
    """An open load at a rate `steer` changes; `start`, then `stop` once."""

    def __init__(
        self,
        clock: Clock,
        send: Send,
        *,
        rate: float,
        mix: dict[str, float],
        seed: int,
        flow: FlowLoad | None = None,
        arrivals: str = "poisson",
        max_in_flight: int = 256,
        window: float = 5.0,
        keep: int = 10_000,
    ) -> None:
        self.clock, self.send, self.mix, self.seed = clock, send, dict(mix), seed
        self.flow = flow  # each arrival one run of it, instead of a request of the mix
        self.max_in_flight, self.window = max_in_flight, window
        self.counts = Counts()
        self.in_flight: set[asyncio.Task[None]] = set()
        self.recent = Window(window, keep)  # answers' (or runs') latencies
        self.started = clock.now()
        self.stopped: float | None = None
        self.intensity = Intensity(rate, self.started)
        rng = random.Random(f"{seed}:steered")
        self._targets: Iterator[float] = arrival_times(1.0, None, (), arrivals, rng)
        self._target = next(self._targets)
        self._choose = random.Random(f"{seed}:steered-mix")
        self._names, self._weights = list(self.mix), list(self.mix.values())
        self._scheduler: asyncio.Task[None] | None = None

    @property
    def rate(self) -> float:
        return self.intensity.rate

    @property
    def running(self) -> bool:
        return self.stopped is None

    def start(self) -> None:
        self._scheduler = asyncio.create_task(self._schedule())

    def steer(self, rate: float) -> None:
        """From now on, `rate` arrivals a second; the next arrival is placed again."""
        if not self.running:
            return
        self.intensity.change(rate, self.clock.now())
        # The scheduler only ever waits in its sleep: restarted, it sleeps to the new time.
        if self._scheduler is not None:
            self._scheduler.cancel()
        self.start()

    async def _schedule(self) -> None:
        while True:
            at = self.intensity.when(self._target)
            if math.isinf(at):
                await asyncio.Event().wait()  # a rate of 0: until steered
            await self.clock.sleep(at - self.clock.now())
            self._arrive(at)
            self._target = next(self._targets)

    def _arrive(self, at: float) -> None:
        self.counts.arrived += 1
        if len(self.in_flight) >= self.max_in_flight:
            self.counts.dropped += 1
            return
        if self.flow is not None:
            task = asyncio.create_task(self._run(self.flow, self.counts.arrived, at))
        else:
            endpoint = self._choose.choices(self._names, self._weights)[0]
            task = asyncio.create_task(self._one(endpoint))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _one(self, endpoint: str) -> None:
        self.counts.sent += 1
        sent = self.clock.now()
        try:
            status = await self.send(endpoint)
        except asyncio.CancelledError:
            self.counts.cut += 1
            raise
        now = self.clock.now()
        if status is not None:
            self.counts.answered += 1
            self.recent.add(now, now - sent)
        if status is None or status >= 400:
            self.counts.failed += 1

    async def _run(self, flow: FlowLoad, number: int, scheduled: float) -> None:
        """One run of the flow; its latency is the whole run's, think times and all."""
        self.counts.sent += 1
        sent = self.clock.now()
        try:
            failed = await flow.run(number, scheduled)
        except asyncio.CancelledError:
            self.counts.cut += 1
            raise
        now = self.clock.now()
        if failed is None:  # the stop ended it between two of its requests
            self.counts.cut += 1
            return
        self.counts.answered += 1
        self.counts.failed += failed > 0
        self.recent.add(now, now - sent)

    async def stop(self, grace: float) -> int:
        """Send nothing more; give what is in flight `grace` seconds to be answered, then
        cut it. How many were cut."""
        if not self.running:
            return 0
        self.stopped = self.clock.now()
        before = self.counts.cut
        if self._scheduler is not None:
            await cancel_all([self._scheduler])
        if self.flow is not None:
            self.flow.halt()  # a run in flight ends after the request it is waiting for
        waiting = list(self.in_flight)
        if waiting and grace > 0:
            try:
                async with self.clock.timeout(grace):
                    await asyncio.wait(waiting)
            except TimeoutError:
                pass
        await cancel_all(self.in_flight)
        return self.counts.cut - before

    def figures(self) -> dict[str, Any]:
        """The load's figures now, as JSON: counts, and the last `window` seconds' answers."""
        now = self.clock.now() if self.stopped is None else self.stopped
        latencies = self.recent.latencies(now)
        span = min(self.window, now - self.started)
        flow = self.flow
        return {
            "running": self.running,
            "rate": self.rate,
            "mix": None if flow is not None else self.mix,
            "flow": None if flow is None else flow.name,
            "seed": self.seed,
            "max_in_flight": self.max_in_flight,
            "for_s": round(now - self.started, 3),
            **vars(self.counts),
            "in_flight": len(self.in_flight),
            "window_s": self.window,
            "answered_rate": round(len(latencies) / span, 3) if span > 0 else None,
            "p50_ms": ms(quantile(latencies, 0.5)),
            "p99_ms": ms(quantile(latencies, 0.99)),
            **({} if flow is None else {"steps": flow.steps(now)}),
        }


def request_of(endpoint: str) -> tuple[str, str, Any]:
    """(method, path, JSON body) of a mix's endpoint: a named one (`load.ENDPOINTS`), or
    a path, which is a GET."""
    if endpoint.startswith("/"):
        return "GET", endpoint, None
    method, path, _, body = ENDPOINTS[endpoint]
    return method, path, body


def http_send(client: HttpClient, entry: str, base: str, token: str | None, timeout: float) -> Send:
    """A `send` to the entry `entry` at `base`, each request with the load's `token`; a
    request with no answer within `timeout` seconds has none."""
    headers = {"Authorization": token} if token else None

    async def send(endpoint: str) -> int | None:
        method, path, body = request_of(endpoint)
        try:
            reply = await client.request(
                entry,
                method,
                base + path,
                headers=headers,
                json_body=body,
                check=False,
                within=timeout,
            )
        except DownstreamError:
            return None
        return reply.status

    return send
