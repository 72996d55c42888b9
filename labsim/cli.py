"""The command line: `python -m labsim up | bench | run`.

User mistakes (a bad option value, a broken scenario, a port already taken) end as one
line on stderr naming the bad value, with exit code 2, never a traceback. This is the
only module that reads the environment (`LABSIM_SECRET`, `LABSIM_ADMIN_TOKEN`).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, TextIO
from urllib.parse import urlsplit

from .config import (
    LIMIT,
    MAX_CONCURRENCY,
    ConfigError,
    Topology,
    load_topology,
    with_overrides,
)
from .load import parse_mix
from .scenario import Scenario, load_scenarios

if TYPE_CHECKING:
    from .bench import BenchOptions
    from .cluster import Cluster
    from .scenario import Fault

# aiohttp and the components are imported only by the commands that run them, so that a
# mistyped option is answered at once.

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as a shell reports a program stopped by Ctrl-C (128 + SIGINT)


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _number(
    kind: type, minimum: float, what: str, maximum: float = LIMIT
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})") from None
        if not minimum <= value <= maximum:  # also false for NaN
            raise argparse.ArgumentTypeError(f"must be {what} (got {text!r})")
        return value

    parse.__name__ = what
    return parse


positive_int = _number(int, 1, f"a whole number from 1 to {LIMIT:,}")
concurrency = _number(
    int, 1, f"a whole number from 1 to {MAX_CONCURRENCY:,}", maximum=MAX_CONCURRENCY
)
timeout_seconds = _number(float, 0.001, f"a number of seconds from 0.001 to {LIMIT:,}")
non_negative_int = _number(int, 0, f"a whole number from 0 to {LIMIT:,}")
seconds = _number(float, 0, f"a number of seconds from 0 to {LIMIT:,}")


def _add_topology_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario file (TOML) describing the topology (default: the lab's own setup)",
    )
    parser.add_argument(
        "--gateways",
        type=positive_int,
        metavar="N",
        help="number of API gateways, on ports 5000, 5003, 5006, ... (default: the scenario's, 3)",
    )
    parser.add_argument(
        "--db-latency",
        type=seconds,
        metavar="S",
        help="the database's fixed service time in seconds (default: the scenario's, 2.0)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="labsim",
        description="The load-balancing and caching lab, whole, in one Python process.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    up = commands.add_parser(
        "up",
        help="start the lab's topology and serve until Ctrl-C",
        description="Start every component of the topology on its own port and serve "
        "until Ctrl-C or SIGTERM.",
    )
    _add_topology_options(up)
    up.add_argument(
        "--host",
        metavar="H",
        help="address every component binds to (default: 127.0.0.1)",
    )
    up.add_argument("--quiet", action="store_true", help="no log line per request (default: off)")
    dashboard = up.add_mutually_exclusive_group()
    dashboard.add_argument(
        "--dashboard-port",
        type=port_number,
        default=8080,
        metavar="N",
        help="port of the live dashboard, on the same address (default: 8080)",
    )
    dashboard.add_argument(
        "--no-dashboard",
        action="store_true",
        help="serve no dashboard (default: serve it)",
    )
    up.set_defaults(run=_run_up)

    bench = commands.add_parser(
        "bench",
        help="run the lab's load test and report",
        description="Log in, send the mix through the load balancer with bounded "
        "concurrency, and report latencies, cache hits, gateways and failures. Exit "
        "code 0 when every request got its expected status, 1 otherwise.",
    )
    _add_topology_options(bench)
    bench.add_argument(
        "--requests",
        type=positive_int,
        metavar="N",
        help="requests to send after logging in (default: the scenario's, 100)",
    )
    bench.add_argument(
        "--concurrency",
        type=concurrency,
        metavar="N",
        help="most requests in flight at once (default: the scenario's, 10)",
    )
    bench.add_argument(
        "--mix",
        type=_mix,
        metavar="SPEC",
        help="endpoint weights, sent in the order given; endpoints: data, longtask, "
        "process (default: the scenario's, data=50,longtask=50)",
    )
    bench.add_argument(
        "--seed",
        type=non_negative_int,
        metavar="N",
        help="seed for every latency draw (default: the scenario's, 1)",
    )
    bench.add_argument(
        "--clock",
        choices=("virtual", "real"),
        help="virtual: simulated time, fast and repeatable; real: wall time "
        "(default: the scenario's, virtual; real with --target)",
    )
    bench.add_argument(
        "--target",
        type=parse_url,
        metavar="URL",
        help="bench a topology already running at URL (e.g. http://127.0.0.1:8000) "
        "instead of starting one (default: start one on free ports)",
    )
    bench.add_argument(
        "--timeout",
        type=timeout_seconds,
        default=60.0,
        metavar="S",
        help="seconds each request may take on the real clock (connecting: at most 10), "
        "then it counts as failed (default: 60)",
    )
    bench.add_argument(
        "--json", metavar="PATH", help="also write the report as JSON to PATH (default: none)"
    )
    bench.add_argument(
        "--html",
        metavar="PATH",
        help="also write the report as one self-contained HTML page with charts to PATH "
        "(default: none)",
    )
    bench.add_argument(
        "--verbose",
        action="store_true",
        help="print one line per request, as the lab's script does (default: off)",
    )
    bench.set_defaults(run=_run_bench)

    run = commands.add_parser(
        "run",
        help="run scenario files and check their expectations",
        description="Run each scenario (each of its variants, side by side), print every "
        "expectation with its measured value and PASS or FAIL. Exit code 0 when all pass, "
        "1 when any fails.",
    )
    run.add_argument("files", nargs="+", metavar="FILE", help="scenario files (TOML)")
    run.add_argument(
        "--html",
        metavar="DIR",
        help="also write an HTML page with charts per scenario file, and index.html, "
        "into DIR, made if missing (default: none)",
    )
    run.set_defaults(run=_run_scenarios)
    return parser


def _mix(text: str) -> dict[str, int]:
    try:
        return parse_mix(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_url(text: str) -> str:
    url = urlsplit(text)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise argparse.ArgumentTypeError(f"must be an http:// URL (got {text!r})")
    return text


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, ConfigError) as e:
        print(f"labsim: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (`| head`): not an error to report. Python's own advice:
        # point stdout at devnull so that flushing it at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:  # Ctrl-C where no partial report can be made
        print("\nlabsim: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def topology_from_args(args: argparse.Namespace, topology: Topology | None = None) -> Topology:
    """The scenario's topology with the command line's overrides and the environment's secrets."""
    if topology is None:
        topology = load_topology(args.scenario)
    topology = with_overrides(
        topology,
        gateways=getattr(args, "gateways", None),
        db_latency=getattr(args, "db_latency", None),
        host=getattr(args, "host", None),
        seed=getattr(args, "seed", None),
    )
    for variable, key in (("LABSIM_SECRET", "secret"), ("LABSIM_ADMIN_TOKEN", "admin_token")):
        value = os.environ.get(variable)
        if value is None:
            continue
        if len(value) < 32:
            raise UsageError(f"{variable} must be at least 32 characters long (got {len(value)})")
        topology = dataclasses.replace(topology, **{key: value})
    return topology


def _one_scenario(path: str | None) -> Scenario:
    if path is None:
        return Scenario("lab", "", "built-in lab defaults", Topology())
    scenarios = load_scenarios(path)
    if len(scenarios) > 1:
        raise UsageError(
            f"{path} has {len(scenarios)} variants; run them side by side with: "
            f"python -m labsim run {path}"
        )
    return scenarios[0]


def _configure_logging(quiet: bool, stream: TextIO = sys.stdout) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S"))
    log = logging.getLogger("labsim")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def port_number(text: str) -> int:
    """A TCP port from 1 to 65535, for argparse."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535 (got {text!r})")
    return port


def _run_up(args: argparse.Namespace) -> int:
    from . import loop

    topology = topology_from_args(args)
    dashboard_port = None if args.no_dashboard else args.dashboard_port
    for component, port in topology.ports().items():
        if port == dashboard_port:
            raise UsageError(f"--dashboard-port {port}: that is {component}'s port; choose another")
    _configure_logging(args.quiet)
    return loop.run(_serve(topology, args.scenario, dashboard_port))


async def _serve(topology: Topology, scenario: str | None, dashboard_port: int | None) -> int:
    import asyncio
    import signal

    from .clock import RealClock
    from .cluster import Cluster, ClusterError

    cluster = Cluster(topology, RealClock())
    try:
        await cluster.start()
    except ClusterError as e:
        raise UsageError(str(e)) from None
    panel = None
    if dashboard_port is not None:
        from . import dashboard

        try:
            panel = await dashboard.serve(cluster, dashboard_port)
        except ClusterError as e:
            await cluster.stop()
            raise UsageError(str(e)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(_banner(cluster, scenario, panel.url if panel else None), flush=True)
    await stop.wait()
    print("labsim: stopping ...", flush=True)
    if panel is not None:  # first, so that open pages hear labsim is stopping
        await panel.stop()
    await cluster.stop()
    print("labsim: stopped", flush=True)
    return 0


def _banner(cluster: Cluster, scenario: str | None, dashboard: str | None = None) -> str:
    from urllib.parse import quote

    rows = [("component", "id", "url", "service time")]
    for c in cluster.components.values():
        rows.append((c.kind.replace("_", " "), c.id, c.url, c.service_time()))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    user = cluster.topology.users[0]
    return "\n".join(
        [
            f"labsim is up: {cluster.topology.name} "
            f"(scenario: {scenario or 'built-in lab defaults'}, clock: real)",
            "",
            *lines,
            "",
            f"Send requests to {cluster.url}, e.g.:",
            f"  curl -s -X POST {cluster.url}/login -H 'Content-Type: application/json' "
            f'-d \'{{"username": "{user.username}", "password": "<password>"}}\'',
            f"Admin token for the fault API (/admin/faults on every port): "
            f"{cluster.topology.admin_token}",
            *(
                # In the fragment, which a browser keeps to itself: never in a server's log.
                [f"Dashboard: {dashboard}/#token={quote(cluster.topology.admin_token, safe='')}"]
                if dashboard
                else []
            ),
            "Press Ctrl-C to stop.",
        ]
    )


def _run_bench(args: argparse.Namespace) -> int:
    if args.target and args.clock == "virtual":
        raise UsageError(
            "--clock virtual needs the topology in this process; with --target the clock is real"
        )
    for option in ("json", "html"):
        _check_output_file(option, getattr(args, option))
    if args.json and args.html and os.path.abspath(args.json) == os.path.abspath(args.html):
        raise UsageError(f"--json and --html both name {args.json}; give two files")
    scenario = _one_scenario(args.scenario)
    if scenario.faults and args.target:
        raise UsageError(
            f"{args.scenario} schedules faults, which need the topology in this process; "
            "drop --target"
        )
    topology = topology_from_args(args, scenario.topology)
    load = scenario.load
    from .bench import BenchOptions

    options = BenchOptions(
        requests=args.requests or load.requests,
        concurrency=args.concurrency or load.concurrency,
        mix=args.mix or dict(load.mix),
        clock=args.clock or ("real" if args.target else load.clock),
        target=args.target,
        verbose=args.verbose,
        progress=_progress(args.verbose),
        timeout=args.timeout,
        interruptible=True,
    )
    result = _bench(topology, options, scenario.faults)
    if result is None:
        return 1
    from .report import render_text, write_json

    result["scenario"] = args.scenario or result["scenario"]
    print(render_text(result))
    if args.json:
        _write("--json", args.json, lambda path: write_json(result, path))
    if args.html:
        from .html_report import render_bench

        _write("--html", args.html, lambda path: _write_text(path, render_bench(result)))
    if result["interrupted"]:
        return EXIT_INTERRUPTED
    return 0 if result["requests"]["failed"] == 0 else 1


def _progress(verbose: bool) -> str | None:
    if verbose:
        return None  # a line per request says it already
    return "bar" if sys.stderr.isatty() else "lines"


def _check_output_file(option: str, path: str | None) -> None:
    """Fail before the run, not after it, when its output could not be written."""
    if path is None:
        return
    if not path or path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise UsageError(f"--{option} {path!r}: give a file name")
    _check_folder(f"--{option} {path}", os.path.dirname(os.path.abspath(path)))


def _check_folder(what: str, folder: str) -> None:
    if not os.path.exists(folder):
        raise UsageError(f"{what}: folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise UsageError(f"{what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: no permission to write into folder {folder}")


def _write(option: str, path: str, write: Callable[[str], None]) -> None:
    try:
        write(path)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write: {e.strerror}") from None


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _bench(
    topology: Topology, options: BenchOptions, faults: Sequence[Fault]
) -> dict[str, Any] | None:
    """One bench run; None (after saying why) when the simulation stalled."""
    _configure_logging(quiet=True, stream=sys.stderr)  # stdout is for the report
    from . import loop
    from .bench import BenchError, run_bench
    from .clock import StalledError
    from .cluster import ClusterError

    try:
        return loop.run(run_bench(topology, options, faults), virtual=options.clock == "virtual")
    except (BenchError, ClusterError) as e:
        raise UsageError(str(e)) from None
    except StalledError as e:
        print(f"labsim: error: {e}", file=sys.stderr)
        return None


def _run_scenarios(args: argparse.Namespace) -> int:
    # Every file is read and checked before anything runs.
    files = [(path, load_scenarios(path)) for path in args.files]
    if args.html is not None:
        _make_folder(args.html)
    from .bench import BenchOptions
    from .report import render_checks, render_comparison, render_text

    all_passed = True
    pages: list[tuple[str, str, int, int]] = []
    for path, scenarios in files:
        results = []
        for scenario in scenarios:
            load = scenario.load
            options = BenchOptions(
                requests=load.requests,
                concurrency=load.concurrency,
                mix=dict(load.mix),
                clock=load.clock,
                interruptible=True,
            )
            result = _bench(topology_from_args(args, scenario.topology), options, scenario.faults)
            if result is None:
                return 1
            if result["interrupted"]:
                print(f"== {path}: {scenario.title}: interrupted, partial report:")
                print(render_text(result))
                return EXIT_INTERRUPTED
            result["scenario"] = scenario.title
            results.append((scenario, result))
        first = scenarios[0]
        print(f"== {path}: {first.name}" + (f": {first.description}" if first.description else ""))
        if len(results) == 1:
            print(render_text(results[0][1]))
        else:
            load = first.load
            print(
                f"clock {load.clock}, seed {first.topology.seed}, {load.requests} requests, "
                f"concurrency {load.concurrency}, variants side by side:"
            )
            print(render_comparison([(s.variant or s.name, r) for s, r in results]))
        checks = [(s.variant or "", e.text, *e.evaluate(r)) for s, r in results for e in s.expect]
        print("expectations")
        print(render_checks(checks) if checks else "  (none)")
        print()
        all_passed = all_passed and all(passed for _, _, passed, _ in checks)
        if args.html is not None:
            pages.append(_write_scenario_page(args.html, path, first, results, checks, pages))
    if args.html is not None:
        from .html_report import render_index

        index = os.path.join(args.html, "index.html")
        _write("--html", index, lambda p: _write_text(p, render_index(pages)))
        print(f"HTML reports: {index}")
    return 0 if all_passed else 1


def _make_folder(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--html {path}: is a file; give a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(f"--html {path}: cannot make the folder: {e.strerror}") from None
    _check_folder(f"--html {path}", path)


def _write_scenario_page(
    folder: str,
    path: str,
    first: Scenario,
    results: list[tuple[Scenario, dict[str, Any]]],
    checks: list[tuple[str, str, bool, float | None]],
    pages: list[tuple[str, str, int, int]],
) -> tuple[str, str, int, int]:
    """Write one scenario file's page; (page name, path, passed, checks) for the index."""
    from .html_report import render_scenario

    stem = os.path.splitext(os.path.basename(path))[0] or "scenario"
    taken = {page for page, *_ in pages} | {"index.html"}
    page = f"{stem}.html"
    for n in itertools.count(2):  # two files of one name from different folders
        if page not in taken:
            break
        page = f"{stem}-{n}.html"
    named = [(s.variant or s.name, r) for s, r in results]
    text = render_scenario(path, first.description, named, checks)
    _write("--html", os.path.join(folder, page), lambda p: _write_text(p, text))
    passed = sum(ok for _, _, ok, _ in checks)
    return page, path, passed, len(checks)
