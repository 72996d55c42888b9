"""What the course's clients add to the lab: cache invalidation and stats, `?key=`, which
gateway and which service answered, and the worker's task list."""

from __future__ import annotations

import pytest

from .conftest import login


async def test_a_fresh_key_misses_then_hits_and_the_cache_can_drop_it(cluster, http):
    token = await login(http, cluster.url)
    auth = {"Authorization": token}
    cache = cluster.urls["cache"]
    answers = []
    for _ in range(2):
        async with http.get(f"{cluster.url}/data?key=fresh-1", headers=auth) as resp:
            answers.append((resp.status, await resp.json()))
    assert [a[1]["cached"] for a in answers] == [False, True]
    assert all(a[1]["gateway_id"].startswith("gateway-") for a in answers)
    async with http.get(f"{cache}/cache/fresh-1") as resp:
        assert (await resp.json())["value"] == answers[0][1]["data"]
    async with http.get(f"{cache}/cache") as resp:
        stats = await resp.json()
    # The gateway's miss and hit, and the direct read just above.
    assert stats["entries"] == 1 and stats["hits"] == 2 and stats["misses"] == 1
    assert stats["ttl"] == 120 and stats["bytes"] > 0
    async with http.get(f"{cache}/cache/stats") as resp:
        assert await resp.json() == stats
    async with http.delete(f"{cache}/cache/fresh-1") as resp:
        assert resp.status == 204
    async with http.delete(f"{cache}/cache/fresh-1") as resp:
        assert resp.status == 404 and "no cache entry 'fresh-1'" in (await resp.json())["error"]
    async with http.get(f"{cluster.url}/data?key=fresh-1", headers=auth) as resp:
        assert (await resp.json())["cached"] is False  # deleted: a miss again


async def test_a_flush_empties_the_cache_and_says_how_much(cluster, http):
    cache = cluster.urls["cache"]
    for key in ("a", "b", "c"):
        async with http.post(f"{cache}/cache/{key}", json={"value": key}) as resp:
            assert resp.status == 200
    async with http.post(f"{cache}/cache/flush") as resp:
        assert await resp.json() == {"status": "ok", "flushed": 3}
    async with http.get(f"{cache}/cache") as resp:
        assert (await resp.json())["entries"] == 0
    assert cluster.counters("cache")["deletions"] == 3


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("key=", "key must be 1 to 64 letters"),
        ("key=" + "k" * 65, "key must be 1 to 64 letters"),
        ("key=a%20b", "key must be 1 to 64 letters"),
        ("key=%C3%A9", "key must be 1 to 64 letters"),
        ("key=flush", "key 'flush' is reserved"),
        ("key=stats", "key 'stats' is reserved"),
    ],
)
async def test_a_bad_key_is_refused_before_the_cache_sees_it(cluster, http, query, error):
    token = await login(http, cluster.url)
    async with http.get(f"{cluster.url}/data?{query}", headers={"Authorization": token}) as resp:
        assert resp.status == 400 and error in (await resp.json())["error"]
    assert cluster.counters("cache")["misses"] == 0


async def test_the_cache_keeps_its_route_names_for_itself(cluster, http):
    for key in ("stats", "flush"):
        async with http.post(f"{cluster.urls['cache']}/cache/{key}", json={"value": 1}) as resp:
            body = await resp.json()
        if key == "flush":
            assert resp.status == 200 and body["flushed"] == 0  # the route, not a key
        else:
            assert resp.status == 400 and "is not a key" in body["error"]


async def test_every_answer_names_its_gateway_and_service(cluster, http):
    token = await login(http, cluster.url)
    auth = {"Authorization": token}
    async with http.get(f"{cluster.url}/process", headers=auth) as resp:
        body = await resp.json()
    assert body["service_id"] == "microservice"
    assert body["gateway_id"] == resp.headers["X-Served-By"]
    async with http.post(f"{cluster.url}/longtask", headers=auth, json={}) as resp:
        assert (await resp.json())["gateway_id"] == resp.headers["X-Served-By"]


async def test_the_worker_lists_its_tasks_newest_first(start_cluster, http):
    cluster = await start_cluster({"worker": {"task_duration": 30.0}})
    worker = cluster.urls["worker"]
    for n in range(3):
        async with http.post(f"{worker}/task", json={"n": n}) as resp:
            assert resp.status == 202
    async with http.get(f"{worker}/tasks?limit=2") as resp:
        listed = await resp.json()
    assert listed["total"] == 3
    assert [t["task_id"] for t in listed["tasks"]] == ["task-3", "task-2"]
    assert {t["state"] for t in listed["tasks"]} <= {"queued", "running"}
    assert all("payload" not in t for t in listed["tasks"])
    for limit in ("0", "1001", "x", "1.5", "-1"):
        async with http.get(f"{worker}/tasks?limit={limit}") as resp:
            assert resp.status == 400 and "limit must be" in (await resp.json())["error"]
