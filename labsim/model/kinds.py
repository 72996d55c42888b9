"""One description of each kind of component: its settings, the module that makes its app,
what it serves of its own, whether clients reach it, and whether it may call others.

Everything that treats components by kind reads this table: the scenario reader (which
settings a `[components.NAME]` table takes, which paths a call may name), the cluster
(the factory), the exposure rule (public or internal), `export compose`, `up --only`, the
dashboard and the prediction. A kind's figures are its module's `FIGURES` class.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import (
    CacheConfig,
    DatabaseConfig,
    GatewayConfig,
    LoadBalancerConfig,
    LoginConfig,
    ServiceConfig,
    WorkerConfig,
)


@dataclass(frozen=True)
class Kind:
    name: str
    settings: type
    module: str  # labsim.components.<module>: its `make_app(ctx)` and `FIGURES`
    public: bool  # what clients call: it listens on the public host under "gateways-only"
    serves: tuple[str, ...] = ()  # its own routes, "METHOD /path" ("{key}": any key)
    endpoints: bool = False  # takes `endpoints` made of steps (and so may call others)
    id_key: str = ""  # the key naming the replica in its endpoints' answers

    def serves_route(self, method: str, path: str) -> bool:
        return any(_matches(route, f"{method} {path}") for route in self.serves)


def _matches(pattern: str, route: str) -> bool:
    regex = re.escape(pattern).replace(re.escape("{key}"), r"[A-Za-z0-9_.\-]+")
    return re.fullmatch(regex, route) is not None


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("load_balancer", LoadBalancerConfig, "load_balancer", public=True),
        Kind(
            "gateway",
            GatewayConfig,
            "gateway",
            public=True,
            serves=("POST /login",),
            endpoints=True,
            id_key="gateway_id",
        ),
        Kind(
            "cache",
            CacheConfig,
            "cache",
            public=False,
            serves=("GET /cache/{key}", "POST /cache/{key}", "DELETE /cache/{key}"),
        ),
        Kind("database", DatabaseConfig, "database", public=False, serves=("GET /db",)),
        Kind("worker", WorkerConfig, "worker", public=False, serves=("POST /task",)),
        Kind(
            "service", ServiceConfig, "service", public=False, endpoints=True, id_key="service_id"
        ),
        # The lab's microservice: a service, under the name its figures have always had.
        Kind(
            "microservice",
            ServiceConfig,
            "service",
            public=False,
            endpoints=True,
            id_key="service_id",
        ),
        Kind(
            "login",
            LoginConfig,
            "login",
            public=False,
            serves=("POST /login", "POST /validate_token"),
        ),
    )
}
