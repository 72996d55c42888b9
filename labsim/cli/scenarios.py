"""`labsim scenarios`: the shipped scenarios, a name and a description a line."""

from __future__ import annotations

import argparse

from ..model import shipped


def run_scenarios_list(args: argparse.Namespace) -> int:
    rows = shipped.descriptions()
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name.ljust(width)}  {description}".rstrip())
    return 0
