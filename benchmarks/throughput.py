"""labsim's own cost, now and at a named earlier commit, measured side by side in one run.

Prints Markdown tables (stdout); every single measurement goes to stderr.

1. Real clock: cache-hit `GET /data` through load balancer -> gateway -> cache
   (`scenarios/zero-latency.toml`), at this checkout and at the baseline commit, next to a
   bare one-hop aiohttp app answering the same JSON, at concurrency 10 and 100:
   requests/s and p50/p99/max latency. Servers and the load-generating client
   (`_client.py`) each run in their own process.
2. Virtual clock: simulated requests per wall second of `python -m labsim bench` (the
   report's own wall time), cache hits (`--mix data=100`, 10,000 requests) and the lab's
   mix (`data=50,longtask=50`, 20,000 requests), concurrency 10, now and at the baseline.
3. `python -m labsim bench --requests 100` as a whole process (now and at the baseline),
   and `--requests 100000` / `20000` (now): wall time and peak RSS, to show memory does
   not grow per request.

Parts 1 and 2 run in interleaved rounds (bare, now, baseline, bare, now, ...); each
figure is the median over the rounds, and every ratio compares figures of the same run.

    python benchmarks/throughput.py [--quick] [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import select
import shutil
import statistics
import subprocess
import sys
import tarfile
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
# The last commit before the pipes, the lean client and the collector's tuning.
BASELINE = "200ef26"
MIXES = (("data=100", 10_000), ("data=50,longtask=50", 20_000))
START_TIMEOUT = 30.0  # seconds for a server to print its URL


@dataclass(frozen=True)
class Plan:
    rounds: int = 3
    duration: float = 5.0  # seconds per throughput measurement
    small_runs: int = 5  # runs of `bench --requests 100`
    scale: float = 1.0  # of the virtual runs' request counts
    big: tuple[int, ...] = (100_000, 20_000)
    big_timeout: float = 1200.0  # seconds allowed per big bench process


QUICK = Plan(rounds=1, duration=1.5, small_runs=3, scale=0.25, big=(20_000, 5_000))


@dataclass(frozen=True)
class Version:
    name: str  # "now" or "baseline"
    label: str  # for the tables: the commit
    root: Path  # where its labsim package and scenarios are

    def env(self) -> dict[str, str]:
        """The environment that makes `import labsim` find this version's package."""
        return {**os.environ, "PYTHONPATH": str(self.root)}


@contextmanager
def baseline_checkout(rev: str) -> Iterator[Version]:
    """The tree of commit `rev`, unpacked in a temporary folder (`git archive`)."""
    label = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True
    )
    if label.returncode != 0:
        raise SystemExit(f"throughput.py: unknown baseline commit {rev!r}: {label.stderr.strip()}")
    folder = Path(tempfile.mkdtemp(prefix="labsim-baseline-"))
    try:
        archive = folder / "tree.tar"
        subprocess.run(["git", "archive", "-o", str(archive), rev], cwd=ROOT, check=True)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        version = Version("baseline", label.stdout.strip(), folder)
        _check_imports(version)
        yield version
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check_imports(version: Version) -> None:
    found = subprocess.run(
        [PY, "-c", "import labsim; print(labsim.__file__)"],
        cwd=version.root,
        env=version.env(),
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not found.startswith(str(version.root)):
        raise SystemExit(f"throughput.py: the {version.name} imports labsim from {found!r}")


@contextmanager
def server(kind: str, version: Version | None = None) -> Iterator[str]:
    """Start `_servers.py kind` in its own process; yield its URL; always stop it."""
    args = [PY, str(HERE / "_servers.py"), kind] + ([SCENARIO] if kind == "chain" else [])
    root = version.root if version else ROOT
    env = version.env() if version else None
    proc = subprocess.Popen(
        args, cwd=root, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
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


def real_clock(plan: Plan, now: Version, base: Version) -> dict[tuple[str, int], dict[str, float]]:
    """(target, concurrency) -> median of each figure over the rounds."""
    runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
    with server("bare") as bare, server("chain", now) as chain, server("chain", base) as old:
        targets = (("bare", bare), ("now", chain), ("baseline", old))
        for r in range(plan.rounds):
            for c in CONCURRENCIES:
                for kind, url in targets:
                    result = load(url, c, plan.duration, login=kind != "bare")
                    runs.setdefault((kind, c), []).append(result)
                    print(f"  round {r + 1} {kind:8} c={c:<3} {result}", file=sys.stderr)
    keys = ("rps", "p50_ms", "p99_ms", "max_ms", "errors", "client_cpu")
    return {
        key: {k: statistics.median(run[k] for run in results) for k in keys}
        for key, results in runs.items()
    }


def virtual_clock(plan: Plan, versions: tuple[Version, ...]) -> dict[tuple[str, str], float]:
    """(mix, version) -> median simulated requests per wall second over the rounds."""
    rates: dict[tuple[str, str], list[float]] = {}
    for r in range(plan.rounds):
        for mix, requests in MIXES:
            n = round(requests * plan.scale)
            for version in versions:
                args = [*bench_command(n), f"--mix={mix}", "--concurrency=10"]
                _, _, _, out = run_measured(args, plan.big_timeout, version)
                wall = re.search(r"([\d.]+) s wall", out)
                if wall is None:
                    raise RuntimeError(f"no wall time in the report of {args}: {out[-300:]!r}")
                rate = n / float(wall.group(1))
                rates.setdefault((mix, version.name), []).append(rate)
                print(f"  round {r + 1} {version.name:8} {mix}: {rate:.0f}/s", file=sys.stderr)
    return {key: statistics.median(values) for key, values in rates.items()}


def run_measured(
    args: list[str], timeout: float, version: Version
) -> tuple[float, float, int, str]:
    """Run `args` to the end: (wall s, peak RSS MB, exit code, stdout); killed at `timeout`."""
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            args, cwd=version.root, env=version.env(), stdout=out, stderr=subprocess.DEVNULL
        )
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


def whole_process(plan: Plan, now: Version, base: Version) -> list[dict[str, Any]]:
    """Wall time and peak RSS of `labsim bench` processes (virtual clock)."""
    rows = []
    for version in (now, base):
        small = []
        for _ in range(plan.small_runs):
            small.append(run_measured(bench_command(100), 60, version))
        rows.append(
            {
                "requests": 100,
                "version": version.label,
                "label": f"median of {plan.small_runs}",
                "wall": statistics.median(s[0] for s in small),
                "rss": max(s[1] for s in small),
                "codes": sorted({s[2] for s in small}),
                "summary": _summary(small[0][3]),
            }
        )
    for n in plan.big:
        wall, rss, code, out = run_measured(bench_command(n), plan.big_timeout, now)
        rows.append(
            {
                "requests": n,
                "version": now.label,
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


def render_real(plan: Plan, tp: dict[tuple[str, int], dict[str, float]], base: str) -> list[str]:
    rounds = f"median of {plan.rounds} round{'s' if plan.rounds > 1 else ''}"
    lines = [
        f"Cache-hit `GET /data`, real clock, `{SCENARIO}`, client in its own process, "
        f"{plan.duration:g} s per run, {rounds}:",
        "",
        "| server | concurrency | requests/s | p50 ms | p99 ms | max ms | / bare rps |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "bare": "bare aiohttp, 1 hop",
        "now": "labsim now: LB → gateway → cache",
        "baseline": f"labsim at {base}",
    }
    for c in CONCURRENCIES:
        for kind in ("bare", "now", "baseline"):
            f = tp[(kind, c)]
            ratio = "" if kind == "bare" else f"{f['rps'] / tp[('bare', c)]['rps']:.2f}"
            lines.append(
                f"| {names[kind]} | {c} | {f['rps']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} "
                f"| {f['max_ms']:.2f} | {ratio} |"
            )
    return lines


def render_virtual(
    plan: Plan, rates: dict[tuple[str, str], float], bare: float, base: str
) -> list[str]:
    lines = [
        "",
        "Virtual clock, `python -m labsim bench --concurrency 10`, simulated requests per "
        "second of wall time (the report's own wall time), same rounds:",
        "",
        f"| mix | requests | at {base} | now | now / {base} | now / bare rps (c=10) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for mix, requests in MIXES:
        old, new = rates[(mix, "baseline")], rates[(mix, "now")]
        lines.append(
            f"| `{mix}` | {round(requests * plan.scale):,} | {old:.0f} | {new:.0f} "
            f"| {new / old:.2f} | {new / bare:.2f} |"
        )
    return lines


def render_processes(procs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "",
        "`python -m labsim bench` as a whole process (start-up, topology, run, report), "
        "virtual clock, lab mix:",
        "",
        "| requests | version | wall s | peak RSS MB | requests line of the report | exit code |",
        "|---:|---|---:|---:|---|---:|",
    ]
    for p in procs:
        codes = ", ".join(map(str, p["codes"]))
        lines.append(
            f"| {p['requests']:,} ({p['label']}) | {p['version']} | {p['wall']:.2f} "
            f"| {p['rss']:.0f} | {p['summary']} | {codes} |"
        )
    return lines


def render_targets(
    tp: dict[tuple[str, int], dict[str, float]],
    rates: dict[tuple[str, str], float],
    procs: list[dict[str, Any]],
    base: str,
) -> list[str]:
    bare10, now10 = tp[("bare", 10)], tp[("now", 10)]
    (data, _), (lab, _) = MIXES
    data_now, data_old = rates[(data, "now")], rates[(data, "baseline")]
    lab_now, lab_old = rates[(lab, "now")], rates[(lab, "baseline")]
    small = procs[0]
    big, smaller = procs[2], procs[3]
    checks = [
        (
            f"virtual, cache hits ≥ 2 x {base}",
            f"{data_now / data_old:.2f} x",
            data_now >= 2 * data_old,
        ),
        (
            "virtual, cache hits ≥ 0.27 x bare rps",
            f"{data_now / bare10['rps']:.2f}",
            data_now >= 0.27 * bare10["rps"],
        ),
        (f"virtual, lab mix ≥ 2 x {base}", f"{lab_now / lab_old:.2f} x", lab_now >= 2 * lab_old),
        (
            "real chain ≥ 0.25 x bare rps, c=10",
            f"{now10['rps'] / bare10['rps']:.2f}",
            now10["rps"] >= 0.25 * bare10["rps"],
        ),
        ("real chain p50 ≤ 4 ms, c=10", f"{now10['p50_ms']:.2f} ms", now10["p50_ms"] <= 4),
        ("`bench --requests 100` wall ≤ 0.45 s", f"{small['wall']:.2f} s", small["wall"] <= 0.45),
        (
            f"peak RSS flat: {big['requests']:,} vs {smaller['requests']:,} requests",
            f"{big['rss']:.0f} vs {smaller['rss']:.0f} MB",
            big["rss"] <= 1.1 * smaller["rss"],
        ),
        (
            "no failed throughput requests",
            str(sum(int(f["errors"]) for f in tp.values())),
            all(f["errors"] == 0 for f in tp.values()),
        ),
    ]
    lines = ["", "| target | measured | holds |", "|---|---:|:---:|"]
    return lines + [f"| {name} | {value} | {_check(ok)} |" for name, value, ok in checks]


def _loop_name() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio's event loop"
    return f"uvloop {uvloop.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, shorter runs")
    parser.add_argument(
        "--baseline", default=BASELINE, help=f"the commit to compare with (default {BASELINE})"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    started = time.perf_counter()
    now = Version("now", "now", ROOT)
    with baseline_checkout(args.baseline) as base:
        print("real clock ...", file=sys.stderr)
        tp = real_clock(plan, now, base)
        print("virtual clock ...", file=sys.stderr)
        rates = virtual_clock(plan, (now, base))
        print("labsim bench processes ...", file=sys.stderr)
        procs = whole_process(plan, now, base)
    lines = render_real(plan, tp, base.label)
    lines += render_virtual(plan, rates, tp[("bare", 10)]["rps"], base.label)
    lines += render_processes(procs)
    lines += render_targets(tp, rates, procs, base.label)
    print("\n".join(lines))
    command = "python benchmarks/throughput.py" + (" --quick" if args.quick else "")
    print(
        f"\nMeasured with `{command}` (baseline {base.label}) in "
        f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, {_loop_name()} on the "
        "real clock (the virtual clock always runs on asyncio's own loop)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
