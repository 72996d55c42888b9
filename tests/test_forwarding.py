"""The gateways' per-client limits key by the client the load balancer forwards, and trust
its forwarded address only from the load balancer."""

from __future__ import annotations

import aiohttp

LIMITED = {"gateways": {"rate_limit": {"rate": 0.001, "burst": 3}}}
BAD = {"username": "user1", "password": "wrong"}
GOOD = {"username": "user1", "password": "password123"}


def client_at(address: str) -> aiohttp.ClientSession:
    """A client whose connections come from `address` (any of loopback's 127/8 on Linux)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))


async def statuses(
    http: aiohttp.ClientSession, url: str, body: dict, n: int, spoof: bool = False
) -> list[int]:
    out = []
    for i in range(n):
        # A client may send its own X-Forwarded-For: the load balancer's entry comes last.
        headers = {"X-Forwarded-For": f"10.0.0.{i}"} if spoof else {}
        async with http.post(f"{url}/login", json=body, headers=headers) as resp:
            out.append(resp.status)
    return out


async def test_bad_logins_from_one_address_leave_another_s_logins_alone(start_cluster):
    cluster = await start_cluster(LIMITED)
    async with client_at("127.0.0.2") as attacker, client_at("127.0.0.3") as user:
        attempts = await statuses(attacker, cluster.url, BAD, 30, spoof=True)
        # 3 gateways, a burst of 3 each: 9 refused logins (401), then the limit (429).
        assert attempts.count(401) == 9 and attempts.count(429) == 21
        assert await statuses(user, cluster.url, GOOD, 3) == [200, 200, 200]


async def test_a_client_that_calls_a_gateway_directly_cannot_pick_its_address(start_cluster):
    cluster = await start_cluster(LIMITED)
    gateway = cluster.urls["gateway-5000"]
    forged = {"X-Labsim-Forwarder": "guessed", "X-Forwarded-For": "10.9.9.9"}
    async with client_at("127.0.0.2") as direct:
        seen = []
        for i in range(5):
            headers = forged | {"X-Forwarded-For": f"10.0.0.{i}"}
            async with direct.post(f"{gateway}/login", json=BAD, headers=headers) as resp:
                seen.append(resp.status)
    assert seen == [401, 401, 401, 429, 429]  # one bucket: its own address
