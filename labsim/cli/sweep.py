"""`labsim sweep`: a scenario at every point of a grid, as a table, JSON, CSV and a curve."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ..run.sweep import SweepPoint, plan, run_sweep
from ..views.report.sweep import render_csv, render_html, render_text
from .bench import EXIT_INTERRUPTED, running
from .common import UsageError, check_output_file, refuse_public_guide, write


def run_sweep_command(args: argparse.Namespace) -> int:
    if args.cluster is not None and args.jobs != 1:
        raise UsageError("--jobs and --cluster: give one (the cluster's workers run the points)")
    outputs = {o: getattr(args, o) for o in ("json", "csv", "html") if getattr(args, o)}
    for option, path in outputs.items():
        check_output_file(option, path)
    if len({os.path.realpath(p) for p in outputs.values()}) < len(outputs):
        raise UsageError(f"{', '.join('--' + o for o in outputs)}: give each its own file")
    points = plan(args.file, args.axes, args.variant)  # every point checked first
    host_option = "--set host" if any(a.key == "host" for a in args.axes) else "host"
    for scenario in points:  # each point's ports are open on its host, as in `bench`
        refuse_public_guide(scenario.topology, args.insecure, host_option)
    if args.engine == "model":  # a point it cannot reproduce: refused before any runs
        from ..run import BenchOptions
        from ..run.model_support import unsupported

        for scenario in points:
            options = BenchOptions.of(scenario.load, clock="virtual")
            reason = unsupported(scenario.topology, options, scenario.faults)
            if reason is not None:
                raise UsageError(reason)
    total = len(points)
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
            engine=args.engine,
        )
    wall = time.perf_counter() - started
    if sweep.interrupted:
        print("labsim: interrupted: reporting the points that finished", file=sys.stderr)
        print(f"INTERRUPTED: {len(sweep.points)} of {total} points finished; these are they")
    print(render_text(sweep, wall))
    if args.json:
        write("--json", args.json, json.dumps(sweep.as_dict(), indent=2) + "\n")
    if args.csv:
        write("--csv", args.csv, render_csv(sweep))
    if args.html:
        write("--html", args.html, render_html(sweep, wall))
    return EXIT_INTERRUPTED if sweep.interrupted else 0
