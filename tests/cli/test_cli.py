"""The command-line contract: exit codes, one-line errors, JSON only on stdout, exports."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


@pytest.fixture()
def evidence(tmp_path: Path) -> Path:
    ev = tmp_path / "ev"
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text(
        '79.1.2.3 - - [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" 200 512 "-" "M"\n'
        '203.0.113.9 - =cmd|\'/Ccalc\'!A0 [15/Jul/2017:08:58:22 +0900] "GET /x HTTP/1.1" 404 5 "-" "=HYPERLINK(1)"\n'
        'broken line\n')
    return ev


def test_usage_error_is_one_line_exit_2(tmp_path):
    r = run("ingest")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = run("summary", "--case", str(tmp_path / "nope"))
    assert r.returncode == 2 and "no case database" in r.stderr and "Traceback" not in r.stderr
    r = run("ingest", str(tmp_path / "missing"), "--case", str(tmp_path / "c"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_broken_config_is_one_line_exit_2(tmp_path, evidence):
    cfg = tmp_path / "case.yaml"
    cfg.write_text("hosts:\n  web01: {timezone: Mars/Olympus}\n")
    r = run("ingest", str(evidence), "--case", str(tmp_path / "c"), "--config", str(cfg))
    assert r.returncode == 2 and "Mars/Olympus" in r.stderr and r.stderr.count("\n") == 1
    cfg.write_text("hosts: [unclosed\n")
    r = run("ingest", str(evidence), "--case", str(tmp_path / "c"), "--config", str(cfg))
    assert r.returncode == 2 and "case.yaml:" in r.stderr and "Traceback" not in r.stderr
    cfg.write_text("acquierd: 2018-01-06\n")
    r = run("ingest", str(evidence), "--case", str(tmp_path / "c"), "--config", str(cfg))
    assert r.returncode == 2 and "acquierd" in r.stderr


def test_json_only_on_stdout_and_summary(tmp_path, evidence):
    case = tmp_path / "case"
    r = run("ingest", str(evidence), "--case", str(case), "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["events"] == 2 and data["issues"] == 1
    r = run("summary", "--case", str(case), "--json")
    s = json.loads(r.stdout)
    assert s["hosts"][0]["host"] == "web01" and s["hosts"][0]["events"] == 2
    assert s["issues_by_reason"] == {"no pattern of format apache-access matched": 1}
    assert s["sources"][0]["sha256"] and len(s["sources"][0]["sha256"]) == 64


def test_exports_are_deterministic_and_spreadsheet_safe(tmp_path, evidence):
    case = tmp_path / "case"
    assert run("ingest", str(evidence), "--case", str(case)).returncode == 0
    outs = {}
    for fmt in ("timesketch-jsonl", "timesketch-csv", "csv"):
        out = tmp_path / f"t.{fmt}"
        r = run("export", "--case", str(case), "--format", fmt, "-o", str(out))
        assert r.returncode == 0, r.stderr
        outs[fmt] = out.read_bytes()
        r = run("export", "--case", str(case), "--format", fmt, "-o", str(out))
        assert out.read_bytes() == outs[fmt]
    first = json.loads(outs["timesketch-jsonl"].decode().splitlines()[0])
    assert first["datetime"] == "2017-07-14T23:58:21+00:00" and first["timestamp_desc"] == "Event Recorded"
    assert first["message"] and first["url_path"] == "/wp-contacts.php"
    rows = list(csv.DictReader(outs["csv"].decode().splitlines()))
    assert rows[1]["user_name"].startswith("'=cmd") and rows[1]["user_agent"] == "'=HYPERLINK(1)"
    ts_rows = list(csv.DictReader(outs["timesketch-csv"].decode().splitlines()))
    assert ts_rows[1]["user_agent"] == "'=HYPERLINK(1)"  # Timesketch's CSV is opened in spreadsheets too
    assert {"message", "datetime", "timestamp_desc"} <= set(ts_rows[0])


def test_formats_lists_shipped_definitions():
    r = run("formats", "--json")
    listed = {f["id"]: f for f in json.loads(r.stdout)}
    assert {"syslog", "apache-access", "apache-error", "vsftpd", "xferlog", "postgresql-stderr",
            "postgresql-csvlog"} <= set(listed)
    # every format says what it was checked against
    assert not [fid for fid, f in listed.items() if not f["source_of_truth"]]


@pytest.mark.slow
def test_demo_rerun_keeps_the_evidence_and_other_seed_is_refused(tmp_path):
    out = tmp_path / "demo"
    first = run("demo", str(out), "--days", "40", "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["evidence"].endswith("evidence")
    digest = (out / "truth.json").read_bytes()
    again = run("demo", str(out), "--days", "40")
    assert again.returncode == 0 and "kept as it is" in again.stderr
    assert (out / "truth.json").read_bytes() == digest
    other = run("demo", str(out), "--days", "40", "--seed", "9")
    assert other.returncode == 2 and "not empty" in other.stderr and "Traceback" not in other.stderr
