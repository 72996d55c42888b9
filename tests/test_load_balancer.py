"""The load balancer as a reverse proxy: round robin, pass-through, a gateway down."""

from __future__ import annotations

from collections import Counter

from multidict import CIMultiDict

from labsim.components.load_balancer import _end_to_end

from .conftest import login


async def test_round_robin_spreads_30_requests_10_10_10(cluster, http):
    served = Counter()
    for _ in range(30):
        async with http.get(f"{cluster.url}/health-of-nothing") as resp:
            served[resp.headers["X-Served-By"]] += 1
    assert served == {"gateway-5000": 10, "gateway-5003": 10, "gateway-5006": 10}


async def test_forwards_method_path_query_headers_and_body(cluster, http):
    token = await login(http, cluster.url)
    async with http.post(
        f"{cluster.url}/login?x=1&y=2",
        json={"username": "user1", "password": "password123"},
        headers={"X-Custom": "kept"},
    ) as resp:
        assert resp.status == 200
        assert "token" in await resp.json()
    # A query string and a custom header reach the gateway: the 404 names the path only.
    async with http.get(f"{cluster.url}/nowhere?q=1", headers={"Authorization": token}) as resp:
        assert resp.status == 404
        assert (await resp.json())["error"] == "not found: GET /nowhere"


async def test_returns_status_headers_and_body_unchanged(cluster, http):
    async with http.post(f"{cluster.url}/login", json={"username": "x", "password": "y"}) as via_lb:
        lb = (via_lb.status, await via_lb.json(), via_lb.headers["Content-Type"])
    async with http.post(
        f"{cluster.urls['gateway-5000']}/login", json={"username": "x", "password": "y"}
    ) as direct:
        gw = (direct.status, await direct.json(), direct.headers["Content-Type"])
    assert (
        lb
        == gw
        == (
            401,
            {"error": "invalid_credentials", "message": "Invalid credentials"},
            "application/json; charset=utf-8",
        )
    )


def test_hop_by_hop_headers_are_not_forwarded():
    headers = CIMultiDict(
        [
            ("Connection", "close"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Host", "127.0.0.1:8000"),
            ("Content-Length", "12"),
            ("X-Labsim-Exchange", "7"),
            ("Authorization", "token"),
            ("X-Request-Id", "abc"),
            ("Set-Cookie", "a=1"),
            ("Set-Cookie", "b=2"),
        ]
    )
    assert list(_end_to_end(headers).items()) == [
        ("Authorization", "token"),
        ("X-Request-Id", "abc"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


async def test_gateway_down_gives_502_naming_it_then_next_succeeds(start_cluster, http):
    cluster = await start_cluster()
    await cluster.components["gateway-5003"].runner.cleanup()
    answers = []
    for _ in range(3):
        async with http.post(
            f"{cluster.url}/login", json={"username": "user1", "password": "password123"}
        ) as resp:
            answers.append((resp.status, await resp.json()))
    assert answers[0][0] == 200
    assert answers[1][0] == 502
    assert answers[1][1]["component"] == "gateway-5003"
    assert "gateway-5003 unreachable" in answers[1][1]["error"]
    assert answers[2][0] == 200
