"""The course guide's profile: its public secret, its 403s, its clients; and `up`'s guard."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest

from labsim.cli import main
from labsim.guide import forged_token, is_loopback

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


def run_guide_client(tmp_path, scenario_text: str, **env: str) -> subprocess.CompletedProcess:
    """`up` on free ports with `scenario_text`, and the guide-style client against it."""
    ports = free_ports(8)
    up = Up("--scenario", str(write_scenario(tmp_path / "s.toml", ports, scenario_text)), "--quiet")
    urls = {"LB_URL": ports[0], "CACHE_URL": ports[4], "WORKER_URL": ports[6]}
    env |= {name: f"http://127.0.0.1:{port}" for name, port in urls.items()}
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


@pytest.mark.parametrize("required", [True, False])
def test_a_client_written_for_the_guide_runs_unchanged(tmp_path, required):
    auth = f'[auth]\nmode = "guide"\nrequired = {str(required).lower()}\n'
    result = run_guide_client(tmp_path, auth, **({} if required else {"GUIDE_NO_TOKEN": "1"}))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("all as the guide's code answers")


def test_the_same_client_is_refused_by_the_default(tmp_path):
    result = run_guide_client(tmp_path, "")
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
