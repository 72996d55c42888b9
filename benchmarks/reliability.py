"""labsim under hostile clients: memory, slow connections, a hung database; prints a table.

Each measurement starts its own `python -m labsim up` (real clock, free ports on
127.0.0.1, a scenario written to a temp dir) and always stops it (SIGINT, then kill):

1. Memory under amplification: the `up` process's RSS before and after 40 JSON bodies
   of `{"value": [[],[],...]}` (a few bytes each that parse into a Python list of ~80
   bytes) to `POST worker/task` and 40 to `POST cache/cache/k<i>`. First one 0.9 MB body
   (should be refused, 413) and one just under 64 KiB (should be accepted) to each; the
   40 then have the largest size that was accepted. Target: growth under 50 MB.
2. Slow clients: 2,000 raw TCP connections to the load balancer, each sending half a
   request head and then nothing (every 10th: one more header byte a second). While
   they are open, a normal client (aiohttp, concurrency 10, logged in, new connections)
   sends `GET /data` for 5 s; the same client alone, just before, is the reference.
   Twice: "held" (a connection the server closes stays closed) and "reconnecting" (it
   is opened again after 1 s, so the pressure lasts). Reports the share answered,
   p50/p99, the CPU share of this process and of `up`, and after how long the server
   closed the slow connections (and how: EOF, reset or an answer).
3. A hung database (`POST database/admin/faults {"hang": true}`): how long a cache-miss
   `GET /data` through the load balancer waits, and its status and body.

    python benchmarks/reliability.py [--quick] [--json PATH] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import json
import math
import os
import platform
import resource
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HOST = "127.0.0.1"
USER = {"username": "user1", "password": "password123"}
START_TIMEOUT = 30.0  # seconds for `up` to say it serves
STOP_TIMEOUT = 10.0  # seconds after SIGINT before the kill
REQUEST_TIMEOUT = 10.0  # seconds for any request of the normal client or the setup
BODY_TIMEOUT = 30.0  # seconds for one big body to be sent and answered
HANG_CLIENT_TIMEOUT = 45.0  # seconds the client waits on the hung database
CONNECT_TIMEOUT = 5.0  # seconds for one raw TCP connect
REOPEN_PAUSE = 1.0  # seconds before a slow client opens a connection the server closed
MAX_OPENS_PER_SLOT = 30  # connections one slow client may open in one run
TRICKLE_EVERY = 10  # every 10th slow connection sends one more byte a second
RSS_SAFETY_MB = 4096  # stop sending bodies once the server has grown this much
BIG_BODY = 900_000  # bytes: should now be refused with 413
SMALL_BODY = 65_000  # bytes: just under 64 KiB, should be accepted
HALF_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n"
PHASES = ("held", "reconnecting")  # the slow clients' two phases
# Scenario settings: hop latencies stay the lab's (1 ms); the database answers in 0.2 s
# (under its 1 s timeout), a worker task takes 50 ms.
SETTINGS: dict[str, Any] = {
    "database.latency": 0.2,
    "worker.task_duration": 0.05,
    "limits.head_timeout": 2.0,
    "database.timeout": 1.0,
}


@dataclass(frozen=True)
class Plan:
    bodies: int = 40  # amplifying bodies per endpoint
    slow: int = 2000  # slow connections
    concurrency: int = 10  # normal client
    duration: float = 5.0  # seconds per normal-client phase
    close_wait: float = 15.0  # seconds to wait for the server to close slow connections


QUICK = Plan(bodies=10, slow=500, duration=4.0, close_wait=6.0)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank q-th percentile of an already sorted list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def poll(test: Callable[[], bool], limit: float) -> float:
    """Seconds until `test()` holds, looking every 50 ms, for at most `limit` s."""
    start = time.perf_counter()
    # Polled: what is waited on is a process or plain counters, with no event to wait for.
    while not test() and time.perf_counter() - start < limit:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return time.perf_counter() - start


def free_ports(n: int) -> list[int]:
    """n distinct ports on 127.0.0.1 that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


class Scenario:
    """The scenario's settings; `write` puts them, with fresh ports, in a TOML file."""

    def __init__(self, user: dict[str, Any]) -> None:
        self.user = dict(user)  # --set

    def settings(self) -> dict[str, Any]:
        return {**SETTINGS, **self.user}

    def value(self, key: str) -> Any:
        return self.settings().get(key)

    def write(self, path: Path, ports: list[int]) -> None:
        lb, g1, g2, g3, cache, db, worker, micro = ports
        tables: dict[str, dict[str, Any]] = {
            "load_balancer": {"port": lb},
            "gateways": {"ports": [g1, g2, g3]},
            "cache": {"port": cache},
            "database": {"port": db},
            "worker": {"port": worker},
            "microservice": {"port": micro},
        }
        top: dict[str, Any] = {"name": "reliability"}
        for key, value in self.settings().items():
            section, _, name = key.rpartition(".")
            if section:
                tables.setdefault(section, {})[name] = value
            else:
                top[name] = value
        lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
        for section, keys in tables.items():
            lines += ["", f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in keys.items()]
        path.write_text("\n".join(lines) + "\n")


# Every `up` this script started, killed at exit if something skipped its `stop`.
_RUNNING: set[subprocess.Popen[bytes]] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_RUNNING):
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Lab:
    """One `python -m labsim up` on free ports; `stop` always ends it."""

    def __init__(self, scenario: Scenario, workdir: Path, admin_token: str, name: str) -> None:
        self.ports = free_ports(8)
        lb, cache, db, worker = self.ports[0], *self.ports[4:7]
        self.lb = f"http://{HOST}:{lb}"
        self.lb_port = lb
        self.cache = f"http://{HOST}:{cache}"
        self.database = f"http://{HOST}:{db}"
        self.worker = f"http://{HOST}:{worker}"
        path = workdir / f"{name}.toml"
        scenario.write(path, self.ports)
        self.out = open(workdir / f"{name}.out", "w+b")  # noqa: SIM115 (closed in stop)
        self.err = open(workdir / f"{name}.err", "w+b")  # noqa: SIM115
        env = {**os.environ, "LABSIM_ADMIN_TOKEN": admin_token}
        args = [PY, "-m", "labsim", "up", "--scenario", str(path), "--no-dashboard", "--quiet"]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err
        )
        _RUNNING.add(self.proc)
        self.pid = self.proc.pid

    async def started(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if b"Press Ctrl-C" in self._read(self.out):
                return
            if self.proc.poll() is not None:
                error = self._read(self.err).decode(errors="replace").strip()
                raise RuntimeError(f"up did not start (exit {self.proc.returncode}): {error}")
            await asyncio.sleep(0.05)
        raise RuntimeError(f"up did not start within {START_TIMEOUT:g} s")

    @staticmethod
    def _read(f: Any) -> bytes:
        f.flush()
        f.seek(0)
        return f.read()

    async def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGINT)
                await poll(lambda: self.proc.poll() is not None, STOP_TIMEOUT)
                if self.proc.poll() is None:
                    log(
                        f"  up (pid {self.pid}) still running {STOP_TIMEOUT:g} s after SIGINT: kill"
                    )
                    self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            _RUNNING.discard(self.proc)
            self.out.close()
            self.err.close()

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024

    def peak_mb(self) -> float:
        return _status_kb(self.pid, "VmHWM") / 1024

    def open_files_limit(self) -> str:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.pid}/limits").read_text().splitlines():
                if line.startswith("Max open files"):
                    return line.split()[3]
        return "unknown"


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


@contextlib.asynccontextmanager
async def lab(scenario: Scenario, workdir: Path, token: str, name: str) -> AsyncIterator[Lab]:
    """A started `up`, stopped on the way out."""
    running = Lab(scenario, workdir, token, name)
    try:
        await running.started()
        yield running
    finally:
        await running.stop()


def session(limit: int = 100, timeout: float = REQUEST_TIMEOUT) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit),
        timeout=aiohttp.ClientTimeout(total=timeout, connect=CONNECT_TIMEOUT),
    )


async def login(http: aiohttp.ClientSession, base: str) -> str:
    async with http.post(f"{base}/login", json=USER) as resp:
        if resp.status != 200:
            raise RuntimeError(f"POST {base}/login answered {resp.status}")
        return (await resp.json())["token"]


def outcome(e: BaseException) -> str:
    """A failed request as the status column shows it."""
    return "timeout" if isinstance(e, TimeoutError) else type(e).__name__


# 1. Memory under amplification ----------------------------------------------------------


def amplifying_body(size: int) -> bytes:
    """`{"value": [[],[],...]}` of about `size` bytes (never more)."""
    head, tail = b'{"value": [', b"[]]}"
    n = max(0, (size - len(head) - len(tail)) // 3)
    return head + b"[]," * n + tail


async def post_body(http: aiohttp.ClientSession, url: str, body: bytes) -> str:
    headers = {"Content-Type": "application/json"}
    try:
        async with http.post(url, data=body, headers=headers) as resp:
            await resp.read()
            return str(resp.status)
    except (aiohttp.ClientError, TimeoutError) as e:
        return outcome(e)


async def measure_memory(plan: Plan, scenario: Scenario, workdir: Path, token: str) -> dict:
    log("1. memory under amplifying JSON bodies ...")
    async with lab(scenario, workdir, token, "memory") as up, session(10, BODY_TIMEOUT) as http:
        await asyncio.sleep(0.5)  # let start-up settle before the baseline
        before = up.rss_mb()
        targets = {"worker": f"{up.worker}/task", "cache": f"{up.cache}/cache/k{{i}}"}
        result: dict[str, Any] = {"rss_before_mb": round(before, 1), "endpoints": {}}
        stopped_early = False
        for name, url in targets.items():
            probes = {}
            for size in (BIG_BODY, SMALL_BODY):
                probes[size] = await post_body(
                    http, url.format(i=f"probe{size}"), amplifying_body(size)
                )
            accepted = [s for s, status in probes.items() if status.startswith("2")]
            size = max(accepted, default=SMALL_BODY)
            body = amplifying_body(size)
            statuses: Counter[str] = Counter()
            for i in range(plan.bodies):
                if up.rss_mb() - before > RSS_SAFETY_MB:
                    stopped_early = True
                    log(f"  server grew over {RSS_SAFETY_MB} MB: no more bodies")
                    break
                statuses[await post_body(http, url.format(i=i), body)] += 1
            result["endpoints"][name] = {
                "probe_0_9MB": probes[BIG_BODY],
                "probe_under_64KiB": probes[SMALL_BODY],
                "body_bytes": len(body),
                "sent": sum(statuses.values()),
                "statuses": dict(statuses),
            }
            log(
                f"  {name}: probes {probes}; {len(body)} B x {sum(statuses.values())}: "
                f"{dict(statuses)}"
            )
        result["worker_tasks_done"] = await wait_for_worker(http, up.worker)
        await asyncio.sleep(0.2)
        after, peak = up.rss_mb(), up.peak_mb()
    result.update(
        rss_after_mb=round(after, 1),
        rss_peak_mb=round(peak, 1),
        growth_mb=round(after - before, 1),
        stopped_early=stopped_early,
    )
    log(f"  RSS {before:.1f} -> {after:.1f} MB (peak {peak:.1f} MB)")
    return result


async def wait_for_worker(http: aiohttp.ClientSession, worker: str, limit: float = 15.0) -> bool:
    """True once the worker's /health shows every submitted task completed (at most `limit` s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError, KeyError):
            async with http.get(f"{worker}/health") as resp:
                counters = (await resp.json())["counters"]
            if counters.get("completed", 0) >= counters.get("submitted", 0) and not (
                counters.get("queued", 0) or counters.get("running", 0)
            ):
                return True
        await asyncio.sleep(0.1)
    return False


# 2. Slow clients ------------------------------------------------------------------------


async def normal_client(base: str, token: str, concurrency: int, duration: float) -> dict:
    """`GET /data` back to back from `concurrency` coroutines for `duration` s, new connections."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    sent = 0
    max_requests = 100_000
    headers = {"Authorization": token}
    async with session(concurrency) as http:
        start = time.perf_counter()
        deadline = start + duration

        async def worker() -> None:
            nonlocal sent
            while sent < max_requests and time.perf_counter() < deadline:
                sent += 1
                t0 = time.perf_counter()
                try:
                    async with http.get(f"{base}/data", headers=headers) as resp:
                        await resp.read()
                        status = str(resp.status)
                except (aiohttp.ClientError, TimeoutError) as e:
                    status = outcome(e)
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    answered = statuses["200"]
    return {
        "requests": len(ms),
        "answered_200": answered,
        "answered_pct": round(100 * answered / len(ms), 2) if ms else 0.0,
        "rps": round(answered / elapsed, 1),
        "p50_ms": _round(percentile(ms, 50)),
        "p99_ms": _round(percentile(ms, 99)),
        "max_ms": _round(ms[-1] if ms else None),
        "statuses": dict(statuses),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


class SlowClients:
    """`n` raw connections that send half a request head and never finish it.

    With `reopen`, a connection the server closed is opened again after `REOPEN_PAUSE`
    (until `wait_closed`), as a slow-loris client that comes back would do.
    """

    def __init__(self, port: int, n: int, reopen: bool) -> None:
        self.port = port
        self.n = n
        self.reopen = reopen
        self.closes: dict[str, list[float]] = {"idle": [], "trickle": []}  # seconds open
        self.reactions: Counter[str] = Counter()  # what the server did: EOF, reset, answer
        self.connect_errors: Counter[str] = Counter()
        self.opened = 0
        self.open_now = 0
        self.held: list[int] = []  # open_now, sampled while the normal client runs
        self.connecting = asyncio.Semaphore(100)
        self.give_up: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self.slot(i)) for i in range(self.n)]

    async def wait_open(self, limit: float) -> float:
        """Seconds until every slot has connected once (or failed to), at most `limit`."""
        return await poll(lambda: self.opened + sum(self.connect_errors.values()) >= self.n, limit)

    async def sample_held(self) -> None:
        """Every 100 ms, how many connections are held (until cancelled)."""
        for _ in range(10_000):
            self.held.append(self.open_now)
            await asyncio.sleep(0.1)

    async def wait_closed(self, limit: float) -> float:
        """Stop reopening; wait until the server has closed every connection, at most `limit` s."""
        self.reopen = False
        return await poll(lambda: not self.open_now, limit)

    async def stop(self) -> None:
        if not self.give_up.done():
            self.give_up.set_result(None)
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def slot(self, i: int) -> None:
        kind = "trickle" if i % TRICKLE_EVERY == TRICKLE_EVERY - 1 else "idle"
        for opens in range(MAX_OPENS_PER_SLOT):
            if opens and not self.reopen:
                return
            try:
                async with self.connecting:
                    reader, writer = await asyncio.wait_for(
                        asyncio.open_connection(HOST, self.port), CONNECT_TIMEOUT
                    )
            except (OSError, TimeoutError) as e:
                self.connect_errors[outcome(e)] += 1
            else:
                self.opened += 1
                self.open_now += 1
                try:
                    await self.hold(kind, reader, writer)
                finally:
                    self.open_now -= 1
                    writer.transport.abort()
            if self.give_up.done():
                return
            await asyncio.wait([self.give_up], timeout=REOPEN_PAUSE)

    async def hold(
        self, kind: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Send half a head, then wait (trickling a byte a second) until the server reacts."""
        opened = time.perf_counter()
        try:
            writer.write(HALF_HEAD + (b"X-Slow: " if kind == "trickle" else b""))
            read = asyncio.ensure_future(reader.read(256))
            try:
                while not read.done() and not self.give_up.done():
                    timeout = 1.0 if kind == "trickle" else None
                    await asyncio.wait(
                        [read, self.give_up], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                    if kind == "trickle" and not read.done():
                        writer.write(b"a")
                if not read.done():
                    return  # we gave up first: the server never closed it
                data = read.result()
            finally:
                read.cancel()
        except (ConnectionError, OSError) as e:
            reaction = type(e).__name__
        else:
            if not data:
                reaction = "closed (EOF, no answer)"
            else:
                reaction = "answered " + data.split(b"\r\n", 1)[0].decode(errors="replace")[:40]
        self.closes[kind].append(time.perf_counter() - opened)
        self.reactions[reaction] += 1

    def figures(self) -> dict[str, Any]:
        closes = sorted(self.closes["idle"] + self.closes["trickle"])
        return {
            "opened_total": self.opened,
            "connect_errors": dict(self.connect_errors),
            "held_during": {
                "mean": round(sum(self.held) / len(self.held)) if self.held else None,
                "min": min(self.held, default=None),
            },
            "closed_after_s": {
                kind: {
                    "count": len(v),
                    "p50": _round(percentile(sorted(v), 50)),
                    "max": _round(max(v, default=None)),
                }
                for kind, v in (("all", closes), *self.closes.items())
            },
            "server_reactions": dict(self.reactions),
        }


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; (soft, hard) after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1_048_576
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def fds_in_use() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def normal_phase(plan: Plan, up: Lab, token: str, slow: SlowClients | None) -> dict:
    """The normal client's run, with the CPU share of this process and of `up` meanwhile."""
    wall, mine, server = time.perf_counter(), time.process_time(), cpu_seconds(up.pid)
    sampler = asyncio.create_task(slow.sample_held()) if slow else None
    try:
        figures = await normal_client(up.lb, token, plan.concurrency, plan.duration)
    finally:
        if sampler:
            sampler.cancel()
    wall = time.perf_counter() - wall
    figures["client_cpu_pct"] = round(100 * (time.process_time() - mine) / wall)
    figures["up_cpu_pct"] = round(100 * (cpu_seconds(up.pid) - server) / wall)
    log(f"    {figures}")
    return figures


async def slow_phase(
    plan: Plan, up: Lab, token: str, n: int, reopen: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Open `n` slow connections, run the normal client, wait for the server to close them."""
    slow = SlowClients(up.lb_port, n, reopen)
    facts: dict[str, Any] = {"connections": n}
    try:
        slow.start()
        facts["open_s"] = round(await slow.wait_open(30.0), 2)
        facts["opened_first"] = slow.opened
        facts["held_at_start"] = slow.open_now
        how = "reconnecting" if reopen else "held, not reconnecting"
        log(
            f"  {slow.opened} slow connections ({how}) opened in {facts['open_s']} s, "
            f"{slow.open_now} held; normal client, {plan.duration:g} s ..."
        )
        normal = await normal_phase(plan, up, token, slow)
        facts["held_at_end"] = slow.open_now
        facts["close_wait_s"] = round(await slow.wait_closed(plan.close_wait), 2)
        facts["still_open"] = slow.open_now
    finally:
        await slow.stop()
    facts.update(slow.figures())
    log(f"    slow connections: {facts}")
    return normal, facts


async def measure_slow_clients(plan: Plan, scenario: Scenario, workdir: Path, token: str) -> dict:
    log("2. slow clients ...")
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    spare = soft - fds_in_use() - 4 * plan.concurrency - 100
    n = min(plan.slow, spare)
    result: dict[str, Any] = {"planned": plan.slow, "connections": n, "fd_soft_limit": soft}
    if n < 50:
        log(f"  only {soft} file descriptors: slow clients skipped")
        result["skipped"] = f"RLIMIT_NOFILE soft limit {soft} leaves too few fds"
        return result
    if n < plan.slow:
        log(f"  fd limit {soft}: {n} slow connections instead of {plan.slow}")
    async with lab(scenario, workdir, token, "slow") as up:
        result["server_fd_limit"] = up.open_files_limit()
        async with session(4) as http:
            user_token = await login(http, up.lb)
            async with http.get(f"{up.lb}/data", headers={"Authorization": user_token}) as resp:
                await resp.read()  # fill the cache: the measured requests are hits
                if resp.status != 200:
                    raise RuntimeError(f"warm-up GET /data answered {resp.status}")
        log(f"  normal client alone, {plan.duration:g} s ...")
        result["before"] = await normal_phase(plan, up, user_token, None)
        result["held"], result["slow_held"] = await slow_phase(plan, up, user_token, n, False)
        result["reconnecting"], result["slow_reconnecting"] = await slow_phase(
            plan, up, user_token, n, True
        )
    return result


# 3. A hung database ---------------------------------------------------------------------


async def timed_get_data(
    http: aiohttp.ClientSession, base: str, user_token: str
) -> tuple[int | str, str, float]:
    """`GET /data`, waiting at most HANG_CLIENT_TIMEOUT s: (status, body, seconds waited)."""
    t0 = time.perf_counter()
    timeout = aiohttp.ClientTimeout(total=HANG_CLIENT_TIMEOUT)
    try:
        async with http.get(
            f"{base}/data", headers={"Authorization": user_token}, timeout=timeout
        ) as resp:
            status, body = resp.status, (await resp.read()).decode(errors="replace")
    except (aiohttp.ClientError, TimeoutError) as e:
        status, body = outcome(e), f"no answer ({e!r})"
    return status, body[:300], round(time.perf_counter() - t0, 2)


async def measure_hung_database(scenario: Scenario, workdir: Path, token: str) -> dict:
    log("3. a hung database ...")
    admin = {"Authorization": f"Bearer {token}"}
    result: dict[str, Any] = {}
    async with lab(scenario, workdir, token, "hung") as up, session(4) as http:
        user_token = await login(http, up.lb)
        async with http.post(
            f"{up.database}/admin/faults", json={"hang": True}, headers=admin
        ) as r:
            result["hang_status"] = r.status
            if r.status != 200:
                raise RuntimeError(f"POST /admin/faults answered {r.status}: {await r.text()}")
        try:
            result["status"], result["body"], result["waited_s"] = await timed_get_data(
                http, up.lb, user_token
            )
            log(f"  GET /data: {result['status']} after {result['waited_s']} s: {result['body']}")
        finally:
            async with http.post(f"{up.database}/admin/reset", headers=admin) as r:
                result["reset_status"] = r.status
        # Back to normal: the same read, now answered by the database.
        status, _body, waited = await timed_get_data(http, up.lb, user_token)
        result["after_reset"] = {"status": status, "waited_s": waited}
        log(f"  after reset: {result['after_reset']}")
    result["names_database"] = "database" in result["body"].lower()
    return result


# Report ---------------------------------------------------------------------------------


def _fmt(x: Any, unit: str = "") -> str:
    return "n/a" if x is None else f"{x:g}{unit}" if isinstance(x, float) else f"{x}{unit}"


def checks(report: dict, scenario: Scenario) -> list[tuple[str, str, bool]]:
    rows: list[tuple[str, str, bool]] = []
    mem = report.get("memory")
    if mem:
        rows.append(("RSS growth < 50 MB", f"{mem['growth_mb']:g} MB", mem["growth_mb"] < 50))
        for name, e in mem["endpoints"].items():
            rows.append(
                (f"{name}: 0.9 MB body refused 413", e["probe_0_9MB"], e["probe_0_9MB"] == "413")
            )
            rows.append(
                (
                    f"{name}: 64 KiB body accepted",
                    e["probe_under_64KiB"],
                    e["probe_under_64KiB"].startswith("2"),
                )
            )
    slow = report.get("slow_clients")
    if slow and "skipped" not in slow:
        head = scenario.value("limits.head_timeout")
        for phase in PHASES:
            f, facts = slow[phase], slow[f"slow_{phase}"]
            rows.append(
                (
                    f"normal client answered ≥ 99 %, slow connections {phase}",
                    f"{f['answered_pct']:g} %",
                    f["answered_pct"] >= 99,
                )
            )
            worst = facts["closed_after_s"]["all"]["max"]
            rows.append(
                (
                    f"slow connections ({phase}) closed within head_timeout + 1 s ({head:g} + 1 s)",
                    f"{facts['still_open']} still open, max {_fmt(worst, ' s')}",
                    facts["still_open"] == 0 and worst is not None and worst <= head + 1,
                )
            )
    hung = report.get("hung_database")
    if hung:
        limit = scenario.value("database.timeout") + 1
        rows.append(
            (
                f"hung database: 504 naming it within {limit:g} s",
                f"{hung['status']} after {hung['waited_s']:g} s",
                hung["status"] == 504 and hung["names_database"] and hung["waited_s"] <= limit,
            )
        )
    return rows


def render(report: dict, scenario: Scenario) -> str:
    lines = []
    mem = report.get("memory")
    if mem:
        lines += [
            "Memory under amplifying JSON bodies (`up` process RSS):",
            "",
            "| endpoint | 0.9 MB probe | <64 KiB probe | body bytes | sent | statuses |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for name, e in mem["endpoints"].items():
            statuses = ", ".join(f"{k}: {v}" for k, v in e["statuses"].items())
            lines.append(
                f"| {name} | {e['probe_0_9MB']} | {e['probe_under_64KiB']} | {e['body_bytes']} "
                f"| {e['sent']} | {statuses} |"
            )
        lines += [
            "",
            f"RSS {mem['rss_before_mb']:g} MB before, {mem['rss_after_mb']:g} MB after "
            f"(growth {mem['growth_mb']:g} MB, peak {mem['rss_peak_mb']:g} MB); worker tasks "
            f"all done: {'yes' if mem['worker_tasks_done'] else 'no'}"
            + ("; stopped early at the safety cap" if mem["stopped_early"] else ""),
            "",
        ]
    slow = report.get("slow_clients")
    if slow and "skipped" in slow:
        lines += [f"Slow clients: skipped ({slow['skipped']}).", ""]
    elif slow:
        lines += [
            f"Normal client (`GET /data`, concurrency {report['plan']['concurrency']}, "
            f"{report['plan']['duration']:g} s each, new connections) alone, then with "
            f"{slow['connections']} slow connections to the load balancer, first held (not "
            "reopened when the server closes them), then reconnecting after 1 s:",
            "",
            "| normal client | requests | answered % | req/s | p50 ms | p99 ms | max ms "
            "| slow held, mean (min) | client CPU % | up CPU % |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in ("before", *PHASES):
            f = slow[phase]
            held = slow.get(f"slow_{phase}", {}).get("held_during")
            held_text = f"{_fmt(held['mean'])} ({_fmt(held['min'])})" if held else "0"
            name = "alone (before)" if phase == "before" else f"slow connections {phase}"
            lines.append(
                f"| {name} | {f['requests']} | {f['answered_pct']:g} | {f['rps']:g} "
                f"| {_fmt(f['p50_ms'])} | {_fmt(f['p99_ms'])} | {_fmt(f['max_ms'])} "
                f"| {held_text} | {f['client_cpu_pct']} | {f['up_cpu_pct']} |"
            )
        lines.append("")
        for phase in PHASES:
            facts = slow[f"slow_{phase}"]
            c = facts["closed_after_s"]
            reactions = ", ".join(f"{k}: {v}" for k, v in facts["server_reactions"].items())
            lines += [
                f"Slow connections {phase}: {facts['opened_first']} opened in "
                f"{facts['open_s']:g} s, {facts['held_at_start']} held then, "
                f"{facts['opened_total']} opened in all, connect errors "
                f"{facts['connect_errors'] or 'none'}. Closed by the server: "
                f"{c['all']['count']}, after p50 {_fmt(c['all']['p50'], ' s')}, max "
                f"{_fmt(c['all']['max'], ' s')} (idle p50 {_fmt(c['idle']['p50'], ' s')}, "
                f"trickling p50 {_fmt(c['trickle']['p50'], ' s')}); still open "
                f"{facts['close_wait_s']:g} s after the normal client's run: "
                f"{facts['still_open']}. How: {reactions or 'none'}.",
                "",
            ]
    hung = report.get("hung_database")
    if hung:
        lines += [
            f"Hung database, cache-miss `GET /data` through the load balancer: "
            f"{hung['status']} after {hung['waited_s']:g} s: `{hung['body']}`; reset "
            f"{hung['reset_status']}, then {hung['after_reset']['status']} after "
            f"{hung['after_reset']['waited_s']:g} s.",
            "",
        ]
    for name, error in report.get("errors", {}).items():
        lines += [f"{name}: FAILED: {error}", ""]
    lines += ["| target | measured | holds |", "|---|---:|:---:|"]
    lines += [
        f"| {name} | {value} | {'yes' if ok else '**NO**'} |"
        for name, value, ok in checks(report, scenario)
    ]
    return "\n".join(lines)


async def run_all(plan: Plan, scenario: Scenario, report: dict) -> None:
    # SIGTERM, like Ctrl-C, cancels the run, so every `up` is still stopped on the way out.
    main_task = asyncio.current_task()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    token = secrets.token_hex(20)  # 40 characters, this run's admin token
    with tempfile.TemporaryDirectory(prefix="labsim-reliability-") as tmp:
        workdir = Path(tmp)
        steps = (
            ("memory", lambda: measure_memory(plan, scenario, workdir, token), 300),
            ("slow_clients", lambda: measure_slow_clients(plan, scenario, workdir, token), 300),
            ("hung_database", lambda: measure_hung_database(scenario, workdir, token), 200),
        )
        for name, step, limit in steps:
            try:
                async with asyncio.timeout(limit):
                    report[name] = await step()
            except Exception as e:  # one failed measurement does not hide the others
                error = f"{type(e).__name__}: {e}"
                if isinstance(e, TimeoutError) and not str(e):
                    error = f"did not finish within {limit} s"
                log(f"  {name} failed: {error}")
                report.setdefault("errors", {})[name] = error


def parse_set(values: list[str]) -> dict[str, Any]:
    settings = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE, e.g. limits.head_timeout=2")
        try:
            settings[key.strip()] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            settings[key.strip()] = raw  # a bare word: a string
    return settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, shorter runs")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a scenario setting (TOML value), e.g. limits.head_timeout=2 or "
        "database.timeout=1; repeatable; overrides the script's own",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    scenario = Scenario(parse_set(args.set))
    soft, hard = raise_fd_limit()  # before any `up` starts: it inherits the limit
    command = "python benchmarks/reliability.py" + "".join(
        [" --quick" if args.quick else "", *(f" --set {shlex.quote(s)}" for s in args.set)]
    )
    started = time.perf_counter()
    report: dict[str, Any] = {
        "command": command,
        "plan": plan.__dict__,
        "fd_limit": {"soft": soft, "hard": hard},
    }
    try:
        asyncio.run(run_all(plan, scenario, report))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log("interrupted: every `up` this run started is stopped")
        return 130
    finally:
        _kill_leftovers()
    report["scenario"] = {"settings": scenario.settings()}
    report["checks"] = [
        {"target": n, "measured": v, "holds": ok} for n, v, ok in checks(report, scenario)
    ]
    report["wall_s"] = round(time.perf_counter() - started, 1)
    report["python"] = platform.python_version()
    report["aiohttp"] = aiohttp.__version__
    settings = ", ".join(f"{k} = {toml_value(v)}" for k, v in scenario.settings().items())
    print(render(report, scenario))
    print(
        f"\nMeasured with `{command}` in {report['wall_s']:g} s on {os.cpu_count()} cores, "
        f"Python {report['python']}, aiohttp {report['aiohttp']}; scenario: the lab's "
        f"latencies with {settings}."
    )
    line = json.dumps(report, sort_keys=True)
    print(line)
    if args.json:
        Path(args.json).write_text(line + "\n")
    return 1 if report.get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
