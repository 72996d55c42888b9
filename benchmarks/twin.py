"""The lab's real deployment measured on this machine, to calibrate a labsim scenario.

Runs the reconstructed Flask lab (`flask_lab.py`, started by `lab_deployment.py`: eight
Flask development servers with `debug=True`, on the lab's ports) and measures:

1. Cache-hit `GET /data` through load balancer -> gateway -> cache: requests/s and
   p50/p99/max latency at concurrency 1, 5, 10, 20 and 50, each run a fresh `_client.py
   --login` process; rounds loop over the concurrencies; each figure is the median over the
   rounds (3 rounds of 5 s; `--quick`: 1 round of 2 s).
2. CPU seconds per request of every process of every component (utime + stime from
   /proc/PID/stat, reloader parents and children alike) around each of those runs, shown
   at concurrency 10, as measured and with the idle rate (the reloaders' polling) taken
   off; and the client's own CPU per request.
3. The lab's own script, `tests/lab/load_test.py` (50 GET /data and 50 POST /longtask, 10
   at a time), on a freshly started deployment (cold cache), then once more right after on
   the same deployment (warm cache): its own printed total and the wall time of the process.
   3 deployments (1 with `--quick`).
4. labsim's twin of the deployment, `scenarios/seed.toml`, at the same concurrencies and
   for the same script (`twin_prediction.py`), beside those figures.

    python benchmarks/twin.py [--quick] [--json PATH] [--log-dir DIR]

Werkzeug's development server answers every request with `Connection: close`, so every
hop (client -> load balancer included) opens a new TCP connection per request; the TIME_WAIT
sockets on the machine after each run are shown. The cache keeps an entry for 30 s, so before
each throughput run the entry is written straight into the cache (the value the gateway itself
would store): every run then measures cache hits only. Markdown on stdout, progress and every
single measurement on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from lab_deployment import Deployment, cpu_ticks, deployment
from twin_prediction import compare, compare_recalibrated, predict, recalibrated

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PY = sys.executable
CONCURRENCIES = (1, 5, 10, 20, 50)
CPU_CONCURRENCY = 10
TICK = os.sysconf("SC_CLK_TCK")
CACHE_ENTRY = "http://127.0.0.1:5004/cache/my_data"
DB_MESSAGE = "Fetched fresh data from DB"
LAB_SCRIPT = "tests/lab/load_test.py"
SETTLE = 2.0  # seconds between a deployment answering and the first measurement
ACCESS = re.compile(rb'HTTP/1\.[01](?:\x1b\[0m)?" (\d{3}) ')


@dataclass(frozen=True)
class Plan:
    rounds: int = 3
    duration: float = 5.0  # seconds per throughput run
    idle: float = 10.0  # seconds of the idle CPU window (CPU time comes in 10 ms ticks)
    cold_runs: int = 3


QUICK = Plan(rounds=1, duration=2.0, idle=2.0, cold_runs=1)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def refresh_cache() -> None:
    """Write the entry the gateway would write, straight into the cache (30 s to live)."""
    body = json.dumps({"value": DB_MESSAGE}).encode()
    req = urllib.request.Request(
        CACHE_ENTRY, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


def time_wait_sockets() -> int:
    """TCP sockets in TIME_WAIT on this machine (IPv4 and IPv6)."""
    count = 0
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                count += sum(line.split()[3] == "06" for line in f)
        except OSError:
            pass
    return count


def snapshot(lab: Deployment) -> tuple[float, dict[str, dict[int, int]]]:
    return time.monotonic(), cpu_ticks({c.label: c.pgid for c in lab.components})


def cpu_between(
    before: tuple[float, dict[str, dict[int, int]]], after: tuple[float, dict[str, dict[int, int]]]
) -> tuple[float, dict[str, float]]:
    """(wall s, label -> CPU s) between two snapshots."""
    cpu = {
        label: sum(t - before[1][label].get(pid, 0) for pid, t in pids.items()) / TICK
        for label, pids in after[1].items()
    }
    return after[0] - before[0], cpu


def run_client(url: str, concurrency: int, duration: float) -> tuple[dict[str, Any], float]:
    """One `_client.py --login` process: (its JSON, its whole CPU s from os.wait4)."""
    args = [PY, str(HERE / "_client.py"), url, f"--concurrency={concurrency}"]
    args += [f"--duration={duration}", "--login"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, cwd=ROOT, stdout=out, stderr=err)
        killer = threading.Timer(duration + 60, proc.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
            proc.returncode = os.waitstatus_to_exitcode(status)
        finally:
            killer.cancel()
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            tail = err.read().decode(errors="replace").strip()[-800:]
            raise RuntimeError(f"client failed ({proc.returncode}): {tail}")
        return json.loads(out.read()), usage.ru_utime + usage.ru_stime


def measure(lab: Deployment, concurrency: int, duration: float) -> dict[str, Any]:
    """One throughput run, with the CPU every lab process spent around it."""
    refresh_cache()
    before = snapshot(lab)
    result, client_cpu = run_client(lab.url, concurrency, duration)
    after = snapshot(lab)
    wall, cpu = cpu_between(before, after)
    # Everything the servers answered in the window: the measured requests, the client's
    # warm-up (1 + concurrency requests) and its login.
    served = result["requests"] + 1 + concurrency + 1
    return {
        **result,
        "window_s": round(wall, 3),
        "served": served,
        "server_cpu_s": {label: round(s, 3) for label, s in cpu.items()},
        "client_cpu_loop_s": round(result["client_cpu"] * result["elapsed_s"], 3),
        "client_cpu_process_s": round(client_cpu, 3),
        "time_wait_after": time_wait_sockets(),
    }


def idle_rates(lab: Deployment, seconds: float) -> dict[str, float]:
    """label -> CPU s per s with no load (the reloaders poll every file once a second)."""
    before = snapshot(lab)
    time.sleep(seconds)
    wall, cpu = cpu_between(before, snapshot(lab))
    return {label: s / wall for label, s in cpu.items()}


def scan_logs(lab: Deployment) -> dict[str, dict[str, Any]]:
    """label -> HTTP statuses of its access log, tracebacks and connection errors seen."""
    found = {}
    for c in lab.components:
        c.log.flush()
        text = c.log_path.read_bytes()
        statuses = Counter(m.decode() for m in ACCESS.findall(text))
        found[c.label] = {
            "statuses": dict(sorted(statuses.items())),
            "tracebacks": text.count(b"Traceback"),
            "connection_errors": len(
                re.findall(rb"ConnectionResetError|BrokenPipeError|ConnectionRefused", text)
            ),
        }
    return found


def throughput(plan: Plan, log_dir: Path | None) -> dict[str, Any]:
    with deployment(log_dir and log_dir / "throughput") as lab:
        processes = lab.pids()
        log(f"lab up: {sum(map(len, processes.values()))} processes {processes}")
        time.sleep(SETTLE)
        idle = idle_rates(lab, plan.idle)
        log(f"  idle CPU s/s: { {k: round(v, 4) for k, v in idle.items()} }")
        runs: dict[int, list[dict[str, Any]]] = {c: [] for c in CONCURRENCIES}
        for r in range(plan.rounds):
            for c in CONCURRENCIES:
                run = measure(lab, c, plan.duration)
                runs[c].append(run)
                log(f"  round {r + 1} c={c:<3} {json.dumps(run)}")
        logs = scan_logs(lab)
        count_after = lab.process_count()
    return {
        "processes": processes,
        "process_count_after": count_after,
        "idle_cpu_s_per_s": idle,
        "runs": runs,
        "logs": logs,
    }


def summarize(runs: dict[int, list[dict[str, Any]]]) -> dict[int, dict[str, float]]:
    keys = ("rps", "p50_ms", "p99_ms", "max_ms", "client_cpu")
    out = {}
    for c, rs in runs.items():
        row = {k: statistics.median(r[k] for r in rs) for k in keys}
        row["errors"] = sum(r["errors"] for r in rs)
        row["requests"] = sum(r["requests"] for r in rs)
        row["time_wait_max"] = max(r["time_wait_after"] for r in rs)
        out[c] = row
    return out


def cpu_per_request(
    runs: list[dict[str, Any]], idle: dict[str, float]
) -> dict[str, dict[str, float]]:
    """label -> CPU ms per request, raw and idle-corrected: medians over the runs."""
    labels = list(runs[0]["server_cpu_s"])
    groups = {label: [label] for label in labels}
    groups["gateways (sum)"] = [x for x in labels if x.startswith("gateway")]
    groups["others (database, microservice, worker)"] = [
        x for x in labels if x.split(":")[0] in ("database", "microservice", "worker")
    ]
    groups["all lab processes"] = labels
    out: dict[str, dict[str, float]] = {}
    for name, members in groups.items():
        raw = [sum(r["server_cpu_s"][m] for m in members) / r["served"] * 1000 for r in runs]
        net = [
            sum(r["server_cpu_s"][m] - idle[m] * r["window_s"] for m in members)
            / r["served"]
            * 1000
            for r in runs
        ]
        out[name] = {
            "ms_per_request": statistics.median(raw),
            "idle_corrected_ms_per_request": statistics.median(net),
            "idle_ms_per_s": sum(idle[m] for m in members) * 1000,
        }
    out["client: measured loop"] = {
        "ms_per_request": statistics.median(
            r["client_cpu_loop_s"] / r["requests"] * 1000 for r in runs
        )
    }
    out["client: whole process (start-up, imports, login, warm-up)"] = {
        "ms_per_request": statistics.median(
            r["client_cpu_process_s"] / r["served"] * 1000 for r in runs
        )
    }
    return out


def run_lab_script(url: str) -> dict[str, Any]:
    """`tests/lab/load_test.py` against `url`: its own total, wall time, the answers."""
    env = {**os.environ, "LAB_URL": url}
    start = time.perf_counter()
    done = subprocess.run(
        [PY, LAB_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    wall = time.perf_counter() - start
    total = re.search(r"completadas en ([\d.]+) segundos", done.stdout)
    return {
        "exit_code": done.returncode,
        "script_s": float(total.group(1)) if total else None,
        "wall_s": round(wall, 3),
        "statuses": dict(Counter(re.findall(r"Status (\d+)", done.stdout))),
        "cache_hits": done.stdout.count("'cached': True"),
        "cache_misses": done.stdout.count("'cached': False"),
        "stderr": done.stderr.strip()[-500:],
    }


def lab_runs(plan: Plan, log_dir: Path | None) -> list[dict[str, Any]]:
    rows = []
    for i in range(plan.cold_runs):
        with deployment(log_dir and log_dir / f"lab-run-{i + 1}") as lab:
            count = lab.process_count()
            cold = run_lab_script(lab.url)
            warm = run_lab_script(lab.url)
            logs = scan_logs(lab)
        row = {"processes": count, "cold": cold, "warm": warm, "logs": logs}
        log(f"  lab script, deployment {i + 1}: {json.dumps(row)}")
        rows.append(row)
    return rows


def _fmt(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def render(plan: Plan, results: dict[str, Any]) -> str:
    tp = results["throughput_summary"]
    count = results["throughput"]["process_count_after"]
    rounds = f"median of {plan.rounds} round{'s' if plan.rounds > 1 else ''}"
    lines = [
        f"Cache-hit `GET /data` through the Flask lab (load balancer → gateway → cache; "
        f"{count} processes), client `_client.py --login` in its own process, "
        f"{plan.duration:g} s per run, {rounds}:",
        "",
        "| concurrency | requests/s | p50 ms | p99 ms | max ms | failed / sent | "
        "client CPU | TIME_WAIT after |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c, f in tp.items():
        lines.append(
            f"| {c} | {f['rps']:.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} | {f['max_ms']:.1f} "
            f"| {f['errors']} / {f['requests']} | {f['client_cpu']:.2f} | {f['time_wait_max']} |"
        )
    lines += [
        "",
        f"CPU per request at concurrency {CPU_CONCURRENCY} (utime + stime of every process "
        "of the component, reloader parent and child, around each run; median over the runs; "
        "idle-corrected: less the idle rate, mostly the reloader's polling):",
        "",
        "| process(es) | CPU ms / request | idle-corrected ms / request | idle CPU ms / s |",
        "|---|---:|---:|---:|",
    ]
    for name, f in results["cpu_per_request"].items():
        lines.append(
            f"| {name} | {f['ms_per_request']:.3f} "
            f"| {_fmt(f.get('idle_corrected_ms_per_request'), 3)} "
            f"| {_fmt(f.get('idle_ms_per_s'), 2)} |"
        )
    lines += [
        "",
        f"The lab's own script (`{LAB_SCRIPT}`: login, 50 GET /data and 50 POST /longtask, "
        "10 at a time), on a fresh deployment (cold cache), then again at once (warm):",
        "",
        "| deployment | cold: script s | cold: wall s | warm: script s | warm: wall s "
        "| answers (cold; warm) |",
        "|---:|---:|---:|---:|---:|---|",
    ]

    def answers(run: dict[str, Any]) -> str:
        statuses = ", ".join(f"{n} x {s}" for s, n in sorted(run["statuses"].items()))
        return f"{statuses}, {run['cache_misses']} misses" + (
            f", exit {run['exit_code']}" if run["exit_code"] else ""
        )

    for i, row in enumerate(results["lab_runs"], 1):
        cold, warm = row["cold"], row["warm"]
        lines.append(
            f"| {i} | {_fmt(cold['script_s'])} | {cold['wall_s']:.2f} | {_fmt(warm['script_s'])} "
            f"| {warm['wall_s']:.2f} | {answers(cold)}; {answers(warm)} |"
        )
    if len(results["lab_runs"]) > 1:
        med = {
            f"{k}_{m}": statistics.median(r[k][m] for r in results["lab_runs"] if r[k][m])
            for k in ("cold", "warm")
            for m in ("script_s", "wall_s")
        }
        lines.append(
            f"| median | {med['cold_script_s']:.2f} | {med['cold_wall_s']:.2f} "
            f"| {med['warm_script_s']:.2f} | {med['warm_wall_s']:.2f} | |"
        )
    lines += ["", log_summary(results)]
    return "\n".join(lines)


def log_summary(results: dict[str, Any]) -> str:
    """One line over every component's log of every deployment: answers, failures."""
    scans = [results["throughput"]["logs"]] + [r["logs"] for r in results["lab_runs"]]
    answered, odd, tracebacks, conn = 0, Counter(), 0, 0
    for scan in scans:
        for found in scan.values():
            statuses = Counter(found["statuses"])
            statuses["404"] -= 1  # the readiness probe's GET /
            answered += statuses.total()
            odd.update({s: n for s, n in statuses.items() if s not in ("200", "202") and n})
            tracebacks += found["tracebacks"]
            conn += found["connection_errors"]
    odd_text = ", ".join(f"{n} x {s}" for s, n in sorted(odd.items())) or "none"
    return (
        f"Access logs of every component, all {len(scans)} deployments: {answered} answers, "
        f"other than 200/202: {odd_text}; tracebacks: {tracebacks}; "
        f"connection reset/refused/broken-pipe errors: {conn}."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 1 lab run")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every figure there")
    parser.add_argument(
        "--log-dir", type=Path, metavar="DIR", help="keep the components' logs there"
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    started = time.perf_counter()
    log("measuring cache-hit throughput and CPU per request ...")
    tp = throughput(plan, args.log_dir)
    log("running the lab's own script, cold and warm ...")
    runs = lab_runs(plan, args.log_dir)
    results = {
        "plan": asdict(plan),
        "throughput": tp,
        "throughput_summary": summarize(tp["runs"]),
        "cpu_per_request": cpu_per_request(tp["runs"][CPU_CONCURRENCY], tp["idle_cpu_s_per_s"]),
        "lab_runs": runs,
        "environment": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            **{p: version(p) for p in ("flask", "werkzeug", "requests", "pyjwt", "aiohttp")},
        },
    }
    log("running labsim's twin of it (scenarios/seed.toml) on the virtual clock ...")
    results["twin"] = predict(list(CONCURRENCIES))
    results["twin_recalibrated"] = recalibrated(results)
    command = "python benchmarks/twin.py" + (" --quick" if args.quick else "")
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    print(render(plan, results))
    print()
    print(compare(results, results["twin"]))
    print()
    print(compare_recalibrated(results, results["twin_recalibrated"]))
    env = results["environment"]
    print(
        f"\nMeasured with `{command}` in {results['elapsed_s']:.0f} s on {env['cores']} cores, "
        f"Python {env['python']}, Flask {env['flask']}, Werkzeug {env['werkzeug']}, "
        f"requests {env['requests']}, PyJWT {env['pyjwt']}, aiohttp {env['aiohttp']} (client)."
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
