"""Logs whose records mostly span several lines are recognised as what they are: the continuation
lines a format reads as part of a record (indented lines under a syslog or PostgreSQL header, program
output after an Apache error-log header) do not count against it. Real logs from other projects'
test data, with their own expected figures where the project gives them (corpus MANIFEST.tsv)."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import duckdb
import pytest

from logsalvage.ingest import ingest
from logsalvage.sources import detect_format

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
if not CORPUS.is_dir():
    CORPUS = Path("/tmp/shared/corpus")

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not here")


# PostgreSQL's lines that belong to the message before them (its statement, detail, hint …)
SECONDARY = (b"STATEMENT:  ", b"DETAIL:  ", b"HINT:  ", b"CONTEXT:  ", b"QUERY:  ", b"LOCATION:  ")


def _records(path: Path) -> int:
    """Lines that begin a record: not indented, not blank, not the secondary part of a message."""
    data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    return sum(1 for line in data.splitlines() if line.strip() and line[:1] not in (b" ", b"\t")
               and not any(tag in line for tag in SECONDARY))


@pytest.mark.parametrize("rel, expected", [
    ("pgbadger/pg_vacuums.log.gz", "postgresql-stderr"),  # autovacuum reports: 11 % of lines start a record
    ("lnav/logfile_postgres.1", "postgresql-stderr"),  # a multi-line CREATE TABLE statement
    ("lnav/logfile_syslog.3", "syslog"),  # macOS syslogd's multi-line configuration notices
])
def test_multiline_logs_are_recognised_and_read_whole(tmp_path, rel, expected):
    src = CORPUS / rel
    head = (gzip.open(src).read() if src.suffix == ".gz" else src.read_bytes())[:65536]
    assert detect_format(head)[0] == expected
    ev = tmp_path / "ev/db01/var/log"
    ev.mkdir(parents=True)
    shutil.copy(src, ev / src.name)
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [source] = result.sources
    assert source["format"] == expected and source["issues"] == 0
    assert source["events"] == _records(src)


def test_pgbadger_counts_of_autovacuum_and_autoanalyze(tmp_path):
    """pgBadger's own test expects 1450 automatic analyzes and 2094 automatic vacuums in this log."""
    ev = tmp_path / "ev/db01/var/log"
    ev.mkdir(parents=True)
    shutil.copy(CORPUS / "pgbadger/pg_vacuums.log.gz", ev / "postgresql.log.gz")
    ingest([tmp_path / "ev"], tmp_path / "case")
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    counts = con.execute("""SELECT count(*) FILTER (WHERE pg_message LIKE 'automatic analyze of table %'),
                                   count(*) FILTER (WHERE pg_message LIKE 'automatic vacuum of table %')
                            FROM events""").fetchone()
    con.close()
    assert counts == (1450, 2094)


def test_an_error_log_of_program_output_after_its_headers(tmp_path):
    """Three server lines, then what a web shell's `find` printed: the error log it is, every line read."""
    headers = ("[Sun Dec 24 10:00:00 2017] [notice] caught SIGTERM, shutting down\n"
               "[Sun Dec 24 10:01:00 2017] [notice] Apache/2.2.21 (Unix) PHP/5.3.29 configured -- resuming normal operations\n"
               "[Mon Dec 25 15:26:15 2017] [error] [client 61.89.205.218] File does not exist: /var/www/html/favicon.ico\n")
    find = "".join(f"find: '/proc/{i}/task': Permission denied\n" for i in range(1, 61))
    log = tmp_path / "ev/web01/var/log/httpd/error_log"
    log.parent.mkdir(parents=True)
    log.write_text(headers + find)
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [source] = result.sources
    assert (source["format"], source["events"], source["issues"]) == ("apache-error", 63, 0)


def test_indented_lines_under_something_else_are_not_a_log(tmp_path):
    """The allowance needs the format's own header first: a config file of indented lines is no log."""
    head = b"settings:\n" + b"".join(b"\tkey%d: value\n" % i for i in range(50))
    assert detect_format(head)[0] is None
    head = b"Traceback (most recent call last):\n" + b'  File "x.py", line 1, in <module>\n' * 20
    assert detect_format(head)[0] is None
