"""A scenario as a Docker Compose file: one service per component, each `labsim up --only`.

Every service builds one image of labsim from the folder the file is saved in (an inline
Dockerfile), gets the scenario as a compose config, with `[hosts]` naming each component
by its service (so every URL a component uses is a service of the file), listens on its
scenario port, and is healthy when its `/health` answers. The load balancer publishes its
port on 127.0.0.1, waits for the gateways, which wait for the components they call. The
secrets every process must share come from the environment (`${LABSIM_...:?...}`): compose
refuses to start without them. Plain functions from a scenario to text; no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..model.config import SHARED_SECRETS, Topology

DOCKERFILE = """FROM python:3.11-slim
WORKDIR /labsim
COPY . .
RUN pip install --no-cache-dir .
"""
SCENARIO_PATH = "/scenario.toml"


def compose(topology: Topology, scenario_text: str, source: str, insecure: bool = False) -> str:
    """The Compose file of `topology`, read from `scenario_text` (the file `source`);
    `insecure` passes `--insecure` to every service (the guide profile needs it)."""
    ports = topology.ports()
    config = _with_hosts(scenario_text, list(ports))
    document: dict[str, Any] = {
        "name": f"labsim-{_name(topology.name)}",
        # One quoted line, whatever the text holds (YAML reads some characters as line
        # breaks in a block), and `$$`: Compose would fill in `$NAME` even here.
        "configs": {"scenario": {"content": _Quoted(config.replace("$", "$$"))}},
        "services": {cid: _service(topology, cid, port, insecure) for cid, port in ports.items()},
    }
    shown = "".join(c if c.isprintable() else "?" for c in source)  # a comment stays one line
    shown += " --insecure" * insecure
    header = (
        f"# Made by `python -m labsim export compose {shown}`: the lab as one service per\n"
        "# component. Save it in labsim's folder (the image is built from it), then:\n"
        "#   export LABSIM_ADMIN_TOKEN=... LABSIM_SECRET=... (32+ characters each)\n"
        "#   docker compose up\n"
    )
    return header + _yaml(document, 0)


def _name(text: str) -> str:
    """A Compose project name: lowercase ASCII letters, digits and dashes."""
    cleaned = "".join(c if c.isascii() and c.isalnum() else "-" for c in text.lower())
    return cleaned.strip("-") or "lab"


class _Quoted(str):
    """A string written as one double-quoted scalar, never as a block."""


def _with_hosts(text: str, ids: Iterable[str]) -> str:
    """The scenario, with every component reached at (and listening on) its service name."""
    lines = [
        text.rstrip(),
        "",
        "# Added by `labsim export compose`: each component's service.",
        "[hosts]",
    ]
    lines += [f'"{cid}" = "{cid}"' for cid in ids]
    return "\n".join(lines) + "\n"


def _needed_secrets(topology: Topology) -> list[str]:
    names = ["admin_token"]
    if topology.auth.mode != "guide":
        names.append("secret")
    if topology.exposure == "gateways-only":
        names.append("internal_token")
    return [SHARED_SECRETS[n] for n in names]


def _service(topology: Topology, cid: str, port: int, insecure: bool) -> dict[str, Any]:
    health = (
        f"import urllib.request; urllib.request.urlopen('http://{cid}:{port}/health', timeout=2)"
    )
    service: dict[str, Any] = {
        "build": {"context": ".", "dockerfile_inline": DOCKERFILE},
        "command": [
            "python",
            "-m",
            "labsim",
            "up",
            "--scenario",
            SCENARIO_PATH,
            "--only",
            cid,
            "--quiet",
            *["--insecure"] * insecure,
        ],
        "configs": [{"source": "scenario", "target": SCENARIO_PATH}],
        "environment": {
            variable: f"${{{variable}:?set {variable}, 32 characters or more}}"
            for variable in _needed_secrets(topology)
        },
        "expose": [str(port)],
        "healthcheck": {
            "test": ["CMD", "python", "-c", health],
            "interval": "2s",
            "timeout": "3s",
            "retries": 15,
        },
    }
    waits = _calls(topology, cid)
    if waits:
        service["depends_on"] = {w: {"condition": "service_healthy"} for w in waits}
    if cid == topology.graph().entry_replica():  # where clients come in
        service["ports"] = [f"127.0.0.1:{port}:{port}"]
    return service


def _calls(topology: Topology, cid: str) -> list[str]:
    """The replicas `cid` calls: it waits for them to be healthy before it starts."""
    return [callee for caller, callee in topology.graph().edges() if caller == cid]


def _yaml(value: Any, indent: int) -> str:
    """YAML for the nested dicts, lists, strings and numbers above: strings as JSON does
    (a double-quoted YAML scalar), several lines as a literal block."""
    pad = "  " * indent
    out: list[str] = []
    items = value.items() if isinstance(value, dict) else ((None, v) for v in value)
    for key, item in items:
        lead = f"{pad}{key}:" if key is not None else f"{pad}-"
        if isinstance(item, dict | list) and item:
            if key is None and isinstance(item, dict):  # a list of tables: "- key: value"
                inner = _yaml(item, indent + 1).lstrip()
                out.append(f"{lead} {inner}".rstrip("\n"))
            else:
                out.append(lead)
                out.append(_yaml(item, indent + 1).rstrip("\n"))
        elif isinstance(item, str) and "\n" in item and not isinstance(item, _Quoted):
            block = "\n".join(
                f"{pad}  {line}" if line else "" for line in item.rstrip("\n").split("\n")
            )
            out.append(f"{lead} |\n{block}")
        else:
            out.append(f"{lead} {_scalar(item)}")
    return "\n".join(out) + "\n"


def _scalar(value: Any) -> str:
    """A number, or a string as a double-quoted scalar: each character as it is (the file
    is UTF-8), except those YAML would read as a line break or that do not print, which
    are escaped. Never JSON's surrogate pairs (an emoji's `\\ud83d\\ude00`), which YAML
    readers refuse or turn into two broken characters."""
    if not isinstance(value, str):
        return json.dumps(value)
    return "".join(_escaped(c) for c in json.dumps(value, ensure_ascii=False))


def _escaped(c: str) -> str:
    if c.isprintable():
        return c
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"
