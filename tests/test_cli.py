"""`python -m labsim` as a user runs it: up in a subprocess, and every user mistake."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import aiohttp
import pytest

from labsim.cli.ports import ephemeral_start, is_free

from .conftest import Up, free_ports, write_scenario


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "labsim", *args], capture_output=True, text=True, timeout=timeout
    )


async def _use(url: str) -> list[tuple[int, dict]]:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{url}/login", json={"username": "user1", "password": "password123"}
        ) as resp:
            token = (await resp.json())["token"]
        answers = []
        for method, path in (("GET", "/data"), ("GET", "/data"), ("POST", "/longtask")):
            async with http.request(
                method, url + path, json={}, headers={"Authorization": token}
            ) as resp:
                answers.append((resp.status, await resp.json()))
        return answers


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_then_stops_cleanly(tmp_path, sig):
    ports = free_ports(8)
    up = Up("--scenario", str(write_scenario(tmp_path / "s.toml", ports)))
    try:
        banner = "".join(up.banner)
        assert f"http://127.0.0.1:{ports[0]}" in banner and "gateway-" in banner
        answers = asyncio.run(_use(f"http://127.0.0.1:{ports[0]}"))
    finally:
        started = time.monotonic()
        code, out, err = up.stop(sig)
        took = time.monotonic() - started
    assert [a[0] for a in answers] == [200, 200, 202]
    assert answers[0][1]["cached"] is False and answers[1][1]["cached"] is True
    assert code == 0 and took < 2, (code, took, err)
    assert "labsim: stopped" in out and "Traceback" not in err + out
    # The scenario's own user and password, ready to paste, as the lab's README gives them.
    assert '\'{"username": "user1", "password": "password123"}\'' in banner
    assert "GET /data 200" in out  # one access line per request per component


def test_up_quiet_has_no_access_lines(tmp_path):
    ports = free_ports(8)
    up = Up("--scenario", str(write_scenario(tmp_path / "s.toml", ports)), "--quiet")
    try:
        asyncio.run(_use(f"http://127.0.0.1:{ports[0]}"))
    finally:
        code, out, _ = up.stop()
    assert code == 0 and "GET /data" not in out


def test_up_reports_unfinished_tasks_on_shutdown(tmp_path):
    ports = free_ports(8)
    scenario = write_scenario(tmp_path / "s.toml", ports).read_text()
    scenario = scenario.replace("task_duration = 0.05", "task_duration = 60")
    (tmp_path / "slow.toml").write_text(scenario)
    up = Up("--scenario", str(tmp_path / "slow.toml"), "--quiet")
    try:
        asyncio.run(_use(f"http://127.0.0.1:{ports[0]}"))
    finally:
        code, out, _ = up.stop()
    assert code == 0
    assert "worker: 1 task(s) unfinished at shutdown (1 running, 0 queued): task-1" in out


def test_port_in_use_is_one_line_exit_2_and_nothing_left_listening(tmp_path):
    ports = free_ports(8)
    scenario = write_scenario(tmp_path / "s.toml", ports)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports[2]))  # the second gateway's port
    blocker.listen()
    try:
        result = run_cli("up", "--scenario", str(scenario))
    finally:
        blocker.close()
    assert result.returncode == 2
    # These ports are the kernel's ephemeral ones: no offset would move the lab below them.
    assert result.stderr == (
        f"labsim: error: cannot start gateway-{ports[2]}: "
        f"port {ports[2]} on 127.0.0.1 is already in use\n"
    )
    for port in ports:  # every component that had started was stopped again
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def _free_below_ephemeral(n: int) -> list[int]:
    """n consecutive ports below the ephemeral range, free a moment ago."""
    for base in range(20_000, 30_000, 500):
        ports = list(range(base, base + n))
        if all(is_free("127.0.0.1", port) for port in ports):
            return ports
    pytest.skip("no free ports from 20000 to 30000")


def test_a_port_in_use_suggests_an_offset_whose_ports_are_free(tmp_path):
    ports = _free_below_ephemeral(8)
    scenario = write_scenario(tmp_path / "s.toml", ports)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports[2]))  # the second gateway's port
    blocker.listen()
    try:
        result = run_cli("up", "--scenario", str(scenario), "--no-dashboard")
    finally:
        blocker.close()
    assert result.returncode == 2
    said = re.fullmatch(
        f"labsim: error: cannot start gateway-{ports[2]}: "
        f"port {ports[2]} on 127.0.0.1 is already in use; "
        r"--port-offset (\d+) moves the lab to free ports \((\d+) to (\d+)\)\n",
        result.stderr,
    )
    assert said, result.stderr
    offset, low, high = (int(n) for n in said.groups())
    moved = [port + offset for port in ports]
    assert (low, high) == (min(moved), max(moved))
    assert high < ephemeral_start()  # where no outgoing connection takes them at random
    assert all(is_free("127.0.0.1", port) for port in ports + moved)


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` listens on (Linux: its socket inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").rstrip("]"))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and inode in inodes:  # 0A: LISTEN
                    ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def test_up_serves_the_dashboard_with_the_token_only_in_the_link(tmp_path):
    *ports, panel = free_ports(9)
    up = Up(
        "--scenario",
        str(write_scenario(tmp_path / "s.toml", ports)),
        "--dashboard-port",
        str(panel),
    )
    try:
        listening = listening_ports(up.proc.pid)
        banner = "".join(up.banner)
        token = re.search(r"Admin token for the fault API .*: (\S+)", banner)[1]
        base = f"http://127.0.0.1:{panel}"
        with urllib.request.urlopen(f"{base}/") as resp:
            page = resp.read().decode()
        action = urllib.request.Request(
            f"{base}/api/faults/cache",
            data=b'{"latency": 0}',
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(action) as resp:
            assert resp.status == 200
    finally:
        code, out, err = up.stop()
    assert listening == {*ports, panel}
    assert f"Dashboard: {base}/#token={token}\n" in banner
    assert "<title>labsim dashboard</title>" in page
    assert code == 0
    assert "dashboard: cache /admin/faults" in out and "POST /admin/faults 200" in out
    assert token not in out + err  # the log shows the action, never the token


def test_no_dashboard_listens_only_on_the_components_ports(tmp_path):
    ports = free_ports(8)
    up = Up("--scenario", str(write_scenario(tmp_path / "s.toml", ports)), "--no-dashboard")
    try:
        listening = listening_ports(up.proc.pid)
    finally:
        code, out, _ = up.stop()
    assert listening == set(ports)
    assert code == 0 and "Dashboard" not in out


def test_dashboard_port_in_use_is_one_line_exit_2_and_nothing_left_listening(tmp_path):
    *ports, panel = free_ports(9)
    scenario = write_scenario(tmp_path / "s.toml", ports)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", panel))
    blocker.listen()
    try:
        result = run_cli("up", "--scenario", str(scenario), "--dashboard-port", str(panel))
    finally:
        blocker.close()
    assert result.returncode == 2
    assert result.stderr == (
        f"labsim: error: cannot start the dashboard: port {panel} on 127.0.0.1 is already in use\n"
    )
    for port in [*ports, panel]:  # every component was stopped again
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["up", "--gateways", "0"], "--gateways"),
        (["up", "--gateways", "many"], "'many'"),
        (["up", "--db-latency", "-1"], "--db-latency"),
        (["up", "--db-latency", "inf"], "'inf'"),
        (["up", "--db-latency", "nan"], "'nan'"),
        (["up", "--host", ""], "host: must name an address"),
        (["up", "--dashboard-port", "0"], "--dashboard-port: must be a port number from 1"),
        (["up", "--dashboard-port", "65536"], "'65536'"),
        (["up", "--dashboard-port", "web"], "'web'"),
        (["up", "--dashboard-port", "8000"], "--dashboard-port 8000: that is load-balancer's"),
        (["up", "--dashboard-port", "9000", "--no-dashboard"], "not allowed with"),
        (["bench", "--requests", "99999999999999999999"], "--requests"),
        (["bench", "--json", ""], "--json ''"),
        (["bench", "--json", "/tmp"], "give a file name"),
        (["bench", "--mix", "data=1,data=2"], "given twice"),
        (["up", "--scenario", "no/such.toml"], "no/such.toml"),
        (["up", "--bogus"], "--bogus"),
        (["bench", "--requests", "-5"], "--requests"),
        (["bench", "--requests", "abc"], "'abc'"),
        (["bench", "--concurrency", "0"], "--concurrency"),
        (["bench", "--concurrency", "100000"], "--concurrency: must be from 1 to 10,000"),
        (["bench", "--max-in-flight", "5"], "--max-in-flight needs --rate"),
        (["bench", "--arrivals", "constant"], "--arrivals needs --rate"),
        (["bench", "--duration", "2"], "--duration needs --rate"),
        (
            ["bench", "--requests", "5", "--rate", "10", "--duration", "2"],
            "--requests and --duration",
        ),
        (["bench", "--rate", "10", "--concurrency", "5"], "--concurrency applies to a closed load"),
        (["bench", "--rate", "-1"], "--rate: must be 0 or more"),
        (["bench", "scenarios/stampede.toml"], "choose one with --variant NAME"),
        (["bench", "scenarios/stampede.toml", "--variant", "fast"], "--variant 'fast': scenarios/"),
        (["bench", "scenarios/lab.toml", "--scenario", "x.toml"], "give the scenario once"),
        (["bench", "--variant", "fast"], "--variant fast: give the scenario file that has it"),
        (["bench", "--gateways", "1000000000"], "--gateways 1000000000: at most 100"),
        (["bench", "--timeout", "0"], "--timeout"),
        (["bench", "--scenario", "/dev/zero"], "/dev/zero: larger than 1,048,576 bytes"),
        (["bench", "--clock", "sundial"], "'sundial'"),
        (["bench", "--mix", "data=1,lunch=2"], "'lunch'"),
        (["bench", "--mix", "data=x"], "'x'"),
        (["bench", "--mix", "data=0"], "at least one weight"),
        (["bench", "--seed", "-1"], "--seed"),
        (["bench", "--target", "ftp://x"], "ftp://x"),
        (["bench", "--target", "http://127.0.0.1:9", "--clock", "virtual"], "--clock virtual"),
        (["bench", "--json", "/no/such/dir/r.json"], "/no/such/dir"),
        (["bench", "--scenario", "no/such.toml"], "no/such.toml"),
        (["launch"], "'launch'"),
        ([], "COMMAND"),
    ],
)
def test_user_mistakes_are_one_line_exit_2(args, named):
    result = run_cli(*args)
    assert result.returncode == 2, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and named in lines[0], result.stderr


def test_invalid_scenario_names_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[database]\nlatency = -2\n")
    result = run_cli("up", "--scenario", str(bad))
    assert result.returncode == 2
    assert result.stderr == (
        f"labsim: error: {bad}: database.latency: latency cannot be negative (got -2)\n"
    )


def test_short_secret_is_refused():
    result = subprocess.run(
        [sys.executable, "-m", "labsim", "bench"],
        capture_output=True,
        text=True,
        env={"LABSIM_SECRET": "short", "PATH": ""},
    )
    assert result.returncode == 2 and "LABSIM_SECRET" in result.stderr


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (
            "up",
            [
                "--scenario",
                "--gateways",
                "--db-latency",
                "--host",
                "--quiet",
                "--dashboard-port",
                "--no-dashboard",
            ],
        ),
        (
            "bench",
            [
                "--requests",
                "--concurrency",
                "--mix",
                "--scenario",
                "--seed",
                "--clock",
                "--target",
                "--json",
                "--verbose",
            ],
        ),
    ],
)
def test_help_lists_every_option_with_its_default(command, options):
    result = run_cli(command, "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for option in options:
        assert option in text
    assert text.count("(default") >= len(options)


def test_bench_target_against_a_running_up(tmp_path):
    ports = free_ports(8)
    up = Up("--scenario", str(write_scenario(tmp_path / "s.toml", ports)), "--quiet")
    try:
        result = run_cli(
            "bench",
            "--target",
            f"http://127.0.0.1:{ports[0]}",
            "--requests",
            "30",
            "--json",
            str(tmp_path / "r.json"),
        )
    finally:
        up.stop()
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["clock"] == "real" and report["target"] == f"http://127.0.0.1:{ports[0]}"
    assert report["requests"]["ok"] == 30
    assert report["cache"]["misses"] >= 1 and report["cache"]["hits"] >= 1
    assert sum(report["gateways"].values()) == 30 and len(report["gateways"]) == 3
    assert report["db_calls"] is None  # the remote's own figures are not known here
    assert report["seed"] is None and report["speedup"]["predicted"] is None
    assert "scenario and seed: the running topology's" in result.stdout


def test_bench_target_unreachable_is_one_line_exit_2():
    port = free_ports(1)[0]
    result = run_cli("bench", "--target", f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr.startswith(f"labsim: error: cannot reach http://127.0.0.1:{port}")
    assert len(result.stderr.splitlines()) == 1


def test_a_reader_that_stops_early_gets_no_traceback():
    # `python -m labsim bench --verbose | head -1`: the pipe closes under the report.
    bench = subprocess.Popen(
        [sys.executable, "-m", "labsim", "bench", "--requests", "200", "--verbose"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    bench.stdout.readline()
    bench.stdout.close()
    err = bench.stderr.read()
    assert bench.wait(timeout=60) == 1
    assert "Traceback" not in err and "BrokenPipe" not in err, err


@pytest.mark.parametrize("variable", ["LABSIM_ADMIN_TOKEN", "LABSIM_INTERNAL_TOKEN"])
def test_a_secret_that_travels_in_a_header_is_refused_with_a_line_break(variable):
    result = subprocess.run(
        [sys.executable, "-m", "labsim", "bench", "--requests", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, variable: "a" * 40 + "\nb"},
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (
        f"labsim: error: {variable} must be printable ASCII without spaces or line breaks: "
        "it travels in an HTTP header\n"
    )


@pytest.mark.parametrize("command", ["up", "bench", "run", "sweep", "compare", "export"])
def test_help_says_what_each_exit_code_means(command):
    text = " ".join(run_cli(command, "--help").stdout.split())
    codes = text[text.index("exit codes:") :]
    assert codes.startswith("exit codes: 0 ") and "; 2 a " in codes
    if command in ("bench", "run", "sweep"):
        assert "130 stopped by Ctrl-C or SIGTERM" in codes
    if command == "bench":
        assert "1 any request failed" in codes and "a --threshold adds a condition" in codes
    if command == "run":
        assert "1 an expectation failed" in codes and "'failures == 0'" in codes


NAMED = """
name = "demo"
description = "a scenario with a name of its own"
[database]
latency = 0.01
[[variants]]
name = "one"
[[variants]]
name = "two"
cache = { ttl = 5 }
"""


def test_bench_takes_the_file_as_its_argument_and_a_variant_and_names_the_scenario(
    tmp_path, capsys
):
    from labsim.cli import main

    path = tmp_path / "bar.toml"
    path.write_text(NAMED)
    report, page = tmp_path / "r.json", tmp_path / "r.html"
    argv = [str(path), "--variant", "two", "--requests", "4", "--json", str(report)]
    assert main(["bench", *argv, "--html", str(page)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("labsim bench: clock virtual, scenario demo (two), seed 1")
    assert out[1] == "about       a scenario with a name of its own"
    saved = json.loads(report.read_text())
    assert (saved["scenario"], saved["description"]) == ("demo (two)", NAMED.split('"')[3])
    html = page.read_text()
    assert "<title>labsim bench: scenario demo (two)</title>" in html
    assert '<p class="lead">a scenario with a name of its own. 4 requests' in html
    assert "bar.toml" not in html + str(saved)


def test_run_ends_with_a_tally_of_expectations_and_files(tmp_path, capsys):
    from labsim.cli import main

    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    quick = "[database]\nlatency = 0.01\n[load]\nrequests = 4\n"
    good.write_text('expect = ["requests.ok == 4", "db_calls >= 1"]\n' + quick)
    bad.write_text('expect = ["requests.ok == 5"]\n' + quick)
    assert main(["run", str(good), str(bad)]) == 1
    assert capsys.readouterr().out.splitlines()[-1] == "2 passed, 1 failed, 2 scenario files"


def _stopped_by_sigterm(args: list[str], first: str, until: str = "") -> tuple[int, str, str]:
    """Start `python -m labsim ARGS`, wait for its first line on `first` (stdout or
    stderr) that starts with `until`, send SIGTERM, and return (exit code, stdout, stderr)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "labsim", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        seen = ""
        for line in getattr(proc, first):
            seen += line
            if line.startswith(until):
                break
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, seen + out if first == "stdout" else out, seen + err


def test_sigterm_stops_bench_as_ctrl_c_does_with_the_report_of_what_finished():
    # --verbose: a line per answered request; the signal comes after the first one.
    args = ["bench", "--requests", "1000000", "--mix", "data=1", "--verbose"]
    code, out, err = _stopped_by_sigterm(args, "stdout")
    assert code == 130, err
    assert "INTERRUPTED partial report" in out and "Traceback" not in out + err
    assert "interrupted: sending no more" in err
    assert 0 < int(re.search(r"requests\s+(\d+) total", out)[1]) < 1_000_000


def test_sigterm_stops_run_with_the_files_done_counted(tmp_path):
    short, long = tmp_path / "short.toml", tmp_path / "long.toml"
    short.write_text('name = "short"\n[database]\nlatency = 0.01\n[load]\nrequests = 4\n')
    long.write_text('name = "long"\n[load]\nrequests = 1000000\nmix = { data = 1 }\n')
    # Sent once the first file's report has been printed (it states no expectations).
    code, out, err = _stopped_by_sigterm(["run", str(short), str(long)], "stdout", "  (none)")
    assert code == 130, err
    assert out.startswith(f"== {short}: short") and "Traceback" not in out + err
    # Stopped while its topology started, or during its load (a partial report): either
    # way the file is said to be interrupted and the files that ran are counted.
    assert f"== {long}: " in out and "interrupted" in out
    assert out.rstrip().endswith("0 passed, 0 failed, 1 scenario file; interrupted before the rest")
