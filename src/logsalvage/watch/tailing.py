"""What a live log gained since the last round: the bytes after the stored offset, complete lines
only (a partial last line waits for the next round), across rotation and truncation.

A file is known by its device and inode and by the sha256 of its first bytes (up to 4 KiB): the
inode at the path changed means the log was rotated (the old file is finished under its rotated
name when it is still in the same directory, then the new one is read from 0); a file smaller than
the offset, or whose first bytes changed, was truncated (read again from 0). A truncation is how
logrotate's ``copytruncate`` rotates (the file copied to ``access.log.1``, then emptied): when a
file beside it in the same directory begins with the bytes the log began with and reaches past the
offset, the lines the log gained between the last round and the copy are read from it, and the
truncation is that rotation; without such a copy it is said loudly (``watch.log_truncated``).
Watched files are only ever opened for reading; a compressed copy is not looked into.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

HEAD = 4096
# at most this many bytes of one file per round: memory stays bounded after a long pause; the rest
# is read by the next rounds
MAX_ROUND_BYTES = 64 << 20
# a "line" longer than this without an end is passed on as it is (the ingest makes it an issue),
# so a file that never writes a newline cannot stall the watch
MAX_PARTIAL = 1 << 20


@dataclass(frozen=True)
class FileState:
    path: str
    device: int
    inode: int
    offset: int
    size: int
    head_sha256: str
    head_len: int
    host: str | None = None
    format_id: str | None = None


@dataclass(frozen=True)
class Piece:
    """Bytes ``start``..``start+len(data)`` of the file ``origin`` (the watched path, or the name the
    rotated file has now), to be committed as a source of their own."""

    origin: str
    start: int
    data: bytes
    mtime: float


@dataclass
class Tail:
    pieces: list[Piece] = field(default_factory=list)
    state: FileState | None = None
    notes: list[tuple[str, str, str]] = field(default_factory=list)  # (rule, severity, title)


def _head(fh, length: int) -> str:
    fh.seek(0)
    return hashlib.sha256(fh.read(length)).hexdigest()


def _read_range(fh, start: int, end: int, *, final: bool) -> tuple[bytes, int]:
    """Bytes from ``start`` up to the last line end before ``end`` (all of them when ``final``), and
    the offset after them."""
    end = min(end, start + MAX_ROUND_BYTES)
    fh.seek(start)
    data = fh.read(end - start)
    if final:
        return data, start + len(data)
    cut = data.rfind(b"\n") + 1
    if cut == 0 and len(data) >= MAX_PARTIAL:
        cut = len(data)
    return data[:cut], start + cut


def _find_rotated(path: Path, device: int, inode: int) -> Path | None:
    """The old file under its new name (``access.log.1``), looked for in the same directory."""
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return None
    for e in sorted(entries, key=lambda e: e.name):
        try:
            st = e.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_dev == device and st.st_ino == inode:
            return Path(e.path)
    return None


def _finish_rotated(path: Path, old: FileState, tail: Tail) -> None:
    found = _find_rotated(path, old.device, old.inode)
    if found is None:
        tail.notes.append(("watch.rotated_lost", "medium",
                           f"{path} was rotated and its old file is gone from {path.parent}: bytes from offset "
                           f"{old.offset} of the old file were not read"))
        return
    with open(found, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > old.offset:
            # the rotated file is finished: its last line is read even without a line end
            data, _ = _read_range(fh, old.offset, size, final=True)
            if data:
                tail.pieces.append(Piece(str(found), old.offset, data, os.fstat(fh.fileno()).st_mtime))


def _find_copy(path: Path, old: FileState) -> Path | None:
    """A copy of the log as it was before a ``copytruncate`` rotation: a regular file beside it,
    named after it, at least ``old.offset`` bytes long, starting with the log's old first bytes.
    The newest such file when there are several."""
    found: list[tuple[float, str]] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return None
    for e in entries:
        if e.name == path.name or not e.name.startswith(path.name):
            continue
        try:
            st = e.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or st.st_size < max(old.offset, old.head_len):
                continue
            with open(e.path, "rb") as fh:
                if _head(fh, old.head_len) == old.head_sha256:
                    found.append((st.st_mtime, e.path))
        except OSError:
            continue
    return Path(max(found)[1]) if found else None


def _finish_copy(path: Path, old: FileState, tail: Tail) -> bool:
    """The bytes the log gained before a ``copytruncate`` rotation, read from its copy; False when
    no copy is there."""
    copy = _find_copy(path, old)
    if copy is None:
        return False
    with open(copy, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        data, _ = _read_range(fh, old.offset, size, final=True)
        if data:
            tail.pieces.append(Piece(str(copy), old.offset, data, os.fstat(fh.fileno()).st_mtime))
    return True


def read_new(path: Path, old: FileState | None) -> Tail:
    """What ``path`` gained since ``old`` (None: never read), and the state after reading it.
    A path that no longer exists finishes its rotated file, and its state is dropped."""
    tail = Tail()
    try:
        fh = open(path, "rb")
    except FileNotFoundError:
        if old is not None:
            _finish_rotated(path, old, tail)
        return tail
    with fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            tail.state = old
            return tail
        size = st.st_size
        offset = 0
        if old is not None:
            if (old.device, old.inode) != (st.st_dev, st.st_ino):
                _finish_rotated(path, old, tail)
            elif size < old.offset or size < old.head_len or _head(fh, old.head_len) != old.head_sha256:
                if not _finish_copy(path, old, tail):
                    tail.notes.append(("watch.log_truncated", "high",
                                       f"log truncated: {path} is {size} bytes, {old.offset} had been read "
                                       "(read again from its start)"))
            else:
                offset = old.offset
        data, new_offset = _read_range(fh, offset, size, final=False)
        if data:
            tail.pieces.append(Piece(str(path), offset, data, st.st_mtime))
        head_len = min(HEAD, size)
        base = old if old is not None else FileState(str(path), 0, 0, 0, 0, "", 0)
        tail.state = replace(base, device=st.st_dev, inode=st.st_ino, offset=new_offset, size=size,
                             head_sha256=_head(fh, head_len), head_len=head_len)
    return tail
