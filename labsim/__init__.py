"""labsim: the load-balancing and caching lab, whole, in one Python process.

Every component is its own aiohttp application on its own real port, all on one event
loop and one shared clock (real or virtual).
"""

from importlib import import_module
from typing import Any

# Imported on first use, so `python -m labsim --bad-option` answers before aiohttp loads.
_EXPORTS = {
    "bench": "api",
    "check": "api",
    "load_scenario": "api",
    "serve": "api",
    "Lab": "api",
    "BenchOptions": "run",
    "BenchResult": "run.result",
    "Scenario": "scenario",
    "Clock": "clock",
    "RealClock": "clock",
    "StalledError": "clock",
    "VirtualClock": "clock",
    "Cluster": "cluster",
    "ClusterError": "cluster",
    "ConfigError": "config",
    "Topology": "config",
    "load_topology": "config",
}

__all__ = [
    "BenchOptions",
    "BenchResult",
    "Clock",
    "Cluster",
    "ClusterError",
    "ConfigError",
    "Lab",
    "RealClock",
    "Scenario",
    "StalledError",
    "Topology",
    "VirtualClock",
    "bench",
    "check",
    "load_scenario",
    "load_topology",
    "serve",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'labsim' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
