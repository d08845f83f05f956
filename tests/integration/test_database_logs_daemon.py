"""MariaDB, pgBouncer and PostgreSQL (jsonlog and csvlog at once) really write their logs;
logsalvage recognises each by its content and reads it whole.

The daemons and their workload are in dbdaemons.py: logins good and bad (MariaDB over TCP and its
socket, pgBouncer, PostgreSQL), a statement spanning lines, a table written to a file on the server
(``SELECT … INTO OUTFILE``) and copied out (``COPY … TO STDOUT``), a statement past a second, admin
commands and a FLUSH LOGS (a second banner), a stop. The ``raw`` tests check the daemons wrote what
our model of them says; the others run ``python -m logsalvage ingest`` and check the case.

The checked-in capture ``tests/data/dblogs/`` (tests/ingest/test_database_logs.py reads it without
daemons) is this test's; to regenerate it, as root with the daemons installed::

    LOGSALVAGE_REGENERATE_FIXTURE=1 python -m pytest -q -p no:cacheprovider tests/integration/test_database_logs_daemon.py

It is rewritten only after a capture whose raw tests hold.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # dbdaemons.py, daemons.py

import dbdaemons  # noqa: E402
from prerequisites import unavailable  # noqa: E402

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

SRC = Path(__file__).resolve().parents[2] / "src"
FIXTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "dblogs"
REGENERATE = "LOGSALVAGE_REGENERATE_FIXTURE"
EVIDENCE = {  # where each log lies in the evidence tree of host db01
    "mariadb-general.log": "var/log/mysql/mysql.log",
    "mariadb-slow.log": "var/log/mysql/mariadb-slow.log",
    "mariadb-error.log": "var/log/mysql/error.log",
    "pgbouncer.log": "var/log/postgresql/pgbouncer.log",
    "postgresql.json": "var/lib/postgresql/15/main/log/postgresql.json",
    "postgresql.csv": "var/lib/postgresql/15/main/log/postgresql.csv",
}


@pytest.fixture(scope="module")
def capture():
    missing = dbdaemons.missing_prerequisites()
    if missing:
        unavailable("database-log daemon tests need: " + "; ".join(missing)
                    + " (install with: sudo bash .ci/install-daemons.sh)", ".ci/install-daemons.sh")
    root = Path(tempfile.mkdtemp(prefix="logsalvage-dblogs-"))
    os.chmod(root, 0o755)  # PostgreSQL and pgBouncer run as user postgres
    try:
        versions = dbdaemons.capture(root / "daemons", root / "logs")
        yield root / "logs", versions
    finally:
        if os.environ.get("LOGSALVAGE_KEEP_DAEMON_DIR"):
            print(f"\nkept daemon directory {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _lines(capture, name: str) -> list[str]:
    return (capture[0] / name).read_text().splitlines()


# -- what the daemons wrote ---------------------------------------------------------------------

def test_raw_general_log_logs_the_attempt_before_its_denial(capture):
    lines = _lines(capture, "mariadb-general.log")
    denied = [i for i, ln in enumerate(lines) if "\tAccess denied for user" in ln]
    assert len(denied) == 2
    for i in denied:  # the same connection's Connect line just before
        conn = re.search(r"\t *(\d+) Connect\t", lines[i])[1]
        assert re.search(rf"\t *{conn} Connect\t\S+@\S+ on ", lines[i - 1]), lines[i - 1]
    assert "\t" + dbdaemons.MULTILINE.split("\n")[0] in "\n".join(lines)
    assert "\n".join(lines).count(", Version: ") == 2  # the start, and 'refresh' reopening the log


def test_raw_slow_log_blocks(capture):
    lines = _lines(capture, "mariadb-slow.log")
    assert sum(ln.startswith("# Query_time: ") for ln in lines) == sum(ln.startswith("SET timestamp=") for ln in lines)
    assert any(ln.startswith("# Time: ") for ln in lines)


def test_raw_pgbouncer_logs_attempts_and_the_failure(capture):
    text = "\n".join(_lines(capture, "pgbouncer.log"))
    assert text.count(" login attempt: db=shop user=shopapp") == 2
    assert "pooler error: SASL authentication failed" in text


def test_raw_jsonlog_is_one_object_a_line_beside_the_same_csvlog(capture):
    records = [json.loads(ln) for ln in _lines(capture, "postgresql.json")]
    assert all(isinstance(r, dict) and "timestamp" in r for r in records)
    assert any(r.get("message", "").startswith("duration: ") and "\n" in r["message"] for r in records)


# -- what logsalvage reads ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def case(capture, tmp_path_factory):
    logs, versions = capture
    ev = tmp_path_factory.mktemp("db-evidence")
    for name, rel in EVIDENCE.items():
        (ev / "db01" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(logs / name, ev / "db01" / rel)
    case_dir = tmp_path_factory.mktemp("db-case") / "case"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    cp = subprocess.run([sys.executable, "-m", "logsalvage", "ingest", str(ev), "--case", str(case_dir), "--json"],
                        capture_output=True, text=True, env=env, timeout=300)
    assert cp.returncode == 0, cp.stderr
    summary = json.loads(cp.stdout)
    if os.environ.get(REGENERATE):
        _regenerate(logs, versions)
    return case_dir, summary


def _regenerate(logs: Path, versions: dict) -> None:
    FIXTURE_DIR.mkdir(parents=True, exist_ok=True)
    for name in dbdaemons.FILES:
        shutil.copyfile(logs / name, FIXTURE_DIR / name)
    (FIXTURE_DIR / "versions.json").write_text(json.dumps(versions, indent=2, sort_keys=True) + "\n")


def test_each_log_is_recognised_by_content_and_read_without_issues(case):
    _, summary = case
    got = {s["path"].rsplit("/", 1)[-1]: (s["format"], s["issues"]) for s in summary["sources"]}
    want = {Path(rel).name: (dbdaemons.FILES[name], 0) for name, rel in EVIDENCE.items()}
    assert got == want
    assert summary["inputs_by_role"] == {"log": len(EVIDENCE)}


def test_mariadb_logins_and_statements(case, capture):
    con = duckdb.connect(str(case[0] / "case.duckdb"), read_only=True)
    failed = con.execute("""SELECT user_name, source_ip, count(*) FROM events
                            WHERE event_type = 'mysql.connect' AND outcome = 'failure' GROUP BY ALL ORDER BY 1""").fetchall()
    unsettled = con.execute("SELECT count(*) FROM events WHERE event_type = 'mysql.connect' AND outcome IS NULL").fetchone()[0]
    multiline = con.execute("SELECT format_id FROM events WHERE statement = ? ORDER BY 1", [dbdaemons.MULTILINE]).fetchall()
    outfile = con.execute("""SELECT format_id, user_name FROM events WHERE statement LIKE 'SELECT * FROM customers INTO OUTFILE %'
                             ORDER BY 1""").fetchall()
    slow = con.execute("SELECT count(*), count(ts_utc), count(duration_ms) FROM events WHERE event_type = 'mysql.slow_query'").fetchone()
    denied_in_error_log = con.execute("SELECT count(*) FROM events WHERE event_type = 'mysql.auth_failed'").fetchone()[0]
    con.close()
    # each failed login: the attempt and its denial
    assert failed == [("root", "127.0.0.1", 2), (dbdaemons.SHOP_USER, "127.0.0.1", 2)]
    assert unsettled == 0
    # the statement spanning lines, whole, from every log that has it (PostgreSQL's too)
    assert multiline == [("mysql-general",), ("mysql-slow",), ("postgresql-csvlog",), ("postgresql-jsonlog",)]
    assert outfile == [("mysql-general", None), ("mysql-slow", dbdaemons.SHOP_USER)]
    query_times = sum(ln.startswith("# Query_time: ") for ln in _lines(capture, "mariadb-slow.log"))
    assert slow == (query_times, query_times, query_times)
    assert denied_in_error_log == 2


def test_pgbouncer_and_jsonlog(case):
    con = duckdb.connect(str(case[0] / "case.duckdb"), read_only=True)
    bouncer = dict(con.execute("""SELECT event_type, count(*) FROM events WHERE format_id = 'pgbouncer'
                                  AND event_type IN ('pgbouncer.login', 'pgbouncer.auth_failed') GROUP BY ALL""").fetchall())
    by_format = con.execute("""SELECT format_id, event_type, count(*) FROM events
                               WHERE format_id LIKE 'postgresql-%' GROUP BY ALL ORDER BY ALL""").fetchall()
    con.close()
    assert bouncer == {"pgbouncer.login": 2, "pgbouncer.auth_failed": 1}
    json_types = {(t, n) for f, t, n in by_format if f == "postgresql-jsonlog"}
    csv_types = {(t, n) for f, t, n in by_format if f == "postgresql-csvlog"}
    assert json_types == csv_types  # the same records, the same meaning
    assert ("postgresql.auth_failed", 1) in json_types and ("postgresql.undefined_table", 1) in json_types
