"""labsim's own cost, measured side by side in one run; prints Markdown tables.

1. Cache-hit `GET /data` through load balancer -> gateway -> cache (real clock, scenario
   `scenarios/zero-latency.toml`) against a bare one-hop aiohttp app answering the same
   JSON, at concurrency 10 and 100: requests/s and p50/p99/max latency. Servers and the
   load-generating client (`_client.py`) each run in their own process; runs alternate
   bare, chain, bare, chain ... and each figure is the median over the rounds.
2. `python -m labsim bench --requests 100` (virtual clock) as a whole process: wall time,
   median of 5 runs.
3. `python -m labsim bench --requests 100000` and `--requests 20000` (virtual clock, the
   lab's mix): wall time and peak RSS of each process, to show memory does not grow per
   request.

    python benchmarks/throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PY = sys.executable
SCENARIO = "scenarios/zero-latency.toml"
CONCURRENCIES = (10, 100)
START_TIMEOUT = 30.0  # seconds for a server to print its URL


@dataclass(frozen=True)
class Plan:
    rounds: int = 3
    duration: float = 5.0  # seconds per throughput measurement
    small_runs: int = 5  # runs of `bench --requests 100`
    big: tuple[int, ...] = (100_000, 20_000)
    big_timeout: float = 1200.0  # seconds allowed per big bench process


QUICK = Plan(rounds=1, duration=1.5, small_runs=3, big=(20_000, 5_000), big_timeout=300.0)


@contextmanager
def server(kind: str) -> Iterator[str]:
    """Start `_servers.py kind` in its own process; yield its URL; always stop it."""
    args = [PY, str(HERE / "_servers.py"), kind] + ([SCENARIO] if kind == "chain" else [])
    proc = subprocess.Popen(
        args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        ready, _, _ = select.select([proc.stdout], [], [], START_TIMEOUT)
        url = proc.stdout.readline().strip() if ready else ""
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"{kind} server did not start (got {url!r})")
        yield url
    finally:
        proc.stdin.close()  # the server stops on EOF; SIGTERM in case it did not notice
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def load(url: str, concurrency: int, duration: float, login: bool) -> dict[str, Any]:
    """One measurement by a fresh `_client.py` process."""
    args = [PY, str(HERE / "_client.py"), url, f"--concurrency={concurrency}"]
    args += [f"--duration={duration}"] + (["--login"] if login else [])
    done = subprocess.run(args, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"client failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def throughput(plan: Plan) -> dict[tuple[str, int], dict[str, float]]:
    """(target, concurrency) -> median of each figure over the rounds."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with server("bare") as bare, server("chain") as chain:
        for r in range(plan.rounds):
            for c in CONCURRENCIES:
                for kind, url in (("bare", bare), ("chain", chain)):
                    result = load(url, c, plan.duration, login=kind == "chain")
                    runs.setdefault((kind, c), []).append(result)
                    print(f"  round {r + 1} {kind:5} c={c:<3} {result}", file=sys.stderr)
    keys = ("rps", "p50_ms", "p99_ms", "max_ms", "errors", "client_cpu")
    return {
        key: {k: statistics.median(run[k] for run in results) for k in keys}
        for key, results in runs.items()
    }


def run_measured(args: list[str], timeout: float) -> tuple[float, float, int, str]:
    """Run `args` to the end: (wall s, peak RSS MB, exit code, stdout); killed at `timeout`."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=subprocess.DEVNULL)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max of all).
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            killer.cancel()
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        return wall, usage.ru_maxrss / 1024, proc.returncode, out.read().decode(errors="replace")


def bench_command(requests: int) -> list[str]:
    return [PY, "-m", "labsim", "bench", f"--requests={requests}"]


def whole_process(plan: Plan) -> list[dict[str, Any]]:
    """Wall time and peak RSS of `labsim bench` processes (virtual clock)."""
    rows = []
    small = [run_measured(bench_command(100), 60) for _ in range(plan.small_runs)]
    rows.append(
        {
            "requests": 100,
            "label": f"median of {plan.small_runs}",
            "wall": statistics.median(s[0] for s in small),
            "rss": max(s[1] for s in small),
            "codes": sorted({s[2] for s in small}),
            "summary": _summary(small[0][3]),
        }
    )
    for n in plan.big:
        wall, rss, code, out = run_measured(bench_command(n), plan.big_timeout)
        rows.append(
            {
                "requests": n,
                "label": "1 run",
                "wall": wall,
                "rss": rss,
                "codes": [code],
                "summary": _summary(out),
            }
        )
    for row in rows:
        print(f"  bench --requests {row['requests']}: {row}", file=sys.stderr)
    return rows


def _summary(report: str) -> str:
    """The report's `requests` line: 'N total, N ok, N failed'."""
    match = re.search(r"^requests\s+(.*?)\s*(\(|$)", report, re.MULTILINE)
    return match.group(1) if match else "no report"


def _check(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def render(
    plan: Plan, tp: dict[tuple[str, int], dict[str, float]], procs: list[dict[str, Any]]
) -> str:
    rounds = f"median of {plan.rounds} round{'s' if plan.rounds > 1 else ''}"
    lines = [
        f"Cache-hit `GET /data`, real clock, `{SCENARIO}`, client in its own process, "
        f"{plan.duration:g} s per run, {rounds}:",
        "",
        "| server | concurrency | requests/s | p50 ms | p99 ms | max ms | chain / bare rps |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"bare": "bare aiohttp, 1 hop", "chain": "labsim: LB → gateway → cache"}
    for c in CONCURRENCIES:
        for kind in ("bare", "chain"):
            f = tp[(kind, c)]
            ratio = (
                f"{tp[('chain', c)]['rps'] / tp[('bare', c)]['rps']:.2f}" if kind == "chain" else ""
            )
            lines.append(
                f"| {names[kind]} | {c} | {f['rps']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} "
                f"| {f['max_ms']:.2f} | {ratio} |"
            )
    lines += [
        "",
        "`python -m labsim bench` as a whole process (start-up, topology, run, report), "
        "virtual clock, lab mix:",
        "",
        "| requests | wall s | peak RSS MB | requests line of the report | exit code |",
        "|---:|---:|---:|---|---:|",
    ]
    for p in procs:
        codes = ", ".join(map(str, p["codes"]))
        lines.append(
            f"| {p['requests']} ({p['label']}) | {p['wall']:.2f} | {p['rss']:.0f} "
            f"| {p['summary']} | {codes} |"
        )
    small, big = procs[0], procs[1]
    c10, c100 = tp[("chain", 10)], tp[("chain", 100)]
    checks = [
        *(
            (
                f"chain rps ≥ 1/5 of bare, c={c}",
                f"{tp[('chain', c)]['rps'] / tp[('bare', c)]['rps']:.2f}",
                tp[("chain", c)]["rps"] * 5 >= tp[("bare", c)]["rps"],
            )
            for c in CONCURRENCIES
        ),
        ("chain p50 < 5 ms, c=10", f"{c10['p50_ms']:.2f} ms", c10["p50_ms"] < 5),
        (
            "chain max < 10 x p99, c=100",
            f"max = {c100['max_ms'] / c100['p99_ms']:.1f} x p99",
            c100["max_ms"] < 10 * c100["p99_ms"],
        ),
        ("`bench --requests 100` wall < 1 s", f"{small['wall']:.2f} s", small["wall"] < 1),
        (
            f"`bench --requests {big['requests']}` RSS < 200 MB",
            f"{big['rss']:.0f} MB",
            big["rss"] < 200,
        ),
        (
            "no failed throughput requests",
            str(sum(int(f["errors"]) for f in tp.values())),
            all(f["errors"] == 0 for f in tp.values()),
        ),
    ]
    lines += ["", "| target | measured | holds |", "|---|---:|:---:|"]
    lines += [f"| {name} | {value} | {_check(ok)} |" for name, value, ok in checks]
    return "\n".join(lines)


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio's event loop"
    return f"uvloop {uvloop.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, shorter runs")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    started = time.perf_counter()
    print("measuring throughput ...", file=sys.stderr)
    tp = throughput(plan)
    print("measuring labsim bench processes ...", file=sys.stderr)
    procs = whole_process(plan)
    command = "python benchmarks/throughput.py" + (" --quick" if args.quick else "")
    print(render(plan, tp, procs))
    print(
        f"\nMeasured with `{command}` in {time.perf_counter() - started:.0f} s on "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"aiohttp {aiohttp.__version__}, {_loop_name()} (real clock; the virtual clock "
        "always runs on asyncio's own loop)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
