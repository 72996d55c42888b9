"""The phrases and rows the text and the HTML reports share, made once."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ...model.result import BenchResult, Latency

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


def comparison(results: Sequence[tuple[str, BenchResult]]) -> list[list[str]]:
    """The rows of the side-by-side table, a figure each (label, then its value per
    variant, written one way per row): every figure some variant has, then per gateway."""
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
    return [[label, *column(values, decimals(label))] for label, values in rows]


def endpoint_table(result: BenchResult, part: Callable[[str, str], str]) -> list[list[str]]:
    """The table of endpoints, header first: each one's served requests and their
    latencies, its failed requests apart (with their own latencies when any failed), and
    under `data` its hits and misses, named by `part(endpoint, "hits")`."""
    failures = any(e.failed for e in result.endpoints.values())
    header = ["endpoint", "served", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms", "failed"]
    if failures:
        header += ["failed mean ms", "failed max ms"]

    def figures(s: Latency) -> list[float | None]:
        return [s.count, s.mean_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms]

    rows: list[tuple[str, list[float | None], bool]] = []  # name, figures, a part of one
    for name, e in result.endpoints.items():
        bad = e.failed_latency
        apart = [bad.mean_ms, bad.max_ms] if bad is not None else [None, None]
        rows.append((name, [*figures(e), e.failed, *(apart if failures else [])], False))
        for kind, latency in (("hits", e.hits), ("misses", e.misses)):
            if latency is not None and latency.count:
                rows.append((part(name, kind), figures(latency), True))
    columns = [
        column([row[i] if i < len(row) else None for _, row, _ in rows], decimals(h))
        for i, h in enumerate(header[1:])
    ]
    # A part (hits, misses) has no failures of its own: those cells stay empty, not "-".
    return [header] + [
        [name, *(c[k] if i < len(row) or not sub else "" for i, c in enumerate(columns))]
        for k, (name, row, sub) in enumerate(rows)
    ]


# Decimals a table gives a figure, by the unit its name ends with (else 3).
_DECIMALS = (("ms", 1), ("/s", 1), ("rps", 1), ("ratio", 3), ("utilization", 3), (" s", 3))


def decimals(name: str) -> int:
    """How many decimals a table writes the figure `name` (a column's or row's) with."""
    return next((n for unit, n in _DECIMALS if name.endswith(unit)), 3)


def column(values: Sequence[float | None], places: int) -> list[str]:
    """One column (or row) of a table's figures, written one way: whole numbers whole
    when all are, else each with `places` decimals; thousands with commas; "-" unknown."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    whole = all(float(v).is_integer() for v in finite)
    return [_cell(v, 0 if whole else places) for v in values]


def _cell(value: float | None, places: int) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):
        return str(value)
    return f"{value:,.{places}f}"


def load(result: BenchResult) -> str:
    """The load model in words, with what an open load offered and dropped, and the keys
    its reads ask for where it has some."""
    keys = result.load.keys
    return _load(result) + (f"; reads of {keys}" if keys else "")


def _load(result: BenchResult) -> str:
    m = result.load
    if m.model == "closed" and m.flows:
        users = f"{m.concurrency} user{'s' * (m.concurrency != 1)}"
        return f"closed: {users}, each running one flow after another: {m.flows}"
    if m.model == "closed":
        think = f", then thinking {m.think}" if m.think else ""
        clients = f"{m.concurrency} client{'s' * (m.concurrency != 1)}"
        return f"closed: {clients}, each waiting for its answer{think}"
    if m.stages:
        shape = f"from {m.rate:g}/s through {len(m.stages)} stages"
    else:
        span = f" for {m.duration_s:g} s" if m.duration_s else ""
        shape = f"at {m.rate:g}/s{span}"
    flows = f", each running one flow: {m.flows}" if m.flows else ""
    return (
        f"open: {m.arrivals} arrivals {shape}{flows}, at most {m.max_in_flight} in flight; "
        f"offered {result.offered_rps or 0:.1f} {'runs' if m.flows else 'req'}/s, "
        f"{result.dropped} dropped"
    )


# A p99 send lag past this many ms is worth a warning: the load no longer keeps its
# schedule, its arrivals bunch up, and the system gets another load than the one asked.
SEND_LAG_MATERIAL_MS = 10.0


def send_lag(result: BenchResult) -> str | None:
    """How late an open load sent its requests, in words; None for a closed load, and on
    the virtual clock, which sends on time."""
    lag = result.send_lag
    if lag is None or (result.clock == "virtual" and not lag.max_ms):
        return None
    p50, p99, top = column([lag.p50_ms, lag.p99_ms, lag.max_ms], decimals("ms"))
    return f"p50 {p50} ms, p99 {p99} ms, max {top} ms behind the schedule"


def send_lag_warning(result: BenchResult) -> str | None:
    """Why the send lag matters, when it does."""
    lag = result.send_lag
    if lag is None or lag.p99_ms is None or lag.p99_ms <= SEND_LAG_MATERIAL_MS:
        return None
    return (
        f"the client could not keep to the schedule (p99 send lag {lag.p99_ms:,.1f} ms): its "
        "requests went out late and bunched, so the system got another load than the one "
        "asked for; the latencies count from each send (the lag is the client's, not the "
        "system's)"
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
        mean, p50, p99, top = column([wait.mean, wait.p50, wait.p99, wait.max], decimals("ms"))
        shown.append(
            (
                name,
                f"{c.slots} slot{'s' * (c.slots != 1)}, utilization {utilization}, queue wait mean "
                f"{mean} p50 {p50} p99 {p99} max {top} ms, {c.rejected} rejected",
            )
        )
    return shown


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


def cache(result: BenchResult) -> str:
    """What the cache did, or that there was none to do anything."""
    c = result.cache
    if c is None:
        return "none: every /data reads the database (gateways.use_cache = false)"
    if not result.mix.get("data") and not (c.hits or c.misses):  # flows read it too
        return "not read: this load sends no /data"
    ratio = "-" if c.hit_ratio is None else f"{c.hit_ratio:.2f}"
    return f"{c.hits} hits, {c.misses} misses, hit ratio {ratio}"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def speedup(result: BenchResult) -> str | None:
    """A cache hit's speedup over a miss in words; None without a cache."""
    s = result.speedup
    if s is None:
        return None
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
    if cache is None:
        return []
    shown = [("coalesced", cache.coalesced), ("served stale", cache.stale)]
    acted = [(label, n) for label, n in shown if n]
    if cache.evictions is not None:  # a policy set, or evictions: shown even at 0
        acted.append(("evictions", cache.evictions))
        acted.append(("database reads after eviction", cache.evicted_misses or 0))
    return acted


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
