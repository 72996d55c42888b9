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


def gauge(help_text: str, *, name: str | None = None) -> Any:
    """A figure that goes down as well as up, starting at 0."""
    return field(default=0, metadata={_METRIC: Metric("gauge", help_text, name)})


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


@dataclass
class ReaderFigures(Figures):
    """A service's that reads through a cache."""

    hits: int = counter("Reads answered from the cache.")
    misses: int = counter("Reads that had to call the source (cache miss).")


@dataclass
class LoginFigures(Figures):
    tokens_issued: int = counter("Tokens issued (POST /login with good credentials).")
    login_failures: int = counter("POST /login refused: unknown user or wrong password.")
    tokens_refused: int = counter("Tokens found invalid (POST /validate_token answered 403).")


@dataclass
class GatewayFigures(Figures):
    hits: int = counter("GET /data answered from the cache.")
    misses: int = counter("GET /data that had to read the database (cache miss).")
    login_failures: int = counter("POST /login refused: unknown user or wrong password.")
    rate_limited: int = counter("Requests refused with 429 by this gateway's rate limit.")


@dataclass
class CacheFigures(Figures):
    hits: int = counter("Lookups that found a fresh entry.")
    misses: int = counter("Lookups that found no entry, or an expired one.")
    sets: int = counter("Entries written (POST /cache/<key>).")
    expirations: int = counter("Entries dropped because their TTL ran out.")
    coalesced: int = counter("Misses answered by another caller's fill (request coalescing).")
    stale: int = counter("Expired entries served while one caller refreshes them.")
    deletions: int = counter("Entries deleted (DELETE /cache/<key>, POST /cache/flush).")
    evictions: int = counter("Entries dropped to make room (maxsize or max_bytes reached).")
    evicted_misses: int = counter(
        "Misses on a key evicted before: each a database read the eviction cost."
    )


@dataclass(frozen=True)
class CacheSize:
    """The cache's size, read when asked."""

    size: int = gauge("Entries held now.", name="entries")
    bytes: int = gauge("Bytes held now: values as compact JSON, plus 256 per entry.")


@dataclass
class DatabaseFigures(Figures):
    db_calls: int = counter("Reads of the database (GET /db).", name="calls")


@dataclass
class WorkerFigures(Figures):
    submitted: int = counter("Tasks accepted (POST /task answered 202).")
    queued: int = gauge("Tasks waiting for a slot now.")
    running: int = gauge("Tasks running now.")
    completed: int = counter("Tasks finished.")
    rejected: int = counter("Tasks refused with 503: every slot busy and the queue full.")


@dataclass
class LoadBalancerFigures(Figures):
    retries: int = counter("Requests sent again to another gateway after a failure.")
    retry_budget_exhausted: int = counter("Retries not made because the retry budget was spent.")
    ejections: int = counter(
        "Gateways ejected after failing too often in a row (outlier detection)."
    )
    health_ejections: int = counter("Gateways taken out after failing their health checks.")
    readmissions: int = counter("Gateways taken back after passing their health checks again.")
    rate_limited: int = counter("Requests refused with 429 by the load balancer's rate limit.")


@dataclass(frozen=True)
class RateLimited:
    """Refusals of a count per window, for a kind whose figures have no `rate_limited`."""

    rate_limited: int = counter(
        "Requests refused with 429 by this component's rate limit (a count per window)."
    )


@dataclass(frozen=True)
class GatewayUp:
    """Whether the load balancer may send a gateway traffic now (1) or not (0)."""

    gateway_up: int = gauge("Whether the gateway may take traffic: 1 (healthy, not ejected), or 0.")


# Marked figures with the labels that tell them apart: ({"gateway": "gateway-5000"}, ...).
Labelled = tuple[dict[str, str], "DataclassInstance"]
