"""When `up` finds a port taken: a `--port-offset` whose ports are all free, to suggest.

The offsets tried stay below the kernel's ephemeral range, where the system hands out
ports to outgoing connections: a lab moved there could find its ports taken at random.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

# Linux's own default, where /proc does not say.
EPHEMERAL_START = 32768
RANGE_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
STEP = 100  # round offsets: 5000 -> 5100, easy to remember


def ephemeral_start(path: str = RANGE_FILE) -> int:
    """The first port of the kernel's ephemeral range."""
    try:
        with open(path, encoding="ascii") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return EPHEMERAL_START


def is_free(host: str, port: int) -> bool:
    """Whether a server could listen on `host`:`port` now (as aiohttp binds: reusing an
    address in TIME_WAIT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host.strip("[]"), port))
        except OSError:
            return False
    return True


def free_offset(ports: Mapping[int, str], offset: int, limit: int | None = None) -> int | None:
    """The smallest `--port-offset` past `offset`, a multiple of STEP, that puts every one
    of `ports` (port -> host it binds) on a free port below `limit` (the ephemeral range's
    start); None if there is none, or if no port is taken now."""
    limit = ephemeral_start() if limit is None else limit
    if not ports or all(is_free(host, port) for port, host in ports.items()):
        return None  # the failure was something else: no offset would help
    top = max(ports)
    for extra in range(STEP, limit - top, STEP):
        if all(is_free(host, port + extra) for port, host in ports.items()):
            return offset + extra
    return None
