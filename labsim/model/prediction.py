"""What queueing theory predicts for a scenario's endpoints, or why it cannot.

A sweep prints this beside what it measured. Each endpoint's route comes from the
topology's graph (`graph.py`): its request enters at the graph's entry (or, for an
endpoint the load sends to a component directly, there) with the endpoint's method and
path; a load balancer spreads it over its backends' replicas (round robin and random
evenly, weighted by its weights); a gateway or service runs the matching endpoint's steps
in order (a call visits the target with its method and path, `enqueue` the worker's
`POST /task`, `read_through` without a cache its source, `cpu` and `io` wait), after a
gateway's login component checks its token; the other kinds serve their own routes. A
component called directly, not through a balancer, takes its replicas in turn. So each
endpoint visits each component's replicas some number of times on average: its route.

For an open load the prediction holds where every station visited is M/M/c: Poisson
arrivals at a fixed rate, exponential service, first come first served, no queue limit,
and no station holding its slot while what it calls takes time (or one processor shared,
whose mean is M/M/1's for any service). Poisson streams split at random stay Poisson,
and a stable M/M/c station passes Poisson arrivals on (Burke): the stations form an open
Jackson network, whose arrival rates and per-station means `network.solve` finds from all
endpoints' routes; an endpoint's mean adds up its visits' means and delays. Its quantiles
are known where the delays are fixed and at most one hop varies (a station, or a choice
of ways): then they are that hop's, shifted by the rest.

For a closed load (`concurrency` clients, each thinking `load.think` between an answer
and its next request) the same routes are a closed product-form network: delays of any
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

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from ..core.http import POOL_SIZE
from .config import MAX_QUEUE, StationConfig, Topology, replica_settings
from .graph import Component, Graph, Step
from .kinds import KINDS
from .latency import LatencyModel
from .load import DIRECT, ENDPOINTS, plan
from .network import Route, Station, solve
from .scenario import Scenario
from .theory import Centre, closed_network, mmc_response_tail

# Clients times slots of the stations with 2 to N - 1 slots: past it, the closed
# network's exact solution takes more than a second or so here.
MAX_CLOSED_WORK = 2_000_000
# How a load balancer spreads requests over its backends' replicas, where the shares are
# fixed: evenly, or by its weights. Any other strategy's shares follow the load.
_EVEN = ("round_robin", "random")


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
    """One way through a visit: a replica and its share of the visit's requests, its
    delay, its station (or a step's wait: a delay named for the step)."""

    component: str
    share: float
    latency: LatencyModel
    station: StationConfig | None

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


@dataclass(frozen=True)
class _Visit:
    """A component on a route: its replicas (the ways), and what its handler does then,
    in order, whichever replica serves (`inner`). A step's wait is a visit too (`step`)."""

    ways: tuple[_Way, ...]
    inner: tuple[_Hop, ...] = ()
    step: bool = False


@dataclass(frozen=True)
class _Hop:
    """The next visit on a route, or a choice of visits (a balancer over several
    components), each with its chance."""

    branches: tuple[tuple[float, _Visit], ...]


@dataclass(frozen=True)
class _Route:
    """An endpoint's route, and what the load checks find on it: the first reason its
    route gives no theory, the caches it reads through, whether a rate limit is on it."""

    hops: tuple[_Hop, ...]
    problem: str | None = None
    caches: tuple[str, ...] = ()
    limited: bool = False  # a token bucket on it
    windowed: str | None = None  # the first component with a count per window on it


def _predict(scenario: Scenario) -> Prediction:
    routes = _routes(scenario)
    _check_load(scenario, routes)
    if not scenario.load.open:
        return _closed(scenario, routes)
    for route in routes.values():
        if route.problem is not None:
            raise _NoTheory(route.problem)
    return _open(scenario, routes)


def _open(scenario: Scenario, routes: dict[str, _Route]) -> Prediction:
    """An open load: every endpoint's Poisson stream through one open Jackson network."""
    load = scenario.load
    total = sum(load.mix.values())
    servers, flows = _network(routes, {e: load.rate * load.mix[e] / total for e in routes})
    network = solve(list(servers.values()), [_only(f, servers) for f in flows])

    def arrivals(replica: str) -> float:
        if replica in servers:
            return network.stations[replica].lam
        # A station whose service takes no time is no station of the network.
        return sum(f.rate * f.visits.get(replica, 0.0) for f in flows)

    stations: dict[str, StationTheory] = {}
    for route in routes.values():
        for way, _, later in _ways(route.hops):
            found = _station(way, later, arrivals(way.component) if way.slots else 0.0)
            if found is not None:
                stations[way.component] = found
    if network.unstable is not None:  # rounding apart, the stations' checks said so first
        raise _NoTheory(f"unstable: {network.unstable}")
    responses = {c: network.stations[c].mean_response if c in servers else 0.0 for c in stations}
    return Prediction(
        {e: _theory(_stages(route.hops), stations, responses) for e, route in routes.items()},
        stations,
    )


def _network(
    routes: dict[str, _Route], rates: dict[str, float]
) -> tuple[dict[str, Station], list[Route]]:
    """The stations of the routes (replicas with slots), and each endpoint's visits to
    them a request: the open network's stations and routes."""
    servers: dict[str, Station] = {}
    flows: list[Route] = []
    for endpoint, route in routes.items():
        visits: dict[str, float] = {}
        for way, visited, _ in _ways(route.hops):
            station = way.station
            if station is None or not station.concurrency:
                continue
            mean = station.service.mean()
            if mean > 0 and way.component not in servers:
                servers[way.component] = Station(way.component, station.concurrency, 1 / mean)
            visits[way.component] = visits.get(way.component, 0.0) + visited
        flows.append(Route(endpoint, rates[endpoint], visits))
    return servers, flows


def _only(flow: Route, servers: dict[str, Station]) -> Route:
    """The route's visits to the network's stations."""
    visits = {c: n for c, n in flow.visits.items() if c in servers}
    return flow if len(visits) == len(flow.visits) else Route(flow.endpoint, flow.rate, visits)


# Per hop of a route, in order: the ways of one visit, or a choice between sub-routes.
@dataclass(frozen=True)
class _Branches:
    choices: tuple[tuple[float, list[_Stage]], ...]


_Stage = tuple[_Way, ...] | _Branches
_Tail = Callable[[float], float]


def _stages(hops: Sequence[_Hop]) -> list[_Stage]:
    """The route as a chain: each visit's ways, then what it calls, in order."""
    out: list[_Stage] = []
    for hop in hops:
        if len(hop.branches) == 1:
            [(_, visit)] = hop.branches
            out += [visit.ways, *_stages(visit.inner)]
        else:
            choices = tuple((c, [v.ways, *_stages(v.inner)]) for c, v in hop.branches)
            out.append(_Branches(choices))
    return out


@dataclass
class _Sum:
    """A chain's mean, the fixed time of its hops that do not vary, P(time > t) of each
    hop that does, and whether its delays are fixed (else its quantiles are unknown)."""

    mean: float = 0.0
    constant: float = 0.0
    tails: list[_Tail] = field(default_factory=list)
    fixed: bool = True


def _theory(
    stages: list[_Stage], stations: dict[str, StationTheory], responses: dict[str, float]
) -> EndpointTheory:
    """One endpoint's mean, and its quantiles where they are known."""
    total = _sum(stages, stations, responses)
    return _endpoint(total.mean, total.constant, total.tails if total.fixed else None)


def _sum(
    stages: list[_Stage], stations: dict[str, StationTheory], responses: dict[str, float]
) -> _Sum:
    total = _Sum()
    for stage in stages:
        if isinstance(stage, _Branches):
            _add_branches(total, stage, stations, responses)
            continue
        ways = stage
        total.mean += sum(w.share * (w.delay + responses.get(w.component, 0.0)) for w in ways)
        total.fixed &= all(w.delay_fixed for w in ways)
        total.fixed &= not any(
            stations[w.component].shared for w in ways if w.component in stations
        )
        delays = {w.delay for w in ways}
        if any(w.component in stations for w in ways) or len(delays) > 1:
            total.tails.append(_hop_tail(ways, stations))
        else:
            total.constant += delays.pop()
    return total


def _add_branches(
    total: _Sum,
    stage: _Branches,
    stations: dict[str, StationTheory],
    responses: dict[str, float],
) -> None:
    """A choice of sub-routes: its mean is theirs by chance; its time varies as their
    mixture, known where each varies at one hop at most."""
    parts = [(chance, _sum(sub, stations, responses)) for chance, sub in stage.choices]
    total.mean += sum(chance * part.mean for chance, part in parts)
    total.fixed &= all(part.fixed and len(part.tails) <= 1 for _, part in parts)
    constants = {part.constant for _, part in parts}
    if len(constants) == 1 and not any(part.tails for _, part in parts):
        total.constant += constants.pop()
        return

    def tail(t: float) -> float:
        above = 0.0
        for chance, part in parts:
            if t < part.constant:
                above += chance
            elif part.tails:
                above += chance * part.tails[0](t - part.constant)
        return above

    total.tails.append(tail)


def _closed(scenario: Scenario, routes: dict[str, _Route]) -> Prediction:
    """A closed load: each endpoint's share of the requests, in turn, through a closed
    network of every client; the stations' figures are over the whole run."""
    load = scenario.load
    clients, think = min(load.concurrency, load.requests), load.think.mean()
    endpoints: dict[str, EndpointTheory] = {}
    seconds = 0.0
    stations: dict[str, _Way] = {}
    through: dict[str, float] = {}  # requests through each station over the run
    for endpoint, count in plan(load.requests, load.mix):
        route = routes[endpoint]
        if route.problem is not None:
            raise _NoTheory(route.problem)
        if _calls(route.hops) and clients > POOL_SIZE:
            raise _NoTheory(
                f"{clients} clients, more than the {POOL_SIZE} connections a component keeps "
                "to each it calls: requests may wait for one, which no station models"
            )
        centres: list[Centre] = []
        at: dict[str, int] = {}  # a station's centre, where a route visits it again
        for way, visited, later in _ways(route.hops):
            for centre in _centres(way, visited, later, clients):
                if centre.servers is None:
                    centres.append(centre)
                elif way.component in at:
                    i = at[way.component]
                    centres[i] = Centre(centres[i].demand + centre.demand, centre.servers)
                else:
                    at[way.component] = len(centres)
                    centres.append(centre)
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
        for way, visited, _ in _ways(route.hops):
            if way.station is not None and way.slots:
                stations[way.component] = way
                through[way.component] = through.get(way.component, 0.0) + count * visited
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


def _centres(way: _Way, visited: float, later: Sequence[_Hop], clients: int) -> list[Centre]:
    """The way's delay, and its station where it has slots, each as much as one request
    needs of it on average (the way's visits times its time)."""
    centres = [Centre(visited * way.delay)]
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
    return [*centres, Centre(visited * station.service.mean(), station.concurrency)]


def _check_work(centres: list[Centre], clients: int) -> None:
    work = sum(clients * c.servers for c in centres if c.servers and 1 < c.servers < clients)
    if work > MAX_CLOSED_WORK:
        raise _NoTheory(
            f"{clients} clients at stations of many slots: more than the exact solution "
            f"solves quickly here (clients times slots above {MAX_CLOSED_WORK:,})"
        )


def _check_load(scenario: Scenario, routes: dict[str, _Route]) -> None:
    load = scenario.load
    if load.open and load.stages:
        raise _NoTheory("the rate changes over stages; theory needs one load.rate")
    if load.open and load.arrivals != "poisson":
        raise _NoTheory(f'arrivals are {load.arrivals}; theory needs "poisson"')
    if scenario.faults:
        raise _NoTheory("faults change the components during the run")
    if any(route.limited for route in routes.values()):
        raise _NoTheory("a rate limit refuses requests")
    windowed = next((route.windowed for route in routes.values() if route.windowed), None)
    if windowed:  # a count per window refuses on any route it is on
        raise _NoTheory(f"a rate limit ({windowed}) refuses requests")
    for endpoint, route in routes.items():
        if route.caches:
            cache = route.caches[0]
            which = "the cache" if cache == "cache" else f"the cache {cache}"
            raise _NoTheory(
                f"{endpoint} goes through {which}, whose hits and misses take different paths"
            )


def _routes(scenario: Scenario) -> dict[str, _Route]:
    """The route of every endpoint of the mix that the load sends."""
    graph = scenario.topology.graph()
    return {
        e: _Router(graph, scenario.topology).route(e) for e, w in scenario.load.mix.items() if w
    }


class _Router:
    """Finds one endpoint's route through the graph, noting on the way the first reason
    it has no theory, the caches read through and any rate limit."""

    def __init__(self, graph: Graph, topology: Topology) -> None:
        self.graph, self.topology = graph, topology
        self.problem: str | None = None
        self.caches: list[str] = []
        self.limited = False
        self.windowed: str | None = None

    def route(self, endpoint: str) -> _Route:
        method, path = ENDPOINTS[endpoint][:2]
        kind = DIRECT.get(endpoint)  # sent straight to the first component of that kind
        named = self.graph.of_kind(kind) if kind else []
        replica = named[0] if named else kind
        hops: tuple[_Hop, ...] = ()
        if replica is None:
            hops = (self.call(self.graph.entry(), method, path, ()),)
        elif any(r.id == replica for r in self.graph.all_replicas()):
            component = self.graph.component_of(replica)  # sent to it, past the balancer
            ways = (self.way(component, replica, 1.0),)
            hops = (_Hop(((1.0, self.visit(component, ways, method, path, ())),)),)
        else:
            self.note(f"{endpoint} is sent to {replica} directly, and there is no {replica}")
        return _Route(hops, self.problem, tuple(self.caches), self.limited, self.windowed)

    def note(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem

    def way(self, component: Component, replica: str, share: float) -> _Way:
        settings = replica_settings(component, replica)
        limit = getattr(settings, "rate_limit", None)
        self.limited |= bool(limit is not None and limit.rate)
        if limit is not None and limit.requests and self.windowed is None:
            self.windowed = component.name
        station = settings if isinstance(settings, StationConfig) else None
        return _Way(replica, share, settings.latency, station)

    def call(self, name: str, method: str, path: str, calling: tuple[str, ...]) -> _Hop:
        """A call straight to `name`: to its replicas in turn, each an equal share."""
        component = self.graph.components[name]
        replicas = self.graph.replicas(name)
        ways = tuple(self.way(component, r.id, 1 / len(replicas)) for r in replicas)
        if len(ways) > 1 and any(w.slots for w in ways):
            self.note(
                f"calls to {name} go to its replicas in turn, not at random, so their "
                "arrivals are not Poisson"
            )
        return _Hop(((1.0, self.visit(component, ways, method, path, calling)),))

    def visit(
        self,
        component: Component,
        ways: tuple[_Way, ...],
        method: str,
        path: str,
        calling: tuple[str, ...],
    ) -> _Visit:
        """`method path` at `component`: its ways, then what it does for the request."""
        name = component.name
        if name in calling:
            self.note(f"calls go round in a circle: {' -> '.join([*calling, name])}")
            return _Visit(ways)
        calling = (*calling, name)
        if component.kind == "load_balancer":
            spread = self.spread(component, method, path, calling)
            return _Visit(ways, () if spread is None else (spread,))
        endpoint = component.endpoint(method, path)
        if endpoint is None:
            if not KINDS[component.kind].serves_route(method, path):
                self.note(f"{name} does not serve {method} {path}")
            return _Visit(ways)
        inner: list[_Hop] = []
        if component.auth and self.topology.auth.required:  # a gateway's token check
            inner.append(self.call(component.auth, "POST", "/validate_token", calling))
        for step in endpoint.steps:
            inner += self.step(component, step, calling)
        return _Visit(ways, tuple(inner))

    def step(self, component: Component, step: Step, calling: tuple[str, ...]) -> list[_Hop]:
        if step.kind in ("cpu", "io"):  # a wait in the handler: a delay, holding nothing
            label = f"{component.name}'s {step.kind} step"
            wait = _Visit((_Way(label, 1.0, step.time, None),), step=True)
            return [_Hop(((1.0, wait),))]
        if step.kind == "call":
            return [self.call(step.target, step.method, step.path, calling)]
        if step.kind == "enqueue":
            return [self.call(step.target, "POST", "/task", calling)]
        source = step.source  # read_through: without a cache, every read is a miss
        assert source is not None
        if step.target and getattr(component.settings, "use_cache", True):
            self.caches.append(step.target)
            return [self.call(step.target, "GET", f"/cache/{step.key}", calling)]
        return [self.call(source.target, source.method, source.path, calling)]

    def spread(
        self, balancer: Component, method: str, path: str, calling: tuple[str, ...]
    ) -> _Hop | None:
        """The balancer's backends' replicas, each with its share of its requests: even
        where the strategy's shares make no difference (its replicas alike)."""
        settings = balancer.settings
        names = list(dict.fromkeys(balancer.backends))
        replicas = [(b, r.id) for b in names for r in self.graph.replicas(b)]
        if not replicas:
            self.note(f"{balancer.name} has no backends")
            return None
        even = 1 / len(replicas)
        ways = [self.way(self.graph.components[b], r, even) for b, r in replicas]
        strategy, named = settings.strategy, settings.strategy.replace("_", " ")
        alike = len(names) == 1 and all(_alike(w, ways[0]) for w in ways)
        if len(ways) > 1 and any(w.slots for w in ways) and strategy != "random":
            self.note(
                f"the {named} balancer does not split arrivals at random, so "
                f"{_whose(self.graph, names)} arrivals are not Poisson"
            )
        elif strategy == "weighted" and not alike:
            weights = settings.weights or (1,) * len(ways)
            ways = [
                _share(w, weight / sum(weights)) for w, weight in zip(ways, weights, strict=True)
            ]
        elif strategy not in _EVEN and not alike:
            self.note(
                f"the {named} balancer's shares follow the load, and the replicas it "
                "chooses between differ"
            )
        branches = []
        for name in names:
            own = [w for (b, _), w in zip(replicas, ways, strict=True) if b == name]
            chance = 1.0 if len(names) == 1 else sum(w.share for w in own)
            within = tuple(_share(w, w.share / chance) for w in own)
            component = self.graph.components[name]
            branches.append((chance, self.visit(component, within, method, path, calling)))
        return _Hop(tuple(branches))


def _share(way: _Way, share: float) -> _Way:
    return _Way(way.component, share, way.latency, way.station)


def _whose(graph: Graph, names: list[str]) -> str:
    if all(graph.components[b].kind == "gateway" for b in names):
        return "the gateways'"
    return f"{', '.join(names)}'s"


def _alike(way: _Way, other: _Way) -> bool:
    """Whether the two take the same times: the same delay and station."""
    return way.latency == other.latency and _station_of(way) == _station_of(other)


def _station_of(way: _Way) -> tuple[object, ...]:
    s = way.station
    return () if s is None else (s.concurrency, s.queue_size, s.service, s.holds, s.discipline)


def _ways(
    hops: Sequence[_Hop], chance: float = 1.0
) -> Iterator[tuple[_Way, float, tuple[_Hop, ...]]]:
    """Every way of the route in order (a visit's, then those of what it calls): with its
    visits per request, and what its visit calls (what a slot held for the request spans)."""
    for hop in hops:
        for branch, visit in hop.branches:
            reached = chance * branch
            for way in visit.ways:
                yield way, reached * way.share, visit.inner
            yield from _ways(visit.inner, reached)


def _calls(hops: Sequence[_Hop]) -> bool:
    """Whether a component on the route calls another (its first one does, if any)."""
    return any(
        not called.step
        for hop in hops
        for _, visit in hop.branches
        for inner in visit.inner
        for _, called in inner.branches
    )


def _station(way: _Way, later: Sequence[_Hop], arrival: float) -> StationTheory | None:
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


def _check_station(way: _Way, station: StationConfig, later: Sequence[_Hop]) -> None:
    """_NoTheory unless the station is product-form: it lets go of its slot before what it
    calls takes time (or shares processors, which let go after service whatever `holds`
    says), and serves first come first served exponentially, or shares with any service."""
    shared = station.discipline == "processor_sharing"
    busy_later = next((w for w, _, _ in _ways(later) if w.takes_time), None)
    if busy_later is not None and station.holds == "request" and not shared:
        raise _NoTheory(
            f"{way.component} holds its slot while {busy_later.component} works, so its time "
            "in service is not exponential"
        )
    if station.service.model != "exponential" and not shared:  # shared: any service
        raise _NoTheory(f"{way.component}'s service is {station.service.model}, not exponential")


def _hop_tail(ways: Sequence[_Way], stations: dict[str, StationTheory]) -> _Tail:
    """P(time at this hop > t): its delay, then its station, mixed over the ways."""
    parts = [(w.share, w.delay, stations.get(w.component)) for w in ways]

    def tail(t: float) -> float:
        total = 0.0
        for share, delay, s in parts:
            left = t - delay
            if left < 0:
                total += share
            elif s is not None and s.service_s > 0:
                total += share * mmc_response_tail(s.arrival_rps, 1 / s.service_s, s.slots, left)
        return total

    return tail


def _endpoint(mean: float, constant: float, tails: list[_Tail] | None) -> EndpointTheory:
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


def _quantile(tail: _Tail, q: float) -> float:
    """The q-quantile of a falling tail function, by bisection."""
    low, high = 0.0, 1.0
    while tail(high) > 1 - q:
        high *= 2
    for _ in range(100):
        middle = (low + high) / 2
        low, high = (middle, high) if tail(middle) > 1 - q else (low, middle)
    return (low + high) / 2
