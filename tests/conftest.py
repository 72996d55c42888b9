"""Shared fixtures: topologies with tiny latencies, clusters on free ports, HTTP clients."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from labsim.components.cluster import Cluster
from labsim.core.clock import Clock, RealClock, VirtualClock
from labsim.core.http import HttpClient
from labsim.model.config import Topology
from labsim.model.scenario import merge_tables
from labsim.model.topology import topology_from_dict

# The lab's shape with latencies small enough for tests on the real clock.
FAST: dict[str, Any] = {
    "load_balancer": {"latency": 0},
    "gateways": {"latency": 0},
    "cache": {"latency": 0},
    "database": {"latency": 0.01},
    "worker": {"latency": 0, "task_duration": 0.05},
    "microservice": {"latency": 0},
}


def make_topology(changes: dict[str, Any] | None = None, base: dict[str, Any] = FAST) -> Topology:
    return topology_from_dict(merge_tables(base, changes or {}), "test")


@pytest.fixture
async def start_cluster():
    """start_cluster(changes=None, clock=None) -> a started Cluster on free ports."""
    started: list[Cluster] = []

    async def start(
        changes: dict[str, Any] | None = None,
        clock: Clock | None = None,
        topology: Topology | None = None,
    ) -> Cluster:
        cluster = Cluster(topology or make_topology(changes), clock or RealClock(), ephemeral=True)
        await cluster.start()
        started.append(cluster)
        return cluster

    yield start
    for cluster in started:
        await cluster.stop()


@pytest.fixture
async def sim(start_cluster):
    """sim(changes) -> (cluster, clock, client) on the virtual clock."""
    clients: list[HttpClient] = []

    async def make(changes: dict[str, Any] | None = None):
        clock = VirtualClock()
        cluster = await start_cluster(changes, clock)
        client = HttpClient(clock)
        clients.append(client)
        return cluster, clock, client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def cluster(start_cluster) -> Cluster:
    return await start_cluster()


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def login(http: aiohttp.ClientSession, url: str) -> str:
    async with http.post(
        f"{url}/login", json={"username": "user1", "password": "password123"}
    ) as resp:
        assert resp.status == 200
        return (await resp.json())["token"]


async def eventually(test: Any, limit: float = 5.0) -> None:
    """Wait until `test()` holds, looking every few milliseconds, for at most `limit` s."""
    async with asyncio.timeout(limit):
        # Polled: what the tests wait on are plain counters, with no event to wait for.
        while not test():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def free_ports(n: int) -> list[int]:
    """n distinct ports that were free a moment ago."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_scenario(path: Path, ports: list[int], extra: str = "") -> Path:
    """A scenario on the given 8 ports (lb, 3 gateways, cache, db, worker, microservice)."""
    lb, g1, g2, g3, cache, db, worker, micro = ports
    path.write_text(
        f"""
name = "test"
[load_balancer]
port = {lb}
latency = 0
[gateways]
ports = [{g1}, {g2}, {g3}]
latency = 0
[cache]
port = {cache}
latency = 0
[database]
port = {db}
latency = 0.2
[worker]
port = {worker}
latency = 0
task_duration = 0.05
[microservice]
port = {micro}
latency = 0
{extra}
"""
    )
    return path


class Up:
    """`python -m labsim up` in a subprocess, waited for until it serves.

    Without a dashboard unless `args` ask for one, so that no test needs port 8080 free.
    """

    def __init__(self, *args: str) -> None:
        if not {"--dashboard-port", "--no-dashboard"} & set(args):
            args = (*args, "--no-dashboard")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labsim", "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.banner: list[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.banner.append(line)
            if "Press Ctrl-C" in line:
                return
        self.stop()
        raise AssertionError(f"up did not start: {''.join(self.banner)} {self.proc.stderr.read()}")

    def stop(self, sig: int = signal.SIGINT, timeout: float = 5) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        return self.proc.returncode, out, err
