"""Splitting a byte stream into lines with bounded memory.

Yields every byte range of the input exactly once: ordinary lines, and over-long lines reported
by offset and length without ever being held in memory whole.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Iterator

CHUNK_SIZE = 8 << 20
MAX_LINE = 1 << 20


@dataclass(frozen=True, slots=True)
class Line:
    line_no: int  # 1-based
    offset: int  # byte offset of the first byte
    data: bytes  # without the line end; empty for an over-long line
    length: int  # bytes including the line end
    too_long: bool = False
    no_newline: bool = False  # last line of the stream, not terminated
    spans: tuple[tuple[int, int], ...] | None = None  # (offset, length) pieces of a record rejoined from several places


def iter_lines(stream: BinaryIO, *, chunk_size: int = CHUNK_SIZE, max_line: int = MAX_LINE) -> Iterator[Line]:
    line_no = 0
    offset = 0  # offset of the start of ``pending``
    pending = b""
    skipping = False  # inside an over-long line: counting its bytes, not keeping them
    skip_start = skip_len = 0
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            break
        if skipping:
            nl = chunk.find(b"\n")
            if nl < 0:
                skip_len += len(chunk)
                continue
            skip_len += nl + 1
            line_no += 1
            yield Line(line_no, skip_start, b"", skip_len, too_long=True)
            skipping = False
            offset = skip_start + skip_len
            chunk = chunk[nl + 1:]
        buf = pending + chunk if pending else chunk
        parts = buf.split(b"\n")
        pending = parts.pop()
        for part in parts:
            line_no += 1
            n = len(part) + 1
            if n > max_line:
                yield Line(line_no, offset, b"", n, too_long=True)
            else:
                yield Line(line_no, offset, part, n)
            offset += n
        if len(pending) > max_line:
            skipping, skip_start, skip_len, pending = True, offset, len(pending), b""
    if skipping:
        line_no += 1
        yield Line(line_no, skip_start, b"", skip_len, too_long=True, no_newline=True)
    elif pending:
        line_no += 1
        yield Line(line_no, offset, pending, len(pending), no_newline=True)


CR_SNIFF = 64 << 10


def cr_only(head: bytes) -> bool:
    """Whether a stream beginning with ``head`` ends its lines with CR alone (classic Mac OS): no LF
    in its first block, and CRs in it. (A stray CR inside a line of an LF file stays in the line:
    splitting there would let text in a record forge a record of its own.)"""
    return b"\n" not in head and head.count(b"\r") >= 2


def with_line_ends(stream: BinaryIO) -> tuple[BinaryIO, bool]:
    """``stream`` as the line cutters should read it, and whether its lines end in CR alone: then
    it is read with LF in place of every CR — the same bytes at the same offsets otherwise, so the
    lines are cut where their writer ended them and keep their provenance."""
    head = stream.read(CR_SNIFF)
    cr = cr_only(head)
    return _Reread(head, stream, cr), cr


class _Reread(io.RawIOBase):
    """The bytes already read (``head``), then the rest of the stream; CRs as LFs if ``cr_as_lf``."""

    _TABLE = bytes.maketrans(b"\r", b"\n")

    def __init__(self, head: bytes, rest: BinaryIO, cr_as_lf: bool):
        self._head, self._rest, self._cr_as_lf = head, rest, cr_as_lf

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            out = self._rest.read(n)
        elif n is None or n < 0:
            out, self._head = self._head + self._rest.read(), b""
        elif n >= len(self._head):
            out, self._head = self._head, b""
        else:
            out, self._head = self._head[:n], self._head[n:]
        return out.translate(self._TABLE) if self._cr_as_lf else out

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)
