"""`labsim export compose [SCENARIO]`: the scenario as a Docker Compose file, on stdout."""

from __future__ import annotations

import argparse
import tomllib

from ..export import compose
from ..schema import MAX_SCENARIO_BYTES, read_limited
from .common import UsageError, one_scenario

LAB = "scenarios/lab.toml"


def run_export_command(args: argparse.Namespace) -> int:
    path = args.scenario or LAB
    scenario = one_scenario(path)  # every mistake in the file, as `bench` names it
    text = read_limited(path, MAX_SCENARIO_BYTES, "scenario file").decode("utf-8")
    if "hosts" in tomllib.loads(text):
        raise UsageError(f"{path}: has a [hosts] table; export writes its own (one per service)")
    print(compose(scenario.topology, text, path), end="")
    return 0
