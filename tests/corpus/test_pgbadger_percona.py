"""PostgreSQL logs from pgbadger's and Percona Toolkit's test suites, parsed, and checked against
the counts those tools' tests expect.

Sources:
- darold/pgbadger @ a1ad95a035a0c2d246fe632eb1c361d4bde0ddae (PostgreSQL License, Copyright Gilles
  Darold): t/fixtures/{anonymize.log, begin_end.log, csv_statement_without_duration.log,
  light.postgres.log.bz2, multiline_param.log, pg-syslog.1.bz2, pg_rawcsv.log, pg_vacuums.log.gz,
  postgresql_param_range.log, queryid.log.gz, rds.log.bz2, stmt_type.log, tempfile_only.log.gz,
  weeknumber.log} and t/exp/stmt_type.out; expected numbers as stated in corpus/MANIFEST.tsv.
- percona/percona-toolkit tag 2.1.10 @ d2075acd0fde4bfb2b245df8d8653c42d6d946af (GPL-2.0):
  t/lib/samples/pg/pg-log-00{1..10}.txt and pg-syslog-00{1..10}.txt; expected reassembly in
  corpus/percona-toolkit-pg/EXPECTED_percona_syslogparser.md (transcribed from percona's
  t/lib/SysLogParser.t and frankfarmer/pgfouine @ e820c3e800214470accef2625c634342520804a4
  tests/TestLogFiles.class.php).

Not covered: pgbadger/logplex.gz (Heroku's logplex drain format, 'app[postgres.4882]: [GREEN] …', is
not syslog as a syslogd writes it and needs a format of its own) and pgbadger/pg-timezones.log (see
test_pg_timezones_single_space: one space after the severity, which PostgreSQL never writes).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

import pytest

from corpus_support import assert_coverage, parse, read_bytes, wall

PERCONA_PREFIX = "%m c=%c,u=%u,D=%d "
# (file, format, log_line_prefix, issues): None = at least 99 % of lines in events
FILES = [
    ("percona-toolkit-pg/pg-log-001.txt", "postgresql-stderr", PERCONA_PREFIX, None),
    # 002 and 009 begin in the middle of a statement: three tab-indented lines with no record before them
    ("percona-toolkit-pg/pg-log-002.txt", "postgresql-stderr", None, 3),
    ("percona-toolkit-pg/pg-log-003.txt", "postgresql-stderr", None, None),
    ("percona-toolkit-pg/pg-log-004.txt", "postgresql-stderr", None, None),
    ("percona-toolkit-pg/pg-log-005.txt", "postgresql-stderr", None, None),
    ("percona-toolkit-pg/pg-log-006.txt", "postgresql-stderr", None, None),
    # 007 and 010 start with the postmaster's own 'postmaster starting', which is not a log line
    ("percona-toolkit-pg/pg-log-007.txt", "postgresql-stderr", None, 1),
    ("percona-toolkit-pg/pg-log-008.txt", "postgresql-stderr", None, None),
    ("percona-toolkit-pg/pg-log-009.txt", "postgresql-stderr", None, 3),
    ("percona-toolkit-pg/pg-log-010.txt", "postgresql-stderr", None, 1),
    *[(f"percona-toolkit-pg/pg-syslog-{i:03d}.txt", "syslog", None, None) for i in range(1, 11)],
    ("pgbadger/anonymize.log", "postgresql-csvlog", None, None),
    ("pgbadger/begin_end.log", "postgresql-stderr", "%t [%p]: db=%d,user=%u,app=%a,client=%h ", None),
    ("pgbadger/csv_statement_without_duration.log", "postgresql-csvlog", None, None),
    ("pgbadger/light.postgres.log.bz2", "postgresql-stderr", "%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", None),
    ("pgbadger/multiline_param.log", "postgresql-stderr", None, None),
    ("pgbadger/pg-syslog.1.bz2", "syslog", "db=%d,user=%u,app=%a,client=%h ", None),
    # pg_ctl's 'could not start server' and 'Examine the log output.' between the server's lines
    ("pgbadger/pg_rawcsv.log", "postgresql-stderr", "%m [%p] %q%u@%d ", 2),
    ("pgbadger/pg_vacuums.log.gz", "postgresql-stderr", None, None),
    ("pgbadger/postgresql_param_range.log", "postgresql-stderr", None, None),
    ("pgbadger/queryid.log.gz", "postgresql-stderr", None, None),
    ("pgbadger/rds.log.bz2", "postgresql-stderr", "%t:%r:%u@%d:[%p]:", None),
    ("pgbadger/stmt_type.log", "postgresql-stderr", "%m [%p] ", None),
    ("pgbadger/tempfile_only.log.gz", "postgresql-stderr", None, None),
    ("pgbadger/weeknumber.log", "postgresql-csvlog", None, None),
]
_CACHE: dict[str, object] = {}


def parsed(rel: str):
    """Each file is parsed once per session (the big ones take seconds)."""
    if rel not in _CACHE:
        _, fmt, prefix, _ = next(f for f in FILES if f[0] == rel)
        _CACHE[rel] = parse(fmt, read_bytes(rel), **({"pg_log_line_prefix": prefix} if prefix else {}))
    return _CACHE[rel]


@pytest.mark.parametrize("rel,fmt,prefix,issues", FILES, ids=[f[0] for f in FILES])
def test_file_parses(corpus, rel, fmt, prefix, issues):
    result = parsed(rel)
    if issues is None:
        assert_coverage(result, rel)
    else:
        assert len(result.problems()) == issues, f"{rel}:\n{result.describe()}"


def test_orphan_lines_are_the_file_head(corpus):
    for rel in ("percona-toolkit-pg/pg-log-002.txt", "percona-toolkit-pg/pg-log-009.txt"):
        assert [iss[2] for iss in parsed(rel).problems()] == [1, 2, 3]
    for rel in ("percona-toolkit-pg/pg-log-007.txt", "percona-toolkit-pg/pg-log-010.txt"):
        (iss,) = parsed(rel).problems()
        assert iss[4] == "postmaster starting"


def test_prefixless_stderr_is_timeless(corpus):
    """log_line_prefix = '' (PostgreSQL 7.x/8.x default): records with no time, never a guessed one."""
    result = parsed("percona-toolkit-pg/pg-log-010.txt")
    assert result.events and all(r["_stamp"] is None for r in result.events)
    levels = Counter(r["pg_level"] for r in result.events)
    assert levels["LOG"] > 800
    # 7.x wrote a statement's further lines without the tab 8.0 adds; they stay in their record
    multi = parsed("percona-toolkit-pg/pg-log-005.txt").events[2]
    assert multi["statement"] if "statement" in multi else True
    assert multi["raw"].count("\n") == 2 and "u.status='A')" in multi["pg_message"]


# pg-syslog-005 and -002 per EXPECTED_percona_syslogparser.md: one record per [N-*], text without
# the syslog header and '[N-M] ', at the offset of its first physical line
PERCONA_005 = [
    "2010-02-10 09:03:26.918 EST c=4b72bcae.d01,u=[unknown],D=[unknown] LOG:  connection received: host=[local]",
    "2010-02-10 09:03:26.922 EST c=4b72bcae.d01,u=fred,D=fred LOG:  connection authorized: user=fred database=fred",
    "2010-02-10 09:03:36.645 EST c=4b72bcae.d01,u=fred,D=fred LOG:  duration: 0.627 ms  statement: select 1;",
    "2010-02-10 09:03:39.075 EST c=4b72bcae.d01,u=fred,D=fred LOG:  disconnection: session time: 0:00:12.159 "
    "user=fred database=fred host=[local]",
]
PERCONA_002 = [
    (0, "2010-02-08 09:52:41.526 EST c=4b701056.1dc6,u=fred,D=fred LOG:  statement: select * from pg_stat_bgwriter;"),
    (153, "2010-02-08 09:52:41.533 EST c=4b701056.1dc6,u=fred,D=fred LOG:  duration: 8.309 ms"),
    (282, "2010-02-08 09:52:57.807 EST c=4b701056.1dc6,u=fred,D=fred LOG:  statement: create index ix_a on foo (a);"),
    # percona's test splits [18-2] STATEMENT off by a custom rule; as one record it is ERROR + STATEMENT
    (433, '2010-02-08 09:52:57.864 EST c=4b701056.1dc6,u=fred,D=fred ERROR:  relation "ix_a" already exists\n'
          "2010-02-08 09:52:57.864 EST c=4b701056.1dc6,u=fred,D=fred STATEMENT:  create index ix_a on foo (a);"),
]


def test_percona_syslog_reassembly(corpus):
    r005 = parse("syslog", read_bytes("percona-toolkit-pg/pg-syslog-005.txt"), pg_log_line_prefix=PERCONA_PREFIX)
    assert [r["message"] for r in r005.events] == PERCONA_005
    last = r005.events[3]
    assert (last["event_type"], last["db_user"], last["db_name"], last["source_ip"]) == (
        "postgresql.disconnection", "fred", "fred", "[local]")
    r002 = parse("syslog", read_bytes("percona-toolkit-pg/pg-syslog-002.txt"), pg_log_line_prefix=PERCONA_PREFIX)
    assert [(r["_offset"], r["message"]) for r in r002.events] == PERCONA_002
    assert r002.events[3]["statement"] == "create index ix_a on foo (a);"


def test_percona_syslog_003_one_statement(corpus):
    result = parse("syslog", read_bytes("percona-toolkit-pg/pg-syslog-003.txt"), pg_log_line_prefix=PERCONA_PREFIX)
    assert len(result.events) == 2
    stmt = result.events[0]
    assert stmt["pg_seq"] == 21 and stmt["_line_count"] == 13
    assert stmt["statement"].startswith('SELECT n.nspname as "Schema",')
    assert stmt["statement"].endswith("ORDER BY 1,2;")
    # [21-4] continues [21-3] mid-line (PostgreSQL cut the line at its syslog length limit)
    assert "WHEN 's' THEN 'special' END" in stmt["statement"].replace("\n", "")


def test_pgfouine_double_duration(corpus):
    result = parse("syslog", read_bytes("percona-toolkit-pg/pg-syslog-010.txt"))
    by_seq = {r["pg_seq"]: r for r in result.events}
    assert by_seq[12]["duration_ms"] == pytest.approx(3617.465)
    # the statement text itself starts with 45 spaces (pgfouine trims them)
    assert by_seq[13]["duration_ms"] == pytest.approx(3617.465) and by_seq[13]["statement"].lstrip().startswith("select")
    assert by_seq[13]["_line_count"] == 11  # [13-1] .. [13-11]
    assert by_seq[14]["duration_ms"] == pytest.approx(3.358)
    assert by_seq[15]["duration_ms"] == pytest.approx(1982.46)
    assert by_seq[16]["statement"].lstrip().startswith("select sum(coalesce(s0c100r0.units,0)) as")
    assert by_seq[16]["_line_count"] == 9
    first = by_seq[12]
    assert wall(first)[:4] == (2008, 1, 9, "16:16:34")  # the year printed before the month


def test_stmt_type_counts(corpus):
    """pgbadger t/exp/stmt_type.out: the statement of each line, classified by its first words."""
    result = parsed("pgbadger/stmt_type.log")
    statements = [r["statement"] for r in result.events]
    assert len(statements) == 12

    def kind(sql: str) -> str:
        s = sql.lstrip().upper()
        if s.startswith("COPY"):
            return "COPY FROM" if re.search(r"\bFROM\b", s) else "COPY TO"
        for prefix, name in (("WITH", "CTE"), ("CREATE", "DDL"), ("ALTER", "DDL"), ("DROP", "DDL"),
                             ("BEGIN", "TCL"), ("COMMIT", "TCL"), ("ROLLBACK", "TCL"), ("DECLARE", "CURSOR"),
                             ("FETCH", "CURSOR"), ("CLOSE", "CURSOR")):
            if s.startswith(prefix):
                return name
        return s.split()[0]

    expected = {}
    for line in read_bytes("pgbadger/stmt_type.out").decode().splitlines():
        name, count, _ = line.rsplit(" ", 2)
        expected[name.rstrip(":")] = int(count)
    assert Counter(kind(s) for s in statements) == expected
    assert any("forêt & océan" in s for s in statements)
    assert any("камень & почка" in s for s in statements)


def test_begin_end_sessions(corpus):
    """pgbadger's --begin/--end session counts for begin_end.log (times of the disconnection lines)."""
    result = parsed("pgbadger/begin_end.log")
    ends = [r for r in result.events if r["event_type"] == "postgresql.disconnection"]
    assert len(ends) == 8 and all(r["db_user"] == "postgres" and r["db_name"] == "template1" for r in ends)

    def at(r):
        y, m, d, hms, _ = wall(r)
        return dt.datetime(y, m, d, *map(int, hms.split(":")))

    def count(begin=None, end=None):
        n = 0
        for r in ends:
            t = at(r)
            if isinstance(begin, dt.time) and t.time() < begin or isinstance(end, dt.time) and t.time() > end:
                continue
            if isinstance(end, dt.datetime) and t > end:
                continue
            n += 1
        return n

    assert count(begin=dt.time(9, 0)) == 4
    assert count(end=dt.time(20, 30)) == 6
    assert count(begin=dt.time(9, 0), end=dt.time(20, 30)) == 2
    assert count(end=dt.datetime(2021, 2, 15, 20, 30)) == 7
    assert count(end=dt.datetime(2021, 2, 14, 20, 30)) == 3
    assert {r["_stamp"].utc_offset_s for r in result.events} == {3600}  # CET


def test_light_database_counts(corpus):
    result = parsed("pgbadger/light.postgres.log.bz2")
    queries = [r for r in result.events if r.get("db_name") == "postgres" and r.get("statement")]
    assert len(queries) == 629  # pgbadger: database postgres count=629, query_total=629
    assert all(r["db_application"] == "pgbench" and r["source_ip"] == "172.23.0.1" for r in queries)


def test_vacuum_counts(corpus):
    result = parsed("pgbadger/pg_vacuums.log.gz")
    auto = [r for r in result.events if r["event_type"] == "postgresql.autovacuum"]
    per = Counter(r["action"] for r in auto)
    assert (per["analyze"], per["vacuum"]) == (1450, 2094)

    def in_hour(action, day, hour):
        return sum(1 for r in auto if r["action"] == action and wall(r)[:3] == (2024, 6, day)
                   and wall(r)[3].startswith(f"{hour:02d}:"))

    assert in_hour("analyze", 27, 1) == 474
    assert in_hour("vacuum", 27, 2) == 730


def test_csv_statement_without_duration(corpus):
    result = parsed("pgbadger/csv_statement_without_duration.log")
    slow, health = result.events
    assert slow["duration_ms"] == pytest.approx(688786.283)
    assert "duration_ms" not in health and health.get("statement")


def test_rds_no_hba_entries_and_durations(corpus):
    result = parsed("pgbadger/rds.log.bz2")
    rejected = [r for r in result.events if r["event_type"] == "postgresql.hba_reject"]
    assert rejected and {r["source_ip"] for r in rejected} == {"192.168.1.201"}
    wanted = "select datname from pg_database where not datistemplate and datallowconn;"
    total = sum(r["duration_ms"] for r in result.events
                if (r.get("statement") or "").strip().lower() == wanted and r.get("source_ip") != "192.168.1.201")
    assert total == pytest.approx(2.667, abs=0.0005)


def test_pg_syslog_continuations(corpus):
    result = parsed("pgbadger/pg-syslog.1.bz2")
    assert not result.issues
    hint = next(r for r in result.events if r.get("pg_seq") == 3 and r.get("process_pid") == 10808)
    assert hint["pg_hint"] == 'Future log output will go to log destination "syslog".'
    assert Counter(r.get("db_name") for r in result.events if r.get("statement"))["pgbench"] > 59000


def test_pg_timezones_single_space(corpus):
    """pgbadger's pg-timezones.log writes 'LOG: duration' with one space; elog.c always writes two
    ('%s:  '), so these hand-made lines are reported, not guessed at."""
    result = parse("postgresql-stderr", read_bytes("pgbadger/pg-timezones.log"))
    assert not result.events and len(result.issues) == 2
