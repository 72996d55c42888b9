"""What the sub-commands share: user mistakes, the topology from the command line and the
environment, logging, and output files checked before a run and written after it.

This is the only module that reads the environment (`LABSIM_SECRET`, `LABSIM_ADMIN_TOKEN`,
`LABSIM_INTERNAL_TOKEN`).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from ..model import guide
from ..model.config import SHARED_SECRETS, Topology
from ..model.scenario import Scenario, lab_scenario, load_scenarios
from ..model.topology import load_topology, with_overrides


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2."""


def topology_from_args(args: argparse.Namespace, topology: Topology | None = None) -> Topology:
    """The scenario's topology with the command line's overrides and the environment's secrets."""
    if topology is None:
        topology = load_topology(args.scenario)
    topology = with_overrides(
        topology,
        gateways=getattr(args, "gateways", None),
        db_latency=getattr(args, "db_latency", None),
        host=getattr(args, "host", None),
        seed=getattr(args, "seed", None),
        port_offset=getattr(args, "port_offset", None) or 0,
    )
    given: dict[str, Any] = {}
    for field_name, variable in SHARED_SECRETS.items():
        value = _secret(variable)
        if value is not None:
            given[field_name] = value
    return dataclasses.replace(topology, **given)


# Topology field -> the environment variable that sets it: what the processes of a split
# lab must share (each would make its own at random otherwise).
def announce(topologies: Iterable[Topology]) -> None:
    """Say loudly, once, when a topology's gateways let anyone forge a token or need none."""
    topologies = list(topologies)
    if any(t.auth.mode == "guide" for t in topologies):
        print(guide.WARNING, file=sys.stderr, flush=True)
    if any(not t.auth.required for t in topologies):
        print(guide.NO_TOKEN_WARNING, file=sys.stderr, flush=True)


# The secrets that travel in a header (`Authorization: Bearer`, `X-Labsim-Internal`): a
# line break or a space there would break every call, so they are refused at start.
_IN_HEADERS = frozenset({"LABSIM_ADMIN_TOKEN", "LABSIM_INTERNAL_TOKEN"})


def _secret(variable: str) -> str | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    if len(value) < 32:
        raise UsageError(f"{variable} must be at least 32 characters long (got {len(value)})")
    visible = value.isascii() and value.isprintable() and " " not in value
    if variable in _IN_HEADERS and not visible:
        raise UsageError(
            f"{variable} must be printable ASCII without spaces or line breaks: it travels "
            "in an HTTP header"
        )
    return value


def one_scenario(path: str | None, variant: str | None = None) -> Scenario:
    """The scenario `bench` runs: the file's, or the variant of it named by `--variant`."""
    if path is None:
        if variant is not None:
            raise UsageError(f"--variant {variant}: give the scenario file that has it")
        return lab_scenario()
    scenarios = load_scenarios(path)
    names = [s.variant for s in scenarios if s.variant]
    if variant is not None:
        if variant not in names:
            known = ", ".join(repr(n) for n in names) or "none"
            raise UsageError(f"--variant {variant!r}: {path} has no such variant (known: {known})")
        return scenarios[names.index(variant)]
    if len(scenarios) > 1:
        raise UsageError(
            f"{path} has {len(scenarios)} variants ({', '.join(repr(n) for n in names)}): "
            f"choose one with --variant NAME, or run them side by side with: "
            f"python -m labsim run {path}"
        )
    return scenarios[0]


def refuse_public_guide(
    topology: Topology, insecure: bool, host_option: str = "host", source: str = ""
) -> None:
    """Keep the guide profile's public token secret off the network, in every command that
    starts a topology: UsageError naming where the address came from, unless `insecure`.
    `host_option`: how the user gave the shared address (`--host`, `--set host`);
    `source`: the scenario file, when it is one of several."""
    door = guide.public_door(topology)
    if door is None or insecure:
        return
    where = f"hosts.{door}" if door in topology.hosts else host_option
    raise UsageError(
        f"{source + ': ' if source else ''}{where} {topology.host_of(door)}: the guide "
        "profile signs tokens with a public secret, so anyone who can reach it can forge "
        "one; add --insecure to serve it there anyway"
    )


def configure_logging(quiet: bool, stream: TextIO = sys.stdout) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%H:%M:%S"))
    log = logging.getLogger("labsim")
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)
    log.propagate = False


def check_output_file(option: str, path: str | None) -> None:
    """Fail before the run, not after it, when its output could not be written."""
    if path is None:
        return
    if not path or path.endswith(("/", os.sep)) or os.path.isdir(path):
        raise UsageError(f"--{option} {path!r}: give a file name")
    check_folder(f"--{option} {path}", os.path.dirname(os.path.abspath(path)))


def check_folder(what: str, folder: str) -> None:
    if not os.path.exists(folder):
        raise UsageError(f"{what}: folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise UsageError(f"{what}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{what}: no permission to write into folder {folder}")


def make_folder(option: str, path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a file; give a folder")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot make the folder: {e.strerror}") from None
    check_folder(f"{option} {path}", path)


def write(option: str, path: str, text: str | Callable[[], str]) -> None:
    """Write `text` to `path`; a failure is the user's to fix, named by `option`. The text
    is made before the file is opened, so a failure in making it leaves no empty file."""
    if not isinstance(text, str):
        text = text()
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write: {e.strerror}") from None
