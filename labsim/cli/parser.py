"""The command line's grammar: every sub-command, option, default and help text.

Parsing only: a bad option ends as one line and exit code 2 here, before anything loads.
"""

from __future__ import annotations

import argparse
from importlib import metadata
from typing import NoReturn

from ..model.load import AUTH, ENGINES
from ..run.axes import MAX_JOBS, Axis, parse_axis
from .values import (
    decimal,
    duration,
    keys,
    mix,
    non_negative_int,
    number,
    parse_url,
    port_number,
    positive_int,
    scheduler_address,
    seconds,
    timeout_seconds,
    whole,
)

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="labsim",
        description="The load-balancing and caching lab, whole, in one Python process.",
    )
    parser.add_argument("--version", action="version", version=f"labsim {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    _add_up(commands)
    _add_bench(commands)
    _add_run(commands)
    _add_sweep(commands)
    _add_compare(commands)
    _add_export(commands)
    _add_scenarios(commands)
    return parser


# sub-command -> (one line for `labsim --help`, the paragraph of `labsim COMMAND --help`)
_ABOUT = {
    "up": (
        "start the lab's topology and serve until Ctrl-C",
        "Start every component of the topology on its own port and serve until Ctrl-C or SIGTERM.",
    ),
    "bench": (
        "run the lab's load test and report",
        "Log in, send the mix through the load balancer with bounded concurrency, and "
        "report latencies, cache hits, gateways and failures.",
    ),
    "run": (
        "run scenario files and check their expectations",
        "Run each scenario (each of its variants, side by side), print every expectation "
        "with its measured value and PASS or FAIL, and a last line counting them.",
    ),
    "sweep": (
        "run a scenario at many settings and draw latency against load",
        "Run the scenario once per point of a grid of settings (each --set an axis), on "
        "the virtual clock with the same seed, and print one row per point: offered rate, "
        "throughput, p50/p99 per endpoint, dropped and refused requests, the busiest "
        "component; with queueing theory's prediction where every station on the path is "
        "M/M/c, and the saturation point.",
    ),
    "export": (
        "write a scenario as a Docker Compose file, one service per component",
        "Print a docker-compose.yml: one service per component of the scenario, each "
        "`labsim up --only <id>`, with its port, its health check on /health and the "
        "services it waits for; the image is built from labsim's own folder.",
    ),
    "scenarios": (
        "list the scenarios that ship with labsim",
        "Print the name and description of every scenario that ships with labsim. A name "
        "goes wherever a scenario file does (--scenario lab, run saturation, sweep mm1, "
        "export compose lab); a file of that name in the current folder wins.",
    ),
    "compare": (
        "compare two runs' JSON reports, figure by figure",
        "Print every figure of two `bench --json` reports side by side with its relative "
        "change; --fail-if rules make it a regression check for CI.",
    ),
}

# sub-command -> what its exit codes mean, the last paragraph of `labsim COMMAND --help`.
_EXIT_CODES = {
    "up": "exit codes: 0 stopped by Ctrl-C or SIGTERM; 2 a bad option or scenario, or a port "
    "already in use.",
    "bench": "exit codes: 0 every request got its expected status (200, or 202 for longtask) "
    "and every --threshold held; 1 any request failed, as Locust counts it, even when "
    "refusals are what the scenario shows (a --threshold adds a condition, it never excuses "
    "a failed request: to judge refusals, use `labsim run` and the scenario's expect), or a "
    "--threshold failed; 2 a bad option or scenario, or a --target that cannot be reached; "
    "130 stopped by Ctrl-C or SIGTERM, after the report of what finished.",
    "run": "exit codes: 0 every expectation of every file held (failed requests count only "
    "where an expectation says so, e.g. 'failures == 0'; a file without expect passes); 1 an "
    "expectation failed; 2 a bad option or scenario file; 130 stopped by Ctrl-C or SIGTERM, "
    "after the partial report of the run it stopped.",
    "sweep": "exit codes: 0 every point ran (failed or refused requests are figures of the "
    "table, not errors); 2 a bad option, file or setting; 130 stopped by Ctrl-C or SIGTERM: "
    "the table and the --json, --csv and --html files hold the points that finished.",
    "compare": "exit codes: 0 the second run breaks no --fail-if rule; 1 it breaks one; 2 a "
    "file or a rule is not valid.",
    "export": "exit codes: 0 written; 2 a bad scenario file.",
    "scenarios": "exit codes: 0 listed.",
}


def _command(commands: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    summary, description = _ABOUT[name]
    parser: argparse.ArgumentParser = commands.add_parser(
        name, help=summary, description=description, epilog=_EXIT_CODES[name]
    )
    return parser


def _version() -> str:
    try:
        return metadata.version("labsim")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"


def _add_port_offset(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port-offset",
        type=non_negative_int,
        metavar="N",
        help="add N to every port of the scenario, to move the whole topology off the lab's "
        "ports (8000 -> 8000+N, 5000 -> 5000+N, ...) (default: 0)",
    )


def _add_topology_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="scenario file (TOML) describing the topology, or a shipped scenario's name "
        "(python -m labsim scenarios) (default: the lab's own setup)",
    )
    parser.add_argument(
        "--gateways",
        type=positive_int,
        metavar="N",
        help="number of API gateways, 3 ports apart from the scenario's first gateway port "
        "(the lab's: 5000, 5003, 5006, ...) (default: the scenario's, 3)",
    )
    parser.add_argument(
        "--db-latency",
        type=seconds,
        metavar="S",
        help="the database's fixed service time in seconds (default: the scenario's, 2.0)",
    )
    _add_port_offset(parser)


def _add_insecure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow the guide profile's public token secret on an address other than "
        "loopback (--host, the scenario's host or [hosts]) (default: refuse)",
    )


def _add_up(commands: argparse._SubParsersAction) -> None:
    up = _command(commands, "up")
    _add_topology_options(up)
    up.add_argument(
        "--host",
        metavar="H",
        help="address every component binds to (default: 127.0.0.1)",
    )
    up.add_argument("--quiet", action="store_true", help="no log line per request (default: off)")
    up.add_argument(
        "--only",
        metavar="IDS",
        help="serve only these components of the scenario (ids such as load-balancer, "
        "gateway-5003, cache, or gateways for all of them), and reach the others at the "
        "addresses the scenario gives ([hosts]); real clock; the dashboard reads the "
        "others over HTTP (default: serve every component)",
    )
    _add_insecure(up)
    dashboard = up.add_mutually_exclusive_group()
    dashboard.add_argument(
        "--dashboard-port",
        type=port_number,
        metavar="N",
        help="port of the live dashboard, on the same address (default: 8080 plus any "
        "--port-offset, or the first port after it that no component of the scenario has)",
    )
    dashboard.add_argument(
        "--no-dashboard",
        action="store_true",
        help="serve no dashboard (default: serve it)",
    )


def _add_bench(commands: argparse._SubParsersAction) -> None:
    bench = _command(commands, "bench")
    bench.add_argument(
        "file",
        nargs="?",
        metavar="FILE",
        help="the scenario file, as --scenario FILE (default: the lab's own setup)",
    )
    _add_topology_options(bench)
    bench.add_argument(
        "--variant",
        metavar="NAME",
        help="which of the scenario's variants to run (default: none; a file with "
        "variants needs one, or `labsim run` to run them side by side)",
    )
    _add_insecure(bench)
    bench.add_argument(
        "--requests",
        type=whole,
        metavar="N",
        help="requests to send after logging in (an open load: arrivals, not with "
        "--duration) (default: the scenario's, 100)",
    )
    bench.add_argument(
        "--concurrency",
        type=whole,
        metavar="N",
        help="a closed load's clients: most requests in flight at once (default: the "
        "scenario's, 10)",
    )
    bench.add_argument(
        "--mix",
        type=mix,
        metavar="SPEC",
        help="endpoint weights, sent in the order given; endpoints: data, longtask, "
        "process, db (the database directly, not through the load balancer) "
        "(default: the scenario's, data=50,longtask=50)",
    )
    bench.add_argument(
        "--keys",
        type=keys,
        metavar="SPEC",
        help="the keys /data reads ask for, drawn by popularity from the seed: "
        "count=N,popularity=uniform|zipf|hot[,s=S][,hot_keys=P,hot_requests=P], e.g. "
        "count=1000,popularity=zipf,s=0.8 (default: the scenario's; none: one key)",
    )
    bench.add_argument(
        "--auth",
        choices=AUTH,
        help="the token each request carries: login (from /login), forged (signed with the "
        "course guide's public secret), none (default: the scenario's, login)",
    )
    bench.add_argument(
        "--seed",
        type=non_negative_int,
        metavar="N",
        help="seed for every latency draw (default: the scenario's, 1)",
    )
    _add_open_load(bench)
    _add_bench_target(bench)
    _add_engine(bench)
    _add_bench_outputs(bench)


def _add_open_load(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--rate",
        type=decimal,
        metavar="R",
        help="an open load: R new requests a second, answered or not (default: the "
        "scenario's; none: a closed load of --concurrency clients)",
    )
    bench.add_argument(
        "--arrivals",
        choices=("poisson", "constant"),
        help="with --rate: exponential (poisson) or even (constant) gaps between arrivals, "
        "seeded (default: the scenario's, poisson)",
    )
    bench.add_argument(
        "--duration",
        type=duration,
        metavar="T",
        help="with --rate: send arrivals for T (30, 30s, 2m) instead of --requests of them "
        "(default: the scenario's; none)",
    )
    bench.add_argument(
        "--max-in-flight",
        type=whole,
        metavar="N",
        help="with --rate: arrivals beyond N unanswered requests are dropped, not sent, "
        "and reported (default: the scenario's, 1000)",
    )
    bench.add_argument(
        "--interval",
        type=duration,
        metavar="T",
        help="the figures over time per interval of T (0.5, 500ms, 1s); past 1,000 "
        "intervals it doubles (default: the scenario's; 0: 50 to 100 intervals, chosen "
        "from the run's length)",
    )


def _add_engine(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="http",
        help="http: every component a real aiohttp app, requests over HTTP (what students "
        "see and touch); model: the same run as a discrete-event simulation, the same "
        "figures much faster, for capacity studies; it refuses, in one line, a scenario "
        "using what it does not yet reproduce (default: http)",
    )


def _add_bench_target(bench: argparse.ArgumentParser) -> None:
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


def _add_bench_outputs(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="a figure that must hold, as a scenario's expect: 'data.p99_ms<500', "
        "'failures==0', 'cache.hit_ratio>=0.8'; repeatable; any that fails: exit code 1 "
        "(default: none)",
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
        "--csv",
        metavar="PREFIX",
        help="also write PREFIX_stats.csv (a row per endpoint, hits, misses and the total), "
        "PREFIX_failures.csv and PREFIX_history.csv (the timeline) (default: none)",
    )
    bench.add_argument(
        "--samples",
        metavar="PATH",
        help="also write a CSV line per request to PATH, as it is answered: endpoint, "
        "scheduled and actual start, latency, status, gateway, hit (default: none)",
    )
    bench.add_argument(
        "--status-log",
        metavar="PATH",
        help="also write the course's Lab 5 status log to PATH: service -> status code -> "
        "answers, read from every component at the end of the run (in this process only), "
        "as its status_tracker writes simulator/status_log.json (default: none)",
    )
    bench.add_argument(
        "--verbose",
        action="store_true",
        help="print one line per request, as the lab's script does (default: off)",
    )


def _add_run(commands: argparse._SubParsersAction) -> None:
    run = _command(commands, "run")
    run.add_argument(
        "files", nargs="+", metavar="FILE", help="scenario files (TOML) or shipped scenarios' names"
    )
    _add_port_offset(run)
    _add_insecure(run)
    _add_engine(run)
    run.add_argument(
        "--html",
        metavar="DIR",
        help="also write an HTML page with charts per scenario file, and index.html, "
        "into DIR, made if missing (default: none)",
    )
    run.add_argument(
        "--status-log",
        metavar="DIR",
        help="also write the course's Lab 5 status log of each run into DIR, made if missing: "
        "<file>.status_log.json, or <file>.<variant>.status_log.json per variant "
        "(default: none)",
    )


def _add_export(commands: argparse._SubParsersAction) -> None:
    export = _command(commands, "export")
    export.add_argument("format", choices=("compose",), help="what to write: compose")
    export.add_argument(
        "scenario",
        nargs="?",
        metavar="SCENARIO",
        help="the scenario file, or a shipped scenario's name (default: lab, the lab's own)",
    )
    export.add_argument(
        "--insecure",
        action="store_true",
        help="export the guide profile, whose public token secret each service then serves "
        "on the network, with --insecure in every service's command (default: refuse)",
    )


def _add_scenarios(commands: argparse._SubParsersAction) -> None:
    _command(commands, "scenarios")


def _add_compare(commands: argparse._SubParsersAction) -> None:
    compare = _command(commands, "compare")
    compare.add_argument("first", metavar="A.json", help="the earlier run (bench --json)")
    compare.add_argument("second", metavar="B.json", help="the later run (bench --json)")
    compare.add_argument(
        "--fail-if",
        action="append",
        default=[],
        metavar="RULE",
        help="exit 1 if B breaks RULE: 'data.p99_ms>+10%%' (relative to A), "
        "'requests.failed>0' (absolute change); repeatable (default: none)",
    )


def _axis(text: str) -> Axis:
    try:
        return parse_axis(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--set ")) from None


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    sweep = _command(commands, "sweep")
    sweep.add_argument(
        "file", metavar="FILE", help="the scenario file (TOML), or a shipped scenario's name"
    )
    sweep.add_argument(
        "--set",
        dest="axes",
        metavar="KEY=V1,V2",
        type=_axis,
        action="append",
        required=True,
        help="a scenario key and its values, e.g. load.rate=20,40,60 or "
        "database.concurrency=1,2,4 (gateways.count=N: N gateways); several --set make "
        "a grid, the first one walking along each curve",
    )
    sweep.add_argument(
        "--variant",
        metavar="NAME",
        help="which of the file's variants to sweep (default: the first)",
    )
    _add_insecure(sweep)
    _add_engine(sweep)
    sweep.add_argument(
        "--jobs",
        type=number(int, 1, f"a whole number from 1 to {MAX_JOBS}", maximum=MAX_JOBS),
        default=1,
        metavar="N",
        help="run points in N processes at once; the output is the same (default: 1)",
    )
    sweep.add_argument(
        "--cluster",
        type=scheduler_address,
        metavar="ADDRESS",
        help="run the points on the Dask cluster whose scheduler is at ADDRESS, e.g. "
        "tcp://10.0.0.5:8786 (pip install 'labsim[cluster]' here and on each worker); "
        "the output is the same (default: none, a local pool of --jobs)",
    )
    sweep.add_argument("--json", metavar="PATH", help="also write the points as JSON to PATH")
    sweep.add_argument(
        "--csv", metavar="PATH", help="also write one CSV row per point and endpoint to PATH"
    )
    sweep.add_argument(
        "--html",
        metavar="PATH",
        help="also write one HTML page with the latency-versus-throughput curve to PATH",
    )
