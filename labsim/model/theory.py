"""Queueing theory to check labsim against: one M/M/c station, and a closed network.

One station: arrivals at rate `lam` (Poisson), service times exponential with rate `mu`
(mean 1/mu), `c` servers, first come first served, no queue limit. Formulas as in any
queueing text (Kleinrock, vol. 1; Harchol-Balter, ch. 14): Erlang C for the chance of waiting, then
the mean wait Wq = C / (c mu - lam) and the mean response W = Wq + 1/mu. The response
time's distribution is known too: with chance 1 - C no wait, else an exponential wait of
rate c mu - lam; then an exponential service (for M/M/1, simply exponential of rate
mu - lam). Its quantiles are found by bisection on that closed-form tail.

A closed network: `closed_network` solves N clients cycling through delays (a think
time, pure latencies: any distribution) and stations of c servers, first come first
served with exponential service or shared processors with any service: a product-form
(BCMP) network. Its throughput is G(N-1) / G(N), G computed by Buzen's convolution, which
is as exact as Mean Value Analysis and, unlike MVA's load-dependent form for c servers,
adds only positive terms: MVA's chance of an idle server is 1 minus the rest, and its
rounding errors grow with N (400 clients at 40 servers: 219 requests a second in floating
point, against 381). In Decimal, whose exponents reach 999,999, nothing overflows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext


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


@dataclass(frozen=True)
class Centre:
    """One centre of a closed network: its demand, the mean seconds of service each
    request needs there (its visits times the mean of one), and its servers (None: a
    delay, where nobody waits). With c servers and j requests there, min(j, c) are served."""

    demand: float
    servers: int | None = None


def closed_network(
    centres: Sequence[Centre], clients: int, think: float = 0.0
) -> tuple[float, float]:
    """(Requests a second, their mean response in seconds) when `clients` clients each
    wait for an answer, then think `think` seconds (mean) before the next request."""
    if clients < 1:
        raise ValueError(f"a closed network needs a client (got {clients})")
    with localcontext(prec=34):  # wide exponents: no product of demands overflows
        g = _normalizers(centres, clients, Decimal(think))
        if not g[clients]:
            raise ValueError("nothing takes time: the throughput has no bound")
        throughput = g[clients - 1] / g[clients]
        return float(throughput), float(clients / throughput - Decimal(think))


def _normalizers(centres: Sequence[Centre], clients: int, think: Decimal) -> list[Decimal]:
    """G(0..N), the sums over every way to place n clients of the product of each
    centre's weight for its share (Buzen's convolution): throughput is G(N-1) / G(N)."""
    # Delays, and centres with a server for every client, hold nobody up: one delay.
    delay = think + sum(
        (Decimal(c.demand) for c in centres if c.servers is None or c.servers >= clients),
        Decimal(0),
    )
    g = [Decimal(1)]
    for n in range(1, clients + 1):
        g.append(g[-1] * delay / n)  # delay^n / n!
    for centre in centres:
        servers = centre.servers
        if servers is not None and servers < clients:
            g = _with(g, Decimal(centre.demand), servers)
    return g


def _with(g: list[Decimal], demand: Decimal, servers: int) -> list[Decimal]:
    """G with one more centre of `servers` servers, whose weight for j requests is
    demand^j / (min(1, c) * min(2, c) * ... * min(j, c))."""
    if servers == 1:  # weight demand^j: G'(n) = G(n) + demand G'(n - 1)
        out = list(g)
        for n in range(1, len(g)):
            out[n] += demand * out[n - 1]
        return out
    weight = [Decimal(1)]
    for j in range(1, servers + 1):
        weight.append(weight[-1] * demand / j)
    out, tail, step = [], Decimal(0), demand / servers
    for n in range(len(g)):
        head = sum(weight[j] * g[n - j] for j in range(min(n, servers - 1) + 1))
        if n >= servers:  # the terms of c or more there, each demand / c times the last
            tail = step * tail + weight[servers] * g[n - servers]
        out.append(head + tail)
    return out
