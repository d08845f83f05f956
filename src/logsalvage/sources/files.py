"""Opening evidence: regular files only (never a link, FIFO, socket or device), read as byte
ranges bounded to the size found."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path
from typing import BinaryIO, Callable

from logsalvage.sources.model import ReadProblem

HASH_CHUNK = 8 << 20  # bytes read at a time when a whole stream is read through (hashing, spooling)

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


class _Reader(io.RawIOBase):
    """A read-only raw stream whose ``read(n)`` does the work (``readinto`` reads through it)."""

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class _Range(_Reader):
    """``length`` bytes from ``start``, read with ``read_at(offset, n)``: never more (a file that
    grows is read as it was when found), and fewer only with a ``ReadProblem`` saying why."""

    def __init__(self, read_at: Callable[[int, int], bytes], start: int, length: int, short: str):
        self.read_at = read_at
        self.start = start
        self.length = length
        self.short = short
        self.pos = 0

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


def _pread(fd: int) -> Callable[[int, int], bytes]:
    return lambda offset, n: os.pread(fd, n, offset)


def _sequential(fh: BinaryIO) -> Callable[[int, int], bytes]:
    return lambda _offset, n: fh.read(n)
