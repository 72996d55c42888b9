"""The cost of a bigger graph: a 4-tier topology of 50 replicas a tier beside the lab, in one run.

Prints Markdown tables (stdout); every single measurement goes to stderr.

The generated topology (in a temporary folder; `--replicas N` changes the 50):

    edge (load balancer) -> api x50 (gateways) -> svc-lb (load balancer)
        -> svc-00 .. svc-49 (services) -> cache-00 .. cache-49 -> db-00 .. db-49

Four tiers of 50 replicas (gateways, services, caches, databases: 200) and the two load
balancers in front of the two tiers that take requests: 202 components. Each service reads
through its own cache in front of its own database (a cell: `svc-07` -> `cache-07` ->
`db-07`), so a cache hit travels client -> edge -> api -> svc-lb -> svc -> cache: 5 HTTP
exchanges, where the lab's hit (load balancer -> gateway -> cache) takes 3.

Measured, in interleaved rounds, median over the rounds:

1. Start-up: `python -m labsim up --no-dashboard --quiet` from spawn until it prints
   "labsim is up" (every component listening), then until every component's port has
   answered `GET /health` (all of them, one after another), then SIGINT until it exits;
   for the 202-component scenario and for the lab (`--port-offset`). And inside a process:
   import, loading the scenario, and `Cluster.start()` (real clock, free ports).
2. `python -m labsim bench FILE --concurrency 10 --mix data=1 --json` (virtual clock) at
   two request counts per topology: the report's own wall time (`time.wall_s`: session
   start-up, run and stop), simulated requests per wall second, and the wall cost of one
   more request (the difference of the two runs over the difference of their requests,
   which leaves start-up out), per request and per HTTP exchange. The lab, the same 4-tier
   layout with one replica a tier (same path, 6 components: what the path costs) and with
   50 (what the graph's size adds).
3. Peak RSS of each bench process (`os.wait4`, that child's own).
4. With `--profile`: the 4-tier bench under cProfile, top 15 functions by cumulative time.

    python benchmarks/topology_scale.py [--quick] [--replicas N] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pstats
import re
import select
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from throughput import PY, Version, run_measured

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
FIRST_PORT = 20000  # the 4-tier scenario's ports: a block from here (below the ephemeral range)
LAB_OFFSET = 17000  # the lab under `up`: 8000 -> 25000, 5000 -> 22000 (clear of the block)
LAB_PORTS = (8000, 5000, 5001, 5002, 5003, 5004, 5005, 5006)  # load balancer ... gateways
UP_TIMEOUT = 60.0  # seconds for `up` to print that it is up
BENCH_TIMEOUT = 900.0  # seconds per bench process
# HTTP exchanges of one cache hit, the client's included (each one a request a component serves).
HIT_HOPS = {"lab": 3, "tiers": 5, "direct": 4}
START_GOAL_S = 5.0
COST_GOAL = 4 / 3  # a request through 4 tiers against the lab's 3-hop cache hit


@dataclass(frozen=True)
class Plan:
    rounds: int = 3
    ups: int = 1  # `up` start-ups of each topology per round
    # Request counts of the two runs of each topology. The smaller one is past the warm-up
    # (the 4-hop layout's 50 gateways open a connection to each of 50 services, 2,500 in
    # its first ~3,000 requests), so the difference is the steady cost of a request.
    lab: tuple[int, int] = (4000, 12000)
    profiled: int = 200  # requests of the profiled run


QUICK = Plan(rounds=1, lab=(3000, 6000), profiled=100)


# ---------------------------------------------------------------------------- the scenario


def scenario_text(replicas: int, first_port: int, db_latency: float = 0.05) -> str:
    """The 4-tier scenario: `replicas` gateways, services, caches and databases, a load
    balancer in front of the gateways and one in front of the services; ports from
    `first_port` on, one each (4 * replicas + 2)."""
    cells = [f"{i:02d}" for i in range(replicas)]
    port = iter(range(first_port, first_port + 4 * replicas + 2))
    edge = next(port)
    gateways = [next(port) for _ in cells]
    services = ", ".join(f'"svc-{c}"' for c in cells)
    lines = [
        f'name = "four-tiers-{replicas}"',
        f'description = "4 tiers of {replicas} replicas: gateways, services, caches, databases"',
        "seed = 1",
        "",
        "[load]",
        "requests = 200",
        "concurrency = 10",
        "mix = { data = 1 }",
        'clock = "virtual"',
        "",
        "[components.edge]",
        'kind = "load_balancer"',
        f"port = {edge}",
        'backends = "api"',
        "",
        "[components.api]",
        'kind = "gateway"',
        f"ports = [{', '.join(map(str, gateways))}]",
        'endpoints."GET /data" = [{ call = "svc-lb" }]',
        "",
        "[components.svc-lb]",
        'kind = "load_balancer"',
        f"port = {next(port)}",
        f"backends = [{services}]",
        "",
    ]
    for c in cells:
        source = f'{{ call = "db-{c}", path = "/db" }}'
        read = f'read_through = "cache-{c}", key = "k", source = {source}'
        lines += [
            f"[components.svc-{c}]",
            'kind = "service"',
            f"port = {next(port)}",
            f'endpoints."GET /data" = [{{ {read} }}]',
            "",
        ]
    for c in cells:
        lines += [f"[components.cache-{c}]", 'kind = "cache"', f"port = {next(port)}", ""]
    for c in cells:
        lines += [
            f"[components.db-{c}]",
            'kind = "database"',
            f"port = {next(port)}",
            f"latency = {db_latency}",
            "",
        ]
    return "\n".join(lines)


def direct_text(replicas: int, first_port: int) -> str:
    """The shortest 4-tier path, for the issue's "4 tiers against the lab's 3 hops": the
    gateways call the services' replicas in turn themselves (no second load balancer), so
    a hit takes 4 exchanges."""
    text = shared_text(replicas, first_port)
    text = text.replace('[{ call = "svc-lb" }]', '[{ call = "svc" }]')
    return re.sub(r"\[components\.svc-lb\]\n[^\[]*", "", text)


def shared_text(replicas: int, first_port: int) -> str:
    """For comparison, the same path with fewer named components: `replicas` gateways and
    `replicas` services, each tier one component with `ports`, reading through one cache in
    front of one database (2 * replicas + 4 components, 6 named)."""
    gateways = range(first_port + 1, first_port + 1 + replicas)
    services = range(gateways[-1] + 2, gateways[-1] + 2 + replicas)
    read = 'read_through = "cache", key = "k", source = { call = "db", path = "/db" }'
    return "\n".join(
        [
            f'name = "shared-{replicas}"',
            "seed = 1",
            "",
            "[components.edge]",
            'kind = "load_balancer"',
            f"port = {first_port}",
            'backends = "api"',
            "",
            "[components.api]",
            'kind = "gateway"',
            f"ports = [{', '.join(map(str, gateways))}]",
            'endpoints."GET /data" = [{ call = "svc-lb" }]',
            "",
            "[components.svc-lb]",
            'kind = "load_balancer"',
            f"port = {gateways[-1] + 1}",
            'backends = "svc"',
            "",
            "[components.svc]",
            'kind = "service"',
            f"ports = [{', '.join(map(str, services))}]",
            f'endpoints."GET /data" = [{{ {read} }}]',
            "",
            "[components.cache]",
            'kind = "cache"',
            f"port = {services[-1] + 1}",
            "",
            "[components.db]",
            'kind = "database"',
            f"port = {services[-1] + 2}",
            "latency = 0.05",
            "",
        ]
    )


def is_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def free_block(count: int, first: int, avoid: set[int]) -> int:
    """The first port from `first` (in steps of 1000) of `count` free ones in a row."""
    for start in range(first, 32768 - count, 1000):
        block = range(start, start + count)
        if not avoid & set(block) and all(is_free(p) for p in block):
            return start
    raise SystemExit("topology_scale.py: no block of free ports below 32768")


def lab_offset(avoid: set[int]) -> int:
    for offset in range(LAB_OFFSET, 27000, 100):
        ports = {p + offset for p in LAB_PORTS}
        if not ports & avoid and all(is_free(p) for p in ports):
            return offset
    raise SystemExit("topology_scale.py: no free --port-offset for the lab")


# ---------------------------------------------------------------------------- start-up


def health(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=5) as reply:
            return reply.status == 200
    except OSError:
        return False


def time_up(args: list[str], ports: list[int]) -> dict[str, float]:
    """`labsim up` from spawn: seconds until it says it is up, until every port in `ports`
    answered /health, and until it exited after SIGINT."""
    cmd = [PY, "-m", "labsim", "up", "--no-dashboard", "--quiet", *args]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=Version("now", "now", ROOT).env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        up = _wait_for_banner(proc, start)
        bad = [p for p in ports if not health(p)]
        answered = time.perf_counter() - start
        if bad:
            raise RuntimeError(f"{len(bad)} components did not answer /health (first: {bad[0]})")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)
        stopped = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)}: exit code {proc.returncode}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return {"up": up, "health": answered, "stopped": stopped}


def _wait_for_banner(proc: subprocess.Popen[str], start: float) -> float:
    assert proc.stdout is not None
    while True:
        left = UP_TIMEOUT - (time.perf_counter() - start)
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready:
            raise RuntimeError(f"labsim up did not start within {UP_TIMEOUT:g} s")
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"labsim up exited ({proc.wait()}) before it was up")
        if line.startswith("labsim is up"):
            return time.perf_counter() - start


# Inside one process: import, load the scenario, Cluster.start() on the real clock with
# free ports (as `labsim.serve` does), then stop.
INSIDE = """
import time
began = time.perf_counter()
import asyncio, dataclasses, json, sys
import labsim
from labsim.components.cluster import Cluster
from labsim.core.clock import RealClock
from labsim.model.scenario import lab_scenario
imported = time.perf_counter()
scenario = labsim.load_scenario(sys.argv[1]) if len(sys.argv) > 1 else lab_scenario()
topology = dataclasses.replace(scenario.topology, host="127.0.0.1")
loaded = time.perf_counter()
async def main():
    cluster = Cluster(topology, RealClock(), ephemeral=True)
    t = time.perf_counter()
    await cluster.start()
    started = time.perf_counter() - t
    n = len(cluster.components)
    t = time.perf_counter()
    await cluster.stop()
    return started, time.perf_counter() - t, n
started, stopped, n = asyncio.run(main())
print(json.dumps({"import": imported - began, "load": loaded - imported, "start": started,
                  "stop": stopped, "components": n}))
"""


def time_inside(scenario: Path | None) -> dict[str, float]:
    args = [PY, "-c", INSIDE, *([str(scenario)] if scenario else [])]
    env = Version("now", "now", ROOT).env()
    done = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"in-process start failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


# ---------------------------------------------------------------------------- bench


# `labsim bench` with the session's entry replica computed once, not once a request:
# a diagnostic of what that recomputation costs (labsim itself is not changed).
def bench(scenario: Path | None, requests: int, out: Path) -> dict:
    """One `labsim bench` process: figures of its JSON report, its peak RSS."""
    args = [PY, "-m", "labsim", "bench", *([str(scenario)] if scenario else [])]
    args += [f"--requests={requests}", "--concurrency=10", "--mix=data=1", f"--json={out}"]
    wall, rss, code, _ = run_measured(args, BENCH_TIMEOUT, Version("now", "now", ROOT))
    if code != 0:
        raise RuntimeError(f"{' '.join(args[-6:])}: exit code {code}")
    report = json.loads(out.read_text())
    served = sum(sum(c["statuses"].values()) for c in report["components"].values())
    return {
        "requests": requests,
        "wall_s": report["time"]["wall_s"],
        "process_s": wall,
        "rss_mb": rss,
        "failed": report["requests"]["failed"],
        "hits": report["cache"]["hits"],
        "misses": report["cache"]["misses"],
        # requests the components served, per request sent (login and misses included)
        "exchanges": served / requests,
    }


# ---------------------------------------------------------------------------- profile


def profile(scenario: Path, requests: int, folder: Path) -> tuple[list[str], float]:
    """The 4-tier bench under cProfile: the top 15 functions by cumulative time that are
    labsim's or its libraries' (the interpreter's, runpy's and asyncio's frames, which wrap
    everything, and modules' import left out), as table rows; and the profile's total
    seconds."""
    out = folder / "bench.prof"
    args = [PY, "-m", "cProfile", "-o", str(out), "-m", "labsim", "bench", str(scenario)]
    args += [f"--requests={requests}", "--concurrency=10", "--mix=data=1"]
    _, _, code, _ = run_measured(args, BENCH_TIMEOUT, Version("now", "now", ROOT))
    if code != 0:
        raise RuntimeError(f"profiled bench: exit code {code}")
    stats = pstats.Stats(str(out))
    stdlib = sysconfig.get_paths()["stdlib"]
    rows = []
    entries = sorted(stats.stats.items(), key=lambda kv: kv[1][3], reverse=True)  # type: ignore[attr-defined]
    for (file, line, name), (_, calls, _, cumulative, _) in entries:
        if file.startswith((stdlib, "<", "~")) or name == "<module>":  # imports too
            continue
        where = _short(file)
        rows.append(
            f"| `{where}:{line}` {name} | {calls:,} | {cumulative:.2f} "
            f"| {1000 * cumulative / requests:.2f} |"
        )
        if len(rows) == 15:
            break
    return rows, stats.total_tt  # type: ignore[attr-defined]


def _short(file: str) -> str:
    for marker in ("/labsim/", "/site-packages/"):
        if marker in file:
            head = "labsim/" if marker == "/labsim/" else ""
            return head + file.split(marker, 1)[1]
    return file


# ---------------------------------------------------------------------------- the run


NAMES = {
    "lab": "the lab: LB → gateway → cache",
    "tiers1": "4 tiers x 1 (6 components): LB → gw → LB → svc → cache",
    "shared": "{n} gateways, {n} services as `ports`, 1 cache, 1 db ({shared} components, 6 named)",
    "tiers": "4 tiers x {n} ({components} components, {named} named)",
    "direct": "4 hops: LB → {n} gateways → {n} services, called in turn → 1 cache",
}


def marginal_us(small: dict, big: dict) -> float:
    """Wall µs of one more request: start-up and stop left out."""
    return 1e6 * (big["wall_s"] - small["wall_s"]) / (big["requests"] - small["requests"])


def measure(plan: Plan, replicas: int, folder: Path) -> dict[str, Any]:
    first = free_block(4 * replicas + 2, FIRST_PORT, set())
    tiers_ports = list(range(first, first + 4 * replicas + 2))
    offset = lab_offset(set(tiers_ports))
    tiers = folder / "four-tiers.toml"
    tiers.write_text(scenario_text(replicas, first))
    tiers1 = folder / "four-tiers-1.toml"
    tiers1.write_text(scenario_text(1, first))
    shared = folder / "shared.toml"
    shared.write_text(shared_text(replicas, first))
    print(
        f"4-tier scenario {tiers} ({len(tiers_ports)} components, ports {first} to "
        f"{tiers_ports[-1]}); the lab under up: --port-offset {offset}",
        file=sys.stderr,
    )
    ups: dict[str, list[dict[str, float]]] = {"lab": [], "tiers": []}
    inside: dict[str, list[dict[str, float]]] = {"lab": [], "tiers": []}
    runs: dict[str, list[tuple[dict, dict]]] = {k: [] for k in NAMES}
    sizes = {key: plan.lab for key in NAMES}  # the same requests for every topology
    direct = folder / "direct.toml"
    direct.write_text(direct_text(replicas, first))
    scenarios = {"lab": None, "tiers1": tiers1, "shared": shared, "tiers": tiers}
    scenarios["direct"] = direct
    lab_ports = [p + offset for p in LAB_PORTS]
    for r in range(plan.rounds):
        for _ in range(plan.ups):
            for key, args, ports in (
                ("tiers", ["--scenario", str(tiers)], tiers_ports),
                ("lab", ["--port-offset", str(offset)], lab_ports),
            ):
                t = time_up(args, ports)
                ups[key].append(t)
                print(f"  round {r + 1} up {key:6} {_fmt(t)}", file=sys.stderr)
        for key, scenario in (("tiers", tiers), ("lab", None)):
            t = time_inside(scenario)
            inside[key].append(t)
            print(f"  round {r + 1} in-process {key:6} {_fmt(t)}", file=sys.stderr)
        for key in NAMES:
            pair = []
            for n in sizes[key]:
                out = folder / f"{key}-{n}.json"
                result = bench(scenarios[key], n, out)
                pair.append(result)
                print(f"  round {r + 1} bench {key:10} {_fmt(result)}", file=sys.stderr)
            runs[key].append((pair[0], pair[1]))
    return {
        "replicas": replicas,
        "components": len(tiers_ports),
        "ups": {k: _medians(v) for k, v in ups.items()},
        "inside": {k: _medians(v) for k, v in inside.items()},
        "bench": {k: _bench_medians(v) for k, v in runs.items()},
        "scenario": tiers,
    }


def _fmt(figures: dict) -> str:
    return ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
    )


def _medians(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def _bench_medians(rounds: list[tuple[dict, dict]]) -> dict[str, Any]:
    small, big = [r[0] for r in rounds], [r[1] for r in rounds]
    return {
        "small": _medians(small),
        "big": _medians(big),
        "marginal_us": statistics.median(marginal_us(s, b) for s, b in rounds),
        "rate": statistics.median(b["requests"] / b["wall_s"] for b in big),
        "rss_mb": max(b["rss_mb"] for b in big),
        "failed": sum(r["failed"] for r in small + big),
    }


# ---------------------------------------------------------------------------- tables


def render(plan: Plan, m: dict[str, Any]) -> list[str]:
    n, rounds = m["replicas"], plan.rounds
    median = f"median of {rounds} round{'s' if rounds > 1 else ''}"
    up, inside = m["ups"], m["inside"]
    lines = [
        f"Start-up, real clock, {median} (`up`: from spawn; in-process: one process's "
        "import, scenario loading and `Cluster.start()`):",
        "",
        '| topology | components | `up` until "labsim is up" s | until all answered `/health` s '
        "| SIGINT to exit s | import s | load scenario s | `Cluster.start()` s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, name, count in (
        ("lab", "the lab", inside["lab"]["components"]),
        ("tiers", f"4 tiers x {n}", m["components"]),
    ):
        u, i = up[key], inside[key]
        lines.append(
            f"| {name} | {count:.0f} | {u['up']:.2f} | {u['health']:.2f} "
            f"| {u['stopped'] - u['health']:.2f} | {i['import']:.2f} | {i['load']:.2f} "
            f"| {i['start']:.2f} |"
        )
    b = m["bench"]
    lab_us = b["lab"]["marginal_us"]
    lines += [
        "",
        "Virtual clock, `python -m labsim bench FILE --concurrency 10 --mix data=1 --json` "
        f"(all `GET /data`), {median}. Requests/s: the larger run's requests over its report's "
        "wall time (`time.wall_s`, session start-up included); µs a request: the wall cost of "
        "one more request, from the two runs' difference (start-up left out):",
        "",
        "| topology | requests (2 runs) | hits / misses (larger) | exchanges a hit "
        "| served a request | requests/s | µs a request | / lab | µs an exchange | / lab "
        "| peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sizes = {"n": n, "shared": 2 * n + 4, "components": m["components"], "named": 3 * n + 3}
    for key, name in NAMES.items():
        f = b[key]
        hops = HIT_HOPS.get(key, HIT_HOPS["tiers"])
        per_hop, lab_hop = f["marginal_us"] / hops, lab_us / HIT_HOPS["lab"]
        big = f["big"]
        lines.append(
            f"| {name.format(**sizes)} | {f['small']['requests']:,.0f} / {big['requests']:,.0f} "
            f"| {big['hits']:,.0f} / {big['misses']:,.0f} | {hops} | {big['exchanges']:.2f} "
            f"| {f['rate']:,.0f} | {f['marginal_us']:,.0f} | {f['marginal_us'] / lab_us:.2f} "
            f"| {per_hop:,.0f} | {per_hop / lab_hop:.2f} | {f['rss_mb']:.0f} |"
        )
    tiers, tiers1 = b["tiers"], b["tiers1"]
    checks = [
        (
            f"`up` of 4 tiers x {n} ({m['components']} components) < {START_GOAL_S:g} s",
            f"{up['tiers']['up']:.2f} s (all /health: {up['tiers']['health']:.2f} s)",
            up["tiers"]["health"] < START_GOAL_S,
        ),
        (
            f"a request through 4 tiers x {n} ≤ 4/3 of the lab's cache hit",
            f"{tiers['marginal_us'] / lab_us:.2f} x",
            tiers["marginal_us"] <= COST_GOAL * lab_us,
        ),
        (
            "the same, the goal scaled to the path's 5 exchanges (≤ 5/3)",
            f"{tiers['marginal_us'] / lab_us:.2f} x",
            tiers["marginal_us"] <= 5 / 3 * lab_us,
        ),
        (
            "a request through 4 tiers in 4 hops ≤ 4/3 of the lab's cache hit",
            f"{b['direct']['marginal_us'] / lab_us:.2f} x",
            b["direct"]["marginal_us"] <= COST_GOAL * lab_us,
        ),
        (
            f"what {n} replicas a tier add to the same path (x {n} / x 1)",
            f"{tiers['marginal_us'] / tiers1['marginal_us']:.2f} x",
            None,
        ),
        (
            "no failed requests",
            str(sum(f["failed"] for f in b.values())),
            all(f["failed"] == 0 for f in b.values()),
        ),
    ]
    lines += ["", "| target | measured | holds |", "|---|---:|:---:|"]
    for name, value, ok in checks:
        holds = "" if ok is None else ("yes" if ok else "**NO**")
        lines.append(f"| {name} | {value} | {holds} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round, fewer requests")
    parser.add_argument("--replicas", type=int, default=50, help="replicas a tier (default 50)")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the 4-tier bench (cProfile)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.replicas <= 99:
        parser.error("--replicas: 1 to 99")
    plan = QUICK if args.quick else Plan()
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="labsim-scale-") as tmp:
        folder = Path(tmp)
        figures = measure(plan, args.replicas, folder)
        lines = render(plan, figures)
        if args.profile:
            print("profile ...", file=sys.stderr)
            rows, total = profile(figures["scenario"], plan.profiled, folder)
            lines += [
                "",
                f"`python -m cProfile -m labsim bench` of 4 tiers x {args.replicas}, "
                f"{plan.profiled} requests ({total:.1f} s under the profiler); top 15 by "
                "cumulative time, labsim's and aiohttp's functions (the interpreter's, "
                "runpy's and asyncio's frames, which wrap everything, and imports left out):",
                "",
                "| function | calls | cumulative s | ms a request |",
                "|---|---:|---:|---:|",
                *rows,
            ]
    load_after = os.getloadavg()
    print("\n".join(lines))
    command = "python benchmarks/topology_scale.py" + " --quick" * args.quick
    command += f" --replicas {args.replicas}" * (args.replicas != 50) + " --profile" * args.profile
    print(
        f"\nMeasured with `{command}` in {time.perf_counter() - started:.0f} s on "
        f"{os.cpu_count()} cores (load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after), Python {platform.python_version()}, aiohttp "
        f"{aiohttp.__version__}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
