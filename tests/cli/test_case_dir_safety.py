"""The case directory: a path is a path (never SQL), outputs never go into the evidence, an
unrelated directory is never taken over, and a repeated ingest lists no source as its own copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from logsalvage.store import CaseStore

ROOT = Path(__file__).resolve().parents[2]
LINES = ('79.1.2.3 - - [15/Jul/2017:08:58:21 +0900] "GET /a.php HTTP/1.1" 200 512 "-" "M"\n'
         '79.1.2.4 - - [15/Jul/2017:08:58:22 +0900] "GET /b.php HTTP/1.1" 404 5 "-" "M"\n')


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def _evidence(root: Path) -> Path:
    log = root / "ev" / "web01" / "var" / "log" / "httpd" / "access_log"
    log.parent.mkdir(parents=True)
    log.write_text(LINES)
    return root / "ev"


def test_a_quote_in_the_case_path_is_a_path_not_sql(tmp_path):
    ev = _evidence(tmp_path)
    case = tmp_path / "c';COPY (SELECT 'x') TO 'pwned.csv';SET temp_directory='c2"
    r = run("ingest", str(ev), "--case", str(case), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["events"] == 2
    assert (case / "case.duckdb").is_file()
    assert not list(tmp_path.rglob("pwned.csv")) and not (tmp_path / "c2").exists()


def test_the_case_may_not_be_the_directory_of_an_evidence_file(tmp_path):
    ev = _evidence(tmp_path)
    log = ev / "web01" / "var" / "log" / "httpd" / "access_log"
    before = sorted(p.name for p in log.parent.iterdir())
    r = run("ingest", str(log), "--case", str(log.parent))
    assert r.returncode == 2 and "inside the evidence" in r.stderr and "Traceback" not in r.stderr
    r = run("ingest", str(log), "--case", str(log))
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert sorted(p.name for p in log.parent.iterdir()) == before


def test_an_unrelated_directory_is_not_taken_over(tmp_path):
    ev = _evidence(tmp_path)
    other = tmp_path / "project"
    (other / "staging").mkdir(parents=True)
    (other / "staging" / "notes.parquet").write_bytes(b"mine")
    (other / "report.html").write_text("my report")
    r = run("ingest", str(ev), "--case", str(other))
    assert r.returncode == 2 and "not a logsalvage case" in r.stderr and r.stderr.count("\n") == 1
    assert (other / "staging" / "notes.parquet").read_bytes() == b"mine"
    assert (other / "report.html").read_text() == "my report"
    assert not (other / "case.duckdb").exists()
    # an empty directory, or a case, is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run("ingest", str(ev), "--case", str(empty)).returncode == 0
    assert run("ingest", str(ev), "--case", str(empty)).returncode == 0


def test_ingesting_again_lists_no_source_as_a_copy_of_itself(tmp_path):
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    assert run("ingest", str(ev), "--case", str(case)).returncode == 0
    r = run("ingest", str(ev), "--case", str(case), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sources_already_in_case"] == 1
    with CaseStore(case, read_only=True) as store:
        assert store.query("SELECT count(*) FROM source_copies")[0][0] == 0
        assert store.query("SELECT count(*) FROM events")[0][0] == 2
    # a real copy elsewhere is still listed as one
    copy = ev / "backup" / "access_log"
    copy.parent.mkdir()
    copy.write_text(LINES)
    assert run("ingest", str(ev), "--case", str(case)).returncode == 0
    with CaseStore(case, read_only=True) as store:
        assert store.query("SELECT path FROM source_copies")[0][0].endswith("backup/access_log")
