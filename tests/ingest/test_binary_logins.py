"""wtmp, btmp and lastlog: who logged in, from where, the failed logins. Each file is made by the
real programs (``utmpdump -r``: glibc's own struct utmp; ``lastlog -S``) and its events are checked
against what util-linux's ``utmpdump``, ``last`` and ``lastb`` and shadow's ``lastlog`` print for
the same file."""

from __future__ import annotations

import gzip
import io
import os
import re
import struct
import subprocess
import tarfile
from datetime import datetime, timezone

import pytest

from binary_support import DATA, UTC_ENV, case_events, case_rows, iso, last_rows, tool, tree_state, undump, utmpdump
from logsalvage.ingest import ingest
from prerequisites import unavailable

WTMP = DATA / "utmp" / "wtmp.txt"
BTMP = DATA / "utmp" / "btmp.txt"


def test_wtmp_events_are_the_records_utmpdump_and_last_show(tmp_path):
    wtmp = undump(WTMP, tmp_path / "ev/web01/var/log/wtmp")
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert (src["format"], src["events"], src["issues"]) == ("wtmp", 15, 0)
    events = case_events(tmp_path / "case", "wtmp")
    # each event's raw text is the record as utmpdump prints it, in file order, at its byte offset
    assert [e["raw"] for e in events] == utmpdump(wtmp)
    assert [e["offset"] for e in events] == [384 * i for i in range(15)]
    assert [e["line_no"] for e in events] == list(range(1, 16))

    got = set()
    logouts = {(e["terminal"], iso(e["ts_utc"])) for e in events if e["event_type"] == "login.logout"}
    for user, tty, address, login, rest in last_rows("last", wtmp, "-x"):
        kind = {"reboot": "system.boot", "shutdown": "system.shutdown", "runlevel": "system.runlevel"}.get(user)
        if kind is None:
            got.add(("login.session", user, tty, address, login))
            if rest.startswith("- ") and rest[2:3].isdigit():  # a logout last paired with this session
                assert (tty, rest[2:].split()[0]) in logouts
        else:
            got.add((kind, login))
    mine = set()
    for e in events:
        if e["event_type"] == "login.session":
            mine.add(("login.session", e["user_name"], e["terminal"], e["source_ip"], iso(e["ts_utc"])))
        elif e["event_type"].startswith("system."):
            mine.add((e["event_type"], iso(e["ts_utc"])))
    assert mine == got and len(mine) == 10

    by_user = {e["user_name"]: e for e in events if e["event_type"] == "login.session"}
    # sshd with UseDNS: the name in ut_host, the address in ut_addr_v6
    assert (by_user["www-data"]["source_ip"], by_user["www-data"]["client_host"]) == ("198.51.100.23",
                                                                                      "vps-2291.example.net")
    assert by_user["carol"]["source_ip"] == "2001:db8::5" and by_user["carol"]["outcome"] == "success"
    assert by_user["root"]["ts_utc"] == datetime(2017, 12, 12, 9, 15, tzinfo=timezone.utc)
    first_admin = next(e for e in events if e["user_name"] == "admin")
    assert first_admin["ts_utc"] == datetime(2017, 12, 11, 9, 2, 11, 773310, tzinfo=timezone.utc)
    assert first_admin["process_pid"] == 1843
    runlevels = [(e["runlevel"], e["previous_runlevel"]) for e in events if e["event_type"] == "system.runlevel"]
    assert runlevels == [("5", "N"), ("5", "N")]
    prompt = next(e for e in events if e["event_type"] == "login.process")
    assert prompt["terminal"] == "tty1" and prompt["user_name"] is None and prompt["process_pid"] == 612


def test_btmp_failed_logins_as_lastb_shows_them(tmp_path):
    btmp = undump(BTMP, tmp_path / "plain/btmp")
    logs = tmp_path / "ev/web01/var/log"
    logs.mkdir(parents=True)
    (logs / "btmp-20171213.gz").write_bytes(gzip.compress(btmp.read_bytes()))
    (logs / "failed.dat").write_bytes(btmp.read_bytes())  # no name to go by: btmp by its records
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    assert sorted((s["path"].rsplit("/", 1)[-1], s["format"], s["events"], s["issues"]) for s in result.sources) == [
        ("btmp-20171213.gz", "btmp", 5, 0), ("failed.dat", "btmp", 5, 0)]
    expected = {(user, tty, address, login) for user, tty, address, login, _ in last_rows("lastb", btmp)}
    assert len(expected) == 5
    events = case_events(tmp_path / "case", "btmp")
    for name in ("btmp-20171213.gz", "failed.dat"):
        mine = [e for e in events if e["source_path"].endswith(name)]
        assert {e["event_type"] for e in mine} == {"login.failed"} and {e["outcome"] for e in mine} == {"failure"}
        assert {(e["user_name"], e["terminal"], e["source_ip"] or "0.0.0.0", iso(e["ts_utc"])) for e in mine} \
            == expected


def test_identified_by_content_not_by_name(tmp_path):
    wtmp = undump(WTMP, tmp_path / "plain/wtmp").read_bytes()
    ev = tmp_path / "ev/web01"
    (ev / "var/log").mkdir(parents=True)
    (ev / "var/log/logins.old").write_bytes(wtmp)  # a wtmp under another name
    (ev / "var/log/wtmp.txt").write_bytes(WTMP.read_bytes())  # a name that says wtmp, text inside
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("var/log/wtmp.1")
        info.size, info.mtime = len(wtmp), 1513100000
        tar.addfile(info, io.BytesIO(wtmp))
    (ev / "backup").mkdir()
    (ev / "backup/logs-20171213.tar.gz").write_bytes(buf.getvalue())
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    # the member and the file are the same bytes: one source and a copy of it
    assert [(s["format"], s["events"]) for s in result.sources] == [("wtmp", 15)] and result.sources_known == 1
    read = case_rows(tmp_path / "case", """SELECT path, member FROM sources UNION ALL
                                           SELECT path, member FROM source_copies ORDER BY 1""")
    assert read == [("web01/backup/logs-20171213.tar.gz", "var/log/wtmp.1"), ("web01/var/log/logins.old", None)]
    roles = dict(case_rows(tmp_path / "case", "SELECT path, role FROM inputs"))
    assert roles["web01/var/log/wtmp.txt"] == "unknown"  # text that names wtmp is not a wtmp


def test_damaged_wtmp_gives_issues_at_their_offsets(tmp_path):
    data = bytearray(undump(WTMP, tmp_path / "plain/wtmp").read_bytes())
    data[2 * 384:2 * 384 + 2] = struct.pack("<h", 42)  # no such ut_type
    data[4 * 384 + 44 + 10] = ord("X")  # a byte after ut_user's terminating NUL
    data[6 * 384:7 * 384] = bytes(384)  # an entry wiped with zeros (zap2)
    data[7 * 384:9 * 384] = bytes(768)
    data += b"\x07\x00\x00\x00cut short"  # a record cut off at the end
    path = tmp_path / "ev/web01/var/log/wtmp"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(data))
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert (src["format"], src["events"], src["issues"]) == ("wtmp", 15 - 5, 4)
    issues = case_rows(tmp_path / "case", 'SELECT "offset", length, reason FROM issues ORDER BY "offset"')
    assert [(o, n) for o, n, _ in issues] == [(768, 384), (1536, 384), (2304, 3 * 384), (15 * 384, 13)]
    assert "ut_type 42" in issues[0][2] and "ut_user is not NUL-padded text" in issues[1][2]
    assert "3 all-zero record(s)" in issues[2][2] and "truncated record" in issues[3][2]
    offsets = [e["offset"] for e in case_events(tmp_path / "case", "wtmp")]
    assert offsets == [0, 384, 3 * 384, 5 * 384] + [384 * i for i in range(9, 15)]


def _lastlog_root(tmp_path):
    if os.geteuid() != 0:
        unavailable("lastlog -R needs root (it chroots)", ".ci/run as root")
    lastlog = tool("lastlog")
    root = tmp_path / "ev/web01"
    (root / "etc").mkdir(parents=True)
    (root / "var/log").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nadmin:x:1000:1000::/home/admin:/bin/bash\n"
                                     "carol:x:1001:1001::/home/carol:/bin/bash\n"
                                     "nfsnobody:x:4294967294:4294967294::/:/sbin/nologin\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "var/log/lastlog").touch()
    return lastlog, root


def test_lastlog_read_as_lastlog_shows_it_without_reading_its_holes(tmp_path):
    lastlog, root = _lastlog_root(tmp_path)
    for user in ("admin", "nfsnobody"):  # lastlog itself writes these (now, 'lastlog' from 'localhost')
        subprocess.run([lastlog, "-R", str(root), "-S", "-u", user], check=True, env=UTC_ENV, capture_output=True)
    path = root / "var/log/lastlog"
    carol = struct.pack("<i32s256s", 1513063507, b"pts/0", b"203.0.113.9")  # sshd's record of a login
    with open(path, "r+b") as fh:
        os.pwrite(fh.fileno(), carol, 1001 * 292)
    assert path.stat().st_size == 4294967295 * 292 and path.stat().st_blocks * 512 < 1 << 20  # 1.25 TB, sparse
    shown = subprocess.run([lastlog, "-R", str(root)], capture_output=True, env=UTC_ENV, check=True).stdout.decode()
    header, *lines = shown.splitlines()
    port, frm = header.index("Port"), header.index("From")
    uids = {"root": 0, "admin": 1000, "carol": 1001, "nfsnobody": 4294967294}
    expected = set()
    for line in lines:  # 'carol  pts/0  203.0.113.9  Tue Dec 12 07:25:07 +0000 2017'
        if "Never logged in" in line:
            continue
        stamp = re.search(r"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d [+-]\d{4} \d{4}$", line)
        when = datetime.strptime(stamp.group(0), "%a %b %d %H:%M:%S %z %Y")
        where = line[frm:stamp.start()].strip()
        expected.add((uids[line[:port].strip()], line[port:frm].strip(), where, iso(when)))
    assert len(expected) == 3
    before = tree_state(root)

    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = [s for s in result.sources if s["format"] == "lastlog"]
    assert src["events"] == 3 and src["issues"] == 1  # the note on how it was hashed
    events = case_events(tmp_path / "case", "lastlog")
    assert {(e["uid"], e["terminal"], e["source_ip"] or e["client_host"], iso(e["ts_utc"])) for e in events} \
        == expected
    assert {e["event_type"] for e in events} == {"login.last"}
    assert [e["offset"] for e in events] == [1000 * 292, 1001 * 292, 4294967294 * 292]
    [(reason,)] = case_rows(tmp_path / "case", "SELECT reason FROM issues WHERE source_id IS NOT NULL")
    assert reason.startswith("hashed by its non-zero records")
    assert tree_state(root) == before  # evidence read-only


@pytest.mark.parametrize("name", ["wtmp", "lastlog"])
def test_random_bytes_under_a_binary_name_never_raise(tmp_path, name):
    """Forced onto bytes that are not its records, a reader gives issues, not a traceback."""
    blob = bytes((i * 7919 + 13) % 251 for i in range(384 * 292))
    path = tmp_path / "ev/web01/var/log" / name
    path.parent.mkdir(parents=True)
    path.write_bytes(blob)
    result = ingest([tmp_path / "ev"], tmp_path / "case", format_id=name)
    [src] = result.sources
    assert src["format"] == name and src["events"] == 0 and src["issues"] > 0


def test_a_cut_short_compressed_btmp_keeps_the_records_before_the_cut(tmp_path):
    btmp = undump(BTMP, tmp_path / "plain/btmp").read_bytes()
    packed = gzip.compress(btmp * 40)  # 200 records
    path = tmp_path / "ev/web01/var/log/btmp-20171213.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(packed[:len(packed) * 2 // 3])  # a copy interrupted two thirds of the way
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert src["format"] == "btmp" and 0 < src["events"] < 200
    issues = case_rows(tmp_path / "case", 'SELECT "offset", reason FROM issues ORDER BY "offset"')
    assert any(reason.startswith("stream ends early") for _, reason in issues)
    read_to = max(o for o, reason in issues if reason.startswith("stream ends early"))
    assert read_to >= src["events"] * 384  # every record before the cut is an event (a cut one an issue)
