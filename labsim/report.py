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


def render_text(result: dict[str, Any]) -> str:
    req, t = result["requests"], result["time"]
    statuses = ", ".join(f"{k}: {v}" for k, v in result["requests"]["by_status"].items())
    where = f"target {result['target']}" if result["target"] else "in-process topology"
    lines = [
        f"labsim bench: scenario {result['scenario']}, clock {result['clock']}, "
        f"seed {result['seed']}, {where}",
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
    lines += [
        "",
        f"cache       {cache['hits']} hits, {cache['misses']} misses, hit ratio {ratio}; "
        f"database calls {db}",
        f"speedup     cache hit vs miss: measured {measured}, predicted {predicted}",
        f"gateways    {gateways}",
        f"worker      {worker['queued']} tasks queued, {completed} completed",
    ]
    if result["failures"]:
        lines.append("failures")
        for f in result["failures"]:
            lines.append(f"  {f['count']} x {f['endpoint']} -> {f['status']}: {f['error']}")
    else:
        lines.append("failures    none")
    return "\n".join(lines)
