"""How many connections this process's file descriptors leave room for (`RLIMIT_NOFILE`).

Every connection a component accepts takes a descriptor, and so does every connection
labsim's own clients open (the hops between components, the bench's); a hop between two
components of one process takes two, one at each end. Past the limit, the kernel refuses
the next one, whoever it is for (`accept` and `connect` fail with EMFILE).
"""

from __future__ import annotations

try:
    import resource
except ImportError:  # Windows has none: no limit to read, none to keep within
    resource = None  # type: ignore[assignment]

# Descriptors kept for the process's own files: the standard streams, the event loop's
# selector and self-pipe, log and output files, imports. A started lab holds about 20.
FILES = 64


def soft_limit() -> int | None:
    """How many descriptors this process may open (`ulimit -n`); None if unlimited."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def outside_share(listening: int) -> int | None:
    """How many connections from outside the `listening` servers of this process may hold
    together: half the descriptors left beside FILES and the listening sockets. The other
    half is kept for labsim's own connections, which take two each in one process, so that
    no outsider can leave a hop without a descriptor. None: no limit to keep within."""
    soft = soft_limit()
    if soft is None:
        return None
    return max(1, (soft - FILES - listening) // 2)


def make_room(need: int) -> int | None:
    """Raise the soft limit toward `need` if it is below, as far as the hard limit allows
    (a process may, without privileges); the soft limit then (None: unlimited)."""
    soft = soft_limit()
    if soft is None or soft >= need or resource is None:
        return soft
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The whole hard limit, as Go's runtime takes at start: room for outsiders too. Some
    # systems refuse an unlimited soft limit, or one past their own cap: then `need`.
    for wanted in (hard, need) if hard != resource.RLIM_INFINITY else (need,):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            break
        except (ValueError, OSError):
            continue
    return soft_limit()
