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
    "db": ("GET", "/db", 200, None),
}
# Endpoints sent straight to a component, past the entry: the kind of component.
DIRECT = {"db": "database"}
# Endpoints that read a key, to which a load with keys (`keys.py`) adds `?key=`.
KEYED = ("data",)
LAB_MIX = {"data": 50, "longtask": 50}
# How the load gets its token: `/login`, forged with the guide's public secret, or none.
AUTH = ("login", "forged", "none")
# What runs the load: real HTTP between aiohttp apps, or the model engine (`run/model_engine.py`).
ENGINES = ("http", "model")


def parse_mix(text: str) -> dict[str, int]:
    """`data=50,longtask=50` -> {"data": 50, "longtask": 50}; ValueError names the bad part."""
    mix: dict[str, int] = {}
    for part in text.split(","):
        name, sep, weight = part.strip().partition("=")
        if name in mix:
            raise ValueError(f"endpoint {name!r} is given twice")
        if name in ENDPOINTS and (not sep or not weight.strip().isdigit()):
            raise ValueError(
                f"weight of {name!r} must be a whole number, 0 or more (got {weight!r})"
            )
        mix[name] = int(weight) if name in ENDPOINTS else 0
    check_mix(mix)
    return mix


def check_mix(mix: dict[str, int]) -> None:
    """ValueError unless every endpoint is known, no weight is negative and one is above 0."""
    for name, weight in mix.items():
        if name not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {name!r} (known: {', '.join(ENDPOINTS)})")
        if weight < 0:
            raise ValueError(f"weight of {name!r} must be 0 or more (got {weight})")
    if not any(mix.values()):
        raise ValueError("at least one weight must be above 0")


def plan(requests: int, mix: dict[str, int]) -> list[tuple[str, int]]:
    """Split `requests` over the mix by weight (largest remainder), in the mix's order."""
    total = sum(mix.values())
    shares = {name: requests * weight / total for name, weight in mix.items()}
    counts = {name: int(share) for name, share in shares.items()}
    left = requests - sum(counts.values())
    for name in sorted(mix, key=lambda n: -(shares[n] - counts[n]))[:left]:
        counts[name] += 1
    return [(name, n) for name, n in counts.items() if n]
