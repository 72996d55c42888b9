"""The open model: requests arrive at a rate, whether or not earlier ones were answered.

Each arrival is sent at its scheduled time on the run's clock, whatever is in flight, so
a stall shows in every request scheduled during it (a closed client would instead send
less and hide it: coordinated omission). Arrivals that would exceed `max_in_flight` are
not sent and are counted as dropped, as k6 counts dropped iterations. A send later than
its schedule (a busy client on the real clock) is counted as send lag, apart from the
latency, which counts from the send. The endpoint of each arrival is drawn by the mix's
weights from the run's seed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

from ..core.tasks import cancel_all
from ..model.flows import weights as flow_weights
from .arrivals import arrival_times, expected_arrivals
from .driver import Where, finish, interrupts, one, printer
from .flows import mean_requests, open_starter
from .session import Session
from .tally import Tally


async def send_open_load(session: Session, token: str | None, tally: Tally) -> None:
    """Send every arrival of the load; `tally.interrupted` if Ctrl-C stopped it early."""
    options, clock = session.options, session.clock
    began: list[float] = []  # when the first arrival's clock started
    show = printer(options, max(1, round(_expected(session))), _timed(session, began))
    stop = asyncio.Event()
    in_flight: set[asyncio.Task[None]] = set()
    flow = open_starter(session, token, tally, show, stop) if options.flows else None

    async def schedule() -> None:
        start = clock.now()
        began.append(start)
        for number, (at, endpoint) in enumerate(_arrivals(session), start=1):
            await clock.sleep(start + at - clock.now())
            tally.arrived += 1
            if len(in_flight) >= options.max_in_flight:
                tally.dropped += 1  # not sent: the load cannot keep its schedule
                continue
            task = asyncio.create_task(
                flow(number, endpoint, start + at)
                if flow is not None  # a load of flows: each arrival runs one
                else one(session, token, number, endpoint, tally, show, start + at)
            )
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        tally.offered_for = clock.now() - start

    scheduler = asyncio.create_task(schedule())
    try:
        with interrupts(options.interruptible, stop, in_flight, on_stop=scheduler.cancel):
            outcomes = [*await asyncio.gather(scheduler, return_exceptions=True)]
            while in_flight:  # answered, or cut by a second Ctrl-C
                outcomes += await asyncio.gather(*list(in_flight), return_exceptions=True)
    except asyncio.CancelledError:
        scheduler.cancel()
        await cancel_all([scheduler, *in_flight])
        raise
    finish(options, tally, stop, outcomes)


def _timed(session: Session, began: list[float]) -> Where | None:
    """For a load that lasts a time, progress as the share of that time gone by on the
    run's clock: a Poisson load sends more or fewer requests than the expected count."""
    options = session.options
    span = options.duration or sum(stage.duration for stage in options.stages)
    if not span:
        return None  # a number of requests: counted

    def where(n: int) -> tuple[float, str]:
        gone = min(span, session.clock.now() - began[0]) if began else 0.0
        return gone / span, f"{n:,} requests answered, {gone:.1f} of {span:g} s of arrivals"

    return where


def _expected(session: Session) -> float:
    options = session.options
    # A load of flows: answers are requests, of about `mean_requests` per arrival.
    per = mean_requests(options.flows) if options.flows else 1
    if options.duration or options.stages:
        return per * expected_arrivals(options.rate, options.duration or None, options.stages)
    return per * options.requests


def _arrivals(session: Session) -> Iterator[tuple[float, str]]:
    """(seconds from the start, endpoint) of each arrival, seeded by the scenario's seed."""
    options = session.options
    rng = random.Random(f"{session.topology.seed}:arrivals")
    times = arrival_times(
        options.rate, options.duration or None, options.stages, options.arrivals, rng
    )
    drawn = flow_weights(options.flows) if options.flows else options.mix
    names, weights = zip(*drawn.items(), strict=True)
    counted = not (options.duration or options.stages)  # a number of requests, not a time
    for count, at in enumerate(times):
        if counted and count >= options.requests:
            return
        yield at, rng.choices(names, weights)[0]
