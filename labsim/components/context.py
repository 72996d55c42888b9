"""What a component's factory is handed: its id, settings, the clock, where the others are.

No component keeps module-level state; everything it owns hangs off its context (what
every component has: traffic figures, faults, its RNG) or its own station (what only its
kind has: see `figures.py`), so two clusters can run side by side in one process.
"""

from __future__ import annotations

import itertools
import logging
import random
import secrets
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from ..core.clock import Clock
from ..core.http import HttpClient
from ..core.metrics import Buckets
from ..model.config import NO_TIME, StationConfig, Topology
from ..model.faults import Faults
from ..model.graph import Component, Graph
from ..model.latency import LatencyModel, component_rng, sampler
from ..model.rate_limit import SlidingWindow
from .capacity import Capacity
from .figures import Figures, Labelled

# Upper bounds (seconds) of the request duration histogram every component keeps.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Settings(Protocol):
    """What every component's settings have: its service time."""

    @property
    def latency(self) -> LatencyModel: ...


S = TypeVar("S", bound=Settings)
F = TypeVar("F", bound=Figures)


@dataclass
class Context(Generic[S]):
    id: str
    kind: str
    settings: S
    clock: Clock
    topology: Topology
    graph: Graph  # the topology's components and who calls whom
    component: Component  # the graph's component this replica serves
    urls: dict[str, str]  # replica id -> base URL; filled in as components bind
    client: HttpClient
    log: logging.Logger
    requests: Counter[tuple[str, int]] = field(default_factory=Counter)  # (route, status)
    # Seconds spent answering each route, summed: the dashboard's mean latency of the work
    # alone, without the load balancer's health checks that `latency` counts too.
    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    latency: Buckets = field(default_factory=lambda: Buckets(DURATION_BUCKETS))
    # Requests that got no answer, by (route, why): "down", the fault closed the
    # connection; "caller_gone", the caller hung up before the answer was ready. Apart
    # from `requests`, `seconds` and `latency`, which count only answers.
    dropped: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Work being served now (not /health, /metrics, /admin/): a plain int, since the
    # middleware changes it twice for every request.
    in_flight: int = 0
    faults: Faults = field(default_factory=Faults)
    rng: random.Random = field(init=False)
    # The pure delay before a request is served, holding nothing: a draw of `latency`
    # (plus one of `service` when there are no slots to hold: then it is a delay too).
    delay: Callable[[], float] = field(init=False)
    # Its slots and waiting line, when the scenario gives it `concurrency`; else None,
    # and the middleware does nothing more for it than before there were stations.
    capacity: Capacity | None = field(init=False)
    new_request_id: Callable[[], str] = field(init=False)
    # Its count per window (`rate_limit.requests` per `rate_limit.window`, over every
    # caller), which the middleware applies; None when the scenario gives it none.
    rate_window: SlidingWindow | None = field(init=False)
    # Requests its token bucket per caller refused (kinds other than the load balancer
    # and the gateways, which keep theirs and count them themselves).
    bucket_refused: int = 0

    def __post_init__(self) -> None:
        self.rng = component_rng(self.topology.seed, self.id)
        self.delay = self.sampler(self.settings.latency)
        self.capacity = None
        settings = self.settings
        if isinstance(settings, StationConfig):  # every kind but the worker
            service = self.sampler(settings.service)
            if settings.concurrency > 0:
                self.capacity = Capacity(
                    self.id,
                    settings.concurrency,
                    settings.queue_size,
                    service,
                    self.clock,
                    holds=settings.holds,
                    discipline=settings.discipline,
                )
            elif settings.service != NO_TIME:
                self.delay = _sum(self.delay, service)
        limit = getattr(settings, "rate_limit", None)  # every kind's settings have one
        self.rate_window = None
        if limit is not None and limit.requests > 0:
            self.rate_window = SlidingWindow(limit.requests, limit.window, self.clock.now)
        # Unique within the run and cheap: a random prefix, then a counter.
        prefix, numbers = secrets.token_hex(4), itertools.count(1)
        self.new_request_id = lambda: f"{prefix}-{next(numbers)}"

    def sampler(self, model: LatencyModel) -> Callable[[], float]:
        return sampler(model, self.rng)

    def url(self, component: str, path: str) -> str:
        return self.urls[component] + path


def _sum(first: Callable[[], float], then: Callable[[], float]) -> Callable[[], float]:
    return lambda: first() + then()


class Station(Generic[S, F]):
    """A component's own state as it reports it: its kind's figures and details.

    Each kind's component is one (the microservice's is this, with no figures); `/health`,
    `/metrics`, the dashboard and the run read it.
    """

    def __init__(self, ctx: Context[S], figures: F) -> None:
        self.ctx, self.settings, self.clock, self.figures = ctx, ctx.settings, ctx.clock, figures

    def details(self) -> dict[str, Any]:
        """What its `GET /health` answer adds beside `"counters"`."""
        return {}

    def more_figures(self) -> Sequence[Labelled]:
        """Marked figures besides `figures`: kept per gateway, or read now."""
        return ()
