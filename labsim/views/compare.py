"""Two runs' JSON reports side by side: every figure, its change, and regression rules.

Reads what `bench --json` writes. A figure is any number in the report, named by its path
(`endpoints.data.p99_ms`, `cache.hit_ratio`); the settings, the charts' data and the
failure messages are not figures. A rule (`--fail-if`) is `figure op change`: with a `%`
the change is relative to the first run (`data.p99_ms>+10%`), without it absolute
(`requests.failed>0`). Endpoint names and `failures` may stand first, as in `--threshold`.
Plain functions on plain data: the CLI reads the files and prints.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from ..model.schema import ConfigError, finite, read_limited

MAX_REPORT_BYTES = 64 * 1024 * 1024
# No figure of a report comes near this (a float holds every whole number up to 2**53);
# past it, a number is not a measurement, and its changes would be inf or nan.
MAX_FIGURE = 1e15
# Parts of a report that are not figures to compare.
NOT_FIGURES = frozenset(
    {"scenario", "clock", "seed", "target", "concurrency", "mix", "load", "settings",
     "latency_distribution", "timeline", "intervals", "failures", "interrupted"}
)  # fmt: skip
_RULE = re.compile(r"^\s*([A-Za-z0-9_.:\-]+)\s*(<=|>=|<|>)\s*([+-]?[0-9.]+(?:e[+-]?\d+)?)(%?)\s*$")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def read_report(path: str) -> dict[str, Any]:
    """A `bench --json` report; ConfigError naming the file if it is not one."""
    raw = read_limited(path, MAX_REPORT_BYTES, "report")
    try:
        report = json.loads(
            raw, parse_constant=_not_a_number, parse_int=_figure, parse_float=_figure
        )
    except _NotAFigure as e:
        raise ConfigError(f"{path}: {e}: not a figure `bench --json` writes") from None
    except (ValueError, RecursionError):
        raise ConfigError(f"{path}: not JSON: write it with `bench --json`") from None
    if not isinstance(report, dict) or "requests" not in report:
        raise ConfigError(f"{path}: not a labsim report: write it with `bench --json`")
    return report


def _not_a_number(text: str) -> float:
    raise ValueError(f"{text} is not a figure")


class _NotAFigure(ValueError):
    """A number in a report that no run measures: too large, or infinite."""


def _figure(text: str) -> float:
    """A number of the report, as JSON writes it; refused past MAX_FIGURE. The length is
    looked at first: a whole number of thousands of digits is slow to convert at all."""
    value = float(text) if len(text) <= 40 else math.inf
    if not abs(value) <= MAX_FIGURE:
        shown = text if len(text) <= 20 else f"{text[:12]}... ({len(text):,} characters)"
        raise _NotAFigure(f"{shown} is larger than {MAX_FIGURE:g}")
    return int(text) if text.lstrip("-").isdigit() else value


def figures(report: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every figure of `report` as (path, value), in the report's order."""
    for key, value in report.items():
        if not prefix and key in NOT_FIGURES:
            continue
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from figures(value, path + ".")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield path, float(value)


@dataclass(frozen=True)
class Row:
    figure: str
    first: float | None
    second: float | None

    @property
    def change(self) -> float | None:
        """Relative change from the first to the second; None where it has no meaning."""
        if self.first is None or self.second is None:
            return None
        if self.first == 0:  # from nothing: no ratio, but which way it went
            return 0.0 if self.second == 0 else math.copysign(math.inf, self.second)
        return (self.second - self.first) / abs(self.first)


def rows(first: dict[str, Any], second: dict[str, Any]) -> list[Row]:
    """Every figure of either report, in the first's order, then the second's new ones."""
    a, b = dict(figures(first)), dict(figures(second))
    names = list(a) + [name for name in b if name not in a]
    return [Row(name, a.get(name), b.get(name)) for name in names]


@dataclass(frozen=True)
class Rule:
    text: str
    figure: str
    op: str
    limit: float
    relative: bool

    def broken(self, row: Row) -> tuple[bool, float | None]:
        """(whether the second run breaks the rule, the change it was judged on). A figure
        one report lacks breaks it: a check that cannot be made must not pass."""
        if row.first is None or row.second is None:
            return True, None
        change = row.change * 100 if self.relative and row.change is not None else None
        if not self.relative:
            change = row.second - row.first
        return change is not None and _OPERATORS[self.op](change, self.limit), change


def parse_rule(text: str) -> Rule:
    """`figure op [+-]number[%]`; ConfigError saying what is wrong."""
    match = _RULE.match(text)
    if match is None:
        raise ConfigError(
            f"--fail-if {text!r}: not of the form 'figure op change', e.g. "
            "'data.p99_ms>+10%' or 'requests.failed>0' (op: < <= > >=)"
        )
    path, op, number, percent = match.groups()
    limit = finite(number, f"--fail-if {text!r}")
    return Rule(text.strip(), _long_form(path), op, limit, percent == "%")


def _long_form(path: str) -> str:
    if path == "failures":
        return "requests.failed"
    from ..model.load import ENDPOINTS

    return f"endpoints.{path}" if path.split(".")[0] in ENDPOINTS else path


def rule_figure(rule: Rule, table: list[Row]) -> Row:
    """The row a rule judges; ConfigError if neither report has that figure."""
    for row in table:
        if row.figure == rule.figure:
            return row
    raise ConfigError(f"--fail-if {rule.text!r}: neither report has the figure {rule.figure!r}")
