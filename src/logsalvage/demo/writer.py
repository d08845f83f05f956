"""Deterministic evidence files: fixed gzip headers, fixed tar metadata, explicit mtimes.

Every file written here is registered with its size and sha256, so truth.json can list them.
Nothing reads the clock: each mtime comes from the scenario.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path


def gzip_bytes(data: bytes, name: str = "", level: int = 6) -> bytes:
    """gzip with mtime 0 and a fixed (possibly empty) file name, as logrotate's pipe produces."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buf, mtime=0, compresslevel=level) as gz:
        gz.write(data)
    return buf.getvalue()


def tar_gz_bytes(members: list[tuple[str, bytes, int]], name: str) -> bytes:
    """A GNU tar of (path, bytes, mtime) members owned by root, gzip'ed deterministically."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, data, mtime in members:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o600
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return gzip_bytes(raw.getvalue(), name=name)


class EvidenceWriter:
    """Writes files under ``root`` and remembers (size, sha256, mtime) for each."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.files: dict[str, dict] = {}

    def path(self, rel: str) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, rel: str, data: bytes, mtime: int, **truth) -> dict:
        p = self.path(rel)
        with open(p, "wb") as f:
            f.write(data)
        os.utime(p, (mtime, mtime))
        entry = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "mtime": mtime}
        entry.update(truth)
        self.files[rel] = entry
        return entry

    def register(self, rel: str, mtime: int, **truth) -> dict:
        """Record a file written elsewhere (the image): hash it, sparse-aware."""
        p = self.root / rel
        os.utime(p, (mtime, mtime))
        size, digest = sha256_sparse(p)
        entry = {"size": size, "sha256": digest, "mtime": mtime}
        entry.update(truth)
        self.files[rel] = entry
        return entry

    def settle_directories(self, mtime: int) -> None:
        """Give every directory the same mtime (the acquisition), deepest first."""
        dirs = sorted((p for p in self.root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in dirs + [self.root]:
            os.utime(d, (mtime, mtime))


_ZEROS = bytes(1 << 20)


def sha256_sparse(path: Path) -> tuple[int, str]:
    """sha256 of a file, feeding holes from memory instead of reading them."""
    h = hashlib.sha256()
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        fd = f.fileno()
        pos = 0
        while pos < size:
            try:
                data_at = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:      # no data after pos (or SEEK_DATA unsupported: read it all)
                data_at = size if hasattr(os, "SEEK_DATA") else pos
            while pos < data_at:
                n = min(len(_ZEROS), data_at - pos)
                h.update(_ZEROS[:n] if n < len(_ZEROS) else _ZEROS)
                pos += n
            if pos >= size:
                break
            try:
                hole_at = os.lseek(fd, pos, os.SEEK_HOLE)
            except OSError:
                hole_at = size
            f.seek(pos)
            while pos < hole_at:
                chunk = f.read(min(16 << 20, hole_at - pos))
                if not chunk:
                    break
                h.update(chunk)
                pos += len(chunk)
    return size, h.hexdigest()
