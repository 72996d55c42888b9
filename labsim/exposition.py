"""One component's figures in the Prometheus text exposition format (version 0.0.4).

Written by hand rather than through `prometheus_client`: that library keeps its metrics
in registries that live beside the values labsim already counts, so every figure would be
counted twice; the text format itself is a few lines. Durations are on the shared clock,
so on the virtual clock they are simulated seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .components.context import Context

_GAUGES = {"queued", "running"}  # counters that go down as well as up
_PER_GATEWAY = {"to": "requests", "failures": "failures"}  # "to:gateway-5000" and the like


def _labels(**labels: Any) -> str:
    def escape(value: Any) -> str:
        return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def _family(name: str, kind: str, help_text: str, samples: Iterable[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def render(ctx: Context) -> str:
    """The exposition text for `ctx`'s component."""
    me = {"component": ctx.id}
    lines = _family(
        "labsim_http_requests_total",
        "counter",
        "Requests answered, by route and status.",
        (
            f"labsim_http_requests_total{_labels(**me, route=route, status=status)} {n}"
            for (route, status), n in sorted(ctx.requests.items())
        ),
    )
    lines += _family(
        "labsim_http_dropped_total",
        "counter",
        "Requests that got no answer, by route and reason: down (the down fault closed the "
        "connection) or caller_gone (the caller hung up before the answer was ready).",
        (
            f"labsim_http_dropped_total{_labels(**me, route=route, reason=reason)} {n}"
            for (route, reason), n in sorted(ctx.dropped.items())
        ),
    )
    lines += _family(
        "labsim_http_requests_in_flight",
        "gauge",
        "Requests being served now (not /health, /metrics or /admin/).",
        [f"labsim_http_requests_in_flight{_labels(**me)} {ctx.in_flight}"],
    )
    latency = ctx.latency
    buckets = [
        f"labsim_http_request_duration_seconds_bucket{_labels(**me, le=bound)} {count}"
        for bound, count in zip((*latency.bounds, "+Inf"), latency.cumulative(), strict=True)
    ]
    lines += _family(
        "labsim_http_request_duration_seconds",
        "histogram",
        "Time from a request's arrival to its answer, on the shared clock.",
        [
            *buckets,
            f"labsim_http_request_duration_seconds_sum{_labels(**me)} {latency.total:.9f}",
            f"labsim_http_request_duration_seconds_count{_labels(**me)} {latency.count}",
        ],
    )
    prefix = f"labsim_{ctx.kind}"

    def single(name: str, kind: str, help_text: str, value: float) -> list[str]:
        return _family(name, kind, help_text, [f"{name}{_labels(**me)} {value}"])

    per_gateway: dict[str, list[str]] = {}
    for counter, value in sorted(ctx.counters.items()):
        key, _, gateway = counter.partition(":")
        if gateway:
            name = f"{prefix}_{_PER_GATEWAY.get(key, key)}_total"
            per_gateway.setdefault(name, []).append(
                f"{name}{_labels(**me, gateway=gateway)} {value}"
            )
        elif counter in _GAUGES:
            lines += single(f"{prefix}_{counter}", "gauge", f"{ctx.kind} {counter} now.", value)
        else:
            what = f"{ctx.kind} {counter.replace('_', ' ')}."
            lines += single(f"{prefix}_{counter}_total", "counter", what, value)
    for name, samples in per_gateway.items():
        lines += _family(name, "counter", "Per gateway.", samples)
    details = ctx.details()
    for name, value in sorted(details.items()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            lines += single(f"{prefix}_{name}", "gauge", f"{ctx.kind} {name} now.", value)
    gateways = details.get("gateways", {})
    if gateways:
        lines += _family(
            f"{prefix}_gateway_up",
            "gauge",
            "1 when the gateway may take traffic (healthy, not ejected).",
            (
                f"{prefix}_gateway_up{_labels(**me, gateway=g)} {int(state['available'])}"
                for g, state in gateways.items()
            ),
        )
    return "\n".join(lines) + "\n"
