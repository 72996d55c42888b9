"""The queueing formulas labsim is checked against, checked themselves by a second method."""

from __future__ import annotations

import itertools
import math

import pytest

from labsim.model.theory import (
    Centre,
    closed_network,
    erlang_c,
    mm1_response_quantile,
    mmc_mean_response,
    mmc_response_quantile,
    mmc_response_tail,
)


def _erlang_b(c: int, offered: float) -> float:
    """Erlang B by its recursion, a different route to the same numbers."""
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    return b


@pytest.mark.parametrize(("c", "offered"), [(1, 0.5), (2, 1.0), (3, 2.4), (10, 8.0), (50, 45.0)])
def test_erlang_c_agrees_with_erlang_b(c, offered):
    b = _erlang_b(c, offered)
    rho = offered / c
    assert erlang_c(c, offered) == pytest.approx(b / (1 - rho * (1 - b)))


def test_one_server_is_m_m_1():
    for lam, mu in ((5, 10), (8, 10), (99, 100)):
        assert mmc_mean_response(lam, mu) == pytest.approx(1 / (mu - lam))
        assert erlang_c(1, lam / mu) == pytest.approx(lam / mu)  # waits with chance rho
    assert mm1_response_quantile(5, 10, 0.5) == pytest.approx(math.log(2) / 5)
    assert mm1_response_quantile(8, 10, 0.99) == pytest.approx(math.log(100) / 2)


def test_an_unstable_station_is_refused():
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(3, 3.0)
    with pytest.raises(ValueError, match="unstable"):
        mm1_response_quantile(10, 10, 0.5)


def _simulated_mmc_responses(lam: float, mu: float, c: int, n: int) -> list[float]:
    """Response times of n customers of an M/M/c FIFO queue, simulated directly: each
    takes the server that frees up first (a second method, sharing no code with theory)."""
    import heapq
    import random

    rng = random.Random(7)
    free = [0.0] * c  # when each server is next free
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(lam)
        start = max(t, heapq.heappop(free))
        end = start + rng.expovariate(mu)
        heapq.heappush(free, end)
        out.append(end - t)
    return out


@pytest.mark.parametrize(("lam", "mu", "c"), [(5, 10, 1), (24, 10, 3), (7, 4, 2)])
def test_m_m_c_quantiles_agree_with_a_simulation(lam, mu, c):
    responses = sorted(_simulated_mmc_responses(lam, mu, c, 400_000))
    for q in (0.5, 0.9, 0.99):
        simulated = responses[int(q * len(responses))]
        assert mmc_response_quantile(lam, mu, c, q) == pytest.approx(simulated, rel=0.04)
    mean = sum(responses) / len(responses)
    assert mmc_mean_response(lam, mu, c) == pytest.approx(mean, rel=0.03)


def test_the_m_m_c_tail_is_a_tail():
    assert mmc_response_tail(24, 10, 3, 0.0) == pytest.approx(1.0)
    values = [mmc_response_tail(24, 10, 3, t / 10) for t in range(30)]
    assert values == sorted(values, reverse=True) and values[-1] < 1e-3
    # Where the wait's rate equals the service's (c mu - lam = mu), the Erlang-2 branch.
    assert mmc_response_tail(10, 10, 2, 0.3) == pytest.approx(
        mmc_response_tail(10, 10 + 1e-7, 2, 0.3), rel=1e-5
    )
    with pytest.raises(ValueError, match="quantile"):
        mmc_response_quantile(5, 10, 1, 1.0)


# A closed network, by two other methods: its Markov chain solved directly (small N), and
# the birth-death chain of one station with think time (any N), solved in logarithms.


def _markov_throughput(means, servers, routing, clients):
    """Throughput out of centre 0 of a closed network of exponential centres, from the
    stationary distribution of its continuous-time Markov chain: every placement of the
    clients is a state, solved by Gaussian elimination. `servers[k]` None: a delay."""
    centres = range(len(means))
    states = [s for s in itertools.product(range(clients + 1), repeat=len(means))]
    states = [s for s in states if sum(s) == clients]
    index = {s: i for i, s in enumerate(states)}

    def rate(state, k):
        busy = state[k] if servers[k] is None else min(state[k], servers[k])
        return busy / means[k]

    n = len(states)
    # Balance: sum_i pi_i q_ij = 0 for each j, one equation replaced by sum pi = 1.
    a = [[0.0] * n for _ in range(n)]
    for s in states:
        for k in centres:
            for to, chance in routing[k].items():
                if s[k]:
                    t = list(s)
                    t[k], t[to] = t[k] - 1, t[to] + 1
                    flow = rate(s, k) * chance
                    a[index[tuple(t)]][index[s]] += flow
                    a[index[s]][index[s]] -= flow
    a[-1], b = [1.0] * n, [0.0] * (n - 1) + [1.0]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        a[col], a[pivot], b[col], b[pivot] = a[pivot], a[col], b[pivot], b[col]
        for r in range(n):
            if r != col and a[r][col]:
                f = a[r][col] / a[col][col]
                a[r] = [x - f * y for x, y in zip(a[r], a[col], strict=True)]
                b[r] -= f * b[col]
    pi = [b[r] / a[r][r] for r in range(n)]
    return sum(p * rate(s, 0) for p, s in zip(pi, states, strict=True))


@pytest.mark.parametrize("clients", [1, 2, 3, 5])
def test_a_closed_network_agrees_with_its_markov_chain(clients):
    # Think 1 s; a 10 ms delay; two stations of 2 servers (50 ms) chosen at random; then
    # one server (80 ms), back to thinking.
    means, servers = [1.0, 0.01, 0.05, 0.05, 0.08], [None, None, 2, 2, 1]
    routing = [{1: 1.0}, {2: 0.5, 3: 0.5}, {4: 1.0}, {4: 1.0}, {0: 1.0}]
    expected = _markov_throughput(means, servers, routing, clients)
    centres = [Centre(0.01), Centre(0.025, 2), Centre(0.025, 2), Centre(0.08, 1)]
    throughput, response = closed_network(centres, clients, think=1.0)
    assert throughput == pytest.approx(expected, rel=1e-9)
    assert response == pytest.approx(clients / expected - 1.0, rel=1e-9)  # Little's law


def test_one_server_with_think_time_is_the_machine_repairman():
    """N clients, think Z, one exponential server S: P(idle) = 1 / sum_n N!/(N-n)! (S/Z)^n
    and X = (1 - P(idle)) / S (Kleinrock vol. 1, 3.8; Harchol-Balter, ch. 7)."""
    for clients, think, service in ((1, 0.5, 0.1), (3, 0.5, 0.1), (10, 2.0, 0.3), (40, 1.0, 0.05)):
        terms = (math.perm(clients, n) * (service / think) ** n for n in range(clients + 1))
        idle = 1 / sum(terms)
        throughput, response = closed_network([Centre(service, 1)], clients, think)
        assert throughput == pytest.approx((1 - idle) / service, rel=1e-12)
        assert response == pytest.approx(clients * service / (1 - idle) - think, rel=1e-9)


def _birth_death_throughput(clients, think, service, servers):
    """N clients, think Z, one station of c exponential servers: a birth-death chain of
    the number at the station, its probabilities summed in logarithms."""
    logs = [0.0]
    for j in range(1, clients + 1):
        up, down = (clients - j + 1) / think, min(j, servers) / service
        logs.append(logs[-1] + math.log(up) - math.log(down))
    top = max(logs)
    weights = [math.exp(x - top) for x in logs]
    return sum(w * min(j, servers) / service for j, w in enumerate(weights)) / sum(weights)


@pytest.mark.parametrize(
    ("clients", "think", "service", "servers"),
    [(60, 1.0, 0.05, 40), (400, 1.0, 0.05, 40), (2000, 1.0, 0.05, 40), (1000, 10.0, 0.2, 30)],
)
def test_many_clients_at_many_servers_stay_exact(clients, think, service, servers):
    # Mean value analysis in floating point was 42 % off at 400 clients and 40 servers.
    expected = _birth_death_throughput(clients, think, service, servers)
    throughput, _ = closed_network([Centre(service, servers)], clients, think)
    assert throughput == pytest.approx(expected, rel=1e-9)


def test_a_closed_network_where_nothing_takes_time_has_no_throughput():
    with pytest.raises(ValueError, match="nothing takes time"):
        closed_network([Centre(0.0, 1), Centre(0.0)], 3)
    assert closed_network([Centre(0.0, 1)], 3, think=0.5) == pytest.approx((6.0, 0.0))
