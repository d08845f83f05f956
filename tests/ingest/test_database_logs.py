"""The logs real MariaDB, pgBouncer and PostgreSQL wrote (tests/data/dblogs, captured by
tests/integration/test_database_logs_daemon.py; README there) are recognised by their content and
read whole: formats, events per type, the fields that matter to the database detectors, and the
same meaning for a record whether PostgreSQL wrote it as csvlog or jsonlog."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from logsalvage.ingest import ingest
from logsalvage.parsing.engine import ParseContext, parse_text
from logsalvage.parsing.formats import shipped_formats

DATA = Path(__file__).resolve().parents[1] / "data" / "dblogs"
MULTILINE = "SELECT c.id,\n       c.email\n  FROM customers c\n WHERE c.id IN (1, 2, 3)\n ORDER BY c.id"
LAYOUT = {  # where each log lies on host db01
    "mariadb-general.log": ("var/log/mysql/mysql.log", "mysql-general"),
    "mariadb-slow.log": ("var/log/mysql/mariadb-slow.log", "mysql-slow"),
    "mariadb-error.log": ("var/log/mysql/error.log", "mysql-error"),
    "pgbouncer.log": ("var/log/postgresql/pgbouncer.log", "pgbouncer"),
    "postgresql.json": ("var/lib/postgresql/15/main/log/postgresql.json", "postgresql-jsonlog"),
    "postgresql.csv": ("var/lib/postgresql/15/main/log/postgresql.csv", "postgresql-csvlog"),
}


def _text(name: str) -> str:
    return (DATA / name).read_text()


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    root = tmp_path_factory.mktemp("dblogs")
    for name, (rel, _) in LAYOUT.items():
        (root / "ev/db01" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / name, root / "ev/db01" / rel)
    result = ingest([root / "ev"], root / "case")
    con = duckdb.connect(str(root / "case/case.duckdb"), read_only=True)
    yield result, con
    con.close()


def _types(con, fmt: str) -> Counter:
    return Counter(dict(con.execute("SELECT event_type, count(*) FROM events WHERE format_id = ? GROUP BY 1",
                                    [fmt]).fetchall()))


def test_every_log_is_recognised_by_its_content_and_read_without_issues(case):
    result, _ = case
    got = {s["path"].split("/", 1)[1]: (s["format"], s["issues"]) for s in result.sources}
    assert got == {rel: (fmt, 0) for rel, fmt in LAYOUT.values()}
    lines = {s["path"].split("/", 1)[1]: s["lines"] for s in result.sources}
    for name, (rel, _) in LAYOUT.items():  # nothing left over
        assert lines[rel] == len(_text(name).splitlines()), name


def test_general_log(case):
    _, con = case
    text = _text("mariadb-general.log")
    commands = Counter(m[1] for m in re.finditer(r"^(?:\d{6} [ \d]\d:\d\d:\d\d|)\t+ *\d+ ([A-Z][A-Za-z ]*?)\t", text, re.M))
    types = _types(con, "mysql-general")
    assert types == Counter({"mysql.connect": commands["Connect"], "mysql.query": commands["Query"],
                             "mysql.quit": commands["Quit"], "mysql.init_db": commands["Init DB"],
                             "mysql.command": commands["Statistics"] + commands["Refresh"] + commands["Shutdown"],
                             "mysql.banner": text.count(", Version: ")})
    logins = con.execute("""SELECT user_name, source_ip, json_extract_string(extra, '$.client_host'), outcome, count(*)
                            FROM events WHERE event_type = 'mysql.connect' GROUP BY ALL ORDER BY ALL""").fetchall()
    # two wrong passwords over TCP: each attempt's Connect and its denial
    assert logins == [("root", "127.0.0.1", None, "failure", 2), ("root", None, "localhost", "success", 5),
                      ("shopapp", "127.0.0.1", None, "failure", 2), ("shopapp", "127.0.0.1", None, "success", 5),
                      ("shopapp", None, "localhost", "success", 1)]
    [(ts_raw, note, line_count, conn)] = con.execute(
        """SELECT ts_raw, time_basis, line_count, json_extract_string(extra, '$.connection_id') FROM events
           WHERE format_id = 'mysql-general' AND statement = ?""", [MULTILINE]).fetchall()
    assert ts_raw == "261207  7:38:01" and "only when it changes" in note and line_count == 5 and conn == "9"


def test_slow_log_one_record_per_statement_timed_by_set_timestamp(case):
    _, con = case
    text = _text("mariadb-slow.log")
    assert _types(con, "mysql-slow") == Counter({"mysql.slow_query": text.count("\n# Query_time: "),
                                                 "mysql.banner": text.count(", Version: ")})
    rows = con.execute("""SELECT epoch(ts_utc)::BIGINT, ts_raw, duration_ms, user_name, source_ip, db_name,
                                 json_extract_string(extra, '$.rows_sent'), json_extract_string(extra, '$.rows_examined')
                          FROM events WHERE event_type = 'mysql.slow_query' ORDER BY line_no""").fetchall()
    assert [str(r[0]) for r in rows] == re.findall(r"^SET timestamp=(\d+);$", text, re.M)
    assert all(r[1] == str(r[0]) for r in rows)
    sleep = [r for r in rows if r[2] > 1000]
    assert len(sleep) == 1 and sleep[0][3:6] == ("shopapp", "127.0.0.1", "shop")
    [outfile] = con.execute("""SELECT rows_sent FROM (SELECT json_extract_string(extra, '$.rows_sent') AS rows_sent, statement
                               FROM events WHERE event_type = 'mysql.slow_query') WHERE statement LIKE '% INTO OUTFILE %'""").fetchall()
    assert outfile == ("200",)


def test_the_same_statement_has_the_same_time_in_the_general_and_the_slow_log(case):
    """The general log's local stamp (the host in UTC, as the server ran) and the slow log's epoch."""
    _, con = case
    pairs = con.execute("""SELECT g.statement, epoch(g.ts_utc) - epoch(s.ts_utc) FROM events g JOIN events s
                           ON g.statement = s.statement AND g.format_id = 'mysql-general' AND s.format_id = 'mysql-slow'
                           """).fetchall()
    assert len(pairs) >= 10 and all(d == 0 for _, d in pairs)


def test_error_log(case):
    _, con = case
    rows = con.execute("""SELECT event_type, action, program, user_name, source_ip FROM events
                          WHERE format_id = 'mysql-error' AND event_type <> 'mysql.other' ORDER BY line_no""").fetchall()
    assert rows == [("mysql.lifecycle", "start", "mysqld_safe", None, None),
                    ("mysql.lifecycle", "start", None, None, None),
                    ("mysql.auth_failed", None, None, "shopapp", "127.0.0.1"),
                    ("mysql.auth_failed", None, None, "root", "127.0.0.1"),
                    ("mysql.lifecycle", "stop", None, None, None),
                    ("mysql.lifecycle", "stop", None, None, None),
                    ("mysql.lifecycle", "stop", "mysqld_safe", None, None)]
    [(count, lines)] = con.execute("SELECT count(*), sum(line_count) FROM events WHERE format_id = 'mysql-error'").fetchall()
    assert lines == len(_text("mariadb-error.log").splitlines()) and count == lines - 1  # 'Version:' continues


def test_pgbouncer(case):
    _, con = case
    assert _types(con, "pgbouncer") == Counter({"pgbouncer.login": 2, "pgbouncer.close": 2, "pgbouncer.auth_failed": 1,
                                                "pgbouncer.stats": 1, "pgbouncer": 6})
    [failed] = con.execute("""SELECT user_name, db_name, source_ip, source_port, outcome FROM events
                              WHERE event_type = 'pgbouncer.auth_failed'""").fetchall()
    logins = con.execute("""SELECT user_name, db_name, source_ip, source_port FROM events
                            WHERE event_type = 'pgbouncer.login' ORDER BY line_no""").fetchall()
    # the failed attempt is the second login: the same client address and port
    assert failed == logins[1] + ("failure",)
    server = con.execute("""SELECT source_ip, json_extract_string(extra, '$.server_ip') FROM events
                            WHERE format_id = 'pgbouncer' AND raw LIKE '%new connection to server%'""").fetchall()
    assert server == [(None, "127.0.0.1")]  # the database server's address is not a client's


def _fields(rec: dict) -> dict:
    return {k: v for k, v in rec.items() if not k.startswith("_") and k not in ("raw", "ts_raw")}


def test_jsonlog_records_mean_what_the_same_csvlog_records_mean():
    """PostgreSQL wrote both logs at once: the records pair up in order, with the same fields."""
    specs = shipped_formats()
    json_events, json_issues = parse_text(specs["postgresql-jsonlog"], _text("postgresql.json"), ParseContext())
    csv_events, csv_issues = parse_text(specs["postgresql-csvlog"], _text("postgresql.csv"), ParseContext())
    assert json_issues == [] and csv_issues == []
    assert len(json_events) == len(csv_events) == len(_text("postgresql.json").splitlines())
    for j, c in zip(json_events, csv_events):
        assert j["_stamp"] == c["_stamp"]
        assert _fields(j) == _fields(c), j["raw"]
    types = Counter(e["event_type"] for e in json_events)
    assert types["postgresql.auth_failed"] == 1 and types["postgresql.undefined_table"] == 1
    assert MULTILINE in {e.get("statement") for e in json_events}


def test_jsonlog_detectors_see_the_database_records(case):
    _, con = case
    got = con.execute("""SELECT event_type, db_user, source_ip, statement FROM events
                         WHERE format_id = 'postgresql-jsonlog' AND event_type IN ('postgresql.auth_failed', 'postgresql.undefined_table')
                         ORDER BY event_type""").fetchall()
    assert got == [("postgresql.auth_failed", "shopapp", "127.0.0.1", None),
                   ("postgresql.undefined_table", "shopapp", "127.0.0.1", "SELECT * FROM users")]
    assert json.loads(_text("postgresql.json").splitlines()[0])["error_severity"] == "LOG"
