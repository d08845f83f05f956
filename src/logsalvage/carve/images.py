"""Disk images for the salvage stage: the I/O edge that opens evidence images read-only.

Supported: raw (dd) images and block devices, split raw (``disk.001``, ``disk.002``, …) and EWF
(``.E01`` with ``.E02``… siblings, through libewf-python). Partition tables (MBR, GPT) and
filesystem allocation come from The Sleuth Kit through pytsk3; block sizes come from the
filesystem superblock read here (XFS, ext2/3/4), which needs no library at all.

Both libraries are imported only when they are needed, so a raw image never needs them; a
missing pytsk3 is written into ``Image.problems`` and the image is carved whole.

Nothing here writes to the evidence: every file is opened ``O_RDONLY``.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import os
import re
import stat
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Self

from logsalvage.errors import EvidenceError, LogsalvageError, UsageError

DEFAULT_BLOCK_SIZE = 4096
HASH_CHUNK = 8 << 20

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "Allocation",
    "Image",
    "ImageReadError",
    "RawSegment",
    "Region",
    "open_image",
]


class ImageReadError(LogsalvageError):
    """A byte range of the image that could not be read (an I/O error, a missing or truncated
    segment). The caller records it as an issue and carves the rest."""

    def __init__(self, offset: int, length: int, reason: str):
        self.offset = offset
        self.length = length
        self.reason = reason
        super().__init__(f"cannot read {length} bytes at offset {offset}: {reason}")


@dataclass(frozen=True)
class Region:
    """A byte range ``[start, end)`` of the image to carve, with the block size to assume for it."""

    start: int
    end: int
    label: str
    block_size: int
    block_size_basis: str
    filesystem: str | None = None

    @property
    def size(self) -> int:
        return self.end - self.start


# --- segments: where the bytes come from ---------------------------------------------------

class Segment(Protocol):
    """One contiguous source of image bytes. ``pread`` may raise OSError (the image layer turns
    that into ImageReadError); tests wrap a segment to simulate unreadable sectors."""

    name: str
    size: int

    def pread(self, n: int, offset: int) -> bytes: ...

    def close(self) -> None: ...


class RawSegment:
    """A file (or block device) read with ``os.pread``: no shared file position, so several
    threads may read one image at once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.name = self.path.name
        self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        # lseek works for block devices too, where st_size is 0
        self.size = os.lseek(self._fd, 0, os.SEEK_END)

    def pread(self, n: int, offset: int) -> bytes:
        data = os.pread(self._fd, n, offset)
        if len(data) < n and data:
            parts = [data]
            got = len(data)
            while got < n:
                more = os.pread(self._fd, n - got, offset + got)
                if not more:
                    break
                parts.append(more)
                got += len(more)
            data = b"".join(parts)
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _EwfMedia:
    """The media data of an EWF image, as one segment. libewf handles are not thread-safe."""

    def __init__(self, handle, name: str):
        self._handle = handle
        self._lock = threading.Lock()
        self.name = name
        self.size = handle.get_media_size()

    def pread(self, n: int, offset: int) -> bytes:
        with self._lock:
            return self._handle.read_buffer_at_offset(n, offset)

    def close(self) -> None:
        with self._lock:
            self._handle.close()


# --- the image -------------------------------------------------------------------------------

class Image:
    """An opened evidence image: random access by offset over all its segments."""

    def __init__(self, paths: list[Path], segments: list[Segment], *, kind: str = "raw",
                 problems: list[str] | None = None, stored_hashes: dict[str, str] | None = None,
                 unreadable: list[tuple[int, int, str]] | None = None):
        self.paths = [Path(p) for p in paths]
        self.kind = kind                       # "raw", "split raw", "E01"
        self.problems: list[str] = list(problems or [])
        self.stored_hashes = dict(stored_hashes or {})   # e.g. the MD5 an E01 carries
        self._segments = list(segments)
        self._starts: list[int] = []
        pos = 0
        for seg in self._segments:
            self._starts.append(pos)
            pos += seg.size
        self.size = pos
        # ranges known beforehand to be unreadable (missing/truncated segments): (start, end, reason)
        self._unreadable = sorted(unreadable or [])
        self._layout: list[_Part] | None = None
        self._fs_cache: dict[int, object] = {}
        self._allocations: dict[tuple[int, int], Allocation | None] = {}
        self._tsk_image = None

    def __repr__(self) -> str:
        return f"Image({self.kind}, {[p.name for p in self.paths]}, {self.size} bytes)"

    def __reduce__(self):
        # pickles as "open these paths again" so chunk tasks can be shipped to other processes
        return (open_image, (self.paths,))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for seg in self._segments:
            seg.close()

    def _problem(self, message: str) -> None:
        if message not in self.problems:
            self.problems.append(message)

    # reading

    def read_at(self, offset: int, n: int) -> bytes:
        """``n`` bytes from ``offset``; fewer only where the image ends. Raises ImageReadError
        (with the requested range) if any part of it cannot be read."""
        if offset < 0 or n < 0:
            raise ValueError(f"read_at({offset}, {n}): negative offset or length")
        end = min(offset + n, self.size)
        if offset >= end:
            return b""
        for lo, hi, reason in self._unreadable:
            if lo < end and offset < hi:
                raise ImageReadError(offset, end - offset, reason)
        i = bisect.bisect_right(self._starts, offset) - 1
        pieces = []
        pos = offset
        while pos < end:
            seg, seg_start = self._segments[i], self._starts[i]
            want = min(end, seg_start + seg.size) - pos
            try:
                data = seg.pread(want, pos - seg_start)
            except OSError as e:
                raise ImageReadError(offset, end - offset, f"{seg.name}: {e.strerror or e}") from e
            if len(data) != want:
                raise ImageReadError(offset, end - offset,
                                     f"{seg.name} gave {len(data)} of {want} bytes at {pos - seg_start}"
                                     " (file shortened since it was opened?)")
            pieces.append(data)
            pos += want
            i += 1
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    def read_around_errors(self, offset: int, n: int, granule: int = 4096
                           ) -> tuple[list[tuple[int, bytes]], list[ImageReadError]]:
        """Read what can be read of ``[offset, offset+n)``: a failing range is halved until the
        unreadable parts are pinned down to ``granule`` bytes. Returns the readable pieces as
        ``(offset, data)`` and one ImageReadError per unreadable range, both in offset order."""
        end = min(offset + n, self.size)
        good: list[tuple[int, bytes]] = []
        bad: list[tuple[int, int, str]] = []

        def read(lo: int, hi: int) -> None:
            try:
                good.append((lo, self.read_at(lo, hi - lo)))
                return
            except ImageReadError as e:
                if hi - lo <= granule:
                    bad.append((lo, hi, e.reason))
                    return
            mid = (lo + hi) // 2 // granule * granule
            if mid <= lo:
                mid = lo + granule
            read(lo, mid)
            read(mid, hi)

        pos = offset
        for lo, hi, reason in self._unreadable:     # known gaps: no bisection needed
            if hi <= pos or lo >= end:
                continue
            if lo > pos:
                read(pos, lo)
            bad.append((max(lo, pos), min(hi, end), reason))
            pos = min(hi, end)
        if pos < end:
            read(pos, end)

        merged_good: list[tuple[int, bytes]] = []
        for lo, data in good:
            if merged_good and merged_good[-1][0] + len(merged_good[-1][1]) == lo:
                merged_good[-1] = (merged_good[-1][0], merged_good[-1][1] + data)
            else:
                merged_good.append((lo, data))
        merged_bad: list[list] = []
        for lo, hi, reason in sorted(bad):
            if merged_bad and merged_bad[-1][1] == lo and merged_bad[-1][2] == reason:
                merged_bad[-1][1] = hi
            else:
                merged_bad.append([lo, hi, reason])
        return merged_good, [ImageReadError(lo, hi - lo, r) for lo, hi, r in merged_bad]

    def sha256(self, progress: Callable[[int], object] | None = None, chunk_size: int = HASH_CHUNK) -> str:
        """Streaming sha256 of the image content (the concatenated segments of a split image,
        the media data of an E01). ``progress(n)`` is called with each chunk's byte count.
        An unreadable range raises ImageReadError: an evidence hash is never made up."""
        h = hashlib.sha256()
        for pos in range(0, self.size, chunk_size):
            data = self.read_at(pos, chunk_size)
            h.update(data)
            if progress is not None:
                progress(len(data))
        return h.hexdigest()

    # partitions and filesystems

    def regions(self, block_size: int | None = None) -> list[Region]:
        """The byte ranges to carve, in offset order, covering the whole image: one per
        partition when a partition table is recognised (plus the unpartitioned space between
        them), else the whole image. Each has its block size from its filesystem's superblock,
        else 4096, or ``block_size`` for all of them when the user gives one."""
        if block_size is not None and (not isinstance(block_size, int) or block_size <= 0):
            raise UsageError(f"block size must be a positive number of bytes, not {block_size!r}")
        if self._layout is None:
            self._layout = self._find_layout()
        regions = []
        for part in self._layout:
            if block_size is not None:
                bs, basis = block_size, "given by the user"
            else:
                bs, basis = part.block_size, part.block_size_basis
            regions.append(Region(part.start, part.end, part.label, bs, basis, part.filesystem))
        return regions

    def allocation(self, region: Region) -> Allocation | None:
        """Which bytes of ``region`` belong to live files, for filesystems pytsk3 can read; None
        when that is unknown (no filesystem, one The Sleuth Kit cannot read, no pytsk3)."""
        key = (region.start, region.end)
        if key not in self._allocations:
            self._allocations[key] = self._build_allocation(region)
        return self._allocations[key]

    def _find_layout(self) -> list[_Part]:
        parts = self._partitions()
        if parts is None:
            parts = [_Part(0, self.size, "whole image", is_partition=True)]
        else:
            parts = _with_gaps(parts, self.size)
        for part in parts:
            if part.is_partition:
                self._identify_filesystem(part)
        return parts

    def _partitions(self) -> list[_Part] | None:
        """Partitions from the table, clipped to the image; None when there is no table."""
        tsk = _pytsk3()
        if tsk is None:
            kind = self._sniff_partition_table()
            if kind:
                self._problem(f"the image has a {kind} partition table, but pytsk3 is not installed "
                              "(pip install pytsk3): partitions not separated, the whole image is "
                              "carved with one block size and no allocation status")
            else:
                self._problem("pytsk3 is not installed (pip install pytsk3): partition tables and "
                              "allocation status are not read")
            return None
        at_zero = _sniff_superblock(self, 0)
        if at_zero is not None and at_zero[0] in ("XFS", "ext2", "ext3", "ext4"):
            # a filesystem starting at byte 0 leaves no room for a partition table
            if self._sniff_partition_table():
                self._problem(f"a partition table signature at the start of the image is ignored: "
                              f"the image starts with an {at_zero[0]} filesystem")
            return None
        try:
            # The Sleuth Kit refuses a whole table when one partition starts past the end of the
            # image; shown a very large image (reads past the end give zeros) it lists them all,
            # and they are clipped below with the shortfall recorded
            vs = tsk.Volume_Info(_tsk_adapter_class()(self, size=max(self.size, 1 << 50)))
        except (OSError, RuntimeError):
            return None
        sector = vs.info.block_size or 512
        base = vs.info.offset
        vstype = int(vs.info.vstype)
        table = {int(tsk.TSK_VS_TYPE_DOS): "MBR", int(tsk.TSK_VS_TYPE_GPT): "GPT"}.get(vstype, "partition table")
        parts: list[_Part] = []
        seq = 0
        for p in vs:
            start = base + p.start * sector
            end = start + p.len * sector
            desc = p.desc.decode("utf-8", "replace").strip() if isinstance(p.desc, bytes) else str(p.desc)
            if p.flags & tsk.TSK_VS_PART_FLAG_META and "Extended (" in desc and start >= self.size:
                self._problem(f"the extended partition at byte {start} starts beyond the end of the image "
                              f"({self.size} bytes): its logical partitions cannot be listed")
            if not p.flags & tsk.TSK_VS_PART_FLAG_ALLOC:
                continue
            seq += 1
            if table == "MBR":
                number = p.slot_num + 1 if p.table_num <= 0 else 4 + p.table_num
            elif table == "GPT":
                number = p.slot_num + 1
            else:
                number = seq
            name = f"partition {number}"
            desc = desc or f"{table} partition"
            if start >= self.size:
                self._problem(f"image shorter than its partition table claims ({name} starts at byte "
                              f"{start}, image is {self.size} bytes): {name} is not in the image")
                continue
            if end > self.size:
                self._problem(f"image shorter than its partition table claims ({name} ends at byte {end}, "
                              f"image is {self.size} bytes): {name} carved up to the end of the image")
                end = self.size
            parts.append(_Part(start, end, name, desc=desc, is_partition=True))
        if not parts:
            self._problem(f"the {table} lists no partition inside the image: the whole image is carved")
            return None
        parts.sort(key=lambda q: (q.start, q.end))
        for a, b in itertools.pairwise(parts):
            if b.start < a.end:
                self._problem(f"{a.name} and {b.name} overlap (bytes {b.start}-{min(a.end, b.end)}): "
                              "records there are found in both")
        return parts

    def _sniff_partition_table(self) -> str | None:
        try:
            head = self.read_at(0, 1024)
        except ImageReadError:
            return None
        if head[512:520] == b"EFI PART":
            return "GPT"
        if head[510:512] == b"\x55\xaa" and any(head[446 + 16 * i + 4] for i in range(4)):
            return "MBR"
        return None

    def _identify_filesystem(self, part: _Part) -> None:
        sniffed = _sniff_superblock(self, part.start)
        if sniffed is not None:
            part.filesystem, part.block_size, part.block_size_basis, claimed = sniffed
            if claimed and claimed > part.end - part.start:
                what = "the image" if part.label == "whole image" else part.label
                self._problem(f"{what} is shorter than its {part.filesystem} superblock claims "
                              f"({claimed} bytes, {what} holds {part.end - part.start})")
        elif (tsk := _pytsk3()) is not None:
            fs = self._tsk_fs(part.start)
            if fs is not None:
                part.filesystem = _tsk_fs_name(tsk, int(fs.info.ftype))
                part.block_size = int(fs.info.block_size)
                part.block_size_basis = f"{part.filesystem} (The Sleuth Kit)"
        if part.label != "whole image":
            part.label = f"{part.label} ({part.desc}, {part.filesystem})" if part.filesystem \
                else f"{part.label} ({part.desc})"
        if part.filesystem in ("LUKS", "LVM2 PV"):
            what = ("LUKS-encrypted: its contents cannot be carved without decrypting it first"
                    if part.filesystem == "LUKS" else
                    "an LVM physical volume: its logical volumes are not mapped, it is carved as one "
                    f"byte range with block size {part.block_size}")
            self._problem(f"{part.label}: {what}")

    # The Sleuth Kit

    def _tsk(self):
        if self._tsk_image is None:
            self._tsk_image = _tsk_adapter_class()(self)
        return self._tsk_image

    def _tsk_fs(self, offset: int):
        if offset not in self._fs_cache:
            tsk = _pytsk3()
            try:
                self._fs_cache[offset] = tsk.FS_Info(self._tsk(), offset=offset)
            except (OSError, RuntimeError):
                self._fs_cache[offset] = None
        return self._fs_cache[offset]

    def _build_allocation(self, region: Region) -> Allocation | None:
        if region.filesystem is None:
            return None
        tsk = _pytsk3()
        if tsk is None:
            self._problem("pytsk3 is not installed (pip install pytsk3): allocation status unknown, "
                          "carved records cannot be tagged allocated/unallocated")
            return None
        fs = self._tsk_fs(region.start)
        if fs is None:
            self._problem(f"{region.label}: The Sleuth Kit {tsk.TSK_VERSION_STR} (pytsk3) cannot read "
                          f"{region.filesystem}: allocation status unknown")
            return None
        adapter = self._tsk()
        errors_before = len(adapter.read_errors)
        spans, files, failures = _walk_allocation(tsk, fs, region.start)
        if failures:
            self._problem(f"{region.label}: {failures} files or directories could not be read while "
                          "listing allocated blocks; their blocks count as unallocated")
        if len(adapter.read_errors) > errors_before:
            first = adapter.read_errors[errors_before]
            self._problem(f"{region.label}: {len(adapter.read_errors) - errors_before} unreadable ranges "
                          f"while reading filesystem metadata (first: {first})")
        return Allocation(spans, region=region, files=files)


@dataclass
class _Part:
    start: int
    end: int
    name: str
    desc: str = ""
    is_partition: bool = False
    filesystem: str | None = None
    block_size: int = DEFAULT_BLOCK_SIZE
    block_size_basis: str = "default 4096"
    label: str = ""

    def __post_init__(self):
        self.label = self.label or self.name


def _with_gaps(parts: list[_Part], size: int) -> list[_Part]:
    """Partitions plus the unpartitioned space around them, so every byte is carved once."""
    out: list[_Part] = []
    pos = 0
    for p in parts:
        if p.start > pos:
            out.append(_Part(pos, p.start, "unpartitioned space"))
        out.append(p)
        pos = max(pos, p.end)
    if pos < size:
        out.append(_Part(pos, size, "unpartitioned space"))
    return out


# --- superblocks -------------------------------------------------------------------------------

_EXT4_INCOMPAT = 0x0040 | 0x0080 | 0x0200 | 0x0400   # extents, 64bit, flex_bg, ea_inode
_EXT4_RO_COMPAT = 0x0008 | 0x0020 | 0x0040           # huge_file, dir_nlink, extra_isize


def _sniff_superblock(image: Image, start: int) -> tuple[str, int, str, int] | None:
    """(filesystem, block size, basis, bytes the filesystem claims) from a superblock at ``start``."""
    try:
        head = image.read_at(start, 4096)
    except ImageReadError:
        return None
    if head[:4] == b"XFSB" and len(head) >= 16:
        bs, dblocks = struct.unpack_from(">IQ", head, 4)
        if 512 <= bs <= 65536 and bs & (bs - 1) == 0 and dblocks > 0:
            return "XFS", bs, "XFS superblock", dblocks * bs
    if len(head) >= 2048:
        sb = head[1024:2048]
        if struct.unpack_from("<H", sb, 56)[0] == 0xEF53:
            inodes, blocks_lo, _, _, _, first_data, log_bs = struct.unpack_from("<7I", sb, 0)
            if log_bs <= 6 and inodes > 0 and blocks_lo > 0 and first_data in (0, 1):
                bs = 1024 << log_bs
                compat, incompat, ro_compat = struct.unpack_from("<3I", sb, 0x5C)
                blocks = blocks_lo
                if incompat & 0x80:
                    blocks |= struct.unpack_from("<I", sb, 0x150)[0] << 32
                if incompat & _EXT4_INCOMPAT or ro_compat & _EXT4_RO_COMPAT:
                    name = "ext4"
                elif compat & 0x4:
                    name = "ext3"
                else:
                    name = "ext2"
                return name, bs, f"{name} superblock", blocks * bs
    if head[:6] == b"LUKS\xba\xbe":
        return "LUKS", DEFAULT_BLOCK_SIZE, "default 4096", 0
    if head[512:520] == b"LABELONE" and head[536:544] == b"LVM2 001":
        return "LVM2 PV", DEFAULT_BLOCK_SIZE, "default 4096", 0
    return None


# --- pytsk3 ------------------------------------------------------------------------------------

_TSK_MISSING = object()
_tsk_module = None
_tsk_adapter = None


def _pytsk3():
    """pytsk3, imported on first use; None when it is not installed."""
    global _tsk_module
    if _tsk_module is None:
        try:
            import pytsk3
            _tsk_module = pytsk3
        except ImportError:
            _tsk_module = _TSK_MISSING
    return None if _tsk_module is _TSK_MISSING else _tsk_module


def _tsk_adapter_class():
    global _tsk_adapter
    if _tsk_adapter is None:
        tsk = _pytsk3()

        class ImageForTsk(tsk.Img_Info):
            """Lets The Sleuth Kit read any Image (split raw, E01) through Image.read_at."""

            def __init__(self, image: Image, size: int | None = None):
                self._image = image
                self._size = image.size if size is None else size
                self.read_errors: list[ImageReadError] = []
                super().__init__(url="", type=tsk.TSK_IMG_TYPE_EXTERNAL)

            def close(self):
                pass

            def read(self, offset, size):
                try:
                    data = self._image.read_at(offset, size)
                except ImageReadError as e:
                    self.read_errors.append(e)
                    data = b""
                # past the end (a truncated partition) or unreadable: zeros, as TSK wants full buffers
                return data if len(data) == size else data + bytes(size - len(data))

            def get_size(self):
                return self._size

        _tsk_adapter = ImageForTsk
    return _tsk_adapter


def _tsk_fs_name(tsk, ftype: int) -> str:
    names = [("EXT2", "ext2"), ("EXT3", "ext3"), ("EXT4", "ext4"), ("NTFS", "NTFS"), ("FAT12", "FAT12"),
             ("FAT16", "FAT16"), ("FAT32", "FAT32"), ("EXFAT", "exFAT"), ("HFS", "HFS+"),
             ("ISO9660", "ISO 9660"), ("FFS1", "UFS1"), ("FFS1B", "UFS1"), ("FFS2", "UFS2"),
             ("APFS", "APFS"), ("YAFFS2", "YAFFS2"), ("SWAP", "swap")]
    for attr, name in names:
        value = getattr(tsk, f"TSK_FS_TYPE_{attr}", None)
        if value is not None and int(value) == ftype:
            return name
    return f"filesystem type {ftype:#x}"


def _walk_allocation(tsk, fs, region_start: int) -> tuple[list[tuple[int, int, str]], int, int]:
    """Byte ranges (absolute image offsets) of every live file's data, from its block runs.
    Deleted entries, orphans and the bytes after a file's end in its last block (slack) are
    left out: only live file content counts as allocated."""
    bs = int(fs.info.block_size)
    spans: list[tuple[int, int, str]] = []
    seen_inodes: set[int] = set()
    files = failures = 0
    skip_flags = int(tsk.TSK_FS_ATTR_RUN_FLAG_SPARSE) | int(tsk.TSK_FS_ATTR_RUN_FLAG_FILLER)
    reg, virt = int(tsk.TSK_FS_META_TYPE_REG), int(tsk.TSK_FS_META_TYPE_VIRT)
    dir_type, virt_dir = int(tsk.TSK_FS_META_TYPE_DIR), int(tsk.TSK_FS_META_TYPE_VIRT_DIR)
    unalloc_name, unalloc_meta = int(tsk.TSK_FS_NAME_FLAG_UNALLOC), int(tsk.TSK_FS_META_FLAG_UNALLOC)
    nonres = int(tsk.TSK_FS_ATTR_NONRES)

    def add_runs(f, owner: str) -> None:
        for attr in f:
            if not int(attr.info.flags) & nonres:
                continue                  # resident/inline data lives inside metadata
            size = int(attr.info.size)
            for run in attr:
                if int(run.flags) & skip_flags or run.len <= 0:
                    continue
                file_lo = run.offset * bs
                if file_lo >= size:
                    continue
                length = min(run.len * bs, size - file_lo)
                lo = region_start + run.addr * bs
                spans.append((lo, lo + length, owner))

    try:
        root = fs.open_dir(path="/")
    except (OSError, RuntimeError):
        return spans, 0, 1
    stack = [(root, "/")]
    root_inode = int(fs.info.root_inum)
    seen_dirs = {root_inode}
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(directory)
        except (OSError, RuntimeError):
            failures += 1
            continue
        for f in entries:
            info = f.info
            name = info.name.name
            if name in (b".", b".."):
                continue
            meta = info.meta
            if meta is None or int(info.name.flags) & unalloc_name or int(meta.flags) & unalloc_meta:
                continue
            mtype = int(meta.type)
            path = prefix + name.decode("utf-8", "backslashreplace")
            if mtype in (dir_type,):
                if meta.addr not in seen_dirs:
                    seen_dirs.add(meta.addr)
                    try:
                        stack.append((f.as_directory(), path + "/"))
                    except (OSError, RuntimeError):
                        failures += 1
            elif mtype in (reg, virt):
                if meta.addr in seen_inodes:      # a hard link: its blocks already have an owner
                    continue
                seen_inodes.add(meta.addr)
                files += 1
                try:
                    add_runs(f, path)
                except (OSError, RuntimeError):
                    failures += 1
            # virtual directories ($OrphanFiles) hold deleted files: not allocated
            elif mtype == virt_dir:
                continue
    journal = int(fs.info.journ_inum or 0)
    if journal and journal not in seen_inodes:
        try:
            add_runs(fs.open_meta(inode=journal), "(journal)")
        except (OSError, RuntimeError):
            pass
    return spans, files, failures


# --- allocation ----------------------------------------------------------------------------

class Allocation:
    """Which image bytes hold live file content, and of which file: a sorted list of disjoint
    byte ranges searched with bisect. Offsets are absolute image offsets. Owners are file paths
    ("/var/log/messages"), or "(journal)" for the filesystem journal."""

    def __init__(self, spans: list[tuple[int, int, str]], *, region: Region | None = None, files: int = 0):
        self.region = region
        self.files = files
        merged: list[list] = []
        for lo, hi, owner in sorted(spans):
            if hi <= lo:
                continue
            if merged and lo < merged[-1][1]:          # overlap (corrupt fs): the first owner keeps it
                lo = merged[-1][1]
                if hi <= lo:
                    continue
            if merged and merged[-1][1] == lo and merged[-1][2] == owner:
                merged[-1][1] = hi
            else:
                merged.append([lo, hi, owner])
        self._starts = [m[0] for m in merged]
        self._ends = [m[1] for m in merged]
        self._owners = [m[2] for m in merged]

    def __len__(self) -> int:
        return len(self._starts)

    def __repr__(self) -> str:
        return f"Allocation({self.files} files, {len(self)} extents, {self.allocated_bytes} bytes)"

    @property
    def allocated_bytes(self) -> int:
        return sum(hi - lo for lo, hi in zip(self._starts, self._ends))

    def owner(self, offset: int) -> str | None:
        """The live file whose content holds this byte, or None for unallocated space."""
        i = bisect.bisect_right(self._starts, offset) - 1
        if i >= 0 and offset < self._ends[i]:
            return self._owners[i]
        return None

    def owners(self, offsets) -> list[str | None]:
        """``owner`` of many offsets at once (a sorted search, not one bisect per offset)."""
        import numpy as np

        if not self._starts:
            return [None] * len(offsets)
        offsets = np.asarray(offsets, np.int64)
        i = np.searchsorted(np.asarray(self._starts, np.int64), offsets, side="right") - 1
        ends = np.asarray(self._ends, np.int64)
        inside = (i >= 0) & (offsets < ends[np.maximum(i, 0)])
        return [self._owners[k] if ok else None for k, ok in zip(i.tolist(), inside.tolist())]

    def is_allocated(self, offset: int) -> bool:
        return self.owner(offset) is not None

    def spans(self, start: int, end: int) -> Iterator[tuple[int, int, str | None]]:
        """``[start, end)`` cut into runs of one owner (None = unallocated), in order."""
        pos = start
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while pos < end:
            if i < len(self._starts) and self._ends[i] <= pos:
                i += 1
                continue
            if i < len(self._starts) and self._starts[i] <= pos:
                hi = min(self._ends[i], end)
                yield pos, hi, self._owners[i]
                i += 1
            else:
                hi = min(self._starts[i], end) if i < len(self._starts) else end
                yield pos, hi, None
            pos = hi


# --- opening -----------------------------------------------------------------------------------

_SPLIT = re.compile(r"^(?P<stem>.+)\.(?P<num>\d{3,})$")
_EWF_SUFFIX = re.compile(r"\.(?:[Ee]\d{2}|[Ee][A-Za-z]{2}|[Ee]x\d{2})$")
_EWF1_MAGIC = b"EVF\x09\x0d\x0a\xff\x00"
_EWF2_MAGIC = b"EVF2\x0d\x0a\x81\x00"
_NOT_IMAGES = [
    # (offset, magic, what it is, what to do instead)
    (0, b"\x1f\x8b", "a gzip-compressed file", "decompress it, or give it to ingest if it is a log"),
    (0, b"BZh", "a bzip2-compressed file", "decompress it first"),
    (0, b"\xfd7zXZ\x00", "an xz-compressed file", "decompress it first"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd-compressed file", "decompress it first"),
    (0, b"PK\x03\x04", "a zip archive", "extract it first"),
    (0, b"7z\xbc\xaf\x27\x1c", "a 7-zip archive", "extract it first"),
    (257, b"ustar", "a tar archive", "give it to ingest (which reads tar members), or extract it"),
    (0, b"LVF\x09\x0d\x0a\xff\x00", "an EWF logical evidence file (L01), not a disk image", "export its files"),
    (0, b"QFI\xfb", "a qcow2 virtual disk", "convert it to raw first (qemu-img convert -O raw)"),
    (0, b"KDMV", "a sparse VMDK virtual disk", "convert it to raw first (qemu-img convert -O raw)"),
    (0, b"vhdxfile", "a VHDX virtual disk", "convert it to raw first (qemu-img convert -O raw)"),
    (0, b"AFF10\r\n", "an AFF image", "convert it to raw first (affconvert -r)"),
]


def open_image(paths: list[Path] | Path | str) -> Image:
    """Open an evidence image read-only: a raw image or device, a split raw image (the first
    segment, or all of them in order), or an E01 (its first segment). Raises UsageError when
    the input cannot be an image at all (empty, a directory, a text or compressed file…)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise UsageError("no image given")
    for p in paths:
        _check_path(p)
    first = paths[0]
    head = _read_head(first)
    if head.startswith((_EWF1_MAGIC, _EWF2_MAGIC)):
        return _open_ewf(paths, ewf2=head.startswith(_EWF2_MAGIC))
    for off, magic, what, instead in _NOT_IMAGES:
        if head[off:off + len(magic)] == magic:
            raise UsageError(f"is {what}, not a disk image: {instead}", where=str(first))

    problems: list[str] = []
    if _EWF_SUFFIX.search(first.name):
        problems.append(f"{first.name} is named like an EWF segment but has no EWF signature: read as raw")
    if len(paths) == 1 and not _SPLIT.match(first.name):
        segments_paths, kind = paths, "raw"
    else:
        segments_paths, more = _split_segments(paths)
        problems += more
        kind = "split raw" if len(segments_paths) > 1 else "raw"
    segments = [RawSegment(p) for p in segments_paths]
    image = Image(segments_paths, segments, kind=kind, problems=problems)
    try:
        _reject_non_images(image, first)
        _check_segment_sizes(image, segments)
    except BaseException:
        image.close()
        raise
    return image


def _check_path(p: Path) -> None:
    try:
        st = p.stat()
    except FileNotFoundError:
        raise UsageError("does not exist", where=str(p)) from None
    except OSError as e:
        raise UsageError(f"cannot be opened: {e.strerror or e}", where=str(p)) from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError("is a directory, not a disk image: give the image file "
                         "(for a split image, its first segment)", where=str(p))
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISBLK(st.st_mode)):
        raise UsageError("is neither a file nor a block device", where=str(p))
    if not os.access(p, os.R_OK):
        raise UsageError("is not readable (permission denied)", where=str(p))


def _read_head(p: Path) -> bytes:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError as e:
        raise UsageError(f"cannot be opened: {e.strerror or e}", where=str(p)) from None
    try:
        return os.pread(fd, 4096, 0)
    except OSError as e:
        raise UsageError(f"cannot be read at its start: {e.strerror or e}", where=str(p)) from None
    finally:
        os.close(fd)


def _split_segments(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The segments of a split raw image in order, from its first segment or from all of them."""
    problems: list[str] = []
    matches = [_SPLIT.match(p.name) for p in paths]
    if not all(matches):
        odd = next(p for p, m in zip(paths, matches) if not m)
        raise UsageError(f"several images given, but {odd.name} is not a numbered segment "
                         "(disk.001, disk.002, …) of a split image: carve separate images one at a time",
                         where=str(odd))
    stem, width = matches[0]["stem"], len(matches[0]["num"])
    directory = paths[0].parent
    numbers = [int(m["num"]) for m in matches]
    for p, m in zip(paths, matches):
        if m["stem"] != stem or len(m["num"]) != width or p.parent != directory:
            raise UsageError(f"{p.name} is not a segment of the same split image as {paths[0].name}",
                             where=str(p))

    def name(n: int) -> Path:
        return directory / f"{stem}.{n:0{width}d}"

    # every sibling with the same stem and numbering, to spot gaps and segments left out
    siblings = {}
    try:
        for entry in directory.iterdir():
            m = _SPLIT.match(entry.name)
            if m and m["stem"] == stem and len(m["num"]) == width:
                siblings[int(m["num"])] = entry
    except OSError:
        pass

    if len(paths) > 1:
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            expected = next(numbers[0] + i for i, n in enumerate(numbers) if n != numbers[0] + i)
            raise UsageError(f"split image segments are not contiguous: {name(expected).name} is "
                             f"missing or out of order (given: {', '.join(p.name for p in paths)})",
                             where=str(paths[0]))
        chosen = paths
    else:
        n = numbers[0]
        chosen = [paths[0]]
        while (n + 1) in siblings:
            n += 1
            chosen.append(siblings[n])
    lo, hi = numbers[0], numbers[0] + len(chosen) - 1
    earlier = [k for k in siblings if k < lo]
    if earlier:
        raise UsageError(f"is not the first segment of its split image ({name(min(earlier)).name} "
                         "exists): give the first segment", where=str(paths[0]))
    if lo > 1:
        problems.append(f"split image numbering starts at {chosen[0].name}: earlier segments may be missing, "
                        "so offsets may not be those of the original disk")
    later = sorted(k for k in siblings if k > hi)
    if later:
        if len(paths) > 1 and later[0] == hi + 1:
            problems.append(f"{name(hi + 1).name} exists but was not given: the image read ends with "
                            f"{chosen[-1].name}")
        else:
            problems.append(f"segment {name(hi + 1).name} is missing: {', '.join(siblings[k].name for k in later)} "
                            f"cannot be placed and are not read; the image ends with {chosen[-1].name}")
    return chosen, problems


def _check_segment_sizes(image: Image, segments: list[RawSegment]) -> None:
    if len(segments) < 2:
        return
    first = segments[0].size
    for seg in segments[1:-1]:
        if seg.size < first:
            image._problem(f"segment {seg.name} ({seg.size} bytes) is shorter than {segments[0].name} "
                           f"({first} bytes): if it was truncated, every offset after it is shifted")


def _reject_non_images(image: Image, first: Path) -> None:
    """Empty files and text (a log given as an image) are not images: nothing to carve there."""
    if image.size == 0:
        raise UsageError("is empty (0 bytes): not a disk image", where=str(first))
    window = 65536
    if image.size <= 16 * window:
        positions = [0]
        window = image.size
    else:
        step = (image.size - window) // 15
        positions = [i * step for i in range(16)]
    sampled = textish = 0
    for pos in positions:
        try:
            data = image.read_at(pos, window)
        except ImageReadError:
            return                       # an unreadable image is still an image
        if b"\x00" in data:
            return
        sampled += len(data)
        textish += _text_bytes(data)
    if sampled and textish >= 0.95 * sampled:
        raise UsageError(f"looks like a text file (no NUL byte and {100 * textish // sampled}% text in "
                         f"{len(positions)} samples), not a disk image: give a log file to ingest; "
                         "carve takes raw (dd), split raw or E01 images", where=str(first))


_TEXT = bytes(range(0x20, 0x7F)) + b"\t\n\r\f\x1b"


def _text_bytes(data: bytes) -> int:
    """How many bytes look like text: printable ASCII, whitespace, or part of valid UTF-8."""
    ascii_text = len(data) - len(data.translate(None, _TEXT))
    high = data.translate(None, bytes(range(0x80)))
    if not high:
        return ascii_text
    decoded = data.decode("utf-8", "ignore").encode("utf-8")
    return ascii_text + len(decoded.translate(None, bytes(range(0x80))))


# --- EWF -------------------------------------------------------------------------------------

def _open_ewf(paths: list[Path], *, ewf2: bool) -> Image:
    first = paths[0]
    try:
        import pyewf
    except ImportError:
        raise UsageError("is an EWF (E01) image: reading it needs libewf-python (pip install libewf-python)",
                         where=str(first)) from None
    problems: list[str] = []
    number = struct.unpack_from("<H", _read_head(first), 9)[0] if not ewf2 else 1
    if number != 1:
        raise UsageError(f"is segment {number} of an EWF image: give its first segment (.E01)", where=str(first))
    try:
        found = [Path(p) for p in pyewf.glob(str(first))]
    except (OSError, RuntimeError) as e:
        raise EvidenceError(f"cannot find the segments of this EWF image: {e}", where=str(first)) from None
    if len(paths) > 1:
        extra = [p for p in paths if p.resolve() not in {f.resolve() for f in found}]
        if extra:
            raise UsageError(f"{extra[0].name} is not a segment of the EWF image starting at {first.name}",
                             where=str(extra[0]))
    layout = None if ewf2 else _ewf1_layout(found)
    if ewf2:
        problems.append("EWF2 (Ex01) image: segment completeness is not checked")
    handle = pyewf.handle()
    try:
        handle.open([str(p) for p in found])
    except (OSError, RuntimeError) as e:
        raise EvidenceError(f"libewf cannot open this EWF image: {e}", where=str(first)) from None
    media = _EwfMedia(handle, first.name)
    unreadable: list[tuple[int, int, str]] = []
    if layout is not None and layout.problem:
        problems.append(layout.problem)
        readable = min(media.size, layout.complete_chunks * handle.get_chunk_size())
        if readable < media.size:
            unreadable.append((readable, media.size, layout.problem))
    hashes = {}
    try:
        hashes = {k.upper(): v for k, v in (handle.get_hash_values() or {}).items() if v}
    except (OSError, RuntimeError, AttributeError):
        pass
    return Image(found, [media], kind="E01", problems=problems, stored_hashes=hashes, unreadable=unreadable)


@dataclass
class _EwfLayout:
    first_number: int
    complete_chunks: int          # chunks held by the segments before the first broken/missing one
    problem: str | None


def _ewf1_layout(files: list[Path]) -> _EwfLayout:
    """Walk the section chain of each EWF1 segment: libewf opens a set with a missing or
    truncated segment without complaint and then returns wrong bytes for it, so check here."""
    chunks = 0
    first_number = 0
    for index, path in enumerate(files):
        try:
            with open(path, "rb") as f:
                number, last, table_chunks, broken = _ewf1_segment(f, os.fstat(f.fileno()).st_size)
        except OSError as e:
            return _EwfLayout(first_number, chunks, f"EWF segment {path.name} cannot be read ({e.strerror}): "
                                                    "media data from it on cannot be read")
        if index == 0:
            first_number = number
        elif number != first_number + index:
            return _EwfLayout(first_number, chunks, f"EWF segment {path.name} says it is segment {number}, "
                                                    f"expected {first_number + index}: media data from it on "
                                                    "cannot be read")
        if broken:
            return _EwfLayout(first_number, chunks, f"EWF segment {path.name} is truncated or damaged "
                                                    f"({broken}): media data from it on cannot be read")
        chunks += table_chunks
        if last == "done":
            return _EwfLayout(first_number, chunks, None)
    missing = files[-1].name[:-2] + f"{len(files) + first_number:02d}" if files[-1].name[-2:].isdigit() \
        else "the next segment"
    return _EwfLayout(first_number, chunks, f"EWF segment {missing} is missing (the image continues after "
                                            f"{files[-1].name}): media data after it cannot be read")


def _ewf1_segment(f, size: int) -> tuple[int, str, int, str | None]:
    """(segment number, last section type, chunks in its tables, what is broken or None)."""
    header = f.read(13)
    if len(header) < 13 or header[:8] != _EWF1_MAGIC:
        return 0, "", 0, "no EWF signature"
    number = struct.unpack_from("<H", header, 9)[0]
    off, chunks = 13, 0
    for _ in range(1_000_000):
        f.seek(off)
        desc = f.read(76)
        if len(desc) < 76:
            return number, "", chunks, f"section header at byte {off} runs past the end of the file ({size} bytes)"
        kind = desc[:16].rstrip(b"\0").decode("ascii", "replace")
        nxt, length = struct.unpack_from("<QQ", desc, 16)
        if kind in ("next", "done"):
            return number, kind, chunks, None
        if nxt <= off or nxt > size or off + length > size:
            return number, kind, chunks, (f"section '{kind}' at byte {off} runs past the end of the file "
                                          f"({size} bytes)")
        if kind == "table":
            entries = f.read(4)
            if len(entries) == 4:
                chunks += struct.unpack("<I", entries)[0]
        off = nxt
    return number, "", chunks, "too many sections"
