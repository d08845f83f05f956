"""The raw image of db01's log partition (``sdb1.dd``): an XFS-looking volume whose free space
still holds the blocks of every weekly messages file, scattered.

Written sparse: the file is truncated to its size and only metadata and planted blocks are
written, so a multi-GiB image costs little disk and time.

Layout rules (what a carver has to cope with):
- block 0 carries an XFS superblock (``XFSB``, block size 4096, dblocks); each allocation group
  starts with a copy of it and AGF/AGI/AGFL sectors; the internal log is a reserved zero area;
- a file is cut into 4 KiB blocks (file offsets multiple of 4096) laid out as extents of 1-64
  blocks at random positions, never adjacent to another used block, so a line crossing an
  extent boundary has its head at the end of one block (no newline) and its tail at the start
  of a block somewhere else;
- the bytes after a file's end in its last block are zeros;
- some planted blocks are overwritten by junk (zeros, binary with NULs, access-log text);
- some files also have an older, shorter copy of their beginning elsewhere (duplicates);
- free-space blocks are zeros, apart from a few junk fragments.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass

from logsalvage.errors import UsageError

BLOCK = 4096
MAX_EXTENT_BLOCKS = 64
AG_COUNT = 4
AG_RESERVED = 8          # superblock copy, AGF/AGI/AGFL and btree roots at each AG start
JUNK_KINDS = ("zeros", "binary", "text")


@dataclass
class Segment:
    """A run of file bytes stored contiguously in the image."""

    file_offset: int
    length: int
    image_offset: int


def _superblock(dblocks: int, agblocks: int, logstart: int, logblocks: int, rng: random.Random) -> bytes:
    uuid = rng.randbytes(16)
    sb = bytearray(512)
    struct.pack_into(">4sIQQQ16sQQQQIIIIIHHHH12sBBBBBBBB", sb, 0,
                     b"XFSB", BLOCK, dblocks, 0, 0, uuid, logstart, 128, 129, 130,
                     1, agblocks, AG_COUNT, 0, logblocks,
                     0xB4A5, 512, 512, 8, b"log\0\0\0\0\0\0\0\0\0",
                     12, 9, 9, 3, max(1, (agblocks - 1).bit_length()), 0, 0, 25)
    struct.pack_into(">QQQQ", sb, 128, 64, 61, max(0, dblocks - logblocks - 4096), 0)
    return bytes(sb)


class ImageWriter:
    def __init__(self, path, size: int, rng: random.Random, *, min_mb_hint: int):
        if size % BLOCK:
            size -= size % BLOCK
        self.path = path
        self.size = size
        self.rng = rng
        self.min_mb_hint = min_mb_hint
        self.nblocks = size // BLOCK
        self.used = bytearray(self.nblocks)
        self.f = open(path, "wb+")
        self.f.truncate(size)
        self.extents: list[dict] = []
        self.duplicate_extents: list[dict] = []
        self.junk_blocks: list[dict] = []
        self._junk_kind = 0
        agblocks = -(-self.nblocks // AG_COUNT)
        logblocks = max(64, min(2560, self.nblocks // 128))
        logstart = agblocks * (AG_COUNT // 2) + AG_RESERVED
        sb = _superblock(self.nblocks, agblocks, logstart, logblocks, rng)
        for ag in range(AG_COUNT):
            b0 = ag * agblocks
            if b0 >= self.nblocks:
                break
            self.used[b0:b0 + AG_RESERVED] = b"\x02" * len(self.used[b0:b0 + AG_RESERVED])
            hdr = bytearray(BLOCK)
            hdr[:512] = sb
            hdr[512:516] = b"XAGF"
            struct.pack_into(">II", hdr, 516, 1, ag)
            hdr[1024:1028] = b"XAGI"
            struct.pack_into(">II", hdr, 1028, 1, ag)
            hdr[1536:1540] = b"XAFL"
            self.f.seek(b0 * BLOCK)
            self.f.write(hdr)
        self.used[logstart:logstart + logblocks] = b"\x02" * len(self.used[logstart:logstart + logblocks])

    def close(self) -> None:
        self.f.close()

    # --- allocation -------------------------------------------------------------------------
    def _too_small(self) -> UsageError:
        return UsageError(f"image_mb={self.size >> 20} is too small for the planted blocks; "
                          f"use at least {max(self.min_mb_hint, (self.size >> 20) * 3 // 2)} MB")

    def allocate(self, n: int) -> list[tuple[int, int]]:
        """Free places for n blocks: (first block, count) pieces, each with a free block on both
        sides. One piece unless the image is too fragmented to hold n contiguously."""
        used, nb = self.used, self.nblocks
        if n + 2 <= nb:
            for _ in range(40):
                s = self.rng.randrange(1, nb - n)
                if used.find(1, s - 1, s + n + 1) == -1 and used.find(2, s - 1, s + n + 1) == -1:
                    used[s:s + n] = b"\x01" * n
                    return [(s, n)]
            gap = bytes(n + 2)
            start = self.rng.randrange(0, nb)
            pos = used.find(gap, start)
            if pos == -1:
                pos = used.find(gap, 0)
            if pos != -1:
                used[pos + 1:pos + 1 + n] = b"\x01" * n
                return [(pos + 1, n)]
        if n == 1:
            raise self._too_small()
        half = n // 2
        return self.allocate(half) + self.allocate(n - half)

    # --- planting ---------------------------------------------------------------------------
    def _write(self, image_offset: int, data: bytes) -> None:
        self.f.seek(image_offset)
        self.f.write(data)

    def place(self, name: str, data: bytes, keep: list[tuple[int, int]], junk_quota: int,
              junk_source, *, max_extent: int = MAX_EXTENT_BLOCKS) -> list[Segment]:
        """Plant the bytes of ``data`` inside the ``keep`` ranges; return the surviving segments.

        ``junk_quota`` planted blocks (chosen at random) are then overwritten by junk.
        ``junk_source(kind, rng)`` returns 4096 bytes of that kind.
        """
        rng = self.rng
        size = len(data)
        nblk = -(-size // BLOCK)
        # which blocks hold kept bytes, and the kept byte ranges clipped per block
        kept_blocks = []
        for b in range(nblk):
            lo, hi = b * BLOCK, min(size, (b + 1) * BLOCK)
            if any(a < hi and lo < z for a, z in keep):
                kept_blocks.append(b)
        # runs of consecutive blocks, cut into extents of 1-64 blocks
        pieces = []   # (first file block, count)
        i = 0
        while i < len(kept_blocks):
            j = i
            while j + 1 < len(kept_blocks) and kept_blocks[j + 1] == kept_blocks[j] + 1:
                j += 1
            b, left = kept_blocks[i], j - i + 1
            while left:
                n = min(left, rng.randint(1, max_extent))
                pieces.append((b, n))
                b += n
                left -= n
            i = j + 1
        segments: list[Segment] = []
        block_image = {}   # file block -> image block (for junk)
        for fb, n in pieces:
            for ib, cnt in self.allocate(n):
                fo = fb * BLOCK
                chunk = bytearray(data[fo:min(size, fo + cnt * BLOCK)])
                # zero what is not kept (the hole's part of an edge block)
                for a, z in _complement(keep, fo, fo + len(chunk)):
                    chunk[a - fo:z - fo] = bytes(z - a)
                self._write(ib * BLOCK, bytes(chunk))
                for k in range(cnt):
                    block_image[fb + k] = ib + k
                for a, z in _intersect(keep, fo, fo + len(chunk)):
                    segments.append(Segment(a, z - a, ib * BLOCK + (a - fo)))
                fb += cnt
        # junk over whole planted blocks
        candidates = [b for b in kept_blocks
                      if any(a <= b * BLOCK and min(size, (b + 1) * BLOCK) <= z for a, z in keep)]
        junked = sorted(rng.sample(candidates, min(junk_quota, len(candidates))))
        for b in junked:
            kind = JUNK_KINDS[self._junk_kind % len(JUNK_KINDS)]
            self._junk_kind += 1
            self._write(block_image[b] * BLOCK, junk_source(kind, rng))
            self.junk_blocks.append({"image_offset": block_image[b] * BLOCK, "kind": kind,
                                     "file": name, "file_offset": b * BLOCK})
            segments = _cut(segments, b * BLOCK, (b + 1) * BLOCK)
        segments.sort(key=lambda s: s.file_offset)
        for s in segments:
            self.extents.append({"image_offset": s.image_offset, "length": s.length,
                                 "file": name, "file_offset": s.file_offset})
        return segments

    def place_copy(self, name: str, data: bytes, length: int, *,
                   max_extent: int = MAX_EXTENT_BLOCKS) -> list[Segment]:
        """An older copy of the first ``length`` bytes of a file (the file when it was shorter)."""
        rng = self.rng
        nblk = -(-length // BLOCK)
        segments = []
        b = 0
        while b < nblk:
            n = min(nblk - b, rng.randint(1, max_extent))
            for ib, cnt in self.allocate(n):
                fo = b * BLOCK
                chunk = data[fo:min(length, fo + cnt * BLOCK)]
                self._write(ib * BLOCK, chunk)
                segments.append(Segment(fo, len(chunk), ib * BLOCK))
                self.duplicate_extents.append({"image_offset": ib * BLOCK, "length": len(chunk),
                                               "file": name, "file_offset": fo})
                b += cnt
        return segments

    def scatter_junk(self, count: int, junk_source) -> None:
        """Junk in free space: fragments of other deleted files."""
        for i in range(count):
            kind = ("text", "binary")[i % 2]
            for ib, cnt in self.allocate(1):
                self._write(ib * BLOCK, junk_source(kind, self.rng))
                self.junk_blocks.append({"image_offset": ib * BLOCK, "kind": kind,
                                         "file": None, "file_offset": None})


def binary_junk(rng: random.Random) -> bytes:
    """A block of binary data with runs of NULs, as a compiled or compressed file leaves."""
    b = bytearray(rng.randbytes(BLOCK))
    for _ in range(6):
        a = rng.randrange(BLOCK)
        n = rng.randint(16, 400)
        b[a:a + n] = bytes(len(b[a:a + n]))
    return bytes(b)


def _intersect(ranges, lo, hi):
    for a, z in ranges:
        a, z = max(a, lo), min(z, hi)
        if a < z:
            yield a, z


def _complement(ranges, lo, hi):
    pos = lo
    for a, z in sorted(ranges):
        if z <= pos or a >= hi:
            continue
        if a > pos:
            yield pos, a
        pos = max(pos, z)
    if pos < hi:
        yield pos, hi


def _cut(segments: list[Segment], lo: int, hi: int) -> list[Segment]:
    out = []
    for s in segments:
        a, z = s.file_offset, s.file_offset + s.length
        if z <= lo or a >= hi:
            out.append(s)
            continue
        if a < lo:
            out.append(Segment(a, lo - a, s.image_offset))
        if z > hi:
            out.append(Segment(hi, z - hi, s.image_offset + (hi - a)))
    return out


def locate(segments: list[Segment], starts, ends):
    """For lines [starts[i], ends[i]): (image offset of the first byte or -1, split flag).

    A line is present when all its bytes are in segments that follow each other in the file;
    it is split when those bytes sit in more than one segment (non-contiguous in the image).
    """
    segs = sorted(segments, key=lambda s: s.file_offset)
    out_off = []
    out_split = []
    j = 0
    n = len(segs)
    for a, z in zip(starts, ends):
        while j < n and segs[j].file_offset + segs[j].length <= a:
            j += 1
        if j == n or segs[j].file_offset > a:
            out_off.append(-1)
            out_split.append(False)
            continue
        s = segs[j]
        end = s.file_offset + s.length
        if z <= end:
            out_off.append(s.image_offset + (a - s.file_offset))
            out_split.append(False)
            continue
        k = j
        ok = False
        while k + 1 < n and segs[k + 1].file_offset == end:
            k += 1
            end = segs[k].file_offset + segs[k].length
            if z <= end:
                ok = True
                break
        if ok:
            out_off.append(s.image_offset + (a - s.file_offset))
            out_split.append(True)
        else:
            out_off.append(-1)
            out_split.append(False)
    return out_off, out_split
