"""One run, from start to result: the single owner of "a run" for every caller.

The CLI's `bench` and `run`, the scenarios, the dashboard's button and the tests all call
`run_bench` (inside an event loop) or `execute` (from plain code), and all get the same
typed `BenchResult`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence

from ..core import loop
from ..core.intervals import PerInterval
from ..model.config import Topology
from ..model.result import BenchResult
from ..model.scenario import Fault
from .collect import Seen, bench_result
from .driver import credentials, send_load
from .faults import apply_faults
from .flows import send_closed_flows
from .open_load import send_open_load
from .samples import SampleLog
from .sampling import Sampler, capacities, drain_worker, observe
from .session import BenchOptions, Session, open_session
from .tally import Tally


def execute(
    topology: Topology,
    options: BenchOptions,
    faults: Sequence[Fault] = (),
    samples: SampleLog | None = None,
    engine: str = "http",
) -> BenchResult:
    """Run the bench on a new event loop, the fastest one its clock allows; with `engine`
    "model", as a discrete-event simulation instead (`model_engine.py`), which raises
    `Unsupported` (a BenchError of one line) for what it does not yet reproduce."""
    if engine == "model":
        from .model_engine import execute_model

        return execute_model(topology, options, faults, samples)
    if engine != "http":
        raise ValueError(f"unknown engine {engine!r} (known: http, model)")
    return loop.run(run_bench(topology, options, faults, samples), virtual=options.virtual)


async def run_bench(
    topology: Topology,
    options: BenchOptions,
    faults: Sequence[Fault] = (),
    samples: SampleLog | None = None,
) -> BenchResult:
    """Run the bench and measure it.

    `faults` are applied on schedule through each component's admin API (in-process only).
    """
    wall_start = time.perf_counter()
    async with open_session(topology, options, samples) as session:
        seen = await session.clock.run(_drive(session, faults))
    wall = time.perf_counter() - wall_start
    return bench_result(dataclasses.replace(seen, wall=wall))


async def _drive(session: Session, faults: Sequence[Fault]) -> Seen:
    token = await credentials(session)
    clock = session.clock
    start = clock.now()
    per_interval = PerInterval.every(session.options.interval)
    tally = Tally(
        cached=session.cached, entry=session.entry, start=start, per_interval=per_interval
    )
    if session.samples is not None:
        session.samples.start = start
    began = capacities(session.cluster)
    sampler = Sampler(session, tally, start)
    watching = asyncio.create_task(sampler.run())
    schedule = asyncio.create_task(apply_faults(session, faults, start)) if faults else None
    try:
        try:
            send = send_open_load if session.options.open else send_load
            if session.options.flows and not session.options.open:
                send = send_closed_flows  # an open load runs its flows itself
            await send(session, token, tally)
        finally:
            unapplied = await stop_task(schedule)
        if unapplied is not None:
            raise unapplied  # a fault that could not be applied spoils the run
        elapsed = clock.now() - start
        ended = capacities(session.cluster)  # the load's window, not the worker's drain
        if session.cluster is not None and session.options.virtual and not tally.interrupted:
            await drain_worker(session)
    finally:
        failed = await stop_task(watching)
    if failed is not None:
        raise failed  # a sampler that failed would leave a hole in the report
    sampler.take()
    observed = None if session.cluster is None else observe(session.cluster, began, ended)
    applied = [f for f in faults if f.at <= elapsed]  # the others never happened
    return Seen(
        session.topology, session.options, tally, elapsed, 0.0, observed, sampler.timeline, applied
    )


async def stop_task(task: asyncio.Task[None] | None) -> BaseException | None:
    """Stop a helper task of the run; what it raised, if it failed before."""
    if task is None:
        return None
    task.cancel()
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    return None if isinstance(outcome, asyncio.CancelledError) else outcome
