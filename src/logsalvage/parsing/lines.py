"""Splitting a byte stream into lines with bounded memory.

Yields every byte range of the input exactly once: ordinary lines, and over-long lines reported
by offset and length without ever being held in memory whole.
"""

from __future__ import annotations

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
