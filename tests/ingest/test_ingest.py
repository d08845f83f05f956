"""Ingest end to end on small evidence trees: accounting, bad input, idempotence, read-only evidence."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import stat
import tarfile
from pathlib import Path

import duckdb
import pytest

from logsalvage.config import CaseConfig, HostConfig
from logsalvage.errors import UsageError
from logsalvage.ingest import ingest

PG = ("{ts} db01 postgres[{pid}]: [{seq}-1] DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1({port}),"
      "LOG:  incomplete startup packet\n")
CONF = "log_destination = 'syslog'\nlog_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'  # incident\n"


def _pg_lines(n: int, day: str = "Dec  3") -> str:
    return "".join(PG.format(ts=f"{day} 03:{i // 60 % 60:02d}:{i % 60:02d}", pid=1000 + i, seq=1, port=40000 + i)
                   for i in range(n))


def _tree(tmp_path: Path) -> Path:
    ev = tmp_path / "evidence"
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/lib/pgsql/data").mkdir(parents=True)
    (ev / "db01/var/lib/pgsql/data/postgresql.conf").write_text(CONF)
    (ev / "db01/var/log/messages-20171211").write_text(_pg_lines(50))
    return ev


def _con(case: Path):
    return duckdb.connect(str(case / "case.duckdb"), read_only=True)


def _accounted(con, source_path: str) -> tuple[int, int]:
    """(bytes covered by events and issues, size): every input byte range is an event or an issue."""
    sid, size = con.execute("SELECT source_id, size FROM sources WHERE path = ?", [source_path]).fetchone()
    ev = con.execute("SELECT coalesce(sum(length), 0) FROM events WHERE source_id = ? AND spans IS NULL", [sid]).fetchone()[0]
    spans = con.execute("SELECT spans FROM events WHERE source_id = ? AND spans IS NOT NULL", [sid]).fetchall()
    ev += sum(int(part.split("+")[1]) for (s,) in spans for part in s.split(","))
    iss = con.execute("SELECT coalesce(sum(length), 0) FROM issues WHERE source_id = ? AND event_id IS NULL",
                      [sid]).fetchone()[0]
    return ev + iss, size


def test_every_byte_is_an_event_or_an_issue(tmp_path):
    ev = _tree(tmp_path)
    messy = (_pg_lines(3) + "garbage without a header\n" + "\x00\x01\x02binary\n"
             + "Dec  3 04:00:00 db01 kernel: caf\udcc3 \n").encode("utf-8", "surrogateescape")
    messy += b"Dec  3 04:00:01 db01 kernel: bad \xff\xfe bytes\n" + b"\n" + b"Dec  3 04:00:02 db01 kernel: no newline"
    (ev / "db01/var/log/messages-20171218").write_bytes(messy)
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    covered, size = _accounted(con, "db01/var/log/messages-20171218")
    assert covered == size
    reasons = dict(con.execute("SELECT reason, count(*) FROM issues GROUP BY 1").fetchall())
    assert reasons["binary data"] == 1
    assert reasons["empty line"] == 1
    assert reasons["no pattern of format syslog matched"] == 1
    bad = con.execute("SELECT event_id, raw, extra FROM events WHERE raw LIKE '%bad%'").fetchone()
    assert "\\xff\\xfe" in bad[1] and "invalid-utf8" in bad[2]
    flagged = con.execute("SELECT event_id, reason FROM issues WHERE reason LIKE 'invalid UTF-8%'").fetchall()
    assert [f[0] for f in flagged].count(bad[0]) == 1
    last = con.execute("SELECT extra FROM events WHERE raw LIKE '%no newline'").fetchone()[0]
    assert '"line_end": "missing"' in last


def test_reingest_does_not_duplicate(tmp_path):
    ev = _tree(tmp_path)
    case = tmp_path / "case"
    first = ingest([ev], case)
    second = ingest([ev], case)
    assert first.events == 50 and second.events == 0 and second.sources_known == 1
    assert _con(case).execute("SELECT count(*) FROM events").fetchone()[0] == 50


def test_prefix_from_postgresql_conf_and_year_from_rotation(tmp_path):
    ev = _tree(tmp_path)
    case = tmp_path / "case"
    ingest([ev], case, config=CaseConfig(hosts={"db01": HostConfig("db01", timezone="Asia/Tokyo")}))
    con = _con(case)
    row = con.execute("SELECT host, db_name, source_ip, source_port, pg_seq, ts_utc, time_basis FROM events "
                      "ORDER BY \"offset\" LIMIT 1").fetchone()
    assert row[:5] == ("db01", "[unknown]", "127.0.0.1", 40000, 1)
    assert row[5].isoformat() == "2017-12-02T18:00:00+00:00"  # 03:00 JST
    assert "messages-20171211" in row[6] and "Asia/Tokyo" in row[6]


def test_inputs_are_hashed_and_evidence_untouched(tmp_path):
    ev = _tree(tmp_path)
    before = {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in ev.rglob("*") if p.is_file()}
    for p in ev.rglob("*"):
        os.chmod(p, stat.S_IREAD | (stat.S_IEXEC if p.is_dir() else 0))
    case = tmp_path / "case"
    try:
        ingest([ev], case)
    finally:
        for p in ev.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
    after = {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest()) for p in ev.rglob("*") if p.is_file()}
    assert before == after
    assert sorted(p.relative_to(ev) for p in ev.rglob("*") if p.is_file()) == sorted(p.relative_to(ev) for p in before)
    con = _con(case)
    hashes = dict(con.execute("SELECT path, sha256 FROM inputs").fetchall())
    for p, (_, digest) in before.items():
        assert hashes[str(p.relative_to(ev))] == digest


def test_case_inside_evidence_is_refused(tmp_path):
    ev = _tree(tmp_path)
    with pytest.raises(UsageError, match="inside the evidence"):
        ingest([ev], ev / "case")


def test_compressed_rotations_and_truncated_gzip(tmp_path):
    ev = _tree(tmp_path)
    log = ev / "db01/var/log"
    text = _pg_lines(200, "Dec 10").encode()
    (log / "messages-20171218.gz").write_bytes(gzip.compress(text, mtime=0))
    (log / "messages-20171225.bz2").write_bytes(bz2.compress(_pg_lines(10, "Dec 20").encode()))
    (log / "messages-20180101.xz").write_bytes(lzma.compress(_pg_lines(10, "Dec 27").encode()))
    whole = gzip.compress(_pg_lines(3000, "Dec 30").encode(), mtime=0)
    (log / "messages-20180108.gz").write_bytes(whole[: len(whole) // 2])
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    per = dict(con.execute("SELECT path, events FROM sources").fetchall())
    assert per["db01/var/log/messages-20171218.gz"] == 200
    assert per["db01/var/log/messages-20171225.bz2"] == 10
    assert per["db01/var/log/messages-20180101.xz"] == 10
    partial = per["db01/var/log/messages-20180108.gz"]
    assert 0 < partial < 3000
    reason = con.execute("SELECT reason FROM issues WHERE path LIKE '%20180108%'").fetchall()
    assert any("ends early" in r[0] for r in reason)


def test_backup_tarball_members_read_without_extracting(tmp_path):
    ev = _tree(tmp_path)
    (ev / "db01/backup").mkdir()
    tar_path = ev / "db01/backup/var-log-20171111.tar.gz"
    with tarfile.open(tar_path, "w:gz") as tf:
        for name, text in [("var/log/messages-20171105", _pg_lines(20, "Nov  1")),
                           ("../escape/messages-20171112", _pg_lines(5, "Nov  8"))]:
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1510000000
            tf.addfile(info, io.BytesIO(data))
    case = tmp_path / "case"
    listing = sorted(p for p in tmp_path.rglob("*"))
    ingest([ev], case)
    con = _con(case)
    rows = con.execute("SELECT member, kind, events FROM sources WHERE member IS NOT NULL").fetchall()
    assert rows == [("var/log/messages-20171105", "backup", 20)]
    assert con.execute("SELECT count(*) FROM issues WHERE reason LIKE '%unsafe member%'").fetchone()[0] == 1
    new = sorted(p for p in tmp_path.rglob("*") if p not in listing and case not in p.parents and p != case)
    assert new == []  # nothing extracted anywhere


def test_hundred_megabyte_line_is_an_issue_with_bounded_memory(tmp_path):
    import resource

    ev = _tree(tmp_path)
    big = ev / "db01/var/log/messages-20171218"
    with open(big, "wb") as fh:
        fh.write(_pg_lines(2).encode())
        fh.write(b"Dec  3 05:00:00 db01 kernel: ")
        block = b"A" * (1 << 20)
        for _ in range(100):
            fh.write(block)
        fh.write(b"\n")
        fh.write(_pg_lines(2).encode())
    case = tmp_path / "case"
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    ingest([ev], case)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    con = _con(case)
    sid = con.execute("SELECT source_id FROM sources WHERE path LIKE '%20171218'").fetchone()[0]
    assert con.execute("SELECT count(*) FROM events WHERE source_id = ?", [sid]).fetchone()[0] == 4
    length, reason = con.execute("SELECT length, reason FROM issues WHERE source_id = ?", [sid]).fetchone()
    assert length > 100 * (1 << 20) and "longer than" in reason
    assert grown_mb < 80, f"memory grew by {grown_mb:.0f} MB"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_unreadable_file_is_an_issue(tmp_path):
    ev = _tree(tmp_path)
    locked = ev / "db01/var/log/messages-20171218"
    locked.write_text(_pg_lines(3))
    locked.chmod(0)
    case = tmp_path / "case"
    ingest([ev], case)
    assert _con(case).execute("SELECT count(*) FROM issues WHERE reason LIKE '%unreadable%'").fetchone()[0] == 1


def test_unknown_file_is_recorded_not_dropped(tmp_path):
    ev = _tree(tmp_path)
    (ev / "db01/notes.bin").write_bytes(os.urandom(2000))
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    assert con.execute("SELECT role FROM inputs WHERE path = 'db01/notes.bin'").fetchone()[0] == "unknown"
    assert con.execute("SELECT count(*) FROM issues WHERE path = 'db01/notes.bin'").fetchone()[0] == 1


def test_content_not_name_decides_the_format(tmp_path):
    ev = tmp_path / "ev"
    (ev / "web01/var/log").mkdir(parents=True)
    (ev / "web01/var/log/messages").write_text(
        '79.1.2.3 - - [15/Jul/2017:08:58:21 +0900] "GET / HTTP/1.1" 200 5 "-" "x"\n')
    (ev / "web01/var/log/access_log").write_text("Fri Oct 20 10:20:44 2017 [pid 1] CONNECT: Client \"1.2.3.4\"\n")
    case = tmp_path / "case"
    ingest([ev], case)
    got = dict(_con(case).execute("SELECT path, format_id FROM sources").fetchall())
    assert got == {"web01/var/log/messages": "apache-access", "web01/var/log/access_log": "vsftpd"}


def test_listings_and_inventories_are_recognised_evidence(tmp_path):
    ev = _tree(tmp_path)
    (ev / "db01/fs").mkdir()
    (ev / "db01/fs/ls.txt").write_text(
        "# ls -la --time-style=full-iso /tmp/.x\ntotal 8\n"
        "drwxrwxrwt. 2 nobody nobody 4096 2017-12-25 15:29:01.418964437 +0900 .\n"
        "-rwxr-xr-x. 1 nobody nobody 1234 2017-12-25 15:29:01.418964437 +0900 upd\n")
    (ev / "db01/fs/inventory.sha256").write_text("ab" * 32 + "  /var/www/html/index.php\n")
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    roles = dict(con.execute("SELECT path, role FROM inputs WHERE path LIKE 'db01/fs/%'").fetchall())
    assert roles == {"db01/fs/ls.txt": "listing", "db01/fs/inventory.sha256": "inventory"}
    assert con.execute("SELECT count(*) FROM issues WHERE path LIKE 'db01/fs/%'").fetchone()[0] == 0


def test_postgresql_chunks_join_in_sequence_only(tmp_path):
    """A chunk line seen twice (a salvaged copy) joins once; a chunk after a missing one ends the
    message there. Both leftovers are issues, so every byte is still accounted for."""
    head = "Dec  3 03:00:0{s} db01 postgres[{pid}]: [{seq}-{c}] "
    prefix = "DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(50000),"
    lines = [
        head.format(s=1, pid=7, seq=3, c=1) + prefix + "LOG:  statement: SELECT a,",
        head.format(s=1, pid=7, seq=3, c=2) + " b, c",
        head.format(s=1, pid=7, seq=3, c=2) + " b, c",  # the same chunk again
        head.format(s=1, pid=7, seq=3, c=3) + " FROM t",
        head.format(s=2, pid=8, seq=4, c=1) + prefix + "LOG:  statement: SELECT x,",
        head.format(s=2, pid=8, seq=4, c=3) + " FROM u",  # chunk 2 is missing
        head.format(s=3, pid=9, seq=5, c=1) + prefix + "LOG:  statement: SELECT 1",
    ]
    ev = tmp_path / "evidence"
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text("\n".join(lines) + "\n")
    case = tmp_path / "case"
    ingest([ev], case, config=CaseConfig(hosts={"db01": HostConfig("db01", timezone="Asia/Tokyo")},
                                         pg_log_line_prefix="DATABASE=%d,USER=%u,CLIENT=%r,"))
    con = _con(case)
    statements = [r[0] for r in con.execute("SELECT statement FROM events ORDER BY \"offset\"").fetchall()]
    assert statements == ["SELECT a, b, c FROM t", "SELECT x,", "SELECT 1"]
    reasons = [r[0] for r in con.execute("SELECT reason FROM issues ORDER BY \"offset\"").fetchall()]
    assert len(reasons) == 2
    assert "[3-2] repeated" in reasons[0] and "[4-3] out of sequence" in reasons[1]
    covered, size = _accounted(con, "db01/var/log/messages")
    assert covered == size


def test_each_source_records_which_engine_read_it(tmp_path):
    """Covered formats go to the columnar engine; the others (and --engine reference) to the
    per-line reference, and the summary says which and why, loudly."""
    from logsalvage.store import CaseStore
    from logsalvage.summary import case_summary, render_text

    ev = _tree(tmp_path)
    (ev / "db01/var/log/postgresql.log").write_text(
        "2017-12-03 03:45:20 JST [2231] LOG:  connection received: host=10.0.0.1 port=5432\n")
    result = ingest([ev], tmp_path / "case", engine="columnar")
    parsers = {Path(s["path"]).name: s["parser"] for s in result.sources}
    assert parsers["messages-20171211"] == "columnar"
    # by default a small source is read line by line (the columnar engine's fixed cost is more)
    small = ingest([ev], tmp_path / "case-auto")
    assert {Path(s["path"]).name: s["parser"] for s in small.sources}["messages-20171211"] == \
        "reference: a small source (under 64 KiB): quicker line by line than in the columnar engine"
    assert small.events == result.events
    assert parsers["postgresql.log"].startswith("reference: the pg-stderr assembler is not columnar")
    with CaseStore(tmp_path / "case", read_only=True) as store:
        text = render_text(case_summary(store))
    assert "read line by line by the reference engine" in text and "pg-stderr" in text
    forced = ingest([ev], tmp_path / "case2", engine="reference")
    assert {s["parser"].split(";")[0] for s in forced.sources} == {"reference: the reference engine was asked for"}
    # (the stderr log's '%t [%p] ' is not the host's configured prefix: its note says which it was read with)
    assert "log_line_prefix from its records: '%t [%p] '" in {Path(s["path"]).name: s["parser"]
                                                             for s in forced.sources}["postgresql.log"]
    assert forced.events == result.events
    with pytest.raises(UsageError):
        ingest([ev], tmp_path / "case3", engine="fast")
