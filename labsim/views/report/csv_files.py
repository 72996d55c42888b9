"""A run's report as CSV files, in the spirit of Locust's: `PREFIX_stats.csv` (a row per
endpoint, per kind of `/data` answer, per step of a user flow, and the total: the served
requests and their latencies, the failed ones and theirs), `PREFIX_failures.csv` (a row
per distinct failure) and `PREFIX_history.csv` (the timeline, a row per step).

Plain functions from a `BenchResult` to CSV text; the CLI writes the files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from ...model.result import BenchResult, Latency

STATS = ("name", "served", "failed", "mean_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms",
         "max_ms", "failed_mean_ms", "failed_max_ms", "rps")  # fmt: skip
FAILURES = ("endpoint", "status", "error", "count")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return out.getvalue()


def stats(result: BenchResult) -> str:
    seconds = result.time.simulated_s

    def rps(requests: int) -> float | None:  # served and failed: requests a second
        return round(requests / seconds, 3) if seconds > 0 else None

    def row(name: str, served: Latency, failed: Latency | None) -> list[Any]:
        s = served
        figures = [s.mean_ms, s.min_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms]
        count = None if failed is None else failed.count
        failed_ms = [None, None] if failed is None else [failed.mean_ms, failed.max_ms]
        return [name, s.count, count, *figures, *failed_ms, rps(s.count + (count or 0))]

    rows = []
    for name, endpoint in result.endpoints.items():
        rows.append(row(name, endpoint, endpoint.failed_latency))
        for kind in ("hits", "misses"):
            part = getattr(endpoint, kind)
            if part is not None and part.count:
                rows.append(row(f"{name}.{kind}", part, None))
    for flow, figures in (result.flows or {}).items():  # a load of flows: a row per step
        for step, f in figures.steps.items():
            latencies = [f.mean_ms, None, f.p50_ms, f.p90_ms, f.p99_ms, f.max_ms]
            rows.append(
                [f"{flow}/{step}", f.served, f.failed, *latencies, None, None, rps(f.count)]
            )
    total = result.requests
    rows.append(["total", total.ok, total.failed, *[None] * 8, rps(total.total)])
    return _table(STATS, rows)


def failures(result: BenchResult) -> str:
    return _table(FAILURES, ((f.endpoint, f.status, f.error, f.count) for f in result.failures))


def history(result: BenchResult) -> str:
    timeline = result.timeline
    columns = [k for k, v in timeline.items() if isinstance(v, list)]
    return _table(columns, zip(*(timeline[c] for c in columns), strict=True))


def files(prefix: str, result: BenchResult) -> dict[str, str]:
    """Path -> text of each CSV file of `result`."""
    return {
        f"{prefix}_stats.csv": stats(result),
        f"{prefix}_failures.csv": failures(result),
        f"{prefix}_history.csv": history(result),
    }
