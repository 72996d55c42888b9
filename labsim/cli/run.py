"""`labsim run`: scenario files, each variant run, every expectation checked and printed."""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import re
from collections.abc import Sequence

from ..model.config import Topology
from ..model.scenario import load_scenarios
from ..run import run_scenario
from ..run.scenarios import ScenarioRun
from ..views.report.text import render_checks, render_comparison, render_text
from .bench import EXIT_INTERRUPTED, running
from .common import announce, make_folder, refuse_public_guide, topology_from_args, write


def run_scenarios_command(args: argparse.Namespace) -> int:
    # Every file is read and checked before anything runs.
    files = [(path, load_scenarios(path)) for path in args.files]
    for path, scenarios in files:
        for scenario in scenarios:
            topology = topology_from_args(args, scenario.topology)
            refuse_public_guide(topology, args.insecure, source=path)
    announce(s.topology for _, scenarios in files for s in scenarios)
    if args.html is not None:
        make_folder("--html", args.html)
    if args.status_log is not None:
        make_folder("--status-log", args.status_log)

    def prepare(topology: Topology) -> Topology:
        topology = topology_from_args(args, topology)
        if args.status_log is not None:
            topology = dataclasses.replace(topology, status_tracker=True)
        return topology

    runs: list[ScenarioRun] = []
    pages: list[tuple[str, str, str, int, int]] = []
    logs: set[str] = set()  # the status logs' file names so far
    path = ""
    try:
        for path, scenarios in files:
            with running():
                run = run_scenario(scenarios, prepare, interruptible=True, engine=args.engine)
            if run.interrupted:
                title = scenarios[len(run.results) - 1].title
                print(f"== {path}: {title}: interrupted, partial report:")
                print(render_text(run.results[-1]))
                print(tally(runs, stopped=True))
                return EXIT_INTERRUPTED
            _print_run(path, run)
            runs.append(run)
            if args.html is not None:
                pages.append(_write_page(args.html, path, run, pages))
            if args.status_log is not None:
                _write_status_logs(args.status_log, path, run, logs)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM outside a load: its start, its end
        print(f"== {path}: interrupted")
        print(tally(runs, stopped=True))
        return EXIT_INTERRUPTED
    if args.html is not None:
        from ..views.report.html import render_index

        index = os.path.join(args.html, "index.html")
        write("--html", index, lambda: render_index(pages))
        print(f"HTML reports: {index}")
    print(tally(runs))
    return 0 if all(run.passed for run in runs) else 1


def tally(runs: Sequence[ScenarioRun], stopped: bool = False) -> str:
    """The last line: expectations passed and failed, over how many scenario files (those
    run to their end, when `stopped` early)."""
    checks = [c for run in runs for c in run.checks]
    passed = sum(c.passed for c in checks)
    files = f"{len(runs)} scenario file{'s' * (len(runs) != 1)}"
    return f"{passed} passed, {len(checks) - passed} failed, {files}" + (
        "; interrupted before the rest" if stopped else ""
    )


def _print_run(path: str, run: ScenarioRun) -> None:
    first = run.scenarios[0]
    print(f"== {path}: {first.name}" + (f": {first.description}" if first.description else ""))
    if len(run.results) == 1:
        # The description is on the line above already.
        print(render_text(dataclasses.replace(run.results[0], description=None)))
    else:
        load = first.load
        if load.open:
            sent = f"open load: {load.arrivals} arrivals from {load.rate:g}/s"
        else:
            runs = "runs of its flows" if load.flows else "requests"
            sent = f"{load.requests} {runs}, concurrency {load.concurrency}"
        print(f"clock {load.clock}, seed {first.topology.seed}, {sent}, variants side by side:")
        print(render_comparison(run.named()))
    print("expectations")
    print(render_checks(run.checks) if run.checks else "  (none)")
    print()


def _write_status_logs(folder: str, path: str, run: ScenarioRun, taken: set[str]) -> None:
    """Write each variant's status log: `<file>.status_log.json`, or
    `<file>.<variant>.status_log.json` for a file with variants (names made safe and
    unique in the folder)."""
    from ..views.report.status import log_file

    stem = _safe(os.path.splitext(os.path.basename(path))[0]) or "scenario"
    for scenario, result in zip(run.scenarios, run.results, strict=False):
        if result.status is None:
            continue
        variant = scenario.variant
        name = stem if variant is None else f"{stem}.{_safe(variant) or 'variant'}"
        file = f"{name}.status_log.json"
        for n in itertools.count(2):  # two files or variants of one name
            if file not in taken:
                break
            file = f"{name}-{n}.status_log.json"
        taken.add(file)
        write("--status-log", os.path.join(folder, file), log_file(result.status))


def _safe(name: str) -> str:
    """`name` as part of a file name: letters, digits, '_', '.' and '-' only, at most 100."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.")[:100]


def _write_page(
    folder: str, path: str, run: ScenarioRun, pages: Sequence[tuple[str, str, str, int, int]]
) -> tuple[str, str, str, int, int]:
    """Write one scenario file's page; (page name, path, description, passed, checks) for
    the index."""
    from ..views.report.html import render_scenario

    stem = os.path.splitext(os.path.basename(path))[0] or "scenario"
    taken = {page for page, *_ in pages} | {"index.html"}
    page = f"{stem}.html"
    for n in itertools.count(2):  # two files of one name from different folders
        if page not in taken:
            break
        page = f"{stem}-{n}.html"
    text = render_scenario(path, run.scenarios[0].description, run.named(), run.checks)
    write("--html", os.path.join(folder, page), text)
    passed = sum(c.passed for c in run.checks)
    return page, path, run.scenarios[0].description, passed, len(run.checks)
