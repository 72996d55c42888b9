"""The lab's own load-test script, unchanged, against `python -m labsim up`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import Up, free_ports, write_scenario

LAB_SCRIPT = Path(__file__).parent / "lab" / "load_test.py"


def test_the_labs_load_test_runs_unchanged(tmp_path):
    ports = free_ports(8)
    up = Up("--scenario", str(write_scenario(tmp_path / "s.toml", ports)), "--quiet")
    try:
        result = subprocess.run(
            [sys.executable, str(LAB_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "LAB_URL": f"http://127.0.0.1:{ports[0]}"},
        )
    finally:
        up.stop()
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("Autenticación Satisfactoria. Token: ey")
    data = re.findall(
        r"\[DATA\] Request \d+: Status 200, "
        r"Response: \{'cached': (\w+), 'data': 'Fetched fresh data from DB', "
        r"'gateway_id': 'gateway-\d+'\}",
        out,
    )
    tasks = re.findall(
        r"\[LONGTASK\] Request \d+: Status 202, Response: \{'status': 'Task queued'", out
    )
    assert sorted(data) == ["False"] * 10 + ["True"] * 40
    assert len(tasks) == 50
    assert "Todas las solicitudes completadas en" in out
