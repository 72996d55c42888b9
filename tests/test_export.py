"""`export compose`: a Compose file whose wiring holds, read back with a YAML parser."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from labsim.cli import main
from labsim.model.scenario import scenarios_from
from labsim.model.topology import load_topology

LAB_IDS = ["database", "cache", "microservice", "worker",
           "gateway-5000", "gateway-5003", "gateway-5006", "load-balancer"]  # fmt: skip
BACKENDS = {"cache", "database", "worker", "microservice"}


def export(capsys, *args: str) -> dict:
    assert main(["export", "compose", *args]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def test_every_component_is_a_service_wired_to_services_that_exist(capsys):
    document = export(capsys)
    services = document["services"]
    assert list(services) == LAB_IDS
    scenario_text = document["configs"]["scenario"]["content"].replace("$$", "$")
    (scenario,) = scenarios_from(tomllib.loads(scenario_text), "exported")
    topology = scenario.topology
    assert topology.ports() == load_topology("scenarios/lab.toml").ports()
    for cid, service in services.items():
        port = topology.ports()[cid]
        # Every URL a component uses is http://<host_of(id)>:<port>: a service of the file.
        assert topology.host_of(cid) == cid and cid in services
        assert service["expose"] == [str(port)]
        assert service["command"][-3:] == ["--only", cid, "--quiet"]
        target = service["configs"][0]["target"]
        assert service["command"][4:6] == ["--scenario", target]
        check = service["healthcheck"]["test"]
        assert check[:3] == ["CMD", "python", "-c"] and f"'http://{cid}:{port}/health'" in check[3]
        for needed in service.get("depends_on", {}):
            assert needed in services
            assert service["depends_on"][needed] == {"condition": "service_healthy"}
        assert "FROM python:3.11-slim" in service["build"]["dockerfile_inline"]
    assert set(services["load-balancer"]["depends_on"]) == set(topology.gateway_ids())
    assert set(services["gateway-5003"]["depends_on"]) == BACKENDS
    assert "depends_on" not in services["cache"]
    assert services["load-balancer"]["ports"] == ["127.0.0.1:8000:8000"]
    assert all("ports" not in s for cid, s in services.items() if cid != "load-balancer")
    environment = services["cache"]["environment"]
    assert set(environment) == {"LABSIM_ADMIN_TOKEN", "LABSIM_SECRET"}
    assert environment["LABSIM_SECRET"].startswith("${LABSIM_SECRET:?")


def test_each_service_s_command_is_one_labsim_accepts(capsys, tmp_path, monkeypatch):
    document = export(capsys)
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(document["configs"]["scenario"]["content"].replace("$$", "$"))
    command = document["services"]["cache"]["command"]
    assert command[:4] == ["python", "-m", "labsim", "up"]
    monkeypatch.delenv("LABSIM_ADMIN_TOKEN", raising=False)
    args = [a if a != "/scenario.toml" else str(scenario) for a in command[3:]]
    assert main(args) == 2  # without the shared token, it says which variable to set
    assert "set LABSIM_ADMIN_TOKEN" in capsys.readouterr().err, shlex.join(args)


def test_the_guide_profile_needs_no_shared_token_secret(capsys):
    services = export(capsys, "scenarios/guide.toml", "--insecure")["services"]
    assert set(services["cache"]["environment"]) == {"LABSIM_ADMIN_TOKEN"}  # public anyway


def test_the_guide_profile_is_refused_unless_insecure_which_every_service_then_gets(
    capsys, tmp_path, monkeypatch
):
    assert main(["export", "compose", "guide"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "guide: the guide profile" in err and "--insecure" in err
    document = export(capsys, "guide", "--insecure")
    # What each service runs is what `up` accepts: with --insecure, the guide profile on
    # its service's address; without it, one line and exit code 2.
    scenario = tmp_path / "scenario.toml"
    scenario.write_text(document["configs"]["scenario"]["content"].replace("$$", "$"))
    monkeypatch.setenv("LABSIM_ADMIN_TOKEN", "t" * 32)
    monkeypatch.setattr("labsim.cli.up.loop.run", lambda serving: serving.close() or 0)
    for cid, service in document["services"].items():
        command = service["command"]
        assert command[-4:] == ["--only", cid, "--quiet", "--insecure"]
        args = [a if a != "/scenario.toml" else str(scenario) for a in command[3:]]
        assert main(args) == 0, capsys.readouterr().err
        assert main(args[:-1]) == 2 and "--insecure" in capsys.readouterr().err


def test_a_limited_exposure_shares_the_internal_credential(capsys, tmp_path):
    path = tmp_path / "limited.toml"
    path.write_text('exposure = "gateways-only"\n')
    environment = export(capsys, str(path))["services"]["worker"]["environment"]
    assert "LABSIM_INTERNAL_TOKEN" in environment


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[hosts]\ncache = "x"\n', "has a [hosts] table; export writes its own"),
        ('[[variants]]\nname = "a"\n[[variants]]\nname = "b"\n', "has 2 variants"),
        ("[cache]\nttl = -1\n", "cache.ttl: must be greater than 0"),
        # A variant's own addresses would override the services' names.
        (
            '[[variants]]\nname = "a"\nhosts = { cache = "10.0.0.9" }\n',
            "variants[0].hosts: a variant cannot move components",
        ),
    ],
)
def test_export_mistakes_are_one_line_exit_2(capsys, tmp_path, text, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    assert main(["export", "compose", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_any_scenario_text_survives_the_trip_through_yaml_and_compose(capsys, tmp_path):
    text = (
        '   name = "café: # \\"quoted\\" $HOME ${X}"\n'  # leading spaces, YAML and $ signs
        'description = "a\u0085b\u2028c"\n'  # characters YAML reads as line breaks
    )
    path = tmp_path / "odd\nname.toml"  # a file name with a line break in it
    path.write_text(text)
    assert main(["export", "compose", str(path)]) == 0
    out = capsys.readouterr().out
    header = [line for line in out.splitlines() if line.startswith("#")]
    assert len(header) == 4  # the comment stayed four lines
    document = yaml.safe_load(out)
    assert re.fullmatch(r"labsim-caf-[a-z0-9-]*quoted[a-z0-9-]*home[a-z0-9-]*x", document["name"])
    content = document["configs"]["scenario"]["content"]
    assert "$$HOME" in content and "$${X}" in content  # Compose makes them $HOME again
    assert content.replace("$$", "$").startswith(text)


def test_an_emoji_anywhere_is_written_as_utf8_that_yaml_reads_back(tmp_path):
    text = '# a comment 🚀\nname = "lab ✓"\ndescription = "caché 😀, \\u2028 kept escaped"\n'
    path = tmp_path / "emoji 🎉.toml"
    path.write_text(text, encoding="utf-8")
    # A terminal that cannot show it changes nothing: the file is UTF-8.
    done = subprocess.run(
        [sys.executable, "-m", "labsim", "export", "compose", str(path)],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "ascii"},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode("utf-8")  # strict: no surrogates, nothing else broken
    assert "🚀" in out and "\\ud83d" not in out
    document = yaml.safe_load(out)
    content = document["configs"]["scenario"]["content"]
    assert content.startswith(text)
    content.encode("utf-8")  # no lone surrogates: a reader got the characters themselves
    (scenario,) = scenarios_from(tomllib.loads(content), "exported")
    assert scenario.description == "caché 😀, \u2028 kept escaped"


def test_a_scenario_from_a_pipe_is_read_once(tmp_path):
    path = tmp_path / "one.toml"
    path.write_text('name = "piped"\n[cache]\nttl = 7\n')
    done = subprocess.run(
        ["bash", "-c", 'exec "$0" -m labsim export compose <(cat "$1")', sys.executable, path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    document = yaml.safe_load(done.stdout)
    assert document["name"] == "labsim-piped"
    (scenario,) = scenarios_from(tomllib.loads(document["configs"]["scenario"]["content"]), "x")
    assert scenario.topology.cache.ttl == 7


def test_export_works_anywhere_with_the_shipped_lab(capsys, tmp_path, monkeypatch):
    lab = (Path(__file__).parents[1] / "scenarios" / "lab.toml").read_text()
    monkeypatch.chdir(tmp_path)  # no scenarios/ folder here
    for args in ((), ("lab",)):
        document = export(capsys, *args)
        assert list(document["services"]) == LAB_IDS
        assert document["configs"]["scenario"]["content"].startswith(lab.rstrip())


def test_the_image_leaves_out_version_control_environments_and_secrets_but_not_the_package():
    root = Path(__file__).parents[1]
    ignored = {
        line.strip()
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".env", "**/__pycache__"} <= ignored
    # What `pip install .` in the image needs stays in.
    assert not ignored & {"labsim", "scenarios", "pyproject.toml", "README.md", "*", "**"}
