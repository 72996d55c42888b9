"""A run's report as CSV files, in the spirit of Locust's: `PREFIX_stats.csv` (a row per
endpoint, per kind of `/data` answer, and the total), `PREFIX_failures.csv` (a row per
distinct failure) and `PREFIX_history.csv` (the timeline, a row per step).

Plain functions from a `BenchResult` to CSV text; the CLI writes the files.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from ..run.result import BenchResult, Latency

STATS = ("name", "count", "failures", "mean_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms",
         "max_ms", "rps")  # fmt: skip
FAILURES = ("endpoint", "status", "error", "count")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return out.getvalue()


def stats(result: BenchResult) -> str:
    seconds = result.time.simulated_s

    def row(name: str, latency: Latency, failures: int | None) -> list[Any]:
        rps = round(latency.count / seconds, 3) if seconds > 0 else None
        figures = (latency.mean_ms, latency.min_ms, latency.p50_ms, latency.p90_ms)
        return [name, latency.count, failures, *figures, latency.p99_ms, latency.max_ms, rps]

    rows = []
    for name, endpoint in result.endpoints.items():
        rows.append(row(name, endpoint, endpoint.failed))
        for kind in ("hits", "misses"):
            part = getattr(endpoint, kind)
            if part is not None and part.count:
                rows.append(row(f"{name}.{kind}", part, None))
    total = result.requests
    rps = round(total.total / seconds, 3) if seconds > 0 else None
    rows.append(["total", total.total, total.failed, *[None] * 6, rps])
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
