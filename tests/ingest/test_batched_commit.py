"""Small sources are committed in batches (one transaction of set-oriented statements for many
sources) and from memory; the case is the one committing them one by one from staging files gives,
row for row, and an archive of a thousand one-line logs is a few transactions."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import duckdb

import logsalvage.ingest as ingest_module
from logsalvage.config import CaseConfig, HostConfig
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore
from logsalvage import staging

MEMORY_ROWS = ingest_module.MEMORY_ROWS

TABLES = ("events", "issues", "sources", "source_copies", "inputs")
CONFIG = CaseConfig(hosts={"web01": HostConfig("web01", timezone="Asia/Tokyo"),
                           "db01": HostConfig("db01", timezone="Asia/Tokyo"),
                           "ny01": HostConfig("ny01", timezone="America/New_York"),
                           "be01": HostConfig("be01", timezone="Europe/Berlin")})


def _syslog(stamp: str, host: str, i: int, prog: str = "sshd") -> str:
    return f"{stamp} {host} {prog}[{100 + i}]: Accepted publickey for admin from 192.0.2.{i} port {1024 + i}\n"


def _access(i: int) -> str:
    return (f'203.0.113.{i} - - [15/Jul/2017:08:{i:02d}:01 +0900] "GET /index.php?id={i} HTTP/1.1" 200 512 '
            f'"-" "Mozilla/5.0"\n')


def _write(path: Path, data: str | bytes, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _tar(path: Path, members: dict[str, bytes]) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)  # mtime 0: a year-less member is anchored on its host's dated records
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _write(path, buf.getvalue())


def _evidence(root: Path) -> Path:
    ev = root / "ev"
    # dated: Apache access (web01) and PostgreSQL stderr (db01)
    _write(ev / "web01/var/log/httpd/access_log", "".join(_access(i) for i in range(1, 30)))
    # more records than a source kept in memory: staged in a file, committed in a batch with the others
    _write(ev / "web01/var/log/httpd/ssl_access_log", "".join(_access(i) for i in range(1, 2 * MEMORY_ROWS)))
    _write(ev / "db01/var/lib/pgsql/data/pg_log/postgresql.log", "".join(
        f"2017-12-03 03:45:{s:02d} JST [{2231 + s}] LOG:  connection received: host=10.0.0.{s} port=5432\n"
        for s in range(20)))
    # year-less, anchored on the dated records of the same host and run (mtime 0 is no anchor)
    _write(ev / "db01/var/log/messages", "".join(_syslog(f"Dec  3 03:{m:02d}:00", "db01", m) for m in range(10)),
           mtime=0)
    _tar(ev / "web01/backup/logs.tar", {
        "var/log/secure": "".join(_syslog(f"Jul 15 08:{m:02d}:30", "web01", m) for m in range(5)).encode(),
        "var/log/a.log": _syslog("Jul 15 09:00:00", "web01", 7, "cron").encode(),
        "var/log/b.log": _syslog("Jul 15 09:00:00", "web01", 7, "cron").encode(),  # a copy within the batch
        "var/log/httpd/access_log": "".join(_access(i) for i in range(1, 30)).encode(),  # copy of the live one
    })
    # a rotated file and a copy of it
    rotated = "".join(_syslog(f"Nov  5 {h:02d}:{m:02d}:00", "web01", h) for h in (1, 2, 3) for m in (0, 30))
    _write(ev / "web01/var/log/messages-20171106", rotated)
    _write(ev / "web01/old/messages-20171106", rotated)
    # New York: the clock goes back on Nov 5 2017 (01:00-02:00 twice) and forward on Mar 12 (02:xx skipped)
    back = [f"Nov  5 {t}" for t in ("00:50:00", "01:10:00", "01:40:00", "01:55:00", "01:05:00", "01:30:00",
                                    "01:58:00", "02:10:00")]
    _write(ev / "ny01/var/log/messages-20171106", "".join(_syslog(t, "ny01", i) for i, t in enumerate(back)))
    # the same repeated hour in another file of the zone, at offsets after the step back above: its
    # own file order decides (first occurrence)
    _write(ev / "ny01/var/log/cron-20171106", "".join(_syslog(f"Nov  5 {t}", "ny01", i, "crond") for i, t in enumerate(
        ("00:10:00", "00:20:00", "00:30:00", "00:40:00", "00:50:00", "00:55:00", "01:05:00", "01:20:00"))))
    _write(ev / "ny01/var/log/messages-20170313", "".join(
        _syslog(f"Mar 12 {t}", "ny01", i) for i, t in enumerate(("01:59:00", "02:30:00", "03:01:00"))))
    # Berlin: the clock goes back on Oct 29 2017 (02:00-03:00 twice)
    _write(ev / "be01/var/log/messages-20171030", "".join(
        _syslog(f"Oct 29 {t}", "be01", i) for i, t in enumerate(("01:50:00", "02:10:00", "02:50:00", "02:15:00",
                                                                  "03:05:00"))))
    # issues: a line of no format, binary data, invalid UTF-8
    bad = ("".join(_syslog(f"Dec  3 04:{m:02d}:00", "db01", m) for m in range(5)).encode()
           + b"this line is no syslog at all\n" + b"\x00\x01\x02\x03 binary\n"
           + b"Dec  3 04:09:00 db01 sshd[9]: user \xff\xfe bad\n")
    _write(ev / "db01/var/log/secure-20171204", bad)
    return ev


def _ingest(ev: Path, case: Path, monkeypatch, batch: int, sizes: list[int]):
    """Committed ``batch`` sources at a time; one by one (``batch`` 1) also every source through a
    staging file, as before batches: the reference the batched, in-memory path is compared with."""
    monkeypatch.setattr(ingest_module, "BATCH_SOURCES", batch)
    monkeypatch.setattr(ingest_module, "MEMORY_ROWS", 0 if batch == 1 else MEMORY_ROWS)
    real = CaseStore.commit_sources

    def counted(self, sources, **kw):
        sizes.append(len(sources))
        return real(self, sources, **kw)

    monkeypatch.setattr(CaseStore, "commit_sources", counted)
    result = ingest([ev], case, config=CONFIG)
    monkeypatch.setattr(CaseStore, "commit_sources", real)
    return result


def _differences(a: Path, b: Path) -> dict[str, tuple[int, int, int]]:
    con = duckdb.connect()
    con.execute(f"ATTACH '{a / 'case.duckdb'}' AS a (READ_ONLY)")
    con.execute(f"ATTACH '{b / 'case.duckdb'}' AS b (READ_ONLY)")
    out = {}
    for table in TABLES:
        total = con.execute(f"SELECT count(*) FROM a.{table}").fetchone()[0]
        only_a = con.execute(f"SELECT count(*) FROM (FROM a.{table} EXCEPT ALL FROM b.{table})").fetchone()[0]
        only_b = con.execute(f"SELECT count(*) FROM (FROM b.{table} EXCEPT ALL FROM a.{table})").fetchone()[0]
        out[table] = (total, only_a, only_b)
    con.close()
    return out


def test_a_batch_commit_gives_the_case_of_one_by_one_commits(tmp_path, monkeypatch):
    ev = _evidence(tmp_path)
    one, many = tmp_path / "one", tmp_path / "many"
    sizes_one: list[int] = []
    sizes_many: list[int] = []
    r_one = _ingest(ev, one, monkeypatch, 1, sizes_one)
    r_many = _ingest(ev, many, monkeypatch, 200, sizes_many)
    assert set(sizes_one) <= {0, 1} and max(sizes_many) > 5, (sizes_one, sizes_many)  # it did batch
    diff = _differences(one, many)
    assert all(total > 0 and only_one == only_many == 0 for total, only_one, only_many in diff.values()), diff
    assert r_one.as_dict() == r_many.as_dict()
    assert not list((many / "staging").glob("*.parquet"))
    # ingested again: every source is a copy of itself (nothing added), in both ways alike
    again_one = _ingest(ev, one, monkeypatch, 1, [])
    again_many = _ingest(ev, many, monkeypatch, 200, [])
    assert again_one.as_dict() == again_many.as_dict() and again_many.sources_new == 0
    assert _differences(one, many) == diff

    # the evidence exercises what a batch must keep per source
    con = duckdb.connect(str(many / "case.duckdb"), read_only=True)
    notes = dict(con.execute("""SELECT regexp_replace(path, '.*/', '') || ' ' || strftime(ts_local, '%H:%M'),
                                       time_basis FROM events e JOIN sources s USING (source_id)
                                WHERE time_basis LIKE '%DST%'""").fetchall())
    assert "second occurrence" in notes["messages-20171106 01:05"]
    assert "second occurrence" in notes["messages-20171106 01:30"]
    assert "first occurrence" in notes["messages-20171106 01:10"]
    assert "first occurrence" in notes["cron-20171106 01:05"]  # its own file shows no later time
    assert "skipped" in notes["messages-20170313 02:30"]
    assert "second occurrence" in notes["messages-20171030 02:15"]
    bases = dict(con.execute("SELECT coalesce(member, path), year_basis FROM sources").fetchall())
    assert "latest dated record of host db01 (2017-12-03)" in bases["db01/var/log/messages"]
    assert "latest dated record of host web01 (2017-07-15)" in bases["var/log/secure"]
    copies = con.execute("SELECT coalesce(member, path) FROM source_copies ORDER BY 1").fetchall()
    assert copies == [("var/log/b.log",), ("web01/var/log/httpd/access_log",), ("web01/var/log/messages-20171106",)]
    assert con.execute("SELECT count(*) FROM issues WHERE source_id IS NOT NULL").fetchone()[0] >= 2
    con.close()


def test_an_archive_of_a_thousand_one_line_logs_is_a_few_transactions_and_no_staging_files(tmp_path, monkeypatch):
    """What made the thousand members cost 35 s: a transaction (~25 ms) and two Parquet writers
    (~2 ms) each. The time itself is measured by benchmarks/archive_scaling.py (~2 ms a member)."""
    members = {f"var/log/many/m{i:04d}.log": _syslog(f"Jul 15 08:{i // 60 % 60:02d}:{i % 60:02d}", "web01", i % 250,
                                                     "logger").encode() for i in range(1000)}
    _tar(tmp_path / "ev/web01/backup/many.tar", members)
    real = CaseStore.commit_sources
    commits: list[int] = []

    def counted(self, batch, *args, **kw):
        commits.append(len(batch))
        return real(self, batch, *args, **kw)

    writers: list[str] = []
    real_writer = staging.pq.ParquetWriter

    def counted_writer(path, *args, **kw):
        writers.append(str(path))
        return real_writer(path, *args, **kw)

    monkeypatch.setattr(CaseStore, "commit_sources", counted)
    monkeypatch.setattr(staging.pq, "ParquetWriter", counted_writer)
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    assert (result.sources_new, result.events) == (1000, 1000)
    assert sum(commits) == 1000 and len(commits) == 5, commits  # batches of BATCH_SOURCES
    assert writers == []  # one-line sources go from the parse to the commit in memory
