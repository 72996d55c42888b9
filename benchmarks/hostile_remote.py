"""A split lab whose worker, in "another process", answers its dashboard hostile figures:
what that costs the lab, now and at a baseline commit.

`python -m labsim up --only` serves every component but the worker, with its dashboard;
the worker is a fake served by this script (a thread, 127.0.0.1) that answers `/metrics`
honestly (a few lines), with 15 MB, or with an endless stream of `100 Continue`. For each
case, 3 pages (or none) watch `/api/events` while `_client.py` sends cache-hit
`GET /data` through the load balancer at concurrency 10 for 5 s. Reports the load
balancer's p50 and p99, the `up` process's CPU share and RSS, and how many reads of
`/metrics` the fake answered a second. Rounds interleave the versions; medians.

    python benchmarks/hostile_remote.py [--quick] [--baseline REV]
"""

from __future__ import annotations

import argparse
import os
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from throughput import PY, ROOT, Version, baseline_checkout, load

BASELINE = "13aade0"  # before the dashboard's reads of other processes were bounded
ONLY = "load-balancer,gateways,cache,database,microservice"
ENV = {"LABSIM_ADMIN_TOKEN": "hostile-" + "a" * 40}
FAULTS = b'{"component": "worker", "faults": {"latency": 0.0, "down": false, "hang": false}}'
HONEST = b'labsim_worker_submitted_total{component="worker"} 0\n'
LINE = b'labsim_worker_submitted_total{component="worker",n="%d"} 1\n'
BIG = b"".join(LINE % i for i in range(15_000_000 // len(LINE % 0)))
CASES = ("no page", "3 pages, honest", "3 pages, 15 MB /metrics", "3 pages, endless 100s")


class _Worker(socketserver.BaseRequestHandler):
    """The fake worker: one keep-alive connection, answered as `server.case` says."""

    server: _Server

    def handle(self) -> None:
        conn, buffer = self.request, b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1]
                if path == b"/admin/faults":
                    self._answer(FAULTS)
                    continue
                self.server.reads += 1
                if self.server.case.endswith("100s"):
                    while True:
                        conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)
                self._answer(BIG if self.server.case.endswith("/metrics") else HONEST)
        except OSError:
            return

    def _answer(self, body: bytes) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        self.request.sendall(head + body)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, case: str) -> None:
        super().__init__(("127.0.0.1", port), _Worker)
        self.case, self.reads = case, 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def lab(version: Version, folder: str, case: str) -> Iterator[tuple[str, int, _Server]]:
    """(load balancer URL, `up`'s pid, the fake worker) of a running split lab."""
    ports = [_free_port() for _ in range(9)]
    lb, g1, g2, g3, cache, db, worker, micro, panel = ports
    path = Path(folder) / f"hostile-{lb}.toml"
    text = (ROOT / "scenarios/zero-latency.toml").read_text()
    ids = ("load_balancer", "gateways", "cache", "database", "worker", "microservice")
    for section, port in zip(ids, (lb, None, cache, db, worker, micro), strict=True):
        key = f"ports = [{g1}, {g2}, {g3}]" if port is None else f"port = {port}"
        text = text.replace(f"[{section}]\n", f"[{section}]\n{key}\n", 1)
    path.write_text(text)
    fake = _Server(worker, case)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    args = [PY, "-m", "labsim", "up", "--scenario", str(path), "--only", ONLY, "--quiet"]
    args += ["--dashboard-port", str(panel)]
    proc = subprocess.Popen(
        args, cwd=version.root, env=version.env() | ENV, stdout=subprocess.PIPE, text=True
    )
    pages: list[threading.Thread] = []
    stop = threading.Event()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "Press Ctrl-C" not in (proc.stdout.readline() or "x"):
            pass
        for _ in range(0 if case == "no page" else 3):
            page = threading.Thread(target=_watch, args=(panel, stop), daemon=True)
            page.start()
            pages.append(page)
        time.sleep(1.0)  # the pages connected, the first ticks read
        yield f"http://127.0.0.1:{lb}", proc.pid, fake
    finally:
        stop.set()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        fake.shutdown()
        fake.server_close()


def _watch(port: int, stop: threading.Event) -> None:
    """A page: reads the event stream, reconnecting when it ends, until `stop`."""
    while not stop.is_set():
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/events", timeout=5) as r:
                while not stop.is_set() and r.readline():
                    pass
        except OSError:
            time.sleep(0.5)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(version: Version, folder: str, case: str, duration: float) -> dict[str, float]:
    with lab(version, folder, case) as (url, pid, fake):
        cpu, reads, started = _cpu_seconds(pid), fake.reads, time.monotonic()
        result = load(url, 10, duration, login=True)
        took = time.monotonic() - started
        return {
            "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"],
            "cpu": (_cpu_seconds(pid) - cpu) / took,
            "rss_mb": _rss_mb(pid),
            "reads_s": (fake.reads - reads) / took,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s (default 3 of 5 s)")
    parser.add_argument("--baseline", default=BASELINE)
    args = parser.parse_args(argv)
    rounds, duration = (1, 2.0) if args.quick else (3, 5.0)
    now = Version("now", "this checkout", ROOT)
    runs: dict[tuple[str, str], list[dict[str, float]]] = {}
    with baseline_checkout(args.baseline) as base, tempfile.TemporaryDirectory() as folder:
        for r in range(rounds):
            for case in CASES:
                for version in (base, now):
                    figures = measure(version, folder, case, duration)
                    runs.setdefault((case, version.name), []).append(figures)
                    print(f"  round {r + 1} {version.name:8} {case}: {figures}", file=sys.stderr)
        label = base.label
    print(
        "| case | version | LB p50 ms | LB p99 ms | `up` CPU | `up` RSS MB | reads of /metrics/s |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for case in CASES:
        for name, shown in (("baseline", label), ("now", "now")):
            got = {
                k: statistics.median(f[k] for f in runs[(case, name)])
                for k in runs[(case, name)][0]
            }
            print(
                f"| {case} | {shown} | {got['p50_ms']:.2f} | {got['p99_ms']:.2f} | "
                f"{got['cpu']:.0%} | {got['rss_mb']:.0f} | {got['reads_s']:.1f} |"
            )
    print(
        f"\nMeasured with `python benchmarks/hostile_remote.py` ({rounds} interleaved rounds "
        f"of {duration:g} s, medians; baseline {label})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
