"""The figures of components another process serves (`up --only`), read over HTTP as any
monitoring system would: `GET /metrics` for the traffic and the kind's own figures, and
`GET /admin/faults` (with the shared admin token) for the faults. The dashboard of one
part of a split lab shows the whole lab with them. It only reads.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from typing import Any

from .components.context import DURATION_BUCKETS
from .components.figures import (
    CacheFigures,
    CacheSize,
    DatabaseFigures,
    GatewayFigures,
    LoadBalancerFigures,
    WorkerFigures,
    marked,
)
from .components.middleware import UNTIMED_PREFIXES
from .http import DownstreamError, HttpClient

# Seconds a remote component has to answer one read before it counts as unreachable.
READ_TIMEOUT = 2.0
_SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

# The figures each kind reports in `/metrics`, by the same names the page reads in-process.
KIND_FIGURES: dict[str, tuple[type[Any], ...]] = {
    "cache": (CacheFigures, CacheSize),
    "database": (DatabaseFigures,),
    "worker": (WorkerFigures,),
    "gateway": (GatewayFigures,),
    "load_balancer": (LoadBalancerFigures,),
}


def parse(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text (as labsim writes it): name -> [(labels, value)]."""
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match is None:
            continue  # a HELP or TYPE line
        name, labels, value = match.groups()
        try:
            number = float(value)
        except ValueError:
            continue
        samples[name].append((dict(_LABEL.findall(labels or "")), number))
    return samples


def traffic(samples: dict[str, list[tuple[dict[str, str], float]]]) -> dict[str, Any]:
    """What `snapshot.Reading` holds, from a component's `/metrics`."""
    by_class: dict[int, int] = defaultdict(int)
    for labels, value in samples.get("labsim_http_requests_total", []):
        status = labels.get("status", "")
        if status.isdigit() and not labels.get("route", "").startswith(UNTIMED_PREFIXES):
            by_class[int(status) // 100] += int(value)
    dropped = sum(
        int(v)
        for labels, v in samples.get("labsim_http_dropped_total", [])
        if not labels.get("route", "").startswith(UNTIMED_PREFIXES)
    )
    bounds = {labels.get("le"): int(v) for labels, v in samples.get(_BUCKET, [])}
    buckets = (*(bounds.get(str(b), 0) for b in DURATION_BUCKETS), bounds.get("+Inf", 0))
    seconds = sum(v for _, v in samples.get(_SUM, []))
    in_flight = sum(int(v) for _, v in samples.get("labsim_http_requests_in_flight", []))
    return {
        "requests": sum(by_class.values()),
        "client_errors": by_class[4],
        "errors": by_class[5],
        "seconds": seconds,
        "dropped": dropped,
        "buckets": buckets,
        "in_flight": in_flight,
    }


_BUCKET = "labsim_http_request_duration_seconds_bucket"
_SUM = "labsim_http_request_duration_seconds_sum"


def kind_figures(
    kind: str, samples: dict[str, list[tuple[dict[str, str], float]]]
) -> dict[str, Any]:
    """The kind's own figures (`components/figures.py`), read back from their metrics."""
    out = {}
    for figures in KIND_FIGURES.get(kind, ()):
        for field, metric, _ in marked(figures()):
            values = samples.get(metric.full_name(f"labsim_{kind}", field), [])
            out[field] = int(sum(v for labels, v in values if "gateway" not in labels))
    return out


async def read(client: HttpClient, component: str, url: str, token: str) -> dict[str, Any] | None:
    """(metrics samples, faults) of a component in another process; None if its metrics
    cannot be read (unreachable). Faults that cannot be read are shown as none."""
    auth = {"Authorization": f"Bearer {token}"}
    metrics, faults = await asyncio.gather(
        _get(client, component, f"{url}/metrics", {}),
        _get(client, component, f"{url}/admin/faults", auth),
    )
    if metrics is None:
        return None
    try:
        shown = json.loads(faults or b"{}").get("faults")
    except (ValueError, AttributeError):
        shown = None
    return {
        "samples": parse(metrics.decode("utf-8", "replace")),
        "faults": shown if isinstance(shown, dict) else {},
    }


async def _get(
    client: HttpClient, component: str, url: str, headers: dict[str, str]
) -> bytes | None:
    try:
        reply = await client.request(component, "GET", url, headers=headers, within=READ_TIMEOUT)
    except DownstreamError:
        return None
    return reply.body
