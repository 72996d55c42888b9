"""Turns a bench result into a readable text table or a JSON file. Touches nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_COLUMNS = ("count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms")


def write_json(result: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}".rstrip("0").rstrip(".")


def _table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    header = ("endpoint", "requests", "mean ms", "p50 ms", "p90 ms", "p99 ms", "max ms")
    cells = [header] + [
        (name, str(s["count"]), *(_ms(s[c]) for c in _COLUMNS[1:])) for name, s in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]


def _interrupted(result: dict[str, Any]) -> list[str]:
    if not result.get("interrupted"):
        return []
    cut = result["cut_in_flight"]
    return [
        "INTERRUPTED partial report: the requests answered before Ctrl-C"
        + (f"; {cut} in flight were cut" if cut else "")
    ]


def render_text(result: dict[str, Any]) -> str:
    req, t = result["requests"], result["time"]
    statuses = ", ".join(f"{k}: {v}" for k, v in result["requests"]["by_status"].items())
    if result["target"]:
        where = f"target {result['target']} (scenario and seed: the running topology's)"
    else:
        where = f"scenario {result['scenario']}, seed {result['seed']}, in-process topology"
    lines = [
        f"labsim bench: clock {result['clock']}, {where}",
        *_interrupted(result),
        f"requests    {req['total']} total, {req['ok']} ok, {req['failed']} failed  ({statuses})",
        f"time        {t['simulated_s']:.3f} s on the {result['clock']} clock, "
        f"{t['wall_s']:.2f} s wall; throughput {result['throughput_rps'] or 0:.1f} req/s",
        "",
    ]
    rows = []
    for name, stats in result["endpoints"].items():
        rows.append((name, stats))
        for part in ("hits", "misses"):
            if part in stats and stats[part]["count"]:
                rows.append((f"  {part}", stats[part]))
    lines += _table(rows)
    cache = result["cache"]
    db = "unknown (remote topology)" if result["db_calls"] is None else result["db_calls"]
    ratio = "-" if cache["hit_ratio"] is None else f"{cache['hit_ratio']:.2f}"
    speed = result["speedup"]
    measured = "-" if speed["measured"] is None else f"{speed['measured']:.1f}x"
    predicted = "-" if speed["predicted"] is None else f"{speed['predicted']:.1f}x"
    gateways = ", ".join(f"{g} {n}" for g, n in result["gateways"].items()) or "-"
    worker = result["worker"]
    completed = "unknown" if worker["completed"] is None else worker["completed"]
    patterns = []
    if cache.get("coalesced"):
        patterns.append(f"{cache['coalesced']} coalesced")
    if cache.get("stale"):
        patterns.append(f"{cache['stale']} served stale")
    lines += [
        "",
        f"cache       {cache['hits']} hits, {cache['misses']} misses, hit ratio {ratio}"
        + "".join(f", {p}" for p in patterns)
        + f"; database calls {db}",
        f"speedup     cache hit vs miss: measured {measured}, predicted {predicted}",
        f"gateways    {gateways}",
        f"worker      {worker['queued']} tasks queued, {completed} completed",
    ]
    balancer = {k: v for k, v in result.get("load_balancer", {}).items() if v}
    if balancer or result.get("rate_limited"):
        shown = [f"{v} {k.replace('_', ' ')}" for k, v in balancer.items()]
        if result.get("rate_limited"):
            shown.append(f"{result['rate_limited']} rate limited (429)")
        lines.append(f"resilience  {', '.join(shown)}")
    if result["failures"]:
        lines.append("failures")
        for f in result["failures"]:
            status = f["status"] or "no answer"
            lines.append(f"  {f['count']} x {f['endpoint']} -> {status}: {f['error']}")
    else:
        lines.append("failures    none")
    return "\n".join(lines)


def figure(result: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    """The number at `keys` (e.g. ("cache", "hit_ratio")) in a bench result, or None."""
    value: Any = result
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


# (label, figure path) rows of the side-by-side table of `labsim run`.
COMPARISON = (
    ("requests ok", "requests.ok"),
    ("requests failed", "requests.failed"),
    ("simulated s", "time.simulated_s"),
    ("throughput req/s", "throughput_rps"),
    ("data p50 ms", "endpoints.data.p50_ms"),
    ("data p99 ms", "endpoints.data.p99_ms"),
    ("data max ms", "endpoints.data.max_ms"),
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


def render_comparison(results: list[tuple[str, dict[str, Any]]]) -> str:
    """Variants side by side, one column each, plus requests per gateway."""
    rows = [("", *(name for name, _ in results))]
    for label, path in COMPARISON:
        values = [figure(r, tuple(path.split("."))) for _, r in results]
        if all(v in (None, 0) for v in values) and label not in ("requests failed",):
            continue
        rows.append((label, *("-" if v is None else f"{v:g}" for v in values)))
    gateways = sorted({g for _, r in results for g in r["gateways"]})
    for g in gateways:
        rows.append((g, *(str(r["gateways"].get(g, 0)) for _, r in results)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  "
        + "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )


def render_checks(checks: list[tuple[str, str, bool, float | None]]) -> str:
    """One line per expectation: PASS or FAIL, what was expected, what was measured."""
    lines = []
    for where, text, passed, measured in checks:
        got = "not measured" if measured is None else f"measured {measured:g}"
        label = f"{where}: " if where else ""
        lines.append(f"  {'PASS' if passed else 'FAIL'}  {label}{text}  ({got})")
    return "\n".join(lines)
