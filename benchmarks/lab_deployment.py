"""Start and stop the reconstructed Flask lab (`flask_lab.py`) as the lab deploys it.

    with flask_lab() as url:   # "http://127.0.0.1:8000"
        ...

Eight component processes, on the lab's fixed ports: the load balancer (8000), three
gateways (5000, 5003, 5006), the cache (5004), the database (5002), the microservice (5001)
and the worker (5005). Each runs with `debug=True`, so each is two processes: Werkzeug's
reloader parent and the serving child. Each component is started in its own session, so
its process group holds both, and stopping it signals the whole group (SIGTERM, then
SIGKILL), on exit and on error alike. The ports must be free before start.
"""

from __future__ import annotations

import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from flask_lab import SECRET_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HOST = "127.0.0.1"
LB_URL = f"http://{HOST}:8000"
# (component, port): the lab's deployment, backends first.
LAYOUT = (
    ("cache", 5004),
    ("database", 5002),
    ("microservice", 5001),
    ("worker", 5005),
    ("gateway", 5000),
    ("gateway", 5003),
    ("gateway", 5006),
    ("load_balancer", 8000),
)
START_TIMEOUT = 60.0  # seconds for every component to answer HTTP
STOP_TIMEOUT = 5.0  # seconds after SIGTERM before SIGKILL


class PortInUse(RuntimeError):
    pass


@dataclass
class Component:
    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    log: IO[bytes] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.name}:{self.port}"

    @property
    def pgid(self) -> int:
        return self.proc.pid  # the session leader's pid is its group's id

    def pids(self) -> list[int]:
        """Live (non-zombie) processes of this component's group, reloader child included."""
        return [
            pid for pid, stat in _proc_stats().items() if stat[1] == self.pgid and stat[0] != "Z"
        ]

    def log_tail(self, chars: int = 2000) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]


@dataclass
class Deployment:
    url: str
    components: list[Component]
    log_dir: Path

    def pids(self) -> dict[str, list[int]]:
        return {c.label: c.pids() for c in self.components}

    def process_count(self) -> int:
        return sum(len(p) for p in self.pids().values())


def _proc_stats() -> dict[int, tuple[str, int, int]]:
    """pid -> (state, pgid, utime + stime in clock ticks) of every process, from /proc."""
    stats = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                raw = f.read().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = raw[raw.rfind(")") + 2 :].split()  # after "pid (comm) "
        # fields[0] is the state (field 3), [2] pgrp (5), [11] utime (14), [12] stime (15)
        stats[int(entry.name)] = (fields[0], int(fields[2]), int(fields[11]) + int(fields[12]))
    return stats


def cpu_ticks(pgids: dict[str, int]) -> dict[str, dict[int, int]]:
    """label -> {pid: utime + stime ticks} for every live process of each process group."""
    by_group: dict[int, str] = {pgid: label for label, pgid in pgids.items()}
    out: dict[str, dict[int, int]] = {label: {} for label in pgids}
    for pid, (state, pgid, ticks) in _proc_stats().items():
        if pgid in by_group and state != "Z":
            out[by_group[pgid]][pid] = ticks
    return out


def check_ports_free(ports: list[int]) -> None:
    busy = []
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Werkzeug binds
            try:
                s.bind((HOST, port))
            except OSError:
                busy.append(port)
    if busy:
        raise PortInUse(
            f"port(s) {', '.join(map(str, busy))} on {HOST} already in use: the Flask lab needs "
            "8000, 5000-5006 free (is another copy of the lab still running?)"
        )


def _answers(port: int) -> bool:
    """True once the port answers HTTP at all (any status: 404 on / is fine)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _start(name: str, port: int, log_dir: Path, secret: str) -> Component:
    log_path = log_dir / f"{name}-{port}.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed by _stop)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WERKZEUG_")}
    env["PYTHONUNBUFFERED"] = "1"
    env[SECRET_ENV] = secret
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "flask_lab.py"), name, str(port)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Component(name, port, proc, log_path, log)


def _stop(component: Component) -> None:
    """SIGTERM the component's process group, SIGKILL what is left after STOP_TIMEOUT."""
    try:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(component.pgid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + STOP_TIMEOUT
            while time.monotonic() < deadline:
                component.proc.poll()  # reap the leader; the reloader child goes to init
                if not component.pids():
                    return
                time.sleep(0.05)
    finally:
        if component.proc.poll() is None:
            component.proc.kill()
        component.proc.wait()
        component.log.close()


def _wait_ready(components: list[Component], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    waiting = list(components)
    while waiting:
        for c in list(waiting):
            if c.proc.poll() is not None:
                raise RuntimeError(
                    f"{c.label} exited with code {c.proc.returncode}:\n{c.log_tail()}"
                )
            if _answers(c.port):
                waiting.remove(c)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(c.label for c in waiting)
            raise RuntimeError(f"not answering after {timeout:g} s: {names}")
        if waiting:
            time.sleep(0.1)


@contextmanager
def deployment(log_dir: Path | None = None, timeout: float = START_TIMEOUT) -> Iterator[Deployment]:
    """Start the whole lab, wait until every port answers, yield it; always stop it all.

    Each component's output (the dev server's access log included) goes to
    `log_dir/NAME-PORT.log`; without `log_dir`, to a temporary folder removed on exit.
    """
    check_ports_free([port for _, port in LAYOUT])
    with ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flask-lab-")))
        log_dir.mkdir(parents=True, exist_ok=True)
        components: list[Component] = []
        try:
            secret = secrets.token_urlsafe(32)  # one per deployment: the gateways share it
            for name, port in LAYOUT:
                components.append(_start(name, port, log_dir, secret))
            _wait_ready(components, timeout)
            yield Deployment(LB_URL, components, log_dir)
        finally:
            for c in reversed(components):  # the load balancer first
                _stop(c)


@contextmanager
def flask_lab(log_dir: Path | None = None, timeout: float = START_TIMEOUT) -> Iterator[str]:
    """The lab, started; yields the load balancer's URL, http://127.0.0.1:8000."""
    with deployment(log_dir, timeout) as lab:
        yield lab.url


if __name__ == "__main__":  # a manual check: start it, show it, stop it on Enter or Ctrl-C
    with deployment() as lab:
        print(f"{lab.url}: {lab.process_count()} processes {lab.pids()}; logs in {lab.log_dir}")
        with suppress(KeyboardInterrupt, EOFError):
            input("Enter stops the lab ... ")
