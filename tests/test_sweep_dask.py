"""`sweep --cluster`: the points on a Dask cluster of worker processes, the same output."""

from __future__ import annotations

import json
import subprocess
import sys

import distributed
import pytest

from labsim.cli import main
from labsim.run import dask_pool

from .test_sweep import MM1, _json_without_wall, _without_wall

AXES = ["--set", "load.rate=3,6,9.5", "--set", "load.requests=400"]


@pytest.fixture(scope="module")
def scheduler():
    """A Dask cluster of 2 worker processes (not threads), as several machines would be."""
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    yield cluster.scheduler_address
    cluster.close()


def sweep(tmp_path, name: str, *options: str) -> tuple[str, dict]:
    out = tmp_path / f"{name}.json"
    done = subprocess.run(
        [sys.executable, "-m", "labsim", "sweep", MM1, *AXES, "--json", str(out), *options],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout, json.loads(out.read_text())


def test_a_sweep_on_dask_equals_the_local_one_point_for_point(tmp_path, scheduler):
    local_text, local = sweep(tmp_path, "local")
    dask_text, on_dask = sweep(tmp_path, "dask", "--cluster", scheduler)
    assert _without_wall(dask_text) == _without_wall(local_text)
    assert _json_without_wall(on_dask) == _json_without_wall(local)
    assert len(on_dask["points"]) == 3


def test_jobs_and_a_cluster_together_are_one_line_exit_2(capsys):
    args = ["--jobs", "2", "--cluster", "tcp://127.0.0.1:1"]
    assert main(["sweep", MM1, "--set", "load.rate=2", *args]) == 2
    err = capsys.readouterr().err
    assert "--jobs and --cluster: give one" in err and err.count("\n") == 1


def test_an_unreachable_scheduler_is_one_line_exit_2(capsys, monkeypatch):
    monkeypatch.setattr(dask_pool, "CONNECT_TIMEOUT", 0.5)
    assert main(["sweep", MM1, "--set", "load.rate=2", "--cluster", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("labsim: error: --cluster tcp://127.0.0.1:1: cannot reach the scheduler")
    assert err.count("\n") == 1


def test_without_dask_the_cluster_option_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    assert main(["sweep", MM1, "--set", "load.rate=2", "--cluster", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'labsim[cluster]'" in err and err.count("\n") == 1


@pytest.mark.parametrize("address", ["nonsense", "tcp://host", "http://h:1", "tcp://h:99999"])
def test_an_address_that_is_not_a_scheduler_s_is_refused_at_once(capsys, address):
    with pytest.raises(SystemExit) as e:
        main(["sweep", MM1, "--set", "load.rate=2", "--cluster", address])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "must be a scheduler's address such as tcp://10.0.0.5:8786" in err
    assert err.count("\n") == 1
