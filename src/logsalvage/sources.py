"""Evidence discovery and reading: the I/O edge for files, compressed files and archives.

Files are identified by content (their first lines), not by name alone. Compression is
recognised by magic bytes; tar and zip backups are read member by member, never extracted to
disk, with member names checked (no absolute paths, no ``..``) and sizes bounded. Evidence is only
ever opened for reading. Part of the evidence of a break-in is written by the attacker, so:

* **Every entry met is accounted for.** Walking an evidence directory never follows a link
  and never opens anything that is not a regular file (the type is checked with ``lstat`` before
  any ``open``, and again on the open descriptor): a symbolic link is recorded with its target,
  not followed (it can lead out of the evidence, to a device, or into a loop); a FIFO, socket or
  device is recorded as such, never opened (opening a FIFO blocks until something writes to it).
  Each becomes a candidate of role ``skipped`` whose ``issue`` the ingest records.
* **An archive member is identified by its position**, not its name: the ``n``-th member named
  ``var/log/secure`` is ``var/log/secure#n`` (``member`` is that reference; ``loc`` says where its
  bytes are), so a second member of the same name never hides the first. Link and device members
  are not content: recorded with their target, never read in place of a regular member.
* **What is hashed is what is read.** A file is read up to the size it had when it was found,
  never further; one that changed while it was acquired is reported (``acquisition_change``).
* **Decompression is bounded** (``DecompressionLimits`` from the case config): past a ratio or a
  size a compressed stream stops, what was read before is kept and the stop is a ``ReadProblem``
  at that offset. Memory stays bounded whatever the ratio.
* **Members cost the same however many there are.** A tar or zip is listed once; a member is
  read at its offset (a plain tar, a zip's local header) — a compressed tar is listed in one
  streaming pass and, when members are read, decompressed once into an unnamed temporary file
  (the spool) that is read at offsets.
"""

from __future__ import annotations

import bz2
import errno
import hashlib
import io
import lzma
import os
import re
import stat
import struct
import tarfile
import tempfile
import threading
import zipfile
import zlib
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Callable, Iterator

from logsalvage.config import DecompressionLimits
from logsalvage.errors import UsageError
from logsalvage.parsing.formats import FormatSpec, log_formats
from logsalvage.parsing.lines import cr_only, iter_lines, with_line_ends

SNIFF_BYTES = 64 << 10
SNIFF_LINES = 200
PREFIX_BYTES = 1 << 20  # raw bytes of a streamed member kept to classify it (enough for 64 KiB decompressed)
MAX_MEMBER_SIZE = 64 << 30
MAX_MEMBERS = 100_000
HASH_CHUNK = 8 << 20
SPOOLS_KEPT = 2  # decompressed compressed tars kept open per process

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
_ARCHIVE_TRUNCATED = "the archive ends before this member's end (truncated archive)"


class ReadProblem(Exception):
    """Raised inside reading when the stored bytes end early or are corrupt."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset  # decompressed bytes delivered before the problem


@dataclass(frozen=True)
class Reading:
    """How a candidate is read: the decompression limits (case config) and where a compressed
    tar may be spooled (the case directory; the system's temporary directory when it is not there
    yet). Travels with each candidate, so a worker reads it as the ingest decided."""

    limits: DecompressionLimits = DecompressionLimits()
    spool_dir: str | None = None


@dataclass(frozen=True)
class MemberLoc:
    """Where an archive member's bytes are: found by position, never by name."""

    archive: str  # "tar" | "zip"
    index: int  # position among all the archive's entries (0-based)
    name: str  # the name stored in the archive (several members may share it)
    offset: int  # tar: first data byte in the (decompressed) tar; zip: its local header
    container: str | None = None  # a compressed tar's compression (gz, bz2, xz): read through the spool
    sparse: bool = False  # a GNU sparse tar member: read through tarfile
    method: int = 0  # zip: compression method
    csize: int = 0  # zip: compressed size
    crc: int = 0  # zip: CRC-32 of the content
    end: int | None = None  # zip: where the next member (or the directory) begins


@dataclass(frozen=True)
class Candidate:
    """One thing found under an evidence path: a log, a config, an image, or something unknown."""

    path: Path  # the file on disk (the archive for a member)
    rel: str  # path relative to the evidence root (POSIX form)
    member: str | None  # an archive member's reference: its name, ``name#n`` for the n-th of that name
    size: int
    mtime: datetime | None
    host: str | None
    kind: str  # live | backup | salvage
    role: str  # log | config | image | archive | unknown | unreadable | skipped
    compression: str | None = None
    format_id: str | None = None
    config_kind: str | None = None
    detail: str | None = None
    loc: MemberLoc | None = None
    disk: tuple[int, int] | None = None  # (size, mtime in ns) of the file on disk when found
    issue: str | None = None  # what the responder must be told about this input (recorded as an issue)
    reading: Reading = field(default=Reading(), compare=False)

    @property
    def display(self) -> str:
        return f"{self.rel}!{self.member}" if self.member else self.rel

    @property
    def name(self) -> str:
        if self.loc is not None:
            return PurePosixPath(self.loc.name).name
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


# -- opening: regular files only, byte ranges only ----------------------------------------------
_OPEN_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
               | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))


def file_type(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return f"a file of type {stat.S_IFMT(mode):o}"


def _open_regular(path: Path) -> BinaryIO:
    """``path`` opened for reading, only if it is a regular file.

    The type is checked before opening (``lstat``: a link is not followed, a FIFO is never opened,
    a device never read), and again on the open descriptor, in case the name was replaced in
    between; ``O_NOFOLLOW`` and ``O_NONBLOCK`` keep that one open from following a link or
    waiting for a FIFO's writer."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode):
        raise ReadProblem(f"{path} is {file_type(st.st_mode)}, not a regular file: not opened")
    fd = os.open(path, _OPEN_FLAGS)
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode) or (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino):
            raise ReadProblem(f"{path} was replaced by {file_type(fst.st_mode)} while it was opened: "
                              "not a regular file, not read")
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


class _Range(io.RawIOBase):
    """``length`` bytes from ``start``, read with ``read_at(offset, n)``: never more (a file that
    grows is read as it was when found), and fewer only with a ``ReadProblem`` saying why."""

    def __init__(self, read_at: Callable[[int, int], bytes], start: int, length: int, short: str):
        self.read_at = read_at
        self.start = start
        self.length = length
        self.short = short
        self.pos = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        left = self.length - self.pos
        if left <= 0 or n == 0:
            return b""
        want = left if n is None or n < 0 else min(n, left)
        data = self.read_at(self.start + self.pos, want)
        if not data:
            raise ReadProblem(f"{self.short}: {self.pos} of {self.length} bytes", self.pos)
        self.pos += len(data)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def _pread(fd: int) -> Callable[[int, int], bytes]:
    return lambda offset, n: os.pread(fd, n, offset)


def _sequential(fh: BinaryIO) -> Callable[[int, int], bytes]:
    return lambda _offset, n: fh.read(n)


# -- decompression ------------------------------------------------------------------------------
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
    "deflate": lambda: zlib.decompressobj(wbits=-15),  # a zip member
}


def _mib(n: float) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 and n % (1 << 30) == 0 else f"{n / (1 << 20):g} MiB"


class DecompressingStream(io.RawIOBase):
    """gzip/bzip2/xz (or a zip member's deflate) decompression that hands out every byte it could
    recover, within ``limits``.

    The standard library's file wrappers raise at a truncated end and lose the data of that read;
    here the decompressed bytes are delivered first and the truncation is raised afterwards.
    Concatenated members (``cat a.gz b.gz``) are followed (``follow``). The decompressor is fed
    at most ``FEED`` compressed bytes and asked for at most ``OUT`` bytes at a time, so memory is
    bounded whatever the ratio; past ``limits.ratio_after`` bytes of output, more than
    ``limits.max_ratio`` bytes out per compressed byte consumed stops the stream, and so does
    ``limits.max_size``: the bytes before are delivered, then a ``ReadProblem`` at that offset says
    "decompression stopped at N bytes: … limit …, the rest of this <unit> is not read".
    """

    RAW_CHUNK = 1 << 20  # compressed bytes read at a time
    FEED = 64 << 10  # compressed bytes given to the decompressor at a time
    OUT = 1 << 20  # most decompressed bytes one step may produce

    def __init__(self, raw: BinaryIO, compression: str, limits: DecompressionLimits | None = None, *,
                 unit: str = "file", follow: bool = True, new_decompressor: Callable | None = None,
                 expected_size: int | None = None):
        self.raw = raw
        self.compression = compression
        self.limits = limits or DecompressionLimits()
        self.unit = unit
        self.follow = follow
        self.expected_size = expected_size  # a zip member without an end marker ends at its size
        self._new = new_decompressor or _NEW_DECOMPRESSOR[compression]
        self._zlib = new_decompressor is None and compression in ("gz", "deflate")
        self.dec = self._new()
        self.pending = b""
        self.pos = 0
        self.raw_done = False
        self.raw_problem: str | None = None
        self.ended = False  # the current compressed stream reached its end marker
        self.buf = bytearray()
        self.done = False
        self.problem: str | None = None
        self.delivered = 0
        self.produced = 0
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def _has_input(self) -> bool:
        if self.pos < len(self.pending):
            return True
        if self.raw_done:
            return False
        try:
            chunk = self.raw.read(self.RAW_CHUNK)
        except ReadProblem as exc:
            chunk, self.raw_problem = b"", str(exc)
        if not chunk:
            self.raw_done = True
            return False
        self.pending, self.pos = chunk, 0
        return True

    def _fail(self, why: str) -> None:
        self.problem = f"truncated or corrupt after {self.produced} bytes: {why}"
        self.done = True

    def _step(self) -> bytes:
        if self.ended:
            if not self.follow or not self._has_input():
                self.done = True
                return b""
            self.dec, self.ended = self._new(), False  # another stream follows (concatenated)
        dec = self.dec
        if not self._zlib and not dec.needs_input:
            data = b""  # the decompressor holds input or output still: drain it first
        elif self._has_input():
            data = self.pending[self.pos:self.pos + self.FEED]
        elif self._zlib:
            data = b""  # no more input: what zlib still holds comes out, else the stream is cut short
        else:
            self._truncated()
            return b""
        try:
            out = dec.decompress(data, self.OUT)
        except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError) as exc:
            self._fail(f"{self.compression} data corrupt: {exc}")
            return b""
        if data:
            used = len(data) - (len(dec.unconsumed_tail) if self._zlib and not dec.eof else 0)
            self.pos += used
            self.consumed += used
        if dec.eof:
            # input given but not used (the start of a concatenated stream) goes back in front
            left = dec.unused_data
            if left:
                self.pending, self.pos = left + self.pending[self.pos:], 0
                self.consumed -= len(left)
            self.ended = True
        elif not data and not out and self._zlib:
            self._truncated()
        return out

    def _truncated(self) -> None:
        if self.expected_size is not None and self.produced >= self.expected_size and not self.raw_problem:
            self.done = True  # all the content, without an end marker (a zip's LZMA may omit it)
            return
        self._fail(self.raw_problem or f"{self.compression} stream truncated (no end-of-stream marker)")

    def _check_limits(self) -> None:
        lim = self.limits
        if self.produced > lim.max_size:
            del self.buf[len(self.buf) - (self.produced - lim.max_size):]
            self.produced = lim.max_size
            why = f"size limit ({_mib(lim.max_size)} decompressed)"
        elif self.produced > lim.ratio_after and self.produced > lim.max_ratio * max(self.consumed, 1):
            why = (f"ratio limit ({lim.max_ratio:g}:1 past {_mib(lim.ratio_after)} of output; "
                   f"{self.consumed} compressed bytes gave {self.produced})")
        else:
            return
        self.problem = (f"decompression stopped at {self.produced} bytes: {why}, "
                        f"the rest of this {self.unit} is not read")
        self.done = True

    def _fill(self, want: int) -> None:
        while len(self.buf) < want and not self.done:
            out = self._step()
            if out:
                self.produced += len(out)
                self.buf += out
                self._check_limits()

    def read(self, n: int = -1) -> bytes:
        if n == 0:
            return b""
        want = n if n is not None and n >= 0 else 1 << 62
        self._fill(want)
        out = bytes(self.buf[:want])
        del self.buf[:want]
        self.delivered += len(out)
        if not out and self.problem:
            problem, self.problem = self.problem, None
            raise ReadProblem(problem, self.delivered)
        return out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def _decompressor(raw: BinaryIO, compression: str | None, limits: DecompressionLimits | None = None,
                  unit: str = "file") -> BinaryIO:
    return DecompressingStream(raw, compression, limits, unit=unit) if compression else raw


def sniff_compression(head: bytes) -> str | None:
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return name
    return None


# -- zip members ----------------------------------------------------------------------------------
ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}


class _ZipChecked(io.RawIOBase):
    """A zip member's content, checked against the size and CRC-32 its directory entry gives."""

    def __init__(self, inner: BinaryIO, crc: int, size: int):
        self.inner = inner
        self.crc = crc
        self.size = size
        self.n = 0
        self.running = 0
        self.checked = False

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.inner.read(n)
        if data:
            self.n += len(data)
            self.running = zlib.crc32(data, self.running)
        elif n != 0 and not self.checked:
            self.checked = True
            if self.n != self.size or self.running != self.crc:
                raise ReadProblem(f"member content does not match its zip directory entry ({self.n} bytes read, "
                                  f"{self.size} declared; CRC-32 {self.running:08x}, {self.crc:08x} declared)", self.n)
        return data

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


def _open_zip_member(fd: int, cand: Candidate) -> BinaryIO:
    loc = cand.loc
    header = os.pread(fd, 30, loc.offset)
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise ReadProblem(f"no zip local header at offset {loc.offset}: the archive is damaged")
    name_len, extra_len = struct.unpack("<HH", header[26:30])
    start = loc.offset + 30 + name_len + extra_len
    if loc.end is not None and start + loc.csize > loc.end:
        raise ReadProblem("member data overlaps the next member (overlapping entries, a zip-bomb construction): "
                          "not read")
    raw = _Range(_pread(fd), start, loc.csize, "the zip ends before this member's end")
    limits = cand.reading.limits
    if loc.method == 0:
        inner: BinaryIO = raw
    elif loc.method == 8:
        inner = DecompressingStream(raw, "deflate", limits, unit="member", follow=False)
    elif loc.method == 12:
        inner = DecompressingStream(raw, "bz2", limits, unit="member", follow=False)
    else:  # 14: LZMA, after a 4-byte header (version, properties size) and the properties
        head = raw.read(4)
        if len(head) < 4:
            raise ReadProblem("zip LZMA member too short for its header", 0)
        props = raw.read(struct.unpack("<H", head[2:4])[0])
        try:
            filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)
        except lzma.LZMAError as exc:
            raise ReadProblem(f"zip LZMA member header corrupt: {exc}", 0) from None
        inner = DecompressingStream(raw, "lzma", limits, unit="member", follow=False, expected_size=cand.size,
                                    new_decompressor=lambda: lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt]))
    return _ZipChecked(inner, loc.crc, cand.size)


# -- compressed tars: decompressed once, read at offsets -------------------------------------------
class _Spool:
    """A compressed tar decompressed (within the limits) into an unnamed temporary file: it has
    no name on disk and goes away when closed or when the process ends, whatever way it ends."""

    def __init__(self, fh: BinaryIO, length: int, problem: str | None):
        self.fh = fh
        self.fd = fh.fileno()
        self.length = length
        self.problem = problem


_SPOOLS: OrderedDict[tuple, _Spool] = OrderedDict()
_SPOOL_LOCK = threading.Lock()


def _spool(cand: Candidate) -> _Spool:
    key = (str(cand.path), cand.disk, cand.loc.container, cand.reading.limits)
    with _SPOOL_LOCK:
        sp = _SPOOLS.get(key)
        if sp is not None:
            _SPOOLS.move_to_end(key)
            return sp
        where = cand.reading.spool_dir
        tmp = tempfile.TemporaryFile(dir=where if where and os.path.isdir(where) else None)
        problem = None
        try:
            with _open_regular(cand.path) as fh:
                size = cand.disk[0] if cand.disk else os.fstat(fh.fileno()).st_size
                raw = _Range(_pread(fh.fileno()), 0, size, "the archive is shorter than when it was found")
                stream = DecompressingStream(raw, cand.loc.container, cand.reading.limits, unit="archive")
                try:
                    while chunk := stream.read(HASH_CHUNK):
                        tmp.write(chunk)
                except ReadProblem as exc:
                    problem = str(exc)
            tmp.flush()
        except BaseException:
            tmp.close()
            raise
        sp = _Spool(tmp, tmp.tell(), problem)
        _SPOOLS[key] = sp
        while len(_SPOOLS) > SPOOLS_KEPT:
            _SPOOLS.popitem(last=False)[1].fh.close()
        return sp


def release_spools() -> None:
    """Close this process's spools (their space is freed at once)."""
    with _SPOOL_LOCK:
        while _SPOOLS:
            _SPOOLS.popitem()[1].fh.close()


def _sparse_member(fileobj: BinaryIO, cand: Candidate, short: str) -> BinaryIO:
    """A GNU sparse member, through tarfile (which knows the map of its holes)."""
    fileobj.seek(0)
    tf = tarfile.open(fileobj=fileobj, mode="r:")
    for i, m in enumerate(tf):
        if i == cand.loc.index:
            fh = tf.extractfile(m)
            if fh is None:
                break
            return _Range(_sequential(fh), 0, cand.size, short)
    raise ReadProblem(f"member #{cand.loc.index + 1} not found again in the archive")


# -- reading ------------------------------------------------------------------------------------
@contextmanager
def open_raw(cand: Candidate) -> Iterator[BinaryIO]:
    """The stored bytes of a candidate (a file as found, or an archive member's content)."""
    loc = cand.loc
    if loc is None:
        with _open_regular(cand.path) as fh:
            yield _Range(_pread(fh.fileno()), 0, cand.size,
                         "the file is shorter than when it was found (it changed during acquisition)")
        return
    if loc.archive == "zip":
        with _open_regular(cand.path) as fh:
            yield _open_zip_member(fh.fileno(), cand)
        return
    if loc.container:
        sp = _spool(cand)
        short = f"{sp.problem}; this member is cut there" if sp.problem else _ARCHIVE_TRUNCATED
        with os.fdopen(os.dup(sp.fd), "rb") as fh:  # its own descriptor: the spool may be evicted meanwhile
            yield _sparse_member(fh, cand, short) if loc.sparse else _Range(_pread(fh.fileno()), loc.offset,
                                                                            cand.size, short)
        return
    with _open_regular(cand.path) as fh:
        if loc.sparse:
            yield _sparse_member(fh, cand, _ARCHIVE_TRUNCATED)
        else:
            yield _Range(_pread(fh.fileno()), loc.offset, cand.size, _ARCHIVE_TRUNCATED)


def _unit(cand: Candidate) -> str:
    return "member" if cand.member else "file"


CR_LINE_ENDS = ("lines end in CR alone (classic Mac OS line ends): each CR read as the end of a line, offsets "
                "unchanged")


@contextmanager
def open_text_stream(cand: Candidate) -> Iterator[BinaryIO]:
    """The decompressed content, guarded so corruption surfaces as ``ReadProblem``, as the line
    cutters read it: a stream whose lines end in CR alone is read with LF in their place (its
    ``cr_line_ends`` attribute is then true: the reader records ``CR_LINE_ENDS`` as an issue)."""
    with open_raw(cand) as raw:
        guarded = GuardedStream(_decompressor(raw, cand.compression, cand.reading.limits, _unit(cand)), cand.display)
        stream, cr = with_line_ends(guarded)
        stream.cr_line_ends = cr
        yield stream


def hash_input(cand: Candidate) -> tuple[str, ReadProblem | None]:
    """The sha256 of a candidate's stored bytes — a file's bytes as found (compressed or not: a
    ``.gz`` is hashed as stored, never decompressed), an archive member's content — and the problem
    that ended the reading early, if any. The hash then covers the bytes before the problem, the
    same bytes a parse reads (a zip member is decompressed under the same limits)."""
    h = hashlib.sha256()
    problem = None
    with open_raw(cand) as fh:
        try:
            while block := fh.read(HASH_CHUNK):
                h.update(block)
        except ReadProblem as exc:
            problem = exc
    return h.hexdigest(), problem


def sha256_of(cand: Candidate) -> str:
    return hash_input(cand)[0]


def acquisition_change(cand: Candidate) -> str | None:
    """Whether the file on disk (the archive, for a member) changed since it was found, said for
    the responder: what was hashed and read is what it held then."""
    if cand.disk is None:
        return None
    size, mtime_ns = cand.disk
    what = "the archive holding this member" if cand.member else "the file"
    try:
        st = os.lstat(cand.path)
    except OSError as exc:
        return (f"changed during acquisition: {what} ({size} bytes when found) cannot be examined any more "
                f"({exc.strerror}); what was read is what it held when found")
    if (st.st_size, st.st_mtime_ns) == (size, mtime_ns):
        return None
    when = datetime.fromtimestamp(st.st_mtime_ns / 1e9, timezone.utc).isoformat()
    return (f"changed during acquisition: {what} was {size} bytes when found and {st.st_size} bytes after it was "
            f"read (modified {when}); the {size} bytes found were hashed and read, not what changed")


def _read_head_from(raw: BinaryIO, compression: str | None, limits: DecompressionLimits, limit: int) -> bytes:
    try:
        return GuardedStream(_decompressor(raw, compression, limits), "").read(limit)
    except ReadProblem:
        return b""


def read_head(cand: Candidate, limit: int = SNIFF_BYTES) -> bytes:
    try:
        with open_raw(cand) as raw:
            return _read_head_from(raw, cand.compression, cand.reading.limits, limit)
    except (OSError, ReadProblem):
        return b""


def read_small(cand: Candidate, limit: int = 4 << 20) -> bytes:
    with open_text_stream(cand) as fh:
        return fh.read(limit)


# -- identification ----------------------------------------------------------------------------
def detect_format(head: bytes, specs: list[FormatSpec] | None = None) -> tuple[str | None, float]:
    """Best format for the first lines of a stream, and the share of lines it recognised."""
    specs = specs or log_formats()
    if cr_only(head):  # read as it will be parsed: each CR a line end
        head = head.replace(b"\r", b"\n")
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


def _classify(cand: Candidate, specs: list[FormatSpec], prefix: bytes | None = None) -> Candidate:
    """Decide what a file or member is, from its name where that is decisive, else its content.
    ``prefix``: the first raw bytes when the content is not to be opened again (a member met in
    the one streaming pass over a compressed tar)."""
    name = cand.name
    if name.lower().endswith(IMAGE_SUFFIXES):
        return replace(cand, role="image", kind="salvage")

    def raw_stream():
        return nullcontext(io.BytesIO(prefix)) if prefix is not None else open_raw(cand)

    try:
        with raw_stream() as fh:
            magic = fh.read(8)
    except (OSError, ReadProblem, tarfile.TarError, zipfile.BadZipFile, KeyError) as exc:
        return replace(cand, role="unreadable", detail=str(exc))
    compression = sniff_compression(magic)
    cand = replace(cand, compression=compression)
    base = re.sub(r"\.(?:gz|bz2|xz)$", "", name)
    if base in CONFIG_NAMES or (base.endswith(".conf") and "httpd" in cand.display):
        return replace(cand, role="config", config_kind=CONFIG_NAMES.get(base, "httpd.conf"))
    try:
        with raw_stream() as fh:
            head = _read_head_from(fh, compression, cand.reading.limits, SNIFF_BYTES)
    except (OSError, ReadProblem):
        head = b""
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


# -- skipped entries ----------------------------------------------------------------------------
SKIP_LINK = "skipped: symbolic link, not followed"
SKIP_LINK_MEMBER = "skipped: link member of an archive, not content"
SKIP_SPECIAL_MEMBER = "skipped: device or FIFO member of an archive, no content"
_SKIP_SPECIAL = {stat.S_IFIFO: ("skipped: FIFO, not a regular file, never opened",
                                "opening one blocks until something writes to it"),
                 stat.S_IFSOCK: ("skipped: socket, not a regular file", "a socket holds no stored bytes"),
                 stat.S_IFCHR: ("skipped: device, not a regular file", "a device is not evidence stored in a file"),
                 stat.S_IFBLK: ("skipped: device, not a regular file", "a device is not evidence stored in a file")}


def _link_note(path: Path, root: Path) -> str:
    """Where a link leads, said without following it to read anything (``stat`` opens nothing)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of links"
        return f"nothing there ({exc.strerror})"
    real = Path(os.path.realpath(path))
    inside = real == root or root in real.parents
    return f"{file_type(st.st_mode)} {'inside' if inside else 'outside'} the evidence tree"


def _skipped_entry(cand: Candidate, st: os.stat_result, root: Path) -> Candidate:
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(cand.path)
        except OSError as exc:
            target = f"<unreadable: {exc.strerror}>"
        return replace(cand, role="skipped", issue=SKIP_LINK,
                       detail=f"symbolic link to {target!r} ({_link_note(cand.path, root)}): not followed — a link "
                              "can lead out of the evidence tree, to a device or into a loop")
    kind = file_type(st.st_mode).removeprefix("a ")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind += f" {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    issue, why = _SKIP_SPECIAL.get(stat.S_IFMT(st.st_mode), ("skipped: not a regular file", "not a regular file"))
    return replace(cand, role="skipped", issue=issue, detail=f"{kind}: not read — {why}")


# -- archives -----------------------------------------------------------------------------------
def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "\x00" not in name


def is_archive_name(name: str) -> bool:
    n = name.lower()
    return n.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip"))


def member_refs(names: list[str]) -> list[str]:
    """A unique, readable reference for each member: its name, and for the n-th member of a name
    met before, ``name#n`` (or the next free ``name#k`` when the archive also holds that literally)."""
    taken = set(names)
    seen: dict[str, int] = {}
    used: set[str] = set()
    out = []
    for name in names:
        seen[name] = k = seen.get(name, 0) + 1
        ref = name
        if k > 1:
            ref = f"{name}#{k}"
            while ref in taken or ref in used:
                k += 1
                ref = f"{name}#{k}"
        used.add(ref)
        out.append(ref)
    return out


def _tar_mtime(m: tarfile.TarInfo) -> datetime | None:
    try:
        return datetime.fromtimestamp(m.mtime, timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _tar_member(cand: Candidate, index: int, m: tarfile.TarInfo, container: str | None, prefix: bytes | None,
                specs, format_id, kind) -> Candidate:
    """One tar entry as a candidate (its reference, ``member``, is set once the whole listing is known)."""
    loc = MemberLoc("tar", index, m.name, m.offset_data, container, sparse=m.sparse is not None)
    mcand = replace(cand, member=m.name, size=m.size, mtime=_tar_mtime(m), loc=loc, role="unknown",
                    kind=kind or _kind_from_layout(cand.rel, m.name), detail=None, issue=None)
    if not _safe_member(m.name):
        return replace(mcand, role="unreadable", detail="unsafe member name (absolute or '..')")
    if m.issym():
        return replace(mcand, role="skipped", size=0, issue=SKIP_LINK_MEMBER,
                       detail=f"symbolic link member to {m.linkname!r}: not content, not followed")
    if m.islnk():
        return replace(mcand, role="skipped", size=0, issue=SKIP_LINK_MEMBER,
                       detail=f"hard link member to {m.linkname!r}: not content (the member it names is read "
                              "as itself)")
    if not m.isreg():
        what = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                tarfile.FIFOTYPE: "FIFO"}.get(m.type, f"entry of type {m.type!r}")
        return replace(mcand, role="skipped", size=0, issue=SKIP_SPECIAL_MEMBER,
                       detail=f"{what} member: no content, not read")
    if m.size > MAX_MEMBER_SIZE:
        return replace(mcand, role="unreadable", detail=f"member larger than {MAX_MEMBER_SIZE} bytes")
    return _with_format(_classify(mcand, specs, prefix), format_id)


def _tar_candidates(cand: Candidate, container: str | None, specs, format_id, kind) -> tuple[list, str | None] | str:
    """Every entry of a tar, listed and classified in one pass (a compressed tar is streamed: each
    member is classified from its first bytes as the stream passes, nothing is kept of it), and why
    the listing ended early; or "not an archive"."""
    names: list[str] = []
    out: list[Candidate] = []
    problem = None
    with _open_regular(cand.path) as fh:
        size = cand.disk[0] if cand.disk else os.fstat(fh.fileno()).st_size
        try:
            if container:
                raw = _Range(_pread(fh.fileno()), 0, size, "the archive is shorter than when it was found")
                stream = GuardedStream(DecompressingStream(raw, container, cand.reading.limits, unit="archive"),
                                       cand.display)
                tf = tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20)
            else:
                tf = tarfile.open(fileobj=fh, mode="r:")
        except (tarfile.TarError, ReadProblem, OSError, EOFError):
            return "not an archive"
        while True:
            if len(names) >= MAX_MEMBERS:
                problem = f"more than {MAX_MEMBERS} members: the rest are not listed"
                break
            try:
                m = tf.next()
            except (tarfile.TarError, ReadProblem, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                problem = str(exc)
                break
            if m is None:
                break
            index = len(names)
            names.append(m.name)
            if m.isdir():
                continue
            prefix = None
            if container and m.isreg() and _safe_member(m.name):
                try:
                    ex = tf.extractfile(m)
                    prefix = ex.read(min(m.size, PREFIX_BYTES)) if ex is not None else b""
                except (tarfile.TarError, ReadProblem, OSError, EOFError) as exc:
                    prefix, problem = b"", str(exc)
            out.append(_tar_member(cand, index, m, container, prefix, specs, format_id, kind))
            if problem:
                break
    refs = member_refs(names)
    return [replace(c, member=refs[c.loc.index]) for c in out], problem


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _zip_candidates(cand: Candidate, fh: BinaryIO, specs, format_id, kind) -> tuple[list, str | None] | str:
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
        directory = zf.start_dir
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, struct.error) as exc:
        return f"archive unreadable: {exc}"
    problem = None
    if len(infos) > MAX_MEMBERS:
        infos, problem = infos[:MAX_MEMBERS], f"more than {MAX_MEMBERS} members: the rest are not listed"
    starts = sorted({i.header_offset for i in infos} | {directory})
    next_start = {s: starts[k + 1] if k + 1 < len(starts) else None for k, s in enumerate(starts)}
    refs = member_refs([i.filename for i in infos])
    out = []
    for index, (info, ref) in enumerate(zip(infos, refs)):
        if info.is_dir():
            continue
        loc = MemberLoc("zip", index, info.filename, info.header_offset, method=info.compress_type,
                        csize=info.compress_size, crc=info.CRC, end=next_start.get(info.header_offset))
        mcand = replace(cand, member=ref, size=info.file_size, loc=loc, role="unknown", detail=None, issue=None,
                        mtime=_zip_mtime(info), kind=kind or _kind_from_layout(cand.rel, ref))
        if not _safe_member(info.filename):
            out.append(replace(mcand, role="unreadable", detail="unsafe member name (absolute or '..')"))
        elif info.flag_bits & 0x1:
            out.append(replace(mcand, role="unreadable", detail="encrypted member: not readable without its password"))
        elif info.compress_type not in ZIP_METHODS:
            out.append(replace(mcand, role="unreadable",
                               detail=f"zip compression method {info.compress_type} not supported"))
        elif _zip_is_link(info):
            try:
                with open_raw(mcand) as link:
                    target = link.read(4096).decode("utf-8", "backslashreplace")
            except (OSError, ReadProblem) as exc:
                target = f"<unreadable: {exc}>"
            out.append(replace(mcand, role="skipped", issue=SKIP_LINK_MEMBER,
                               detail=f"symbolic link member to {target!r}: not content, not followed"))
        elif info.file_size > MAX_MEMBER_SIZE:
            out.append(replace(mcand, role="unreadable", detail=f"member larger than {MAX_MEMBER_SIZE} bytes"))
        else:
            out.append(_with_format(_classify(mcand, specs), format_id))
    return out, problem


def _zip_mtime(info: zipfile.ZipInfo) -> datetime | None:
    try:
        return datetime(*info.date_time, tzinfo=timezone.utc)
    except (ValueError, TypeError):
        return None


def _archive_candidates(cand: Candidate, specs, format_id, kind) -> tuple[list, str | None] | str:
    """The members of a tar or zip archive as candidates (in archive order) and why the listing
    ended early, or the reason it cannot be listed ("not an archive": read it as a file)."""
    try:
        with _open_regular(cand.path) as fh:
            if zipfile.is_zipfile(fh):
                return _zip_candidates(cand, fh, specs, format_id, kind)
            magic = os.pread(fh.fileno(), 8, 0)
        if not is_archive_name(cand.path.name):
            return "not an archive"
        return _tar_candidates(cand, sniff_compression(magic), specs, format_id, kind)
    except (OSError, ReadProblem) as exc:
        return f"archive unreadable: {exc}"


# -- discovery ----------------------------------------------------------------------------------
def _given(given: Path) -> tuple[Path, bool]:
    """What a path given directly stands for: (the path to read, whether it is a single file).

    A directory is walked and a regular file read. A symbolic link given directly is what the user
    named: it is followed when it leads to a regular file or a directory, and what it leads to is
    read as if it had been given (its real path is recorded). Anything else — a FIFO, a socket, a
    device, a link to one of them, a link that leads nowhere or into a loop — is a ``UsageError``:
    it is never opened (opening a FIFO blocks until a writer comes; a device can be endless)."""
    try:
        st = os.lstat(given)
    except OSError as exc:
        raise UsageError(f"evidence path cannot be examined: {given}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(given)
        except OSError as exc:
            why = "a loop of links" if exc.errno == errno.ELOOP else exc.strerror
            raise UsageError(f"evidence path {given} is a symbolic link that leads nowhere ({why})") from None
        given = Path(os.path.realpath(given))
    if stat.S_ISDIR(st.st_mode):
        return given, False
    if stat.S_ISREG(st.st_mode):
        return given, True
    raise UsageError(f"evidence path {given} is {file_type(st.st_mode)}, not a regular file or a directory: "
                     "not read (it is never opened)")


def _walk(root: Path) -> list[tuple[Path, OSError | None]]:
    """Every entry under ``root`` that is not a directory walked, and each directory that could not
    be listed (with why), sorted; links are never followed."""
    out: list[tuple[Path, OSError | None]] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as exc:
            out.append((d, exc))
            continue
        for e in entries:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(Path(e.path))
            else:
                out.append((Path(e.path), None))
    out.sort(key=lambda t: t[0])
    return out


def discover(paths: list[Path], *, host: str | None = None, kind: str | None = None,
             format_id: str | None = None, host_for_path=None,
             specs: list[FormatSpec] | None = None, reading: Reading | None = None) -> list[Candidate]:
    """Everything under ``paths``, classified, in a deterministic order.

    Every entry met is a candidate: a regular file (or archive member) to read, or a ``skipped``
    one (a link, FIFO, socket or device, never opened) or an ``unreadable`` one, each with why.
    See ``_given`` for paths given directly. ``reading``: decompression limits and spool place."""
    specs = specs or log_formats()
    reading = reading or Reading()
    out: list[Candidate] = []
    for given in paths:
        root, single = _given(Path(given))
        base = root.parent if single else root
        for f, walk_error in ([(root, None)] if single else _walk(root)):
            rel = PurePosixPath(f.relative_to(base).as_posix())
            h = host or (host_for_path(str(rel)) if host_for_path else None) or _host_from_layout(root, rel)
            blank = Candidate(f, str(rel), None, 0, None, h, kind or _kind_from_layout(str(rel), None), "unknown",
                              reading=reading)
            if walk_error is not None:
                out.append(replace(blank, role="unreadable",
                                   detail=f"directory cannot be listed ({walk_error.strerror}): "
                                          "what it holds is not read"))
                continue
            try:
                st = f.lstat()
            except OSError as exc:
                out.append(replace(blank, role="unreadable", detail=exc.strerror))
                continue
            cand = replace(blank, size=st.st_size, mtime=_mtime(st), disk=(st.st_size, st.st_mtime_ns))
            if not stat.S_ISREG(st.st_mode):
                out.append(_skipped_entry(cand, st, root))
                continue
            if not os.access(f, os.R_OK):
                out.append(replace(cand, role="unreadable", detail="permission denied"))
                continue
            listed = _archive_candidates(cand, specs, format_id, kind)
            if isinstance(listed, str):
                if listed != "not an archive":
                    out.append(replace(cand, role="unreadable", detail=listed))
                    continue
            else:
                members, problem = listed
                if problem:
                    issue = f"archive read in part: {problem}; the members after the last listed are not read"
                    out.append(replace(cand, role="archive", issue=issue,
                                       detail=f"archive: read member by member; {issue}"))
                else:
                    out.append(replace(cand, role="archive", detail="archive: read member by member"))
                out.extend(members)
                continue
            out.append(_with_format(_classify(cand, specs), format_id))
    return out


def _with_format(cand: Candidate, format_id: str | None) -> Candidate:
    """A format forced by the user applies to every file that is not a config, archive or image."""
    if format_id and cand.role in ("log", "unknown"):
        return replace(cand, role="log", format_id=format_id, detail=f"format {format_id} given by the user")
    return cand


def stream_lines(cand: Candidate, on_cr_line_ends: Callable[[], None] | None = None):
    """Lines of a candidate's content; a ``ReadProblem`` ends the iteration with the problem raised.
    ``on_cr_line_ends`` is called first when the lines end in CR alone (see ``open_text_stream``)."""
    with open_text_stream(cand) as fh:
        if fh.cr_line_ends and on_cr_line_ends is not None:
            on_cr_line_ends()
        yield from iter_lines(fh)
