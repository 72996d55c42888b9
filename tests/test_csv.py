"""`bench --csv` and `--samples`: Locust-style files, and a line per request."""

from __future__ import annotations

import csv
import json

import pytest

from labsim.cli import main

STATS_HEADER = (
    "name,served,failed,mean_ms,min_ms,p50_ms,p90_ms,p99_ms,max_ms,failed_mean_ms,failed_max_ms,rps"
)
FAILURES_HEADER = "endpoint,status,error,count"
HISTORY_HEADER = "t_s,ok,failed,hits,misses,worker_queued,worker_running"
SAMPLES_HEADER = "endpoint,scheduled_s,sent_s,latency_ms,status,gateway,hit"


def rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_the_labs_run_as_csv_files(tmp_path, capsys):
    prefix = tmp_path / "lab"
    report = tmp_path / "lab.json"
    assert main(["bench", "--csv", str(prefix), "--json", str(report)]) == 0
    files = {kind: tmp_path / f"lab_{kind}.csv" for kind in ("stats", "failures", "history")}
    headers = {kind: path.read_text().splitlines()[0] for kind, path in files.items()}
    assert headers == {
        "stats": STATS_HEADER,
        "failures": FAILURES_HEADER,
        "history": HISTORY_HEADER,
    }
    stats = {row["name"]: row for row in rows(files["stats"])}
    assert list(stats) == ["data", "data.hits", "data.misses", "longtask", "total"]
    assert stats["data.misses"]["served"] == "10" and stats["data.misses"]["p50_ms"] == "2004.0"
    assert stats["data.hits"]["served"] == "40" and stats["data.hits"]["failed"] == ""
    as_json = json.loads(report.read_text())
    assert float(stats["total"]["rps"]) == pytest.approx(as_json["throughput_rps"], abs=0.01)
    assert float(stats["data"]["p90_ms"]) == as_json["endpoints"]["data"]["p90_ms"]
    assert rows(files["failures"]) == []
    history = rows(files["history"])
    assert len(history) == len(as_json["timeline"]["t_s"])
    assert int(history[-1]["hits"]) == 40  # counted so far, at each step


def test_failures_are_counted_per_endpoint_status_and_error(tmp_path, capsys):
    scenario = tmp_path / "tight.toml"
    scenario.write_text("[worker]\nconcurrency = 1\nqueue_size = 1\n")
    args = ["bench", "--scenario", str(scenario), "--mix", "longtask=1", "--requests", "5"]
    assert main([*args, "--csv", str(tmp_path / "t")]) == 1
    (failure,) = rows(tmp_path / "t_failures.csv")
    assert (failure["endpoint"], failure["status"], failure["count"]) == ("longtask", "503", "3")
    assert "queue is full" in failure["error"]


def test_samples_have_a_line_per_request_as_answered(tmp_path, capsys):
    path = tmp_path / "samples.csv"
    assert main(["bench", "--samples", str(path), "--requests", "20"]) == 0
    assert path.read_text().splitlines()[0] == SAMPLES_HEADER
    samples = rows(path)
    assert len(samples) == 20
    data = [s for s in samples if s["endpoint"] == "data"]
    assert sorted(s["hit"] for s in data) == ["false"] * 10
    assert {s["status"] for s in samples} == {"200", "202"}
    assert all(s["gateway"].startswith("gateway-") for s in samples)
    assert all(float(s["latency_ms"]) in (2004.0, 3.0) for s in samples)
    assert all(s["scheduled_s"] == s["sent_s"] for s in samples)  # a closed load


def test_an_open_loads_samples_count_from_when_each_was_due(tmp_path, capsys):
    path = tmp_path / "open.csv"
    args = ["bench", "--rate", "50", "--requests", "30", "--mix", "data=1", "--samples", str(path)]
    assert main(args) == 0
    starts = [float(s["scheduled_s"]) for s in rows(path)]
    assert len(starts) == 30 and max(starts) > 0.1  # spread over the arrivals


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--csv", ""], "--csv '': give a prefix"),
        (["--csv", "/tmp/"], "give a prefix"),
        (["--csv", "/nowhere/run"], "folder /nowhere does not exist"),
        (["--samples", "/nowhere/s.csv"], "folder /nowhere does not exist"),
        (["--samples", "x.json", "--json", "x.json"], "both name x.json"),
    ],
)
def test_csv_and_samples_mistakes_are_one_line_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_samples_that_cannot_be_written_are_one_line_after_the_report(capsys):
    assert main(["bench", "--requests", "10", "--samples", "/dev/full"]) == 2
    out, err = capsys.readouterr()
    assert "requests    10 total, 10 ok" in out  # the run itself is reported
    expected = "--samples /dev/full: cannot write: No space left on device (the report is above)"
    assert err == f"labsim: error: {expected}\n"
