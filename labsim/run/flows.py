"""Sending user flows (`[[load.flows]]`, model/flows.py) and their per-step figures.

Closed: `concurrency` users, each running one flow after another until the load's
`requests` runs are done; the runs are split over the flows by weight exactly (largest
remainder, as the mix) in an order shuffled with the seed. Open: `open_load.py` schedules
the arrivals and each one runs a flow here (`open_starter`), drawn by weight from the
seed; the dashboard's steered load runs one flow an arrival (`flow_runs`).
Every request goes to the entry (the load balancer) and is filed in the run's `Tally`
under `flow/step`; think times are sleeps on the run's clock, drawn from a generator of
their own. Touches the session's client and clock and the tally, nothing else.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from ..core.http import DownstreamError
from ..model import result as r
from ..model.flows import Flow, Step, weights
from ..model.latency import sampler
from ..model.load import plan
from .driver import Show, finish, interrupts, json_or_text, printer
from .session import Session
from .tally import EndpointStats, Outcome, Tally

# Starts one run of a flow: (arrival number, flow name, scheduled time) -> its coroutine.
Starter = Callable[[int, str, float], Coroutine[Any, Any, None]]
# One run of a given flow: (arrival number, scheduled time) -> its failed requests.
RunOnce = Callable[[int, float], Coroutine[Any, Any, int | None]]


def label(flow: str, step: str) -> str:
    """Where a step's requests are filed in the tally (and named in failures)."""
    return f"{flow}/{step}"


@dataclass
class _Runner:
    """What every run of every flow of one load shares."""

    session: Session
    token: str | None  # the load's own (`load.auth`), for flows that do not log in
    tally: Tally
    show: Show
    stop: asyncio.Event
    numbers: itertools.count[int]
    thinks: dict[tuple[str, int], Callable[[], float]]  # (flow, step index) -> draws

    async def run(self, flow: Flow, run: int, scheduled: float | None = None) -> int | None:
        """One run of `flow`: each step's requests in order, thinking after each but the
        run's last; a flow that logs in sends no token before its login step and the
        token the login answered (or none, when it failed) after it. `scheduled`: when
        an open load's arrival was due, the first request's send lag counts from it.
        How many of its requests failed; None when `stop` ended it before its end."""
        token = None if flow.logs_in else self.token
        names = flow.step_names()
        last = (len(flow.steps) - 1, flow.steps[-1].repeat - 1)
        failed = 0
        for i, step in enumerate(flow.steps):
            for n in range(step.repeat):
                if self.stop.is_set():
                    return None
                outcome = await self.send(flow.name, names[i], step, run, token, scheduled)
                scheduled = None
                failed += not step.served(outcome.status)
                if step.logs_in:
                    token = _token(outcome) if step.served(outcome.status) else None
                think = self.thinks.get((flow.name, i))
                if think is not None and (i, n) != last:
                    await self.session.clock.sleep(think())
        return failed

    async def send(
        self,
        flow: str,
        name: str,
        step: Step,
        run: int,
        token: str | None,
        scheduled: float | None,
    ) -> Outcome:
        session, tally, clock = self.session, self.tally, self.session.clock
        sent = clock.now()
        if scheduled is not None:
            tally.send_lag.add(max(0.0, sent - scheduled))
        try:
            reply = await session.client.request(
                session.entry,
                step.method,
                session.base + session.keyed(step.method, step.path),
                headers={"Authorization": token} if token else None,
                json_body=self.body(step, run),
                check=False,
                within=session.request_timeout,
            )
            outcome = Outcome(
                reply.status,
                json_or_text(reply.body),
                served_by=reply.headers.get("X-Served-By"),
            )
        except DownstreamError as e:
            outcome = Outcome(None, None, error=str(e))
        except asyncio.CancelledError:
            tally.cut += 1
            raise
        latency = clock.now() - sent
        served = step.served(outcome.status)
        where = label(flow, name)
        # Filed by when it was sent (a run's first request, when it was due), as the mix's.
        due = sent if scheduled is None else scheduled
        tally.record(where, outcome, latency, served=served, sent=due)
        answer = outcome.answer
        if served and isinstance(answer, dict):
            # Known by their answers, as any topology's steps give them (steps.py).
            cached = answer.get("cached")
            if tally.cached and isinstance(cached, bool):  # a read through a cache
                tally.hits += cached
                tally.misses += not cached
            tally.tasks_queued += answer.get("status") == "Task queued"  # to a worker
        if session.samples is not None:
            started = sent if scheduled is None else scheduled
            session.samples.add(
                where, started, sent, latency, outcome.status, outcome.served_by, answer
            )
        self.show(next(self.numbers), where, outcome.status, outcome.error or answer)
        return outcome

    def body(self, step: Step, run: int) -> Any:
        """The step's body; a login's defaults to a user's credentials, the users of
        the scenario taken in turn, one per run."""
        if step.body is not None or not step.logs_in:
            return step.body
        users = self.session.topology.users
        user = users[(run - 1) % len(users)]
        return {"username": user.username, "password": user.password}


def _token(outcome: Outcome) -> str | None:
    """The token a login answered (`{"token": ...}`), if it is one a header can carry."""
    answer = outcome.answer
    token = answer.get("token") if isinstance(answer, dict) else None
    if not isinstance(token, str) or not token or not token.isascii() or not token.isprintable():
        return None
    return token


def _runner(
    session: Session,
    token: str | None,
    tally: Tally,
    show: Show,
    stop: asyncio.Event,
    seed: int | None = None,
) -> _Runner:
    # One generator for every think time: a flow's pauses change no other draw, and on
    # the virtual clock, whose order of events is fixed, the same seed gives the same run.
    rng = random.Random(f"{session.topology.seed if seed is None else seed}:flows")
    thinks = {
        (flow.name, i): sampler(step.think, rng)
        for flow in session.options.flows
        for i, step in enumerate(flow.steps)
        if step.think.mean() > 0
    }
    return _Runner(session, token, tally, show, stop, itertools.count(1), thinks)


def closed_runs(blocks: list[tuple[str, int]], rng: random.Random) -> Iterator[str]:
    """The flow of each run of a closed load, in order: `blocks` (flow, runs) in an order
    drawn with `rng`, so that the users mix them. One at a time, each flow by its runs
    still to come: a shuffle's order, without a list as long as the load."""
    left = dict(blocks)
    for remaining in range(sum(left.values()), 0, -1):
        drawn = _nth(left, rng.randrange(remaining))
        left[drawn] -= 1
        yield drawn


def _nth(counts: dict[str, int], index: int) -> str:
    """The name of the `index`-th of all the counted runs, counting name by name."""
    for name, n in counts.items():
        if index < n:
            return name
        index -= n
    raise IndexError(index)


async def send_closed_flows(session: Session, token: str | None, tally: Tally) -> None:
    """A closed load of flows: `concurrency` users, each taking the next run when its
    last one ended, until `requests` runs split over the flows by weight exactly are
    done; `tally.interrupted` if Ctrl-C stopped it early."""
    options = session.options
    flows = {flow.name: flow for flow in options.flows}
    blocks = plan(options.requests, weights(options.flows))
    total = sum(n for _, n in blocks)
    runs = closed_runs(blocks, random.Random(f"{session.topology.seed}:flow-order"))
    show = printer(options, sum(flows[name].requests * n for name, n in blocks))
    stop = asyncio.Event()
    runner = _runner(session, token, tally, show, stop)
    queue = enumerate(runs, start=1)  # shared: each user takes the next run from it

    async def user() -> None:
        for number, name in queue:
            if stop.is_set():
                return
            await runner.run(flows[name], number)

    users = [asyncio.create_task(user()) for _ in range(min(options.concurrency, total))]
    with interrupts(options.interruptible, stop, users):
        outcomes = await asyncio.gather(*users, return_exceptions=True)
    finish(options, tally, stop, outcomes)


def open_starter(
    session: Session, token: str | None, tally: Tally, show: Show, stop: asyncio.Event
) -> Starter:
    """For an open load: what each arrival runs, one run of the flow it drew."""
    flows = {flow.name: flow for flow in session.options.flows}
    runner = _runner(session, token, tally, show, stop)

    async def start(number: int, name: str, scheduled: float) -> None:
        await runner.run(flows[name], number, scheduled)

    return start


def flow_runs(
    session: Session, flow: Flow, token: str | None, tally: Tally, stop: asyncio.Event, seed: int
) -> RunOnce:
    """For a load that runs one flow (the dashboard's): each call, one run of `flow`,
    its requests filed in `tally`, its think times drawn from `seed`; it answers how many
    of its requests failed (None: `stop` ended it early)."""
    runner = _runner(session, token, tally, lambda *_: None, stop, seed)

    def start(number: int, scheduled: float) -> Coroutine[Any, Any, int | None]:
        return runner.run(flow, number, scheduled)

    return start


def mean_requests(flows: tuple[Flow, ...]) -> float:
    """Requests one run sends on average, its flow drawn by weight."""
    total = sum(f.weight for f in flows)
    return sum(f.weight * f.requests for f in flows) / total


def flow_figures(flows: tuple[Flow, ...], tally: Tally) -> dict[str, r.Flow] | None:
    """Each flow's figures, a row per step, in the file's order (None: no flows)."""
    if not flows:
        return None
    out = {}
    for flow in flows:
        steps = {}
        for name, step in zip(flow.step_names(), flow.steps, strict=True):
            stats = tally.endpoints.get(label(flow.name, name), EndpointStats())
            served = r.Latency.of(stats.ok)
            steps[name] = r.FlowStep(
                request=step.request,
                count=served.count + stats.failed,
                served=served.count,
                failed=stats.failed,
                mean_ms=served.mean_ms,
                p50_ms=served.p50_ms,
                p90_ms=served.p90_ms,
                p99_ms=served.p99_ms,
                max_ms=served.max_ms,
            )
        out[flow.name] = r.Flow(weight=flow.weight, steps=steps)
    return out
