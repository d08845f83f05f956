"""Reading binary logs: a candidate's decompressed content as bytes (no line-end translation),
files of fixed-size records read past the holes of a sparse file, and the digest of a sparse
lastlog too large to hash byte by byte.

A lastlog's size is set by the largest uid that ever logged in: 1.25 TB for nfsnobody's uid
4294967294, of which a few blocks hold data. Its holes are found with ``SEEK_DATA``/``SEEK_HOLE``
and never read; a file system without them reports the whole file as data (read through, as
before). Compressed files and archive members cannot be seeked: they are read through, within the
decompression limits, their zero blocks skipped at memory speed."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from typing import BinaryIO, Iterator

from logsalvage.sources.compression import GuardedStream, _decompressor
from logsalvage.sources.files import _open_regular
from logsalvage.sources.model import Candidate, ReadProblem
from logsalvage.sources.reading import open_raw

CHUNK_RECORDS = 8192  # records read at a time (3 MiB of utmp, 2.3 MiB of lastlog)
# a file with more than this many bytes of holes is hashed by its non-zero records (``record_digest``):
# a sha256 of every byte of a 1.25 TB lastlog takes ten minutes of zeros
SPARSE_DIGEST_FROM = 1 << 30


def plain(cand: Candidate) -> bool:
    """A regular file read as stored: it can be seeked (holes skipped, handed to journalctl)."""
    return cand.loc is None and cand.compression is None


@contextmanager
def open_content(cand: Candidate) -> Iterator[BinaryIO]:
    """The content of a candidate, decompressed, byte for byte; corruption surfaces as ``ReadProblem``."""
    with open_raw(cand) as raw:
        unit = "member" if cand.member else "file"
        yield GuardedStream(_decompressor(raw, cand.compression, cand.reading.limits, unit), cand.display)


def _extents(fd: int, size: int) -> list[tuple[int, int]]:
    """(start, end) of the data of a file of ``size`` bytes; one extent where holes cannot be found."""
    if not hasattr(os, "SEEK_DATA"):
        return [(0, size)] if size else []
    out = []
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:  # ENXIO: no data after pos
            break
        if start >= size:
            break
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        out.append((start, end))
        pos = end
    return out


def hole_bytes(cand: Candidate) -> int:
    """How many bytes of a plain file are holes (0 for anything else)."""
    if not plain(cand):
        return 0
    with _open_regular(cand.path) as fh:
        return cand.size - sum(e - s for s, e in _extents(fh.fileno(), cand.size))


def record_chunks(cand: Candidate, record: int) -> Iterator[tuple[int, bytes | int]]:
    """The content of a candidate as (offset, bytes) chunks that begin on a ``record``-byte
    boundary, and (offset, length) for holes of a plain file (zeros never stored, never read).
    A read that ends early raises ``ReadProblem`` with the offset reached."""
    if plain(cand):
        yield from _sparse_chunks(cand, record)
        return
    pos = 0
    pending = b""
    problem = None
    with open_content(cand) as fh:
        want = record * CHUNK_RECORDS
        while True:
            try:
                data = fh.read(want - len(pending))
            except ReadProblem as exc:  # what was read before it is handed out first
                problem = exc
                break
            if not data:
                break
            pending += data
            if len(pending) >= want:
                yield pos, pending
                pos += len(pending)
                pending = b""
    if pending:
        yield pos, pending
        pos += len(pending)
    if problem is not None:
        raise ReadProblem(str(problem), pos)


def _sparse_chunks(cand: Candidate, record: int) -> Iterator[tuple[int, bytes | int]]:
    size = cand.size
    with _open_regular(cand.path) as fh:
        fd = fh.fileno()
        pos = 0  # everything before was handed out
        for start, end in _extents(fd, size):
            start = max(pos, start - start % record)
            end = min(size, -(-end // record) * record)
            if start >= end:
                continue
            if start > pos:
                yield pos, start - pos
            while start < end:
                n = min(end - start, record * CHUNK_RECORDS)
                data = os.pread(fd, n, start)
                if len(data) < n:
                    raise ReadProblem(f"the file is shorter than when it was found (it changed during acquisition): "
                                      f"{start + len(data)} of {size} bytes", start + len(data))
                yield start, data
                start += n
            pos = end
        if pos < size:
            yield pos, size - pos


def record_digest(cand: Candidate, record: int) -> str:
    """sha256 of a file's non-zero ``record``-byte records, each preceded by its index (8 bytes,
    little-endian), then of its size (8 bytes): the same for every copy of the same content, however
    its zeros are stored, and computed without reading the holes. (Not what ``sha256sum`` prints:
    the ingest says so on the source.)"""
    h = hashlib.sha256(b"logsalvage non-zero records v1\n")
    zero = bytes(record)
    end = 0
    for offset, data in record_chunks(cand, record):
        if isinstance(data, int):
            end = offset + data
            continue
        end = offset + len(data)
        if data.count(0) == len(data):
            continue
        for pos in range(0, len(data), record):
            rec = data[pos:pos + record]
            if rec != zero[:len(rec)]:
                h.update(((offset + pos) // record).to_bytes(8, "little"))
                h.update(rec)
    h.update(end.to_bytes(8, "little"))
    return h.hexdigest()
