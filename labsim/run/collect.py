"""From what a run saw to its typed result (`result.py`): the one place figures are made."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..components.cluster import CapacityFigures
from ..core.metrics import Histogram, distribution
from ..core.timeline import Timeline
from ..model import result as r
from ..model.config import Topology
from ..model.flows import describe as describe_flows
from ..model.scenario import Fault
from .describe import describe_topology, predicted_latencies
from .flows import flow_figures, label
from .sampling import Observed
from .session import BenchOptions
from .tally import Tally


@dataclass(frozen=True)
class Seen:
    """Everything a finished run hands over to become its result."""

    topology: Topology
    options: BenchOptions
    tally: Tally
    elapsed: float  # on the run's clock
    wall: float
    observed: Observed | None  # None: the topology ran in another process
    timeline: Timeline
    faults: Sequence[Fault] = ()  # those applied during the run


def bench_result(seen: Seen) -> r.BenchResult:
    topology, options, tally = seen.topology, seen.options, seen.tally
    # A remote topology's settings are unknown here: no seed, no prediction for it.
    remote = options.target is not None
    total = tally.ok + tally.failed
    return r.BenchResult(
        scenario=None if remote else topology.name,
        description=None if remote else topology.description,
        clock=options.clock,
        seed=None if remote else topology.seed,
        target=options.target,
        concurrency=options.concurrency,
        mix={} if options.flows else options.mix,  # a load of flows sends no mix
        load=_load(options),
        requests=r.Requests(total, tally.ok, tally.failed, dict(sorted(tally.by_status.items()))),
        interrupted=tally.interrupted,
        cut_in_flight=tally.cut,
        time=r.Time(round(seen.elapsed, 6), round(seen.wall, 3)),
        throughput_rps=round(total / seen.elapsed, 3) if seen.elapsed > 0 else None,
        offered_rps=_offered(options, tally),
        dropped=tally.dropped,
        send_lag=r.Latency.of(tally.send_lag) if options.open else None,
        endpoints=_endpoints(options, tally),
        cache=_cache(seen),
        db_calls=_summed(seen, "database", "db_calls"),
        speedup=_speedup(seen),
        gateways=dict(sorted(tally.gateways.items())),
        worker=r.Worker(tally.tasks_queued, _summed(seen, "worker", "completed")),
        load_balancer=_balancer(seen),
        rate_limited=tally.by_status.get("429", 0),
        failures=[r.Failure(e, s, err, n) for (e, s, err), n in tally.failures.most_common()],
        settings=None if remote else describe_topology(topology),
        latency_distribution=distribution(_latency_series(options, tally)),
        timeline=seen.timeline.as_dict(),
        intervals=_intervals(seen),
        components=_components(seen.observed),
        status=None if seen.observed is None else seen.observed.status,
        flows=flow_figures(options.flows, tally),
    )


def _load(options: BenchOptions) -> r.LoadModel:
    flows = describe_flows(options.flows) if options.flows else None
    keys = options.keys.describe() if options.keys.on else None
    if not options.open:
        think = options.think.describe() if options.think.mean() > 0 else None
        return r.LoadModel(
            "closed", concurrency=options.concurrency, think=think, flows=flows, keys=keys
        )
    return r.LoadModel(
        "open",
        rate=options.rate,
        arrivals=options.arrivals,
        duration_s=options.duration or None,
        stages=[{"duration_s": s.duration, "rate": s.rate} for s in options.stages] or None,
        max_in_flight=options.max_in_flight,
        flows=flows,
        keys=keys,
    )


def _offered(options: BenchOptions, tally: Tally) -> float | None:
    if not options.open or tally.offered_for <= 0:
        return None
    return round(tally.arrived / tally.offered_for, 3)


def _summed(seen: Seen, kind: str, name: str) -> int | None:
    """Figure `name` of every component of `kind`, added up (None: not observed)."""
    if seen.observed is None:
        return None
    counters = seen.observed.counters
    return sum(counters.get(c, {}).get(name, 0) for c in seen.topology.graph().of_kind(kind))


def _counted(seen: Seen, component: str, name: str) -> int | None:
    if seen.observed is None:
        return None
    return seen.observed.counters.get(component, {}).get(name, 0)


def _endpoints(options: BenchOptions, tally: Tally) -> dict[str, r.Endpoint]:
    endpoints = {}
    for name in options.mix:  # in the mix's order, whatever order requests finished in
        stats = tally.endpoints.get(name)
        if stats is None:
            continue
        data = name == "data" and tally.cached
        endpoints[name] = r.Endpoint(
            **stats.ok.summary(),  # type: ignore[arg-type]
            failed=stats.failed,
            failed_latency=r.Latency.of(stats.errors),
            hits=r.Latency.of(stats.hits) if data else None,
            misses=r.Latency.of(stats.misses) if data else None,
        )
    return endpoints


def _cache(seen: Seen) -> r.Cache | None:
    tally = seen.tally
    if not tally.cached:
        return None
    looked_up = tally.hits + tally.misses
    evictions = _summed(seen, "cache", "evictions")
    graph = seen.topology.graph()
    policy = any(graph.component_of(c).settings.eviction for c in graph.of_kind("cache"))
    shown = policy or bool(evictions)  # else the report stays as it was before policies
    return r.Cache(
        hits=tally.hits,
        misses=tally.misses,
        hit_ratio=round(tally.hits / looked_up, 4) if looked_up else None,
        coalesced=_summed(seen, "cache", "coalesced"),
        stale=_summed(seen, "cache", "stale"),
        evictions=evictions if shown else None,
        evicted_misses=_summed(seen, "cache", "evicted_misses") if shown else None,
    )


def _speedup(seen: Seen) -> r.Speedup | None:
    if not seen.tally.cached or not seen.options.mix.get("data") or seen.options.flows:
        return None  # no cache, or no /data read through it: nothing to speed up
    data = seen.tally.endpoints.get("data")
    measured = _ratio(
        data.misses.mean_ms() if data else None, data.hits.mean_ms() if data else None
    )
    if seen.options.target is not None:
        return r.Speedup(measured, None)
    predicted = predicted_latencies(seen.topology)
    return r.Speedup(measured, _ratio(predicted["miss"], predicted["hit"]))


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _balancer(seen: Seen) -> r.Balancer:
    def lb(name: str) -> int | None:
        return _counted(seen, seen.topology.graph().entry_replica(), name)

    return r.Balancer(
        retries=lb("retries"),
        retry_budget_exhausted=lb("retry_budget_exhausted"),
        ejections=lb("ejections"),
        health_ejections=lb("health_ejections"),
        readmissions=lb("readmissions"),
    )


def _components(observed: Observed | None) -> dict[str, r.Component] | None:
    if observed is None:
        return None
    out = {}
    for c in observed.statuses:
        component = r.Component(observed.kinds[c], observed.statuses[c])
        if c in observed.capacity:
            component = dataclasses.replace(component, **_station(*observed.capacity[c]))
        out[c] = component
    return out


def _station(began: CapacityFigures, ended: CapacityFigures) -> dict[str, Any]:
    """A station's figures over the load: from when it `began` to when it `ended`."""
    window = ended.at_s - began.at_s
    busy = ended.busy_slot_seconds - began.busy_slot_seconds
    queued = ended.queue_length_mean * ended.span_s - began.queue_length_mean * began.span_s
    wait = ended.queue_wait.summary()  # every wait since the start: the login's one too
    return {
        "slots": ended.slots,
        "utilization": round(busy / (ended.slots * window), 4) if window > 0 else None,
        "queue_wait_ms": r.QueueWait(
            wait["mean_ms"], wait["p50_ms"], wait["p99_ms"], wait["max_ms"]
        ),
        "queue_length_mean": round(queued / window, 4) if window > 0 else None,
        "rejected": ended.rejected - began.rejected,
    }


def _intervals(seen: Seen) -> r.Intervals:
    per = seen.tally.per_interval
    widths = per.widths(seen.elapsed)
    intervals = per.intervals
    served = [i.served.summary() for i in intervals]
    return r.Intervals(
        interval_s=per.step,
        start_s=[round(i * per.step, 6) for i in range(len(intervals))],
        requests=[i.answered for i in intervals],
        failed=[i.failed for i in intervals],
        rps=[round(i.answered / w, 3) for i, w in zip(intervals, widths, strict=True)],
        p50_ms=[s["p50_ms"] for s in served],
        p99_ms=[s["p99_ms"] for s in served],
        events=[r.Event(f.at, _fault_text(f)) for f in sorted(seen.faults, key=lambda f: f.at)],
    )


def _fault_text(fault: Fault) -> str:
    """A fault in a few words: "gateway-5003 down", "database reset", "db latency 0.5 s"."""
    parts = ["reset"] if fault.reset else []
    for key, value in fault.changes.items():
        if value is True:
            parts.append(key)
        elif value is False:
            parts.append(f"{key} off")
        else:
            parts.append(f"{key} {value:g}{' s' if key in ('latency', 'jitter') else ''}")
    return f"{fault.component} {', '.join(parts)}"


def _latency_series(options: BenchOptions, tally: Tally) -> dict[str, Histogram]:
    series: dict[str, Histogram] = {}
    for flow in options.flows:  # a load of flows: a series per step, served and failed
        for name in flow.step_names():
            stats = tally.endpoints.get(label(flow.name, name))
            if stats is not None:
                series[label(flow.name, name)] = stats.ok
                series[f"{label(flow.name, name)} failed"] = stats.errors
    for name in options.mix:
        stats = tally.endpoints.get(name)
        if stats is None:
            continue
        if name == "data" and tally.cached:
            series |= {"data hit": stats.hits, "data miss": stats.misses}
        else:
            series[name] = stats.ok
        series[f"{name} failed"] = stats.errors
    return series
