"""What queueing theory predicts for a scenario's endpoints, or why it cannot.

A sweep prints this beside what it measured. For an open load the prediction holds where
each endpoint's path (load balancer, a gateway, then the microservice or the worker; or
the database, directly) is a chain of pure delays and M/M/c stations: Poisson arrivals at
a fixed rate, exponential service, first come first served, no queue limit, and no
station holding its slot while a later hop on the path takes time (or one processor
shared, whose mean is M/M/1's for any service). Poisson streams split at random stay
Poisson, and a stable M/M/c station passes Poisson arrivals on (Burke), so each station
is solved alone with `theory.py` and the times add up.

For a closed load (`concurrency` clients, each thinking `load.think` between an answer
and its next request) the same paths are a closed product-form network: delays of any
distribution (the think time, latencies), and stations first come first served with
exponential service, or shared processors with any service. `theory.closed_network`
solves it exactly for its throughput and mean response; the quantiles are not known. A
closed load sends the mix's endpoints one after another (`load.plan`), so each endpoint
is solved alone, with every client, and the throughput is the requests over the sum of
their times.

Anything else gets a reason instead, in words a user can act on. Reads the scenario
only; no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.http import POOL_SIZE
from .config import MAX_QUEUE, StationConfig, Topology, gateway_settings
from .latency import LatencyModel
from .load import plan
from .scenario import Scenario
from .theory import Centre, closed_network, mmc_mean_response, mmc_response_tail

# The hops each endpoint's request takes, in order ("gateways": the one the balancer picks).
PATHS = {
    "process": ("load_balancer", "gateways", "microservice"),
    "longtask": ("load_balancer", "gateways", "worker"),
    "db": ("database",),  # sent to the database directly, past the balancer (load.DIRECT)
}
# Clients times slots of the stations with 2 to N - 1 slots: past it, the closed
# network's exact solution takes more than a second or so here.
MAX_CLOSED_WORK = 2_000_000


@dataclass(frozen=True)
class StationTheory:
    """One M/M/c station as theory sees it."""

    arrival_rps: float
    slots: int
    service_s: float  # the mean of its exponential service
    utilization: float
    # One processor shared: the mean is M/M/1's for any service, the quantiles unknown.
    shared: bool = False


@dataclass(frozen=True)
class EndpointTheory:
    mean_ms: float
    p50_ms: float | None  # None where the distribution is not known in closed form
    p99_ms: float | None


@dataclass(frozen=True)
class Prediction:
    """Per endpoint, what theory predicts; or, in `reason`, why it does not apply."""

    endpoints: dict[str, EndpointTheory] = field(default_factory=dict)
    stations: dict[str, StationTheory] = field(default_factory=dict)
    reason: str | None = None
    # A closed load's requests a second (an open load's is its rate: None here).
    throughput_rps: float | None = None


class _NoTheory(Exception):
    """Why the scenario is not a network of M/M/c stations (the message says)."""


def predict(scenario: Scenario) -> Prediction:
    """Theory's figures for `scenario`, or a Prediction with only a `reason`."""
    try:
        return _predict(scenario)
    except _NoTheory as e:
        return Prediction(reason=str(e))


@dataclass(frozen=True)
class _Way:
    """One way through a hop: its share of the hop's requests, its delay, its station."""

    component: str
    share: float
    latency: LatencyModel
    station: StationConfig | None
    arrival_rps: float

    @property
    def slots(self) -> int:
        return self.station.concurrency if self.station is not None else 0

    @property
    def delay(self) -> float:
        """Mean seconds that hold nothing: the latency, and the service without slots."""
        station = self.station
        free = station.service.mean() if station is not None and not self.slots else 0.0
        return self.latency.mean() + free

    @property
    def delay_fixed(self) -> bool:
        free = self.station is None or bool(self.slots) or self.station.service.model == "fixed"
        return self.latency.model == "fixed" and free

    @property
    def takes_time(self) -> bool:
        station = self.station
        served = station.service.mean() if station is not None and self.slots else 0.0
        return self.delay > 0 or served > 0


def _predict(scenario: Scenario) -> Prediction:
    _check_load(scenario)
    topology, load = scenario.topology, scenario.load
    if not load.open:
        return _closed(scenario)
    total = sum(load.mix.values())
    paths = {
        e: [_ways(topology, kind, load.rate * w / total) for kind in _path(topology, e)]
        for e, w in load.mix.items()
        if w
    }
    arrivals: dict[str, float] = {}  # every endpoint through a component adds to its arrivals
    for ways in (ways for hops in paths.values() for ways in hops):
        for w in ways:
            arrivals[w.component] = arrivals.get(w.component, 0.0) + w.arrival_rps
    stations: dict[str, StationTheory] = {}
    for hops in paths.values():
        for i, ways in enumerate(hops):
            for way in ways:
                station = _station(way, hops[i + 1 :], arrivals[way.component])
                if station is not None:
                    stations[way.component] = station
    return Prediction({e: _theory(hops, stations) for e, hops in paths.items()}, stations)


def _theory(hops: list[list[_Way]], stations: dict[str, StationTheory]) -> EndpointTheory:
    """One endpoint's mean, and its quantiles where they are known."""
    tails: list[Callable[[float], float]] = []  # per hop that varies: P(its time > t)
    fixed, constant, mean = True, 0.0, 0.0
    for ways in hops:
        mean += sum(w.share * (w.delay + _response(w, stations)) for w in ways)
        fixed &= all(w.delay_fixed for w in ways)
        fixed &= not any(stations[w.component].shared for w in ways if w.component in stations)
        delays = {w.delay for w in ways}
        if any(w.component in stations for w in ways) or len(delays) > 1:
            tails.append(_hop_tail(ways, stations))
        else:
            constant += delays.pop()
    return _endpoint(mean, constant, tails if fixed else None)


def _closed(scenario: Scenario) -> Prediction:
    """A closed load: each endpoint's share of the requests, in turn, through a closed
    network of every client; the stations' figures are over the whole run."""
    topology, load = scenario.topology, scenario.load
    clients, think = min(load.concurrency, load.requests), load.think.mean()
    endpoints: dict[str, EndpointTheory] = {}
    seconds = 0.0
    stations: dict[str, _Way] = {}
    through: dict[str, float] = {}  # requests through each station over the run
    for endpoint, count in plan(load.requests, load.mix):
        hops = [_ways(topology, kind, 0.0) for kind in _path(topology, endpoint)]
        if len(hops) > 1 and clients > POOL_SIZE:
            raise _NoTheory(
                f"{clients} clients, more than the {POOL_SIZE} connections a component keeps "
                "to each it calls: requests may wait for one, which no station models"
            )
        centres = [
            c
            for i, ways in enumerate(hops)
            for w in ways
            for c in _centres(w, hops[i + 1 :], clients)
        ]
        _check_work(centres, clients)
        try:
            throughput, response = closed_network(centres, clients, think)
        except ValueError:
            raise _NoTheory(
                f"nothing on {endpoint}'s path takes time, nor between requests: its "
                "throughput has no bound"
            ) from None
        endpoints[endpoint] = EndpointTheory(response * 1000, None, None)
        seconds += count / throughput
        for way in (w for ways in hops for w in ways if w.station is not None and w.slots):
            stations[way.component] = way
            through[way.component] = through.get(way.component, 0.0) + count * way.share
    return Prediction(
        endpoints,
        {c: _run_station(way, through[c], seconds) for c, way in stations.items()},
        throughput_rps=load.requests / seconds,
    )


def _run_station(way: _Way, requests: float, seconds: float) -> StationTheory:
    """A closed load's station, its arrivals and utilization averaged over the run."""
    assert way.station is not None  # only ways with slots have stations
    service = way.station.service.mean()
    return StationTheory(
        requests / seconds,
        way.slots,
        service,
        requests * service / way.slots / seconds,
        way.station.discipline == "processor_sharing",
    )


def _centres(way: _Way, later: list[list[_Way]], clients: int) -> list[Centre]:
    """The way's delay, and its station where it has slots, each as much as one request
    needs of it on average (the way's share of its time)."""
    centres = [Centre(way.share * way.delay)]
    station = way.station
    if station is None or not way.slots:
        return centres
    _check_station(way, station, later)
    if station.concurrency + station.queue_size < clients:
        raise _NoTheory(
            f"{way.component}'s queue_size ({station.queue_size}) can turn clients away: "
            f"{clients} clients, more than its concurrency + queue_size "
            f"({station.concurrency + station.queue_size})"
        )
    return [*centres, Centre(way.share * station.service.mean(), station.concurrency)]


def _check_work(centres: list[Centre], clients: int) -> None:
    work = sum(clients * c.servers for c in centres if c.servers and 1 < c.servers < clients)
    if work > MAX_CLOSED_WORK:
        raise _NoTheory(
            f"{clients} clients at stations of many slots: more than the exact solution "
            f"solves quickly here (clients times slots above {MAX_CLOSED_WORK:,})"
        )


def _path(topology: Topology, endpoint: str) -> tuple[str, ...]:
    if endpoint == "data":  # only without the cache: then every read is the database's
        return ("load_balancer", "gateways", "database")
    return PATHS[endpoint]


def _check_load(scenario: Scenario) -> None:
    load, topology = scenario.load, scenario.topology
    if load.open and load.stages:
        raise _NoTheory("the rate changes over stages; theory needs one load.rate")
    if load.open and load.arrivals != "poisson":
        raise _NoTheory(f'arrivals are {load.arrivals}; theory needs "poisson"')
    if scenario.faults:
        raise _NoTheory("faults change the components during the run")
    limited = topology.load_balancer.rate_limit.rate or topology.gateways.rate_limit.rate
    balanced = any(w and "load_balancer" in _path(topology, e) for e, w in load.mix.items())
    if limited and balanced:  # /db goes past both limiters
        raise _NoTheory("a rate limit refuses requests")
    windowed = {
        kind
        for e, w in load.mix.items()
        if w
        for kind in _path(topology, e)
        if getattr(topology, kind).rate_limit.requests
    }
    if windowed:  # a count per window refuses on any path it is on
        raise _NoTheory(f"a rate limit ({sorted(windowed)[0]}) refuses requests")
    if load.mix.get("data") and topology.gateways.use_cache:
        raise _NoTheory("data goes through the cache, whose hits and misses take different paths")


def _ways(topology: Topology, kind: str, rate: float) -> list[_Way]:
    """The ways through one hop: one, or one per gateway (each with its share)."""
    if kind != "gateways":
        settings = getattr(topology, kind)
        station = settings if isinstance(settings, StationConfig) else None
        return [_Way(kind.replace("_", "-"), 1.0, settings.latency, station, rate)]
    ids = topology.gateway_ids()
    settings = [gateway_settings(topology, g) for g in ids]
    if len(ids) > 1 and any(s.concurrency for s in settings):
        strategy = topology.load_balancer.strategy
        if strategy != "random":
            raise _NoTheory(
                f"the {strategy.replace('_', ' ')} balancer does not split arrivals at "
                "random, so the gateways' arrivals are not Poisson"
            )
    share = 1 / len(ids)
    return [_Way(g, share, s.latency, s, rate * share) for g, s in zip(ids, settings, strict=True)]


def _station(way: _Way, later: list[list[_Way]], arrival: float) -> StationTheory | None:
    """The way's M/M/c station (None without slots); _NoTheory if it is not one."""
    station, component = way.station, way.component
    if station is None or not station.concurrency:
        return None
    _check_station(way, station, later)
    shared = station.discipline == "processor_sharing"
    if shared and station.concurrency > 1:
        raise _NoTheory(f"{component} shares {station.concurrency} processors; theory here has 1")
    if station.queue_size < MAX_QUEUE:
        raise _NoTheory(f"{component}'s queue_size ({station.queue_size}) limits its line")
    mean = station.service.mean()
    utilization = arrival * mean / station.concurrency
    if utilization >= 1:
        raise _NoTheory(f"unstable: {component} would be {utilization:.2f} busy (1 or more)")
    return StationTheory(arrival, station.concurrency, mean, utilization, shared)


def _check_station(way: _Way, station: StationConfig, later: list[list[_Way]]) -> None:
    """_NoTheory unless the station is product-form: it lets go of its slot before a later
    hop takes time (or shares processors, which let go after service whatever `holds`
    says), and serves first come first served exponentially, or shares with any service."""
    shared = station.discipline == "processor_sharing"
    busy_later = next((w for ways in later for w in ways if w.takes_time), None)
    if busy_later is not None and station.holds == "request" and not shared:
        raise _NoTheory(
            f"{way.component} holds its slot while {busy_later.component} works, so its time "
            "in service is not exponential"
        )
    if station.service.model != "exponential" and not shared:  # shared: any service
        raise _NoTheory(f"{way.component}'s service is {station.service.model}, not exponential")


def _response(way: _Way, stations: dict[str, StationTheory]) -> float:
    """The mean time at the way's station (0 without one), seconds."""
    s = stations.get(way.component)
    return 0.0 if s is None else mmc_mean_response(s.arrival_rps, 1 / s.service_s, s.slots)


def _hop_tail(ways: list[_Way], stations: dict[str, StationTheory]) -> Callable[[float], float]:
    """P(time at this hop > t): its delay, then its station, mixed over the ways."""
    parts = [(w.share, w.delay, stations.get(w.component)) for w in ways]

    def tail(t: float) -> float:
        total = 0.0
        for share, delay, s in parts:
            left = t - delay
            if left < 0:
                total += share
            elif s is not None:
                total += share * mmc_response_tail(s.arrival_rps, 1 / s.service_s, s.slots, left)
        return total

    return tail


def _endpoint(
    mean: float, constant: float, tails: list[Callable[[float], float]] | None
) -> EndpointTheory:
    """Quantiles are known when the delays are fixed and at most one hop varies (a
    station, or a choice of ways): then they are that hop's, shifted by the rest."""
    if tails is None or len(tails) > 1:
        return EndpointTheory(mean * 1000, None, None)
    if not tails:
        return EndpointTheory(mean * 1000, constant * 1000, constant * 1000)
    [tail] = tails
    return EndpointTheory(
        mean * 1000,
        (constant + _quantile(tail, 0.5)) * 1000,
        (constant + _quantile(tail, 0.99)) * 1000,
    )


def _quantile(tail: Callable[[float], float], q: float) -> float:
    """The q-quantile of a falling tail function, by bisection."""
    low, high = 0.0, 1.0
    while tail(high) > 1 - q:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) > 1 - q else (low, middle)
    return (low + high) / 2
