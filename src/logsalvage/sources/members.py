"""An archive member's content: a zip member from its local header (decompressed under the limits,
checked against its CRC-32), a compressed tar decompressed once to an unnamed spool file and read
at offsets, a GNU sparse tar member through ``tarfile``."""

from __future__ import annotations

import lzma
import os
import struct
import tarfile
import tempfile
import threading
import zlib
from collections import OrderedDict
from typing import BinaryIO

from logsalvage.sources.compression import DecompressingStream
from logsalvage.sources.files import HASH_CHUNK, _open_regular, _pread, _Range, _Reader, _sequential
from logsalvage.sources.model import Candidate, ReadProblem


# -- zip members ----------------------------------------------------------------------------------
ZIP_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma"}


class _ZipChecked(_Reader):
    """A zip member's content, checked against the size and CRC-32 its directory entry gives."""

    def __init__(self, inner: BinaryIO, crc: int, size: int):
        self.inner = inner
        self.crc = crc
        self.size = size
        self.n = 0
        self.running = 0
        self.checked = False

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


SPOOLS_KEPT = 2  # decompressed compressed tars kept open per process
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
