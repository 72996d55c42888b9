"""A run's result as the readable text `bench` and `run` print. Touches nothing else."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from ...model.result import BenchResult, Check
from . import common
from .flows import flow_tables


def columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as aligned columns: the first to the left, the others to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        (
            "  "
            + "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        ).rstrip()
        for row in rows
    ]


def _interrupted(result: BenchResult) -> list[str]:
    if not result.interrupted:
        return []
    cut = result.cut_in_flight
    return [
        "INTERRUPTED partial report: the requests answered before Ctrl-C (or SIGTERM)"
        + (f"; {cut} in flight were cut" if cut else "")
    ]


def render_text(result: BenchResult) -> str:
    if result.target:
        where = f"target {result.target} (scenario and seed: the running topology's)"
    else:
        where = f"scenario {result.scenario}, seed {result.seed}, in-process topology"
    t = result.time
    lines = [
        f"labsim bench: clock {result.clock}, {where}",
        *([f"about       {result.description}"] if result.description else []),
        *_interrupted(result),
        f"load        {common.load(result)}",
        f"requests    {common.requests_line(result, '  ')}",
        f"time        {t.simulated_s:.3f} s on the {result.clock} clock, "
        f"{t.wall_s:.2f} s wall; throughput {result.throughput_rps or 0:.1f} req/s",
        *_send_lag(result),
        "",
    ]
    if result.endpoints or not result.flows:  # a load of flows has steps instead
        lines += columns(common.endpoint_table(result, lambda name, part: f"  {part}"))
    for title, table in flow_tables(result):
        lines += [title, *columns(table)]
    lines += ["", *_summary(result), *_status_log(result), *_failures(result)]
    return "\n".join(lines)


def _status_log(result: BenchResult) -> list[str]:
    """The status log, when the run has one: a line per service, its answers by code."""
    if not result.status:
        return []
    log = result.status
    name = max(len(service) for service in log)
    totals = {service: f"{sum(codes.values()):,}" for service, codes in log.items()}
    total = max(len(t) for t in totals.values())
    lines = ["status log  answers per service, by status code"]
    for service, codes in log.items():
        by_code = ", ".join(f"{code}: {n:,}" for code, n in codes.items()) or "none"
        lines.append(f"  {service.ljust(name)}  {totals[service].rjust(total)}  {by_code}")
    return lines


def _send_lag(result: BenchResult) -> list[str]:
    lag = common.send_lag(result)
    if lag is None:
        return []
    lines = [f"send lag    {lag}"]
    warning = common.send_lag_warning(result)
    if warning:
        lines += textwrap.wrap(
            warning, 92, initial_indent="warning     ", subsequent_indent=" " * 12
        )
    return lines


def _summary(result: BenchResult) -> list[str]:
    gateways = ", ".join(f"{g} {n}" for g, n in result.gateways.items()) or "-"
    speedup = common.speedup(result)
    lines = [
        f"cache       {common.cache(result)}"
        + "".join(f", {n} {label}" for label, n in common.cache_patterns(result))
        + f"; database calls {common.db_calls(result)}",
        *([f"speedup     cache hit vs miss: {speedup}"] if speedup else []),
        f"gateways    {gateways}",
        f"worker      {common.worker(result)}",
    ]
    lines += [f"capacity    {name}: {text}" for name, text in common.stations(result)]
    shown = [f"{n} {label}" for label, n in common.balancer(result)]
    if result.rate_limited:
        shown.append(f"{result.rate_limited} rate limited (429)")
    if shown:
        lines.append(f"resilience  {', '.join(shown)}")
    return lines


def _failures(result: BenchResult) -> list[str]:
    if not result.failures:
        return ["failures    none"]
    lines = ["failures"] + [
        f"  {f.count} x {f.endpoint} -> {common.failure_status(f.status)}: {f.error}"
        for f in result.failures
    ]
    if any("worker queue is full" in f.error for f in result.failures):
        lines += _queue_hint(result)
    return lines


def _queue_hint(result: BenchResult) -> list[str]:
    """Why tasks were refused, and how to size the worker, when its queue was full."""
    worker = (result.settings or {}).get("worker")
    held = f" (here: {worker})" if worker else ""
    text = (
        "the worker's queue is full: it runs worker.concurrency tasks at once and keeps "
        f"worker.queue_size more waiting{held}; a task sent when both are full gets 503. "
        "A burst of N tasks needs queue_size >= N - concurrency: raise them in the "
        "scenario's [worker], or send tasks more slowly (--rate)."
    )
    return textwrap.wrap(text, 92, initial_indent="why         ", subsequent_indent=" " * 12)


def render_comparison(results: Sequence[tuple[str, BenchResult]]) -> str:
    """Variants side by side, one column each, plus requests per gateway."""
    rows = [["", *(name for name, _ in results)], *common.comparison(results)]
    return "\n".join(columns(rows))


def render_checks(checks: Sequence[Check]) -> str:
    """One line per expectation: PASS or FAIL, what was expected, what was measured."""
    lines = []
    for c in checks:
        got = "not measured" if c.measured is None else f"measured {common.figure(c.measured)}"
        label = f"{c.variant}: " if c.variant else ""
        lines.append(f"  {'PASS' if c.passed else 'FAIL'}  {label}{c.text}  ({got})")
    return "\n".join(lines)
