"""labsim: the load-balancing and caching lab, whole, in one Python process.

Every component is its own aiohttp application on its own real port, all on one event
loop and one shared clock (real or virtual).
"""

from .clock import Clock, RealClock, StalledError, VirtualClock
from .cluster import Cluster, ClusterError
from .config import ConfigError, Topology, load_topology

__all__ = [
    "Clock",
    "Cluster",
    "ClusterError",
    "ConfigError",
    "RealClock",
    "StalledError",
    "Topology",
    "VirtualClock",
    "load_topology",
]

__version__ = "0.1.0"
