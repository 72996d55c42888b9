"""The scenarios that ship with labsim, by name: `--scenario lab`, `run saturation`.

They are the repository's top-level `scenarios/` folder, which an installed labsim
carries as `labsim/scenarios/` (pyproject's package-dir); a checkout, or an editable
install, reads the folder itself. A path that exists always wins over a name.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path

SUFFIX = ".toml"


def folder() -> Traversable:
    """Where the shipped scenarios are: in the installed package, else in the checkout.

    Found from `labsim`'s own files, not by importing `labsim.scenarios`: an editable
    install's import hook maps that name to the checkout it was installed from, which need
    not be the one this labsim runs from (a second worktree on PYTHONPATH)."""
    packaged = resources.files("labsim") / "scenarios"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "scenarios"  # labsim/model/ -> the checkout


def names() -> list[str]:
    """Every shipped scenario's name (its file name without `.toml`), sorted."""
    place = folder()
    if not place.is_dir():
        return []
    files = (entry.name for entry in place.iterdir() if entry.is_file())
    return sorted(name.removesuffix(SUFFIX) for name in files if name.endswith(SUFFIX))


def find(path: str | Path) -> Traversable | None:
    """The shipped scenario named `path` ("lab"), unless a file `path` exists here."""
    name = str(path)
    if os.path.lexists(name) or name not in names():
        return None
    return folder() / f"{name}{SUFFIX}"


def is_name(path: str | Path) -> bool:
    """Whether `path` reads as a scenario's name rather than a file's path."""
    text = str(path)
    return bool(text) and os.sep not in text and "/" not in text and not text.endswith(SUFFIX)


def descriptions() -> list[tuple[str, str]]:
    """(name, description) of every shipped scenario, by name."""
    rows = []
    for name in names():
        data = tomllib.loads((folder() / f"{name}{SUFFIX}").read_text(encoding="utf-8"))
        rows.append((name, str(data.get("description", ""))))
    return rows
