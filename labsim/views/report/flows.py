"""A load of user flows in a report: a table per flow, a row per step. Touches nothing else.

Shared by the text report (`text.py`) and the HTML one (`html.py`); empty for a load of
the mix, so that its reports stay as they were.
"""

from __future__ import annotations

from ...model.result import BenchResult
from .common import column, decimals

HEADER = ["step", "request", "count", "served", "failed", "mean ms", "p50 ms", "p99 ms"]


def flow_tables(result: BenchResult) -> list[tuple[str, list[list[str]]]]:
    """(flow in words, its table: header first, a row per step) for each flow."""
    tables = []
    for name, flow in (result.flows or {}).items():
        steps = list(flow.steps.items())
        figures = [[s.count, s.served, s.failed, s.mean_ms, s.p50_ms, s.p99_ms] for _, s in steps]
        cols = [column([row[i] for row in figures], decimals(h)) for i, h in enumerate(HEADER[2:])]
        rows = [[step, s.request, *(c[k] for c in cols)] for k, (step, s) in enumerate(steps)]
        tables.append((f"flow {name} (weight {flow.weight})", [HEADER, *rows]))
    return tables
