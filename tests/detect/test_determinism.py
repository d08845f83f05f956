"""The same case gives the same findings.json, byte for byte, whatever order its database happens to
hold the rows in: every example, first event and list is chosen by a total order (time, source,
offset), never by whichever tied row a query met first."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb

from logsalvage.config import parse_config
from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore
from logsalvage.summary import case_summary

from pglog_case import DAY, DBA, normal_days

CONFIG = parse_config({"hosts": {"web01": {"timezone": "Asia/Tokyo"}, "db01": {"timezone": "Asia/Tokyo"}},
                       "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"}}, "test")

# program output in the error log takes the time of the dated line before it: four lines, one time
ERRORS = """\
[Sat Dec 02 09:00:00 2017] [error] [client 61.89.205.218] File does not exist: /var/www/html/favicon.ico
uid=99(nobody) gid=99(nobody) groups=99(nobody)
Linux web01 2.6.32-754.el6.x86_64 #1 SMP x86_64 GNU/Linux
sh: line 1: nc: command not found
sh: line 1: socat: command not found
[Sat Dec 02 09:05:00 2017] [notice] caught SIGTERM, shutting down
"""
# two jobs from /tmp first run in the same second
CRON = """\
Dec  2 07:24:01 web01 CROND[28500]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)
Dec  2 07:24:01 web01 CROND[28501]: (nobody) CMD (/tmp/.x/run)
Dec  2 07:25:01 web01 CROND[28502]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)
"""


def _evidence(root: Path) -> Path:
    ev = root / "evidence"
    for rel, text in (("web01/var/log/httpd/error_log", ERRORS), ("web01/var/log/cron-20171203", CRON)):
        (ev / rel).parent.mkdir(parents=True, exist_ok=True)
        (ev / rel).write_text(text)
    log = normal_days(2, app_per_hour=1)
    # whole reads of the customer table by the DBA: two texts of one fingerprint, as slow as each other
    log.statement(DAY + 10 * 3600, "SELECT * FROM customers", 3200.5, user="postgres", client=DBA)
    log.statement(DAY + 10 * 3600 + 60, "select *  from customers", 3200.5, user="postgres", client=DBA)
    log.statement(DAY + 10 * 3600 + 120, "SELECT  *  FROM  customers", 3100.0, user="postgres", client=DBA)
    log.write(ev / "db01/var/log/messages-20171203")
    return ev


def _reversed_copy(case: Path, copy: Path) -> None:
    """The same case with every table's rows stored in the opposite order."""
    shutil.copytree(case, copy)
    con = duckdb.connect(str(copy / "case.duckdb"))
    for table in ("events", "sources", "issues", "inputs"):
        con.execute(f"CREATE TABLE flipped AS SELECT * FROM (SELECT *, row_number() OVER () AS rn FROM {table}) "
                    "ORDER BY rn DESC")
        con.execute(f"DELETE FROM {table}")
        con.execute(f"INSERT INTO {table} SELECT * EXCLUDE (rn) FROM flipped ORDER BY rn DESC")
        con.execute("DROP TABLE flipped")
    con.execute("CHECKPOINT")
    con.close()


def _findings(case: Path) -> str:
    with CaseStore(case) as store:
        result = run_detection(store, CONFIG)
        summary = case_summary(store)
    result.pop("generated")  # the time of the run
    return json.dumps({"findings": result, "summary": summary}, indent=2, ensure_ascii=False, default=str)


def test_findings_do_not_depend_on_the_order_rows_are_stored_in(tmp_path):
    ingest([_evidence(tmp_path)], tmp_path / "case", config=CONFIG)
    _reversed_copy(tmp_path / "case", tmp_path / "flipped")
    first_order = duckdb.connect(str(tmp_path / "flipped" / "case.duckdb"), read_only=True).execute(
        "SELECT event_id FROM events LIMIT 1").fetchone()
    assert first_order != duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True).execute(
        "SELECT event_id FROM events LIMIT 1").fetchone()  # the copy really is stored the other way round
    a, b = _findings(tmp_path / "case"), _findings(tmp_path / "flipped")
    assert a == b
    found = json.loads(a)["findings"]
    by_rule = {}
    for f in found["findings"]:
        by_rule.setdefault(f["rule"], []).append(f)
    # the examples are the first lines in (time, source, offset) order
    other = [f for f in by_rule["errorlog.program_output"] if f["detail"].get("example", "").startswith("uid=")]
    assert other and other[0]["detail"]["example"] == "uid=99(nobody) gid=99(nobody) groups=99(nobody)"
    shell = [f for f in by_rule["errorlog.program_output"] if "shell" in f["title"]]
    assert shell[0]["detail"]["example"] == "sh: line 1: nc: command not found"
    full = by_rule["db.full_table_read"]
    assert [f["detail"]["example"] for f in full] == ["SELECT * FROM customers"]
    # the slowest (two tie at 3200.5 ms): the earlier of them
    slow = [f for f in by_rule["db.slow_statement"] if f["detail"]["fingerprint"] == full[0]["detail"]["fingerprint"]]
    assert [f["detail"]["example"] for f in slow] == ["SELECT * FROM customers"]
    runs = [m for m in found["milestones"] if m["kind"] == "cron_first_run"]
    assert [m["detail"]["command"] for m in runs] == ["/tmp/.x/run", "/tmp/upd >/dev/null 2>&1"]
