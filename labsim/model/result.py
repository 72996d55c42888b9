"""The typed result of a run: every figure a report, an expectation or a comparison reads.

One `BenchResult` per run. The JSON file is `as_dict()` of it, the text and HTML reports
read its fields, expectations and the side-by-side table name its figures by path
(`cache.hit_ratio`, `endpoints.data.p99_ms`), and `figure_problem` checks such a path
against these types, so a new figure is added here, once. Plain data, no I/O.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from ..core.metrics import Histogram
from ..core.numbers import within


@dataclass(frozen=True)
class Latency:
    """One set of latencies, in milliseconds (None where there was no request)."""

    count: int
    mean_ms: float | None
    min_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, histogram: Histogram) -> Latency:
        return cls(**histogram.summary())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Endpoint(Latency):
    """An endpoint's served requests (answered with the status it expects): `count` and
    their latencies; its failed ones apart (`failed`, and their own latencies, since a
    refusal in 0 ms is no fast answer); for `data` with a cache, hits and misses apart."""

    failed: int = 0
    failed_latency: Latency | None = None
    hits: Latency | None = None
    misses: Latency | None = None


@dataclass(frozen=True)
class LoadModel:
    """How the load was sent: "closed" (`concurrency` clients, each waiting for its answer)
    or "open" (arrivals at `rate`, ramped by `stages`, at most `max_in_flight` at once)."""

    model: str
    concurrency: int | None = None
    rate: float | None = None
    arrivals: str | None = None
    duration_s: float | None = None
    stages: list[dict[str, float]] | None = field(default=None, metadata={"figures": False})
    max_in_flight: int | None = None
    think: str | None = None  # closed: each client's pause between requests, in words
    flows: str | None = None  # a load of user flows: them in words
    keys: str | None = None  # the keys reads ask for, in words (`keys.py`); None: one


@dataclass(frozen=True)
class Requests:
    total: int
    ok: int
    failed: int
    by_status: dict[str, int]


@dataclass(frozen=True)
class Time:
    simulated_s: float
    wall_s: float


@dataclass(frozen=True)
class Cache:
    hits: int
    misses: int
    hit_ratio: float | None
    coalesced: int | None  # None: counted by a topology in another process
    stale: int | None
    # Entries dropped to make room, and the misses (database reads) they cost: only where
    # a cache has an eviction policy or evicted any (None: not in the JSON at all).
    evictions: int | None = None
    evicted_misses: int | None = None


@dataclass(frozen=True)
class Speedup:
    measured: float | None
    predicted: float | None


@dataclass(frozen=True)
class Worker:
    queued: int
    completed: int | None


@dataclass(frozen=True)
class Balancer:
    retries: int | None
    retry_budget_exhausted: int | None
    ejections: int | None
    health_ejections: int | None
    readmissions: int | None


@dataclass(frozen=True)
class Failure:
    endpoint: str
    status: int | None
    error: str
    count: int


@dataclass(frozen=True)
class QueueWait:
    mean: float | None
    p50: float | None
    p99: float | None
    max: float | None


@dataclass(frozen=True)
class Component:
    """What one component served; with slots (`concurrency`), how busy they were over the
    load and how long requests waited for one."""

    kind: str
    statuses: dict[str, int]
    slots: int | None = None
    utilization: float | None = None
    queue_wait_ms: QueueWait | None = None
    queue_length_mean: float | None = None
    rejected: int | None = None


@dataclass(frozen=True)
class FlowStep:
    """One step of a user flow (`[[load.flows]]`): its requests (`count`), those served
    and failed, and the served ones' latencies in milliseconds (None: none served)."""

    request: str  # "METHOD /path", as the scenario gives it
    count: int
    served: int
    failed: int
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True)
class Flow:
    """One user flow's weight and its steps' figures, by step name, in order."""

    weight: int
    steps: dict[str, FlowStep]


@dataclass(frozen=True)
class Event:
    """Something done to the run at a moment: a scenario's fault, set or reset."""

    at_s: float
    text: str


@dataclass(frozen=True)
class Intervals:
    """The run's requests per interval of its clock, filed by when each was sent (an open
    load's: when it was due), so a stall shows in every request sent during it. Per
    interval from `start_s`: requests answered (served or failed), those that failed,
    answered per second (the last interval's cut at the run's end), and the served ones'
    p50 and p99 (None: none served). `events`: the scenario's faults, when applied."""

    interval_s: float
    start_s: list[float]
    requests: list[int]
    failed: list[int]
    rps: list[float]
    p50_ms: list[float | None]
    p99_ms: list[float | None]
    events: list[Event]


@dataclass(frozen=True)
class Check:
    """One expectation of one variant: what was expected, whether it held, what was seen."""

    variant: str
    text: str
    passed: bool
    measured: float | None


@dataclass(frozen=True)
class BenchResult:
    """Everything one run measured; `None` where a figure is unknown (a remote target)."""

    scenario: str | None
    description: str | None  # the scenario's, in words
    clock: str
    seed: int | None = field(metadata={"figures": False})
    target: str | None
    concurrency: int = field(metadata={"figures": False})
    mix: dict[str, int] = field(metadata={"figures": False})
    load: LoadModel
    requests: Requests
    interrupted: bool
    cut_in_flight: int
    time: Time
    throughput_rps: float | None
    offered_rps: float | None  # an open load's arrivals per second; None for a closed one
    dropped: int  # an open load's arrivals not sent (over max_in_flight)
    # How late an open load sent its requests against its schedule (None for a closed
    # load): the client's own delay, kept out of the latencies.
    send_lag: Latency | None
    endpoints: dict[str, Endpoint]
    cache: Cache | None  # None: the gateways use no cache (`use_cache = false`)
    db_calls: int | None
    speedup: Speedup | None  # None: no cache
    gateways: dict[str, int]
    worker: Worker
    load_balancer: Balancer
    rate_limited: int
    failures: list[Failure]
    # What the HTML report draws.
    settings: dict[str, str] | None
    latency_distribution: dict[str, Any] = field(metadata={"figures": False})
    timeline: dict[str, Any] = field(metadata={"figures": False})
    intervals: Intervals = field(metadata={"figures": False})
    components: dict[str, Component] | None
    # The course's Lab 5 status log: service -> status code -> answers, each component's
    # work routes' answers, merged over those that share a `status_name`. Only for a
    # scenario that asks for it (`status_tracker = true`, or a `status_name` given) run
    # in this process; None otherwise, and then not in the JSON at all.
    status: dict[str, dict[str, int]] | None = None
    # A load of user flows: each flow's figures, step by step; None (and then not in
    # the JSON at all) for a load of the mix.
    flows: dict[str, Flow] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON report: every field, in order; `hits` and `misses` only for `data`
        through a cache; `status` only when the scenario asked for it; `flows` only for a
        load of flows."""
        out = dataclasses.asdict(self)
        for optional in ("status", "flows"):
            if out[optional] is None:
                del out[optional]
        for key in ("evictions", "evicted_misses"):
            if out["cache"] is not None and out["cache"][key] is None:
                del out["cache"][key]
        out["load"] = {k: v for k, v in out["load"].items() if v is not None}
        for component in (out["components"] or {}).values():
            if component["slots"] is None:  # no slots: nothing to say of them
                for key in ("slots", "utilization", "queue_wait_ms", "queue_length_mean"):
                    del component[key]
                del component["rejected"]
        for stats in out["endpoints"].values():
            for part in ("hits", "misses"):
                if stats[part] is None:
                    del stats[part]
        return out

    def titled(self, scenario: str) -> BenchResult:
        """The same result, naming the scenario (or variant) it ran."""
        return dataclasses.replace(self, scenario=scenario)

    def figure(self, path: str) -> float | None:
        """The number at a dotted `path` (e.g. "cache.hit_ratio"), or None if unknown."""
        value: Any = self
        for key in path.split("."):
            if dataclasses.is_dataclass(value):
                value = getattr(value, key, None)
            elif isinstance(value, dict):
                value = value.get(key)
            else:
                return None
        return value if within(value, -math.inf, math.inf) else None


def figure_problem(path: str, endpoints: typing.Collection[str]) -> str | None:
    """Why `path` names no figure of a `BenchResult` (None when it names one)."""
    hint: Any = BenchResult
    keys = path.split(".")
    for depth, key in enumerate(keys):
        hint = _optional(hint)
        if dataclasses.is_dataclass(hint):
            fields = _figure_fields(hint)
            if key not in fields:
                return f"{key!r} is not one of {', '.join(fields)}"
            hint = fields[key]
        elif typing.get_origin(hint) is dict:
            if keys[depth - 1] == "endpoints" and key not in endpoints:
                return f"an endpoint ({', '.join(endpoints)}) comes after 'endpoints'"
            hint = typing.get_args(hint)[1]
        else:
            return "too many parts"
    hint = _optional(hint)
    if hint in (int, float):
        return None
    if dataclasses.is_dataclass(hint):
        return f"it names a section, not a number (then one of {', '.join(_figure_fields(hint))})"
    return "it names a section, not a number"


def _figure_fields(cls: Any) -> dict[str, Any]:
    """The fields of `cls` that are figures or hold figures: numbers, sections of them."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(cls)
        if f.metadata.get("figures", True) and _holds_figures(hints[f.name])
    }


def _holds_figures(hint: Any) -> bool:
    hint = _optional(hint)
    while typing.get_origin(hint) is dict:  # `status` is a table of tables
        hint = typing.get_args(hint)[1]
    return hint in (int, float) or dataclasses.is_dataclass(hint)


def _optional(hint: Any) -> Any:
    """`X` for `X | None`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint
