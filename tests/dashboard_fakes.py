"""Topologies the lab does not have, for the dashboard's page: served to a browser page
without labsim, by Playwright's `page.route`.

`serve(page, topology)` answers the page's own files (as the dashboard serves them, with its
content-security policy), `/api/topology`, and `/api/events` with one snapshot of made-up
figures for every component; then the stream ends and the page waits (its `retry` is long).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route

from labsim.views import dashboard

ORIGIN = "http://dashboard.test"


def component(cid: str, kind: str, group: str | None = None, slots: int = 0) -> dict[str, Any]:
    c = {"id": cid, "kind": kind, "url": f"http://127.0.0.1/{cid}", "service_time": "5 ms"}
    c["slots"] = slots
    if group is not None:
        c["group"] = group
    return c


def topology(name: str, components: list[dict[str, Any]], edges: list[list[str]]) -> dict:
    return {
        "name": name,
        "description": "",
        "components": components,
        "edges": edges,
        "bench": {"requests": 100, "max": 1000},
        "interval_s": 0.5,
    }


def big() -> tuple[dict, list[list[str]]]:
    """40 components: an entry load balancer, 8 gateways, 2 load balancers and a worker
    they call, 20 services in two groups behind those, and 4 caches and 4 databases (each
    group of services calls 2 of each); the worker writes to a database. With the layers
    the page must draw, top first."""
    gateways = [f"gateway-{5001 + i}" for i in range(8)]
    orders = [f"orders-{6001 + i}" for i in range(10)]
    users = [f"users-{7001 + i}" for i in range(10)]
    caches = [f"cache-{i}" for i in range(1, 5)]
    databases = [f"db-{i}" for i in range(1, 5)]
    parts = [component("edge-lb", "load_balancer")]
    parts += [component(g, "gateway", "gateway") for g in gateways]
    parts += [component(lb, "load_balancer") for lb in ("lb-orders", "lb-users")]
    parts += [component(s, "service", "orders", slots=4) for s in orders]
    parts += [component(s, "service", "users", slots=4) for s in users]
    # Given in an order that crosses: the layout must find a better one.
    parts += [component(c, "cache") for c in reversed(caches)]
    parts += [component(d, "database", slots=2) for d in reversed(databases)]
    parts.append(component("worker", "worker"))
    edges = [["edge-lb", g] for g in gateways]
    edges += [[g, to] for g in gateways for to in ("lb-orders", "lb-users", "worker")]
    edges += [["lb-orders", s] for s in orders] + [["lb-users", s] for s in users]
    edges += [[s, to] for s in orders for to in (*caches[:2], *databases[:2])]
    edges += [[s, to] for s in users for to in (*caches[2:], *databases[2:])]
    edges.append(["worker", "db-4"])  # past the services' layer: down a lane
    layers = [
        ["edge-lb"],
        gateways,
        ["lb-orders", "lb-users", "worker"],
        orders + users,
        caches + databases,
    ]
    assert len(parts) == 40 and sum(map(len, layers)) == 40
    return topology("forty components", parts, edges), layers


def lab5() -> tuple[dict, list[list[str]]]:
    """Two tiers of load balancers: lb-ag, the gateways api-5000 and api-5003 (group
    `api`), lb-ms, ms-a and ms-b, then the cache and the database; the gateways also call
    `login` and `worker`. With its five layers, top first."""
    api = ["api-5000", "api-5003"]
    parts = [
        component("cache", "cache"),  # given bottom first: the layers come from the arrows
        component("database", "database", slots=10),
        component("ms-a", "microservice"),
        component("ms-b", "microservice"),
        component("lb-ms", "load_balancer"),
        *(component(g, "gateway", "api") for g in api),
        component("login", "login"),
        component("worker", "worker"),
        component("lb-ag", "load_balancer"),
    ]
    edges = [["lb-ag", g] for g in api]
    edges += [[g, to] for g in api for to in ("lb-ms", "login", "worker")]
    edges += [["lb-ms", "ms-a"], ["lb-ms", "ms-b"]]
    edges += [[ms, to] for ms in ("ms-a", "ms-b") for to in ("cache", "database")]
    layers = [["lb-ag"], api, ["lb-ms", "login", "worker"], ["ms-a", "ms-b"], ["cache", "database"]]
    return topology("lab 5", parts, edges), layers


def figures(c: dict[str, Any]) -> dict[str, Any]:
    """A component's figures in a snapshot, as wide as real ones get."""
    out: dict[str, Any] = {
        "kind": c["kind"],
        "requests": 123_456,
        "rate": 1234.5,
        "errors": 0.012,
        "client_errors": 0.0,
        "latency_ms": 26.1,
        "p50_ms": 20.5,
        "p99_ms": 180.2,
        "dropped": 0,
        "dropped_rate": 0.0,
        "in_flight": 12,
        "faults": {},
        "state": "up",
    }
    kind = c["kind"]
    if kind == "load_balancer":
        out |= {"retries": 3, "ejections": 1, "health_ejections": 0}
    elif kind == "gateway":
        out |= {"in_rotation": True, "healthy": True, "ejected_for": 0.0, "routed": 15_432}
    elif kind == "cache":
        out |= {"hits": 9000, "stale": 10, "misses": 990, "hit_ratio": 0.901}
        out |= {"size": 900, "maxsize": 1000}
    elif kind == "database":
        out |= {"db_calls": 990}
    elif kind == "worker":
        out |= {"running": 8, "concurrency": 10, "queued": 40, "queue_size": 100}
        out |= {"completed": 5000, "rejected": 2}
    if c.get("slots"):
        out["capacity"] = {
            "slots": c["slots"],
            "busy": c["slots"],
            "utilization": 1.0,
            "queue_length": 3,
            "queue_size": 10,
            "rejected": 7,
        }
    return out


def serve(page: Page, shown: dict[str, Any]) -> str:
    """Serve the dashboard's page of `shown` (a topology) to `page`; the page's address."""
    snapshot = {
        "interval_s": 0.5,
        "components": {c["id"]: figures(c) for c in shown["components"]},
        "bench": {"running": False},
    }
    events = f"retry: 600000\n\nevent: snapshot\ndata: {json.dumps(snapshot)}\n\n"

    def answer(route: Route) -> None:
        path = urlsplit(route.request.url).path
        if path in dashboard._FILES:
            name, content_type = dashboard._FILES[path]
            body = resources.files("labsim").joinpath("static", name).read_bytes()
            headers = {"Content-Security-Policy": dashboard._POLICY}
            route.fulfill(body=body, content_type=content_type, headers=headers)
        elif path == "/api/topology":
            route.fulfill(json=shown)
        elif path == "/api/events":
            route.fulfill(body=events, content_type="text/event-stream")
        else:
            route.fulfill(status=404, json={"error": f"no {path}"})

    page.route(f"{ORIGIN}/**", answer)
    return ORIGIN + "/"
