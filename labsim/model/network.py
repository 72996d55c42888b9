"""Open Jackson networks: each endpoint's mean response, for any topology graph.

Requests of each endpoint arrive from outside (Poisson, `Route.rate` a second) and visit
stations of c servers, first come first served, exponential service of rate mu per server,
no queue limit; after a station a request goes on to another or leaves. Jackson (1963)
showed that such a network's stationary distribution is a product: each station behaves
as an independent M/M/c queue fed at its total arrival rate lam_i, the sum over endpoints
of rate times mean visits, the visits solving the traffic equations v = e + v P. Several
endpoints, each routed its own way, keep the product form while every endpoint has the
same service rate at a station (BCMP: Baskett, Chandy, Muntz and Palacios, 1975). So a
station's mean response W_i is `theory.mmc_mean_response`, its mean number L_i = lam_i W_i
(Little), and an endpoint's mean end-to-end response is sum_i visits_i W_i (Harchol-Balter,
ch. 17-18; Kleinrock, vol. 1, sec. 4.8). A pure delay (a link's latency: an infinite-server
station, which keeps the product form with any distribution) adds its mean to each visit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .theory import mmc_mean_response

# Probabilities out of a station that sum to within this of 1 count as 1: 0.1 + 0.2 + 0.7
# is 0.9999999999999999 in floating point, and is no way out of the network.
_SLACK = 1e-12


@dataclass(frozen=True)
class Station:
    """`servers` servers, each serving `service_rate` requests a second (exponential), first
    come first served; `delay` seconds (a mean) added to each visit, holding no server."""

    id: str
    servers: int
    service_rate: float
    delay: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.servers, bool) or not isinstance(self.servers, int) or self.servers < 1:
            raise ValueError(
                f"station {self.id!r}: servers must be an integer >= 1 (got {self.servers!r})"
            )
        if not (math.isfinite(self.service_rate) and self.service_rate > 0):
            raise ValueError(
                f"station {self.id!r}: service_rate must be > 0 (got {self.service_rate!r})"
            )
        if not (math.isfinite(self.delay) and self.delay >= 0):
            raise ValueError(
                f"station {self.id!r}: delay must be >= 0 seconds (got {self.delay!r})"
            )


@dataclass(frozen=True)
class Route:
    """An endpoint's requests: `rate` a second from outside, each visiting station s
    `visits[s]` times on average (a cache-aside read with miss ratio m: the cache 1 + m
    times, the database m times). `visits_from_routing` finds them from a routing matrix."""

    endpoint: str
    rate: float
    visits: Mapping[str, float]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate >= 0):
            raise ValueError(
                f"route {self.endpoint!r}: rate must be >= 0 a second (got {self.rate!r})"
            )
        for station, count in self.visits.items():
            if not (math.isfinite(count) and count >= 0):
                raise ValueError(
                    f"route {self.endpoint!r}: visits to {station!r} must be >= 0 (got {count!r})"
                )
        # A copy, read-only: the caller's dict changing later would not change the route.
        object.__setattr__(self, "visits", MappingProxyType(dict(self.visits)))


@dataclass(frozen=True)
class StationResult:
    """One station: arrival rate lam (a second), utilization rho = lam / (c mu), mean
    response W (wait, service and delay, seconds), mean number there L = lam W."""

    lam: float
    rho: float
    mean_response: float
    mean_in_system: float


@dataclass(frozen=True)
class NetworkResult:
    """Per station and per endpoint means. `unstable`, when not None, names the first
    saturated station and its utilization; its mean response, those of the endpoints that
    visit it and the network's mean number are then infinite."""

    stations: Mapping[str, StationResult]
    endpoints: Mapping[str, float]  # mean end-to-end response, seconds
    mean_in_system: float  # requests in the network, on average (Little: sum of lam W)
    throughput: float  # requests a second entering (and, when stable, leaving)
    unstable: str | None = None

    @property
    def mean_response(self) -> float:
        """Mean response over all requests, seconds: L / X by Little's law."""
        return self.mean_in_system / self.throughput if self.throughput else 0.0


def visits_from_routing(entry: str, routing: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Mean visits to each station by a request entering at `entry`: v = e + v P, where
    routing[i][j] is the chance of going from i to j after service (the rest of i's row
    leaves the network). Every station named gets a count, 0.0 if never reached."""
    names = list(dict.fromkeys([entry, *routing, *(j for row in routing.values() for j in row)]))
    for i, row in routing.items():
        for j, chance in row.items():
            if not (math.isfinite(chance) and 0 <= chance <= 1):
                raise ValueError(
                    f"routing {i!r} -> {j!r}: a chance is between 0 and 1 (got {chance!r})"
                )
        if sum(row.values()) > 1 + _SLACK:
            raise ValueError(f"routing out of {i!r} sums to {sum(row.values()):g}, more than 1")

    def successors(i: str) -> list[str]:
        return [j for j, chance in routing.get(i, {}).items() if chance > 0]

    reached = _closure([entry], successors)
    # Open means every station a request can reach has a way out from it; without one,
    # a loop whose chances sum to 1 never drains and the visits have no bound (I - P is
    # singular). The graph names those stations, which elimination alone would not.
    leaks = [i for i in names if 1 - sum(routing.get(i, {}).values()) > _SLACK]
    predecessors: dict[str, list[str]] = {i: [] for i in names}
    for i in names:
        for j in successors(i):
            predecessors[j].append(i)
    drains = _closure(leaks, lambda j: predecessors[j])
    trapped = [i for i in names if i in reached and i not in drains]
    if trapped:
        raise ValueError(
            f"the network entered at {entry!r} is not open: requests reaching "
            f"{', '.join(map(repr, trapped))} never leave (their routing chances loop "
            "with sum 1), so the visits are unbounded"
        )
    order = [i for i in names if i in reached]
    solved = _solve_traffic(order, routing, entry)
    return {i: solved.get(i, 0.0) for i in names}


def _closure(start: Iterable[str], step: Callable[[str], Iterable[str]]) -> set[str]:
    """The stations reached from `start` by repeated `step` (a graph search)."""
    seen, todo = set(start), list(start)
    while todo:
        for j in step(todo.pop()):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return seen


def _solve_traffic(
    order: list[str], routing: Mapping[str, Mapping[str, float]], entry: str
) -> dict[str, float]:
    """v (I - P) = e over the reached stations, by Gaussian elimination with partial
    pivoting: row j reads v_j - sum_i v_i P_ij = e_j."""
    index = {name: k for k, name in enumerate(order)}
    n = len(order)
    a = [[1.0 if r == k else 0.0 for k in range(n)] + [0.0] for r in range(n)]
    a[index[entry]][n] = 1.0
    for i in order:
        for j, chance in routing.get(i, {}).items():
            if j in index:
                a[index[j]][index[i]] -= chance
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        # The graph test above leaves I - P invertible; this guards what rounding may do.
        if abs(a[pivot][col]) <= _SLACK:
            raise ValueError(f"the network entered at {entry!r} is not open: I - P is singular")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            if factor:
                for k in range(col, n + 1):
                    a[r][k] -= factor * a[col][k]
    v = [0.0] * n
    for r in reversed(range(n)):
        known = sum(a[r][k] * v[k] for k in range(r + 1, n))
        v[r] = (a[r][n] - known) / a[r][r]
    return dict(zip(order, v, strict=True))


def solve(stations: Sequence[Station], routes: Sequence[Route]) -> NetworkResult:
    """Each station's and each endpoint's means in the open network (product form)."""
    by_id: dict[str, Station] = {}
    for station in stations:
        if station.id in by_id:
            raise ValueError(f"station {station.id!r} is listed twice")
        by_id[station.id] = station
    lam = dict.fromkeys(by_id, 0.0)
    endpoints: set[str] = set()
    for route in routes:
        if route.endpoint in endpoints:
            raise ValueError(f"route {route.endpoint!r} is listed twice")
        endpoints.add(route.endpoint)
        for name, count in route.visits.items():
            if name not in by_id:
                known = ", ".join(map(repr, by_id)) or "none"
                raise ValueError(
                    f"route {route.endpoint!r} visits unknown station {name!r} (stations: {known})"
                )
            lam[name] += route.rate * count

    unstable = None
    results: dict[str, StationResult] = {}
    for name, station in by_id.items():
        c, mu = station.servers, station.service_rate
        rho = lam[name] / (c * mu)
        if rho >= 1 or lam[name] / mu >= c:  # the second: erlang_c's own test, to the bit
            unstable = unstable or (
                f"station {name!r} saturated: utilization {rho:.3g} "
                f"({lam[name]:g} requests/s against {c} x {mu:g}/s)"
            )
            results[name] = StationResult(lam[name], rho, math.inf, math.inf)
            continue
        response = mmc_mean_response(lam[name], mu, c) + station.delay
        results[name] = StationResult(lam[name], rho, response, lam[name] * response)

    means = {
        # Zero visits add nothing, even at a saturated station (0 x inf would be nan).
        route.endpoint: sum(
            count * results[name].mean_response for name, count in route.visits.items() if count
        )
        for route in routes
    }
    return NetworkResult(
        stations=MappingProxyType(results),
        endpoints=MappingProxyType(means),
        mean_in_system=sum(r.mean_in_system for r in results.values()),
        throughput=sum(route.rate for route in routes),
        unstable=unstable,
    )


__all__ = [
    "NetworkResult",
    "Route",
    "Station",
    "StationResult",
    "solve",
    "visits_from_routing",
]
