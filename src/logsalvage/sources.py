"""Evidence discovery and reading: the I/O edge for files, compressed files and archives.

Files are identified by content (their first lines), not by name alone. Compression is
recognised by magic bytes; tar and zip backups are read member by member, never extracted to
disk, with member names checked (no absolute paths, no ``..``) and sizes bounded. Evidence is only
ever opened for reading.
"""

from __future__ import annotations

import bz2
import hashlib
import io
import lzma
import os
import re
import stat
import tarfile
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Iterator

from logsalvage.parsing.formats import FormatSpec, log_formats
from logsalvage.parsing.lines import iter_lines

SNIFF_BYTES = 64 << 10
SNIFF_LINES = 200
MAX_MEMBER_SIZE = 64 << 30
MAX_MEMBERS = 100_000
HASH_CHUNK = 8 << 20

MAGIC = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}
IMAGE_SUFFIXES = (".dd", ".img", ".raw", ".e01", ".001", ".aff", ".vmdk", ".iso")
CONFIG_NAMES = {
    "postgresql.conf": "postgresql.conf",
    "postgresql.auto.conf": "postgresql.conf",
    "httpd.conf": "httpd.conf",
    "apache2.conf": "httpd.conf",
    "logrotate.conf": "logrotate.conf",
    "localtime": "localtime",
    "timezone": "timezone",
    "clock": "clock",
    "vsftpd.conf": "vsftpd.conf",
    "rsyslog.conf": "rsyslog.conf",
}
# top-level directories of a Unix tree: evidence laid out as <host>/var/log/... is recognised by them
FS_TOP = {"var", "etc", "usr", "home", "root", "opt", "srv", "tmp", "boot", "log", "logs"}
_ROTATED_DATE = re.compile(r"[-_.](\d{4})-?(\d\d)-?(\d\d)(?:[-_.]\d+)?(?:\.(?:gz|bz2|xz|Z|zip))?$")


class ReadProblem(Exception):
    """Raised inside reading when the stored bytes end early or are corrupt."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset  # decompressed bytes delivered before the problem


@dataclass(frozen=True)
class Candidate:
    """One thing found under an evidence path: a log, a config, an image, or something unknown."""

    path: Path  # the file on disk (the archive for a member)
    rel: str  # path relative to the evidence root (POSIX form)
    member: str | None
    size: int
    mtime: datetime | None
    host: str | None
    kind: str  # live | backup | salvage
    role: str  # log | config | image | archive | unknown | unreadable
    compression: str | None = None
    format_id: str | None = None
    config_kind: str | None = None
    detail: str | None = None

    @property
    def display(self) -> str:
        return f"{self.rel}!{self.member}" if self.member else self.rel

    @property
    def name(self) -> str:
        return PurePosixPath(self.member).name if self.member else self.path.name

    @property
    def rotation_date(self) -> date | None:
        m = _ROTATED_DATE.search(self.name)
        if not m:
            return None
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None


# -- reading ------------------------------------------------------------------------------------
class GuardedStream(io.RawIOBase):
    """A read-only stream that turns decompression errors into ``ReadProblem`` with the offset reached."""

    def __init__(self, inner: BinaryIO, what: str):
        self.inner = inner
        self.what = what
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.inner.read(n)
        except (EOFError, OSError, zlib.error, lzma.LZMAError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise ReadProblem(f"truncated or corrupt after {self.delivered} bytes: {exc}", self.delivered) from None
        self.delivered += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


_NEW_DECOMPRESSOR = {
    "gz": lambda: zlib.decompressobj(wbits=31),
    "bz2": bz2.BZ2Decompressor,
    "xz": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_AUTO),
}


class DecompressingStream(io.RawIOBase):
    """gzip/bzip2/xz decompression that hands out every byte it could recover.

    The standard library's file wrappers raise at a truncated end and lose the data of that read;
    here the decompressed bytes are delivered first and the truncation is raised afterwards.
    Concatenated members (``cat a.gz b.gz``) are followed.
    """

    RAW_CHUNK = 1 << 20

    def __init__(self, raw: BinaryIO, compression: str):
        self.raw = raw
        self.compression = compression
        self.dec = _NEW_DECOMPRESSOR[compression]()
        self.buf = bytearray()
        self.done = False
        self.error: str | None = None
        self.delivered = 0

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        while len(self.buf) < want and not self.done:
            chunk = self.raw.read(self.RAW_CHUNK)
            if not chunk:
                if not self.dec.eof:
                    self.error = f"{self.compression} stream truncated (no end-of-stream marker)"
                self.done = True
                break
            try:
                while chunk:
                    self.buf += self.dec.decompress(chunk)
                    if self.dec.eof:
                        chunk = self.dec.unused_data
                        if chunk:
                            self.dec = _NEW_DECOMPRESSOR[self.compression]()
                    else:
                        chunk = b""
            except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
                self.error = f"{self.compression} data corrupt: {exc}"
                self.done = True

    def read(self, n: int = -1) -> bytes:
        want = n if n is not None and n >= 0 else 1 << 62
        self._fill(want)
        out = bytes(self.buf[:want])
        del self.buf[:want]
        self.delivered += len(out)
        if not out and self.error:
            error, self.error = self.error, None
            raise ReadProblem(f"truncated or corrupt after {self.delivered} bytes: {error}", self.delivered)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def _decompressor(raw: BinaryIO, compression: str | None) -> BinaryIO:
    return DecompressingStream(raw, compression) if compression else raw


def sniff_compression(head: bytes) -> str | None:
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


@contextmanager
def open_raw(cand: Candidate) -> Iterator[BinaryIO]:
    """The stored bytes of a candidate (a file, or an archive member's content)."""
    if cand.member is None:
        with open(cand.path, "rb") as fh:
            yield fh
        return
    if zipfile.is_zipfile(cand.path):
        with zipfile.ZipFile(cand.path) as zf, zf.open(cand.member) as fh:
            yield fh
        return
    with tarfile.open(cand.path, mode="r:*") as tf:
        fh = tf.extractfile(cand.member)
        if fh is None:
            raise ReadProblem(f"{cand.display}: member is not a regular file")
        yield fh


@contextmanager
def open_text_stream(cand: Candidate) -> Iterator[GuardedStream]:
    """The decompressed content, guarded so corruption surfaces as ``ReadProblem``."""
    with open_raw(cand) as raw:
        yield GuardedStream(_decompressor(raw, cand.compression), cand.display)


def sha256_of(cand: Candidate) -> str:
    h = hashlib.sha256()
    with open_raw(cand) as fh:
        while True:
            block = fh.read(HASH_CHUNK)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def read_head(cand: Candidate, limit: int = SNIFF_BYTES) -> bytes:
    try:
        with open_text_stream(cand) as fh:
            return fh.read(limit)
    except ReadProblem:
        return b""


def read_small(cand: Candidate, limit: int = 4 << 20) -> bytes:
    with open_text_stream(cand) as fh:
        return fh.read(limit)


# -- identification ----------------------------------------------------------------------------
def detect_format(head: bytes, specs: list[FormatSpec] | None = None) -> tuple[str | None, float]:
    """Best format for the first lines of a stream, and the share of lines it recognised."""
    specs = specs or log_formats()
    lines = []
    for line in iter_lines(io.BytesIO(head)):
        if line.no_newline and len(lines) > 0:
            break  # a partial last line of the sample
        text = line.data.decode("utf-8", "replace").rstrip("\r")
        if text.strip():
            lines.append(text)
        if len(lines) >= SNIFF_LINES:
            break
    if not lines:
        return None, 0.0
    best: tuple[float, int, str] | None = None
    for spec in specs:
        if not spec.detect:
            continue
        hits = sum(1 for text in lines if any(rx.search(text) for rx in spec.detect))
        ratio = hits / len(lines)
        if ratio >= spec.detect_min_ratio and (best is None or (ratio, spec.priority) > best[:2]):
            best = (ratio, spec.priority, spec.id)
    return (best[2], best[0]) if best else (None, 0.0)


def _host_from_layout(root: Path, rel: PurePosixPath) -> str | None:
    parts = rel.parts
    if root.is_dir() and ((root / "var").is_dir() or (root / "etc").is_dir()):
        return root.name
    if len(parts) >= 2 and parts[0] not in FS_TOP:
        return parts[0]
    return None


def _kind_from_layout(rel: str, member: str | None) -> str:
    lowered = rel.lower()
    if member is not None or any(p in lowered for p in ("backup", "bur/", "restore")):
        return "backup"
    return "live"


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, timezone.utc)


def _classify(cand: Candidate, specs: list[FormatSpec]) -> Candidate:
    """Decide what a file or member is, from its name where that is decisive, else its content."""
    name = cand.name
    if name.lower().endswith(IMAGE_SUFFIXES):
        return replace(cand, role="image", kind="salvage")
    try:
        with open_raw(cand) as fh:
            magic = fh.read(8)
    except (OSError, ReadProblem, tarfile.TarError, zipfile.BadZipFile, KeyError) as exc:
        return replace(cand, role="unreadable", detail=str(exc))
    compression = sniff_compression(magic)
    cand = replace(cand, compression=compression)
    base = re.sub(r"\.(?:gz|bz2|xz)$", "", name)
    if base in CONFIG_NAMES or (base.endswith(".conf") and "httpd" in cand.display):
        return replace(cand, role="config", config_kind=CONFIG_NAMES.get(base, "httpd.conf"))
    head = read_head(cand)
    if head.startswith(b"TZif"):
        return replace(cand, role="config", config_kind="localtime")
    if compression is None and (head.startswith(b"XFSB") or head.startswith(b"EVF\x09\x0d\x0a\xff\x00")):
        return replace(cand, role="image", kind="salvage")
    other = _non_log_evidence(head)
    if other:
        return replace(cand, role=other[0], detail=other[1])
    fmt, ratio = detect_format(head, specs)
    if fmt:
        return replace(cand, role="log", format_id=fmt, detail=f"{ratio:.0%} of the first lines look like {fmt}")
    return replace(cand, role="unknown", detail="content not recognised as a supported log format")


_CHECKSUM_LINE = re.compile(rb"^[0-9a-f]{32,128} [ *]\S")
_LS_LINE = re.compile(rb"^(?:total \d+|[-dlcbps][rwxsStT-]{9}[.+@]? +\d+ )")
_BODYFILE_LINE = re.compile(rb"^[0-9a-fA-F]*\|[^|]*\|\d+(?:-\d+)*\|[-drwxlcbps/]{10,}\|")


def _non_log_evidence(head: bytes) -> tuple[str, str] | None:
    """File-system evidence that is not a log: checksum inventories, ls listings, bodyfiles."""
    lines = [ln for ln in head.split(b"\n")[:50] if ln.strip() and not ln.startswith(b"#")]
    if not lines:
        return None
    for role, rx, what in (("inventory", _CHECKSUM_LINE, "checksum inventory (sha256sum/md5sum output)"),
                           ("listing", _LS_LINE, "file listing (ls -l output)"),
                           ("listing", _BODYFILE_LINE, "bodyfile (TSK/mactime)")):
        hits = sum(1 for ln in lines if rx.match(ln) or (role == "listing" and ln.endswith(b":")))
        if hits / len(lines) >= 0.8:
            return role, what
    return None


def _archive_members(cand: Candidate) -> Iterator[tuple[str, int, datetime | None]] | str:
    """Regular members of a tar or zip archive, or the reason it cannot be listed."""
    path = cand.path
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                infos = [(i.filename, i.file_size, datetime(*i.date_time, tzinfo=timezone.utc))
                         for i in zf.infolist() if not i.is_dir()]
        elif tarfile.is_tarfile(path):
            with tarfile.open(path, mode="r:*") as tf:
                infos = [(m.name, m.size, datetime.fromtimestamp(m.mtime, timezone.utc))
                         for m in tf.getmembers() if m.isreg()]
        else:
            return "not an archive"
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
        return f"archive unreadable: {exc}"
    return iter(infos)


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "\x00" not in name


def is_archive_name(name: str) -> bool:
    n = name.lower()
    return n.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip"))


def discover(paths: list[Path], *, host: str | None = None, kind: str | None = None,
             format_id: str | None = None, host_for_path=None,
             specs: list[FormatSpec] | None = None) -> list[Candidate]:
    """Everything under ``paths``, classified, in a deterministic order."""
    specs = specs or log_formats()
    out: list[Candidate] = []
    for given in paths:
        root = Path(given)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if not p.is_dir())
        base = root.parent if root.is_file() else root
        for f in files:
            rel = PurePosixPath(f.relative_to(base).as_posix())
            try:
                st = f.lstat()
            except OSError as exc:
                out.append(Candidate(f, str(rel), None, 0, None, host, kind or "live", "unreadable",
                                     detail=exc.strerror))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # symlinks, devices, sockets: never followed out of the evidence tree
            h = host or (host_for_path(str(rel)) if host_for_path else None) or _host_from_layout(root, rel)
            cand = Candidate(f, str(rel), None, st.st_size, _mtime(st), h, kind or _kind_from_layout(str(rel), None),
                             "unknown")
            if not os.access(f, os.R_OK):
                out.append(replace(cand, role="unreadable", detail="permission denied"))
                continue
            if is_archive_name(f.name) or zipfile.is_zipfile(f):
                members = _archive_members(cand)
                if isinstance(members, str):
                    if members != "not an archive":
                        out.append(replace(cand, role="unreadable", detail=members))
                        continue
                else:
                    out.append(replace(cand, role="archive"))
                    for i, (name, size, mtime) in enumerate(members):
                        if i >= MAX_MEMBERS:
                            out.append(replace(cand, role="unreadable", detail=f"more than {MAX_MEMBERS} members"))
                            break
                        mcand = replace(cand, member=name, size=size, mtime=mtime,
                                        kind=kind or _kind_from_layout(str(rel), name))
                        if not _safe_member(name):
                            out.append(replace(mcand, role="unreadable", detail="unsafe member name (absolute or '..')"))
                        elif size > MAX_MEMBER_SIZE:
                            out.append(replace(mcand, role="unreadable", detail=f"member larger than {MAX_MEMBER_SIZE} bytes"))
                        else:
                            out.append(_with_format(_classify(mcand, specs), format_id))
                    continue
            out.append(_with_format(_classify(cand, specs), format_id))
    return out


def _with_format(cand: Candidate, format_id: str | None) -> Candidate:
    """A format forced by the user applies to every file that is not a config, archive or image."""
    if format_id and cand.role in ("log", "unknown"):
        return replace(cand, role="log", format_id=format_id, detail=f"format {format_id} given by the user")
    return cand


def stream_lines(cand: Candidate):
    """Lines of a candidate's content; a ``ReadProblem`` ends the iteration with the problem raised."""
    with open_text_stream(cand) as fh:
        yield from iter_lines(fh)
