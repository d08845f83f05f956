"""Decompression: gzip, bzip2 and xz recognised by magic bytes, every recoverable byte delivered,
memory bounded and output stopped past the case's ratio and size limits (``DecompressionLimits``)."""

from __future__ import annotations

import bz2
import lzma
import tarfile
import zipfile
import zlib
from typing import BinaryIO, Callable

from logsalvage.config import DecompressionLimits
from logsalvage.sources.files import _Reader
from logsalvage.sources.model import ReadProblem

MAGIC = {b"\x1f\x8b": "gz", b"BZh": "bz2", b"\xfd7zXZ\x00": "xz"}


class GuardedStream(_Reader):
    """A read-only stream that turns decompression errors into ``ReadProblem`` with the offset reached."""

    def __init__(self, inner: BinaryIO, what: str):
        self.inner = inner
        self.what = what
        self.delivered = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self.inner.read(n)
        except (EOFError, OSError, zlib.error, lzma.LZMAError, tarfile.TarError, zipfile.BadZipFile) as exc:
            raise ReadProblem(f"truncated or corrupt after {self.delivered} bytes: {exc}", self.delivered) from None
        self.delivered += len(data)
        return data


_NEW_DECOMPRESSOR = {
    "gz": lambda: zlib.decompressobj(wbits=31),
    "bz2": bz2.BZ2Decompressor,
    "xz": lambda: lzma.LZMADecompressor(format=lzma.FORMAT_AUTO),
    "deflate": lambda: zlib.decompressobj(wbits=-15),  # a zip member
}


def _mib(n: float) -> str:
    return f"{n / (1 << 30):g} GiB" if n >= 1 << 30 and n % (1 << 30) == 0 else f"{n / (1 << 20):g} MiB"


class DecompressingStream(_Reader):
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


def _decompressor(raw: BinaryIO, compression: str | None, limits: DecompressionLimits | None = None,
                  unit: str = "file") -> BinaryIO:
    return DecompressingStream(raw, compression, limits, unit=unit) if compression else raw


def sniff_compression(head: bytes) -> str | None:
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return name
    return None
