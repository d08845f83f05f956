"""PostgreSQL and rsyslog from Debian really write the logs; logsalvage parses what they wrote.

The cluster runs with db01's settings from the incident (syslog, LOCAL7,
``log_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'``, ``log_min_duration_statement = 3000``)
and sees the incident's kinds of activity: a failed login, a query on a missing table, an
injection probe, a slow statement, a long multi-line statement that fails, a health check that
hangs up. Fixtures: conftest.py; daemon control: daemons.py.

Two layers: the ``raw`` tests check the daemons wrote what our model of them says (so a parser
bug is not blamed on the daemons or the reverse); the others run ``python -m logsalvage ingest``
and check the case database.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# the demo generator's model of PostgreSQL's cutting and rsyslog's escaping, checked here against
# what the real daemons write
from logsalvage.demo.pgsyslog import PG_SYSLOG_LIMIT, rsyslog_escape
from logsalvage.demo.pgsyslog import chunks as pg_syslog_chunks

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

SRC = Path(__file__).resolve().parents[2] / "src"

TRADITIONAL = re.compile(
    r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) (?P<program>[^\s\[\]:]+)"
    r"(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$"
)
PG_CHUNK = re.compile(r"^\[(?P<seq>\d+)-(?P<chunk>\d+)\] (?P<text>.*)$", re.DOTALL)

# --- a model of what PostgreSQL and rsyslog do to a message -----------------------------------

def pg_with_tabs(text: str) -> str:
    """``append_with_tabs()``: PostgreSQL puts a tab after every newline of a message or statement."""
    return text.replace("\n", "\n\t")


# --- helpers -----------------------------------------------------------------------------------

def parse_raw(capture) -> list[dict]:
    out = []
    for no, line in enumerate(capture.lines, 1):
        m = TRADITIONAL.match(line)
        assert m, f"{capture.log_file}:{no}: not the traditional syslog file format: {line!r}"
        rec = m.groupdict() | {"line_no": no}
        if rec["program"] == "postgres":
            c = PG_CHUNK.match(rec["msg"])
            assert c, f"{capture.log_file}:{no}: PostgreSQL record without [seq-chunk]: {line!r}"
            rec.update(seq=int(c["seq"]), chunk=int(c["chunk"]), text=c["text"])
        out.append(rec)
    return out


def message_chunks(raw: list[dict], needle: str) -> list[dict]:
    """All syslog records of the one PostgreSQL message whose first chunk contains ``needle``."""
    firsts = [r for r in raw if r["program"] == "postgres" and r["chunk"] == 1 and needle in r["text"]]
    assert len(firsts) == 1, f"expected one message containing {needle!r}, found {len(firsts)}"
    head = firsts[0]
    chunks = [r for r in raw if r["program"] == "postgres" and r["pid"] == head["pid"] and r["seq"] == head["seq"]]
    assert [r["chunk"] for r in chunks] == list(range(1, len(chunks) + 1)), "chunk numbers not 1..n in file order"
    return chunks


def rows(con, sql: str, *params) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def one(found: list[dict], what: str) -> dict:
    assert len(found) == 1, f"expected exactly one {what}, found {len(found)}: {found}"
    return found[0]


# --- raw: what the daemons wrote ---------------------------------------------------------------

def test_raw_capture_is_traditional_syslog_from_db01(pg_syslog_capture):
    raw = parse_raw(pg_syslog_capture)
    print(f"\n{pg_syslog_capture.log_file} (PostgreSQL {pg_syslog_capture.pg_version}):")
    print("\n".join(pg_syslog_capture.lines))
    assert {r["host"] for r in raw} == {"db01"}
    pg = [r for r in raw if r["program"] == "postgres"]
    assert pg and all(r["pid"] for r in pg)
    # chunks of one message are contiguous per process and numbered from 1
    last: dict[str, tuple[int, int]] = {}
    for r in pg:
        prev = last.get(r["pid"])
        if r["chunk"] == 1:
            assert prev is None or r["seq"] > prev[0], f"line {r['line_no']}: sequence number did not increase"
        else:
            assert prev == (r["seq"], r["chunk"] - 1), f"line {r['line_no']}: chunk out of order"
        last[r["pid"]] = (r["seq"], r["chunk"])


def test_raw_long_statement_split_as_modelled(pg_syslog_capture):
    """PostgreSQL's cutting and rsyslog's escaping are exactly as ``pg_syslog_chunks`` models them."""
    raw = parse_raw(pg_syslog_capture)
    chunks = message_chunks(raw, "ERROR:  division by zero")
    first = chunks[0]["text"]
    prefix = first[: first.index("ERROR:  ")]
    assert re.fullmatch(r"DATABASE=ferry,USER=webapp,CLIENT=127\.0\.0\.1\(\d+\),", prefix), prefix
    message = (f"{prefix}ERROR:  division by zero\n"
               f"{prefix}STATEMENT:  {pg_with_tabs(pg_syslog_capture.long_statement)}\n")
    expected = [rsyslog_escape(p) for p in pg_syslog_chunks(message.encode())]
    written = [r["text"].encode() for r in chunks]
    assert written == expected
    # the statement really exercises every kind of cut
    pieces = pg_syslog_chunks(message.encode())
    pairs = list(zip(pieces, pieces[1:]))
    assert any(n.startswith(b" ") and len(p) < PG_SYSLOG_LIMIT - 10 for p, n in pairs), "no early word cut"
    assert any(n.startswith(b" ") and len(p) >= PG_SYSLOG_LIMIT - 10 for p, n in pairs), "no late word cut"
    assert any(len(p) == PG_SYSLOG_LIMIT and not n[:1].isspace() for p, n in pairs), "no hard cut at 900"
    assert any(PG_SYSLOG_LIMIT - 3 < len(p) < PG_SYSLOG_LIMIT and n[0] >= 0xC0 for p, n in pairs), \
        "no cut at a UTF-8 character boundary"
    assert any(p == b"\t" for p in pieces), "no blank statement line"


# --- parsed: what logsalvage made of it --------------------------------------------------------

@pytest.fixture(scope="module")
def case_dir(pg_syslog_capture, tmp_path_factory) -> Path:
    case = tmp_path_factory.mktemp("pg-syslog-case") / "case"
    cmd = [sys.executable, "-m", "logsalvage", "ingest", str(pg_syslog_capture.log_file),
           str(pg_syslog_capture.conf_file), "--case", str(case), "--host", "db01"]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    cp = subprocess.run(cmd, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)
    if cp.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {cp.returncode}\nstdout:\n{cp.stdout[-3000:]}\n"
                    f"stderr:\n{cp.stderr[-3000:]}\nraw log: {pg_syslog_capture.log_file}", pytrace=False)
    assert (case / "case.duckdb").is_file(), f"no case.duckdb in {case}: {sorted(case.iterdir())}"
    return case


@pytest.fixture(scope="module")
def log_source(con, pg_syslog_capture) -> dict:
    sources = rows(con, "SELECT * FROM sources")
    found = [s for s in sources if str(s.get("sha256") or "").lower() == pg_syslog_capture.sha256]
    assert len(found) == 1, f"expected one source with the log's sha256 {pg_syslog_capture.sha256}: {sources}"
    return found[0]


@pytest.fixture(scope="module")
def events(con, log_source) -> list[dict]:
    return rows(con, "SELECT * EXCLUDE (ts_utc), epoch(ts_utc) AS ts_epoch FROM events "
                     "WHERE source_id = ? ORDER BY event_id", log_source["source_id"])


@pytest.fixture(scope="module")
def pg_events(events) -> list[dict]:
    return [e for e in events if e["program"] == "postgres"]


def test_source_is_syslog_from_db01(log_source):
    assert log_source["host"] == "db01"
    assert log_source["format_id"] == "syslog"


def test_every_line_accounted_for(con, log_source, events, pg_syslog_capture):
    issues = rows(con, 'SELECT * FROM issues WHERE source_id = ? ORDER BY "offset"', log_source["source_id"])
    assert sum(e["line_count"] for e in events) + len(issues) == len(pg_syslog_capture.lines), issues
    data = pg_syslog_capture.log_file.read_bytes()
    from_postgres = [i for i in issues if b" postgres[" in data[i["offset"]:i["offset"] + i["length"]]]
    assert not from_postgres, f"PostgreSQL lines became issues: {from_postgres}"


def test_postgres_events_match_the_messages_written(pg_events, pg_syslog_capture):
    """One event per PostgreSQL message, each with its process, sequence number and time."""
    raw = [r for r in parse_raw(pg_syslog_capture) if r["program"] == "postgres"]
    assert sorted((e["process_pid"], e["pg_seq"]) for e in pg_events) == \
        sorted((int(r["pid"]), r["seq"]) for r in raw if r["chunk"] == 1)
    assert sum(e["line_count"] for e in pg_events) == len(raw)
    lo, hi = pg_syslog_capture.window
    for e in pg_events:
        assert e["pg_seq"] is not None and e["process_pid"] is not None, e
        assert e["host"] == "db01", e
        assert str(e["event_type"]).startswith("postgresql"), e
        assert lo <= e["ts_epoch"] <= hi, f"time {e['ts_epoch']} outside the capture window {lo}..{hi}: {e}"


def test_failed_login(pg_events):
    e = one([e for e in pg_events if e["event_type"] == "postgresql.auth_failed"], "failed login")
    assert e["pg_level"] == "FATAL"
    assert e["target_user"] == "webapp"
    assert e["source_ip"] == "127.0.0.1" and e["source_port"]
    assert (e["db_name"], e["db_user"]) == ("ferry", "webapp")
    assert e["line_count"] == 2  # FATAL plus DETAIL: Connection matched pg_hba.conf line ...
    assert "pg_hba.conf" in e["raw"]


def test_query_on_missing_table(pg_events, pg_syslog_capture):
    e = one([e for e in pg_events if e["event_type"] == "postgresql.undefined_table"], "missing-table error")
    assert e["relation"] == "users"
    assert e["pg_level"] == "ERROR"
    assert e["statement"] == pg_syslog_capture.statements["missing_table"]
    assert (e["db_name"], e["db_user"], e["source_ip"]) == ("ferry", "webapp", "127.0.0.1")


def test_injection_probe(pg_events, pg_syslog_capture):
    e = one([e for e in pg_events if e["event_type"] == "postgresql.invalid_input"], "invalid-input error")
    assert e["pg_level"] == "ERROR"
    assert e["statement"] == pg_syslog_capture.statements["injection"]
    assert "PG_SLEEP(5)" in e["statement"]
    assert '"1);SELECT PG_SLEEP(5)--"' in e["pg_message"]


def test_slow_statement(pg_events, pg_syslog_capture):
    e = one([e for e in pg_events if e["event_type"] == "postgresql.duration"], "duration record")
    assert e["duration_ms"] >= 3000
    assert e["statement"] == pg_syslog_capture.statements["slow"]
    assert e["pg_level"] == "LOG"


def test_long_statement_joined_into_one_event(pg_events, pg_syslog_capture):
    e = one([e for e in pg_events if e["pg_level"] == "ERROR" and "division by zero" in (e["pg_message"] or "")],
            "division-by-zero error")
    chunks = message_chunks(parse_raw(pg_syslog_capture), "ERROR:  division by zero")
    assert e["line_count"] == len(chunks) >= 2
    assert (e["process_pid"], e["pg_seq"]) == (int(chunks[0]["pid"]), chunks[0]["seq"])
    # the statement as the client sent it: chunks joined where PostgreSQL cut them, rsyslog's #011
    # escapes decoded, and the tab PostgreSQL put after each newline removed
    sent = pg_syslog_capture.long_statement
    got = e["statement"]
    if got != sent:
        diff = difflib.unified_diff(sent.split("\n"), (got or "").split("\n"), "sent", "statement", lineterm="", n=0)
        tabbed = "equals" if got == pg_with_tabs(sent) else "differs from"
        pytest.fail(f"statement differs from what the client sent (and {tabbed} it with PostgreSQL's tabs):\n"
                    + "\n".join(line if len(line) < 160 else line[:150] + f"... ({len(line)} chars)" for line in diff),
                    pytrace=False)


def test_incomplete_startup_packet(pg_events):
    e = one([e for e in pg_events if e["event_type"] == "postgresql.incomplete_startup"], "incomplete startup packet")
    assert e["db_name"] == "[unknown]"
    assert e["pg_level"] == "LOG"
    assert e["source_ip"] == "127.0.0.1"
