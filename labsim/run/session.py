"""What one run works with: its options, its clock, the topology it drives, its client.

`open_session` makes the clock the options ask for, starts the topology in this process
on free ports (or points at a `--target` already running), and opens the bench's own
HTTP client; it stops them all when the run ends. It never reads files or the
environment and prints nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from ..clock import Clock, RealClock, VirtualClock
from ..cluster import Cluster
from ..config import NO_TIME, Topology
from ..http import POOL_SIZE, HttpClient
from ..latency import LatencyModel
from ..load import DIRECT, LAB_MIX
from ..scenario import Load, Stage
from .samples import SampleLog


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
    # An open model (arrivals at a rate) when `rate` or `stages` are given; see Load.
    rate: float = 0.0
    arrivals: str = "poisson"
    duration: float = 0.0  # seconds of arrivals; 0: until `requests` were sent
    stages: tuple[Stage, ...] = ()
    max_in_flight: int = 1000  # an open load's arrivals beyond it are dropped, not sent
    auth: str = "login"  # the token: from /login, "forged" (guide.py), or "none"
    think: LatencyModel = NO_TIME  # closed: each client's pause before its next request

    @property
    def virtual(self) -> bool:
        return self.clock == "virtual"

    @property
    def open(self) -> bool:
        return self.rate > 0 or bool(self.stages)

    @classmethod
    def of(cls, load: Load, **more: Any) -> BenchOptions:
        """The options a scenario's `[load]` asks for, with `more` on top."""
        settings = {f.name: getattr(load, f.name) for f in dataclasses.fields(Load)}
        settings["mix"] = dict(load.mix)
        return cls(**(settings | more))


@dataclass
class Session:
    """A run's clock, the topology it drives (`cluster` when in this process), its client."""

    topology: Topology
    options: BenchOptions
    clock: Clock
    client: HttpClient
    base: str  # the load balancer's URL
    cluster: Cluster | None
    samples: SampleLog | None = None  # `bench --samples`: a line per request

    def url_of(self, endpoint: str) -> str:
        """Where `endpoint` is sent: the load balancer, or the component it names directly."""
        component = DIRECT.get(endpoint)
        if component is None or self.cluster is None:
            return self.base
        return self.cluster.urls[component]

    @property
    def request_timeout(self) -> float | None:
        """How long one request may take; none on the virtual clock, which cannot hang
        on a slow network (a stall is reported instead)."""
        return None if self.options.virtual else self.options.timeout


@asynccontextmanager
async def open_session(
    topology: Topology, options: BenchOptions, samples: SampleLog | None = None
) -> AsyncIterator[Session]:
    direct = sorted(e for e, weight in options.mix.items() if weight and e in DIRECT)
    if options.target is not None and direct:
        raise BenchError(
            f"endpoint {direct[0]!r} calls the {DIRECT[direct[0]]} directly, which needs "
            "the topology in this process: drop --target"
        )
    clock: Clock = VirtualClock() if options.virtual else RealClock()
    cluster = None
    if options.target is None:
        cluster = Cluster(topology, clock, ephemeral=True, pipes=options.virtual)
        await cluster.start()
        base = cluster.url
    else:
        base = options.target.rstrip("/")
    # The bench's own pool never makes its requests wait: that would count as latency.
    client = HttpClient(
        clock,
        pool_size=max(POOL_SIZE, options.concurrency),
        servers=None if cluster is None else cluster.servers,
    )
    try:
        yield Session(topology, options, clock, client, base, cluster, samples)
    finally:
        await client.close()
        if cluster is not None:
            await cluster.stop()
