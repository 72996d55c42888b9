"""Run the course's Lab 5 Flask code (tests/data/lab5_guide/) for real and record its answers.

    python benchmarks/lab5_flask.py                      # sleeps x0.01, writes ./lab5_flask_out/
    python benchmarks/lab5_flask.py --sleep-scale 1      # the guide's own sleep times
    python benchmarks/lab5_flask.py --check              # compare with the expected_* files
    python benchmarks/lab5_flask.py --probe              # also the edge-case answers (probes.json)

Needs flask, requests and pyjwt (`pip install '.[bench]'`; pyjwt is a labsim dependency).
labsim never imports any of this: it is the ground truth that labsim's Lab 5 profile is
tested against (tests/data/lab5_guide/README.md says what it found).

What it does, in a fresh temporary folder each time:

1. Copies the guide's code (every *.py of tests/data/lab5_guide/, same layout) and rewrites
   only the constants of `time.sleep(N)` calls in Components/*.py to N * --sleep-scale
   (the guide has one: the worker's background `time.sleep(5)`); --sleep-scale 1 copies
   the files unchanged.
2. Starts the guide's deployment exactly as the guide does: `python main.py` (ten Flask
   development servers, one process each, started by multiprocessing with the env vars
   MAX_REQUESTS_PER_TIME / RATE_LIMIT_TIME from config.py), in its own session, and waits
   until all ten ports (5000-5006, 5009, 8000, 8001 on 127.0.0.1) accept connections. The
   ports must be free before: the script refuses to start otherwise.
3. Runs the guide's simulator unchanged, `from simulator.simulator import main; main()`
   in the copy's folder (--report runs `python main_simulator.py` instead, which also needs
   matplotlib and adds a timestamped PDF line), records its stdout with the time each line
   arrived, then reads the copy's simulator/status_log.json.
4. Stops the deployment (SIGTERM to its process group, SIGKILL after 5 s), also on error.
5. With --probe: for each of a list of scenarios, starts the same ten components afresh
   with this script's own launcher (main.py's mapping of module, port and config key, with
   the rate limits of config.py except where a scenario overrides one, or leaves a
   component out), sends a few requests, and records each answer (status, Content-Type,
   Location, body text) and the status_log.json each scenario produced.

Outputs in --out: simulator_output.txt, status_log.json, run.json (timings, versions,
the sleep rewrites) and, with --probe, probes.json. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack, contextmanager, suppress
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GUIDE = ROOT / "tests" / "data" / "lab5_guide"
HOST = "127.0.0.1"
# main.py's processes, in its order: (module in Components/, port, RATE_LIMIT_CONFIG key).
LAYOUT = (
    ("login_microservice", 5009, "login"),
    ("cache", 5004, "cache"),
    ("database", 5002, "db"),
    ("microservice", 5001, "microservice_A"),
    ("microservice", 5006, "microservice_B"),
    ("worker", 5005, "worker"),
    ("api_gateway", 5000, "gateway"),
    ("api_gateway", 5003, "gateway"),
    ("load_balancer", 8000, "load_balancer"),
    ("load_balancer_ms", 8001, "load_balancer"),
)
PORTS = tuple(port for _, port, _ in LAYOUT)
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
SIM_TIMEOUT = 900.0
# The shortest rate-limit window that can bind in the simulator's run (microservice_B: 50
# per 60 s; worker: 200 per 60 s). A phase shorter than this cannot see a timestamp expire.
BINDING_WINDOW = 60.0
SLEEP_RE = re.compile(r"time\.sleep\(\s*([0-9]+(?:\.[0-9]*)?)\s*\)")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def copy_guide(dest: Path, scale: float) -> list[dict]:
    """Copy the guide's *.py files to dest; scale the sleep constants in Components/."""
    rewrites: list[dict] = []
    for src in sorted(GUIDE.rglob("*.py")):
        rel = src.relative_to(GUIDE)
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_bytes()
        if rel.parts[0] == "Components" and scale != 1:
            decoded = text.decode("utf-8")

            def repl(m: re.Match, rel: Path = rel) -> str:
                new = float(m.group(1)) * scale
                rewrites.append(
                    {"file": str(rel), "from": m.group(0), "to": f"time.sleep({new!r})"}
                )
                return f"time.sleep({new!r})"

            text = SLEEP_RE.sub(repl, decoded).encode("utf-8")
        out.write_bytes(text)
    return rewrites


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def check_ports_free() -> None:
    busy = [p for p in PORTS if port_busy(p)]
    if busy:
        raise SystemExit(f"ports already in use on {HOST}: {busy}; stop whatever holds them")


def wait_ports(procs: list[subprocess.Popen], ports: tuple[int, ...]) -> float:
    t0 = time.monotonic()
    deadline = t0 + START_TIMEOUT
    pending = set(ports)
    while pending:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"process {p.args!r} exited with {p.returncode} during start")
        pending = {p for p in pending if not port_busy(p)}
        if not pending:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"ports never opened: {sorted(pending)}")
        time.sleep(0.05)
    return time.monotonic() - t0


def stop_group(proc: subprocess.Popen, children: bool = True) -> None:
    """SIGTERM the process group this script started (its own session), SIGKILL if needed.

    children=False: the process starts none, so nothing is signalled once it has exited.
    """
    if not children and proc.poll() is not None:
        return
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(STOP_TIMEOUT)
    # main.py's children share its group; kill any straggler of the group.
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT)


def wait_ports_closed(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(port_busy(p) for p in PORTS):
        if time.monotonic() > deadline:
            log(f"warning: still listening after stop: {[p for p in PORTS if port_busy(p)]}")
            return
        time.sleep(0.05)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("PYTHONPATH", None)  # only the copy's folder (sys.path[0]) provides Components/
    env.pop("MAX_REQUESTS_PER_TIME", None)
    env.pop("RATE_LIMIT_TIME", None)
    return env


@contextmanager
def guide_main(work: Path):
    """`python main.py` in work, in its own session; stopped on exit, also on error."""
    logf = open(work / "main.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "main.py"],
        cwd=work,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=logf,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        stop_group(proc)
        logf.close()
        wait_ports_closed()


@contextmanager
def launch(work: Path, overrides: dict[int, int] | None = None, leave_out: tuple[int, ...] = ()):
    """main.py's ten processes, started one by one by this script (for the probes).

    Each gets MAX_REQUESTS_PER_TIME / RATE_LIMIT_TIME from the copy's config.py, except
    `overrides` (port -> MAX_REQUESTS_PER_TIME); ports in `leave_out` are not started.
    """
    overrides = overrides or {}
    config = runpy.run_path(str(work / "config.py"))["RATE_LIMIT_CONFIG"]
    (work / "simulator" / "status_log.json").unlink(missing_ok=True)
    procs: list[subprocess.Popen] = []
    with ExitStack() as stack:
        stack.callback(wait_ports_closed)  # runs last: callbacks run in reverse order
        for module, port, key in LAYOUT:
            if port in leave_out:
                continue
            env = child_env()
            env["MAX_REQUESTS_PER_TIME"] = str(
                overrides.get(port, config[key]["MAX_REQUESTS_PER_TIME"])
            )
            env["RATE_LIMIT_TIME"] = str(config[key]["RATE_LIMIT_TIME"])
            code = (
                f"from Components import {module}\n"
                f"{module}.app.run(port={port}, debug=False, use_reloader=False)\n"
            )
            logf = stack.enter_context(open(work / f"probe_{port}.log", "ab"))
            proc = subprocess.Popen(
                [sys.executable, "-c", code],
                cwd=work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=logf,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            procs.append(proc)
            stack.callback(stop_group, proc)
        wait_ports(procs, tuple(p for p in PORTS if p not in leave_out))
        yield


def run_simulator(work: Path, report: bool) -> tuple[str, list[tuple[float, str]], float]:
    cmd = (
        [sys.executable, "main_simulator.py"]
        if report
        else [sys.executable, "-c", "from simulator.simulator import main; main()"]
    )
    t0 = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=work,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    lines: list[tuple[float, str]] = []
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    try:
        killer = threading.Timer(SIM_TIMEOUT, lambda: stop_group(proc, children=False))
        killer.start()
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8")
                lines.append((time.monotonic() - t0, line))
                log(f"  [{lines[-1][0]:7.2f} s] simulator: {line.rstrip()}")
        finally:
            killer.cancel()
        proc.wait()
    finally:
        stop_group(proc, children=False)
    elapsed = time.monotonic() - t0
    reader.join(5)
    if proc.returncode != 0:
        raise RuntimeError(
            f"simulator exited {proc.returncode}:\n{b''.join(err).decode(errors='replace')}"
        )
    return "".join(line for _, line in lines), lines, elapsed


# -- probes -------------------------------------------------------------------------------


def answer(resp) -> dict:
    out = {"status": resp.status_code, "content_type": resp.headers.get("Content-Type")}
    if "Location" in resp.headers:
        out["location"] = resp.headers["Location"]
    out["body"] = resp.content.decode("utf-8", errors="replace")
    if resp.history:
        out["redirects_followed"] = [
            {"status": r.status_code, "location": r.headers.get("Location")} for r in resp.history
        ]
    return out


def probe_scenarios():
    import requests

    lb = f"http://{HOST}:8000"
    login_ms = f"http://{HOST}:5009"
    creds = {"username": "user1", "password": "password123"}

    def token() -> str:
        return requests.post(f"{login_ms}/login", json=creds).json()["token"]

    def bearer(tok: str) -> dict:
        return {"Authorization": f"Bearer {tok}"}

    def guide_config(rec):
        tok = token()
        rec("login MS /login, right credentials", requests.post(f"{login_ms}/login", json=creds))
        rec(
            "login MS /login, wrong password",
            requests.post(f"{login_ms}/login", json={"username": "user1", "password": "x"}),
        )
        rec(
            "login MS /login, unknown user",
            requests.post(f"{login_ms}/login", json={"username": "bob", "password": "password123"}),
        )
        rec("login MS /login, JSON {}", requests.post(f"{login_ms}/login", json={}))
        rec("login MS /login, no body", requests.post(f"{login_ms}/login"))
        rec(
            "login MS /validate_token, valid",
            requests.post(f"{login_ms}/validate_token", json={"token": tok}),
        )
        rec(
            "login MS /validate_token, no token key",
            requests.post(f"{login_ms}/validate_token", json={}),
        )
        rec(
            "login MS /validate_token, empty token",
            requests.post(f"{login_ms}/validate_token", json={"token": ""}),
        )
        rec(
            "login MS /validate_token, invalid token",
            requests.post(f"{login_ms}/validate_token", json={"token": "abc"}),
        )
        rec("LB /login, right credentials", requests.post(f"{lb}/login", json=creds))
        rec(
            "LB /login, wrong password",
            requests.post(f"{lb}/login", json={"username": "user1", "password": "x"}),
        )
        rec("LB GET /data, no Authorization", requests.get(f"{lb}/data"))
        rec(
            "LB GET /data, Authorization: Token abc",
            requests.get(f"{lb}/data", headers={"Authorization": "Token abc"}),
        )
        rec("LB GET /data, Bearer abc", requests.get(f"{lb}/data", headers=bearer("abc")))
        rec("LB GET /data, 'Bearer ' (empty)", requests.get(f"{lb}/data", headers=bearer("")))
        rec("LB GET /data, Bearer None", requests.get(f"{lb}/data", headers=bearer("None")))
        rec("LB GET /data, 1st (cache miss)", requests.get(f"{lb}/data", headers=bearer(tok)))
        rec("LB GET /data, 2nd (cache hit)", requests.get(f"{lb}/data", headers=bearer(tok)))
        rec(
            "LB POST /longtask",
            requests.post(f"{lb}/longtask", headers=bearer(tok), json={"task": "report"}),
        )
        rec("LB GET / (no path)", requests.get(f"{lb}/"))
        rec("LB GET /nothing, valid token", requests.get(f"{lb}/nothing", headers=bearer(tok)))
        rec(
            "LB_MS GET /data?key=x, not followed",
            requests.get(f"http://{HOST}:8001/data?key=x", allow_redirects=False),
        )
        rec(
            "LB_MS POST /data with JSON body, not followed",
            requests.post(f"http://{HOST}:8001/data", json={"a": 1}, allow_redirects=False),
        )
        rec(
            "LB_MS POST /data with JSON body, followed by requests",
            requests.post(f"http://{HOST}:8001/data", json={"a": 1}),
        )
        rec("LB_MS GET /data, followed by requests", requests.get(f"http://{HOST}:8001/data"))
        rec("cache GET /cache/my_data", requests.get(f"http://{HOST}:5004/cache/my_data"))
        rec("cache GET /cache/other", requests.get(f"http://{HOST}:5004/cache/other"))
        rec(
            "cache POST /cache/other",
            requests.post(f"http://{HOST}:5004/cache/other", json={"value": "v"}),
        )
        rec("database GET /db", requests.get(f"http://{HOST}:5002/db"))
        rec("microservice A GET /process", requests.get(f"http://{HOST}:5001/process"))
        rec(
            "worker POST /task",
            requests.post(f"http://{HOST}:5005/task", json={"task": "report"}),
        )

    def login_zero(rec):
        rec("LB /login, login limit 0", requests.post(f"{lb}/login", json=creds))
        rec("login MS /login, limit 0", requests.post(f"{login_ms}/login", json=creds))

    def limit_zero(label, url, method="GET", **kw):
        def scenario(rec):
            tok = token()
            if url:
                rec(f"{label} direct, limit 0", requests.request(method, url, **kw))
            rec(f"LB GET /data, {label} limit 0", requests.get(f"{lb}/data", headers=bearer(tok)))

        return scenario

    def worker_zero(rec):
        tok = token()
        rec(
            "LB POST /longtask, worker limit 0",
            requests.post(f"{lb}/longtask", headers=bearer(tok), json={"task": "report"}),
        )
        rec(
            "worker POST /task, limit 0",
            requests.post(f"http://{HOST}:5005/task", json={"task": "report"}),
        )

    def lb_zero(rec):
        rec("LB GET /data, LB limit 0", requests.get(f"{lb}/data"))

    def down(label, longtask=False):
        def scenario(rec):
            tok = token()
            rec(
                f"LB GET /data, {label} not running",
                requests.get(f"{lb}/data", headers=bearer(tok)),
            )
            if longtask:
                rec(
                    f"LB POST /longtask, {label} not running",
                    requests.post(f"{lb}/longtask", headers=bearer(tok), json={"task": "report"}),
                )

        return scenario

    return [
        ("guide config", {}, (), guide_config),
        ("login limit 0", {5009: 0}, (), login_zero),
        ("cache limit 0", {5004: 0}, (), limit_zero("cache", f"http://{HOST}:5004/cache/my_data")),
        ("database limit 0", {5002: 0}, (), limit_zero("database", f"http://{HOST}:5002/db")),
        (
            "microservices limit 0",
            {5001: 0, 5006: 0},
            (),
            limit_zero("microservice", f"http://{HOST}:5001/data"),
        ),
        ("LB_MS limit 0", {8001: 0}, (), limit_zero("LB_MS", f"http://{HOST}:8001/data")),
        ("worker limit 0", {5005: 0}, (), worker_zero),
        ("LB_AG limit 0", {8000: 0}, (), lb_zero),
        ("cache not running", {}, (5004,), down("cache")),
        ("microservices not running", {}, (5001, 5006), down("microservices")),
        ("worker not running", {}, (5005,), down("worker", longtask=True)),
    ]


def run_probes(work: Path) -> list[dict]:
    results = []
    for name, overrides, leave_out, scenario in probe_scenarios():
        log(f"probe scenario: {name}")
        answers: list[dict] = []

        def rec(label: str, resp, answers: list[dict] = answers) -> None:
            answers.append({"request": label, **answer(resp)})

        with launch(work, overrides, leave_out):
            scenario(rec)
            time.sleep(0.1)
            status_path = work / "simulator" / "status_log.json"
            status = json.loads(status_path.read_text()) if status_path.exists() else {}
        results.append(
            {
                "scenario": name,
                "max_requests_overrides": {str(k): v for k, v in overrides.items()},
                "not_started": list(leave_out),
                "answers": answers,
                "status_log": status,
            }
        )
    return results


# -- main ---------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in ("flask", "werkzeug", "requests", "urllib3", "pyjwt"):
        with suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _stop_on_signal(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)  # unwinds through every `finally`: the servers are stopped


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sleep-scale", type=float, default=0.01, help="1 = the guide's own sleeps")
    ap.add_argument("--out", type=Path, default=Path("lab5_flask_out"))
    ap.add_argument("--report", action="store_true", help="run main_simulator.py (matplotlib)")
    ap.add_argument("--probe", action="store_true", help="also record the edge-case answers")
    ap.add_argument("--check", action="store_true", help="compare with the expected_* files")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args(argv)
    if args.sleep_scale < 0:
        ap.error("--sleep-scale must be >= 0")

    signal.signal(signal.SIGTERM, _stop_on_signal)
    signal.signal(signal.SIGINT, _stop_on_signal)
    check_ports_free()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="lab5_guide_"))
    try:
        rewrites = copy_guide(work, args.sleep_scale)
        for r in rewrites:
            log(f"rewrote {r['file']}: {r['from']} -> {r['to']}")
        t_all = time.monotonic()
        with guide_main(work) as main_proc:
            started = wait_ports([main_proc], PORTS)
            log(f"main.py: all {len(PORTS)} ports open after {started:.2f} s")
            stdout, lines, sim_time = run_simulator(work, args.report)
            time.sleep(0.1)
            status_text = (work / "simulator" / "status_log.json").read_text()
        total = time.monotonic() - t_all
        status = json.loads(status_text)
        # Phase durations from the simulator's own progress lines.
        marks = {line.strip("-\n"): t for t, line in lines}
        data_start = marks.get("Start requesting data")
        task_start = marks.get("Start requesting longtask")
        phases = {
            "data_phase_s": (task_start - data_start)
            if None not in (data_start, task_start)
            else None,
            "longtask_phase_s": (sim_time - task_start) if task_start is not None else None,
        }
        timing_safe = all(v is not None and v < BINDING_WINDOW for v in phases.values())
        run = {
            "sleep_scale": args.sleep_scale,
            "sleep_rewrites": rewrites,
            "start_s": round(started, 3),
            "simulator_s": round(sim_time, 3),
            **{k: (round(v, 3) if v is not None else None) for k, v in phases.items()},
            "total_s": round(total, 3),
            "phases_shorter_than_60s_window": timing_safe,
            "versions": versions(),
        }
        (args.out / "simulator_output.txt").write_text(stdout)
        (args.out / "status_log.json").write_text(status_text)
        (args.out / "run.json").write_text(json.dumps(run, indent=2) + "\n")
        log(json.dumps(run, indent=2))
        print(json.dumps(status, indent=4))
        if not timing_safe:
            log(
                "WARNING: a phase lasted 60 s or more; rate-limit timestamps may have expired "
                "during it, so MICROSERVICE/APIGATEWAY/CACHE or WORKER counts can differ from "
                "the expected ones (see tests/data/lab5_guide/README.md)"
            )
        if args.probe:
            probes = run_probes(work)
            (args.out / "probes.json").write_text(
                json.dumps(probes, indent=2, ensure_ascii=False) + "\n"
            )
        log(f"outputs in {args.out}/")
        if args.check:
            ok = True
            exp_status = json.loads((GUIDE / "expected_status_log.json").read_text())
            exp_out = (GUIDE / "expected_simulator_output.txt").read_text()
            if status != exp_status:
                ok = False
                log("MISMATCH: status_log.json differs from expected_status_log.json")
            if stdout != exp_out:
                ok = False
                log("MISMATCH: simulator output differs from expected_simulator_output.txt")
            log("check: " + ("same as expected" if ok else "DIFFERENT"))
            return 0 if ok else 1
        return 0
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
