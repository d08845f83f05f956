"""carve/images.py on images the tests build themselves: raw, split raw, E01 (ewfacquire), real
ext4 and XFS filesystems (mkfs), MBR and GPT partition tables (sfdisk), deleted files (debugfs).

The tools come from .ci/install-image-tools.sh. Without them a test skips, saying what is
missing; under CI (CI set) a missing tool or library is a failure instead.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import importlib
import itertools
import os
import pickle
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from logsalvage.carve import images
from logsalvage.carve.images import (
    Allocation,
    Image,
    ImageReadError,
    RawSegment,
    Region,
    open_image,
)
from logsalvage.errors import UsageError

IN_CI = bool(os.environ.get("CI"))
TOOL_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
PACKAGE_OF = {"mkfs.ext4": "e2fsprogs", "debugfs": "e2fsprogs", "sfdisk": "fdisk",
              "ewfacquire": "ewf-tools", "mkfs.xfs": "xfsprogs"}
MiB = 1 << 20


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"{reason} (CI is set: .ci/install-image-tools.sh and the pyproject extras must provide it)")
    pytest.skip(reason)


def tool(name: str) -> str:
    found = shutil.which(name, path=TOOL_PATH)
    if found is None:
        _missing(f"{name} not installed (Debian package {PACKAGE_OF.get(name, name)})")
    return found


def module(name: str, pip_name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(f"Python module {name} not installed (pip install {pip_name})")


def run(*args, input: bytes = b""):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, input=input,
                          env={**os.environ, "PATH": TOOL_PATH})


def mkfs_ext4(img: Path, size: int, block_size: int, content: Path | None = None) -> None:
    with open(img, "wb") as f:
        f.truncate(size)
    args = [tool("mkfs.ext4"), "-q", "-F", "-b", block_size, "-E", "nodiscard"]
    if content is not None:
        args += ["-d", content]
    run(*args, img)


def log_lines(tag: str, n: int) -> bytes:
    return b"".join(f"Mar  7 10:{i // 60 % 60:02d}:{i % 60:02d} db01 postgres[4242]: [{i}-1] {tag} "
                    f"line {i}\n".encode() for i in range(n))


def binary(n: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(n)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# --- raw and split raw ---------------------------------------------------------------------

def test_raw_read_at_and_sha256(tmp_path):
    data = binary(3 * MiB + 123)
    img = write(tmp_path / "disk.dd", data)
    with open_image([img]) as image:
        assert image.kind == "raw" and image.size == len(data) and image.problems == []
        for off, n in [(0, 10), (4095, 2), (MiB - 7, 4096), (len(data) - 5, 5)]:
            assert image.read_at(off, n) == data[off:off + n]
        assert image.read_at(len(data) - 5, 100) == data[-5:]       # short only at the end
        assert image.read_at(len(data), 10) == b""
        with pytest.raises(ValueError):
            image.read_at(-1, 10)
        seen = []
        assert image.sha256(progress=seen.append, chunk_size=MiB) == hashlib.sha256(data).hexdigest()
        assert sum(seen) == len(data) and len(seen) == 4


def test_split_raw_uneven_segments(tmp_path):
    data = binary(600_000, seed=2) + log_lines("split", 3000)
    cuts = [0, 150_001, 500_000, 650_001, len(data)]          # uneven; the last is the smallest
    paths = []
    for i, (lo, hi) in enumerate(itertools.pairwise(cuts), start=1):
        paths.append(write(tmp_path / f"disk.{i:03d}", data[lo:hi]))
    for given in ([paths[0]], paths):
        with open_image(given) as image:
            assert image.kind == "split raw"
            assert image.paths == paths and image.size == len(data)
            assert image.problems == [], image.problems
            for border in cuts[1:-1]:
                for off, n in [(border - 1, 2), (border - 3000, 6000), (border, 1)]:
                    assert image.read_at(off, n) == data[off:off + n]
            assert image.read_at(100, len(data)) == data[100:]   # spans every segment
            assert image.sha256(chunk_size=65536) == hashlib.sha256(data).hexdigest()


def test_split_raw_missing_and_misnamed_segments(tmp_path):
    parts = [binary(70_000, seed=s) for s in range(4)]
    paths = [write(tmp_path / f"ev.dd.{i:03d}", p) for i, p in enumerate(parts, start=1)]
    paths[2].unlink()                                            # ev.dd.003 lost
    with open_image([paths[0]]) as image:
        assert image.size == 140_000
        assert image.read_at(69_990, 20) == (parts[0] + parts[1])[69_990:70_010]
        assert any("ev.dd.003 is missing" in p and "ev.dd.004" in p for p in image.problems)
    with pytest.raises(UsageError, match="ev.dd.003 is missing or out of order"):
        open_image([paths[0], paths[1], paths[3]])
    with pytest.raises(UsageError, match="not the first segment"):
        open_image([paths[1]])


def test_split_raw_short_middle_segment_is_reported(tmp_path):
    paths = [write(tmp_path / f"d.{i:03d}", binary(n, seed=i)) for i, n in enumerate([65536, 40000, 65536, 100], 1)]
    with open_image([paths[0]]) as image:
        assert image.size == 65536 * 2 + 40000 + 100
        assert any("d.002" in p and "shorter" in p for p in image.problems)


def test_image_pickles_by_reopening(tmp_path):
    data = binary(200_000, seed=9)
    paths = [write(tmp_path / "x.001", data[:90_000]), write(tmp_path / "x.002", data[90_000:])]
    with open_image([paths[0]]) as image:
        clone = pickle.loads(pickle.dumps(image))
        assert clone.read_at(89_000, 2000) == data[89_000:91_000]
        clone.close()


# --- bad input ---------------------------------------------------------------------------------

def test_not_an_image_at_all(tmp_path):
    empty = write(tmp_path / "empty.dd", b"")
    with pytest.raises(UsageError, match="empty"):
        open_image([empty])
    with pytest.raises(UsageError, match="directory"):
        open_image([tmp_path])
    with pytest.raises(UsageError, match="does not exist"):
        open_image([tmp_path / "nope.dd"])
    text = write(tmp_path / "messages", log_lines("live", 40_000) + "é ü\n".encode())
    with pytest.raises(UsageError, match="text file") as err:
        open_image([text])
    assert "messages" in str(err.value) and err.value.exit_code == 2
    gz = write(tmp_path / "messages.dd", gzip.compress(log_lines("gz", 1000)))
    with pytest.raises(UsageError, match="gzip"):
        open_image([gz])
    other = write(tmp_path / "other.dd", binary(4096))
    with pytest.raises(UsageError, match="not a numbered segment"):
        open_image([write(tmp_path / "a.dd", binary(4096)), other])


def test_text_with_binary_blocks_is_an_image(tmp_path):
    # a partition dump is mostly zeros, metadata and scattered text: never mistaken for a log
    data = bytearray(log_lines("dump", 60_000))
    rng = random.Random(8)
    for block in range(0, len(data) - 4096, 4096):
        if rng.random() < 0.1:
            data[block:block + 4096] = bytes(4096)
    with open_image([write(tmp_path / "part.dd", bytes(data))]) as image:
        assert image.regions()[0].label == "whole image"


class FlakySegment:
    """A segment whose bytes [bad_lo, bad_hi) fail with EIO, like a bad sector on the copy."""

    def __init__(self, inner: RawSegment, bad_lo: int, bad_hi: int):
        self.inner, self.bad_lo, self.bad_hi = inner, bad_lo, bad_hi
        self.name, self.size = inner.name, inner.size

    def pread(self, n, offset):
        if offset < self.bad_hi and self.bad_lo < offset + n:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self.inner.pread(n, offset)

    def close(self):
        self.inner.close()


def test_unreadable_range_raises_with_offset_and_the_rest_is_read(tmp_path):
    data = binary(1 * MiB, seed=3)
    img = write(tmp_path / "bad.dd", data)
    bad_lo, bad_hi = 300 * 1024, 308 * 1024
    image = Image([img], [FlakySegment(RawSegment(img), bad_lo, bad_hi)])
    assert image.read_at(0, 4096) == data[:4096]
    with pytest.raises(ImageReadError) as err:
        image.read_at(256 * 1024, 256 * 1024)
    assert (err.value.offset, err.value.length) == (256 * 1024, 256 * 1024)
    assert "Input/output error" in err.value.reason and "bad.dd" in err.value.reason
    pieces, errors = image.read_around_errors(0, len(data), granule=4096)
    assert [(e.offset, e.length) for e in errors] == [(bad_lo, bad_hi - bad_lo)]
    assert pieces == [(0, data[:bad_lo]), (bad_hi, data[bad_hi:])]
    with pytest.raises(ImageReadError):
        image.sha256()
    image.close()


# --- block sizes from superblocks --------------------------------------------------------------

def xfs_superblock(block_size: int, dblocks: int) -> bytes:
    sb = bytearray(512)
    struct.pack_into(">4sIQ", sb, 0, b"XFSB", block_size, dblocks)
    return bytes(sb)


def test_xfs_like_superblock_gives_block_size(tmp_path):
    size = 2 * MiB
    img = write(tmp_path / "sdb1.dd", xfs_superblock(4096, size // 4096) + binary(size - 512, seed=4))
    with open_image([img]) as image:
        [region] = image.regions()
        assert region == Region(0, size, "whole image", 4096, "XFS superblock", "XFS")
        assert image.problems == [] or all("XFS" in p for p in image.problems)
        [given] = image.regions(block_size=512)
        assert (given.block_size, given.block_size_basis) == (512, "given by the user")
        with pytest.raises(UsageError):
            image.regions(block_size=0)
    small = write(tmp_path / "short.dd", xfs_superblock(8192, 10_000) + binary(MiB, seed=5))
    with open_image([small]) as image:
        assert image.regions()[0].block_size == 8192
        assert any("shorter than its XFS superblock claims" in p for p in image.problems)


def test_filesystem_at_byte_0_wins_over_a_stray_mbr_signature(tmp_path):
    head = bytearray(xfs_superblock(4096, 256))
    head[446 + 4], head[446 + 8] = 0x83, 1           # a partition entry, and 0x55AA
    head[510:512] = b"\x55\xaa"
    with open_image([write(tmp_path / "x.dd", bytes(head) + binary(MiB - 512, seed=10))]) as image:
        [region] = image.regions()
        assert (region.label, region.filesystem, region.block_size) == ("whole image", "XFS", 4096)


def test_no_superblock_defaults_to_4096(tmp_path):
    with open_image([write(tmp_path / "blob.dd", binary(MiB, seed=6))]) as image:
        [region] = image.regions()
        assert (region.block_size, region.block_size_basis, region.filesystem) == (4096, "default 4096", None)
        assert image.allocation(region) is None


def test_real_xfs_block_size_and_no_allocation(tmp_path):
    mkfs = tool("mkfs.xfs")
    img = tmp_path / "xfs.img"
    with open(img, "wb") as f:
        f.truncate(300 * MiB)                        # mkfs.xfs's minimum; sparse
    run(mkfs, "-q", "-f", "-K", "-b", "size=2048", img)
    module("pytsk3", "pytsk3")
    with open_image([img]) as image:
        [region] = image.regions()
        assert (region.block_size, region.block_size_basis, region.filesystem) == (2048, "XFS superblock", "XFS")
        # The Sleuth Kit inside pytsk3 does not read XFS: said, not guessed
        assert image.allocation(region) is None
        assert any("cannot read XFS" in p for p in image.problems)


@pytest.fixture(scope="module")
def ext4_1k(tmp_path_factory):
    """A 1 KiB-block ext4 image with a live log, and a second log deleted with debugfs."""
    tmp = tmp_path_factory.mktemp("ext4")
    content = tmp / "content"
    (content / "var" / "log").mkdir(parents=True)
    live = log_lines("LIVE-MARKER", 2000)
    gone = log_lines("GONE-MARKER", 1500)
    (content / "var" / "log" / "messages").write_bytes(live)
    (content / "var" / "log" / "messages.1").write_bytes(gone)
    img = tmp / "fs.img"
    mkfs_ext4(img, 8 * MiB, 1024, content)
    run(tool("debugfs"), "-w", "-R", "rm /var/log/messages.1", img)
    return img, live, gone


def test_ext4_block_size_from_superblock(ext4_1k):
    img, _, _ = ext4_1k
    with open_image([img]) as image:
        [region] = image.regions()
        assert region == Region(0, 8 * MiB, "whole image", 1024, "ext4 superblock", "ext4")


def test_ext4_allocation_live_and_deleted(ext4_1k):
    module("pytsk3", "pytsk3")
    img, live, gone = ext4_1k
    raw = img.read_bytes()
    with open_image([img]) as image:
        [region] = image.regions()
        alloc = image.allocation(region)
        assert alloc is not None and alloc.files >= 1
        live_at = raw.find(live[:4096])
        gone_at = raw.find(gone[:4096])
        assert live_at >= 0 and gone_at >= 0          # debugfs rm leaves the bytes behind
        assert alloc.owner(live_at) == "/var/log/messages"
        assert alloc.is_allocated(live_at + len(live) - 1)
        assert alloc.owner(live_at + len(live)) is None  # slack after the file's end: not live content
        assert alloc.owner(gone_at) is None and not alloc.is_allocated(gone_at + 5000)
        assert alloc.owner(0) is None                  # boot block
        assert image.allocation(region) is alloc       # built once
        spans = list(alloc.spans(live_at - 10, live_at + 10))
        assert spans == [(live_at - 10, live_at, None), (live_at, live_at + 10, "/var/log/messages")]


# --- partition tables ------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["dos", "gpt"])
def partitioned(request, tmp_path_factory):
    """A 40 MiB disk: partition 1 at 1 MiB with a 1 KiB-block ext4 holding a live log,
    partition 2 at 12 MiB with a 4 KiB-block ext4; the rest unpartitioned."""
    sfdisk = tool("sfdisk")
    tmp = tmp_path_factory.mktemp(f"disk-{request.param}")
    content = tmp / "content"
    content.mkdir()
    live = log_lines("PART-LIVE", 1000)
    (content / "app.log").write_bytes(live)
    p1, p2 = tmp / "p1.img", tmp / "p2.img"
    mkfs_ext4(p1, 10 * MiB, 1024, content)
    mkfs_ext4(p2, 16 * MiB, 4096)
    disk = tmp / "disk.img"
    with open(disk, "wb") as f:
        f.truncate(40 * MiB)
    kind = "type=83" if request.param == "dos" else "type=linux"
    table = f"label: {request.param}\nstart=2048, size=20480, {kind}\nstart=24576, size=32768, {kind}\n"
    run(sfdisk, "-q", disk, input=table.encode())
    with open(disk, "r+b") as f:
        f.seek(1 * MiB)
        f.write(p1.read_bytes())
        f.seek(12 * MiB)
        f.write(p2.read_bytes())
    return request.param, disk, live


def test_partitions_each_with_own_block_size(partitioned):
    module("pytsk3", "pytsk3")
    table, disk, _ = partitioned
    with open_image([disk]) as image:
        regions = image.regions()
        assert image.problems == []
        assert regions[0].start == 0 and regions[-1].end == image.size
        assert all(a.end == b.start for a, b in itertools.pairwise(regions))   # every byte, once
        parts = [r for r in regions if r.label.startswith("partition")]
        assert [(r.start, r.end, r.block_size, r.block_size_basis, r.filesystem) for r in parts] == [
            (1 * MiB, 11 * MiB, 1024, "ext4 superblock", "ext4"),
            (12 * MiB, 28 * MiB, 4096, "ext4 superblock", "ext4"),
        ]
        assert parts[0].label.startswith("partition 1 (") and parts[0].label.endswith(", ext4)")
        assert parts[1].label.startswith("partition 2 (")
        if table == "dos":
            assert "Linux (0x83)" in parts[0].label
        gaps = [r for r in regions if not r.label.startswith("partition")]
        assert all(r.label == "unpartitioned space" and r.block_size == 4096 for r in gaps)
        assert [(r.start, r.end) for r in gaps] == [(0, MiB), (11 * MiB, 12 * MiB), (28 * MiB, 40 * MiB)]


def test_allocation_in_a_partition_uses_image_offsets(partitioned):
    module("pytsk3", "pytsk3")
    _, disk, live = partitioned
    raw = disk.read_bytes()
    at = raw.find(live[:2048])
    assert at > MiB
    with open_image([disk]) as image:
        part1 = next(r for r in image.regions() if r.label.startswith("partition 1"))
        alloc = image.allocation(part1)
        assert alloc.owner(at) == "/app.log" and alloc.owner(at + len(live) - 1) == "/app.log"
        assert image.read_at(at, 100) == live[:100]
        assert image.allocation(next(r for r in image.regions() if r.label == "unpartitioned space")) is None


def test_image_shorter_than_its_partition_table(partitioned, tmp_path):
    module("pytsk3", "pytsk3")
    _, disk, _ = partitioned
    short = tmp_path / "short.img"
    short.write_bytes(disk.read_bytes()[:20 * MiB])      # partition 2 (12-28 MiB) cut at 20 MiB
    with open_image([short]) as image:
        regions = image.regions()
        assert regions[-1].end == image.size == 20 * MiB
        p2 = next(r for r in regions if r.label.startswith("partition 2"))
        assert (p2.start, p2.end, p2.block_size) == (12 * MiB, 20 * MiB, 4096)
        assert any(f"partition 2 ends at byte {28 * MiB}, image is {20 * MiB} bytes" in p for p in image.problems)
        assert any("shorter than its ext4 superblock claims" in p for p in image.problems)
    shorter = tmp_path / "shorter.img"
    shorter.write_bytes(disk.read_bytes()[:11 * MiB + 4096])   # partition 2 gone entirely
    with open_image([shorter]) as image:
        assert not any(r.label.startswith("partition 2") for r in image.regions())
        assert any("partition 2 starts at byte" in p and "not in the image" in p for p in image.problems)


def test_without_pytsk3_the_whole_image_is_carved(partitioned, monkeypatch):
    _, disk, _ = partitioned
    monkeypatch.setattr(images, "_tsk_module", images._TSK_MISSING)
    with open_image([disk]) as image:
        [region] = image.regions()
        assert (region.start, region.end, region.label) == (0, image.size, "whole image")
        assert image.allocation(region) is None
        assert any("pytsk3 is not installed" in p and "partition table" in p for p in image.problems)


# --- E01 ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def e01(tmp_path_factory):
    """A 4 MiB raw image and its E01 acquisition in 1 MiB segments (.E01 … .E0n)."""
    ewfacquire = tool("ewfacquire")
    module("pyewf", "libewf-python")
    tmp = tmp_path_factory.mktemp("e01")
    raw = binary(3 * MiB, seed=7) + log_lines("E01", 20_000)
    raw = raw[:4 * MiB].ljust(4 * MiB, b"\0")
    src = write(tmp / "src.dd", raw)
    run(ewfacquire, "-u", "-q", "-t", tmp / "ev", "-f", "encase6", "-c", "deflate:fast",
        "-S", "1MiB", "-C", "42", "-D", "test", "-e", "pytest", "-E", "1", "-N", "none", src)
    segments = sorted(tmp.glob("ev.E*"))
    assert len(segments) >= 3, segments
    return raw, segments


def test_e01_read_at_and_sha256(e01):
    raw, segments = e01
    for given in ([segments[0]], segments):
        with open_image(given) as image:
            assert image.kind == "E01" and image.paths == segments and image.problems == []
            assert image.size == len(raw)
            for off, n in [(0, 512), (MiB - 100, 300), (3 * MiB + 17, 10_000), (len(raw) - 10, 50)]:
                assert image.read_at(off, n) == raw[off:off + n]
            assert image.sha256() == hashlib.sha256(raw).hexdigest()
            assert image.stored_hashes.get("MD5") == hashlib.md5(raw).hexdigest()
    with pytest.raises(UsageError, match="first segment"):
        open_image([segments[1]])
    with open_image([segments[0]]) as image:
        clone = pickle.loads(pickle.dumps(image))
        assert clone.read_at(2 * MiB - 5, 10) == raw[2 * MiB - 5:2 * MiB + 5]
        clone.close()


def _copy_segments(segments, dest: Path) -> list[Path]:
    dest.mkdir()
    return [Path(shutil.copy(s, dest / s.name)) for s in segments]


def test_e01_missing_segment_is_reported_and_the_rest_read(e01, tmp_path):
    raw, segments = e01
    copies = _copy_segments(segments, tmp_path / "ev")
    copies[1].unlink()
    with open_image([copies[0]]) as image:
        assert any(f"{copies[1].name} is missing" in p for p in image.problems), image.problems
        assert image.size == len(raw)
        assert image.read_at(0, 65536) == raw[:65536]
        with pytest.raises(ImageReadError) as err:
            image.read_at(3 * MiB, 100)
        assert err.value.offset == 3 * MiB
        pieces, errors = image.read_around_errors(0, image.size)
        assert len(pieces) == 1 and pieces[0][0] == 0 and raw.startswith(pieces[0][1])
        assert errors[0].offset == len(pieces[0][1]) and errors[-1].offset + errors[-1].length == len(raw)


def test_e01_truncated_segment_is_reported(e01, tmp_path):
    raw, segments = e01
    copies = _copy_segments(segments, tmp_path / "ev")
    data = copies[1].read_bytes()
    copies[1].write_bytes(data[:len(data) // 2])
    with open_image([copies[0]]) as image:
        assert any(copies[1].name in p and "truncated" in p for p in image.problems), image.problems
        pieces, errors = image.read_around_errors(0, image.size)
        # what is read is right: libewf's bytes from the damaged segment are never handed out
        for off, chunk in pieces:
            assert chunk == raw[off:off + len(chunk)]
        assert errors and errors[-1].offset + errors[-1].length == len(raw)


# --- Allocation on its own -------------------------------------------------------------------

def test_allocation_lookup_and_spans():
    alloc = Allocation([(100, 200, "/a"), (200, 300, "/a"), (400, 500, "/b"), (450, 600, "/c")])
    assert len(alloc) == 3                             # /a merged; /c clipped where /b holds it
    assert [alloc.owner(o) for o in (99, 100, 299, 300, 400, 499, 500, 599, 600)] == \
        [None, "/a", "/a", None, "/b", "/b", "/c", "/c", None]
    assert alloc.allocated_bytes == 200 + 100 + 100
    assert list(alloc.spans(0, 700)) == [(0, 100, None), (100, 300, "/a"), (300, 400, None),
                                         (400, 500, "/b"), (500, 600, "/c"), (600, 700, None)]
    assert list(alloc.spans(150, 160)) == [(150, 160, "/a")]
    assert list(Allocation([]).spans(5, 9)) == [(5, 9, None)]
