"""`labsim bench`: one run, its report on stdout, and optionally JSON and HTML files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ..components.cluster import ClusterError
from ..model.load_changes import changed_load, option_name
from ..model.result import Check
from ..model.scenario import Load, parse_expectation
from ..run import BenchError, BenchOptions, execute
from ..run.samples import SampleLog
from . import EXIT_INTERRUPTED
from .common import (
    UsageError,
    announce,
    check_output_file,
    configure_logging,
    one_scenario,
    refuse_public_guide,
    topology_from_args,
    write,
)


def run_bench_command(args: argparse.Namespace) -> int:
    if args.file is not None:
        if args.scenario is not None:
            raise UsageError(f"{args.file} and --scenario {args.scenario}: give the scenario once")
        args.scenario = args.file
    _check_bench_args(args)
    thresholds = [parse_expectation(t, "command line", "--threshold") for t in args.threshold]
    scenario = one_scenario(args.scenario, args.variant)
    if scenario.faults and args.target:
        raise UsageError(
            f"{args.scenario} schedules faults, which need the topology in this process; "
            "drop --target"
        )
    options = BenchOptions.of(
        _load(args, scenario.load),
        clock=args.clock or ("real" if args.target else scenario.load.clock),
        target=args.target,
        verbose=args.verbose,
        progress=_progress(args.verbose),
        timeout=args.timeout,
        interruptible=True,
    )
    topology = topology_from_args(args, scenario.topology)
    if args.status_log:
        topology = dataclasses.replace(topology, status_tracker=True)
    if not args.target:  # its ports are open on either clock
        refuse_public_guide(topology, args.insecure)
    announce([topology])
    with running(), _sample_log(args.samples) as samples:
        result = execute(topology, options, scenario.faults, samples, engine=args.engine)
    if args.scenario is not None or not args.target:
        result = result.titled(scenario.title)  # "stampede (with coalescing)"
    from ..views.report.text import render_checks, render_text

    print(render_text(result))
    if args.json:
        write("--json", args.json, json.dumps(result.as_dict(), indent=2) + "\n")
    if args.html:
        from ..views.report.html import render_bench

        write("--html", args.html, lambda: render_bench(result))
    if args.csv:
        from ..views.report.csv_files import files

        for path, text in files(args.csv, result).items():
            write("--csv", path, text)
    if args.status_log and result.status is not None:
        from ..views.report.status import log_file

        write("--status-log", args.status_log, log_file(result.status))
    if samples is not None and samples.error is not None:
        reason = samples.error.strerror or samples.error
        raise UsageError(f"--samples {args.samples}: cannot write: {reason} (the report is above)")
    if result.interrupted:
        return EXIT_INTERRUPTED
    checks = [Check("", t.text, *t.evaluate(result)) for t in thresholds]
    if checks:
        print("thresholds\n" + render_checks(checks))
    held = all(c.passed for c in checks)
    return 0 if result.requests.failed == 0 and held else 1


# option -> the `[load]` key it overrides
_LOAD_OPTIONS = (
    "requests",
    "concurrency",
    "mix",
    "rate",
    "arrivals",
    "duration",
    "max_in_flight",
    "auth",
    "interval",
    "keys",
)


def _load(args: argparse.Namespace, load: Load) -> Load:
    """The scenario's load with the command line's options on top, checked as
    `labsim.bench()` checks its keywords."""
    given = {key: getattr(args, key) for key in _LOAD_OPTIONS if getattr(args, key) is not None}
    return changed_load(load, given, option_name)


def _check_bench_args(args: argparse.Namespace) -> None:
    if args.target and args.clock == "virtual":
        raise UsageError(
            "--clock virtual needs the topology in this process; with --target the clock is real"
        )
    if args.target and args.status_log:
        raise UsageError(
            "--status-log reads every component of the topology, which needs it in this "
            "process; drop --target"
        )
    outputs = {
        "json": args.json,
        "html": args.html,
        "samples": args.samples,
        "status-log": args.status_log,
    }
    if args.csv is not None:
        if not args.csv or args.csv.endswith(("/", os.sep)) or os.path.isdir(args.csv):
            raise UsageError(f"--csv {args.csv!r}: give a prefix for the file names, e.g. run1")
        outputs |= {"csv": f"{args.csv}_stats.csv"}
    for option, path in outputs.items():
        check_output_file(option, path)
    seen: dict[str, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        same = seen.setdefault(os.path.abspath(path), option)
        if same != option:
            raise UsageError(f"--{same} and --{option} both name {path}; give two files")


@contextmanager
def _sample_log(path: str | None) -> Iterator[SampleLog | None]:
    """`--samples`: the file is written while the run goes, a line per request."""
    if path is None:
        yield None
        return
    try:
        file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 (closed below)
    except OSError as e:
        raise UsageError(f"--samples {path}: cannot write: {e.strerror}") from None
    log = SampleLog(file)
    try:
        yield log
    finally:
        try:
            file.close()
        except OSError as e:  # the last lines could not be flushed
            log.error = log.error or e


def _progress(verbose: bool) -> str | None:
    if verbose:
        return None  # a line per request says it already
    return "bar" if sys.stderr.isatty() else "lines"


@contextmanager
def running() -> Iterator[None]:
    """Around a run: logs to stderr (stdout is for the report), and the run's own
    problems (a target unreachable, a port taken) as one line for the user."""
    configure_logging(quiet=True, stream=sys.stderr)
    try:
        yield
    except (BenchError, ClusterError) as e:
        raise UsageError(str(e)) from None
