"""The course guide's compatibility profile: its public token secret, and a forged token.

The guide's gateway signs and checks tokens with the literal secret "secret", asks for no
claims, and answers 403 when a token is missing or bad. Clients that students wrote
against it hard-code such tokens. `[auth] mode = "guide"` reproduces that on purpose, as
an opt-in: with a secret anyone can read, anyone can forge a token (for any user, with any
claims), so labsim warns whenever it is on, and every command that starts it refuses a
non-loopback address without `--insecure`. Nothing else in labsim uses this secret; the
default signs with a random key made per run.
"""

from __future__ import annotations

import ipaddress
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import jwt
from jwt.warnings import InsecureKeyLengthWarning

if TYPE_CHECKING:
    from .config import Topology

# Public by design: the course guide prints it. Only the guide profile uses it.
GUIDE_SECRET = "secret"

WARNING = (
    "labsim: WARNING: the guide profile is on: tokens are signed with the course guide's "
    'public secret "secret", so anyone can forge a token for any user '
    "(scenarios/forged-token.toml shows it). Keep it on your own machine."
)
NO_TOKEN_WARNING = (
    "labsim: WARNING: auth.required = false: the gateways serve anyone, with or without a token."
)


def forged_token() -> str:
    """What an attacker makes with the public secret: an admin's token, no expiry."""
    claims = {"sub": "admin", "username": "admin", "role": "admin"}
    with short_key_allowed():
        return jwt.encode(claims, GUIDE_SECRET, algorithm="HS256")


@contextmanager
def short_key_allowed() -> Iterator[None]:
    """No warning from pyjwt about the guide's 6-byte secret: `up` warns once, louder."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        yield


def public_door(topology: Topology) -> str | None:
    """Under the guide profile, the first component a token goes through (the load
    balancer, a gateway) whose address is not this machine's only; None otherwise."""
    if topology.auth.mode != "guide":
        return None
    graph = topology.graph()
    doors = [graph.entry_replica(), *graph.of_kind("gateway")]
    return next((d for d in doors if not is_loopback(topology.host_of(d))), None)


def is_loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything
