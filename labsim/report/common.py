"""The phrases and rows the text and the HTML reports share, made once."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..run.result import BenchResult

# (label, figure path) rows of the side-by-side table of variants.
COMPARISON = (
    ("requests ok", "requests.ok"),
    ("requests failed", "requests.failed"),
    ("simulated s", "time.simulated_s"),
    ("throughput req/s", "throughput_rps"),
    ("data p50 ms", "endpoints.data.p50_ms"),
    ("data p99 ms", "endpoints.data.p99_ms"),
    ("data max ms", "endpoints.data.max_ms"),
    ("process p50 ms", "endpoints.process.p50_ms"),
    ("process p99 ms", "endpoints.process.p99_ms"),
    ("cache hits", "cache.hits"),
    ("cache misses", "cache.misses"),
    ("cache hit ratio", "cache.hit_ratio"),
    ("coalesced", "cache.coalesced"),
    ("served stale", "cache.stale"),
    ("database calls", "db_calls"),
    ("retries", "load_balancer.retries"),
    ("ejections", "load_balancer.ejections"),
    ("health ejections", "load_balancer.health_ejections"),
    ("readmissions", "load_balancer.readmissions"),
    ("rate limited", "rate_limited"),
)


def comparison(results: Sequence[tuple[str, BenchResult]]) -> list[tuple[str, list[float | None]]]:
    """(label, value per variant) for every figure some variant has, then per gateway."""
    rows: list[tuple[str, list[float | None]]] = []
    for label, path in COMPARISON:
        values = [r.figure(path) for _, r in results]
        if any(v not in (None, 0) for v in values) or label == "requests failed":
            rows.append((label, values))
    for g in sorted({g for _, r in results for g in r.gateways}):
        rows.append((g, [r.gateways.get(g, 0) for _, r in results]))
    stations = {c for _, r in results for c, s in (r.components or {}).items() if s.slots}
    for c in sorted(stations):
        rows.append(
            (f"{c} utilization", [r.figure(f"components.{c}.utilization") for _, r in results])
        )
        rows.append(
            (
                f"{c} queue p99 ms",
                [r.figure(f"components.{c}.queue_wait_ms.p99") for _, r in results],
            )
        )
    return rows


def load(result: BenchResult) -> str:
    """The load model in words, with what an open load offered and dropped."""
    m = result.load
    if m.model == "closed":
        think = f", then thinking {m.think}" if m.think else ""
        return f"closed: {m.concurrency} clients, each waiting for its answer{think}"
    if m.stages:
        shape = f"from {m.rate:g}/s through {len(m.stages)} stages"
    else:
        span = f" for {m.duration_s:g} s" if m.duration_s else ""
        shape = f"at {m.rate:g}/s{span}"
    return (
        f"open: {m.arrivals} arrivals {shape}, at most {m.max_in_flight} in flight; "
        f"offered {result.offered_rps or 0:.1f} req/s, {result.dropped} dropped"
    )


def stations(result: BenchResult) -> list[tuple[str, str]]:
    """(component, its slots in words) for every component that has slots."""
    shown = []
    for name, c in (result.components or {}).items():
        if c.slots is None:
            continue
        wait = c.queue_wait_ms
        assert wait is not None
        utilization = "-" if c.utilization is None else f"{c.utilization:.2f}"
        shown.append(
            (
                name,
                f"{c.slots} slots, utilization {utilization}, queue wait mean "
                f"{_ms(wait.mean)} p50 {_ms(wait.p50)} p99 {_ms(wait.p99)} max "
                f"{_ms(wait.max)} ms, {c.rejected} rejected",
            )
        )
    return shown


def _ms(value: float | None) -> str:
    return figure(value)


def figure(value: float | None) -> str:
    """A measured figure as every report writes it: whole numbers whole, others to the
    thousandth at most (2.031 s, 49.237 req/s, 0.8), thousands and up without decimals."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3f}".rstrip("0").rstrip(".") or "0"


def statuses(result: BenchResult) -> str:
    return ", ".join(f"{k}: {v}" for k, v in result.requests.by_status.items())


def requests_line(result: BenchResult, sep: str) -> str:
    req = result.requests
    return f"{req.total} total, {req.ok} ok, {req.failed} failed{sep}({statuses(result)})"


def hit_ratio(result: BenchResult) -> str:
    ratio = result.cache.hit_ratio
    return "-" if ratio is None else f"{ratio:.2f}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def speedup(result: BenchResult) -> str:
    s = result.speedup
    return f"measured {times(s.measured)}, predicted {times(s.predicted)}"


def known(value: object) -> str:
    return "unknown" if value is None else str(value)


def db_calls(result: BenchResult) -> str:
    return "unknown (remote topology)" if result.db_calls is None else str(result.db_calls)


def worker(result: BenchResult) -> str:
    return f"{result.worker.queued} tasks queued, {known(result.worker.completed)} completed"


def cache_patterns(result: BenchResult) -> list[tuple[str, int]]:
    """(label, count) of the cache patterns that acted in the run."""
    cache = result.cache
    shown = [("coalesced", cache.coalesced), ("served stale", cache.stale)]
    return [(label, n) for label, n in shown if n]


def balancer(result: BenchResult) -> list[tuple[str, int]]:
    """(label, count) of the load balancer's patterns that acted, then rate limiting."""
    lb = result.load_balancer
    shown = [
        ("retries", lb.retries),
        ("retry budget exhausted", lb.retry_budget_exhausted),
        ("ejections", lb.ejections),
        ("health ejections", lb.health_ejections),
        ("readmissions", lb.readmissions),
    ]
    return [(label, n) for label, n in shown if n]


def failure_status(status: int | None) -> str | int:
    return status or "no answer"
