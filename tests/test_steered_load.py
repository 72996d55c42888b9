"""The steered load on the virtual clock: arrivals at a rate that changes, its bounds, its
figures, its stop. Requests go to a stand-in `send`, so each one's time is known."""

from __future__ import annotations

import math
import random

import pytest

from labsim.core.clock import VirtualClock
from labsim.run.steered_load import Intensity, SteeredLoad, quantile


def unit_poisson(seed: int, until: float) -> list[float]:
    """Λ at each arrival: the running sums of Exp(1) draws from the load's own generator."""
    rng, total, out = random.Random(f"{seed}:steered"), 0.0, []
    while True:
        total += rng.expovariate(1.0)
        if total > until:
            return out
        out.append(total)


def inverse(steps: list[tuple[float, float]], area: float) -> float:
    """The time at which ∫ rate reaches `area`, for a rate of `steps` [(from, rate), ...],
    walked step by step (the last one lasts for ever)."""
    done = 0.0
    for (start, rate), (end, _) in zip(steps, [*steps[1:], (math.inf, 0.0)], strict=True):
        inside = rate * (end - start)
        if rate and done + inside >= area:
            return start + (area - done) / rate
        done += inside
    raise AssertionError("never reached")


async def test_arrivals_follow_each_rate_from_its_change_on():
    clock = VirtualClock()
    sent: list[tuple[float, str]] = []

    async def send(endpoint: str) -> int:
        sent.append((clock.now(), endpoint))
        await clock.sleep(0.01)
        return 200

    load = SteeredLoad(clock, send, rate=10, mix={"data": 1, "/data?key=7": 3}, seed=7)

    async def scenario():
        load.start()
        await clock.sleep(5)
        load.steer(50)
        await clock.sleep(5)
        load.steer(0)  # paused: nothing arrives
        await clock.sleep(3)
        load.steer(20)
        await clock.sleep(2)
        return await load.stop(1.0)

    cut = await clock.run(scenario())
    steps = [(0.0, 10.0), (5.0, 50.0), (10.0, 0.0), (13.0, 20.0)]
    total = 10 * 5 + 50 * 5 + 20 * 2
    expected = [inverse(steps, area) for area in unit_poisson(7, total)]
    assert len(sent) == len(expected) == load.counts.arrived == load.counts.sent
    assert [t for t, _ in sent] == pytest.approx(expected, abs=1e-6)
    assert not [t for t, _ in sent if 10 < t < 13]
    assert cut == 0 and load.counts.answered == len(sent) and load.counts.failed == 0
    paths = [e for _, e in sent]
    assert 0.6 < paths.count("/data?key=7") / len(paths) < 0.9  # weight 3 of 4


async def test_a_steady_poisson_load_sends_about_rate_times_time():
    clock = VirtualClock()

    async def send(endpoint: str) -> int:
        return 200

    load = SteeredLoad(clock, send, rate=200, mix={"data": 1}, seed=3)

    async def scenario():
        load.start()
        await clock.sleep(50)
        await load.stop(0)

    await clock.run(scenario())
    mean = 200 * 50  # Poisson: variance = mean
    assert abs(load.counts.sent - mean) < 4 * math.sqrt(mean)


async def test_arrivals_beyond_the_most_in_flight_are_dropped_and_counted():
    clock = VirtualClock()
    busy = most = 0

    async def send(endpoint: str) -> int:
        nonlocal busy, most
        busy += 1
        most = max(most, busy)
        try:
            await clock.sleep(1.0)
        finally:
            busy -= 1
        return 200

    load = SteeredLoad(clock, send, rate=100, mix={"data": 1}, seed=1, max_in_flight=10)

    async def scenario():
        load.start()
        await clock.sleep(3)
        return await load.stop(5.0)

    cut = await clock.run(scenario())
    c = load.counts
    assert most == 10 and cut == 0
    assert c.dropped > 200 and c.sent + c.dropped == c.arrived
    assert c.answered == c.sent and load.figures()["in_flight"] == 0


async def test_a_stop_waits_its_grace_then_cuts_what_is_in_flight():
    clock = VirtualClock()

    async def send(endpoint: str) -> int:
        await clock.sleep(0.5 if endpoint == "data" else 60)
        return 503

    load = SteeredLoad(clock, send, rate=20, mix={"data": 1, "process": 1}, seed=2)

    async def scenario():
        load.start()
        await clock.sleep(2)
        in_flight = len(load.in_flight)
        began = clock.now()
        cut = await load.stop(1.0)
        took = clock.now() - began
        arrived = load.counts.arrived
        await clock.sleep(5)  # nothing more after the stop
        return in_flight, cut, took, arrived

    in_flight, cut, took, arrived = await clock.run(scenario())
    c = load.counts
    assert took == pytest.approx(1.0)
    assert 0 < cut < in_flight  # the slow ones were cut, the quick ones answered
    assert c.cut == cut and c.sent == c.answered + cut and c.failed == c.answered  # all 503
    assert c.arrived == arrived and not load.running and load.figures()["in_flight"] == 0
    assert await load.stop(1.0) == 0  # a second stop does nothing


async def test_p50_and_p99_are_of_the_last_window_of_answers():
    clock = VirtualClock()
    slow = True
    rng = random.Random(5)
    answered: list[tuple[float, float]] = []

    async def send(endpoint: str) -> int:
        took = rng.uniform(0.1, 0.3) if slow else rng.uniform(0.001, 0.01)
        await clock.sleep(took)
        answered.append((clock.now(), took))
        return 200

    load = SteeredLoad(clock, send, rate=50, mix={"data": 1}, seed=4, window=2.0)

    async def scenario():
        nonlocal slow
        load.start()
        await clock.sleep(4)
        during = load.figures()
        slow = False
        await clock.sleep(4)
        after = load.figures()
        await load.stop(1.0)
        return during, after

    during, after = await clock.run(scenario())

    def by_count(values: list[float], q: float) -> float:
        # The smallest value with at least q of them at or below it, counted.
        return min(v for v in values if sum(w <= v for w in values) >= q * len(values))

    for figures, at in ((during, 4.0), (after, 8.0)):
        last = [took for t, took in answered if at - 2.0 <= t <= at]
        assert figures["answered_rate"] == pytest.approx(len(last) / 2.0, abs=1e-3)
        assert figures["p50_ms"] == pytest.approx(by_count(last, 0.5) * 1000, abs=1e-3)
        assert figures["p99_ms"] == pytest.approx(by_count(last, 0.99) * 1000, abs=1e-3)
    assert during["p99_ms"] > 100 and after["p99_ms"] < 10


def test_the_intensity_of_a_rate_that_steps():
    lam = Intensity(rate=10.0, since=0.0)
    assert lam.when(25) == 2.5
    lam.change(5.0, 2.0)  # Λ(2) = 20
    assert lam.at(4.0) == 30.0 and lam.when(25) == 3.0
    lam.change(0.0, 4.0)
    assert math.isinf(lam.when(31)) and lam.at(100.0) == 30.0
    assert quantile([], 0.5) is None and quantile([3.0, 1.0, 2.0], 0.5) == 2.0
