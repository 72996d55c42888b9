"""The API gateway through the load balancer and directly: login, /data, /longtask, /process."""

from __future__ import annotations

import time

import jwt
import pytest

from .conftest import login


async def test_login_returns_an_hs256_token_with_expiry(cluster, http):
    token = await login(http, cluster.url)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, cluster.topology.secret, algorithms=["HS256"])
    assert header["alg"] == "HS256"
    assert claims["sub"] == "user1" and claims["role"] == "user"
    assert 3590 <= claims["exp"] - time.time() <= 3600


@pytest.mark.parametrize(
    "body",
    [
        {"username": "user1", "password": "wrong"},
        {"username": "nobody", "password": "password123"},
    ],
)
async def test_wrong_credentials_are_401(cluster, http, body):
    async with http.post(f"{cluster.url}/login", json=body) as resp:
        assert resp.status == 401
        assert await resp.json() == {
            "error": "invalid_credentials",
            "message": "Invalid credentials",
        }


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "must be JSON"),
        (b'["user1", "password123"]', "username"),
        (b'{"username": "user1"}', "username"),
    ],
)
async def test_malformed_login_is_400(cluster, http, data, problem):
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{cluster.url}/login", data=data, headers=headers) as resp:
        assert resp.status == 400
        assert problem in (await resp.json())["error"]


async def test_data_misses_then_hits_with_one_shape(cluster, http):
    token = await login(http, cluster.url)
    answers = []
    for _ in range(2):
        async with http.get(f"{cluster.url}/data", headers={"Authorization": token}) as resp:
            assert resp.status == 200
            answers.append(await resp.json())
            assert answers[-1].pop("gateway_id") == resp.headers["X-Served-By"]
    assert answers == [
        {"cached": False, "data": "Fetched fresh data from DB"},
        {"cached": True, "data": "Fetched fresh data from DB"},
    ]
    assert cluster.counters("database")["db_calls"] == 1


@pytest.mark.parametrize("scheme", ["", "Bearer ", "bearer "])
async def test_token_raw_or_bearer(cluster, http, scheme):
    token = await login(http, cluster.url)
    async with http.get(
        f"{cluster.url}/process", headers={"Authorization": scheme + token}
    ) as resp:
        assert resp.status == 200
        assert await resp.json() == {
            "message": "Business logic executed",
            "service_id": "microservice",
            "gateway_id": resp.headers["X-Served-By"],
        }


def _token(secret: str, **claims) -> str:
    payload = {"sub": "user1", "role": "user", "exp": int(time.time()) + 60, **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda s: None, "missing token"),
        (lambda s: "not-a-jwt", "malformed"),
        (lambda s: _token(s, exp=int(time.time()) - 10), "expired"),
        (lambda s: _token("another-secret-that-is-long-enough-for-hs256"), "signature"),
        (lambda s: jwt.encode({"sub": "user1"}, s, algorithm="HS256"), "'exp'"),
        (
            lambda s: jwt.encode(
                {"sub": "user1", "exp": int(time.time()) + 60}, None, algorithm="none"
            ),
            "algorithm",
        ),
        (
            lambda s: jwt.encode(
                {"sub": "u", "exp": int(time.time()) + 60}, s * 2, algorithm="HS512"
            ),
            "algorithm",
        ),
    ],
    ids=["missing", "malformed", "expired", "bad-signature", "no-exp", "alg-none", "hs512"],
)
@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/data"), ("POST", "/longtask"), ("GET", "/process")]
)
async def test_bad_tokens_are_401_with_challenge(cluster, http, make, problem, method, path):
    token = make(cluster.topology.secret)
    headers = {"Authorization": token} if token else {}
    async with http.request(method, cluster.url + path, headers=headers, json={}) as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert problem in (await resp.json())["error"]
    assert cluster.counters("database").get("db_calls", 0) == 0


async def test_longtask_is_queued_and_runs(start_cluster, http):
    cluster = await start_cluster({"worker": {"task_duration": 60}})
    token = await login(http, cluster.url)
    async with http.post(
        f"{cluster.url}/longtask", json={}, headers={"Authorization": token}
    ) as resp:
        assert resp.status == 202
        body = await resp.json()
    assert body["status"] == "Task queued" and body["task_id"].startswith("task-")
    async with http.get(f"{cluster.urls['worker']}/task/{body['task_id']}") as resp:
        assert (await resp.json())["state"] == "running"


async def test_longtask_accepts_an_empty_body_but_not_broken_json(cluster, http):
    token = await login(http, cluster.url)
    auth = {"Authorization": token}
    async with http.post(f"{cluster.url}/longtask", headers=auth) as resp:
        assert resp.status == 202
    bad = {**auth, "Content-Type": "application/json"}
    async with http.post(f"{cluster.url}/longtask", data=b"{", headers=bad) as resp:
        assert resp.status == 400
        assert "not valid JSON" in (await resp.json())["error"]


async def test_gateway_names_itself(cluster, http):
    async with http.get(f"{cluster.urls['gateway-5003']}/health") as resp:
        assert resp.headers["X-Served-By"] == "gateway-5003"
        assert (await resp.json())["component"] == "gateway-5003"


async def test_a_downstream_failure_names_the_component(start_cluster, http):
    cluster = await start_cluster()
    token = await login(http, cluster.url)
    await cluster.components["database"].runner.cleanup()
    async with http.get(f"{cluster.url}/data", headers={"Authorization": token}) as resp:
        assert resp.status == 502
        body = await resp.json()
    assert body["component"] == "database"
    assert "database unreachable" in body["error"]


async def test_worker_queue_full_passes_on_as_503(start_cluster, http):
    cluster = await start_cluster(
        {"worker": {"concurrency": 1, "queue_size": 1, "task_duration": 60}}
    )
    token = await login(http, cluster.url)
    statuses = []
    for _ in range(3):
        async with http.post(
            f"{cluster.url}/longtask", json={}, headers={"Authorization": token}
        ) as resp:
            statuses.append(resp.status)
            last = (resp.headers.get("Retry-After"), await resp.json())
    assert statuses == [202, 202, 503]
    assert last[0] == "1"
    assert last[1]["component"] == "worker" and "queue is full" in last[1]["error"]


async def test_odd_credentials_are_401_not_500(cluster, http):
    body = b'{"username": "\\ud800", "password": "\\udfff"}'  # lone surrogates
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{cluster.url}/login", data=body, headers=headers) as resp:
        assert resp.status == 401


async def test_a_body_that_does_not_decode_is_400(cluster, http):
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    async with http.post(f"{cluster.url}/login", data=b"not gzip", headers=headers) as resp:
        assert resp.status == 400
        assert "bad request body" in (await resp.json())["error"]
