"""`labsim sweep`: a scenario at every point of a grid, as a table, JSON, CSV and a curve."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..report.sweep import render_csv, render_html, render_text
from ..run.sweep import SweepPoint, plan, run_sweep
from .bench import running
from .common import UsageError, check_output_file, write


def run_sweep_command(args: argparse.Namespace) -> int:
    if args.cluster is not None and args.jobs != 1:
        raise UsageError("--jobs and --cluster: give one (the cluster's workers run the points)")
    outputs = {o: getattr(args, o) for o in ("json", "csv", "html") if getattr(args, o)}
    for option, path in outputs.items():
        check_output_file(option, path)
    if len({os.path.realpath(p) for p in outputs.values()}) < len(outputs):
        raise UsageError(f"{', '.join('--' + o for o in outputs)}: give each its own file")
    total = len(plan(args.file, args.axes, args.variant))  # every point checked first
    started = time.perf_counter()
    finished = 0

    def done(index: int, point: SweepPoint) -> None:
        nonlocal finished
        finished += 1
        shown = ", ".join(f"{k}={v}" for k, v in point.settings.items())
        print(f"point {finished}/{total} done: {shown}", file=sys.stderr, flush=True)

    with running():
        sweep = run_sweep(
            args.file,
            args.axes,
            variant=args.variant,
            jobs=args.jobs,
            cluster=args.cluster,
            done=done,
        )
    wall = time.perf_counter() - started
    print(render_text(sweep, wall))
    if args.json:
        write("--json", args.json, json.dumps(sweep.as_dict(), indent=2) + "\n")
    if args.csv:
        write("--csv", args.csv, render_csv(sweep))
    if args.html:
        write("--html", args.html, render_html(sweep, wall))
    return 0
