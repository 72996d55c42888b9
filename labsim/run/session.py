"""What one run works with: its options, its clock, the topology it drives, its client.

`open_session` makes the clock the options ask for, starts the topology in this process
on free ports (or points at a `--target` already running), and opens the bench's own
HTTP client; it stops them all when the run ends. It never reads files or the
environment and prints nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ..clock import Clock, RealClock, VirtualClock
from ..cluster import Cluster
from ..config import Topology
from ..http import POOL_SIZE, HttpClient
from ..load import LAB_MIX


class BenchError(Exception):
    """The run could not happen at all (target unreachable, login refused)."""


@dataclass(frozen=True)
class BenchOptions:
    requests: int = 100
    concurrency: int = 10
    mix: dict[str, int] = field(default_factory=lambda: dict(LAB_MIX))
    clock: str = "virtual"
    target: str | None = None
    verbose: bool = False
    progress: str | None = None  # "bar" (a terminal), "lines" (a log), or none
    timeout: float = 60.0  # seconds each request may take on the real clock; then failed
    interruptible: bool = False  # Ctrl-C stops the load and reports what finished

    @property
    def virtual(self) -> bool:
        return self.clock == "virtual"


@dataclass
class Session:
    """A run's clock, the topology it drives (`cluster` when in this process), its client."""

    topology: Topology
    options: BenchOptions
    clock: Clock
    client: HttpClient
    base: str  # the load balancer's URL
    cluster: Cluster | None

    @property
    def request_timeout(self) -> float | None:
        """How long one request may take; none on the virtual clock, which cannot hang
        on a slow network (a stall is reported instead)."""
        return None if self.options.virtual else self.options.timeout


@asynccontextmanager
async def open_session(topology: Topology, options: BenchOptions) -> AsyncIterator[Session]:
    clock: Clock = VirtualClock() if options.virtual else RealClock()
    cluster = None
    if options.target is None:
        cluster = Cluster(topology, clock, ephemeral=True)
        await cluster.start()
        base = cluster.url
    else:
        base = options.target.rstrip("/")
    # The bench's own pool never makes its requests wait: that would count as latency.
    client = HttpClient(clock, pool_size=max(POOL_SIZE, options.concurrency))
    try:
        yield Session(topology, options, clock, client, base, cluster)
    finally:
        await client.close()
        if cluster is not None:
            await cluster.stop()
