"""A scan is not a dump (issue 17): real sqlmap scans a safe page and then dumps a table through an
injectable one, in one capture window, and ``logsalvage investigate`` must tell the two apart.

Same lab as test_sqlmap_scan.py: the session's rsyslogd and PostgreSQL with the incident's logging
settings (conftest.py, daemons.py; ``log_min_duration_statement = 3000`` among them) and a private
Apache httpd with mod_php (webapp.py), all on 127.0.0.1. The shop database holds ``items`` and the
application's ``customer`` table (80 made-up people). In order, with the epoch time of each phase's
start and end recorded:

1. ordinary visits (``/``, ``/item.php?id=1..3``, ``/safe.php?id=1..3``);
2. phase 1, the scan: ``sqlmap --batch`` with its default techniques, level 1, risk 1, against
   ``safe.php?id=1`` alone. safe.php binds the parameter (``pg_query_params``), so sqlmap finds
   nothing; PostgreSQL still logs an ``invalid input syntax for type integer`` error for each
   probe that is not a number (the statement is ``… WHERE id = $1``);
3. a pause of ``PAUSE_S`` seconds;
4. phase 2, the dump: ``sqlmap --technique=U --dump -T customer --threads 1`` through the
   injectable ``item.php?id=1``: UNION queries that answer 200 with the customers in the page,
   which leave no trace in the database log beyond the errors of sqlmap's column-count probes.

The evidence (web/var/log/httpd/access_log, db/var/log/messages cut between two markers of its own,
case.yaml with hosts web and db in UTC) then goes through ``logsalvage investigate``. The raw tests
check what sqlmap and the daemons did; the ``findings`` tests are the acceptance contract of
issue 17 on findings.json: a scan of /safe.php (``sqli_scan``) that is neither an injection nor an
extraction, an injectable /item.php (``sqli_injectable``), an extraction of ``customer`` through it
(``sqli_extraction``) dated inside phase 2, ``verdict.exfiltration == "found"``, and no web shell.

The checked-in fixture ``tests/data/sqlmap_dump/`` (the evidence tree, case.yaml and phases.json:
the epoch start and end of each phase, the sqlmap version and commands) is a capture of this test,
for unit tests that need no daemons. To regenerate it, as root with the daemons installed::

    LOGSALVAGE_REGENERATE_FIXTURE=1 python -m pytest -q tests/integration/test_sqlmap_dump.py -p no:cacheprovider

The fixture is rewritten only after a capture in which phase 1 found nothing and phase 2 dumped all
80 customers, whatever the findings tests say.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # daemons.py, webapp.py, test_sqlmap_scan.py

import daemons  # noqa: E402
import webapp  # noqa: E402
from test_sqlmap_scan import (  # noqa: E402,F401  (web_prerequisites: the shared fixture)
    COMBINED, QUERY_PREFIX, SHOP_DB, SHOP_PASSWORD, SHOP_USER, _between_markers, _log_marker, is_payload,
    logsalvage, pg_records, query_of, web_prerequisites, write_evidence,
)

pytestmark = [pytest.mark.daemon, pytest.mark.slow]

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "data" / "sqlmap_dump"
REGENERATE = "LOGSALVAGE_REGENERATE_FIXTURE"
CUSTOMERS = 80
PAUSE_S = 5  # between the phases, so that each is a run of its own in time
SLACK_S = 2  # the access log's times are whole seconds, sqlmap starts up before its first request
ORDINARY = ("/", "/item.php?id=1", "/item.php?id=2", "/item.php?id=3",
            "/safe.php?id=1", "/safe.php?id=2", "/safe.php?id=3")
SAFE_URL, DUMP_URL = "/safe.php?id=1", "/item.php?id=1"
SAFE_STATEMENT = "SELECT name FROM items WHERE id = $1"  # what safe.php sends, the id bound as $1
NOT_INJECTABLE = "all tested parameters do not appear to be injectable"


@dataclass(frozen=True)
class DumpCapture:
    evidence: Path  # web/var/log/httpd/access_log, db/var/log/messages
    config: Path  # case.yaml
    access_lines: tuple[str, ...]
    db_lines: tuple[str, ...]
    phases: dict[str, tuple[float, float]]  # ordinary, scan (phase 1), dump (phase 2): epoch start, end
    scan: webapp.SqlmapRun  # phase 1: safe.php, default techniques
    dump: webapp.SqlmapRun  # phase 2: item.php, --technique=U --dump -T customer
    dump_csv: Path | None  # sqlmap's copy of the dumped table
    window: tuple[float, float]  # epoch seconds: start marker .. end marker logged


# -- the shop -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop(postgres_daemon, pg_syslog_capture):
    """The shop's role and database with ``items`` and ``customer``.

    test_sqlmap_scan.py creates the same role and database without checking first: what this
    fixture creates it drops again at the end of the module, and what that test left (when it ran
    first in the session) it reuses. Depends on ``pg_syslog_capture`` for the same reason as that
    test's ``scan``: the session's own snapshot of the syslog file comes before this traffic.
    """
    pg = postgres_daemon
    created = []
    if pg.psql(f"SELECT 1 FROM pg_roles WHERE rolname = '{SHOP_USER}'").stdout.strip() != "1":
        pg.psql(f"CREATE ROLE {SHOP_USER} LOGIN PASSWORD '{SHOP_PASSWORD}'")
        created.append(f"DROP ROLE IF EXISTS {SHOP_USER}")
    if pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{SHOP_DB}'").stdout.strip() != "1":
        pg.psql(f"CREATE DATABASE {SHOP_DB} OWNER {SHOP_USER}")
        created.append(f"DROP DATABASE IF EXISTS {SHOP_DB} WITH (FORCE)")
    try:
        for sql in webapp.shop_tables_sql(items=5, customers=CUSTOMERS):
            pg.psql(sql, user=SHOP_USER, password=SHOP_PASSWORD, db=SHOP_DB)
        count = pg.psql("SELECT count(*) FROM customer", user=SHOP_USER, password=SHOP_PASSWORD, db=SHOP_DB)
        assert count.stdout.strip() == str(CUSTOMERS), count.stdout
        yield SHOP_DB
    finally:
        for sql in reversed(created):
            pg.psql(sql, check=False)


# -- the capture ----------------------------------------------------------------------------------

def _dumped_entries(out: str) -> int | None:
    """How many entries sqlmap says it dumped from ``customer`` (its ``[N entries]`` under the table)."""
    m = re.search(r"^Table: customer\s*\n\[(\d+) entr(?:y|ies)\]", out, re.M)
    return int(m[1]) if m else None


def _sqlmap_failure(what: str, run: webapp.SqlmapRun) -> str:
    return (f"{what}: sqlmap exited {run.returncode} after {run.seconds:.0f} s\n$ {' '.join(run.command)}\n"
            f"stdout:\n{run.stdout[-6000:]}\nstderr:\n{run.stderr[-3000:]}")


@pytest.fixture(scope="module")
def capture(web_prerequisites, daemon_root, rsyslog_daemon, postgres_daemon, pg_syslog_capture, shop,
            tmp_path_factory) -> DumpCapture:
    """Ordinary visits, phase 1 (scan of safe.php), a pause, phase 2 (dump through item.php)."""
    pg, rs = postgres_daemon, rsyslog_daemon
    token = f"{os.getpid()}-{time.time_ns()}"
    start_marker, end_marker = f"logsalvage sqlmap dump start {token}", f"logsalvage sqlmap dump end {token}"
    _log_marker(pg, rs, start_marker)
    began = time.time()
    # a ServerRoot of its own: test_sqlmap_scan.py's access log must not see this traffic
    ap = webapp.start_apache(daemon_root / "apache-dump", pg_port=pg.port, db=SHOP_DB, db_user=SHOP_USER,
                             db_password=SHOP_PASSWORD)
    try:
        visits_started = time.time()
        for target in ORDINARY:
            status, body = webapp.http_get(ap.port, target)
            assert status == 200, f"GET {target}: {status}\n{body[:2000]}\n{daemons._tail(ap.error_log)}"
            if "id=" in target:  # both pages read the item from the database
                item = f"item {target.rsplit('=', 1)[1]}"
                assert item in body, f"{target} does not reach the database:\n{body[:2000]}"
        visits_ended = time.time()
        time.sleep(PAUSE_S)
        scan = webapp.run_sqlmap(f"{ap.base_url}{SAFE_URL}", tmp_path_factory.mktemp("sqlmap-safe"), technique=None,
                                 extra=["--threads", "1"])
        time.sleep(PAUSE_S)
        dump_dir = tmp_path_factory.mktemp("sqlmap-dump")
        dump = webapp.run_sqlmap(f"{ap.base_url}{DUMP_URL}", dump_dir, technique="U",
                                 extra=["--threads", "1", "--dump", "-T", "customer"])
    finally:
        ap.stop()
    _log_marker(pg, rs, end_marker)
    ended = time.time() + 1
    if dump.returncode != 0 or _dumped_entries(dump.stdout) != CUSTOMERS:
        pytest.fail(_sqlmap_failure(f"phase 2 did not dump {CUSTOMERS} entries of table customer", dump),
                    pytrace=False)
    dump_csv = next(iter(sorted(dump_dir.glob("output/*/dump/*/customer.csv"))), None)

    evidence, config, web_log, db_log = write_evidence(
        tmp_path_factory.mktemp("sqlmap-dump-evidence"), ap.access_log.read_bytes(),
        _between_markers(rs.log_file.read_bytes(), start_marker, end_marker))
    cap = DumpCapture(
        evidence=evidence, config=config,
        access_lines=tuple(web_log.read_text().splitlines()), db_lines=tuple(db_log.read_text().splitlines()),
        phases={"ordinary": (visits_started, visits_ended), "scan": (scan.started, scan.ended),
                "dump": (dump.started, dump.ended)},
        scan=scan, dump=dump, dump_csv=dump_csv, window=(int(began), ended),
    )
    if os.environ.get(REGENERATE, "").strip() not in ("", "0"):
        if NOT_INJECTABLE not in scan.stdout or "Parameter: id (GET)" in scan.stdout:
            pytest.fail(_sqlmap_failure(f"{REGENERATE}: phase 1 did not come out clean, fixture not written", scan),
                        pytrace=False)
        _write_fixture(cap, pg.version)
    return cap


def _sqlmap_version() -> str:
    cp = subprocess.run([*webapp.sqlmap_command(), "--version"], check=False, capture_output=True, text=True,
                        stdin=subprocess.DEVNULL, timeout=60)
    return (cp.stdout or cp.stderr).strip().splitlines()[-1] if (cp.stdout or cp.stderr).strip() else "unknown"


def _portable(run: webapp.SqlmapRun) -> list[str]:
    """The command as run, without this machine's paths (the port of the page stays)."""
    out_dir = run.command[run.command.index("--output-dir") + 1]
    return ["sqlmap", *("<output-dir>" if a == out_dir else a for a in run.command[1:])]


def _write_fixture(cap: DumpCapture, pg_version: int) -> None:
    """Replace tests/data/sqlmap_dump/ with this capture."""
    if FIXTURE_DIR.exists():
        shutil.rmtree(FIXTURE_DIR)
    shutil.copytree(cap.evidence, FIXTURE_DIR / "evidence")
    shutil.copyfile(cap.config, FIXTURE_DIR / "case.yaml")

    def span(name: str) -> dict:
        a, b = (round(t, 3) for t in cap.phases[name])
        return {"start": a, "end": b,
                "start_utc": datetime.fromtimestamp(a, timezone.utc).isoformat(timespec="milliseconds"),
                "end_utc": datetime.fromtimestamp(b, timezone.utc).isoformat(timespec="milliseconds")}

    version = _sqlmap_version()
    phases = {
        "about": "Capture of tests/integration/test_sqlmap_dump.py (regenerate with "
                 f"{REGENERATE}=1): epoch seconds of each phase; the logs are in UTC.",
        "capture": {"start": cap.window[0], "end": round(cap.window[1], 3)},
        "ordinary": {**span("ordinary"), "targets": list(ORDINARY), "user_agent": webapp.USER_AGENT},
        "phase1_scan": {**span("scan"), "target": SAFE_URL, "sqlmap_version": version,
                        "command": _portable(cap.scan), "returncode": cap.scan.returncode,
                        "injectable": False},
        "phase2_dump": {**span("dump"), "target": DUMP_URL, "sqlmap_version": version,
                        "command": _portable(cap.dump), "returncode": cap.dump.returncode,
                        "injectable": True, "dumped": {"table": "public.customer", "entries": CUSTOMERS}},
        "pause_s": PAUSE_S,
        "postgresql_major": pg_version,
        "database": {"name": SHOP_DB, "user": SHOP_USER, "client": "127.0.0.1"},
    }
    (FIXTURE_DIR / "phases.json").write_text(json.dumps(phases, indent=2) + "\n")
    print(f"\nwrote {FIXTURE_DIR}")


# -- raw: what sqlmap and the daemons did ---------------------------------------------------------

def requests(cap: DumpCapture) -> list[re.Match]:
    parsed = [COMBINED.match(line) for line in cap.access_lines]
    assert all(parsed), [line for line, m in zip(cap.access_lines, parsed) if not m][:5]
    return parsed


def sqlmap_requests(cap: DumpCapture, path: str) -> list[re.Match]:
    return [m for m in requests(cap) if m["ua"].startswith("sqlmap/") and m["target"].split("?", 1)[0] == path]


def epoch(apache_time: str) -> float:
    return datetime.strptime(apache_time, "%d/%b/%Y:%H:%M:%S %z").timestamp()


def inside(t: float, span: tuple[float, float], slack: float = SLACK_S) -> bool:
    return span[0] - slack <= t <= span[1] + slack


def test_phase1_finds_the_safe_page_not_injectable(capture):
    out = capture.scan.stdout
    reqs = sqlmap_requests(capture, "/safe.php")
    print(f"\nphase 1: sqlmap ran {capture.scan.seconds:.1f} s (exit {capture.scan.returncode}), "
          f"{len(reqs)} requests to /safe.php, statuses {sorted({m['status'] for m in reqs})}")
    assert NOT_INJECTABLE in out, _sqlmap_failure("phase 1", capture.scan)
    assert "Parameter: id (GET)" not in out, _sqlmap_failure("phase 1 found an injection", capture.scan)
    assert len(reqs) >= 20
    assert sum(1 for m in reqs if is_payload(query_of(m["target"]))) >= 10
    assert all(inside(epoch(m["time"]), capture.phases["scan"]) for m in reqs)


def test_phase2_dumps_the_customers_with_union_queries(capture):
    out = capture.dump.stdout
    reqs = sqlmap_requests(capture, "/item.php")
    unions = [m for m in reqs if re.search(r"(?i)\bunion\s+all\s+select\b", unquote_plus(query_of(m["target"]) or ""))]
    print(f"\nphase 2: sqlmap ran {capture.dump.seconds:.1f} s, {len(reqs)} requests to /item.php, "
          f"{len(unions)} with UNION ALL SELECT")
    print("\n".join(line for line in out.splitlines()
                    if line.startswith(("Parameter:", "    Type:", "    Title:", "back-end DBMS", "Table:"))
                    or re.match(r"\[\d+ entr", line))[-2000:])
    assert "Parameter: id (GET)" in out and "Type: UNION query" in out, out[-4000:]
    assert _dumped_entries(out) == CUSTOMERS, out[-4000:]
    assert capture.dump_csv is not None, "sqlmap wrote no customer.csv"
    with capture.dump_csv.open(newline="") as f:
        dumped = list(csv.DictReader(f))
    assert sorted(int(r["id"]) for r in dumped) == list(range(1, CUSTOMERS + 1))
    assert {r["email"] for r in dumped} == {c[2] for c in webapp.customer_rows(CUSTOMERS)}
    assert unions and all(m["status"] == "200" for m in unions)
    assert all(inside(epoch(m["time"]), capture.phases["dump"]) for m in reqs)
    # the answers that carry the customers are bigger than the page of one item
    plain = [int(m["bytes"]) for m in reqs if query_of(m["target"]) == "id=1"]
    assert plain and max(int(m["bytes"]) for m in unions) > max(plain)


def test_phases_are_apart_in_the_access_log(capture):
    reqs = requests(capture)
    ordinary = [m for m in reqs if m["ua"] == webapp.USER_AGENT]
    assert [m["target"] for m in ordinary] == list(ORDINARY)
    assert not any(is_payload(query_of(m["target"])) for m in ordinary)
    assert {m["ip"] for m in reqs} == {"127.0.0.1"}
    scan_times = [epoch(m["time"]) for m in sqlmap_requests(capture, "/safe.php")]
    dump_times = [epoch(m["time"]) for m in sqlmap_requests(capture, "/item.php")]
    assert len(scan_times) + len(dump_times) == sum(1 for m in reqs if m["ua"].startswith("sqlmap/"))
    assert max(epoch(m["time"]) for m in ordinary) < min(scan_times)
    assert max(scan_times) + PAUSE_S - 1 <= min(dump_times), "no pause between the phases"


def test_database_log_of_both_phases(capture):
    """Phase 1's probes fail in PostgreSQL as values bound to $1 (the error quotes the value, the
    statement is ``… = $1``); phase 2's UNION queries that read the customers succeed and log
    nothing, its column-count and fingerprint probes are errors with the payload in the statement."""
    prefix = re.compile(rf"^DATABASE={SHOP_DB},USER={SHOP_USER},CLIENT=127\.0\.0\.1\(\d+\),(?P<level>[A-Z]+):  ")
    records = [r for r in pg_records(capture) if prefix.match(r["text"])]
    errors = [r for r in records if prefix.match(r["text"])["level"] == "ERROR"]
    statements = [r["text"].split(",STATEMENT:  ", 1)[1] if ",STATEMENT:  " in r["text"] else None for r in errors]
    safe = [r for r, s in zip(errors, statements) if s == SAFE_STATEMENT]
    injected = [(r, s) for r, s in zip(errors, statements)
                if s and s != SAFE_STATEMENT and s.startswith(QUERY_PREFIX)]
    print(f"\n{len(records)} shop records, {len(errors)} errors: {len(safe)} from safe.php, "
          f"{len(injected)} from item.php; samples:\n"
          + "\n".join(r["text"][:400] for r in [*safe[:2], *(r for r, _ in injected)]))
    assert safe, "no error from safe.php's probes"
    assert all("invalid input syntax for type integer" in r["text"] for r in safe)
    assert len(safe) + len(injected) == len(errors), [s for s in statements if s != SAFE_STATEMENT
                                                      and not (s or "").startswith(QUERY_PREFIX)][:5]
    assert all(is_payload(s[len(QUERY_PREFIX):]) for _, s in injected)
    # safe.php's errors quote the PG_SLEEP payloads sqlmap sent, but no statement slept in either phase
    assert not [r for r in records if prefix.match(r["text"])["level"] == "LOG" and "duration: " in r["text"]]


# --- investigate: the acceptance contract of issue 17 ---------------------------------------------

@pytest.fixture(scope="module")
def findings(capture, tmp_path_factory) -> dict:
    case = tmp_path_factory.mktemp("sqlmap-dump-case") / "case"
    cp = logsalvage("investigate", str(capture.evidence), "--case", str(case), "--config", str(capture.config),
                    "--no-timeline")
    if cp.returncode != 0 or not (case / "findings.json").is_file():
        pytest.fail(f"logsalvage investigate exited {cp.returncode}\nstdout:\n{cp.stdout[-3000:]}\n"
                    f"stderr:\n{cp.stderr[-3000:]}\nevidence: {capture.evidence}", pytrace=False)
    return json.loads((case / "findings.json").read_text())


def milestones(findings: dict, kind: str, script: str | None = None) -> list[dict]:
    return [m for m in findings.get("milestones") or []
            if m.get("kind") == kind and (script is None or (m.get("detail") or {}).get("script") == script)]


def summary(findings: dict) -> str:
    return json.dumps([{"kind": m.get("kind"), "time": m.get("time"), "detail": m.get("detail")}
                       for m in findings.get("milestones") or []], indent=1, default=str)[:6000]


def to_epoch(iso: str) -> float:
    t = datetime.fromisoformat(iso)
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()


def table_name(name: str) -> str:
    """``public.customer``, ``"Customer"`` → ``customer``."""
    return name.rsplit(".", 1)[-1].strip('"').lower()


def test_no_web_shell(findings):
    assert not milestones(findings, "first_webshell_execution"), summary(findings)


def test_safe_page_scan_is_a_scan(findings):
    assert milestones(findings, "sqli_scan", "/safe.php"), summary(findings)


def test_safe_page_is_neither_injectable_nor_extracted(findings):
    assert not milestones(findings, "sqli_injectable", "/safe.php"), summary(findings)
    assert not milestones(findings, "sqli_extraction", "/safe.php"), summary(findings)


def test_item_page_is_injectable(findings):
    found = [m for m in milestones(findings, "sqli_injectable", "/item.php") if m["detail"].get("parameter") == "id"]
    assert found, summary(findings)


def test_customer_extraction_dated_in_phase2(findings, capture):
    phase2 = capture.phases["dump"]
    found = [m for m in milestones(findings, "sqli_extraction", "/item.php") if m["detail"].get("parameter") == "id"]
    assert found, summary(findings)
    customer = [m for m in found if "customer" in {table_name(t) for t in m["detail"].get("tables") or ()}]
    assert customer, f"no extraction names table customer: {summary(findings)}"
    window = (f"phase 2 ran {datetime.fromtimestamp(phase2[0], timezone.utc).isoformat()} .. "
              f"{datetime.fromtimestamp(phase2[1], timezone.utc).isoformat()}")
    for m in customer:
        assert inside(to_epoch(m["time"]), phase2), f"{window}; milestone {m}"
        assert m["detail"].get("until") and inside(to_epoch(m["detail"]["until"]), phase2), f"{window}; milestone {m}"


def test_verdict_says_data_left(findings):
    verdict = findings.get("verdict") or {}
    assert verdict.get("exfiltration") == "found", json.dumps(verdict, indent=1, default=str)[:4000]
