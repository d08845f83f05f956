"""``investigate``: one run from an evidence folder to the report, resumable without redoing
finished steps or doubling events."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from small_case import CONFIG, JST

import logsalvage.detect.run as detect_run
from logsalvage.investigate import investigate
from logsalvage.store import CaseStore

SRC = Path(__file__).resolve().parents[2] / "src"


def _evidence(root: Path) -> Path:
    ev = root / "evidence"
    start = datetime(2017, 12, 1, tzinfo=JST)
    access = []
    for i in range(200):
        t = start + timedelta(minutes=7 * i)
        access.append(f'203.0.113.{i % 50} - - [{t:%d/%b/%Y:%H:%M:%S} +0900] "GET /index.php HTTP/1.1" 200 900 "-" "M"')
    t = start + timedelta(hours=5)
    for k, cmd in enumerate(("id", "uname%20-a", "ls%20-la", "cat%20%2Fetc%2Fpasswd")):
        access.append(f'79.172.212.37 - - [{t + timedelta(seconds=9 * k):%d/%b/%Y:%H:%M:%S} +0900] '
                      f'"GET /x.php?c={cmd} HTTP/1.1" 200 99 "-" "Wget/1.17.1"')
    access.sort(key=lambda line: datetime.strptime(line.split("[", 1)[1][:20], "%d/%b/%Y:%H:%M:%S"))
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text("\n".join(access) + "\n")
    lines = []
    for i in range(24 * 120):
        t = start + timedelta(seconds=30 * i)
        lines.append(f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 postgres[{3000 + i}]: [3-1] DATABASE=[unknown],"
                     f"USER=[unknown],CLIENT=127.0.0.1({40000 + i % 9999}),LOG:  incomplete startup packet")
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text("\n".join(lines) + "\n")
    return ev


def _events(case: Path) -> int:
    with CaseStore(case, read_only=True) as store:
        return store.query("SELECT count(*) FROM events")[0][0]


def _findings(case: Path) -> dict:
    data = json.loads((case / "findings.json").read_text())
    data.pop("generated")  # the one field that differs between runs
    return data


@pytest.fixture()
def evidence(tmp_path):
    return _evidence(tmp_path)


def test_one_run_writes_every_output(evidence, tmp_path):
    result = investigate(evidence, tmp_path / "case", config=CONFIG)
    for name in ("report.html", "findings.json", "timeline.jsonl", "continuity.json"):
        assert (tmp_path / "case" / name).stat().st_size > 0, name
    assert result.verdict["exfiltration"] in ("none-found", "suspected", "found", "undetermined")
    assert result.steps["carve"].startswith("skipped")
    findings = _findings(tmp_path / "case")
    assert any(m["kind"] == "first_webshell_execution" for m in findings["milestones"])
    continuity = json.loads((tmp_path / "case/continuity.json").read_text())
    db = next(h for h in continuity["hosts"] if h["name"] == "db01")
    assert db["heartbeat"]["period_s"] == 30 and db["coverage"]["ratio"] == 1.0


def test_a_second_run_reuses_finished_steps(evidence, tmp_path):
    investigate(evidence, tmp_path / "case", config=CONFIG)
    events, findings = _events(tmp_path / "case"), _findings(tmp_path / "case")
    again = investigate(evidence, tmp_path / "case", config=CONFIG)
    assert {again.steps[s] for s in ("continuity", "detect", "report", "timeline")} == {"reused"}
    assert _events(tmp_path / "case") == events and _findings(tmp_path / "case") == findings


def test_the_timeline_export_can_be_left_out(evidence, tmp_path):
    case = tmp_path / "case"
    first = investigate(evidence, case, config=CONFIG, timeline=False)
    assert first.steps["timeline"].startswith("skipped") and first.timeline is None
    assert not (case / "timeline.jsonl").exists() and (case / "report.html").exists()
    second = investigate(evidence, case, config=CONFIG)
    assert second.steps["timeline"] == "done" and second.timeline.stat().st_size > 0
    assert {second.steps[s] for s in ("continuity", "detect", "report")} == {"reused"}
    third = investigate(evidence, case, config=CONFIG, timeline=False)  # still matches the case: kept
    assert third.steps["timeline"] == "reused" and third.timeline == second.timeline


def test_an_interrupted_run_completes_the_same(evidence, tmp_path, interrupt_nth_call):
    reference = tmp_path / "reference"
    investigate(evidence, reference, config=CONFIG)
    restore = interrupt_nth_call(detect_run, "run_detection", 1)
    with pytest.raises(KeyboardInterrupt):
        investigate(evidence, tmp_path / "case", config=CONFIG)
    restore()
    result = investigate(evidence, tmp_path / "case", config=CONFIG)
    assert result.steps["continuity"] == "reused" and result.steps["detect"] == "done"
    assert _events(tmp_path / "case") == _events(reference)
    assert _findings(tmp_path / "case") == _findings(reference)


def test_not_a_directory_is_a_usage_error(tmp_path):
    from logsalvage.errors import UsageError

    with pytest.raises(UsageError, match="directory"):
        investigate(tmp_path / "nothing", tmp_path / "case")


@pytest.fixture()
def dask_cluster(tmp_path):
    """A Dask scheduler and two single-threaded workers in processes of their own, as on a cluster
    (they share this machine's file system, as cluster nodes share the evidence and case mounts)."""
    distributed = pytest.importorskip("distributed")
    scheduler_file = tmp_path / "scheduler.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file",
                               str(scheduler_file), "--port", "0", "--no-dashboard"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(scheduler_file), "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(scheduler_file.read_text())["address"]
        with distributed.Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_a_dask_cluster_gives_the_same_investigation(evidence, tmp_path, dask_cluster):
    reference = tmp_path / "reference"
    investigate(evidence, reference, config=CONFIG)
    config = tmp_path / "case.yaml"
    config.write_text(json.dumps(CONFIG.raw))
    cp = subprocess.run([sys.executable, "-m", "logsalvage.cli", "investigate", str(evidence), "--case",
                         str(tmp_path / "case"), "--config", str(config), "--scheduler", dask_cluster, "--json"],
                        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, check=False)
    assert cp.returncode == 0, cp.stderr[-3000:]
    out = json.loads(cp.stdout)  # only JSON on stdout
    assert out["steps"]["ingest"] == "done" and out["report"].endswith("report.html")
    assert set(out["seconds"]) >= {"ingest", "continuity", "detect", "report", "timeline"}
    assert out["peak_rss_mib"] > 0
    assert _events(tmp_path / "case") == _events(reference)
    assert _findings(tmp_path / "case") == _findings(reference)
    assert (tmp_path / "case/timeline.jsonl").read_bytes() == (reference / "timeline.jsonl").read_bytes()


def test_an_unreachable_scheduler_is_one_line_and_exit_2(evidence, tmp_path):
    cp = subprocess.run([sys.executable, "-m", "logsalvage.cli", "investigate", str(evidence), "--case",
                         str(tmp_path / "case"), "--scheduler", "tcp://127.0.0.1:9"],
                        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert cp.returncode == 2 and "Dask scheduler" in cp.stderr and "Traceback" not in cp.stderr
