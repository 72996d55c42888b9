"""The same scenario as three processes on three loopback addresses: still the lab."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from labsim.cli import main

from .conftest import Up, free_ports, write_scenario

LAB_SCRIPT = Path(__file__).parent / "lab" / "load_test.py"
ADMIN = "split-admin-" + "x" * 32
PARTS = ("load-balancer,gateways", "cache,database", "worker,microservice")


def scenario(tmp_path: Path, ports: list[int]) -> Path:
    """conftest's scenario on `ports`, its parts on three loopback addresses."""
    _, g1, g2, g3, *_ = ports
    hosts = "\n".join(
        [
            "[hosts]",
            'load-balancer = "127.0.0.2"',
            *(f'gateway-{g} = "127.0.0.2"' for g in (g1, g2, g3)),
            'cache = "127.0.0.3"',
            'database = "127.0.0.3"',
        ]
    )
    return write_scenario(tmp_path / "split.toml", ports, hosts)


@pytest.fixture
def split_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("LABSIM_ADMIN_TOKEN", ADMIN)
    ports = free_ports(8)
    path = scenario(tmp_path, ports)
    ups = [Up("--scenario", str(path), "--only", part, "--quiet") for part in PARTS]
    yield ports, path, ups
    for up in ups:
        up.stop()


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    with urllib.request.urlopen(
        urllib.request.Request(url, headers=headers or {}), timeout=10
    ) as r:
        return r.read()


def test_the_lab_s_own_script_and_the_bench_run_against_three_processes(split_lab):
    ports, path, ups = split_lab
    lb = f"http://127.0.0.2:{ports[0]}"
    banner = "".join(ups[0].banner)
    assert re.search(rf"elsewhere\s+cache\s+http://127.0.0.3:{ports[4]}", banner)
    result = subprocess.run(
        [sys.executable, str(LAB_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "LAB_URL": lb},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("'cached': True") == 40
    assert result.stdout.count("'cached': False") == 10
    done = subprocess.run(
        [sys.executable, "-m", "labsim", "bench", "--target", lb, "--scenario", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "100 total, 100 ok, 0 failed" in done.stdout
    # Each process answers for its own components: health, metrics, the fault API.
    cache = json.loads(get(f"http://127.0.0.3:{ports[4]}/health"))
    assert cache["counters"]["hits"] >= 40 + 50
    metrics = get(f"http://127.0.0.3:{ports[5]}/metrics").decode()
    assert re.search(r'labsim_database_calls_total\{component="database"\} 10\b', metrics)
    faults = get(f"http://127.0.0.1:{ports[6]}/admin/faults", {"Authorization": f"Bearer {ADMIN}"})
    assert json.loads(faults)["component"] == "worker"


@pytest.mark.parametrize(
    ("only", "env", "message"),
    [
        ("oven", {}, "--only 'oven': no such component"),
        ("cache", {"LABSIM_ADMIN_TOKEN": None}, "set LABSIM_ADMIN_TOKEN"),
        ("gateway-5000", {}, "set LABSIM_SECRET"),
    ],
)
def test_split_mistakes_are_one_line_exit_2(monkeypatch, capsys, only, env, message):
    monkeypatch.setenv("LABSIM_ADMIN_TOKEN", ADMIN)
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name)
    assert main(["up", "--only", only]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_split_lab_needs_fixed_ports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LABSIM_ADMIN_TOKEN", ADMIN)
    path = tmp_path / "free.toml"
    path.write_text("[cache]\nport = 0\n")
    assert main(["up", "--scenario", str(path), "--only", "cache"]) == 2
    assert "cache has port 0" in capsys.readouterr().err


def test_hosts_must_name_components(tmp_path, capsys):
    path = tmp_path / "h.toml"
    path.write_text('[hosts]\noven = "127.0.0.2"\n')
    assert main(["bench", "--scenario", str(path)]) == 2
    assert "hosts.oven: no such component" in capsys.readouterr().err
