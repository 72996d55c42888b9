"""What a run saw, request by request, in bounded memory: counts and latency histograms.

`record` files one request's outcome. Distinct failures and serving gateways are kept
apart up to a bound, since a target may answer anything. Plain data, no I/O.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..core.intervals import PerInterval
from ..core.metrics import Histogram
from ..model.load import ENDPOINTS

_KINDS = 100
_OTHER = "(others)"


@dataclass
class EndpointStats:
    # Served and failed requests apart: a refusal in 0 ms is no fast answer.
    failed: int = 0
    ok: Histogram = field(default_factory=Histogram)  # the served ones
    errors: Histogram = field(default_factory=Histogram)  # the failed ones
    hits: Histogram = field(default_factory=Histogram)
    misses: Histogram = field(default_factory=Histogram)


@dataclass(frozen=True)
class Outcome:
    """One request's answer: a status and parsed body, or the error that stopped it."""

    status: int | None
    answer: Any
    error: str | None = None
    served_by: str | None = None


@dataclass
class Tally:
    by_status: Counter[str] = field(default_factory=Counter)
    endpoints: dict[str, EndpointStats] = field(default_factory=dict)
    gateways: Counter[str] = field(default_factory=Counter)
    failures: Counter[tuple[str, int | None, str]] = field(default_factory=Counter)
    ok: int = 0
    failed: int = 0
    hits: int = 0
    misses: int = 0
    tasks_queued: int = 0
    interrupted: bool = False  # Ctrl-C: the report covers what finished
    # An open load's arrivals: those scheduled, those not sent (over `max_in_flight`),
    # and the seconds over which they were scheduled.
    arrived: int = 0
    dropped: int = 0
    offered_for: float = 0.0
    send_lag: Histogram = field(default_factory=Histogram)  # an open load's sends, behind schedule
    cut: int = 0  # requests in flight when the run was stopped, never answered
    cached: bool = True  # False: the gateways use no cache, a `/data` answer is no miss
    entry: str = ""  # the replica clients send to: its own answers name no backend
    start: float = 0.0  # when the load began, on the run's clock
    per_interval: PerInterval = field(default_factory=PerInterval)

    def record(
        self,
        endpoint: str,
        outcome: Outcome,
        latency: float,
        served: bool | None = None,
        sent: float | None = None,
    ) -> None:
        """File one request: its status, its latency, and what kind of answer it was.
        `served`: whether it was, for a request of no endpoint of the mix (a flow's step,
        filed under its own name); else its status is the one its endpoint expects. When
        `sent` is given (on the run's clock; an open load's: when it was due), in the
        interval it was sent in too."""
        stats = self.endpoints.get(endpoint)
        if stats is None:  # not setdefault: that would build four histograms per request
            stats = self.endpoints[endpoint] = EndpointStats()
        status, answer = outcome.status, outcome.answer
        if served is None:
            served = status == ENDPOINTS[endpoint][2]
        if sent is not None:
            self.per_interval.add(sent - self.start, latency, not served)
        self.by_status[str(status) if status else "error"] += 1
        if outcome.served_by and outcome.served_by != self.entry:  # its own 429s, 502s
            _count(self.gateways, outcome.served_by[:100], _OTHER)
        if not served:
            self.failed += 1
            stats.failed += 1
            stats.errors.add(latency)
            error = outcome.error
            if error is None:
                error = answer.get("error", "") if isinstance(answer, dict) else str(answer)[:200]
            _count(self.failures, (endpoint, status, error[:200]), (endpoint, status, _OTHER))
            return
        self.ok += 1
        stats.ok.add(latency)
        if endpoint == "data" and self.cached:
            cached = isinstance(answer, dict) and answer.get("cached") is True
            (stats.hits if cached else stats.misses).add(latency)
            self.hits += cached
            self.misses += not cached
        elif endpoint == "longtask":
            self.tasks_queued += 1


def _count(counter: Counter[Any], key: Any, other: Any) -> None:
    counter[key if key in counter or len(counter) < _KINDS else other] += 1
