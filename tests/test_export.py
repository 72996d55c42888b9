"""`export compose`: a Compose file whose wiring holds, read back with a YAML parser."""

from __future__ import annotations

import re
import shlex
import tomllib

import pytest
import yaml

from labsim.cli import main
from labsim.config import load_topology
from labsim.scenario import scenarios_from

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
    guide = export(capsys, "scenarios/guide.toml")["services"]["cache"]["environment"]
    assert set(guide) == {"LABSIM_ADMIN_TOKEN"}  # the guide's secret is public anyway


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
