"""The shipped scenarios: in every install, reachable by name, listed by `scenarios`."""

from __future__ import annotations

import tomllib
from pathlib import Path

from labsim.cli import main
from labsim.model import shipped
from labsim.model.scenario import load_scenarios

ROOT = Path(__file__).parents[1]


def test_the_package_lists_every_package_and_carries_the_scenarios():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts) for init in ROOT.glob("labsim/**/__init__.py")
    }
    # Listed by hand (see pyproject): a new package missing from the list would not ship.
    assert set(setuptools["packages"]) == packages | {"labsim.scenarios"}
    assert setuptools["package-dir"] == {"labsim.scenarios": "scenarios"}
    assert setuptools["package-data"]["labsim.scenarios"] == ["*.toml"]


def test_every_scenario_file_is_a_name_and_listed_with_its_description(capsys):
    files = sorted(ROOT.glob("scenarios/*.toml"), key=lambda p: p.stem)
    assert shipped.names() == [p.stem for p in files]
    assert main(["scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(files)
    for line, path in zip(lines, files, strict=True):
        description = tomllib.loads(path.read_text())["description"]
        assert line.split()[0] == path.stem and line.endswith(description)


def test_a_name_works_outside_the_checkout_wherever_a_file_does(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no scenarios/ folder here
    assert main(["run", "lab"]) == 0
    assert capsys.readouterr().out.startswith("== lab: lab: The lab's own setup")
    assert main(["bench", "--scenario", "weighted", "--requests", "20"]) == 0
    assert "scenario weighted" in capsys.readouterr().out
    args = ["sweep", "mm1", "--set", "load.rate=2", "--set", "load.requests=20"]
    assert main(args) == 0
    assert "sweep of mm1" in capsys.readouterr().out


def test_a_file_of_that_name_wins_and_an_unknown_name_says_where_to_look(
    capsys, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lab").write_text('name = "mine"\n')
    assert load_scenarios("lab")[0].name == "mine"
    assert main(["run", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "labsim: error: nosuch: no such scenario file, nor a shipped scenario "
        "(python -m labsim scenarios lists them)\n"
    )
