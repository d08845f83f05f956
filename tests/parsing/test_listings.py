"""Checksum inventories, ls -l listings and bodyfiles: entries, times, and problems by line number."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from logsalvage.parsing.listings import (InventoryEntry, ListingEntry, ListingParser, Problem, is_executable,
                                         parse_inventory, parse_listing)
from logsalvage.demo import configs
from logsalvage.parsing.years import Anchor

TOKYO = ZoneInfo("Asia/Tokyo")
JST = timezone(timedelta(hours=9))
DEV = "/usr/local/src/libssh2-0.18/nw/test/.dev"


# -- inventories -------------------------------------------------------------------------------
def test_demo_inventory_is_sha256_of_docroot_files():
    entries, problems = parse_inventory(configs.inventory().decode())
    assert not problems
    assert len(entries) == 15
    assert {e.hash_type for e in entries} == {"sha256"}
    assert entries[0] == InventoryEntry(1, "sha256", "19514acb422841fd396f284900cf2b6acf18f28ec11f0c20a45e7bd5d306ed89",
                                        "/var/www/html/index.php")
    assert all(e.path.startswith("/var/www/html/") for e in entries)


def test_inventory_modes_hash_types_escapes_and_problems():
    md5 = "d41d8cd98f00b204e9800998ecf8427e"
    sha1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    sha512 = "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
    text = "\n".join([
        f"{md5}  /var/www/html/a file with spaces.php",
        f"{sha1} */usr/bin/binary-mode",
        f"{sha512}  /etc/passwd",
        "# a comment from the analyst",
        "",
        f"\\{md5}  /tmp/new\\nline\\\\back",  # coreutils escaping of '\n' and '\\'
        f"SHA256 (/var/www/html/tagged.php) = {'AB' * 32}",
        "sha256sum: /var/www/html/gone.php: No such file or directory",
        "0123456789abcdef0123456789abcdef0123456789abcdef01  /odd/length",
        "this is not a checksum line",
    ])
    entries, problems = parse_inventory(text)
    assert [(e.line_no, e.hash_type, e.path) for e in entries] == [
        (1, "md5", "/var/www/html/a file with spaces.php"),
        (2, "sha1", "/usr/bin/binary-mode"),
        (3, "sha512", "/etc/passwd"),
        (6, "md5", "/tmp/new\nline\\back"),
        (7, "sha256", "/var/www/html/tagged.php"),
    ]
    assert entries[4].hash == "ab" * 32  # lower-cased
    assert [p.line_no for p in problems] == [8, 9, 10]
    assert "error message" in problems[0].reason
    assert "50 hex digits" in problems[1].reason


# -- ls -l -------------------------------------------------------------------------------------
def test_demo_listing_blocks_directories_and_time_kinds():
    entries, problems = parse_listing(configs.hidden_dir_listing(2017).decode(), zone=TOKYO, zone_name="Asia/Tokyo")
    assert not problems
    assert len(entries) == 14 + 14 + 3
    mtimes = [e for e in entries if e.times[0].kind == "mtime" and e.directory == DEV]
    ctimes = [e for e in entries if e.times[0].kind == "ctime"]
    assert len(mtimes) == len(ctimes) == 14
    dot, dotdot, a = ctimes[0], ctimes[1], ctimes[2]
    assert (dot.name, dot.path, dot.type, dot.mode) == (".", DEV, "dir", "drwxr-xr-x")
    assert (dotdot.path, dotdot.mode, dotdot.owner) == ("/usr/local/src/libssh2-0.18/nw/test", "drwxrwxrwx", "root")
    assert (a.name, a.path, a.type, a.links, a.owner, a.grp, a.size) == ("a", DEV + "/a", "file", 1, "nobody", "nobody", 517)
    assert a.executable and not ctimes[3].executable  # cron.d is -rw-r--r--
    t = a.times[0]
    # nanoseconds are truncated, never rounded into another second; the offset is the listing's own
    assert t.time == datetime(2017, 12, 25, 15, 29, 1, 311295, tzinfo=JST)
    assert t.raw == "2017-12-25 15:29:01.311295890 +0900" and t.precision == "ns"
    assert t.basis == "UTC offset in listing"
    # the -lad block names its entries by full path
    parents = entries[-3:]
    assert [(e.directory, e.name, e.path) for e in parents] == [
        ("/usr/local/src", "libssh2-0.18", "/usr/local/src/libssh2-0.18"),
        ("/usr/local/src/libssh2-0.18", "nw", "/usr/local/src/libssh2-0.18/nw"),
        ("/usr/local/src/libssh2-0.18/nw", "test", "/usr/local/src/libssh2-0.18/nw/test")]
    assert all(e.times[0].kind == "mtime" and e.mode == "drwxrwxrwx" for e in parents)


DEFAULT_STYLE = """\
/var/www/html:
total 40
drwxr-xr-x.  3 apache apache 4096 Dec 25 15:29 .
drwxr-xr-x.  4 root   root   4096 Mar  3  2016 ..
-rw-r--r--.  1 apache apache  517 Dec 25 15:29 index.php
-rw-r--r--+  1 apache apache  517 Jan  3 09:12 my page.php
lrwxrwxrwx.  1 root   root     11 Jan  3 09:12 current -> release-1.2
crw-rw-rw-.  1 root   root   1, 3 Jan  3 09:12 null
-rw-r--r--.  1 apache apache  517 Feb 29 10:00 leap.php
-rw-r--r--.  1 apache apache  517 25 déc. 15:29 locale.php
ls: cannot open directory /var/www/html/private: Permission denied

/var/www/html/lib:
total 4
-rwsr-xr-x.  1 root root 8792 Jul  4 23:59 suid
"""


def test_default_style_year_from_anchor_and_zone_from_host():
    anchor = Anchor(date(2018, 1, 6), "modification time 2018-01-06T14:10:00+09:00")
    entries, problems = parse_listing(DEFAULT_STYLE, zone=TOKYO, zone_name="Asia/Tokyo (etc/localtime)", anchor=anchor)
    by_name = {e.name: e for e in entries}
    assert [p.line_no for p in problems] == [10, 11]
    assert "time style or locale" in problems[0].reason
    assert "ls reported an error" in problems[1].reason
    index = by_name["index.php"].times[0]
    assert index.time == datetime(2017, 12, 25, 15, 29, tzinfo=TOKYO)  # before the anchor: last year
    assert index.time.astimezone(timezone.utc) == datetime(2017, 12, 25, 6, 29, tzinfo=timezone.utc)
    assert index.precision == "min"
    assert "year inferred" in index.basis and "2018-01-06" in index.basis and "Asia/Tokyo" in index.basis
    assert by_name["my page.php"].times[0].time == datetime(2018, 1, 3, 9, 12, tzinfo=TOKYO)
    old = by_name[".."].times[0]
    assert old.time == datetime(2016, 3, 3, tzinfo=TOKYO) and old.precision == "day" and "year in listing" in old.basis
    assert (by_name["current"].type, by_name["current"].target) == ("symlink", "release-1.2")
    assert (by_name["null"].type, by_name["null"].size) == ("char", None)
    leap = by_name["leap.php"].times[0]  # Feb 29 before 2018-01-06 would be 2017: no such date
    assert leap.time is None and "no such date" in leap.basis
    suid = by_name["suid"]
    assert suid.directory == "/var/www/html/lib" and suid.path == "/var/www/html/lib/suid" and suid.executable
    assert suid.times[0].time == datetime(2017, 7, 4, 23, 59, tzinfo=TOKYO)


def test_default_style_without_anchor_keeps_the_entry_without_a_time():
    entries, problems = parse_listing("-rw-r--r-- 1 root root 5 Dec 25 15:29 f\n")
    assert not problems and entries[0].times[0].time is None
    assert "no date the listing was made by" in entries[0].times[0].basis


def test_long_iso_iso_and_owner_or_group_only_columns():
    text = "\n".join([
        "$ ls -lo --time-style=long-iso /tmp",
        "-rwxr-xr-x 1 nobody 1234 2017-12-12 07:20 upd",
        "[root@web01 ~]# ls -lgu --time-style=iso /var/tmp/",
        "-rw-r--r-- 1 apache 10 12-12 07:20 recent",
        "-rw-r--r-- 1 apache 10 2016-03-03 old",
    ])
    entries, problems = parse_listing(text, zone=TOKYO, anchor=Anchor(date(2018, 1, 6), "test"))
    assert not problems
    upd, recent, old = entries
    assert (upd.path, upd.owner, upd.grp, upd.times[0].kind) == ("/tmp/upd", "nobody", None, "mtime")
    assert upd.times[0].time == datetime(2017, 12, 12, 7, 20, tzinfo=TOKYO)
    assert (recent.path, recent.owner, recent.grp, recent.times[0].kind) == ("/var/tmp/recent", None, "apache", "atime")
    assert recent.times[0].time == datetime(2017, 12, 12, 7, 20, tzinfo=TOKYO)
    assert old.times[0].time == datetime(2016, 3, 3, tzinfo=TOKYO) and old.times[0].precision == "day"


def test_recursive_listing_relative_headers_join_the_command_directory():
    text = "\n".join([
        "# ls -laR --full-time /tmp",
        ".:",
        "drwxrwxrwt 3 root root 60 2017-12-25 15:00:00.000000000 +0900 .",
        "drwxr-xr-x 2 nobody nobody 40 2017-12-25 15:00:00.000000000 +0900 .x",
        "",
        "./.x:",
        "-rwxr-xr-x 1 nobody nobody 8 2017-12-25 15:00:01.5 +0900 run",
    ])
    entries, problems = parse_listing(text)
    assert not problems
    assert [(e.directory, e.name, e.path) for e in entries] == [
        ("/tmp", ".", "/tmp"), ("/tmp", ".x", "/tmp/.x"), ("/tmp/.x", "run", "/tmp/.x/run")]
    assert entries[2].times[0].time == datetime(2017, 12, 25, 15, 0, 1, 500000, tzinfo=JST)


def test_listing_parser_is_fed_line_by_line_and_never_raises():
    p = ListingParser()
    assert p.feed(1, "total 0") is None
    assert isinstance(p.feed(2, "-rw-r--r-- 1 a b 1 2017-13-45 25:61:00.0 +0900 bad-date"), ListingEntry)
    out = p.feed(3, "\x00\x01 binary junk")
    assert isinstance(out, Problem) and out.line_no == 3
    assert is_executable("-rwxr--r--") and is_executable("-rw-r--r-t") and is_executable("-rwsr--r--")
    assert not is_executable("-rwSr--r--") and not is_executable("-rw-r--r-T") and not is_executable(None)


# -- bodyfile ----------------------------------------------------------------------------------
# lines from log2timeline/plaso test_data/mactime.body (Apache-2.0), written by TSK fls -m
PLASO_BODY = """\
0|/lost+found|11|d/drwx------|0|0|12288|1337961350|1337961350|1337961350|0
0|/a_directory|12|d/drwxr-xr-x|151107|5000|1024|1337961564|1337961563|1337961563|0
0|/a_directory/another_file|16|r/rrw-------|151107|5000|22|1337961583|1337961584|1337961585|0
0|/a_directory/.another_file.swp (deleted)|0|r/----------|0|0|0|0|0|0|0
0|/$OrphanFiles/OrphanFile-13 (deleted)|13|-/rrw-------|20035|5000|0|1337961576|1337961574|1337961653|0
"""


def test_bodyfile_entries_with_every_time_kind():
    text = PLASO_BODY + "d41d8cd98f00b204e9800998ecf8427e|/tmp/.x/link -> /bin/sh|20|l/lrwxrwxrwx|0|0|7|1|2|3|4\n" \
        + "0|/too|few|fields\n"
    entries, problems = parse_listing(text)
    assert [p.line_no for p in problems] == [7] and "fields" in problems[0].reason
    lost, adir, another, deleted, orphan, link = entries
    assert (lost.path, lost.directory, lost.name, lost.type, lost.mode, lost.owner, lost.size) == (
        "/lost+found", "/", "lost+found", "dir", "drwx------", "0", 12288)
    assert [t.kind for t in another.times] == ["atime", "mtime", "ctime"]  # crtime 0: not recorded
    assert another.times[2].time == datetime.fromtimestamp(1337961585, timezone.utc)
    assert (another.type, another.mode) == ("file", "-rw-------")
    assert deleted.name == ".another_file.swp (deleted)" and deleted.times[0].time is None
    assert orphan.type == "file" and orphan.mode == "-rw-------"
    assert (link.type, link.path, link.target, [t.kind for t in link.times]) == (
        "symlink", "/tmp/.x/link", "/bin/sh", ["atime", "mtime", "ctime", "crtime"])
