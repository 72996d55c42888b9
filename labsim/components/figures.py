"""Each kind of component's own figures, typed, and marked for `/metrics`.

A figure is an int field of a dataclass, marked `counter(...)` (it only goes up) or
`gauge(...)` (it goes down too) with its HELP text. `GET /health`, `/metrics`, the
dashboard and the run all read the same fields; `exposition.py` names each metric
`labsim_<kind>_<field>` (`_total` for a counter).

A component's station (`context.py`) is where the reporters find them. This module
imports nothing of labsim's, so any module may use it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_METRIC = "labsim.metric"  # the field metadata key


@dataclass(frozen=True)
class Metric:
    """How `/metrics` shows one field: a counter or a gauge, its HELP text, its name."""

    kind: str  # "counter" or "gauge"
    help: str
    name: str | None = None  # in the metric's name, when not the field's own

    def full_name(self, prefix: str, field_name: str) -> str:
        name = f"{prefix}_{self.name or field_name}"
        return f"{name}_total" if self.kind == "counter" else name


def counter(help_text: str, *, name: str | None = None) -> Any:
    """A figure that only goes up, starting at 0."""
    return field(default=0, metadata={_METRIC: Metric("counter", help_text, name)})


def gauge(help_text: str) -> Any:
    """A figure that goes down as well as up, starting at 0."""
    return field(default=0, metadata={_METRIC: Metric("gauge", help_text)})


def marked(figures: DataclassInstance) -> list[tuple[str, Metric, int]]:
    """(field name, metric, value) of each marked field of `figures`, by field name."""
    found = [
        (f.name, f.metadata[_METRIC], getattr(figures, f.name))
        for f in fields(figures)
        if _METRIC in f.metadata
    ]
    return sorted(found, key=lambda item: item[0])


@dataclass
class Figures:
    """A component's own counts: none here (the microservice's); each kind adds its own."""

    def counts(self) -> dict[str, int]:
        """Every figure by name, zeros included: `/health`'s and the run's view."""
        return asdict(self)


# The HELP texts are the ones `/metrics` has always shown (issue 15 renames the metrics).
@dataclass
class GatewayFigures(Figures):
    hits: int = counter("gateway hits.")
    misses: int = counter("gateway misses.")
    login_failures: int = counter("gateway login failures.")
    rate_limited: int = counter("gateway rate limited.")


@dataclass
class CacheFigures(Figures):
    hits: int = counter("cache hits.")
    misses: int = counter("cache misses.")
    sets: int = counter("cache sets.")
    expirations: int = counter("cache expirations.")
    coalesced: int = counter("cache coalesced.")
    stale: int = counter("cache stale.")
    deletions: int = counter("cache entries deleted (DELETE /cache/<key>, POST /cache/flush).")


@dataclass(frozen=True)
class CacheSize:
    """The cache's size, read when asked."""

    size: int = gauge("cache size now.")
    bytes: int = gauge("cache bytes now.")


@dataclass
class DatabaseFigures(Figures):
    db_calls: int = counter("database db calls.")


@dataclass
class WorkerFigures(Figures):
    submitted: int = counter("worker submitted.")
    queued: int = gauge("worker queued now.")
    running: int = gauge("worker running now.")
    completed: int = counter("worker completed.")
    rejected: int = counter("worker rejected.")


@dataclass
class LoadBalancerFigures(Figures):
    retries: int = counter("load_balancer retries.")
    retry_budget_exhausted: int = counter("load_balancer retry budget exhausted.")
    ejections: int = counter("load_balancer ejections.")
    health_ejections: int = counter("load_balancer health ejections.")
    readmissions: int = counter("load_balancer readmissions.")
    rate_limited: int = counter("load_balancer rate limited.")


@dataclass(frozen=True)
class GatewayUp:
    """Whether the load balancer may send a gateway traffic now (1) or not (0)."""

    gateway_up: int = gauge("1 when the gateway may take traffic (healthy, not ejected).")


# Marked figures with the labels that tell them apart: ({"gateway": "gateway-5000"}, ...).
Labelled = tuple[dict[str, str], "DataclassInstance"]
