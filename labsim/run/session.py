"""What one run works with: its options, its clock, the topology it drives, its client.

`open_session` makes the clock the options ask for, starts the topology in this process
on free ports (or points at a `--target` already running), and opens the bench's own
HTTP client; it stops them all when the run ends. It never reads files or the
environment and prints nothing.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..components.cluster import Cluster
from ..core import descriptors
from ..core.clock import Clock, RealClock, VirtualClock
from ..core.http import POOL_SIZE, HttpClient
from ..model.config import NO_TIME, Topology
from ..model.flows import Flow
from ..model.keys import NO_KEYS, Keys, drawer
from ..model.latency import LatencyModel
from ..model.load import DIRECT, ENDPOINTS, KEYED, LAB_MIX
from ..model.scenario import Load, Stage
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
    flows: tuple[Flow, ...] = ()  # users' journeys instead of the mix (run/flows.py)
    interval: float = 0.0  # seconds of each interval of the figures over time; 0: chosen
    keys: Keys = NO_KEYS  # the key each read asks for; none given: the gateways' one

    @property
    def virtual(self) -> bool:
        return self.clock == "virtual"

    @property
    def open(self) -> bool:
        return self.rate > 0 or bool(self.stages)

    @property
    def most_in_flight(self) -> int:
        """The most requests the load may have in flight at once."""
        return self.max_in_flight if self.open else self.concurrency

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
    # Draws the key of each read (`keys.py`), from a generator of its own: keys leave
    # every other draw of the run as it was. None: every read asks for the gateways' key.
    draw_key: Callable[[], str] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.draw_key = key_drawer(self.options, self.topology.seed)

    def path_of(self, endpoint: str) -> str:
        """The path `endpoint` is sent to: a read (`load.KEYED`) with its key drawn."""
        return path_of(endpoint, self.draw_key)

    def keyed(self, method: str, path: str) -> str:
        """`path` with a drawn key, if it is a read's, given without a query (a flow's
        `GET /data`), as the mix's reads get theirs; else as it is."""
        if self.draw_key is None or (method, path) not in _KEYED:
            return path
        return f"{path}?key={self.draw_key()}"

    @property
    def entry(self) -> str:
        """The replica clients send to: the graph's entry (the lab's load balancer)."""
        return self.topology.graph().entry_replica()

    def target_of(self, endpoint: str) -> str:
        """The replica `endpoint` is sent to: the entry, or the one of the kind it names
        directly (`load.DIRECT`)."""
        kind = DIRECT.get(endpoint)
        if kind is None:
            return self.entry
        return self.topology.graph().of_kind(kind)[0]

    def url_of(self, endpoint: str) -> str:
        """Where `endpoint` is sent: the entry, or the component it names directly."""
        if DIRECT.get(endpoint) is None or self.cluster is None:
            return self.base
        return self.cluster.urls[self.target_of(endpoint)]

    @property
    def cached(self) -> bool:
        """Whether `/data` goes through a cache; assumed for a remote target's (unknown)."""
        return self.cluster is None or self.topology.graph().reads_cache()

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
        if not options.virtual:
            _make_room(options, len(cluster.settings()))
        await cluster.start()
        base = cluster.url
    else:
        _make_room(options, 0)
        base = options.target.rstrip("/")
    # The bench's own pool never makes its requests wait: that would count as latency.
    # (`concurrency` says nothing of an open load, whose arrivals may fill `max_in_flight`.)
    client = HttpClient(
        clock,
        pool_size=max(POOL_SIZE, options.most_in_flight),
        servers=None if cluster is None else cluster.servers,
        # Its connections are the run's own load: no limit of the servers here closes them.
        own=None if cluster is None else cluster.own,
    )
    try:
        yield Session(topology, options, clock, client, base, cluster, samples)
    finally:
        await client.close()
        if cluster is not None:
            await cluster.stop()


def key_drawer(options: BenchOptions, seed: int) -> Callable[[], str] | None:
    """The load's draws of the key each read asks for, from a generator of their own (so
    keys leave every other draw of the run as it was); None without keys. Both engines'."""
    if not options.keys.on:
        return None
    return drawer(options.keys, random.Random(f"{seed}:keys"))


def path_of(endpoint: str, draw_key: Callable[[], str] | None) -> str:
    """The path `endpoint` of the mix is sent to: a read (`load.KEYED`) with its key drawn."""
    path = ENDPOINTS[endpoint][1]
    if draw_key is None or endpoint not in KEYED:
        return path
    return f"{path}?key={draw_key()}"


# Hops a request holds at once, at most: as many as the lab's longest path has.
HOPS = 3
# The reads a drawn key goes with, as (method, path).
_KEYED = frozenset(ENDPOINTS[name][:2] for name in KEYED)


def _make_room(options: BenchOptions, components: int) -> None:
    """Room in the process's file descriptors for a real-clock load against `components`
    served here (0: a target elsewhere), or BenchError before it starts."""
    if options.open:
        clients = min(max(POOL_SIZE, options.concurrency), options.max_in_flight)
        what, option = f"an open load of {clients:,} requests in flight", "max_in_flight"
    else:
        clients = min(options.concurrency, options.requests)
        what, option = f"concurrency {options.concurrency:,}", "concurrency"
    # One pool to the load balancer, one to each component the mix calls directly.
    pools = 1 + sum(1 for e, weight in options.mix.items() if weight and e in DIRECT)
    need = partial(_descriptors, components, pools)
    room = descriptors.make_room(need(clients))
    if room is None or room >= need(clients):
        return
    most, fits = 0, clients  # the most that fit, by halving: `need` only grows
    while most < fits:
        middle = (most + fits + 1) // 2
        most, fits = (middle, fits) if need(middle) <= room else (most, middle - 1)
    raise BenchError(
        f"{what} on the real clock needs about {need(clients):,} file descriptors, but this "
        f"process may open {room:,} (ulimit -n): use a {option} of at most {most:,}, "
        + ("the virtual clock, " if components else "")
        + "or a higher ulimit -n"
    )


def _descriptors(components: int, pools: int, clients: int) -> int:
    """About how many descriptors `clients` of the bench need, in `pools`, against
    `components` served here (0: elsewhere). Each of the bench's connections takes one,
    and one more at the other end when the topology is here; each hop takes two: up to
    HOPS per request in flight, at most POOL_SIZE to each component a component calls,
    about two callees each (the lab's mix measured 245 at a concurrency of 30, 864 at 100,
    3,081 at 1,000)."""
    if not components:
        return descriptors.FILES + pools * clients
    hops = min(HOPS * clients, 2 * POOL_SIZE * components)
    return descriptors.FILES + components + 2 * pools * clients + 2 * hops
