"""File-system evidence end to end: ingest of listings and inventories into the case, and the fs.*
detectors over them (the demo's hidden directory, its unpack second, IOC hashes, web inventory)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb

from logsalvage.detect import filesystem
from logsalvage.detect.context import Context, Settings
from logsalvage.detect.model import Finding, Milestone
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

DEV = "/usr/local/src/libssh2-0.18/nw/test/.dev"
TOKYO = ZoneInfo("Asia/Tokyo")
INDEX_SHA = "19514acb422841fd396f284900cf2b6acf18f28ec11f0c20a45e7bd5d306ed89"


def _demo_files() -> dict[str, tuple[bytes, int]]:
    """The demo's web01 listing, inventory and zone file, as the generator writes them (with mtimes)."""
    from importlib.resources import files

    from logsalvage.demo import configs
    from logsalvage.demo.timeline import ACQUIRED

    return {"fs/ls-hidden-dir.txt": (configs.hidden_dir_listing(2017), ACQUIRED - 3000),
            "var/www/inventory.sha256": (configs.inventory(), ACQUIRED - 3600),
            "etc/localtime": (files("tzdata").joinpath("zoneinfo/Asia/Tokyo").read_bytes(), ACQUIRED - 86400)}


def _evidence(tmp_path: Path, extra_listing: str = "") -> Path:
    ev = tmp_path / "evidence"
    for rel, (data, mtime) in _demo_files().items():
        (ev / "web01" / rel).parent.mkdir(parents=True, exist_ok=True)
        (ev / "web01" / rel).write_bytes(data)
        os.utime(ev / "web01" / rel, (mtime, mtime))
    if extra_listing:
        (ev / "web01/fs/ls-more.txt").write_text(extra_listing)
        stamp = datetime(2018, 1, 6, 14, 10, tzinfo=TOKYO).timestamp()
        os.utime(ev / "web01/fs/ls-more.txt", (stamp, stamp))  # the listing was saved on 2018-01-06
    return ev


def _con(case: Path):
    return duckdb.connect(str(case / "case.duckdb"), read_only=True)


def _detect(case: Path, **settings) -> tuple[list, Context]:
    store = CaseStore(case)
    ctx = Context(store, Settings(**settings))
    return filesystem.detect(ctx), ctx


MORE = """\
# ls -la /tmp
drwxrwxrwt.  9 root   root   4096 Jan  5 17:20 .
drwxr-xr-x. 18 root   root   4096 Mar  3  2016 ..
drwxrwxrwt.  2 root   root   4096 Jan  5 17:26 .X11-unix
-rwxr-xr-x.  1 nobody nobody 8792 Dec 12 07:20 upd
this line is not part of any listing
# ls -la /home/admin
drwx------.  2 admin  admin  4096 Mar  3  2016 .ssh
# ls -lac --time-style=full-iso /usr/bin
-rwxr-xr-x.  1 root   root   1000 2017-11-01 10:00:00.100000000 +0900 ls
-rwxr-xr-x.  1 root   root   1000 2017-11-01 10:00:00.200000000 +0900 cp
-rwxr-xr-x.  1 root   root   1000 2017-11-01 10:00:00.300000000 +0900 mv
"""


def test_ingest_stores_listing_and_inventory_rows(tmp_path):
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    assert con.execute("SELECT count(*), count(DISTINCT hash_type) FROM file_inventory").fetchone() == (15, 1)
    assert con.execute("SELECT host, input_path, member, hash, line_no FROM file_inventory WHERE path = "
                       "'/var/www/html/index.php'").fetchone() == (
        "web01", "web01/var/www/inventory.sha256", None, INDEX_SHA, 1)
    assert con.execute("SELECT count(*) FROM file_listing").fetchone()[0] == 31
    assert dict(con.execute("SELECT time_kind, count(*) FROM file_listing GROUP BY 1").fetchall()) == {
        "mtime": 17, "ctime": 14}
    row = con.execute("""SELECT directory, type, mode, links, owner, grp, size, epoch_us(time), time_raw, time_precision
                         FROM file_listing WHERE path = ? AND time_kind = 'ctime'""", [DEV + "/upd"]).fetchone()
    assert row[:7] == (DEV, "file", "-rwxr-xr-x", 1, "nobody", "nobody", 233)
    assert row[7] == int(datetime(2017, 12, 25, 15, 29, 1, 403380, tzinfo=TOKYO).timestamp() * 1_000_000)
    assert row[8:] == ("2017-12-25 15:29:01.403380105 +0900", "ns")
    assert con.execute("SELECT count(*) FROM issues").fetchone()[0] == 0


def test_unparsed_lines_become_issues_and_zone_less_times_use_the_host_zone(tmp_path):
    ev = _evidence(tmp_path, MORE)
    case = tmp_path / "case"
    result = ingest([ev], case)
    con = _con(case)
    issues = con.execute("SELECT path, line_no, reason, excerpt FROM issues").fetchall()
    assert issues == [("web01/fs/ls-more.txt", 6, "file listing: not an ls -l entry, directory header or ls command line",
                       "this line is not part of any listing")]
    assert result.issues == 1
    t, basis = con.execute("SELECT time, time_basis FROM file_listing WHERE path = '/tmp/upd'").fetchone()
    # "Dec 12 07:20" in a listing saved 2018-01-06 in Asia/Tokyo (the host's etc/localtime)
    assert t == datetime(2017, 12, 11, 22, 20, tzinfo=timezone.utc)
    assert "Asia/Tokyo" in basis and "year inferred" in basis


def test_reingest_does_not_double_rows_or_issues(tmp_path):
    ev = _evidence(tmp_path, MORE)
    case = tmp_path / "case"
    ingest([ev], case)
    counts = lambda con: [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: E731
                          for t in ("file_listing", "file_inventory", "issues")]
    con = _con(case)
    first = counts(con)
    con.close()
    ingest([ev], case)
    con = _con(case)
    assert counts(con) == first
    assert first[2] == 1


def test_demo_hidden_dir_is_found_with_its_unpack_second(tmp_path):
    case = tmp_path / "case"
    ingest([_evidence(tmp_path)], case)
    items, ctx = _detect(case)
    findings = {(f.rule, f.detail.get("path")): f for f in items if isinstance(f, Finding)}
    milestones = [m for m in items if isinstance(m, Milestone)]

    hidden = findings[("fs.hidden_dir", DEV)]
    assert hidden.severity == "high" and hidden.host == "web01"
    assert len(hidden.detail["executables"]) == 10 and DEV + "/upd" in hidden.detail["executables"]
    assert any("world-writable" in w for w in hidden.detail["why"])

    unpack = findings[("fs.same_second_unpack", DEV)]
    assert unpack.count == 12 and unpack.detail["time_kind"] == "ctime"
    assert unpack.detail["second"] == "2017-12-25T15:29:01+09:00"

    (m,) = milestones
    assert m.kind == "hidden_dir_unpacked" and m.host == "web01"
    assert m.detail == {"path": DEV}
    assert m.time == datetime(2017, 12, 25, 15, 29, 1, tzinfo=TOKYO)
    assert m.as_dict(ctx.zone("web01"))["time"] == "2017-12-25T15:29:01+09:00"

    web = findings[("fs.executable_in_web_dir", DEV)]
    assert web.count == 10 and web.severity == "high"
    assert not [f for f in items if isinstance(f, Finding) and f.rule == "fs.ioc_hash"]  # no IOCs configured


def test_ordinary_places_and_benign_hidden_dirs_are_not_reported(tmp_path):
    case = tmp_path / "case"
    ingest([_evidence(tmp_path, MORE)], case)
    items, _ = _detect(case)
    found = {(f.rule, f.detail.get("path")) for f in items if isinstance(f, Finding)}
    assert ("fs.hidden_dir", "/tmp/.X11-unix") not in found
    assert ("fs.hidden_dir", "/home/admin/.ssh") not in found
    assert ("fs.same_second_unpack", "/usr/bin") not in found
    assert ("fs.executable_in_web_dir", "/tmp") in found  # /tmp/upd
    assert len([m for m in items if isinstance(m, Milestone)]) == 1


def test_executables_in_web_writable_places(tmp_path):
    listing = """\
# ls -la /var/www/html
drwxr-xr-x. 3 root   root   4096 Jan  3 09:00 .
drwxr-xr-x. 8 root   root   4096 Jan  3 09:00 .git
-rwxr-xr-x. 1 root   root    100 Jan  3 09:00 search.cgi
-rw-r--r--. 1 root   root    100 Jan  3 09:00 index.php
# ls -la /var/tmp
-rw-r--r--. 1 nobody nobody 9000 Jan  4 01:00 kinsing
# ls -la /home/admin/bin
drwxr-xr-x. 2 admin  admin  4096 Jan  4 01:00 .
-rwxr-xr-x. 1 admin  admin  9000 Jan  4 01:00 tool
"""
    case = tmp_path / "case"
    ingest([_evidence(tmp_path, listing)], case)
    items, _ = _detect(case)
    web = {f.detail["path"]: f for f in items if isinstance(f, Finding) and f.rule == "fs.executable_in_web_dir"}
    assert set(web) == {DEV, "/var/www/html", "/var/tmp"}
    assert web["/var/www/html"].severity == "medium"  # an executable CGI script in the docroot
    assert web["/var/tmp"].severity == "high" and web["/var/tmp"].detail["by_name"] == ["/var/tmp/kinsing"]
    hidden = {f.detail["path"] for f in items if isinstance(f, Finding) and f.rule == "fs.hidden_dir"}
    assert hidden == {DEV}  # /var/www/html/.git holds no executables


def test_mtime_is_used_when_there_is_no_ctime_listing(tmp_path):
    ev = tmp_path / "evidence"
    (ev / "web01/fs").mkdir(parents=True)
    (ev / "web01/fs/ls.txt").write_text(
        "# ls -la --time-style=full-iso /dev/shm/.x\n"
        + "".join(f"-rw-r--r-- 1 nobody nobody 1 2017-12-25 06:29:01.{i}00 +0000 f{i}\n" for i in range(4))
        + "-rw-r--r-- 1 nobody nobody 1 2017-12-25 06:29:02.000 +0000 later\n")
    case = tmp_path / "case"
    ingest([ev], case)
    items, _ = _detect(case)
    unpack = [f for f in items if isinstance(f, Finding) and f.rule == "fs.same_second_unpack"]
    assert [(f.count, f.detail["time_kind"], f.detail["files"]) for f in unpack] == [
        (4, "mtime", ["f0", "f1", "f2", "f3"])]
    (m,) = [m for m in items if isinstance(m, Milestone)]
    assert m.time == datetime(2017, 12, 25, 6, 29, 1, tzinfo=timezone.utc) and m.detail == {"path": "/dev/shm/.x"}


def test_ioc_hash_from_the_inventory(tmp_path):
    case = tmp_path / "case"
    ingest([_evidence(tmp_path)], case)
    items, _ = _detect(case, ioc_sha256=frozenset({INDEX_SHA, "00" * 32}))
    (f,) = [f for f in items if isinstance(f, Finding) and f.rule == "fs.ioc_hash"]
    assert f.detail["path"] == "/var/www/html/index.php" and f.detail["sha256"] == INDEX_SHA
    assert f.severity == "high" and f.host == "web01"


def test_web_inventory_paths(tmp_path):
    case = tmp_path / "case"
    ingest([_evidence(tmp_path)], case)
    store = CaseStore(case)
    ctx = Context(store, Settings())
    paths = filesystem.web_inventory_paths(ctx, "web01")
    assert len(paths) == 15 and {"/index.php", "/lib/db.php", "/robots.txt"} <= paths
    assert filesystem.web_inventory_paths(ctx, "db01") is None  # no inventory of that host
    assert filesystem.web_inventory_paths(Context(store, Settings(docroot="/var/www")), "web01") == {
        "/html" + p for p in paths}
    given = Context(store, Settings(web_inventory=("/index.php", "/search.php")))
    assert filesystem.web_inventory_paths(given, "web01") == {"/index.php", "/search.php"}
    store.close()


def test_web_inventory_paths_relative_inventory(tmp_path):
    ev = tmp_path / "evidence"
    (ev / "web01/var/www").mkdir(parents=True)
    (ev / "web01/var/www/sums.md5").write_text(
        "d41d8cd98f00b204e9800998ecf8427e  ./index.php\n"
        "d41d8cd98f00b204e9800998ecf8427e  var/www/html/lib/db.php\n"
        "d41d8cd98f00b204e9800998ecf8427e  ../outside.php\n")
    case = tmp_path / "case"
    ingest([ev], case)
    with CaseStore(case) as store:
        assert filesystem.web_inventory_paths(Context(store, Settings()), "web01") == {"/index.php", "/lib/db.php"}


def test_a_case_without_file_evidence_has_no_fs_findings(tmp_path):
    with CaseStore(tmp_path / "case") as store:
        ctx = Context(store, Settings(ioc_sha256=frozenset({INDEX_SHA})))
        assert filesystem.detect(ctx) == []
        assert filesystem.web_inventory_paths(ctx, "web01") is None


def test_listing_input_is_recorded_with_its_hash(tmp_path):
    case = tmp_path / "case"
    ingest([_evidence(tmp_path)], case)
    role, sha = _con(case).execute("SELECT role, sha256 FROM inputs WHERE path = 'web01/fs/ls-hidden-dir.txt'").fetchone()
    assert role == "listing" and len(sha) == 64
