"""A cache's hit ratio against theory (issue 23).

First the formulas (`model/cache_theory.py`) against second methods: an exact value
(uniform popularity), and direct simulations in plain Python of an LRU list, a FIFO
queue, random replacement and a perfect LFU. Then labsim's own cache, run through the
gateway on the virtual clock, over a sweep of cache sizes: its measured hit ratio within
2 percentage points of Che's approximation at every size.

The cold start is accounted for, not cut off: a run starts from an empty cache, so theory
gives the hit ratio expected over the run's reads from empty (`from_cold`: while the
cache fills, nothing is evicted and a read hits if its key was read before). With 1,000
Zipf keys (s = 0.8) and 8,000 reads a point, the plain simulation's spread of a run's hit
ratio (over 200 seeds) is at most 0.65 points: 2 points is 3 standard deviations.
"""

from __future__ import annotations

import dataclasses
import math
import random
import statistics
from collections import Counter, OrderedDict
from pathlib import Path

import pytest

from labsim import api
from labsim.model import cache_theory as ct
from labsim.model.cache_prediction import predict_hit_ratio
from labsim.model.flows import Flow, Step
from labsim.model.keys import Keys, drawer, probabilities
from labsim.run.axes import Axis
from labsim.run.sweep import run_sweep
from labsim.views.report.sweep import render_csv, render_html, render_text

ROOT = Path(__file__).parents[1]
ZIPF = Keys(count=1000, popularity="zipf", s=0.8)
P = probabilities(ZIPF)


def simulate(policy: str, capacity: int, reads: int, seed: int, warm: int = 0) -> float:
    """A cache of `capacity` keys in plain Python: the hit ratio of `reads` reads after
    `warm` reads not counted."""
    rng = random.Random(seed)
    draw = drawer(ZIPF, rng)
    cache: OrderedDict[str, None] = OrderedDict()
    counts: Counter[str] = Counter()
    hits = 0
    for turn in range(warm + reads):
        key = draw()
        counts[key] += 1
        if key in cache:
            hits += turn >= warm
            if policy == "lru":
                cache.move_to_end(key)
            continue
        if len(cache) >= capacity:
            if policy == "random":
                del cache[rng.choice(list(cache))]
            elif policy == "lfu":  # perfect LFU: every read counts, evicted or not
                del cache[min(cache, key=lambda k: counts[k])]
            else:  # lru, fifo: the front of the list
                cache.popitem(last=False)
        cache[key] = None
    return hits / reads


def test_uniform_popularity_gives_the_exact_share_for_every_policy():
    uniform = probabilities(Keys(count=200, popularity="uniform"))
    for capacity in (1, 20, 199):
        for policy in ("lru", "fifo", "random", "lfu"):
            assert ct.hit_ratio(policy, uniform, capacity) == pytest.approx(capacity / 200)


def test_the_characteristic_time_solves_its_equation():
    t = ct.characteristic_time(P, 100)
    assert sum(1 - math.exp(-p * t) for p in P) == pytest.approx(100, rel=1e-9)
    with pytest.raises(ValueError, match="capacity must be from 1 to 999"):
        ct.characteristic_time(P, 1000)


@pytest.mark.parametrize("capacity", [10, 50, 200])
def test_che_agrees_with_a_simulated_lru_list(capacity):
    measured = simulate("lru", capacity, 100_000, seed=capacity, warm=20_000)
    assert abs(measured - ct.lru_hit_ratio(P, capacity)) < 0.005


@pytest.mark.parametrize(("policy", "capacity"), [("fifo", 50), ("random", 50), ("fifo", 200)])
def test_fifo_and_random_agree_with_their_simulations(policy, capacity):
    measured = simulate(policy, capacity, 60_000, seed=capacity, warm=20_000)
    assert abs(measured - ct.fifo_hit_ratio(P, capacity)) < 0.01


def test_a_perfect_lfu_keeps_the_most_popular_keys():
    measured = simulate("lfu", 10, 60_000, seed=3, warm=40_000)
    # It keeps the top 9 and churns one slot: between their share and the top 10's.
    assert ct.lfu_hit_ratio(P, 9) - 0.01 < measured < ct.lfu_hit_ratio(P, 10) + 0.005


def test_from_cold_is_the_mean_over_runs_from_an_empty_cache():
    for capacity in (30, 300):
        runs = [simulate("lru", capacity, 6000, seed) for seed in range(40)]
        assert statistics.mean(runs) == pytest.approx(
            ct.from_cold("lru", P, capacity, 6000), abs=0.003
        )
    # Too few reads to fill it: a read hits when its key was read before.
    assert ct.from_cold("lru", P, 900, 50) == pytest.approx(
        (50 - ct.distinct(P, 50)) / 50, abs=1e-12
    )


def _sweep(sizes: str, policies: str, reads: int):
    axes = [
        Axis("components.cache.maxsize", tuple(int(s) for s in sizes.split(","))),
        Axis("components.cache.eviction", tuple(policies.split(","))),
        Axis("load.requests", (reads,)),
    ]
    return run_sweep(str(ROOT / "scenarios/cache-size.toml"), axes, variant="lru")


def test_labsim_lru_agrees_with_che_within_2_points_at_every_cache_size():
    sweep = _sweep("10,30,100,300", "lru", 8000)
    assert len(sweep.points) == 4
    for point in sweep.points:
        capacity = point.settings["components.cache.maxsize"]
        assert point.theory_hit_ratio == pytest.approx(
            ct.from_cold("lru", P, capacity, 8000), abs=1e-4
        )
        assert point.hit_ratio is not None
        assert abs(point.hit_ratio - point.theory_hit_ratio) < 0.02, point.settings
        # Every miss fills its key; once the cache is full, each fill evicts one.
        assert point.evictions == pytest.approx(8000 * (1 - point.hit_ratio) - capacity, abs=1)


def test_labsim_fifo_and_random_agree_with_theory_within_2_points():
    sweep = _sweep("100", "fifo,random", 6000)
    for point in sweep.points:
        assert point.theory_hit_ratio == pytest.approx(ct.from_cold("fifo", P, 100, 6000), abs=1e-4)
        assert point.hit_ratio is not None
        assert abs(point.hit_ratio - point.theory_hit_ratio) < 0.02, point.settings


def test_the_sweep_shows_hit_ratios_where_keys_are_read_and_nowhere_else():
    sweep = _sweep("20,40", "lru,lfu", 300)
    text = render_text(sweep, 1.0)
    assert "hit ratio deviation" in text and "no hit ratio theory at" in text
    assert "the top 20 keys' share" in text
    page = render_html(sweep, 1.0)
    assert "Hit ratio against cache size" in page and "lru theory" in page
    assert "Latency against throughput" not in page
    assert "theory_hit_ratio" in render_csv(sweep).splitlines()[0]
    lru = sweep.as_dict()["points"][0]
    assert lru["theory_hit_ratio"] == pytest.approx(ct.from_cold("lru", P, 20, 300), abs=1e-4)
    plain = run_sweep(
        str(ROOT / "scenarios/mm1.toml"), [Axis("load.rate", (2,)), Axis("load.requests", (20,))]
    )
    assert "hit_ratio" not in plain.as_dict()["points"][0]
    assert "hit ratio" not in render_text(plain, 1.0)
    assert "Latency against throughput" in render_html(plain, 1.0)


def test_labsim_lru_is_exactly_an_lru_list_on_the_same_keys():
    """The same seeded keys through a plain LRU list: the same hits, read for read."""
    scenario = api.load_scenario(ROOT / "scenarios/cache-size.toml", "lru")
    result = api.bench(scenario, requests=3000)
    draw = drawer(ZIPF, random.Random(f"{scenario.topology.seed}:keys"))
    cache: OrderedDict[str, None] = OrderedDict()
    hits = 0
    for _ in range(3000):
        key = draw()
        if key in cache:
            hits += 1
            cache.move_to_end(key)
            continue
        if len(cache) >= 100:
            cache.popitem(last=False)
        cache[key] = None
    assert result.cache is not None
    assert (result.cache.hits, result.cache.misses) == (hits, 3000 - hits)
    assert result.cache.evictions == 3000 - hits - 100
    assert result.db_calls == 3000 - hits


def test_lfu_has_a_bound_not_a_theory_and_stays_below_it():
    scenario = api.load_scenario(ROOT / "scenarios/cache-size.toml", "lfu")
    theory = predict_hit_ratio(scenario)
    assert theory.hit_ratio is None and theory.reason is not None
    assert f"{ct.lfu_hit_ratio(P, 100):.3f}, bounds it" in theory.reason
    result = api.bench(scenario, requests=3000)
    assert result.cache is not None and result.cache.hit_ratio is not None
    assert ct.lru_hit_ratio(P, 100) < result.cache.hit_ratio < ct.lfu_hit_ratio(P, 100)


def test_no_theory_where_its_model_does_not_hold():
    scenario = api.load_scenario(ROOT / "scenarios/cache-size.toml", "lru")
    many = api.load_scenario(ROOT / "scenarios/lab.toml")
    assert "reads one key" in (predict_hit_ratio(many).reason or "")

    busy = dataclasses.replace(scenario, load=dataclasses.replace(scenario.load, concurrency=2))
    assert "closed load of 1 client" in (predict_hit_ratio(busy).reason or "")
    flow = Flow("reader", (Step("GET /data"),))
    users = dataclasses.replace(scenario, load=dataclasses.replace(scenario.load, flows=(flow,)))
    assert "not a load of flows" in (predict_hit_ratio(users).reason or "")
    assert "may expire" in (predict_hit_ratio(scenario, simulated_s=90_000).reason or "")
    assert predict_hit_ratio(scenario, simulated_s=80).hit_ratio is not None
