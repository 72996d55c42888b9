"""The queueing formulas labsim is checked against, checked themselves by a second method."""

from __future__ import annotations

import math

import pytest

from labsim.theory import (
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
