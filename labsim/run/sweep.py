"""A sweep: one scenario run at every point of a grid of settings, on the virtual clock.

Each `--set key=v1,v2,...` is an axis; the points are every combination, the last axis
varying fastest. Every point runs the same scenario (and seed, unless `seed` is an axis)
with its settings laid over the file's, in a fresh event loop, so a point's figures do not
depend on which process ran it or in what order: `jobs` only changes the wall time.
Each point keeps the figures a latency-versus-load curve needs, and theory's prediction
for the same settings (`prediction.py`), where there is one.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..model.cache_prediction import predict_hit_ratio
from ..model.config import ConfigError
from ..model.prediction import EndpointTheory, predict
from ..model.result import BenchResult
from ..model.scenario import Scenario, scenarios_from
from ..model.schema import read_toml
from .axes import MAX_POINTS, Axis
from .bench import execute
from .session import BenchOptions

# A point is saturated when its busiest component is this busy, or it refused, dropped
# or lost requests. (Not by throughput against the offered rate: a short run's
# throughput counts the time its last requests take to drain.)
SATURATED = 0.95


@dataclass(frozen=True)
class PointLatency:
    """One endpoint's figures at one point: its served requests and their latencies in
    milliseconds, and how many failed."""

    served: int
    failed: int
    mean_ms: float | None
    p50_ms: float | None
    p99_ms: float | None


@dataclass(frozen=True)
class SweepPoint:
    settings: dict[str, Any]
    offered_rps: float | None  # an open load's arrival rate; None for a closed one
    throughput_rps: float | None
    requests: int
    failed: int
    dropped: int
    rejected: int
    busiest: str | None  # the component with the highest utilization (None: no slots)
    utilization: float | None
    endpoints: dict[str, PointLatency]
    theory: dict[str, EndpointTheory]
    theory_note: str | None  # why there is no theory, where there is none
    simulated_s: float
    wall_s: float = field(compare=False)
    theory_throughput_rps: float | None = None  # a closed load's, where theory applies
    # With keys (`load.keys`): the cache's hit ratio over the /data reads, the one theory
    # expects (`cache_prediction.py`) or why none, and the entries evicted.
    hit_ratio: float | None = None
    theory_hit_ratio: float | None = None
    cache_theory_note: str | None = None
    evictions: int | None = None

    @property
    def saturated(self) -> bool:
        busy = self.utilization is not None and self.utilization >= SATURATED
        return busy or self.rejected > 0 or self.dropped > 0 or self.failed > 0

    @property
    def throughput_deviation(self) -> float | None:
        """(measured - theory) / theory of a closed load's throughput."""
        expected, seen = self.theory_throughput_rps, self.throughput_rps
        if expected is None or seen is None or expected <= 0:
            return None
        return (seen - expected) / expected

    def deviation(self, endpoint: str, figure: str) -> float | None:
        """(measured - theory) / theory for `figure` (mean_ms, p50_ms, p99_ms)."""
        theory = self.theory.get(endpoint)
        measured = self.endpoints.get(endpoint)
        if theory is None or measured is None:
            return None
        expected, seen = getattr(theory, figure), getattr(measured, figure)
        if expected is None or seen is None or expected <= 0:
            return None
        return (seen - expected) / expected


@dataclass(frozen=True)
class Sweep:
    source: str
    scenario: str
    variant: str | None
    axes: tuple[Axis, ...]
    points: list[SweepPoint]  # all of the grid's, or those done before Ctrl-C (`interrupted`)
    interrupted: bool = False

    @property
    def saturation(self) -> int | None:
        """The index of the first saturated point, if any is."""
        return next((i for i, p in enumerate(self.points) if p.saturated), None)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: every point's figures, theory and deviation from it."""
        points = []
        cached = any(p.hit_ratio is not None for p in self.points)
        for p in self.points:
            point = dataclasses.asdict(p)
            if not cached:  # no keys read through a cache: no cache figures at all
                for key in ("hit_ratio", "theory_hit_ratio", "cache_theory_note", "evictions"):
                    del point[key]
            point["saturated"] = p.saturated
            point["deviation"] = {  # (measured - theory) / theory: fractions, not ms
                e: {
                    f.removesuffix("_ms"): p.deviation(e, f)
                    for f in ("mean_ms", "p50_ms", "p99_ms")
                }
                for e in p.theory
            }
            points.append(point)
        return {
            "source": self.source,
            "scenario": self.scenario,
            "variant": self.variant,
            "clock": "virtual",
            "axes": [{"key": a.key, "values": list(a.values)} for a in self.axes],
            "saturation": self.saturation,
            "interrupted": self.interrupted,
            "points": points,
        }


def grid(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, the last axis varying fastest."""
    combos = itertools.product(*(a.values for a in axes))
    return [dict(zip((a.key for a in axes), c, strict=True)) for c in combos]


def plan(path: str, axes: Sequence[Axis], variant: str | None) -> list[Scenario]:
    """The scenario of every point, each checked; ConfigError naming the bad one."""
    if math.prod(len(a.values) for a in axes) > MAX_POINTS:
        raise ConfigError(f"--set: the grid has more than {MAX_POINTS} points")
    keys = [a.key for a in axes]
    twice = next((k for i, k in enumerate(keys) if k in keys[:i]), None)
    if twice is not None:
        raise ConfigError(f"--set {twice}: given twice; give all its values in one --set")
    if "gateways.count" in keys and "gateways.ports" in keys:
        raise ConfigError("--set gateways.count: sets gateways.ports too; give one of them")
    data = read_toml(path)
    _one(path, data, variant, {})  # the file's own mistakes first, named as `run` names them
    return [_one(path, data, variant, settings) for settings in grid(axes)]


# One point's work, as sent to a worker: the file's name and parsed text (a worker on
# another machine has no such file), the variant, the point's settings, the engine.
Task = tuple[str, dict[str, Any], str | None, dict[str, Any], str]


def _one(
    path: str, data: dict[str, Any], variant: str | None, settings: dict[str, Any]
) -> Scenario:
    try:
        scenarios = scenarios_from(data, path, settings)
    except ConfigError as e:
        if not settings:
            raise
        shown = ", ".join(f"{k}={v}" for k, v in settings.items())
        raise ConfigError(f"--set {shown}: {e}") from None
    if variant is None:
        return scenarios[0]
    names = [s.variant for s in scenarios]
    if variant not in names:
        known = ", ".join(repr(n) for n in names if n) or "none"
        raise ConfigError(f"--variant {variant!r}: {path} has no such variant (known: {known})")
    return scenarios[names.index(variant)]


def run_sweep(
    path: str,
    axes: Sequence[Axis],
    *,
    variant: str | None = None,
    jobs: int = 1,
    cluster: str | None = None,
    done: Callable[[int, SweepPoint], None] = lambda i, p: None,
    engine: str = "http",
) -> Sweep:
    """Run every point (in `jobs` processes when more than 1, or on the Dask cluster whose
    scheduler is at `cluster`); `done(index, point)` is called as each finishes, in any
    order. The points come back in grid order; after Ctrl-C (or SIGTERM, which the
    command line makes one), those that finished, the sweep marked `interrupted`."""
    scenarios = plan(path, axes, variant)
    first = scenarios[0]
    data = read_toml(path)
    tasks: list[Task] = [(path, data, variant, settings, engine) for settings in grid(axes)]
    points: list[SweepPoint | None] = [None] * len(tasks)
    interrupted = False
    try:
        if cluster is not None:
            from .dask_pool import points_on  # Dask is optional: imported only when asked for

            finished = points_on(cluster, run_point, tasks)
        else:
            finished = _points(tasks, min(jobs, len(tasks)))
        for i, point in finished:
            points[i] = point
            done(i, point)
    except KeyboardInterrupt:  # the point running is lost; those done are kept
        interrupted = True
    done_points = [p for p in points if p]
    return Sweep(path, first.name, first.variant, tuple(axes), done_points, interrupted)


def _points(tasks: list[Task], jobs: int) -> Iterator[Any]:
    if jobs <= 1:
        for i, task in enumerate(tasks):
            yield i, run_point(*task)
        return
    # spawn, not fork: a fresh interpreter per worker, with no event loop copied over.
    context = multiprocessing.get_context("spawn")
    # A worker is born ignoring Ctrl-C (a new interpreter keeps an ignored SIGINT ignored),
    # so that one still importing when a terminal's Ctrl-C reaches the whole group does
    # not die with a traceback: stopping the workers is the parent's to do.
    main = threading.current_thread() is threading.main_thread()
    interrupts = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        pool = context.Pool(jobs, initializer=_ignore_interrupts)
    finally:
        if main:
            signal.signal(signal.SIGINT, interrupts)
    # SIGTERM would end this process at once and leave the workers running: make it an
    # interrupt, so that the pool is stopped on the way out.
    previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
    try:
        yield from pool.imap_unordered(_indexed, list(enumerate(tasks)))
        pool.close()
    finally:
        pool.terminate()  # on Ctrl-C, SIGTERM or an error, the workers stop with the sweep
        pool.join()
        if main:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _ignore_interrupts() -> None:
    """Ctrl-C is the parent's to handle: a worker just stops when told to."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _indexed(job: tuple[int, Task]) -> tuple[int, SweepPoint]:
    i, task = job
    return i, run_point(*task)


def run_point(
    path: str,
    data: dict[str, Any],
    variant: str | None,
    settings: dict[str, Any],
    engine: str = "http",
) -> SweepPoint:
    """Run one point on the virtual clock (whatever the file's clock), by `engine`, and
    keep its figures."""
    scenario = _one(path, data, variant, settings)
    options = BenchOptions.of(scenario.load, clock="virtual")
    result = execute(scenario.topology, options, scenario.faults, engine=engine)
    prediction = predict(scenario)
    theory, note = prediction.endpoints, prediction.reason
    throughput = prediction.throughput_rps
    if result.requests.failed and theory:  # theory has no timeouts and no full queues
        total = result.requests.total
        theory, note = {}, f"{result.requests.failed} of {total} requests failed"
        throughput = None
    point = _point(settings, result, theory, note, throughput)
    if not scenario.load.keys.on or result.cache is None:
        return point
    cache = predict_hit_ratio(scenario, result.time.simulated_s)
    return dataclasses.replace(
        point,
        hit_ratio=result.cache.hit_ratio,
        theory_hit_ratio=cache.hit_ratio,
        cache_theory_note=cache.reason,
        evictions=result.cache.evictions,
    )


def _point(
    settings: dict[str, Any],
    r: BenchResult,
    theory: dict[str, EndpointTheory],
    note: str | None,
    theory_throughput: float | None,
) -> SweepPoint:
    components = r.components or {}
    busy = {n: c.utilization for n, c in components.items() if c.utilization is not None}
    busiest = max(busy, key=lambda n: busy[n]) if busy else None
    return SweepPoint(
        settings=settings,
        offered_rps=r.offered_rps,
        throughput_rps=r.throughput_rps,
        requests=r.requests.total,
        failed=r.requests.failed,
        dropped=r.dropped,
        rejected=sum(c.rejected or 0 for c in components.values()),
        busiest=busiest,
        utilization=busy[busiest] if busiest else None,
        endpoints={
            name: PointLatency(e.count, e.failed, e.mean_ms, e.p50_ms, e.p99_ms)
            for name, e in r.endpoints.items()
        },
        theory=theory,
        theory_note=note,
        simulated_s=r.time.simulated_s,
        wall_s=r.time.wall_s,
        theory_throughput_rps=theory_throughput,
    )
