"""`labsim compare A.json B.json`: every figure of two runs side by side with its change,
and `--fail-if` rules that turn a regression into exit code 1 (for CI)."""

from __future__ import annotations

import argparse

from ..views.compare import Row, parse_rule, read_report, rows, rule_figure
from ..views.report.text import columns


def run_compare_command(args: argparse.Namespace) -> int:
    rules = [parse_rule(text) for text in args.fail_if]  # every mistake before any file
    first, second = read_report(args.first), read_report(args.second)
    table = rows(first, second)
    judged = [(rule, *rule.broken(rule_figure(rule, table))) for rule in rules]
    header = ("figure", args.first, args.second, "change")
    print("\n".join(columns([header, *(_cells(row) for row in table)])))
    if judged:
        print("fail-if")
        for rule, broken, change in judged:
            unit = " %" if rule.relative else ""
            seen = "not in both reports" if change is None else f"change {change:+.4g}{unit}"
            print(f"  {'FAIL' if broken else 'ok  '}  {rule.text}  ({seen})")
    return 1 if any(broken for _, broken, _ in judged) else 0


def _cells(row: Row) -> tuple[str, str, str, str]:
    change = row.change
    shown = "-" if change is None else f"{change * 100:+.1f} %"
    return (row.figure, _number(row.first), _number(row.second), shown)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"
