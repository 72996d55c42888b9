"""Queueing theory for one station: what M/M/1 and M/M/c predict, to check labsim against.

Arrivals at rate `lam` (Poisson), service times exponential with rate `mu` (mean 1/mu),
`c` servers, first come first served, no queue limit. Formulas as in any queueing text
(Kleinrock, vol. 1; Harchol-Balter, ch. 14): Erlang C for the chance of waiting, then
the mean wait Wq = C / (c mu - lam) and the mean response W = Wq + 1/mu. The response
time's distribution is known too: with chance 1 - C no wait, else an exponential wait of
rate c mu - lam; then an exponential service (for M/M/1, simply exponential of rate
mu - lam). Its quantiles are found by bisection on that closed-form tail.
"""

from __future__ import annotations

import math


def erlang_c(c: int, offered: float) -> float:
    """The chance an arrival waits, with `c` servers and `offered` = lam / mu erlangs."""
    if not 0 <= offered < c:
        raise ValueError(f"unstable: offered load {offered:g} with {c} servers")
    term, total = 1.0, 1.0  # a^k / k!, summed for k < c
    for k in range(1, c):
        term *= offered / k
        total += term
    last = term * offered / c / (1 - offered / c)  # a^c / c! / (1 - rho)
    return last / (total + last)


def mmc_mean_response(lam: float, mu: float, c: int = 1) -> float:
    """Mean time in system (wait + service), seconds."""
    wait = erlang_c(c, lam / mu) / (c * mu - lam)
    return wait + 1 / mu


def mm1_response_quantile(lam: float, mu: float, q: float) -> float:
    """The q-quantile (0 < q < 1) of the M/M/1 response time, seconds."""
    if not 0 <= lam < mu:
        raise ValueError(f"unstable: arrival rate {lam:g} with service rate {mu:g}")
    return -math.log(1 - q) / (mu - lam)


def mmc_response_tail(lam: float, mu: float, c: int, t: float) -> float:
    """P(response time > t) at an M/M/c station: no wait (chance 1 - C), or an
    exponential wait of rate a = c mu - lam, then an exponential service of rate mu."""
    waits = erlang_c(c, lam / mu)
    a = c * mu - lam
    service = math.exp(-mu * t)
    if math.isclose(a, mu):  # wait + service is then Erlang-2 of rate mu
        both = (1 + mu * t) * service
    else:  # hypoexponential: the sum of two exponentials of different rates
        both = (a * service - mu * math.exp(-a * t)) / (a - mu)
    return (1 - waits) * service + waits * both


def mmc_response_quantile(lam: float, mu: float, c: int, q: float) -> float:
    """The q-quantile (0 < q < 1) of the M/M/c response time, seconds."""
    if not 0 < q < 1:
        raise ValueError(f"a quantile is between 0 and 1 (got {q:g})")
    low, high = 0.0, 1 / mu
    while mmc_response_tail(lam, mu, c, high) > 1 - q:
        high *= 2
    for _ in range(100):  # the tail falls monotonically: halve the bracket
        middle = (low + high) / 2
        if mmc_response_tail(lam, mu, c, middle) > 1 - q:
            low = middle
        else:
            high = middle
    return (low + high) / 2
