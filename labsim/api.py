"""labsim as a library: load a scenario, run the bench, read the typed result; or start
the lab on free ports and point your own client at it.

    import labsim

    result = labsim.bench()                                  # the lab's load test
    result.endpoints["data"].p99_ms, result.cache.hit_ratio  # 2004.0, 0.8

    stampede = labsim.load_scenario("scenarios/stampede.toml", variant="with coalescing")
    assert labsim.bench(stampede).db_calls == 1
    for check in labsim.check(stampede, labsim.bench(stampede)):
        print(check.text, check.passed, check.measured)

    with labsim.serve("scenarios/zero-latency.toml") as lab:  # real clock, free ports
        requests.post(f"{lab.url}/login", json=...)

Everything here is what the command line uses; `BenchResult` (`labsim.model.result`) is
the typed result, documented field by field.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .components.cluster import Cluster
from .core.clock import RealClock
from .model import guide
from .model.config import ConfigError, Topology
from .model.load import ENGINES
from .model.load_changes import changed_load
from .model.result import BenchResult, Check
from .model.scenario import Scenario, lab_scenario, load_scenarios
from .run import BenchOptions, execute

# Seconds `serve` waits for the topology to start, and for it to stop.
START_TIMEOUT = 30.0


def load_scenario(path: str | Path, variant: str | None = None) -> Scenario:
    """The scenario in `path`; `variant` names one of its variants (the first if None)."""
    scenarios = load_scenarios(path)
    if variant is None:
        return scenarios[0]
    for scenario in scenarios:
        if scenario.variant == variant:
            return scenario
    known = ", ".join(repr(s.variant) for s in scenarios if s.variant) or "none"
    raise ConfigError(f"{path}: no variant {variant!r} (variants: {known})")


def _scenario(scenario: Scenario | str | Path | None) -> Scenario:
    if scenario is None:
        return lab_scenario()
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario)


def bench(
    scenario: Scenario | str | Path | None = None,
    *,
    insecure: bool = False,
    engine: str = "http",
    **load: Any,
) -> BenchResult:
    """Run `scenario` (a Scenario, a path, or None for the lab) with its own `[load]`;
    `load` overrides any of it (`requests=1000`, `mix={"data": 1}`, `clock="real"`),
    checked as the command line's options are: ValueError (a ConfigError) naming the key.
    The guide profile on an address other than loopback is refused, as on the command
    line, unless `insecure`. `engine="model"` runs it as a discrete-event simulation with
    the same figures (README, "Two engines"); a scenario it does not yet reproduce raises
    BenchError with one line naming the feature.

    Runs on a new event loop: call it from plain code, not from inside a running one."""
    chosen = _scenario(scenario)
    door = None if insecure else guide.public_door(chosen.topology)
    if door is not None:
        raise ConfigError(
            f"{chosen.source}: {door} on {chosen.topology.host_of(door)}: the guide profile "
            "signs tokens with a public secret, so anyone who can reach it can forge one; "
            "pass insecure=True to serve it there anyway"
        )
    if engine not in ENGINES:
        raise ConfigError(f"engine: must be one of {', '.join(ENGINES)} (got {engine!r})")
    options = BenchOptions.of(changed_load(chosen.load, load))
    return execute(chosen.topology, options, chosen.faults, engine=engine)


def check(scenario: Scenario, result: BenchResult) -> list[Check]:
    """Each of the scenario's expectations against `result`: passed, and what was measured."""
    return [Check(scenario.variant or "", e.text, *e.evaluate(result)) for e in scenario.expect]


@dataclass(frozen=True)
class Lab:
    """A topology being served: where to send requests, and each component's address."""

    url: str  # the load balancer's
    urls: dict[str, str]  # component id -> its URL
    topology: Topology
    cluster: Cluster  # read its figures (`counters`, `capacity`); do not call it


@contextmanager
def serve(scenario: Scenario | str | Path | None = None) -> Iterator[Lab]:
    """The scenario's topology on free ports of 127.0.0.1, on the real clock, served by a
    thread of its own (so any client, blocking or not, can talk to it) until the block ends."""
    chosen = _scenario(scenario)
    topology = dataclasses.replace(chosen.topology, host="127.0.0.1")
    cluster = Cluster(topology, RealClock(), ephemeral=True)
    started, failure = threading.Event(), []
    stop: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def main() -> None:
        try:
            await cluster.start()
        except BaseException as e:
            failure.append(e)
            started.set()
            return
        stop.append((asyncio.get_running_loop(), asyncio.Event()))
        started.set()
        try:
            await stop[0][1].wait()
        finally:
            await cluster.stop()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="labsim", daemon=True)
    thread.start()
    if not started.wait(START_TIMEOUT):
        raise RuntimeError(f"labsim did not start within {START_TIMEOUT:g} s")
    if failure:
        raise failure[0]
    try:
        yield Lab(cluster.url, dict(cluster.urls), topology, cluster)
    finally:
        running, stopping = stop[0]
        running.call_soon_threadsafe(stopping.set)
        thread.join(START_TIMEOUT)
