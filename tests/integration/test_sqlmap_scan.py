"""Real SQL-injection traffic: sqlmap scans a deliberately injectable PHP page on Apache httpd, backed
by the real PostgreSQL that logs through rsyslog with the incident's settings (LOCAL7,
``log_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'``, ``log_min_error_statement = error``); the
access log and the syslog file become an evidence tree that ``logsalvage ingest`` reads and
``logsalvage detect`` must flag.

Daemons: the session's rsyslogd and PostgreSQL (conftest.py, daemons.py) and a private Apache httpd
with mod_php (webapp.py). sqlmap is the PyPI package (the ``test`` extra). The whole scan is on
127.0.0.1. Three layers: what sqlmap and the daemons did (``raw``), what ingest made of it, and
what detect concludes (skipped while the ``detect`` command does not exist).

sqlmap runs all five techniques (``--technique=BEUST``, level 1, risk 1, about 60 requests in about
25 s): boolean-based, error-based and UNION payloads leave PostgreSQL errors with their statements;
stacked-query and time-based payloads leave ``PG_SLEEP(5)`` statements in duration records, like
the incident's ``1);SELECT PG_SLEEP(5)--``.
"""

from __future__ import annotations

import json
import os
import shutil
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # daemons.py, webapp.py

import daemons
import webapp
from prerequisites import unavailable

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

SRC = Path(__file__).resolve().parents[2] / "src"
SHOP_DB, SHOP_USER, SHOP_PASSWORD = "shop", "shopapp", "Ferry-item-7"
QUERY_PREFIX = "SELECT name FROM items WHERE id = "  # what item.php puts before the id parameter
# the ordinary visits before the scan: never part of a finding
ORDINARY = ("/", "/item.php?id=1", "/item.php?id=2", "/item.php?id=3")
# SQL in a parameter value (after percent-decoding): what an injection probe carries and a plain id does not
SQL_PAYLOAD = re.compile(r"(?i)\b(?:and|or|union|select|cast|chr|null|order\s+by|pg_sleep|case\s+when)\b|['\"();]|--")
COMBINED = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<time>[^\]]+)\] "(?P<method>\S+) (?P<target>\S+) (?P<proto>[^"]+)" '
    r'(?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referrer>[^"]*)" "(?P<ua>[^"]*)"$')
PG_LINE = re.compile(r"^(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) postgres\[(?P<pid>\d+)\]: "
                     r"\[(?P<seq>\d+)-(?P<chunk>\d+)\] (?P<text>.*)$")
DB_ERRORS = ("invalid input syntax for type", "syntax error at or near")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def logsalvage(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], check=False, capture_output=True, text=True, env=_env(),
                          stdin=subprocess.DEVNULL, timeout=timeout)


def is_payload(query: str | None) -> bool:
    return bool(query) and bool(SQL_PAYLOAD.search(unquote_plus(query)))


@pytest.fixture(scope="session")
def web_prerequisites():
    """Apache, mod_php, php-pgsql and sqlmap; checked before any daemon starts."""
    missing = webapp.missing_prerequisites()
    if webapp.sqlmap_command() is None:
        missing.append("sqlmap not installed (PyPI package sqlmap, in the test extra)")
    if missing:
        reason = ("sqlmap scan test needs: " + "; ".join(missing)
                  + " (install with: sudo bash .ci/install-daemons.sh; pip install -e '.[test]')")
        unavailable(reason, "the CI scripts")


# -- the scan --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ScanCapture:
    evidence: Path  # web/var/log/httpd/access_log, db/var/log/messages
    config: Path  # case.yaml
    access_lines: tuple[str, ...]
    db_lines: tuple[str, ...]
    sqlmap: webapp.SqlmapRun
    window: tuple[float, float]  # epoch seconds: first ordinary visit .. end marker logged


def _log_marker(pg, rs, text: str) -> None:
    """A LOG record with ``text`` through PostgreSQL's syslog, waited for in rsyslog's file."""
    pg.psql(f"DO $$BEGIN RAISE LOG '{text}'; END$$")
    daemons.wait_until(lambda: rs.log_file.exists() and text.encode() in rs.log_file.read_bytes(), 20,
                       f"rsyslog to write {text!r}")


def _between_markers(data: bytes, start: str, end: str) -> bytes:
    """The syslog lines after the whole message holding ``start`` and before the one holding ``end``."""
    lines = data.splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if start.encode() in line)
    head = PG_LINE.match(lines[first].decode())
    same = f"postgres[{head['pid']}]: [{head['seq']}-".encode()
    a = first + 1
    while a < len(lines) and same in lines[a]:  # the marker's CONTEXT and STATEMENT chunks
        a += 1
    b = next(i for i in range(a, len(lines)) if end.encode() in lines[i])
    return b"".join(lines[a:b])


@pytest.fixture(scope="module")
def scan(web_prerequisites, daemon_root, rsyslog_daemon, postgres_daemon, pg_syslog_capture,
         tmp_path_factory) -> ScanCapture:
    """Serve item.php, visit it as a person would, let sqlmap scan it, and collect the evidence.

    Depends on ``pg_syslog_capture`` only so that fixture's snapshot of the shared syslog file is
    taken before the scan's traffic, whatever order the tests run in; this capture is cut out of the
    file between two markers of its own (the markers left out).
    """
    pg, rs = postgres_daemon, rsyslog_daemon
    pg.psql(f"CREATE ROLE {SHOP_USER} LOGIN PASSWORD '{SHOP_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {SHOP_DB} OWNER {SHOP_USER}")
    for sql in ("CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL)",
                "INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, 5) g"):
        pg.psql(sql, user=SHOP_USER, password=SHOP_PASSWORD, db=SHOP_DB)

    token = f"{os.getpid()}-{time.time_ns()}"
    start_marker, end_marker = f"logsalvage sqlmap test start {token}", f"logsalvage sqlmap test end {token}"
    _log_marker(pg, rs, start_marker)
    began = time.time()
    ap = webapp.start_apache(daemon_root / "apache", pg_port=pg.port, db=SHOP_DB, db_user=SHOP_USER,
                             db_password=SHOP_PASSWORD)
    try:
        for target in ORDINARY:
            status, body = webapp.http_get(ap.port, target)
            assert status == 200, f"GET {target}: {status}\n{body[:2000]}\n{daemons._tail(ap.error_log)}"
        status, body = webapp.http_get(ap.port, "/item.php?id=2")
        assert "item 2" in body, f"item.php does not reach the database:\n{body[:2000]}"
        run = webapp.run_sqlmap(f"{ap.base_url}/item.php?id=1", tmp_path_factory.mktemp("sqlmap"))
    finally:
        ap.stop()
    _log_marker(pg, rs, end_marker)
    ended = time.time() + 1
    if run.returncode != 0:
        pytest.fail(f"sqlmap exited {run.returncode} after {run.seconds:.0f} s\nstdout:\n{run.stdout[-4000:]}\n"
                    f"stderr:\n{run.stderr[-4000:]}", pytrace=False)

    evidence, config, web_log, db_log = write_evidence(
        tmp_path_factory.mktemp("sqlmap-evidence"), ap.access_log.read_bytes(),
        _between_markers(rs.log_file.read_bytes(), start_marker, end_marker))
    return ScanCapture(
        evidence=evidence, config=config,
        access_lines=tuple(web_log.read_text().splitlines()), db_lines=tuple(db_log.read_text().splitlines()),
        sqlmap=run, window=(int(began), ended),
    )


CASE_YAML = textwrap.dedent("""\
    hosts:
      web:
        timezone: UTC
        paths: ["web/**"]
        role: web
      db:
        timezone: UTC
        paths: ["db/**"]
        role: database
    postgresql:
      log_line_prefix: 'DATABASE=%d,USER=%u,CLIENT=%r,'
    """)


def write_evidence(ev: Path, access_log: bytes, db_log: bytes) -> tuple[Path, Path, Path, Path]:
    """The evidence tree (web's access log, db's syslog file) and case.yaml under ``ev``:
    (evidence dir, case.yaml, access log, syslog file)."""
    evidence = ev / "evidence"
    web_log, pg_log = evidence / "web/var/log/httpd/access_log", evidence / "db/var/log/messages"
    for path, data in ((web_log, access_log), (pg_log, db_log)):
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
    config = ev / "case.yaml"
    config.write_text(CASE_YAML)
    return evidence, config, web_log, pg_log


def sqlmap_requests(scan: ScanCapture) -> list[re.Match]:
    parsed = [COMBINED.match(line) for line in scan.access_lines]
    assert all(parsed), [line for line, m in zip(scan.access_lines, parsed) if not m][:5]
    return [m for m in parsed if m["ua"].startswith("sqlmap/")]


def query_of(target: str) -> str | None:
    return target.split("?", 1)[1] if "?" in target else None


def pg_records(scan: ScanCapture) -> list[dict]:
    """The first chunk of each PostgreSQL message in the capture, with its continuation chunks joined."""
    out: dict[tuple[str, int], dict] = {}
    for line in scan.db_lines:
        m = PG_LINE.match(line)
        if not m:
            continue
        key = (m["pid"], int(m["seq"]))
        if m["chunk"] == "1":
            out[key] = {"pid": m["pid"], "seq": int(m["seq"]), "text": m["text"]}
        elif key in out:
            out[key]["text"] += m["text"]
    return list(out.values())


def shop_errors(scan: ScanCapture) -> list[dict]:
    prefix = re.compile(rf"^DATABASE={SHOP_DB},USER={SHOP_USER},CLIENT=127\.0\.0\.1\(\d+\),ERROR:  ")
    return [r for r in pg_records(scan) if prefix.match(r["text"])]


# --- raw: what sqlmap and the daemons did --------------------------------------------------------

def test_sqlmap_found_the_injection(scan):
    out = scan.sqlmap.stdout
    reqs = sqlmap_requests(scan)
    print(f"\nsqlmap ran {scan.sqlmap.seconds:.1f} s, {len(reqs)} requests; "
          f"{len(shop_errors(scan))} PostgreSQL errors logged")
    print("\n".join(line for line in out.splitlines() if line.startswith(("Parameter:", "    Type:", "    Title:",
                                                                         "back-end DBMS")) or "[INFO]" in line)[-3000:])
    assert "Parameter: id (GET)" in out, out[-4000:]
    assert re.search(r"back-end DBMS: PostgreSQL", out), out[-4000:]
    for kind in ("boolean-based blind", "error-based", "UNION query", "stacked queries", "time-based blind"):
        assert f"Type: {kind}" in out, f"sqlmap did not report {kind}:\n{out[-4000:]}"


def test_raw_access_log_holds_the_scan(scan):
    reqs = sqlmap_requests(scan)
    assert len(reqs) >= 50, f"only {len(reqs)} sqlmap requests in the access log"
    assert {m["ip"] for m in reqs} == {"127.0.0.1"}
    probes = [m for m in reqs if m["target"].startswith("/item.php?") and is_payload(query_of(m["target"]))]
    # the rest repeat the plain id=1 (sqlmap's stability and comparison requests)
    assert len(probes) >= 30, f"only {len(probes)} requests carry SQL in the id parameter"
    ordinary = [m for m in (COMBINED.match(line) for line in scan.access_lines) if m["ua"] == webapp.USER_AGENT]
    assert [m["target"] for m in ordinary] == [*ORDINARY, "/item.php?id=2"]
    assert not any(is_payload(query_of(m["target"])) for m in ordinary)


def test_raw_postgres_errors_carry_payloads(scan):
    errors = shop_errors(scan)
    kinds = {kind: [r for r in errors if kind in r["text"]] for kind in DB_ERRORS}
    assert all(kinds.values()), {k: len(v) for k, v in kinds.items()}
    print(f"\n{len(errors)} errors; samples:\n" + "\n".join(v[0]["text"][:300] for v in kinds.values()))
    # log_min_error_statement = error: the statement is a line (a chunk) of the error's message
    assert all(",STATEMENT:  " in r["text"] for r in errors), [r for r in errors if ",STATEMENT:  " not in r["text"]]
    statements = [r["text"].split(",STATEMENT:  ", 1)[1] for r in errors]
    assert all(s.startswith(QUERY_PREFIX) for s in statements), [s for s in statements if not s.startswith(QUERY_PREFIX)]
    assert all(SQL_PAYLOAD.search(s[len(QUERY_PREFIX):]) for s in statements)


def test_raw_postgres_durations_carry_sleeps(scan):
    """Stacked-query and time-based payloads: PG_SLEEP(5) statements over log_min_duration_statement."""
    prefix = re.compile(rf"^DATABASE={SHOP_DB},USER={SHOP_USER},CLIENT=127\.0\.0\.1\(\d+\),LOG:  duration: "
                        r"(?P<ms>[\d.]+) ms  statement: (?P<statement>.*)$")
    slow = [m for r in pg_records(scan) if (m := prefix.match(r["text"]))]
    print(f"\n{len(slow)} duration records; sample: {slow[0].group(0)[:300] if slow else None}")
    assert slow, "no duration records from the time-based payloads"
    assert all(float(m["ms"]) >= 3000 for m in slow)
    assert all(m["statement"].startswith(QUERY_PREFIX) and "PG_SLEEP(" in m["statement"].upper() for m in slow)
    assert any(";" in m["statement"] for m in slow), "no stacked query among the slow statements"


# --- parsed: what logsalvage made of it -----------------------------------------------------------

@pytest.fixture(scope="module")
def case_dir(scan, tmp_path_factory) -> Path:
    case = tmp_path_factory.mktemp("sqlmap-case") / "case"
    cp = logsalvage("ingest", str(scan.evidence), "--case", str(case), "--config", str(scan.config))
    if cp.returncode != 0:
        pytest.fail(f"logsalvage ingest exited {cp.returncode}\nstdout:\n{cp.stdout[-3000:]}\n"
                    f"stderr:\n{cp.stderr[-3000:]}\nevidence: {scan.evidence}", pytrace=False)
    return case


def rows(con, sql: str, *params) -> list[dict]:
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_ingest_web_requests(con, scan):
    events = rows(con, "SELECT * EXCLUDE (ts_utc), epoch(ts_utc) AS ts_epoch FROM events "
                       "WHERE format_id = 'apache-access' ORDER BY event_id")
    assert len(events) == len(scan.access_lines)
    assert {e["host"] for e in events} == {"web"}
    lo, hi = scan.window
    assert all(lo <= e["ts_epoch"] <= hi for e in events)
    by_line = {e["line_no"]: e for e in events} if "line_no" in events[0] else None
    raw = [COMBINED.match(line) for line in scan.access_lines]
    if by_line is not None:  # each event carries the request line as written
        for no, m in enumerate(raw, 1):
            e = by_line[no]
            assert (e["source_ip"], e["user_agent"], e["http_method"]) == (m["ip"], m["ua"], m["method"]), e
            assert e["url_query"] == query_of(m["target"]), (e["url_query"], m["target"])
    probes = [e for e in events if (e["user_agent"] or "").startswith("sqlmap/") and is_payload(e["url_query"])]
    assert len(probes) >= 30
    assert {e["source_ip"] for e in probes} == {"127.0.0.1"}
    assert {e["url_path"] for e in probes} == {"/item.php"}


def test_ingest_db_errors_with_statements(con, scan):
    errors = rows(con, "SELECT * FROM events WHERE format_id <> 'apache-access' AND pg_level = 'ERROR' "
                       "AND db_name = ? ORDER BY event_id", SHOP_DB)
    raw = shop_errors(scan)
    types: dict[str, int] = {}
    for e in errors:
        types[e["event_type"]] = types.get(e["event_type"], 0) + 1
    print(f"\nPostgreSQL error events by type: {types}")
    assert len(errors) == len(raw)
    assert {e["host"] for e in errors} == {"db"}
    assert {(e["db_user"], e["source_ip"]) for e in errors} == {(SHOP_USER, "127.0.0.1")}
    assert all(str(e["event_type"]).startswith("postgresql.") for e in errors)
    assert types.get("postgresql.invalid_input") and types.get("postgresql.syntax_error"), types
    for e in errors:
        assert e["statement"] and e["statement"].startswith(QUERY_PREFIX), e
        assert SQL_PAYLOAD.search(e["statement"][len(QUERY_PREFIX):]), e["statement"]
    slow = rows(con, "SELECT * FROM events WHERE event_type = 'postgresql.duration' AND db_name = ?", SHOP_DB)
    assert slow and all(e["duration_ms"] >= 3000 and "PG_SLEEP(" in e["statement"].upper() for e in slow), slow


# --- detect: the scan is flagged ------------------------------------------------------------------

@pytest.fixture(scope="module")
def detection(case_dir, tmp_path_factory) -> dict:
    if logsalvage("detect", "--help", timeout=120).returncode != 0:
        pytest.skip("detect command not available")
    # detect writes into its case (the merged timeline, findings.json); the ingest tests keep a
    # read-only connection open on the original, so it runs on a copy
    work = tmp_path_factory.mktemp("sqlmap-detect") / "case"
    shutil.copytree(case_dir, work)
    cp = logsalvage("detect", "--case", str(work), "--json")
    assert cp.returncode == 0, f"detect exited {cp.returncode}\nstdout:\n{cp.stdout[-3000:]}\nstderr:\n{cp.stderr[-3000:]}"
    return json.loads(cp.stdout)


def _finding(detection: dict, rule: str) -> dict:
    found = [f for f in detection["findings"] if f["rule"] == rule]
    assert found, f"no {rule} finding; rules found: {sorted({f['rule'] for f in detection['findings']})}"
    assert len(found) == 1, f"{len(found)} {rule} findings for one scan: {found}"
    return found[0]


def _events_by_id(con, ids) -> dict:
    got = rows(con, "SELECT * FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))", [str(i) for i in ids])
    return {str(e["event_id"]): e for e in got}


def test_detect_flags_the_web_probes(detection, con, scan):
    f = _finding(detection, "web.sqli_probe")
    assert set(f) >= {"id", "rule", "severity", "first_seen", "last_seen", "count", "sources", "event_ids"}
    assert "127.0.0.1" in f["sources"]
    assert f["count"] >= 30 and len(f["event_ids"]) == f["count"]
    assert f["first_seen"] <= f["last_seen"]
    events = _events_by_id(con, f["event_ids"])
    assert len(events) == len(f["event_ids"])
    assert all(e["format_id"] == "apache-access" and e["source_ip"] == "127.0.0.1" for e in events.values())
    assert not [e for e in events.values() if e["user_agent"] == webapp.USER_AGENT], "ordinary visits flagged"


def test_detect_flags_the_db_errors(detection, con, scan):
    f = _finding(detection, "db.sqli_trace")
    assert f["count"] >= 10 and len(f["event_ids"]) == f["count"]
    events = _events_by_id(con, f["event_ids"])
    assert len(events) == len(f["event_ids"])
    assert all(e["db_name"] == SHOP_DB and str(e["event_type"]).startswith("postgresql.") for e in events.values())
    assert all(e["statement"] and e["statement"].startswith(QUERY_PREFIX) for e in events.values())
    errors = {e["event_id"] for e in rows(con, "SELECT event_id FROM events WHERE pg_level = 'ERROR' AND db_name = ?",
                                          SHOP_DB)}
    assert errors <= {e["event_id"] for e in events.values()}, "PostgreSQL errors of the scan left out"
    assert isinstance(detection.get("milestones"), list)
