"""What a user sees, kept exactly: reports of fixed runs compared with saved ones.

`tests/golden/` holds the text, JSON and HTML reports of a few runs on the virtual clock
(the lab's load test, a heavier mix, every shipped scenario). A run repeats exactly, so
any difference is a change in what labsim prints; only wall-clock figures (and the
progress lines a slow machine prints) are masked.
After an intended change, regenerate them with `python tests/test_golden.py`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parent.parent
WALL = re.compile(r"\d+\.\d+ s wall")
# A progress line comes every 5 s of wall time: whether a run prints one is the machine's.
PROGRESS = re.compile(r"^labsim: [^\n]* requests answered[^\n]*\n", re.M)

# name -> (labsim arguments, the files the run writes besides stdout)
RUNS = {
    "lab": (["bench", "--requests", "100"], ("json", "html")),
    "mix": (
        [
            "bench",
            "--requests",
            "3000",
            "--concurrency",
            "100",
            "--mix",
            "data=50,longtask=30,process=20",
            "--db-latency",
            "0.7",
        ],
        ("json",),
    ),
    "run": (["run", *sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("scenarios/*.toml"))], ()),
    "gateway-failure": (["bench", "--scenario", "scenarios/gateway-failure.toml"], ()),
}


def _run(name: str, folder: Path) -> dict[str, str]:
    """The outputs of one run: its stdout, stderr and written files, wall time masked."""
    args, files = RUNS[name]
    written = []
    for kind in files:
        written += [f"--{kind}", str(folder / f"{name}.{kind}")]
    done = subprocess.run(
        [sys.executable, "-m", "labsim", *args, *written],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    outputs = {"txt": done.stdout, "err": PROGRESS.sub("", done.stderr)}
    for kind in files:
        outputs[kind] = (folder / f"{name}.{kind}").read_text()
    if "json" in outputs:
        report = json.loads(outputs["json"])
        report["time"].pop("wall_s")
        outputs["json"] = json.dumps(report, indent=2) + "\n"
    return {kind: WALL.sub("- s wall", text) for kind, text in outputs.items() if text}


@pytest.mark.parametrize("name", RUNS)
def test_reports_are_unchanged(name, tmp_path):
    outputs = _run(name, tmp_path)
    saved = {p.suffix[1:]: p.read_text() for p in GOLDEN.glob(f"{name}.*")}
    assert sorted(outputs) == sorted(saved)
    for kind, text in outputs.items():
        assert text == saved[kind], f"{name}.{kind} differs from tests/golden/{name}.{kind}"


if __name__ == "__main__":  # regenerate
    import tempfile

    GOLDEN.mkdir(exist_ok=True)
    for old in GOLDEN.iterdir():
        old.unlink()
    with tempfile.TemporaryDirectory() as folder:
        for run in RUNS:
            for kind, text in _run(run, Path(folder)).items():
                (GOLDEN / f"{run}.{kind}").write_text(text)
