"""The strategies on plain backend state: exact for the deterministic ones, bounded otherwise."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from labsim.components.balancing import Backend, make_picker


def backends(*weights: int) -> list[Backend]:
    return [Backend(f"g{i}", w) for i, w in enumerate(weights or (1, 1, 1))]


def picks(strategy: str, pool: list[Backend], n: int, key=lambda i: "") -> list[str]:
    pick = make_picker(strategy, pool, random.Random(7))
    return [pick(pool, key(i)).id for i in range(n)]


def test_round_robin_cycles_and_skips_the_unavailable():
    pool = backends()
    pick = make_picker("round_robin", pool, random.Random(0))
    assert [pick(pool, "").id for _ in range(6)] == ["g0", "g1", "g2"] * 2
    without_g1 = [pool[0], pool[2]]
    assert [pick(without_g1, "").id for _ in range(4)] == ["g0", "g2", "g0", "g2"]


def test_smooth_weighted_round_robin_spreads_the_heavy_one():
    pool = backends(5, 1, 1)
    assert picks("weighted", pool, 7) == ["g0", "g0", "g1", "g0", "g2", "g0", "g0"]
    assert Counter(picks("weighted", backends(5, 1, 1), 700)) == {"g0": 500, "g1": 100, "g2": 100}


def test_random_is_seeded_and_roughly_even():
    counts = Counter(picks("random", backends(), 3000))
    assert counts == Counter(picks("random", backends(), 3000))  # the same seed, the same picks
    assert all(900 < n < 1100 for n in counts.values())


def test_least_connections_takes_the_least_busy():
    pool = backends()
    pool[0].in_flight, pool[1].in_flight, pool[2].in_flight = 3, 1, 2
    assert picks("least_connections", pool, 1) == ["g1"]


def test_power_of_two_never_takes_the_busiest_of_three():
    pool = backends()
    pool[0].in_flight, pool[1].in_flight, pool[2].in_flight = 0, 5, 10
    counts = Counter(picks("power_of_two", pool, 2000))
    assert "g2" not in counts  # it loses every pair it is drawn in
    assert 1200 < counts["g0"] < 1500  # wins 2 pairs of 3 (about 2/3)


def test_consistent_hash_keeps_keys_where_they_were():
    pool = backends(1, 1, 1, 1)
    keys = [f"user-{i}" for i in range(400)]
    pick = make_picker("consistent_hash", pool, random.Random(0))
    before = {k: pick(pool, k).id for k in keys}
    assert {k: pick(pool, k).id for k in keys} == before  # stable
    assert all(60 < n < 140 for n in Counter(before.values()).values())
    survivors = [b for b in pool if b.id != "g2"]
    after = {k: pick(survivors, k).id for k in keys}
    moved = [k for k in keys if after[k] != before[k]]
    assert moved and all(before[k] == "g2" for k in moved)  # only g2's keys moved


def test_unknown_strategy():
    with pytest.raises(ValueError, match="unknown strategy"):
        make_picker("fastest", backends(), random.Random(0))
