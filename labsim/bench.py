"""The load generator: the lab's `load_test.py`, measured on the shared clock.

It logs in through the load balancer, then sends the mix (by default half `GET /data`,
then half `POST /longtask`) with at most `concurrency` requests in flight, and gathers
what `report` prints. It starts its own topology on free ports (virtual clock by
default), or drives one already running at `target` (real clock).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .clock import Clock, RealClock, VirtualClock
from .cluster import Cluster
from .config import Topology
from .http import POOL_SIZE, DownstreamError, HttpClient
from .load import ENDPOINTS, LAB_MIX, plan
from .metrics import Histogram, distribution
from .scenario import Fault
from .timeline import Timeline

# How often (simulated seconds) an in-process virtual run checks that the worker is done.
_DRAIN_POLL = 0.5
_DRAIN_LIMIT = 24 * 3600.0


class BenchError(Exception):
    """The run could not happen at all (target unreachable, login refused)."""


@dataclass(frozen=True)
class BenchOptions:
    requests: int = 100
    concurrency: int = 10
    mix: dict[str, int] = field(default_factory=lambda: dict(LAB_MIX))
    clock: str = "virtual"
    target: str | None = None
    verbose: bool = False
    progress: str | None = None  # "bar" (a terminal), "lines" (a log), or none
    timeout: float = 60.0  # seconds each request may take on the real clock; then failed
    interruptible: bool = False  # Ctrl-C stops the load and reports what finished


@dataclass
class EndpointStats:
    failed: int = 0
    latency: Histogram = field(default_factory=Histogram)  # every request
    ok: Histogram = field(default_factory=Histogram)
    errors: Histogram = field(default_factory=Histogram)  # the failed ones
    hits: Histogram = field(default_factory=Histogram)
    misses: Histogram = field(default_factory=Histogram)


@dataclass
class Observed:
    """What the run read from the topology's components (in-process runs only)."""

    counters: dict[str, dict[str, int]]
    statuses: dict[str, dict[str, int]]  # component -> status -> requests served
    kinds: dict[str, str]


# Distinct failures and serving gateways kept apart; a target may answer anything.
_KINDS = 100
_OTHER = "(others)"


def _count(counter: Counter[Any], key: Any, other: Any) -> None:
    counter[key if key in counter or len(counter) < _KINDS else other] += 1


@dataclass
class Tally:
    """What the run saw, request by request, in bounded memory."""

    by_status: Counter[str] = field(default_factory=Counter)
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    gateways: Counter[str] = field(default_factory=Counter)
    failures: Counter[tuple[str, int | None, str]] = field(default_factory=Counter)
    ok: int = 0
    failed: int = 0
    hits: int = 0
    misses: int = 0
    tasks_queued: int = 0
    interrupted: bool = False  # Ctrl-C: the report covers what finished
    cut: int = 0  # requests in flight when the run was stopped, never answered


def _sequence(blocks: list[tuple[str, int]]) -> Iterator[tuple[int, str]]:
    names = itertools.chain.from_iterable(itertools.repeat(name, n) for name, n in blocks)
    return enumerate(names, start=1)


async def run_bench(
    topology: Topology, options: BenchOptions, faults: Sequence[Fault] = ()
) -> dict[str, Any]:
    """Run the bench; return the report's data (see `report.py` for its keys).

    `faults` are applied on schedule through each component's admin API (in-process only).
    """
    clock: Clock = VirtualClock() if options.clock == "virtual" else RealClock()
    cluster = None
    if options.target is None:
        cluster = Cluster(topology, clock, ephemeral=True)
        await cluster.start()
        base = cluster.url
    else:
        base = options.target.rstrip("/")
    # The bench's own pool never makes its requests wait: that would count as latency.
    client = HttpClient(clock, pool_size=max(POOL_SIZE, options.concurrency))
    wall_start = time.perf_counter()
    try:
        tally, elapsed, observed, timeline = await clock.run(
            _drive(client, clock, base, topology, cluster, options, faults)
        )
    finally:
        await client.close()
        if cluster is not None:
            await cluster.stop()
    wall = time.perf_counter() - wall_start
    return _result(topology, options, tally, elapsed, wall, observed, timeline)


async def _drive(
    client: HttpClient,
    clock: Clock,
    base: str,
    topology: Topology,
    cluster: Cluster | None,
    options: BenchOptions,
    faults: Sequence[Fault],
) -> tuple[Tally, float, Observed | None, Timeline]:
    within = options.timeout if clock.name == "real" else None
    token = await _login(client, base, topology, within)
    tally = Tally()
    sequence = _sequence(plan(options.requests, options.mix))
    show = _printer(options)
    start = clock.now()
    timeline = Timeline()
    sampler = asyncio.create_task(_sample(clock, start, tally, cluster, timeline))
    stop = asyncio.Event()  # set by Ctrl-C: send nothing more

    async def worker() -> None:
        for number, endpoint in sequence:
            if stop.is_set():
                return
            await _one(client, clock, base, token, number, endpoint, tally, show, within)

    schedule = None
    if faults:
        assert cluster is not None, "faults need the topology in this process"
        schedule = asyncio.create_task(_apply_faults(client, clock, cluster, faults, start))
    try:
        try:
            count = min(options.concurrency, options.requests)
            workers = [asyncio.create_task(worker()) for _ in range(count)]
            with _interrupts(options.interruptible, stop, workers):
                outcomes = await asyncio.gather(*workers, return_exceptions=True)
            for outcome in outcomes:
                if not isinstance(outcome, asyncio.CancelledError | None):
                    raise outcome  # a bug, not a request that failed: those are tallied
        finally:
            unapplied = await _end(schedule)
        if unapplied is not None:
            raise unapplied  # a fault that could not be applied spoils the run
        tally.interrupted = stop.is_set()
        elapsed = clock.now() - start
        if options.progress == "bar":
            print(file=sys.stderr)
        if cluster is not None and isinstance(clock, VirtualClock) and not tally.interrupted:
            await _drain_worker(clock, cluster)
    finally:
        failed = await _end(sampler)
    if failed is not None:
        raise failed  # a sampler that failed would leave a hole in the report
    _take_sample(clock, start, tally, cluster, timeline)
    if cluster is None:
        return tally, elapsed, None, timeline
    # Read in-process, not over HTTP: a component the run left down still has its figures.
    observed = Observed(
        counters={c: cluster.counters(c) for c in cluster.urls},
        statuses={c: _statuses(cluster, c) for c in cluster.urls},
        kinds={c: cluster.components[c].kind for c in cluster.urls},
    )
    return tally, elapsed, observed, timeline


# Wall seconds that requests in flight get to finish after Ctrl-C.
INTERRUPT_GRACE = 2.0


@contextmanager
def _interrupts(
    enabled: bool, stop: asyncio.Event, workers: list[asyncio.Task[None]]
) -> Iterator[None]:
    """While inside, Ctrl-C stops the load: nothing more is sent, what is in flight gets
    INTERRUPT_GRACE seconds to finish, then is cut; a second Ctrl-C cuts it at once."""
    loop = asyncio.get_running_loop()
    cutter: list[asyncio.TimerHandle] = []

    def cut() -> None:
        for worker in workers:
            worker.cancel()

    def interrupted() -> None:
        if stop.is_set():
            cut()
            return
        stop.set()
        in_flight = sum(not w.done() for w in workers)
        print(
            f"\nlabsim: interrupted: sending no more; waiting up to {INTERRUPT_GRACE:g} s for "
            f"{in_flight} request(s) in flight (Ctrl-C again to stop now)",
            file=sys.stderr,
            flush=True,
        )
        cutter.append(loop.call_later(INTERRUPT_GRACE, cut))

    if enabled:
        try:
            loop.add_signal_handler(signal.SIGINT, interrupted)
        except (NotImplementedError, RuntimeError):  # no signals here (Windows, a thread)
            enabled = False
    try:
        yield
    finally:
        if enabled:
            loop.remove_signal_handler(signal.SIGINT)
        for handle in cutter:
            handle.cancel()


async def _end(task: asyncio.Task[None] | None) -> BaseException | None:
    """Stop a helper task of the run; what it raised, if it failed before."""
    if task is None:
        return None
    task.cancel()
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    return None if isinstance(outcome, asyncio.CancelledError) else outcome


def _statuses(cluster: Cluster, component_id: str) -> dict[str, int]:
    ctx = cluster.components[component_id].context
    served: Counter[str] = Counter()
    for (_, status), n in ctx.requests.items():
        served[str(status)] += n
    # Requests that got no answer (down, or the caller gave up first): not statuses.
    served["dropped"] += sum(ctx.dropped.values())
    return {status: n for status, n in sorted(served.items()) if n}


async def _sample(
    clock: Clock, start: float, tally: Tally, cluster: Cluster | None, timeline: Timeline
) -> None:
    # A background sleep: the sampler watches the run and must never keep it going.
    while True:
        _take_sample(clock, start, tally, cluster, timeline)
        await clock.sleep(start + timeline.next_at() - clock.now(), background=True)


def _take_sample(
    clock: Clock, start: float, tally: Tally, cluster: Cluster | None, timeline: Timeline
) -> None:
    values = {"ok": tally.ok, "failed": tally.failed, "hits": tally.hits, "misses": tally.misses}
    if cluster is not None:
        worker = cluster.counters("worker")
        values |= {
            "worker_queued": worker.get("queued", 0),
            "worker_running": worker.get("running", 0),
        }
    timeline.add(clock.now() - start, values)


async def _apply_faults(
    client: HttpClient, clock: Clock, cluster: Cluster, faults: Sequence[Fault], start: float
) -> None:
    headers = {"Authorization": f"Bearer {cluster.topology.admin_token}"}
    for fault in sorted(faults, key=lambda f: f.at):
        await clock.sleep(start + fault.at - clock.now())
        url = cluster.urls[fault.component]
        try:
            if fault.reset:
                await client.request(fault.component, "POST", f"{url}/admin/reset", headers=headers)
            if fault.changes:
                await client.request(
                    fault.component,
                    "POST",
                    f"{url}/admin/faults",
                    headers=headers,
                    json_body=fault.changes,
                )
        except DownstreamError as e:
            raise BenchError(f"cannot inject the fault at t={fault.at:g}s: {e}") from None


async def _login(client: HttpClient, base: str, topology: Topology, within: float | None) -> str:
    # A remote topology's users are the scenario's too: `--scenario` says which they are.
    user = topology.users[0]
    try:
        reply = await client.request(
            "load-balancer",
            "POST",
            f"{base}/login",
            json_body={"username": user.username, "password": user.password},
            check=False,
            within=within,
        )
    except DownstreamError as e:
        raise BenchError(f"cannot reach {base}: {e}") from None
    if reply.status != 200:
        raise BenchError(
            f"login at {base}/login failed with status {reply.status}: {reply.body[:200]!r}"
        )
    answer = _json_or_text(reply.body)
    token = answer.get("token") if isinstance(answer, dict) else None
    # The token goes into a header: it must be one line of visible ASCII.
    if not isinstance(token, str) or not token.isascii() or not token.isprintable() or not token:
        raise BenchError(
            f'login at {base}/login answered 200 but not with {{"token": "..."}}: '
            f"{reply.body[:200]!r}"
        )
    return token


@dataclass(frozen=True)
class Outcome:
    """One request's answer: a status and parsed body, or the error that stopped it."""

    status: int | None
    answer: Any
    error: str | None = None
    served_by: str | None = None


def _record(tally: Tally, endpoint: str, outcome: Outcome, latency: float) -> None:
    stats = tally.endpoints.setdefault(endpoint, EndpointStats())
    stats.latency.add(latency)
    status, answer = outcome.status, outcome.answer
    tally.by_status[str(status) if status else "error"] += 1
    if outcome.served_by and outcome.served_by != "load-balancer":  # its own 429s, 502s
        _count(tally.gateways, outcome.served_by[:100], _OTHER)
    if status != ENDPOINTS[endpoint][2]:
        tally.failed += 1
        stats.failed += 1
        stats.errors.add(latency)
        error = outcome.error
        if error is None:
            error = answer.get("error", "") if isinstance(answer, dict) else str(answer)[:200]
        _count(tally.failures, (endpoint, status, error[:200]), (endpoint, status, _OTHER))
        return
    tally.ok += 1
    stats.ok.add(latency)
    if endpoint == "data":
        cached = isinstance(answer, dict) and answer.get("cached") is True
        (stats.hits if cached else stats.misses).add(latency)
        tally.hits += cached
        tally.misses += not cached
    elif endpoint == "longtask":
        tally.tasks_queued += 1


async def _one(
    client: HttpClient,
    clock: Clock,
    base: str,
    token: str,
    number: int,
    endpoint: str,
    tally: Tally,
    show: Callable[[int, str, int | None, Any], None],
    within: float | None,
) -> None:
    method, path, _, body = ENDPOINTS[endpoint]
    started = clock.now()
    try:
        reply = await client.request(
            "load-balancer",
            method,
            base + path,
            headers={"Authorization": token},
            json_body=body,
            check=False,
            within=within,
        )
        outcome = Outcome(
            reply.status, _json_or_text(reply.body), served_by=reply.headers.get("X-Served-By")
        )
    except DownstreamError as e:
        outcome = Outcome(None, None, error=str(e))
    except asyncio.CancelledError:
        tally.cut += 1  # Ctrl-C, and it did not finish in time: not answered, not failed
        raise
    _record(tally, endpoint, outcome, clock.now() - started)
    show(number, endpoint, outcome.status, outcome.error or outcome.answer)


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode(errors="replace")


# Wall seconds between two progress lines in a log (not a terminal).
PROGRESS_EVERY = 5.0


def _printer(options: BenchOptions) -> Callable[[int, str, int | None, Any], None]:
    done = itertools.count(1)
    total = options.requests
    step = max(1, total // 200)
    began = time.monotonic()  # progress is for the person waiting: wall time
    next_line = [began + PROGRESS_EVERY]

    def show(number: int, endpoint: str, status: int | None, answer: Any) -> None:
        n = next(done)
        if options.verbose:
            print(f"[{endpoint.upper()}] Request {number}: Status {status}, Response: {answer}")
        if options.progress == "bar" and (n % step == 0 or n == total):
            filled = n * 30 // total
            bar = "#" * filled + "." * (30 - filled)
            print(f"\r[{bar}] {n}/{total}", end="", file=sys.stderr, flush=True)
        elif options.progress == "lines" and n % step == 0 and time.monotonic() >= next_line[0]:
            next_line[0] = time.monotonic() + PROGRESS_EVERY
            print(
                f"labsim: {n:,}/{total:,} requests answered "
                f"({n * 100 // total}%, {time.monotonic() - began:.0f} s)",
                file=sys.stderr,
                flush=True,
            )

    return show


async def _drain_worker(clock: Clock, cluster: Cluster) -> None:
    """Let the worker finish its tasks; free on the virtual clock."""
    waited = 0.0
    while waited < _DRAIN_LIMIT:
        counters = cluster.counters("worker")
        if counters.get("queued", 0) + counters.get("running", 0) == 0:
            return
        await clock.sleep(_DRAIN_POLL)
        waited += _DRAIN_POLL


def predicted_latencies(topology: Topology) -> dict[str, float]:
    """Mean `/data` latency in seconds for a hit and a miss, from the latency models."""
    entry = topology.load_balancer.latency.mean() + topology.gateways.latency.mean()
    cache = topology.cache.latency.mean()
    hit = entry + cache
    miss = hit + topology.database.latency.mean() + cache
    return {"hit": hit, "miss": miss}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _result(
    topology: Topology,
    options: BenchOptions,
    tally: Tally,
    elapsed: float,
    wall: float,
    observed: Observed | None,
    timeline: Timeline,
) -> dict[str, Any]:
    def counted(component: str, name: str) -> int | None:
        return None if observed is None else observed.counters.get(component, {}).get(name, 0)

    def lb(name: str) -> int | None:
        return counted("load-balancer", name)

    endpoints = {}
    for name in options.mix:  # in the mix's order, whatever order requests finished in
        stats = tally.endpoints.get(name)
        if stats is None:
            continue
        summary = stats.latency.summary() | {"failed": stats.failed}
        if name == "data":
            summary["hits"] = stats.hits.summary()
            summary["misses"] = stats.misses.summary()
        endpoints[name] = summary
    data = tally.endpoints.get("data")
    # A remote topology's settings are unknown here: no seed, no prediction for it.
    remote = options.target is not None
    predicted = predicted_latencies(topology)
    total = tally.ok + tally.failed
    looked_up = tally.hits + tally.misses
    return {
        "scenario": None if remote else topology.name,
        "clock": options.clock,
        "seed": None if remote else topology.seed,
        "target": options.target,
        "concurrency": options.concurrency,
        "mix": options.mix,
        "requests": {
            "total": total,
            "ok": tally.ok,
            "failed": tally.failed,
            "by_status": dict(sorted(tally.by_status.items())),
        },
        "interrupted": tally.interrupted,
        "cut_in_flight": tally.cut,
        "time": {"simulated_s": round(elapsed, 6), "wall_s": round(wall, 3)},
        "throughput_rps": round(total / elapsed, 3) if elapsed > 0 else None,
        "endpoints": endpoints,
        "cache": {
            "hits": tally.hits,
            "misses": tally.misses,
            "hit_ratio": round(tally.hits / looked_up, 4) if looked_up else None,
            "coalesced": counted("cache", "coalesced"),
            "stale": counted("cache", "stale"),
        },
        "db_calls": counted("database", "db_calls"),
        "speedup": {
            "measured": _ratio(
                data.misses.mean_ms() if data else None, data.hits.mean_ms() if data else None
            ),
            "predicted": None if remote else _ratio(predicted["miss"], predicted["hit"]),
        },
        "gateways": dict(sorted(tally.gateways.items())),
        "worker": {"queued": tally.tasks_queued, "completed": counted("worker", "completed")},
        "load_balancer": {
            "retries": lb("retries"),
            "retry_budget_exhausted": lb("retry_budget_exhausted"),
            "ejections": lb("ejections"),
            "health_ejections": lb("health_ejections"),
            "readmissions": lb("readmissions"),
        },
        "rate_limited": tally.by_status.get("429", 0),
        "failures": [
            {"endpoint": e, "status": s, "error": err, "count": n}
            for (e, s, err), n in tally.failures.most_common()
        ],
        # What the HTML report draws.
        "settings": None if remote else describe_topology(topology),
        "latency_distribution": distribution(_latency_series(options, tally)),
        "timeline": timeline.as_dict(),
        "components": None
        if observed is None
        else {
            c: {"kind": observed.kinds[c], "statuses": observed.statuses[c]}
            for c in observed.statuses
        },
    }


def _latency_series(options: BenchOptions, tally: Tally) -> dict[str, Histogram]:
    series = {}
    for name in options.mix:
        stats = tally.endpoints.get(name)
        if stats is None:
            continue
        if name == "data":
            series |= {"data hit": stats.hits, "data miss": stats.misses}
        else:
            series[name] = stats.ok
        series[f"{name} failed"] = stats.errors
    return series


def describe_topology(topology: Topology) -> dict[str, str]:
    """The settings a reader needs to make sense of a run, one line of text each."""
    lb, gateways, cache, worker = (
        topology.load_balancer,
        topology.gateways,
        topology.cache,
        topology.worker,
    )

    def switch(on: bool, text: str) -> str:
        return text if on else "off"

    latency = {
        "load balancer": lb.latency,
        "gateways": gateways.latency,
        "cache": cache.latency,
        "database": topology.database.latency,
        "worker": worker.latency,
        "microservice": topology.microservice.latency,
    }
    strategy = lb.strategy + (f" {list(lb.weights)}" if lb.weights else "")
    rate_limits = [
        f"{where} {r.rate:g}/s (burst {r.burst})"
        for where, r in (("load balancer", lb.rate_limit), ("gateways", gateways.rate_limit))
        if r.rate > 0
    ]
    return {
        "gateways": f"{len(gateways.ports)}, balanced by {strategy}",
        "service times": ", ".join(f"{k} {v.describe()}" for k, v in latency.items()),
        "cache": f"TTL {cache.ttl:g} s, up to {cache.maxsize} entries, coalescing "
        f"{switch(cache.coalesce, 'on')}, stale-while-revalidate "
        f"{switch(cache.stale_while_revalidate > 0, f'{cache.stale_while_revalidate:g} s')}"
        + ("" if gateways.use_cache else " (not used by the gateways)"),
        "worker": f"{worker.concurrency} tasks at once, queue of {worker.queue_size}, "
        f"tasks take {worker.task_duration.describe()}",
        "health checks": switch(
            lb.health_check.interval > 0, f"every {lb.health_check.interval:g} s"
        ),
        "outlier ejection": switch(
            lb.outlier.consecutive_failures > 0,
            f"after {lb.outlier.consecutive_failures} failures in a row",
        ),
        "retries": switch(lb.retry.attempts > 0, f"{lb.retry.attempts}"),
        "rate limits": ", ".join(rate_limits) or "off",
    }
