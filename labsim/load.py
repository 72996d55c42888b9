"""The load the bench sends: its endpoints, the mix of them, and how requests split over it.

Plain data and functions only (no I/O), so the CLI can check a mix before anything starts.
"""

from __future__ import annotations

from typing import Any

# endpoint -> (method, path, expected status, JSON body)
ENDPOINTS: dict[str, tuple[str, str, int, Any]] = {
    "data": ("GET", "/data", 200, None),
    "longtask": ("POST", "/longtask", 202, {"task": "report"}),
    "process": ("GET", "/process", 200, None),
}
LAB_MIX = {"data": 50, "longtask": 50}


def parse_mix(text: str) -> dict[str, int]:
    """`data=50,longtask=50` -> {"data": 50, "longtask": 50}; ValueError names the bad part."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        if name not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {name!r} (known: {', '.join(ENDPOINTS)})")
        if not sep or not weight.strip().isdigit():
            raise ValueError(
                f"weight of {name!r} must be a whole number, 0 or more (got {weight!r})"
            )
        mix[name] = int(weight)
    if not any(mix.values()):
        raise ValueError(f"at least one weight must be above 0 (got {text!r})")
    return mix


def plan(requests: int, mix: dict[str, int]) -> list[tuple[str, int]]:
    """Split `requests` over the mix by weight (largest remainder), in the mix's order."""
    total = sum(mix.values())
    shares = {name: requests * weight / total for name, weight in mix.items()}
    counts = {name: int(share) for name, share in shares.items()}
    left = requests - sum(counts.values())
    for name in sorted(mix, key=lambda n: -(shares[n] - counts[n]))[:left]:
        counts[name] += 1
    return [(name, n) for name, n in counts.items() if n]
