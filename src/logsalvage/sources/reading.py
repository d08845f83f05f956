"""Reading a candidate: its stored bytes (``open_raw``), its decompressed content and lines
(``open_text_stream``, ``stream_lines``), its hash, and whether it changed while it was acquired."""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import BinaryIO, Callable, Iterator

from logsalvage.config import DecompressionLimits
from logsalvage.parsing.lines import iter_lines, with_line_ends
from logsalvage.sources.compression import GuardedStream, _decompressor
from logsalvage.sources.files import HASH_CHUNK, _open_regular, _pread, _Range
from logsalvage.sources.members import _open_zip_member, _sparse_member, _spool
from logsalvage.sources.model import Candidate, ReadProblem

SNIFF_BYTES = 64 << 10
_ARCHIVE_TRUNCATED = "the archive ends before this member's end (truncated archive)"


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


def stream_lines(cand: Candidate, on_cr_line_ends: Callable[[], None] | None = None):
    """Lines of a candidate's content; a ``ReadProblem`` ends the iteration with the problem raised.
    ``on_cr_line_ends`` is called first when the lines end in CR alone (see ``open_text_stream``)."""
    with open_text_stream(cand) as fh:
        if fh.cr_line_ends and on_cr_line_ends is not None:
            on_cr_line_ends()
        yield from iter_lines(fh)
