"""User flows: a load described as users' journeys, sequences of requests with think times.

`[[load.flows]]` tables become `Flow`s of `Step`s here, each value checked as any scenario
key is (`schema.build`), then the flows together (`check_flows`): every mistake is one
ConfigError naming the key. Plain data and checks only; `run/flows.py` sends them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from .config import NO_TIME, ConfigError, check
from .latency import LatencyModel

# Bounds, so that a scenario cannot ask for unbounded work or memory.
MAX_FLOWS = 20
MAX_STEPS = 32
MAX_REPEAT = 1000
MAX_THINK = 3600.0  # seconds: the mean of a step's think time
MAX_BODY = 16384  # bytes of a step's body, as compact JSON
MAX_PATH = 1024
MAX_WEIGHT = 1_000_000
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
LOGIN = ("POST", "/login")  # a step that logs in: its token is the flow's from then on

_NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
# A path: visible ASCII, no spaces, no fragment; a query string is sent as it is.
_PATH = re.compile(r"^/[!-~]*$")


def split_request(text: str) -> tuple[str, str] | None:
    """`"GET /data"` -> ("GET", "/data"); None unless a known method and a path."""
    method, sep, path = text.partition(" ")
    if not sep or method not in METHODS or len(path) > MAX_PATH:
        return None
    if not _PATH.match(path) or "#" in path:
        return None
    return method, path


def _request_ok(text: str) -> bool:
    return split_request(text) is not None


def _body_ok(body: Any) -> bool:
    try:
        size = len(json.dumps(body, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError):  # a TOML date or time, nan, inf: not JSON
        return False
    return size <= MAX_BODY


def _think_ok(think: LatencyModel) -> bool:
    return think.mean() <= MAX_THINK


@dataclass(frozen=True)
class Step:
    """One request of a flow, sent `repeat` times, each followed by `think` seconds."""

    request: str = field(
        metadata=check(
            _request_ok,
            f'must be "METHOD /path" (METHOD one of {", ".join(METHODS)}; the path starts '
            f"with / and has at most {MAX_PATH} visible characters, no spaces)",
        )
    )
    repeat: int = field(
        default=1,
        metadata=check(lambda n: 1 <= n <= MAX_REPEAT, f"must be from 1 to {MAX_REPEAT:,}"),
    )
    think: LatencyModel = field(
        default=NO_TIME,
        metadata=check(_think_ok, f"must have a mean of at most {MAX_THINK:g} seconds"),
    )
    # The JSON body (a table, list, string or number); none when not given, but a login's,
    # which defaults to a user's credentials.
    body: Any | None = field(
        default=None,
        metadata=check(_body_ok, f"must be JSON of at most {MAX_BODY:,} bytes"),
    )
    # The status that counts as served; 0: any 2xx.
    status: int = field(
        default=0, metadata=check(lambda s: s == 0 or 100 <= s <= 599, "must be 0 or 100 to 599")
    )
    name: str = field(
        default="",
        metadata=check(
            lambda n: n == "" or bool(_NAME.match(n)),
            "must be 1 to 40 lowercase letters, digits, '-' or '_'",
        ),
    )

    @property
    def method(self) -> str:
        return self.request.partition(" ")[0]

    @property
    def path(self) -> str:
        return self.request.partition(" ")[2]

    @property
    def logs_in(self) -> bool:
        return (self.method, self.path) == LOGIN

    def served(self, status: int | None) -> bool:
        """Whether an answer of `status` counts as served."""
        if status is None:
            return False
        return status == self.status if self.status else 200 <= status < 300


@dataclass(frozen=True)
class Flow:
    """A user's journey: its steps in order, drawn by `weight` among the load's flows."""

    name: str = field(
        metadata=check(
            lambda n: bool(_NAME.match(n)), "must be 1 to 40 lowercase letters, digits, '-' or '_'"
        )
    )
    steps: tuple[Step, ...] = field(
        metadata=check(lambda s: 1 <= len(s) <= MAX_STEPS, f"must list 1 to {MAX_STEPS} steps")
    )
    weight: int = field(
        default=1,
        metadata=check(lambda w: 0 <= w <= MAX_WEIGHT, f"must be from 0 to {MAX_WEIGHT:,}"),
    )

    @property
    def requests(self) -> int:
        """Requests one run of the flow sends."""
        return sum(step.repeat for step in self.steps)

    @property
    def logs_in(self) -> bool:
        return any(step.logs_in for step in self.steps)

    def step_names(self) -> list[str]:
        """Each step's name: its own, or its request in words (`get-data`), numbered
        (`get-data-2`) when the flow has that name already."""
        names: list[str] = []
        for step in self.steps:
            base = step.name or _slug(step.request)
            name, n = base, 1
            while name in names:
                n += 1
                name = f"{base[:37]}-{n}"
            names.append(name)
        return names


def _slug(request: str) -> str:
    """`POST /login?x=1` -> `post-login`: the request as a name of a report's figure."""
    method, _, path = request.partition(" ")
    words = re.sub(r"[^a-z0-9]+", "-", path.split("?")[0].lower()).strip("-")
    return f"{method.lower()}-{words}"[:40].rstrip("-") if words else method.lower()


def check_flows(flows: tuple[Flow, ...], where: str) -> None:
    """ConfigError naming `where` (e.g. "x.toml: load.flows") unless the flows fit
    together: at most MAX_FLOWS, names unique, steps named uniquely, a weight above 0."""
    if len(flows) > MAX_FLOWS:
        raise ConfigError(f"{where}: at most {MAX_FLOWS} flows (got {len(flows)})")
    seen: set[str] = set()
    for i, flow in enumerate(flows):
        if flow.name in seen:
            raise ConfigError(f"{where}[{i}].name: {flow.name!r} is used twice")
        seen.add(flow.name)
        names = flow.step_names()
        for j, step in enumerate(flow.steps):
            if step.name and names[j] != step.name:  # an earlier step has that name
                raise ConfigError(f"{where}[{i}].steps[{j}].name: {step.name!r} is used twice")
    if flows and not any(flow.weight for flow in flows):
        raise ConfigError(f"{where}: at least one flow needs a weight above 0")


def weights(flows: tuple[Flow, ...]) -> dict[str, int]:
    """Each flow's weight, by name, in the file's order."""
    return {flow.name: flow.weight for flow in flows}


def describe(flows: tuple[Flow, ...]) -> str:
    """The flows in words, for a report: `shopper (weight 3, 7 requests), ...`."""
    return ", ".join(
        f"{f.name} (weight {f.weight}, {f.requests} request{'s' * (f.requests != 1)})"
        for f in flows
    )
