"""The queueing formulas labsim is checked against, checked themselves by a second method."""

from __future__ import annotations

import math

import pytest

from labsim.theory import erlang_c, mm1_response_quantile, mmc_mean_response


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
