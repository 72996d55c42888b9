"""labsim: the load-balancing and caching lab, whole, in one Python process.

Every component is its own aiohttp application on its own real port, all on one event
loop and one shared clock (real or virtual).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .core.version import __version__ as __version__

if TYPE_CHECKING:  # what type checkers and editors see; at run time, `__getattr__` below
    from .api import Lab, bench, check, load_scenario, serve
    from .components.cluster import Cluster, ClusterError
    from .core.clock import Clock, RealClock, StalledError, VirtualClock
    from .model.config import ConfigError, Topology
    from .model.result import BenchResult
    from .model.scenario import Scenario
    from .model.topology import load_topology
    from .run import BenchOptions

# Imported on first use, so `python -m labsim --bad-option` answers before aiohttp loads.
_EXPORTS = {
    "bench": "api",
    "check": "api",
    "load_scenario": "api",
    "serve": "api",
    "Lab": "api",
    "BenchOptions": "run",
    "BenchResult": "model.result",
    "Scenario": "model.scenario",
    "Clock": "core.clock",
    "RealClock": "core.clock",
    "StalledError": "core.clock",
    "VirtualClock": "core.clock",
    "Cluster": "components.cluster",
    "ClusterError": "components.cluster",
    "ConfigError": "model.config",
    "Topology": "model.config",
    "load_topology": "model.topology",
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


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'labsim' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    """The public names (imported on first use) and the module's own dunders."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
