"""Keys with popularity (`model/keys.py`) and a cache's eviction policies (issue 23):
the distributions, their draws, the scenario key and `bench --keys`, each policy's victim,
the figures a report shows, and what stays as it was without them."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from labsim import api
from labsim.cli import main
from labsim.core.http import HttpClient
from labsim.model.config import ConfigError
from labsim.model.keys import Keys, drawer, key_name, parse_keys, probabilities
from labsim.model.scenario import scenarios_from
from labsim.views.report.text import render_text


def test_zipf_probabilities_fall_as_a_power_of_the_rank():
    p = probabilities(Keys(count=100, popularity="zipf", s=0.8))
    assert sum(p) == pytest.approx(1)
    assert p[0] / p[1] == pytest.approx(2**0.8)
    assert p[9] / p[99] == pytest.approx(10**0.8)


def test_a_hot_set_takes_its_share_of_the_requests():
    p = probabilities(Keys(count=50, popularity="hot", hot_keys=20, hot_requests=80))
    assert sum(p[:10]) == pytest.approx(0.8) and sum(p[10:]) == pytest.approx(0.2)
    assert len(set(p[:10])) == 1 and len(set(p[10:])) == 1


@pytest.mark.parametrize(
    "keys",
    [
        Keys(count=20, popularity="uniform"),
        Keys(count=20, popularity="zipf", s=1.2),
        Keys(count=20, popularity="hot", hot_keys=10, hot_requests=90),
    ],
)
def test_draws_follow_the_probabilities_and_repeat_with_the_seed(keys):
    draws = 40_000
    draw = drawer(keys, random.Random(7))
    seen = Counter(draw() for _ in range(draws))
    for rank, p in enumerate(probabilities(keys)):
        sd = (p * (1 - p) / draws) ** 0.5
        assert abs(seen[key_name(rank)] / draws - p) < 5 * sd + 1e-9
    again = drawer(keys, random.Random(7))
    first = drawer(keys, random.Random(7))
    assert [again() for _ in range(100)] == [first() for _ in range(100)]


def test_bench_keys_is_read_and_checked():
    assert parse_keys("count=1000,popularity=zipf,s=0.8") == Keys(1000, "zipf", 0.8)
    assert parse_keys("count=10, popularity=hot, hot_keys=30") == Keys(10, "hot", hot_keys=30.0)
    for text, problem in [
        ("count=x", "count: must be a number (got 'x')"),
        ("count=2.5", "count: must be an int"),
        ("count=2000000", "count: must be from 0"),
        ("popularity=pareto", "popularity: must be one of uniform, zipf, hot"),
        ("s=nan", "s: must be a finite number"),
        ("s=10.5", "s: must be from 0 to 10"),
        ("hot_requests=100", "hot_requests: must be a percentage above 0 and below 100"),
        ("count=1,popularity=hot", "a hot set needs at least 2 keys"),
        ("count=3,count=4", "count is given twice"),
        ("colour=red", "give key=value parts"),
        ("count", "give key=value parts"),
    ]:
        with pytest.raises(ConfigError, match=problem.replace("(", r"\(").replace(")", r"\)")):
            parse_keys(text)


@pytest.mark.parametrize(
    ("argument", "problem"),
    [
        ("count=-1", "count: must be from 0"),
        ("popularity=zipf,s=11", "s: must be from 0 to 10"),
        ("nonsense", "give key=value parts"),
    ],
)
def test_a_bad_keys_option_is_one_line_and_exit_2(capsys, argument, problem):
    with pytest.raises(SystemExit) as stop:
        main(["bench", "--requests", "5", "--keys", argument])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "argument --keys" in err[0] and problem in err[0], err


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"count": 1, "popularity": "hot"}, "load.keys: a hot set needs at least 2 keys"),
        ({"count": 10, "shape": "zipf"}, "load.keys.shape: unknown key"),
        ({"count": 10, "popularity": 3}, "load.keys.popularity: must be a str"),
        ("zipf", "load.keys: must be a table"),
    ],
)
def test_a_bad_keys_table_names_the_key(keys, problem):
    with pytest.raises(ConfigError, match=problem):
        scenarios_from({"load": {"keys": keys}}, "s.toml")


def test_bench_with_keys_reads_many_keys_and_reports_them(capsys):
    code = main(
        [
            *("bench", "--requests", "300", "--concurrency", "1", "--mix", "data=1"),
            *("--keys", "count=50,popularity=zipf,s=1"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "reads of 50 keys, zipf s=1" in out
    result = api.bench(requests=300, concurrency=1, mix={"data": 1}, keys={"count": 50})
    assert result.cache is not None and result.db_calls == result.cache.misses
    assert 30 <= result.cache.misses <= 50  # each key missed once: no eviction at 1,024
    assert result.load.keys == "50 keys, uniform"
    assert result.as_dict()["load"]["keys"] == "50 keys, uniform"


def test_without_keys_the_load_and_report_are_as_before():
    result = api.bench(requests=40, concurrency=1, mix={"data": 1})
    assert result.cache is not None and result.cache.misses == 1  # one key
    report = result.as_dict()
    assert "keys" not in report["load"]
    assert "evictions" not in report["cache"] and "evicted_misses" not in report["cache"]
    assert "evictions" not in render_text(result)


async def _cache_calls(sim, eviction: str, calls: list[tuple[str, str]], **more):
    """Each call ("put"/"get", key) on a cache of 2 entries; the keys held after, its figures."""
    cluster, clock, client = await sim({"cache": {"maxsize": 2, "eviction": eviction, **more}})
    url = f"{cluster.urls['cache']}/cache"
    client: HttpClient

    async def run() -> list[str]:
        for call, key in calls:
            if call == "put":
                await client.request("cache", "POST", f"{url}/{key}", json_body={"value": key})
            elif call == "get":
                await client.request("cache", "GET", f"{url}/{key}")
            else:
                await clock.sleep(float(key))
        held = []
        for key in "abcd":
            if (await client.request("cache", "GET", f"{url}/{key}")).json()["value"]:
                held.append(key)
        return held

    held = await clock.run(run())
    return held, cluster.counters("cache")


FILL = [("put", "a"), ("put", "b"), ("get", "a"), ("get", "a"), ("get", "b")]


@pytest.mark.parametrize(
    ("eviction", "held"),
    [
        ("lru", ["a", "c"]),  # b, a, a read: b is the least recently used
        ("fifo", ["b", "c"]),  # a was written first, whatever its reads
        ("lfu", ["a", "c"]),  # a read twice, b once
        ("ttl", ["a", "c"]),  # least recently used, as lru, when none has expired
    ],
)
async def test_each_policy_evicts_its_own_victim(sim, eviction, held):
    calls = [("put", "a"), ("put", "b"), ("get", "b"), ("get", "a"), ("get", "a"), ("put", "c")]
    got, figures = await _cache_calls(sim, eviction, calls)
    assert got == held
    assert figures["evictions"] == 1


async def test_random_eviction_is_seeded(sim):
    calls = [(("put", k)) for k in "abcd"]
    first = await _cache_calls(sim, "random", calls)
    again = await _cache_calls(sim, "random", calls)
    assert first == again and len(first[0]) == 2 and first[1]["evictions"] == 2


async def test_a_miss_on_an_evicted_key_is_counted_as_its_cost(sim):
    calls = [("put", "a"), ("put", "b"), ("put", "c"), ("get", "a"), ("get", "a"), ("get", "d")]
    _, figures = await _cache_calls(sim, "fifo", calls)
    # a was evicted: its first miss is the eviction's cost; its second (not filled
    # again) and d's (never cached) are not, nor are the final reads of a and d.
    assert figures["evictions"] == 1 and figures["evicted_misses"] == 1


async def test_an_expired_entry_pushed_out_is_no_eviction_and_costs_none(sim):
    # a expired at 120 s: its later miss would have happened without any eviction.
    calls = [("put", "a"), ("put", "b"), ("sleep", "121"), ("put", "c"), ("get", "a")]
    _, figures = await _cache_calls(sim, "fifo", calls, ttl=120)
    assert figures["evictions"] == 0 and figures["evicted_misses"] == 0
    assert figures["expirations"] >= 1


async def test_a_larger_value_replacing_an_entry_evicts_by_the_policy_and_counts_it(sim):
    # Room for about two entries by bytes: replacing b by a larger value pushes a out.
    small, large = "x" * 10, "y" * 600
    cluster, clock, client = await sim(
        {"cache": {"maxsize": 10, "eviction": "lru", "max_bytes": 1024}}
    )
    url = f"{cluster.urls['cache']}/cache"

    async def run() -> list[str]:
        for key, value in (("a", small), ("b", small), ("b", large)):
            await client.request("cache", "POST", f"{url}/{key}", json_body={"value": value})
        return [
            k for k in "ab" if (await client.request("cache", "GET", f"{url}/{k}")).json()["value"]
        ]

    assert await clock.run(run()) == ["b"]
    assert cluster.counters("cache")["evictions"] == 1


async def test_a_policy_still_drops_an_entry_past_its_ttl(sim):
    calls = [("put", "a"), ("sleep", "121")]
    held, figures = await _cache_calls(sim, "lru", calls)
    assert held == [] and figures["expirations"] == 1
    # The cache's own ttl, whatever the writer asks; counted when the cache next writes.
    calls = [("put", "a"), ("sleep", "31"), ("put", "b")]
    held, figures = await _cache_calls(sim, "ttl", calls, ttl=30)
    assert held == ["b"] and figures["expirations"] == 1


def test_a_bad_eviction_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match=r"cache.eviction: must be one of lru, lfu, fifo"):
        scenarios_from({"cache": {"eviction": "mru"}}, "s.toml")
    with pytest.raises(ConfigError, match=r"components.c.eviction: must be one of"):
        scenarios_from(
            {"components": {"c": {"kind": "cache", "port": 0, "eviction": "LRU"}}}, "s.toml"
        )


def test_a_run_with_a_policy_reports_its_evictions_and_their_cost():
    result = api.bench("cache-size", requests=600)
    assert result.cache is not None
    c = result.cache
    assert c.evictions == c.misses - 100  # every miss fills; past 100 entries each evicts
    assert c.evicted_misses is not None and 0 < c.evicted_misses <= c.evictions
    line = next(x for x in render_text(result).splitlines() if x.startswith("cache"))
    assert f"{c.evictions} evictions, {c.evicted_misses} database reads after eviction" in line


def test_an_open_load_draws_its_keys_too_and_repeats():
    runs = [
        api.bench(rate=200, requests=300, mix={"data": 1}, keys={"count": 40}) for _ in range(2)
    ]
    first, again = (r.cache for r in runs)
    assert first is not None and first == again
    assert 40 <= first.misses < 300  # every key missed at least once; the rest mostly hit
    assert runs[0].load.keys == "40 keys, uniform"
