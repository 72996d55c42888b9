"""The topology as data: dataclasses, read from a TOML scenario file, then CLI overrides.

Everything a component may know about its settings comes from one validated `Topology`
value. Validation happens once, here, and every error names the file and the key.
This module reads files; it never reads the environment (the CLI does).
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from .graph import Component, Graph
from .lab import lab_components
from .latency import LatencyModel

# Re-exported: the schema's error and limit are what users of the configuration meet.
from .schema import LIMIT as LIMIT
from .schema import ConfigError as ConfigError
from .schema import check, one_of

# The load balancer's ways to pick a backend (`components/balancing.py` implements them).
STRATEGIES = (
    "round_robin",
    "weighted",
    "random",
    "least_connections",
    "power_of_two",
    "consistent_hash",
)

# A cache's eviction policies (`components/cache.py`); "": the default, see CacheConfig.
EVICTIONS = ("", "lru", "lfu", "fifo", "random", "ttl")

GATEWAY_PORT_STEP = 3  # the lab's gateways sit on 5000, 5003, 5006


# The lab's service times: every hop 1 ms, the database 2 s, a worker task 5 s.
ONE_MS = LatencyModel.fixed(0.001)
DB_LAB = LatencyModel.fixed(2.0)
TASK_LAB = LatencyModel.fixed(5.0)

_PORT = check(lambda p: 0 <= p <= 65535, "must be a port number from 0 to 65535")
# Beyond these, memory (one app, pool and counters per gateway; one task per client) or
# the kernel (file descriptors) gives out before the numbers mean anything.
MAX_GATEWAYS = 100
MAX_CONCURRENCY = 10_000
_POSITIVE = check(lambda v: v > 0, "must be greater than 0")
AT_LEAST_ONE = check(lambda v: v >= 1, "must be at least 1")

# A station's bounds: beyond these a setting is a typo, not a server (issue 11).
MAX_SLOTS = 100_000
MAX_QUEUE = 1_000_000
NO_TIME = LatencyModel.fixed(0.0)


# A window's log keeps a time per request admitted: past this, memory, not the lab.
MAX_WINDOW_REQUESTS = 1_000_000
MAX_LIMITED_PATHS = 100
_STATUS_NAME = re.compile(r"[A-Za-z0-9_]{1,64}")


@dataclass(frozen=True)
class RateLimitConfig:
    """Two forms, each off at 0. A token bucket per client (the load balancer and the
    gateways only): `rate` requests a second, bursts of `burst`. A count per window over
    every caller of one component instance (any kind, as the course's Lab 5): at most
    `requests` in any `window` seconds, on the routes `paths` names (every work route when
    empty). `topology.validate` checks that each form is given whole."""

    rate: float = field(default=0.0, metadata=check(lambda v: v >= 0, "must be 0 or more"))
    burst: int = field(default=0, metadata=check(lambda v: v >= 0, "must be 0 or more"))
    requests: int = field(
        default=0,
        metadata=check(
            lambda v: 0 <= v <= MAX_WINDOW_REQUESTS,
            f"must be from 0 (off) to {MAX_WINDOW_REQUESTS}",
        ),
    )
    window: float = field(default=0.0, metadata=check(lambda v: v >= 0, "must be 0 or more"))
    paths: tuple[str, ...] = field(
        default=(),
        metadata=check(
            lambda ps: len(ps) <= MAX_LIMITED_PATHS, f"must list at most {MAX_LIMITED_PATHS} paths"
        ),
    )


# `status_name`: how the status log names a component (`GET /status`); "" = its id.
STATUS_NAME = check(
    lambda n: n == "" or _STATUS_NAME.fullmatch(n) is not None,
    "must be 1 to 64 letters, digits or '_' (e.g. \"APIGATEWAY\")",
)


@dataclass(frozen=True)
class StationConfig:
    """What every component but the worker may have: slots, a waiting line, service time.

    `concurrency` requests are served at once (0: no limit, the default); up to
    `queue_size` more wait (0: none may wait); past that, 503. A request holds its slot
    for a draw of `service` and while its handler runs (`holds = "request"`), or for the
    service time only (`holds = "service"`); with `discipline = "processor_sharing"` all
    share the slots for their service time instead of waiting. `latency` is a pure delay.
    The worker's `concurrency` and `queue_size` are its tasks' and stay its own.
    `rate_limit` and `status_name`, which every kind has (the worker too), are not
    station settings: a gateway's `each` table keeps the shared ones unless it sets them.
    """

    concurrency: int = field(
        default=0,
        metadata=check(lambda v: 0 <= v <= MAX_SLOTS, f"must be from 0 (no limit) to {MAX_SLOTS}"),
    )
    queue_size: int = field(
        default=MAX_QUEUE,
        metadata=check(lambda v: 0 <= v <= MAX_QUEUE, f"must be from 0 to {MAX_QUEUE}"),
    )
    service: LatencyModel = NO_TIME
    holds: str = field(default="request", metadata=one_of("request", "service"))
    discipline: str = field(default="fifo", metadata=one_of("fifo", "processor_sharing"))
    rate_limit: RateLimitConfig = RateLimitConfig()
    status_name: str = field(default="", metadata=STATUS_NAME)


@dataclass(frozen=True)
class User:
    username: str
    password: str = field(repr=False)
    role: str = "user"


_SHARE = check(lambda v: 0 <= v <= 100, "must be a percentage from 0 to 100")
_NOT_NEGATIVE = check(lambda v: v >= 0, "must be 0 or more")


@dataclass(frozen=True)
class HealthCheckConfig:
    """Active checks: `GET /health` on each gateway every `interval` seconds. 0 = off."""

    interval: float = field(default=0.0, metadata=_NOT_NEGATIVE)
    timeout: float = field(default=1.0, metadata=_POSITIVE)
    unhealthy_threshold: int = field(default=2, metadata=AT_LEAST_ONE)
    healthy_threshold: int = field(default=2, metadata=AT_LEAST_ONE)


@dataclass(frozen=True)
class OutlierConfig:
    """Passive ejection after `consecutive_failures` errors or 5xx in a row. 0 = off."""

    consecutive_failures: int = field(default=0, metadata=_NOT_NEGATIVE)
    base_ejection: float = field(default=1.0, metadata=_POSITIVE)
    max_ejection_percent: float = field(default=50.0, metadata=_SHARE)


@dataclass(frozen=True)
class RetryConfig:
    """Retry a failed GET once more on another gateway, within a budget. 0 = off."""

    attempts: int = field(default=0, metadata=_NOT_NEGATIVE)
    budget_percent: float = field(default=20.0, metadata=_SHARE)
    min_retries: int = field(default=3, metadata=_NOT_NEGATIVE)
    budget_window: float = field(default=10.0, metadata=_POSITIVE)


@dataclass(frozen=True)
class LoadBalancerConfig(StationConfig):
    port: int = field(default=8000, metadata=_PORT)
    latency: LatencyModel = ONE_MS
    strategy: str = field(
        default="round_robin",
        metadata=check(lambda s: s in STRATEGIES, f"must be one of {', '.join(STRATEGIES)}"),
    )
    weights: tuple[int, ...] = field(
        default=(),
        metadata=check(lambda ws: all(w >= 1 for w in ws), "must all be whole numbers >= 1"),
    )
    hash_on: str = field(
        default="client",
        metadata=check(
            lambda h: h == "client" or (h.startswith("header:") and len(h) > 7),
            'must be "client" or "header:<Name>"',
        ),
    )
    timeout: float = field(default=30.0, metadata=_POSITIVE)  # per try, on the clock
    # Below aiohttp's 128 at the gateways, with room for the few headers the proxy adds.
    max_headers: int = field(
        default=64, metadata=check(lambda v: 1 <= v <= 120, "must be from 1 to 120")
    )
    max_header_bytes: int = field(
        default=16 * 1024, metadata=check(lambda v: v >= 1024, "must be at least 1024 bytes")
    )
    health_check: HealthCheckConfig = HealthCheckConfig()
    outlier: OutlierConfig = OutlierConfig()
    retry: RetryConfig = RetryConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()


@dataclass(frozen=True)
class GatewayConfig(StationConfig):
    ports: tuple[int, ...] = field(
        default=(5000, 5003, 5006),
        metadata=check(
            lambda ps: (
                1 <= len(ps) <= MAX_GATEWAYS
                and len(set(ps)) == len(ps)
                and all(0 <= p <= 65535 for p in ps)
            ),
            f"must list 1 to {MAX_GATEWAYS} ports, each from 0 to 65535, none twice",
        ),
    )
    latency: LatencyModel = ONE_MS
    token_ttl: float = field(
        default=3600.0, metadata=check(lambda v: v >= 1, "must be at least 1 second")
    )
    data_key: str = field(
        default="my_data",
        metadata=check(
            lambda k: re.fullmatch(r"[A-Za-z0-9_.\-]+", k) is not None,
            "must be letters, digits, '_', '.' or '-'",
        ),
    )
    use_cache: bool = True
    rate_limit: RateLimitConfig = RateLimitConfig()
    public: bool = False  # with exposure "gateways-only": listen on `host`, not loopback
    # Gateways whose slots, waiting line and service differ from the others':
    # `[gateways.each.gateway-5006]`, a whole station setting (not merged with these).
    each: dict[str, StationConfig] = field(default_factory=dict)


@dataclass(frozen=True)
class CacheConfig(StationConfig):
    port: int = field(default=5004, metadata=_PORT)
    latency: LatencyModel = ONE_MS
    ttl: float = field(default=120.0, metadata=_POSITIVE)
    max_ttl: float = field(default=86_400.0, metadata=_POSITIVE)
    maxsize: int = field(default=1024, metadata=AT_LEAST_ONE)
    # Which entry goes when `maxsize` is reached; "" (the default): the least recently
    # used, expired entries first (cachetools' TLRUCache, each entry with its own TTL).
    eviction: str = field(
        default="",
        metadata=check(
            lambda e: e in EVICTIONS, f"must be one of {', '.join(e for e in EVICTIONS if e)}"
        ),
    )
    max_bytes: int = field(
        default=16 * 1024 * 1024, metadata=check(lambda v: v >= 1024, "must be at least 1024")
    )
    coalesce: bool = False
    stale_while_revalidate: float = field(default=0.0, metadata=_NOT_NEGATIVE)
    lease_timeout: float = field(default=10.0, metadata=_POSITIVE)
    timeout: float = field(default=15.0, metadata=_POSITIVE)  # a gateway's wait for it


@dataclass(frozen=True)
class DatabaseConfig(StationConfig):
    port: int = field(default=5002, metadata=_PORT)
    latency: LatencyModel = DB_LAB
    timeout: float = field(default=10.0, metadata=_POSITIVE)


@dataclass(frozen=True)
class WorkerConfig:
    port: int = field(default=5005, metadata=_PORT)
    latency: LatencyModel = ONE_MS
    task_duration: LatencyModel = TASK_LAB
    concurrency: int = field(default=100, metadata=AT_LEAST_ONE)
    queue_size: int = field(default=1000, metadata=AT_LEAST_ONE)
    history: int = field(default=10_000, metadata=AT_LEAST_ONE)
    timeout: float = field(default=5.0, metadata=_POSITIVE)
    rate_limit: RateLimitConfig = RateLimitConfig()
    status_name: str = field(default="", metadata=STATUS_NAME)


@dataclass(frozen=True)
class MicroserviceConfig(StationConfig):
    """A service: the lab's microservice, or any component whose endpoints are steps."""

    port: int = field(default=5001, metadata=_PORT)
    latency: LatencyModel = ONE_MS
    timeout: float = field(default=5.0, metadata=_POSITIVE)  # a caller's wait for it


ServiceConfig = MicroserviceConfig


@dataclass(frozen=True)
class LoginConfig(StationConfig):
    """A login service (Lab 5's): `POST /login` issues tokens, `POST /validate_token`
    checks one for the gateways that hand it their checks."""

    port: int = field(default=5009, metadata=_PORT)
    latency: LatencyModel = ONE_MS
    token_ttl: float = field(
        default=3600.0, metadata=check(lambda v: v >= 1, "must be at least 1 second")
    )
    timeout: float = field(default=5.0, metadata=_POSITIVE)


@dataclass(frozen=True)
class LimitsConfig:
    """What any client may send to any component, and how long it may take to send it.

    The socket-level times (`head_timeout`, `body_timeout`) are wall time on both clocks:
    they guard real connections, which the virtual clock does not simulate.
    """

    max_body: int = field(
        default=64 * 1024,
        metadata=check(lambda v: 1024 <= v <= 16 * 1024 * 1024, "must be 1024 to 16777216 bytes"),
    )
    max_json_depth: int = field(
        default=32, metadata=check(lambda v: 1 <= v <= 500, "must be from 1 to 500")
    )
    head_timeout: float = field(
        default=10.0, metadata=check(lambda v: 0.1 <= v <= 3600, "must be 0.1 to 3600 seconds")
    )
    body_timeout: float = field(
        default=10.0, metadata=check(lambda v: 0.1 <= v <= 3600, "must be 0.1 to 3600 seconds")
    )
    max_connections: int = field(
        default=1000, metadata=check(lambda v: 8 <= v <= 100_000, "must be from 8 to 100000")
    )


@dataclass(frozen=True)
class AuthConfig:
    """How gateways check tokens: `strict` (the default) or the course guide's profile."""

    mode: str = field(default="strict", metadata=one_of("strict", "guide"))
    required: bool = True  # false: no token is asked for, as with the guide's check disabled


@dataclass(frozen=True)
class Topology:
    """Every component's settings. `secret` signs JWTs, `admin_token` opens the admin API
    and `internal_token` marks the gateways' calls (`exposure`); none is read from a file."""

    name: str = "lab"
    description: str = ""
    host: str = field(
        default="127.0.0.1",
        metadata=check(lambda h: bool(h.strip()), "must name an address, e.g. 127.0.0.1"),
    )
    seed: int = field(default=1, metadata=_NOT_NEGATIVE)
    load_balancer: LoadBalancerConfig = LoadBalancerConfig()
    gateways: GatewayConfig = GatewayConfig()
    cache: CacheConfig = CacheConfig()
    database: DatabaseConfig = DatabaseConfig()
    worker: WorkerConfig = WorkerConfig()
    microservice: MicroserviceConfig = MicroserviceConfig()
    limits: LimitsConfig = LimitsConfig()
    auth: AuthConfig = AuthConfig()
    # "gateways-only": the cache, database, worker and microservice answer only the gateways.
    exposure: str = field(default="open", metadata=one_of("open", "gateways-only"))
    # Component id -> the address it listens on and is reached at, where not `host`: the
    # same scenario, split over processes or machines (`up --only`).
    hosts: dict[str, str] = field(default_factory=dict)
    # `[components.NAME]` tables: the topology as a graph (`graph.py`). Empty: the lab's,
    # from the sections above (`lab.py`). Read by `topology.py`, not by `build`.
    components: dict[str, Component] = field(default_factory=dict)
    # The course's Lab 5 status log (`status_log.json`): true, a run reports every
    # component's answers by status code, as also when any component has a `status_name`.
    status_tracker: bool = False
    users: tuple[User, ...] = field(
        default=(User("user1", "password123", "user"),),
        metadata=check(lambda us: 1 <= len(us) <= 1000, "must list 1 to 1000 users"),
    )
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # `--port-offset`: how far the ports were moved. A gateway's id comes from its port
    # before the move, so faults, `expect`, `[hosts]` and `each` keep naming it.
    port_offset: int = 0
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)

    def host_of(self, component: str) -> str:
        """The address `component` listens on: its own in `hosts`, else the shared one."""
        return self.hosts.get(component, self.host)

    def graph(self) -> Graph:
        """Its components as a graph: the `[components]` tables, or the lab's sections.
        Made once per topology (a frozen value: a changed one is another value)."""
        made: Graph | None = self.__dict__.get("_graph")
        if made is None:
            made = self._make_graph()
            object.__setattr__(self, "_graph", made)
        return made

    def _make_graph(self) -> Graph:
        if self.components:
            return Graph(self.components, self.port_offset)
        return Graph(lab_components(*self.lab_sections()), self.port_offset)

    def lab_sections(self) -> tuple[Any, ...]:
        """The lab's own sections, in the order `lab.py` takes them."""
        return (
            self.load_balancer,
            self.gateways,
            self.cache,
            self.database,
            self.worker,
            self.microservice,
        )

    def gateway_ids(self) -> list[str]:
        """`gateway-<port>`, by the scenario's port (`--port-offset` moves none)."""
        return [f"gateway-{port - self.port_offset if port else 0}" for port in self.gateways.ports]

    def ports(self) -> dict[str, int]:
        """Replica id -> configured port, in start order (callees first)."""
        graph = self.graph()
        return {r.id: r.port for name in graph.start_order() for r in graph.replicas(name)}


# The secrets a split topology's processes must share, and the variables that carry them.
SHARED_SECRETS = {
    "secret": "LABSIM_SECRET",
    "admin_token": "LABSIM_ADMIN_TOKEN",
    "internal_token": "LABSIM_INTERNAL_TOKEN",
}


def replica_settings(component: Component, replica_id: str) -> Any:
    """A replica's settings: its component's, with its own station (`each`) if it has one."""
    settings = component.settings
    own = getattr(settings, "each", {}).get(replica_id)
    if own is None:
        return settings
    station = {f.name: getattr(own, f.name) for f in dataclasses.fields(StationConfig)}
    for name in EVERY_KIND:  # not a station setting: the shared one, unless given
        if station[name] == _STATION_DEFAULTS[name]:
            del station[name]
    return dataclasses.replace(settings, **station)


def gateway_settings(topology: Topology, gateway_id: str) -> GatewayConfig:
    """A lab gateway's settings: the shared ones, with its own station if it has one."""
    settings: GatewayConfig = replica_settings(
        topology.graph().component_of(gateway_id), gateway_id
    )
    return settings


# Keys of StationConfig that are no station's (every kind has them, the worker too): a
# gateway's `each` table replaces them only when it gives them.
EVERY_KIND = ("rate_limit", "status_name")
_STATION_DEFAULTS = {f.name: f.default for f in dataclasses.fields(StationConfig)}
