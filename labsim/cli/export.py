"""`labsim export compose [SCENARIO]`: the scenario as a Docker Compose file, on stdout."""

from __future__ import annotations

import argparse
import sys

from ..model.scenario import scenarios_from
from ..model.schema import parse_toml, read_scenario
from ..views.export import compose
from .common import UsageError

LAB = "lab"  # the shipped scenario, found by name wherever labsim runs


def run_export_command(args: argparse.Namespace) -> int:
    path = args.scenario or LAB
    # Read once: the path may be a pipe (`<(cat lab.toml)`), empty when read again.
    text = read_scenario(path)
    data = parse_toml(text, path)
    scenarios = scenarios_from(data, path)  # every mistake in the file, as `bench` names it
    if len(scenarios) > 1:
        raise UsageError(
            f"{path} has {len(scenarios)} variants; export writes one: give a file without them"
        )
    if "hosts" in data:
        raise UsageError(f"{path}: has a [hosts] table; export writes its own (one per service)")
    topology = scenarios[0].topology
    if topology.auth.mode == "guide" and not args.insecure:
        # Each service listens on its service's address, where `up` refuses the guide
        # profile without --insecure: every service would refuse to start.
        raise UsageError(
            f"{path}: the guide profile signs tokens with a public secret and each service "
            "listens on the network; add --insecure to export it anyway"
        )
    _write_utf8(compose(topology, text, path, insecure=args.insecure))
    return 0


def _write_utf8(text: str) -> None:
    """UTF-8, whatever the terminal's encoding: what YAML readers expect."""
    out = getattr(sys.stdout, "buffer", None)
    if out is None:  # a text-only stream: it encodes as it will
        sys.stdout.write(text)
        return
    sys.stdout.flush()
    out.write(text.encode("utf-8"))
    out.flush()
