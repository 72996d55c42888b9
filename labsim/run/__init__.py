"""Everything about "a run": its session, its load, its faults, its samples, its result.

`execute` (or `run_bench` inside an event loop) runs one bench and returns a typed
`BenchResult`; `run_scenario` runs a scenario file's variants and checks their
expectations. The CLI, the dashboard and the tests all go through here.
"""

from importlib import import_module
from typing import Any

# Imported on first use, so reading this package does not pull in aiohttp.
_EXPORTS = {
    "BenchError": ".session",
    "BenchOptions": ".session",
    "BenchResult": "..model.result",  # the typed result is the model's
    "ScenarioRun": ".scenarios",
    "execute": ".bench",
    "run_bench": ".bench",
    "run_scenario": ".scenarios",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'labsim.run' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
