"""A year-less log inside a container takes its anchor from the container's own record of when the
content was written, not from the copy's modification time: the gzip header's MTIME (plaso's
syslog.gz: 2012), a zip member's DOS time read as the wall-clock time it is (on the host's clock,
not as UTC)."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import duckdb
import pytest

from logsalvage.config import parse_config
from logsalvage.ingest import ingest

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"
if not CORPUS.is_dir():
    CORPUS = Path("/tmp/shared/corpus")


def _rows(case: Path, sql: str):
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.skipif(not (CORPUS / "plaso/syslog.gz").is_file(), reason="the shared corpus is not here")
def test_gzip_header_time_anchors_the_year(tmp_path):
    """plaso's syslog.gz was compressed on 2012-07-28 (its header), although the copy in the evidence
    was written today: no record is later than that, the last one (Nov 18, after two roll-overs)
    is of 2011. (plaso counts the other way, from the header's year forward: 2012 for the first
    record — a file cannot hold records written after it was compressed.)"""
    dst = tmp_path / "ev/web01/var/log/messages-old.gz"
    dst.parent.mkdir(parents=True)
    shutil.copy(CORPUS / "plaso/syslog.gz", dst)
    os.utime(dst)  # a fresh copy: its mtime says nothing about the content
    ingest([tmp_path / "ev"], tmp_path / "case", config=parse_config({"hosts": {"web01": {"timezone": "UTC"}}}, "t"))
    [(first, last)] = _rows(tmp_path / "case", """SELECT strftime(min(ts_local), '%Y-%m-%d'),
                                                          strftime(max(ts_local), '%Y-%m-%d') FROM events""")
    assert last <= "2012-07-28" and first >= "2009-01-01"
    [(final,)] = _rows(tmp_path / "case", "SELECT strftime(ts_local, '%Y-%m-%d') FROM events "
                                          "WHERE ts_local IS NOT NULL ORDER BY line_no DESC LIMIT 1")
    assert final == "2011-11-18"
    [(basis,)] = _rows(tmp_path / "case", "SELECT year_basis FROM sources")
    assert "gzip header" in basis and "2012-07-28" in basis


def test_zip_member_time_is_the_hosts_wall_clock(tmp_path):
    """Zipped on a New York host at 00:20 on New Year's Day 2018 (DOS time: wall clock, no zone). Read
    as UTC it would be 19:20 on Dec 31 in New York, and the Jan 1 record would fall in 2017."""
    archive = tmp_path / "ev/ny01/backup/logs.zip"
    archive.parent.mkdir(parents=True)
    text = ("Dec 31 23:50:00 ny01 sshd[100]: Accepted publickey for admin from 192.0.2.1 port 1024 ssh2\n"
            "Jan  1 00:10:00 ny01 sshd[101]: Accepted publickey for admin from 192.0.2.2 port 1025 ssh2\n")
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("var/log/secure", date_time=(2018, 1, 1, 0, 20, 0))
        zf.writestr(info, text)
    config = parse_config({"hosts": {"ny01": {"timezone": "America/New_York"}}}, "t")
    ingest([tmp_path / "ev"], tmp_path / "case", config=config)
    stamps = _rows(tmp_path / "case", "SELECT strftime(ts_local, '%Y-%m-%d %H:%M') FROM events ORDER BY line_no")
    assert stamps == [("2017-12-31 23:50",), ("2018-01-01 00:10",)]
    [(basis,)] = _rows(tmp_path / "case", "SELECT year_basis FROM sources")
    assert "zip header, local time" in basis and "tar header" not in basis
