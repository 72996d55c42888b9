"""Queueing theory for one station: what M/M/1 and M/M/c predict, to check labsim against.

Arrivals at rate `lam` (Poisson), service times exponential with rate `mu` (mean 1/mu),
`c` servers, first come first served, no queue limit. Formulas as in any queueing text
(Kleinrock, vol. 1; Harchol-Balter, ch. 14): Erlang C for the chance of waiting, then
the mean wait Wq = C / (c mu - lam) and the mean response W = Wq + 1/mu. For M/M/1 the
response time is exponential with rate mu - lam, so its quantiles are known too.
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
