"""One component's figures in the Prometheus text exposition format (version 0.0.4).

Written by hand rather than through `prometheus_client`'s custom collectors, which would
read the same counters without counting twice: the text format 0.0.4 is frozen and a few
lines, and labsim keeps one runtime dependency fewer; `tests/test_metrics.py` reads every
component's output back with `prometheus_client`'s own parser, right after start and
after traffic. Every series exists from the start at 0, as Prometheus advises, so a
query works before the first failure. Durations are on the shared clock, so on the
virtual clock they are simulated seconds.

The HTTP figures every component has come from its context; its own kind's figures from
its station, each field marked counter or gauge (`components/figures.py`); its slots and
queue, when it has them, from its capacity (`components/capacity.py`); its refusals by a
count per window, when it has one, as `labsim_<kind>_rate_limited_total` (the load
balancer's and a gateway's own figure of that name counts them with their buckets').
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.metrics import Buckets
from .capacity import CapacityFigures
from .context import Context, Station
from .figures import Labelled, Metric, RateLimited, marked


def _labels(**labels: Any) -> str:
    def escape(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


# What `GET /metrics` answers with: the text format and its version, as client libraries send.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Why a request got no answer (`labsim_http_dropped_total`'s reasons).
DROP_REASONS = ("down", "caller_gone")


def render(ctx: Context[Any], station: Station[Any, Any], routes: Iterable[str] = ()) -> str:
    """The exposition text for `ctx`'s component, whose station is `station`; each of its
    `routes` has its series from the start (a 200 and each drop reason at 0)."""
    me = {"component": ctx.id}
    lines = _traffic(ctx, me, list(routes))
    lines += _durations(ctx.latency, me)
    parts: list[Labelled] = [({}, station.figures), *station.more_figures()]
    # A count per window's refusals, for a kind with no `rate_limited` figure of its own.
    if ctx.rate_window is not None and not hasattr(station.figures, "rate_limited"):
        parts.append(({}, RateLimited(ctx.rate_window.refused)))
    lines += _figures(f"labsim_{ctx.kind}", me, parts)
    if ctx.capacity is not None:
        lines += _capacity(f"labsim_{ctx.kind}", me, ctx.capacity.figures())
    return "\n".join(lines) + "\n"


def _traffic(ctx: Context[Any], me: dict[str, str], routes: list[str]) -> list[str]:
    answered = dict.fromkeys(((route, 200) for route in routes), 0) | ctx.requests
    dropped = dict.fromkeys(((r, why) for r in routes for why in DROP_REASONS), 0) | ctx.dropped
    lines = _family(
        "labsim_http_requests_total",
        "counter",
        "Requests answered, by route and status.",
        (
            f"labsim_http_requests_total{_labels(**me, route=route, status=status)} {n}"
            for (route, status), n in sorted(answered.items())
        ),
    )
    lines += _family(
        "labsim_http_dropped_total",
        "counter",
        "Requests that got no answer, by route and reason: down (the down fault closed the "
        "connection) or caller_gone (the caller hung up before the answer was ready).",
        (
            f"labsim_http_dropped_total{_labels(**me, route=route, reason=reason)} {n}"
            for (route, reason), n in sorted(dropped.items())
        ),
    )
    return lines + _family(
        "labsim_http_requests_in_flight",
        "gauge",
        "Requests being served now (not /health, /metrics or /admin/).",
        [f"labsim_http_requests_in_flight{_labels(**me)} {ctx.in_flight}"],
    )


def _durations(latency: Buckets, me: dict[str, str]) -> list[str]:
    name = "labsim_http_request_duration_seconds"
    buckets = [
        f"{name}_bucket{_labels(**me, le=bound)} {count}"
        for bound, count in zip((*latency.bounds, "+Inf"), latency.cumulative(), strict=True)
    ]
    return _family(
        name,
        "histogram",
        "Time from a request's arrival to its answer, on the shared clock.",
        [
            *buckets,
            f"{name}_sum{_labels(**me)} {latency.total:.9f}",
            f"{name}_count{_labels(**me)} {latency.count}",
        ],
    )


def _figures(prefix: str, me: dict[str, str], parts: Iterable[Labelled]) -> list[str]:
    """One family per marked field, its samples told apart by each part's labels."""
    families: dict[str, tuple[Metric, list[str]]] = {}
    for labels, figures in parts:
        for field_name, metric, value in marked(figures):
            name = metric.full_name(prefix, field_name)
            sample = f"{name}{_labels(**me, **labels)} {value}"
            families.setdefault(name, (metric, []))[1].append(sample)
    lines: list[str] = []
    for name, (metric, samples) in families.items():
        lines += _family(name, metric.kind, metric.help, samples)
    return lines


# The queue wait's quantiles in `/metrics`: a summary, read from the one Histogram kept.
WAIT_QUANTILES = (0.5, 0.9, 0.99)


def _capacity(prefix: str, me: dict[str, str], cap: CapacityFigures) -> list[str]:
    """The station's figures: slots, utilization, queue and its waits, refusals."""
    labels = _labels(**me)
    gauges = [
        ("slots", "Requests it may serve at once (concurrency).", cap.slots),
        ("slots_busy", "Slots busy now.", cap.busy_now),
        (
            "utilization_ratio",
            "Busy slots / slots, time-weighted on the clock since it started (0 to 1).",
            cap.utilization,
        ),
        ("queue_length", "Requests waiting for a slot now.", cap.queue_length_now),
        (
            "queue_length_mean",
            "Requests waiting for a slot, time-weighted mean since it started.",
            cap.queue_length_mean,
        ),
    ]
    lines: list[str] = []
    for name, help_text, value in gauges:
        lines += _family(
            f"{prefix}_{name}", "gauge", help_text, [f"{prefix}_{name}{labels} {value}"]
        )
    busy = f"{prefix}_busy_slot_seconds_total"
    lines += _family(
        busy,
        "counter",
        "Busy slots integrated over clock time: its rate / slots is the utilization.",
        [f"{busy}{labels} {cap.busy_slot_seconds:.9f}"],
    )
    wait, waits = f"{prefix}_queue_wait_seconds", cap.queue_wait
    quantiles = [
        f"{wait}{_labels(**me, quantile=q)} {_seconds(waits.percentile(q * 100))}"
        for q in WAIT_QUANTILES
    ]
    lines += _family(
        wait,
        "summary",
        "Seconds each admitted request waited for a slot (0 when one was free).",
        [
            *quantiles,
            f"{wait}_sum{labels} {waits.total_us / 1_000_000:.6f}",
            f"{wait}_count{labels} {waits.count}",
        ],
    )
    rejected = f"{prefix}_rejected_total"
    return lines + _family(
        rejected,
        "counter",
        "Requests refused with 503: every slot busy and the queue full.",
        [f"{rejected}{labels} {cap.rejected}"],
    )


def _seconds(ms: float | None) -> str:
    return "NaN" if ms is None else f"{ms / 1000:.6f}"
