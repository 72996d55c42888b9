"""The course guide's profile: its public secret, its 403s, its clients; and `up`'s guard."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import jwt
import pytest

from labsim.cli import main
from labsim.model.guide import forged_token, is_loopback
from labsim.model.topology import load_topology

from .conftest import FAST, Up, free_ports, make_topology, write_scenario

GUIDE = {"auth": {"mode": "guide"}}
# The tests make tokens with the guide's 6-byte secret themselves; pyjwt warns each time.
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")


def guide_token(**claims: object) -> str:
    """A token as the guide's helper scripts make it: HS256 with "secret", any claims."""
    return jwt.encode(claims, "secret", algorithm="HS256")


async def get(http, url: str, token: str | None = None):
    headers = {"Authorization": token} if token is not None else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


async def test_the_guide_profile_takes_tokens_signed_with_secret_and_no_claims(start_cluster, http):
    cluster = await start_cluster(GUIDE)
    for token in (guide_token(), guide_token(username="admin"), forged_token()):
        status, body, _ = await get(http, f"{cluster.url}/data", token)
        assert status == 200 and body["data"]
    async with http.post(f"{cluster.url}/longtask", headers={"Authorization": guide_token()}) as r:
        assert r.status == 202
    expired = guide_token(exp=1)
    for token, why in (
        (None, "missing token"),
        ("junk", "token is malformed"),
        (expired, "token expired"),
    ):
        status, body, headers = await get(http, f"{cluster.url}/data", token)
        assert (status, body["error"]) == (403, why)
        assert "WWW-Authenticate" not in headers
    other = jwt.encode({"sub": "x"}, "not-the-guide's-secret-" * 2, algorithm="HS256")
    status, body, _ = await get(http, f"{cluster.url}/data", other)
    assert (status, body["error"]) == (403, "token signature is invalid")


async def test_the_guide_profile_logs_in_with_compact_json_the_makefile_can_grep(
    start_cluster, http
):
    cluster = await start_cluster(GUIDE)
    user = {"username": "user1", "password": "password123"}
    async with http.post(f"{cluster.url}/login", json=user) as resp:
        text = await resp.text()
    assert resp.status == 200 and '"token":"' in text
    token = jwt.decode(
        (await resp.json(content_type=None))["token"], "secret", algorithms=["HS256"]
    )
    assert token["sub"] == "user1"


async def test_without_required_tokens_a_client_with_none_is_served(start_cluster, http):
    cluster = await start_cluster({"auth": {"mode": "guide", "required": False}})
    status, body, _ = await get(http, f"{cluster.url}/data")
    assert status == 200 and body["gateway_id"].startswith("gateway-")
    async with http.post(f"{cluster.url}/longtask", json={"task": "x"}) as resp:
        assert resp.status == 202


async def test_the_default_refuses_what_the_guide_accepts(start_cluster, http):
    cluster = await start_cluster()
    for token, why in ((forged_token(), "token signature is invalid"), (None, "missing token")):
        status, body, headers = await get(http, f"{cluster.url}/data", token)
        assert (status, body["error"]) == (401, why)
        assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_guide_token_without_sub_is_rate_limited_by_its_username(start_cluster, http):
    limits = {"rate_limit": {"rate": 0.001, "burst": 1}}
    cluster = await start_cluster({**GUIDE, "load_balancer": limits})
    alice, bob = guide_token(username="alice"), guide_token(username="bob")
    assert (await get(http, f"{cluster.url}/data", alice))[0] == 200
    assert (await get(http, f"{cluster.url}/data", alice))[0] == 429  # alice's share is used
    assert (await get(http, f"{cluster.url}/data", bob))[0] == 200  # bob has his own


def test_loopback_is_told_from_a_public_address():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("[::1]")
    assert is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("lab.example")


def test_up_refuses_the_public_secret_on_a_public_address(tmp_path, capsys):
    scenario = write_scenario(tmp_path / "g.toml", free_ports(8), '[auth]\nmode = "guide"\n')
    assert main(["up", "--scenario", str(scenario), "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--host 0.0.0.0" in err and "--insecure" in err


def test_up_warns_loudly_with_the_guide_profile_and_moves_the_dashboard(tmp_path):
    ports = free_ports(8)
    scenario = write_scenario(
        tmp_path / "g.toml", ports, '[auth]\nmode = "guide"\nrequired = false\n'
    )
    up = Up("--scenario", str(scenario), "--dashboard-port", str(free_ports(1)[0]))
    code, _, err = up.stop()
    assert code == 0
    assert "WARNING: the guide profile is on" in err and '"secret"' in err
    assert "WARNING: auth.required = false" in err


def test_the_dashboard_takes_the_first_port_after_8080_no_component_has(tmp_path):
    from labsim.cli.common import UsageError
    from labsim.cli.up import _dashboard_port

    topology = make_topology({"load_balancer": {"port": 8080}, "cache": {"port": 8081}}, FAST)
    assert _dashboard_port(topology, None) == 8082
    assert _dashboard_port(topology, 9000) == 9000
    with pytest.raises(UsageError, match="--dashboard-port 8080: that is load-balancer's port"):
        _dashboard_port(topology, 8080)


GUIDE_CLIENT = Path(__file__).parent / "lab" / "guide_client.py"
SCENARIOS = Path(__file__).parents[1] / "scenarios"
# The course guide's own ports (its README): the load balancer on 8000, gateways on 5000
# and 5003, the cache on 5004, the database on 5002, the worker on 5005, the microservice
# on 5001. Its students' clients call them.
GUIDE_PORTS = {"load-balancer": 8000, "gateway-5000": 5000, "gateway-5003": 5003,
               "cache": 5004, "database": 5002, "worker": 5005, "microservice": 5001}  # fmt: skip


def test_both_guide_files_serve_the_guide_s_ports_and_differ_only_in_the_token_check():
    files = {name: SCENARIOS / f"{name}.toml" for name in ("guide", "guide-open")}
    for name, path in files.items():
        topology = load_topology(path)
        assert GUIDE_PORTS.items() <= topology.ports().items(), name
        assert topology.auth.mode == "guide" and topology.auth.required == (name == "guide")
    guide, open_ = (tomllib.loads(path.read_text()) for path in files.values())
    for data in (guide, open_):
        for key in ("name", "description"):
            data.pop(key)
        data["auth"].pop("required")
    assert guide == open_


def free_offset() -> int:
    """A --port-offset that moves every port of the guide's files onto one free a moment ago."""
    ports = [*GUIDE_PORTS.values(), 5006]
    for _ in range(100):
        offset = random.randrange(1000, 55000)
        try:
            free = [socket.create_server(("127.0.0.1", port + offset)) for port in ports]
        except OSError:
            continue
        for s in free:
            s.close()
        return offset
    raise AssertionError("no free ports for the guide's topology")


def up_moved(scenario: Path) -> tuple[Up, int]:
    """`up` with a shipped scenario, every port moved onto free ones, a fast database."""
    offset = free_offset()
    up = Up("--scenario", str(scenario), "--port-offset", str(offset), "--db-latency", "0.01")
    return up, offset


def curl(method: str, url: str, body: object = None) -> tuple[int, dict]:
    """As the guide's `curl`: no token; a body as JSON."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("name", ["guide-open", "guide"])
def test_the_guide_readme_s_steps_against_the_guide_files(name):
    up, offset = up_moved(SCENARIOS / f"{name}.toml")
    lb = f"http://127.0.0.1:{GUIDE_PORTS['load-balancer'] + offset}"
    try:
        # Step 7 of the guide: "Access /data multiple times", then "Trigger async job".
        reads = [curl("GET", f"{lb}/data") for _ in range(3)]
        job = curl("POST", f"{lb}/longtask", {"task": "report"})
    finally:
        up.stop()
    if name == "guide-open":  # the guide's gateway with its token check off
        assert [(status, body["cached"]) for status, body in reads] == [
            (200, False),
            (200, True),
            (200, True),
        ]
        assert job[0] == 202 and job[1]["status"] == "Task queued"
    else:  # with it on, the guide's own answer to a request without a token
        for status, body in [*reads, job]:
            assert (status, body["error"]) == (403, "missing token")


def run_guide_client(scenario: Path, **env: str) -> subprocess.CompletedProcess:
    """`up` with `scenario` on free ports, and the guide-style client against it."""
    up, offset = up_moved(scenario)
    urls = {"LB_URL": "load-balancer", "CACHE_URL": "cache", "WORKER_URL": "worker"}
    env |= {name: f"http://127.0.0.1:{GUIDE_PORTS[cid] + offset}" for name, cid in urls.items()}
    try:
        return subprocess.run(
            [sys.executable, "-W", "ignore", str(GUIDE_CLIENT)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **env},
        )
    finally:
        up.stop()


@pytest.mark.parametrize(
    ("name", "env"), [("guide", {}), ("guide-open", {"GUIDE_NO_TOKEN": "1"})], ids=["token", "none"]
)
def test_a_client_written_for_the_guide_runs_unchanged(name, env):
    result = run_guide_client(SCENARIOS / f"{name}.toml", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("all as the guide's code answers")


def test_the_same_client_is_refused_by_the_default():
    result = run_guide_client(SCENARIOS / "lab.toml")
    assert result.returncode == 1
    assert "first read: (401" in result.stdout


def test_up_refuses_the_public_secret_on_a_door_with_its_own_public_address(tmp_path, capsys):
    text = '[auth]\nmode = "guide"\n[hosts]\nload-balancer = "0.0.0.0"\n'
    scenario = write_scenario(tmp_path / "g.toml", free_ports(8), text)
    assert main(["up", "--scenario", str(scenario)]) == 2
    err = capsys.readouterr().err
    assert "hosts.load-balancer 0.0.0.0: the guide profile signs tokens with a public secret" in err


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["bench", "{file}"], "host 0.0.0.0"),
        (["bench", "{file}", "--clock", "real"], "host 0.0.0.0"),
        (["run", "{file}"], "{file}: host 0.0.0.0"),
        (["sweep", "{loopback}", "--set", "host=127.0.0.1,0.0.0.0"], "--set host 0.0.0.0"),
    ],
)
def test_every_command_that_starts_the_lab_refuses_the_public_secret_on_a_public_address(
    tmp_path, capsys, argv, named
):
    guide = '[auth]\nmode = "guide"\n[database]\nlatency = 0.01\n[load]\nrequests = 2\n'
    public, loopback = tmp_path / "public.toml", tmp_path / "loopback.toml"
    public.write_text('host = "0.0.0.0"\n' + guide)
    loopback.write_text(guide)
    argv = [a.format(file=public, loopback=loopback) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{named.format(file=public)}: the guide profile signs tokens with a public" in err
    assert err.rstrip().endswith("add --insecure to serve it there anyway")


def test_insecure_lets_bench_serve_the_guide_profile_on_a_public_address(tmp_path, capsys):
    scenario = tmp_path / "public.toml"
    scenario.write_text('host = "0.0.0.0"\n[auth]\nmode = "guide"\n[database]\nlatency = 0.01\n')
    assert main(["bench", str(scenario), "--requests", "2", "--insecure"]) == 0
    assert "WARNING: the guide profile is on" in capsys.readouterr().err
