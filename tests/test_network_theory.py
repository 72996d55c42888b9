"""Open Jackson networks (labsim.model.network), checked by two other methods: the product-form
distribution summed over a truncated state space, and a discrete-event simulation."""

from __future__ import annotations

import heapq
import math
import random
import statistics

import pytest

from labsim.model.network import Route, Station, solve, visits_from_routing

# The three-tier lab: a load balancer, three gateways (one station of 3 servers), a cache
# and a database of 2 servers behind a 2 ms link. Reads miss the cache with chance 0.2 and
# then fill it (cache 1 + m times, database m times); writes go to the database.
MISS = 0.2
TIERS = [
    Station("lb", 1, 200.0),
    Station("gw", 3, 60.0),
    Station("cache", 1, 300.0),
    Station("db", 2, 50.0, delay=0.002),
]
READ = Route("read", 100.0, {"lb": 1, "gw": 1, "cache": 1 + MISS, "db": MISS})
WRITE = Route("write", 30.0, {"lb": 1, "gw": 1, "db": 1})


def _mmc_marginal(lam: float, mu: float, c: int) -> list[float]:
    """P(n at the station), n = 0, 1, ..., of M/M/c: a^n / n! below c, a^n / (c! c^(n-c))
    from c on, p0 from the normalizing sum (summed until its terms vanish)."""
    a = lam / mu
    terms, n = [1.0], 0
    while n < c or terms[-1] > 1e-22 * sum(terms):
        n += 1
        terms.append(terms[-1] * a / min(n, c))
    p0 = 1 / math.fsum(terms)
    return [p0 * t for t in terms]


def _poisson(mean: float) -> list[float]:
    """P(n in an infinite-server delay): Poisson, e^-m m^n / n!."""
    terms = [math.exp(-mean)]
    while len(terms) <= mean or terms[-1] > 1e-22:
        terms.append(terms[-1] * mean / len(terms))
    return terms


def _joint_means(marginals: list[list[float]], floor: float) -> tuple[list[float], float]:
    """E[n_i] under the joint distribution pi(n_1..n_k) = prod_i p_i(n_i), summed over the
    states whose probability is at least `floor`, and the mass of those states."""
    k = len(marginals)
    # The longest marginal innermost, where its states are summed in one tight loop.
    order = sorted(range(k), key=lambda i: len(marginals[i]))
    ps = [marginals[i] for i in order]
    modes = [max(range(len(p)), key=p.__getitem__) for p in ps]
    sums, mass, state = [0.0] * k, [0.0], [0] * k

    def states(i: int, weight: float):
        """(n, weight times p_i(n)) while at least `floor`; past the mode p_i only falls."""
        for n, p in enumerate(ps[i]):
            w = weight * p
            if w >= floor:
                yield n, w
            elif n > modes[i]:
                return

    def walk(i: int, weight: float) -> None:
        if i == k - 1:
            here = there = 0.0
            for n, w in states(i, weight):
                here += w
                there += n * w
            mass[0] += here
            sums[i] += there
            for j in range(i):
                sums[j] += state[j] * here
            return
        for n, w in states(i, weight):
            state[i] = n
            walk(i + 1, w)

    walk(0, 1.0)
    means = [0.0] * k
    for position, i in enumerate(order):
        means[i] = sums[position] / mass[0]
    return means, mass[0]


def test_three_tiers_agree_with_the_product_form():
    result = solve(TIERS, [READ, WRITE])
    assert result.unstable is None
    lam = {s.id: sum(r.rate * r.visits.get(s.id, 0) for r in (READ, WRITE)) for s in TIERS}
    assert lam == pytest.approx({"lb": 130.0, "gw": 130.0, "cache": 120.0, "db": 50.0})
    # The database's link is one more station, of infinite servers: Poisson there.
    marginals = [_mmc_marginal(lam[s.id], s.service_rate, s.servers) for s in TIERS]
    marginals.append(_poisson(lam["db"] * 0.002))
    means, mass = _joint_means(marginals, floor=1e-14)
    assert mass == pytest.approx(1.0, abs=1e-8)
    # Little's law at each station, W = L / lam; the link's W is added to the database's.
    w = {s.id: means[k] / lam[s.id] for k, s in enumerate(TIERS)}
    w["db"] += means[-1] / lam["db"]
    for s in TIERS:
        got = result.stations[s.id]
        assert got.rho == pytest.approx(lam[s.id] / (s.servers * s.service_rate), rel=1e-12)
        assert got.mean_response == pytest.approx(w[s.id], rel=1e-6)
        assert got.mean_in_system == pytest.approx(lam[s.id] * w[s.id], rel=1e-6)
    for route in (READ, WRITE):
        expected = sum(count * w[name] for name, count in route.visits.items())
        assert result.endpoints[route.endpoint] == pytest.approx(expected, rel=1e-6)
    assert result.throughput == 130.0
    assert result.mean_in_system == pytest.approx(sum(means), rel=1e-6)
    assert result.mean_response == pytest.approx(sum(means) / 130.0, rel=1e-6)


def test_three_gateways_as_three_stations_are_three_m_m_1():
    split = [Station("lb", 1, 200.0), *(Station(f"gw{k}", 1, 60.0) for k in range(3))]
    visits = {"lb": 1.0, **{f"gw{k}": 1 / 3 for k in range(3)}}
    result = solve(split, [Route("read", 130.0, visits)])
    # Each gateway gets a third of 130 a second: 1 / (mu - lam) there, weighted by 1/3.
    expected = 1 / (200 - 130) + 3 * (1 / 3) / (60 - 130 / 3)
    assert result.endpoints["read"] == pytest.approx(expected, rel=1e-12)
    # One pooled station of 3 servers waits less than three separate queues.
    pooled = solve([split[0], Station("gw", 3, 60.0)], [Route("read", 130.0, {"lb": 1, "gw": 1})])
    assert pooled.endpoints["read"] < result.endpoints["read"]


# The same stations, routed by probabilities after each service (a Markov routing matrix
# per endpoint), for the simulation: reads miss the cache with chance 0.2 and then read the
# database; writes go to the database, which retries a write with chance 0.1 (feedback).
READ_ROUTING = {"lb": {"gw": 1.0}, "gw": {"cache": 1.0}, "cache": {"db": MISS}}
WRITE_ROUTING = {"lb": {"gw": 1.0}, "gw": {"db": 1.0}, "db": {"db": 0.1}}
FLOWS = [("read", 100.0, "lb", READ_ROUTING), ("write", 30.0, "lb", WRITE_ROUTING)]


def _simulate(stations, flows, requests, seed):
    """Each endpoint's response times, in order of arrival: Poisson arrivals, exponential
    service, first come first served at c servers, routed at random after each service.
    Events are visits, taken in time order, so each station sees its arrivals in order and
    a visit starts when it arrives or when the first of the c servers frees up."""
    rng = random.Random(seed)
    expo, uniform = rng.expovariate, rng.random
    free = {s.id: [0.0] * s.servers for s in stations}  # heaps: when each server frees
    mu = {s.id: s.service_rate for s in stations}
    delay = {s.id: s.delay for s in stations}
    total = sum(rate for _, rate, _, _ in flows)
    entries = [entry for _, _, entry, _ in flows]
    routing = [{i: list(row.items()) for i, row in r.items()} for _, _, _, r in flows]
    cumulative = [sum(rate for _, rate, _, _ in flows[: k + 1]) / total for k in range(len(flows))]
    out: list[list[tuple[int, float]]] = [[] for _ in flows]
    events = []  # (time, request number, flow, station, time it entered the network)

    def arrival(t, number):
        u = uniform()
        k = next(k for k, edge in enumerate(cumulative) if u < edge or k == len(flows) - 1)
        heapq.heappush(events, (t, number, k, entries[k], t))

    arrival(expo(total), 0)
    while events:
        t, number, k, station, born = heapq.heappop(events)
        if t == born and station == entries[k] and number + 1 < requests:
            arrival(t + expo(total), number + 1)  # the next one from outside
        servers = free[station]
        end = max(t, servers[0]) + expo(mu[station])
        heapq.heapreplace(servers, end)
        end += delay[station]
        u, after = uniform(), None
        for to, chance in routing[k].get(station, ()):
            u -= chance
            if u < 0:
                after = to
                break
        if after is None:
            out[k].append((number, end - born))
        else:
            heapq.heappush(events, (end, number, k, after, born))
    return [[r for _, r in sorted(times)] for times in out]


def _batch_means(values, batches=40):
    """Mean and its standard error from the means of consecutive batches, which are
    nearly independent where single responses (queued one behind another) are not."""
    size = len(values) // batches
    means = [statistics.fmean(values[b * size : (b + 1) * size]) for b in range(batches)]
    return statistics.fmean(means), statistics.stdev(means) / math.sqrt(batches)


def test_three_tiers_agree_with_a_simulation():
    routes = [Route(name, rate, visits_from_routing(entry, r)) for name, rate, entry, r in FLOWS]
    assert routes[0].visits == pytest.approx({"lb": 1, "gw": 1, "cache": 1, "db": MISS})
    assert routes[1].visits == pytest.approx({"lb": 1, "gw": 1, "db": 1 / 0.9})
    result = solve(TIERS, routes)
    assert result.unstable is None
    simulated = _simulate(TIERS, FLOWS, 150_000, seed=20240611)
    for (name, *_), times in zip(FLOWS, simulated, strict=True):
        warm = times[len(times) // 20 :]  # the first 5 % start from an empty network
        mean, error = _batch_means(warm)
        assert error < 0.02 * mean  # precise enough to tell a wrong formula
        assert result.endpoints[name] == pytest.approx(mean, abs=4 * error)


def test_visits_with_feedback_are_solved_by_hand():
    # 30 % of the output goes back: v = 1 + 0.3 v, so v = 1 / 0.7.
    assert visits_from_routing("a", {"a": {"a": 0.3}}) == pytest.approx({"a": 1 / 0.7})
    # a -> b half the time, b -> a a fifth of the time, b -> c the rest:
    # v_a = 1 + 0.2 v_b, v_b = 0.5 v_a, v_c = 0.8 v_b: v_a = 1 / 0.9.
    visits = visits_from_routing("a", {"a": {"b": 0.5}, "b": {"a": 0.2, "c": 0.8}})
    assert visits == pytest.approx({"a": 1 / 0.9, "b": 0.5 / 0.9, "c": 0.4 / 0.9})
    # A station nobody reaches from the entry is visited 0 times, even inside a loop.
    assert visits_from_routing("a", {"x": {"x": 1.0}, "a": {}}) == {"a": 1.0, "x": 0.0}


def test_a_network_that_never_drains_is_refused():
    with pytest.raises(ValueError, match=r"not open: requests reaching 'a', 'b'"):
        visits_from_routing("a", {"a": {"b": 1.0}, "b": {"a": 1.0}})
    # A way out at 'a' does not help requests caught in b <-> c.
    with pytest.raises(ValueError, match=r"not open: requests reaching 'b', 'c'"):
        visits_from_routing("a", {"a": {"b": 0.5}, "b": {"c": 1.0}, "c": {"b": 1.0}})
    # 0.1 + 0.2 + 0.7 is 1 less an ulp in floating point: still no way out.
    with pytest.raises(ValueError, match="not open"):
        visits_from_routing(
            "a", {"a": {"a": 0.1, "b": 0.2, "c": 0.7}, "b": {"a": 1}, "c": {"a": 1}}
        )
    with pytest.raises(ValueError, match=r"out of 'a' sums to 1\.5"):
        visits_from_routing("a", {"a": {"b": 0.7, "c": 0.8}})
    with pytest.raises(ValueError, match="'a' -> 'b'"):
        visits_from_routing("a", {"a": {"b": -0.1}})


def test_a_saturated_station_is_named():
    slow = [Station("lb", 1, 200.0), Station("db", 2, 50.0), Station("cache", 1, 10.0)]
    result = solve(slow, [Route("write", 120.0, {"lb": 1, "db": 1}), Route("ping", 5, {"lb": 1})])
    assert (
        result.unstable
        == "station 'db' saturated: utilization 1.2 (120 requests/s against 2 x 50/s)"
    )
    assert result.stations["db"].mean_response == math.inf
    assert result.endpoints["write"] == math.inf
    assert result.endpoints["ping"] == pytest.approx(1 / (200 - 125))  # finite: no db
    assert result.mean_in_system == math.inf
    # Exactly at capacity is saturated too.
    at_capacity = solve(slow[:1], [Route("x", 200.0, {"lb": 1})])
    assert at_capacity.unstable is not None and "utilization 1 " in at_capacity.unstable


def test_bad_inputs_name_the_station_or_route():
    with pytest.raises(ValueError, match=r"route 'read' visits unknown station 'dbb'"):
        solve(TIERS, [Route("read", 1.0, {"lb": 1, "dbb": 0.2})])
    with pytest.raises(ValueError, match="route 'read': rate must be >= 0"):
        Route("read", -1.0, {"lb": 1})
    with pytest.raises(ValueError, match="route 'read': visits to 'lb' must be >= 0"):
        Route("read", 1.0, {"lb": -1})
    with pytest.raises(ValueError, match="station 'gw': servers must be an integer >= 1"):
        Station("gw", 0, 60.0)
    with pytest.raises(ValueError, match="station 'gw': service_rate must be > 0"):
        Station("gw", 3, 0.0)
    with pytest.raises(ValueError, match="station 'db': delay must be >= 0"):
        Station("db", 2, 50.0, delay=-0.001)
    with pytest.raises(ValueError, match="station 'lb' is listed twice"):
        solve([*TIERS, Station("lb", 1, 1.0)], [])
    with pytest.raises(ValueError, match="route 'read' is listed twice"):
        solve(TIERS, [READ, READ])


def test_a_route_keeps_its_own_copy_of_the_visits():
    visits = {"lb": 1.0}
    route = Route("read", 10.0, visits)
    visits["lb"] = 5.0
    assert solve(TIERS[:1], [route]).endpoints["read"] == pytest.approx(1 / (200 - 10))
