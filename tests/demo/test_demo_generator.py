"""The demo generator: determinism, and a truth.json that matches what was actually written.

Everything is recomputed from the evidence with plain regexes (no logsalvage parser), so these
tests also pin down the exact formats the parsers are written against.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import mmap
import re
import tarfile
from pathlib import Path

import pytest

from logsalvage.demo import generate, make_plan
from logsalvage.demo import pgsyslog
from logsalvage.demo.timeline import FULL_HOLE, FULL_START, MIN_DAYS, PERIOD_END
from logsalvage.errors import UsageError

# 67 days is the smallest run with every structural feature: a salvage-only period holding the
# hole, a backup member, the salvage-only period between backup and live files, the live files.
DAYS = 67
MONTHS = {m.encode(): i for i, m in enumerate(calendar.month_abbr) if m}

SYSLOG = re.compile(rb"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) (\S+) ([^\s\[:]+(?:\([^)]*\))?)(?:\[(\d+)\])?: ")
PG_CHUNK = re.compile(rb" postgres\[(\d+)\]: \[(\d+)-(\d+)\] ")
ACCESS = re.compile(rb'^(\S+) \S+ \S+ \[(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) \+0900\] '
                    rb'"(\S+) (\S+) HTTP/1\.[01]" (\d{3}) (\d+|-) "[^"]*" "[^"]*"$')
ERROR_HEADER = re.compile(rb"^\[[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d \d{4}\] \[(error|notice|warn)\] ")
VSFTPD = re.compile(rb'^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} \[pid \d+\] ')
XFERLOG = re.compile(rb"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} \d+ \S+ \d+ \S+ "
                     rb"b _ [io] r \S+ ftp 0 \* [ci]$")
HEARTBEAT = re.compile(rb"^([A-Z][a-z]{2}) ([ \d]\d) (\d\d):(\d\d):(\d\d) db01 postgres\[\d+\]: \[\d+-1\] "
                       rb"DATABASE=\[unknown\],USER=\[unknown\],CLIENT=127\.0\.0\.1\(\d+\),"
                       rb"LOG:  incomplete startup packet$")


# --- helpers ----------------------------------------------------------------------------------

def epoch(mon: bytes, day: bytes, hh: bytes, mm: bytes, ss: bytes) -> int:
    """Syslog stamp (JST, no year) to POSIX seconds. db01's logs start after January 2017, so
    a January stamp there is 2018."""
    m = MONTHS[mon]
    year = 2018 if m == 1 else 2017
    return calendar.timegm((year, m, int(day), int(hh), int(mm), int(ss))) - 9 * 3600


def iso_epoch(s: str) -> int:
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\+09:00", s)
    assert m, s
    y, mo, d, h, mi, se = map(int, m.groups())
    return calendar.timegm((y, mo, d, h, mi, se)) - 9 * 3600


def read_evidence(root: Path, key: str) -> bytes:
    """Bytes of a truth 'files' key: a plain file, a .gz file, or 'archive!member'."""
    if "!" in key:
        archive, member = key.split("!")
        with tarfile.open(root / archive, "r:gz") as tar:
            return tar.extractfile(member).read()
    data = (root / key).read_bytes()
    return gzip.decompress(data) if key.endswith(".gz") else data


def physical_lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return lines


def valid_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def count_records(fmt: str, data: bytes) -> tuple[int, int, int]:
    """(records, physical lines, malformed lines) recomputed with simple regexes, as truth.json
    defines them: a PostgreSQL message is one record however many chunk lines it has."""
    lines = physical_lines(data)
    records = bad = 0
    for i, line in enumerate(lines):
        truncated = i == len(lines) - 1 and not data.endswith(b"\n")
        if truncated:
            bad += 1
            continue
        flagged = not valid_utf8(line)  # kept as a record (bytes escaped) if it parses, and malformed
        if flagged:
            line = line.decode("utf-8", "backslashreplace").encode()
        if fmt == "syslog":
            ok = SYSLOG.match(line) is not None
            m = PG_CHUNK.search(line)
            records += ok and (m is None or m.group(3) == b"1")
        elif fmt == "apache-access":
            ok = ACCESS.match(line) is not None
            records += ok
        elif fmt == "apache-error":
            ok = line != b"" and b"\x00" not in line
            records += ok
        elif fmt == "vsftpd":
            ok = VSFTPD.match(line) is not None
            records += ok
        else:
            ok = XFERLOG.match(line) is not None
            records += ok
        bad += (not ok) or flagged
    return records, len(lines), bad


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


COLUMNS = ("file", "file_offset", "length", "line_no", "time", "present_in_image", "image_offsets",
           "split", "text")
FILE, OFFSET, LENGTH, LINE_NO, TIME, PRESENT, OFFSETS, SPLIT, TEXT = range(9)


def load_rows(out: Path) -> list[list[bytes]]:
    with gzip.open(out / "truth-db-records.tsv.gz", "rb") as f:
        header = f.readline().rstrip(b"\n").split(b"\t")
        assert tuple(h.decode() for h in header) == COLUMNS
        return [raw[:-1].split(b"\t", 8) for raw in f]


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-a")
    messages = []
    truth = generate(out, days=DAYS, progress=messages.append)
    return out, truth, messages


@pytest.fixture(scope="module")
def rows(run):
    return load_rows(run[0])


@pytest.fixture(scope="module")
def logical(rows):
    """The logical messages files of db01 rebuilt from the records table."""
    files: dict[str, bytearray] = {}
    for r in rows:
        buf = files.setdefault(r[FILE].decode(), bytearray())
        off = int(r[OFFSET])
        assert off == len(buf), (r[FILE], off, len(buf))
        buf += r[TEXT] + b"\n"
        assert int(r[LENGTH]) == len(r[TEXT]) + 1
    return {k: bytes(v) for k, v in files.items()}


# --- determinism and the API ------------------------------------------------------------------

def test_same_arguments_give_identical_files(run, tmp_path):
    out, truth, _ = run
    again = generate(tmp_path, days=DAYS)
    assert tree_digest(out) == tree_digest(tmp_path)
    assert again == truth


def test_returned_truth_is_truth_json(run):
    out, truth, messages = run
    assert json.loads((out / "truth.json").read_text(encoding="utf-8")) == truth
    text = (out / "truth.json").read_text(encoding="utf-8")
    assert text == json.dumps(truth, sort_keys=True, indent=1, ensure_ascii=False) + "\n"
    assert messages and all(isinstance(m, str) for m in messages)
    assert truth["format_version"] == 1 and truth["timezone"] == "Asia/Tokyo"
    assert truth["records_file"] == "truth-db-records.tsv.gz"


def test_layout(run):
    out, truth, _ = run
    ev = out / "evidence"
    for rel in ("web01/etc/localtime", "web01/etc/httpd/conf/httpd.conf", "web01/var/log/httpd/access_log",
                "web01/var/log/httpd/error_log", "web01/var/log/vsftpd.log", "web01/var/log/xferlog",
                "web01/var/log/cron", "web01/var/log/secure", "web01/var/www/inventory.sha256",
                "web01/fs/ls-hidden-dir.txt", "db01/etc/localtime", "db01/var/lib/pgsql/data/postgresql.conf",
                "db01/etc/logrotate.conf", "db01/var/log/messages", "db01/image/sdb1.dd"):
        assert (ev / rel).is_file(), rel
    assert (ev / "web01/etc/localtime").read_bytes().startswith(b"TZif")
    conf = (ev / "db01/var/lib/pgsql/data/postgresql.conf").read_text()
    for setting in ("log_destination = 'syslog'", "syslog_facility = 'LOCAL7'",
                    "log_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'", "log_min_messages = info",
                    "log_min_error_statement = error", "log_min_duration_statement = 3000"):
        assert re.search(r"^" + re.escape(setting), conf, re.M), setting
    httpd = (ev / "web01/etc/httpd/conf/httpd.conf").read_text()
    assert "CustomLog logs/access_log combined" in httpd and "ErrorLog logs/error_log" in httpd
    live = sorted(p.name for p in (ev / "db01/var/log").iterdir())
    assert live == ["messages", "messages-20171210", "messages-20171217", "messages-20171224", "messages-20171231"]
    assert list((ev / "db01/backup").glob("var-log-messages-*.tar.gz"))
    # every evidence file is in truth, with its hash
    on_disk = {str(p.relative_to(ev)) for p in ev.rglob("*") if p.is_file()}
    assert on_disk == {k for k in truth["files"] if "!" not in k}
    for key in on_disk:
        assert truth["files"][key]["sha256"] == hashlib.sha256((ev / key).read_bytes()).hexdigest()


def test_mtimes_are_last_record_or_rotation(run):
    out, truth, _ = run
    ev = out / "evidence"
    for key, entry in truth["files"].items():
        if "!" in key or "records" not in entry:
            continue
        mtime = int((ev / key).stat().st_mtime)
        name = Path(key).name
        if re.search(r"-\d{8}(\.gz)?$", name):
            # a rotated file: changed last at its rotation, the day its name says (03-04 h)
            lt = __import__("time").gmtime(mtime + 9 * 3600)
            assert f"{lt.tm_year:04d}{lt.tm_mon:02d}{lt.tm_mday:02d}" == re.search(r"(\d{8})", name).group(1), key
            assert mtime >= iso_epoch(entry["last"]), key
        else:
            assert mtime == iso_epoch(entry["last"]), key


# --- record counts ----------------------------------------------------------------------------

def test_record_counts_match_truth(run):
    out, truth, _ = run
    checked = 0
    for key, entry in truth["files"].items():
        if "records" not in entry:
            assert entry["format"] in ("config", "tzif", "inventory", "listing", "image", "tar.gz"), key
            continue
        assert entry["format"] in ("syslog", "apache-access", "apache-error", "vsftpd", "xferlog"), key
        data = read_evidence(out / "evidence", key)
        assert count_records(entry["format"], data) == (entry["records"], entry["lines"], entry["malformed"]), key
        checked += 1
    assert checked > 100


def test_records_table_matches_messages_files(run, rows, logical):
    out, truth, _ = run
    db = truth["db"]
    assert len(rows) == db["lines_total"]
    starts = sum(1 for r in rows if (m := PG_CHUNK.search(r[TEXT])) is None or m.group(3) == b"1")
    assert starts == db["records_total"]
    # preserved copies are byte-identical to the logical files (except the planted bad line)
    for key, entry in truth["files"].items():
        name = entry.get("logical_file")
        if not name:
            continue
        data = read_evidence(out / "evidence", key)
        if entry["malformed"]:
            bad = entry["malformed_lines"][0]["line"]
            lines = physical_lines(data)
            data = b"".join(line + b"\n" for i, line in enumerate(lines, 1) if i != bad)
        assert data == logical[name], key


def test_pg_chunks_follow_write_syslog(logical):
    length_split = newline_split = 0
    for data in logical.values():
        prev = None
        for line in physical_lines(data):
            m = PG_CHUNK.search(line)
            if not m:
                prev = None
                continue
            pid, seq, chunk = m.groups()
            body = line[m.end():]
            assert len(body.replace(b"#011", b"\t")) <= 900, line
            if chunk == b"1" or body.startswith(b"DATABASE="):
                assert body.startswith(b"DATABASE="), line
            if chunk != b"1":
                assert prev is not None and prev[:2] == (pid, seq) and int(chunk) == int(prev[2]) + 1, line
                if len(prev[3]) > 800 and body.startswith(b" "):
                    length_split += 1
                if body.startswith(b"#011"):
                    newline_split += 1
            prev = (pid, seq, chunk, body)
    assert length_split and newline_split


# --- the image --------------------------------------------------------------------------------

def test_image_extents_hold_the_file_bytes(run, logical):
    out, truth, _ = run
    image = truth["image"]
    path = out / "evidence" / image["path"]
    assert path.stat().st_size == image["size"]
    with open(path, "rb") as f:
        head = f.read(16)
        assert head[:4] == b"XFSB"
        assert int.from_bytes(head[4:8], "big") == 4096
        assert int.from_bytes(head[8:16], "big") * 4096 == image["size"]
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            for ext in image["extents"] + image["duplicate_extents"]:
                want = logical[ext["file"]][ext["file_offset"]:ext["file_offset"] + ext["length"]]
                assert len(want) == ext["length"]
                assert mm[ext["image_offset"]:ext["image_offset"] + ext["length"]] == want, ext
                assert ext["image_offset"] % 4096 == ext["file_offset"] % 4096
            kinds = set()
            for j in image["junk_blocks"]:
                block = mm[j["image_offset"]:j["image_offset"] + 4096]
                kinds.add(j["kind"])
                if j["kind"] == "zeros":
                    assert block == bytes(4096)
                elif j["kind"] == "binary":
                    assert b"\x00" in block and block != bytes(4096)
                else:
                    assert b'HTTP/1.1" 200' in block
            assert {"zeros", "binary", "text"} <= kinds
        finally:
            mm.close()
    assert image["duplicate_extents"], "an older copy of some blocks is planted"


def test_records_table_offsets_point_into_the_image(run, rows):
    out, truth, _ = run
    path = out / "evidence" / truth["image"]["path"]
    split = present = 0
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            for r in rows:
                if r[PRESENT] != b"1":
                    assert r[OFFSETS] == b"" and r[SPLIT] == b"0"
                    continue
                present += 1
                line = r[TEXT] + b"\n"
                offsets = [int(x) for x in r[OFFSETS].split(b",")]
                first = offsets[0]
                if r[SPLIT] == b"1":
                    split += 1
                    head = mm[first:(first // 4096 + 1) * 4096]
                    assert line.startswith(head) and len(head) < len(line)
                    # the head is not followed by the rest of the record in the image
                    assert mm[first:first + len(line)] != line
                else:
                    assert mm[first:first + len(line)] == line
                for o in offsets[1:]:
                    assert mm[o:o + len(line)] == line
        finally:
            mm.close()
    assert split == truth["image"]["lines_split"] > 0
    assert present == truth["image"]["lines_present"]


# --- continuity: the hole, the seams, coverage ------------------------------------------------

def test_hole_has_no_heartbeat_in_any_source(run, rows):
    out, truth, _ = run
    hs, he = (iso_epoch(truth["db"]["hole"][k]) for k in ("start", "end"))
    assert he - hs >= 3 * 86400
    kinds = {f["name"]: f["kind"] for f in truth["db"]["files"]}
    for r in rows:
        t = iso_epoch(r[TIME].decode())
        if hs < t < he:
            assert r[PRESENT] == b"0" and kinds[r[FILE].decode()] == "salvage"
    # nothing in the image looks like a heartbeat inside the hole, and the edges are there
    path = out / "evidence" / truth["image"]["path"]
    found_edges = set()
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            pos = mm.find(b"incomplete startup packet")
            while pos != -1:
                # a line starts after a newline, or after the zeros that replaced its predecessors
                start = max(mm.rfind(b"\n", max(0, pos - 300), pos), mm.rfind(b"\x00", max(0, pos - 300), pos)) + 1
                m = HEARTBEAT.match(mm[start:pos + 25])
                if m:
                    t = epoch(*m.groups())
                    assert not hs < t < he
                    if t in (hs, he):
                        found_edges.add(t)
                pos = mm.find(b"incomplete startup packet", pos + 1)
        finally:
            mm.close()
    assert found_edges == {hs, he}
    # the preserved files do not reach into the hole either
    for key, entry in truth["files"].items():
        if entry.get("logical_file"):
            assert iso_epoch(entry["first"]) > he or iso_epoch(entry["last"]) < hs


def test_live_files_chain_with_short_seams(run):
    out, truth, _ = run
    root = out / "evidence" / "db01/var/log"
    names = ["messages-20171210", "messages-20171217", "messages-20171224", "messages-20171231", "messages"]
    prev_last = None
    for name in names:
        lines = physical_lines((root / name).read_bytes())
        first = SYSLOG.match(lines[0])
        assert first and HEARTBEAT.match(lines[0]), name
        if prev_last is not None:
            gap = epoch(*first.groups()[:5]) - prev_last
            assert 0 < gap <= 20, (name, gap)
        if name != "messages":
            assert lines[-1].endswith(b'x-info="http://www.rsyslog.com"] rsyslogd was HUPed'), name
        prev_last = epoch(*SYSLOG.match(lines[-1]).groups()[:5])
    assert truth["db"]["live"] == {"start": "2017-12-03T03:45:20+09:00", "end": "2018-01-06T14:54:19+09:00"}


def test_coverage_recomputed_from_the_records_table(run, rows):
    _, truth, _ = run
    db = truth["db"]
    kinds = {f["name"]: f["kind"] for f in db["files"]}
    p0, p1 = iso_epoch(db["period"]["start"]), iso_epoch(db["period"]["end"])
    times = [iso_epoch(r[TIME].decode()) for r in rows
             if HEARTBEAT.match(r[TEXT]) and (r[PRESENT] == b"1" or kinds[r[FILE].decode()] != "salvage")]
    assert times == sorted(times)
    holes = [(a, b) for a, b in zip(times, times[1:]) if b - a > 60]
    if times[0] - p0 > 60:
        holes.insert(0, (p0, times[0]))
    if p1 - times[-1] > 60:
        holes.append((times[-1], p1))
    assert [(iso_epoch(g["start"]), iso_epoch(g["end"])) for g in db["gaps"]] == holes

    def ratio(lo, hi):
        unc = max(0, min(hi, p0) - lo) + max(0, hi - max(lo, p1))
        unc += sum(max(0, min(b, hi) - max(a, lo)) for a, b in holes)
        return round((hi - lo - unc) / (hi - lo), 6)

    he = iso_epoch(db["hole"]["end"])
    ew = truth["exposure_window"]
    assert db["coverage"] == {"whole_period": ratio(p0, p1), "since_hole_end": ratio(he, p1),
                              "exposure_window": ratio(iso_epoch(ew["start"]), iso_epoch(ew["end"]))}
    assert db["coverage"]["since_hole_end"] > 0.99
    assert any(iso_epoch(g["start"]) == iso_epoch(db["hole"]["start"]) for g in db["gaps"])
    assert "60 s" in db["coverage_definition"]


def test_structure_periods(run):
    _, truth, _ = run
    db = truth["db"]
    assert db["backup"] and db["backup"]["end"] == "2017-11-10T23:09:50+09:00"
    assert len(db["salvage_only"]) == 2
    hs = iso_epoch(db["hole"]["start"])
    first = db["salvage_only"][0]
    assert iso_epoch(first["start"]) < hs < iso_epoch(db["hole"]["end"]) < iso_epoch(first["end"])
    assert db["period"]["end"] == "2018-01-06T14:54:19+09:00"
    assert db["period"]["start"] == first["start"]
    assert truth["exfiltration"] == "none"


# --- web01: the attack as the logs tell it ----------------------------------------------------

def _access_lines(root: Path):
    for p in sorted((root / "web01/var/log/httpd").glob("access_log*")):
        data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
        for line in physical_lines(data):
            m = ACCESS.match(line)
            if m:
                yield m


def test_first_webshell_execution_and_counts(run):
    out, truth, _ = run
    shells = (b"/config.php", b"/wp-contacts.php", b"/wp-session.php")
    first = None
    executions = 0
    probes = 0
    blocks = {ip: k for k in "ABC" for ip in truth["addresses"][k]}
    for m in _access_lines(out / "evidence"):
        path = m.group(9).split(b"?")[0]
        status = int(m.group(10))
        if path in shells and status == 200:
            executions += 1
            d, mon, y, hh, mi, ss = m.group(2, 3, 4, 5, 6, 7)
            t = calendar.timegm((int(y), MONTHS[mon], int(d), int(hh), int(mi), int(ss))) - 9 * 3600
            first = t if first is None else min(first, t)
            assert m.group(1).decode() in blocks
        elif status >= 400 and path != b"/favicon.ico":
            probes += 1
    ms = {m["kind"]: m for m in reversed(truth["milestones"])}
    assert first == iso_epoch("2017-07-15T08:58:21+09:00")
    assert ms["first_webshell_execution"]["time"] == "2017-07-15T08:58:21+09:00"
    assert truth["exposure_window"]["start"] == "2017-07-15T08:58:21+09:00"
    assert executions == truth["counts"]["webshell_executions"]
    assert probes == truth["counts"]["probes"]
    assert ms["first_probe"]["time"] == "2017-01-20T05:39:01+09:00"


def test_fourteen_ftp_intrusions(run):
    out, truth, _ = run
    attackers = set(truth["addresses"]["A"]) | set(truth["addresses"]["B"])
    logins = []
    uploads = 0
    for line in physical_lines((out / "evidence/web01/var/log/vsftpd.log").read_bytes()):
        m = re.search(rb'\[kyushoferry\] OK (LOGIN|UPLOAD): Client "([\d.]+)"', line)
        if m and m.group(2).decode() in attackers:
            if m.group(1) == b"LOGIN":
                logins.append(line)
            else:
                uploads += 1
    assert len(logins) == 14
    sessions = [m for m in truth["milestones"] if m["kind"] == "ftp_upload_session"]
    assert len(sessions) == 14
    assert sessions[0]["time"].startswith("2017-10-20T10:20") and sessions[-1]["time"].startswith("2018-01-03")
    xfer = physical_lines((out / "evidence/web01/var/log/xferlog").read_bytes())
    assert sum(1 for line in xfer if b" i r kyushoferry" in line and line.split()[6].decode() in attackers) >= uploads
    assert (b'Fri Oct 20 10:20:44 2017 [pid 11806] [kyushoferry] OK UPLOAD: Client "79.172.212.37", '
            b'"/htdocs/config.php", 330755 bytes, 122.12Kbyte/sec') in physical_lines(
        (out / "evidence/web01/var/log/vsftpd.log").read_bytes())


def test_cron_and_error_log_story(run):
    out, truth, _ = run
    log = out / "evidence/web01/var/log"
    cron = b"".join((log / n).read_bytes() for n in sorted(p.name for p in log.glob("cron*")))
    assert b"Dec 12 07:23:06 web01 crontab[" in cron and b"]: (nobody) REPLACE (nobody)" in cron
    assert re.search(rb"Dec 12 07:24:01 web01 CROND\[\d+\]: \(nobody\) CMD \(/tmp/upd >/dev/null 2>&1\)", cron)
    assert re.search(rb"Dec 25 15:29:07 web01 crontab\[\d+\]: \(nobody\) REPLACE \(nobody\)", cron)
    assert b"(nobody) CMD (/usr/local/src/libssh2-0.18/nw/test/.dev/upd >/dev/null 2>&1)" in cron
    assert len(re.findall(rb"\(nobody\) LIST \(nobody\)", cron)) == 2 and b"(nobody) DELETE (nobody)" in cron
    err = (log / "httpd/error_log-20171231").read_bytes()
    lines = physical_lines(err)
    i = lines.index(b"--2017-12-25 15:28:56--  http://dl.mirror-cdn.example/v.tgz")
    j = next(k for k in range(i, len(lines)) if lines[k].endswith(b"saved [1841651/1841651]"))
    assert lines[j] == b"2017-12-25 15:29:00 (411 KB/s) - `v.tgz' saved [1841651/1841651]" or \
        re.fullmatch(rb"2017-12-25 15:29:00 \(\d+ KB/s\) - `v.tgz' saved \[1841651/1841651\]", lines[j])
    assert all(lines[k] for k in range(i, j + 1)), "no blank lines inside the wget block"
    assert b"Length: 1841651 (1.8M) [application/x-gzip]" in lines[i:j]
    finds = [line for line in lines if line.startswith(b"find: '")]
    assert len(finds) >= 24 and any("許可がありません".encode() in line for line in finds)
    ms = [m for m in truth["milestones"] if m["kind"] == "download"]
    assert ms and any(m["detail"]["url"].endswith("/v.tgz") for m in ms)
    listing = (out / "evidence/web01/fs/ls-hidden-dir.txt").read_text()
    assert "2017-12-25 15:29:01." in listing and "drwxrwxrwx" in listing


def test_malformed_lines_where_truth_says(run):
    out, truth, _ = run
    reasons = {}
    for m in truth["malformed"]:
        data = read_evidence(out / "evidence", m["file"])
        lines = physical_lines(data)
        line = lines[m["line"] - 1]
        reasons[m["reason"]] = m["file"]
        if m["reason"] == "binary":
            assert b"\x00" in line
        elif m["reason"] == "invalid_utf8":
            assert not valid_utf8(line) and SYSLOG.match(line)
        elif m["reason"] == "truncated":
            assert m["line"] == len(lines) and not data.endswith(b"\n")
            assert not ACCESS.match(line)
        else:
            pytest.fail(m["reason"])
    assert set(reasons) == {"binary", "invalid_utf8", "truncated"}
    assert "db01/image/sdb1.dd" not in reasons.values()


# --- arguments --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, needle", [
    ({"days": MIN_DAYS - 1}, f"at least {MIN_DAYS} days"),
    ({"days": 10}, f"at least {MIN_DAYS} days"),
    ({"days": 400}, "too large"),
    ({"days": 60, "image_mb": 16}, "at least"),
    ({"full": True, "days": 60}, "cannot be combined"),
    ({"days": "60"}, "integer"),
])
def test_impossible_arguments(tmp_path, kwargs, needle):
    with pytest.raises(UsageError, match=re.escape(needle)):
        generate(tmp_path, **kwargs)
    assert not (tmp_path / "evidence").exists()


def test_image_too_small_names_the_minimum():
    plan = make_plan(days=60)
    with pytest.raises(UsageError) as e:
        make_plan(days=60, image_mb=plan.image_min_mb - 1)
    assert f"at least {plan.image_min_mb} MB" in str(e.value)


def test_refuses_a_non_empty_evidence_directory(tmp_path):
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "x").write_text("x")
    with pytest.raises(UsageError, match="not empty"):
        generate(tmp_path, days=MIN_DAYS)


def test_full_scale_plan_without_writing():
    plan = make_plan(full=True)
    assert plan.scale == "full"
    assert 2_300_000 <= plan.expected_db_records <= 2_500_000
    assert plan.period == (FULL_START, PERIOD_END)
    assert plan.hole == FULL_HOLE
    assert plan.image_bytes >= 4 * 2**30
    kinds = {f.name: f.kind for f in plan.db_files}
    assert [n for n, k in kinds.items() if k == "live"] == [
        "messages-20171210", "messages-20171217", "messages-20171224", "messages-20171231", "messages"]
    assert [len(m) for _, _, m in plan.archives] == [4, 4]
    assert plan.db_files[0].begin == FULL_START
    assert plan.counts["probes"] == 18900 and plan.counts["webshell"] == 1409
    default = make_plan()
    assert default.days == 120 and len(default.archives) == 2


# --- PostgreSQL's syslog splitting ------------------------------------------------------------

def test_chunks_split_long_lines_at_a_space_below_900_bytes():
    text = ("DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(5),LOG:  duration: 3120.512 ms  statement: "
            "SELECT r.id FROM reservations r WHERE r.id IN (" + ", ".join(str(i) for i in range(400)) + ")")
    parts = pgsyslog.chunks(text.encode())
    assert len(parts) >= 3 and b"".join(parts) == text.encode()
    assert all(len(p) <= 900 for p in parts)
    assert all(p.startswith(b" ") for p in parts[1:])


def test_chunks_split_at_newlines_skip_empty_lines_and_keep_utf8_whole():
    msg = "LOG:  statement: SELECT 1\n\n\tFROM x\n" + "ヤ" * 400
    parts = pgsyslog.chunks(msg.encode())
    assert parts[0] == b"LOG:  statement: SELECT 1" and parts[1] == b"\tFROM x"
    for p in parts[2:]:
        p.decode("utf-8")
        assert len(p) <= 900
    assert pgsyslog.rsyslog_escape(b"\tFROM x") == b"#011FROM x"


def test_image_writer_says_so_when_the_blocks_do_not_fit(tmp_path):
    import random

    from logsalvage.demo.image import ImageWriter

    img = ImageWriter(tmp_path / "small.dd", 2**20, random.Random(1), min_mb_hint=5)
    try:
        data = b"x" * 1_200_000
        with pytest.raises(UsageError, match="at least"):
            img.place("big", data, [(0, len(data))], 0, lambda kind, rng: bytes(4096))
    finally:
        img.close()
