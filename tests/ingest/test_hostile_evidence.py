"""Evidence written partly by the attacker: nothing lost, nothing hangs (issue 13, evidence reading).

Duplicate archive member names, link members, files that grow while read, links, FIFOs and devices
in the evidence tree or given directly, decompression bombs, archives with many members.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import duckdb
import pytest

import logsalvage.ingest as ingest_module
from logsalvage.config import CaseConfig, DecompressionLimits, parse_config
from logsalvage.errors import ConfigError, UsageError
from logsalvage.ingest import ingest
from logsalvage.sources import (Reading, ReadProblem, discover, open_text_stream, sha256_of, stream_lines)

ROOT = Path(__file__).resolve().parents[2]
SSH = "Dec  3 {h:02d}:{m:02d}:{s:02d} web01 sshd[{pid}]: Failed password for root from 203.0.113.{o} port {port} ssh2\n"


def _secure(n: int, start: int = 0) -> str:
    return "".join(SSH.format(h=i // 3600 % 24, m=i // 60 % 60, s=i % 60, pid=1000 + i % 5000, o=i % 250,
                              port=40000 + i % 20000)
                   for i in range(start, start + n))


def _tree(tmp_path: Path) -> Path:
    ev = tmp_path / "evidence"
    (ev / "web01/var/log").mkdir(parents=True)
    (ev / "web01/var/log/messages").write_text(_secure(10))
    return ev


def _con(case: Path):
    return duckdb.connect(str(case / "case.duckdb"), read_only=True)


def _cli(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def _tar(path: Path, members: list[tuple[str, object]], mode: str = "w") -> None:
    """members: (name, bytes) for a regular member, (name, ("sym"|"lnk", target)) for a link."""
    with tarfile.open(path, mode) as tf:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime = 1512270000
            if isinstance(content, tuple):
                info.type = tarfile.SYMTYPE if content[0] == "sym" else tarfile.LNKTYPE
                info.linkname = content[1]
                tf.addfile(info)
            else:
                info.size = len(content)
                tf.addfile(info, io.BytesIO(content))


# -- 2. duplicate member names, link members --------------------------------------------------------
@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_duplicate_member_names_are_two_sources(tmp_path, kind):
    ev = _tree(tmp_path)
    (ev / "web01/backup").mkdir()
    arch = ev / f"web01/backup/logs.{kind}"
    members = [("var/log/secure", _secure(100).encode()), ("var/log/secure", _secure(1, 500).encode())]
    if kind == "zip":
        with zipfile.ZipFile(arch, "w", zipfile.ZIP_DEFLATED) as zf, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "Duplicate name": the point of the test
            for name, data in members:
                zf.writestr(name, data)
    else:
        _tar(arch, members, "w:gz" if kind == "tar.gz" else "w")
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    got = dict(con.execute("SELECT member, events FROM sources WHERE member IS NOT NULL").fetchall())
    assert got == {"var/log/secure": 100, "var/log/secure#2": 1}
    assert con.execute("SELECT count(*) FROM source_copies").fetchone()[0] == 0
    inputs = {m for (m,) in con.execute("SELECT member FROM inputs WHERE member IS NOT NULL").fetchall()}
    assert inputs == {"var/log/secure", "var/log/secure#2"}


def test_a_member_reference_never_collides_with_a_literal_name(tmp_path):
    ev = _tree(tmp_path)
    arch = ev / "web01/logs.tar"
    _tar(arch, [("a/secure", _secure(3).encode()), ("a/secure", _secure(4, 10).encode()),
                ("a/secure#2", _secure(5, 20).encode())])
    cands = discover([arch])
    refs = {c.member: c for c in cands if c.member}
    assert sorted(refs) == ["a/secure", "a/secure#2", "a/secure#3"]
    assert refs["a/secure#2"].name == "secure#2"  # the literal name
    assert refs["a/secure#3"].name == "secure"  # the second member named a/secure
    assert len(list(stream_lines(refs["a/secure#3"]))) == 4


@pytest.mark.parametrize("compressed", [False, True])
def test_link_members_never_shadow_a_regular_member(tmp_path, compressed):
    ev = _tree(tmp_path)
    arch = ev / ("web01/logs.tar.gz" if compressed else "web01/logs.tar")
    _tar(arch, [("var/log/secure", _secure(100).encode()),
                ("var/log/secure", ("sym", "/etc/shadow")),
                ("var/log/secure.1", ("lnk", "var/log/secure"))], "w:gz" if compressed else "w")
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    got = dict(con.execute("SELECT member, events FROM sources WHERE member IS NOT NULL").fetchall())
    assert got == {"var/log/secure": 100}
    rows = {m: (role, detail) for m, role, detail in
            con.execute("SELECT member, role, detail FROM inputs WHERE member IS NOT NULL").fetchall()}
    assert rows["var/log/secure#2"][0] == "skipped" and "/etc/shadow" in rows["var/log/secure#2"][1]
    assert rows["var/log/secure.1"][0] == "skipped" and "hard link" in rows["var/log/secure.1"][1]
    issues = {p for (p,) in con.execute("SELECT path FROM issues WHERE reason LIKE 'skipped%'").fetchall()}
    assert {f"{arch.relative_to(ev)}!var/log/secure#2", f"{arch.relative_to(ev)}!var/log/secure.1"} <= issues


@pytest.mark.skipif(shutil.which("tar") is None, reason="GNU tar writes the sparse members")
def test_sparse_members_are_read_whole(tmp_path):
    src = tmp_path / "src/var/log/lastlog-like"
    src.parent.mkdir(parents=True)
    with open(src, "wb") as fh:  # lines, a 1 MiB hole, lines
        fh.write(_secure(20).encode())
        fh.seek(1 << 20, 1)
        fh.write(_secure(5, 100).encode())
    ev = tmp_path / "ev"
    ev.mkdir()
    for name, z in (("s.tar", ""), ("s.tar.gz", "z")):
        subprocess.run(["tar", "-C", str(tmp_path / "src"), f"-c{z}Sf", str(ev / name), "var"], check=True)
    want = hashlib.sha256(src.read_bytes()).hexdigest()
    members = [c for c in discover([ev]) if c.member]
    assert len(members) == 2 and all(c.loc.sparse for c in members)
    for c in members:
        assert sha256_of(c) == want


def test_a_directory_that_cannot_be_listed_is_an_issue(tmp_path, monkeypatch):
    ev = _tree(tmp_path)
    locked = ev / "web01/var/log/audit"
    locked.mkdir()
    (locked / "audit.log").write_text("type=LOGIN msg=audit(1512270000.000:1): pid=1\n")
    real = os.scandir

    def scandir(path):  # what a directory without read permission does (root would read it anyway)
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    ingest([ev], tmp_path / "case")
    con = _con(tmp_path / "case")
    role, detail = con.execute("SELECT role, detail FROM inputs WHERE path = 'web01/var/log/audit'").fetchone()
    assert role == "unreadable" and "cannot be listed (Permission denied)" in detail
    assert con.execute("SELECT count(*) FROM issues WHERE path = 'web01/var/log/audit'").fetchone()[0] == 1


def test_zip_symlink_member_is_recorded_with_its_target(tmp_path):
    ev = _tree(tmp_path)
    arch = ev / "web01/logs.zip"
    with zipfile.ZipFile(arch, "w") as zf:
        zf.writestr("var/log/secure", _secure(20))
        link = zipfile.ZipInfo("var/log/secure.0")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/shadow")
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    role, detail = con.execute("SELECT role, detail FROM inputs WHERE member = 'var/log/secure.0'").fetchone()
    assert role == "skipped" and "/etc/shadow" in detail
    assert con.execute("SELECT events FROM sources WHERE member = 'var/log/secure'").fetchone()[0] == 20


# -- 3. a file that grows while it is read -----------------------------------------------------------
def test_growing_file_hash_and_parse_cover_the_same_bytes(tmp_path, monkeypatch):
    ev = _tree(tmp_path)
    log = ev / "web01/var/log/secure"
    log.write_text(_secure(100))
    found = log.read_bytes()
    real = ingest_module.sha256_of

    def hash_then_grow(cand):  # the attacker (or syslogd) appends between hashing and parsing
        digest = real(cand)
        if cand.rel.endswith("/secure"):
            with open(log, "a") as fh:
                fh.write(_secure(681, 1000))
        return digest

    monkeypatch.setattr(ingest_module, "sha256_of", hash_then_grow)
    case = tmp_path / "case"
    ingest([ev], case)
    con = _con(case)
    sid, sha, size, events = con.execute(
        "SELECT source_id, sha256, size, events FROM sources WHERE path = 'web01/var/log/secure'").fetchone()
    assert size == len(found) and sha == hashlib.sha256(found).hexdigest()
    assert events == 100
    end = con.execute('SELECT max("offset" + length) FROM events WHERE source_id = ?', [sid]).fetchone()[0]
    assert end == len(found)  # the parsed range is the hashed range
    (reason,) = con.execute("SELECT reason FROM issues WHERE path = 'web01/var/log/secure' "
                            "AND reason LIKE '%changed during acquisition%'").fetchone()
    assert str(len(found)) in reason and str(log.stat().st_size) in reason


def test_reading_is_bounded_to_the_size_found(tmp_path):
    ev = _tree(tmp_path)
    log = ev / "web01/var/log/secure"
    log.write_text(_secure(50))
    (cand,) = [c for c in discover([ev]) if c.rel.endswith("/secure")]
    digest = hashlib.sha256(log.read_bytes()).hexdigest()
    with open(log, "a") as fh:
        fh.write(_secure(30, 100))
    assert sha256_of(cand) == digest
    assert len(list(stream_lines(cand))) == 50
    log.write_text(_secure(10))  # shorter than when found: what is there is read, and the end says why
    with pytest.raises(ReadProblem, match="shorter than when it was found"):
        list(stream_lines(cand))


# -- 4. links, FIFOs, sockets, devices ---------------------------------------------------------------
def _hostile_tree(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    ev = _tree(tmp_path)
    d = ev / "web01/var/log"
    (d / "etc").symlink_to("/etc")
    (d / "shadow").symlink_to("/etc/shadow")
    (d / "zero").symlink_to("/dev/zero")
    (d / "loop_a").symlink_to(d / "loop_b")
    (d / "loop_b").symlink_to(d / "loop_a")
    os.mkfifo(d / "pipe")
    expect = {"etc": "/etc", "shadow": "/etc/shadow", "zero": "/dev/zero", "loop_a": "loop_b", "loop_b": "loop_a",
              "pipe": "FIFO"}
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(d / "sock"))
        expect["sock"] = "socket"
    except OSError:  # path too long for a socket address
        pass
    finally:
        sock.close()
    return ev, expect


def test_links_fifos_and_sockets_in_the_tree_are_accounted_for(tmp_path):
    ev, expect = _hostile_tree(tmp_path)
    case = tmp_path / "case"
    r = _cli("ingest", str(ev), "--case", str(case))  # a FIFO opened would hang here: the timeout fails it
    assert r.returncode == 0, r.stderr
    con = _con(case)
    rows = {p.rsplit("/", 1)[1]: (role, detail) for p, role, detail in
            con.execute("SELECT path, role, detail FROM inputs WHERE path LIKE 'web01/var/log/%'").fetchall()}
    for name, what in expect.items():
        assert rows[name][0] == "skipped", name
        assert what in rows[name][1], (name, rows[name][1])
    skipped = {p.rsplit("/", 1)[1] for (p,) in con.execute("SELECT path FROM issues WHERE reason LIKE 'skipped%'")
               .fetchall()}
    assert skipped == set(expect)
    assert con.execute("SELECT events FROM sources WHERE path = 'web01/var/log/messages'").fetchone()[0] == 10
    con.close()
    summary = _cli("summary", "--case", str(case))
    assert "skipped: symbolic link, not followed" in summary.stdout and "skipped: FIFO" in summary.stdout
    again = ingest([ev], case)  # a second ingest does not add the same issues again
    assert again.sources_new == 0
    con = _con(case)
    assert con.execute("SELECT count(*) FROM issues WHERE reason LIKE 'skipped%'").fetchone()[0] == len(expect)


def test_special_files_given_directly(tmp_path):
    ev = _tree(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "zero").symlink_to("/dev/zero")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for name, what in [("pipe", "FIFO"), ("zero", "character device"), ("loop", "")]:
        r = _cli("ingest", str(tmp_path / name), "--case", str(tmp_path / f"case-{name}"), timeout=60)
        assert r.returncode == 2 and what in r.stderr and "Traceback" not in r.stderr, (name, r.stderr)
    with pytest.raises(UsageError, match="FIFO"):
        discover([tmp_path / "pipe"])
    # a link given directly is what the user named: followed when it leads to a file or a directory
    (tmp_path / "current").symlink_to(ev / "web01/var/log/messages")
    (tmp_path / "evidence-link").symlink_to(ev)
    r = _cli("ingest", str(tmp_path / "current"), "--case", str(tmp_path / "case-link"))
    assert r.returncode == 0 and "1 source(s) ingested" in r.stdout, r.stderr
    r = _cli("ingest", str(tmp_path / "evidence-link"), "--case", str(tmp_path / "case-dir-link"))
    assert r.returncode == 0 and "1 source(s) ingested" in r.stdout, r.stderr


def test_a_fifo_swapped_in_after_discovery_is_never_opened(tmp_path):
    ev = _tree(tmp_path)
    log = ev / "web01/var/log/messages"
    (cand,) = discover([ev])
    log.unlink()
    os.mkfifo(log)
    t0 = time.monotonic()
    with pytest.raises((ReadProblem, OSError), match="not a regular file"):
        sha256_of(cand)
    assert time.monotonic() - t0 < 5


# -- 8. decompression bombs --------------------------------------------------------------------------
SMALL = DecompressionLimits(max_ratio=100, ratio_after=1 << 20, max_size=8 << 30)


def _zeros_gz(path: Path, head: bytes, zeros: int) -> None:
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        fh.write(comp.compress(head))
        block = bytes(1 << 20)
        for _ in range(zeros >> 20):
            fh.write(comp.compress(block))
        fh.write(comp.flush())


def test_gzip_bomb_stops_at_the_ratio_limit_with_bounded_memory(tmp_path):
    ev = _tree(tmp_path)
    bomb = ev / "web01/var/log/messages-20171210.gz"
    _zeros_gz(bomb, _secure(100).encode(), 512 << 20)  # 512 MiB of zeros after the lines, ~500 KB on disk
    (cand,) = [c for c in discover([ev], reading=Reading(SMALL)) if c.rel.endswith(".gz")]
    assert cand.role == "log"
    tracemalloc.start()
    t0 = time.monotonic()
    got = 0
    with pytest.raises(ReadProblem, match=r"decompression stopped at \d+ bytes: ratio limit") as exc:
        with open_text_stream(cand) as fh:
            while block := fh.read(8 << 20):
                got += len(block)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert exc.value.offset == got and (1 << 20) < got < (4 << 20)
    assert "the rest of this file is not read" in str(exc.value)
    assert peak < 40 << 20, f"peak {peak >> 20} MiB"
    assert time.monotonic() - t0 < 10
    # the hash is of the stored (compressed) bytes, and cheap
    assert sha256_of(cand) == hashlib.sha256(bomb.read_bytes()).hexdigest()


def test_default_limits_stop_a_bomb_of_log_lines(tmp_path):
    line = b"Dec  3 03:00:00 web01 sshd[123]: Failed password for root from 203.0.113.9 port 22 ssh2\n"
    path = tmp_path / "ev/messages.gz"
    path.parent.mkdir()
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    with open(path, "wb") as fh:
        for _ in range(160):  # 160 MiB of one repeated line: about 300:1
            fh.write(comp.compress(line * ((1 << 20) // len(line))))
        fh.write(comp.flush())
    (cand,) = discover([path.parent])
    delivered = 0
    with pytest.raises(ReadProblem, match="ratio limit"), open_text_stream(cand) as fh:
        while block := fh.read(8 << 20):
            delivered += len(block)
    assert 64 << 20 < delivered < 66 << 20


def test_size_limit_and_bomb_in_a_case(tmp_path):
    ev = _tree(tmp_path)
    lines = _secure(20000).encode()  # ~1.8 MB, ~10:1
    (ev / "web01/var/log/secure-20171204.gz").write_bytes(gzip.compress(lines, mtime=0))
    with zipfile.ZipFile(ev / "web01/logs.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("var/log/secure-bomb", "w", force_zip64=True) as fh:
            fh.write(_secure(50).encode())
            for _ in range(256):
                fh.write(bytes(1 << 20))
    limits = DecompressionLimits(max_ratio=100, ratio_after=1 << 20, max_size=1 << 20)
    case = tmp_path / "case"
    t0 = time.monotonic()
    ingest([ev], case, config=CaseConfig(decompression=limits))
    assert time.monotonic() - t0 < 120
    con = _con(case)
    src = {m or p: (sid, sha, ev_) for sid, p, m, sha, ev_ in
           con.execute("SELECT source_id, path, member, sha256, events FROM sources").fetchall()}
    sid, sha, events = src["web01/var/log/secure-20171204.gz"]
    cut = lines[:1 << 20]
    assert events == cut.count(b"\n")  # the lines before the limit are kept
    (reason,) = con.execute("SELECT reason FROM issues WHERE source_id = ? AND reason LIKE '%decompression%'",
                            [sid]).fetchone()
    assert f"decompression stopped at {1 << 20} bytes: size limit" in reason
    assert sha == hashlib.sha256((ev / "web01/var/log/secure-20171204.gz").read_bytes()).hexdigest()
    sid, sha, events = src["var/log/secure-bomb"]
    assert events == 50
    (reason,) = con.execute("SELECT reason FROM issues WHERE source_id = ? AND reason LIKE '%decompression%'",
                            [sid]).fetchone()
    assert "decompression stopped at" in reason and "the rest of this member is not read" in reason
    n = int(reason.split("decompression stopped at ")[1].split()[0])
    content = _secure(50).encode() + bytes(n - len(_secure(50).encode()))
    assert sha == hashlib.sha256(content).hexdigest()  # a member's hash obeys the limit too


def test_compressed_tar_bomb_keeps_what_comes_before(tmp_path):
    ev = _tree(tmp_path)
    arch = ev / "web01/backup.tar.gz"
    with tarfile.open(arch, "w:gz") as tf:
        for name, data in [("var/log/secure-1", _secure(30).encode()), ("var/log/zeros", bytes(64 << 20)),
                           ("var/log/secure-2", _secure(40, 100).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    case = tmp_path / "case"
    ingest([ev], case, config=CaseConfig(decompression=SMALL))
    con = _con(case)
    got = dict(con.execute("SELECT member, events FROM sources WHERE member IS NOT NULL").fetchall())
    assert got == {"var/log/secure-1": 30}
    reasons = [r for (r,) in con.execute("SELECT reason FROM issues WHERE path = 'web01/backup.tar.gz'").fetchall()]
    assert any(r.startswith("archive read in part") and "ratio limit" in r for r in reasons), reasons


@pytest.mark.parametrize("kind", ["gz", "bz2", "xz"])
def test_bounded_steps_keep_every_byte_of_concatenated_and_truncated_streams(monkeypatch, kind):
    """The decompressor is fed and drained in small steps: a stream boundary inside a step (the
    next stream's first bytes held by the decompressor), and a cut, lose nothing."""
    import bz2
    import lzma

    from logsalvage.sources import DecompressingStream

    comp = {"gz": lambda d: gzip.compress(d, mtime=0), "bz2": bz2.compress, "xz": lzma.compress}[kind]
    parts = [_secure(n, 7 * n).encode() for n in (300, 1, 0, 250)]
    data = b"".join(comp(p) for p in parts)
    whole = b"".join(parts)
    for feed, out, chunk in [(7, 13, 5), (4096, 1000, 333), (1, 1, 1000)]:
        monkeypatch.setattr(DecompressingStream, "FEED", feed)
        monkeypatch.setattr(DecompressingStream, "OUT", out)
        monkeypatch.setattr(DecompressingStream, "RAW_CHUNK", chunk)
        s = DecompressingStream(io.BytesIO(data), kind)
        assert b"".join(iter(lambda: s.read(777), b"")) == whole
        s = DecompressingStream(io.BytesIO(data[:len(data) - 40]), kind)
        got = bytearray()
        with pytest.raises(ReadProblem, match="truncated"):
            while block := s.read(777):
                got += block
        assert whole.startswith(bytes(got)) and len(got) > len(parts[0])


def test_decompression_limits_in_the_case_config():
    cfg = parse_config({"decompression": {"max_ratio": 50, "ratio_after": "16 MiB", "max_size": "1 GiB"}}, "c.yaml")
    assert cfg.decompression == DecompressionLimits(50, 16 << 20, 1 << 30)
    assert parse_config({}, "c.yaml").decompression == DecompressionLimits()
    for bad in ({"max_ratio": 0}, {"ratio_after": "lots"}, {"max_size": -1}, {"maximum": 3}):
        with pytest.raises(ConfigError, match="decompression"):
            parse_config({"decompression": bad}, "c.yaml")


# -- 9. archives with many members: linear access ----------------------------------------------------
class _Counters:
    def __init__(self, monkeypatch):
        self.headers = self.zipinfos = self.inflated = 0
        counters = self
        real_from = tarfile.TarInfo.fromtarfile.__func__

        def fromtarfile(cls, tf):
            counters.headers += 1
            return real_from(cls, tf)

        monkeypatch.setattr(tarfile.TarInfo, "fromtarfile", classmethod(fromtarfile))
        real_init = zipfile.ZipInfo.__init__

        def zipinfo_init(self, *a, **k):
            counters.zipinfos += 1
            real_init(self, *a, **k)

        monkeypatch.setattr(zipfile.ZipInfo, "__init__", zipinfo_init)
        real_dobj = zlib.decompressobj

        class Counting:
            def __init__(self, *a, **k):
                self._d = real_dobj(*a, **k)

            def decompress(self, data, max_length=0):
                out = self._d.decompress(data, max_length)
                counters.inflated += len(out)
                return out

            def flush(self, *a):
                out = self._d.flush(*a)
                counters.inflated += len(out)
                return out

            def __getattr__(self, name):
                return getattr(self._d, name)

        monkeypatch.setattr(zlib, "decompressobj", Counting)

    def total(self) -> int:
        return self.headers + self.zipinfos + self.inflated // 512


def _many(path: Path, kind: str, n: int) -> None:
    members = [(f"var/log/app/{i:05d}.log", _secure(8, i * 10).encode()) for i in range(n)]
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
    else:
        _tar(path, members, "w:gz" if kind == "tar.gz" else "w")


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip"])
def test_archive_member_access_is_linear(tmp_path, monkeypatch, kind):
    """What ingest does per member (discover, hash, read), counted: tar headers parsed, zip
    directory entries made, bytes inflated. Per member, it must not grow with the archive."""
    per_member = {}
    for n in (200, 800):
        d = tmp_path / f"{kind}-{n}"
        d.mkdir()
        _many(d / f"logs.{kind}", kind, n)
        with pytest.MonkeyPatch.context() as mp:
            counters = _Counters(mp)
            cands = discover([d])
            logs = [c for c in cands if c.role == "log"]
            assert len(logs) == n
            for c in logs:
                sha256_of(c)
                for _ in stream_lines(c):
                    pass
            per_member[n] = counters.total() / n
    assert per_member[800] <= 1.5 * per_member[200], per_member


def test_a_zip_end_record_appended_to_a_log_does_not_hide_it(tmp_path):
    ev = _tree(tmp_path)
    log = ev / "web01/var/log/secure"
    log.write_bytes(_secure(50).encode() + b"PK\x05\x06" + b"\0" * 18)  # an empty zip's end record
    result = ingest([ev], tmp_path / "case")
    with _con(tmp_path / "case") as con:
        (n,) = con.execute("SELECT count(*) FROM events e JOIN sources s USING (source_id) "
                           "WHERE s.path = 'web01/var/log/secure'").fetchone()
    assert n == 50 and result.events >= 60
