"""carve_chunk on hand-made buffers: records, junk trimming, rejects, natural joins across a block
boundary, heads (header cut or line end cut), tails, and chunk ownership (the same pieces
whatever the chunk size)."""

from __future__ import annotations

import random

import pytest

from logsalvage.carve.pieces import Piece, carve_chunk, utf8_ok
from logsalvage.carve.scan import Scanner
from logsalvage.parsing.formats import log_formats

# --- hand-made logs and images (test_reassemble.py uses them too) ---------------------------

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
HB = "DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1(46118),LOG:  incomplete startup packet"


def stamp(t: int) -> str:
    """A syslog time for t seconds after Dec 3 00:00:00."""
    day, rest = divmod(t, 86400)
    return f"Dec {3 + day:2d} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"


def pgline(t: int, pid: int, seq: int = 3, chunk: int = 1, msg: str = HB) -> bytes:
    return f"{stamp(t)} db01 postgres[{pid}]: [{seq}-{chunk}] {msg}".encode()


def synthetic_log(n: int, seed: int = 1, t0: int = 3600) -> list[bytes]:
    """n syslog lines of db01 (PostgreSQL heartbeats and queries, multi-chunk messages with the
    same pid, a few other programs, some non-ASCII text), times 0-30 s apart."""
    rng = random.Random(seed)
    out: list[bytes] = []
    t, pid = t0, 1000
    while len(out) < n:
        t += rng.randint(0, 30)
        pid += 1
        r = rng.random()
        if r < 0.5:
            out.append(pgline(t, pid))
        elif r < 0.7:
            q = "SELECT customer_id, name FROM customers WHERE name_kana LIKE 'スズキ%' ORDER BY name_kana"
            out.append(pgline(t, pid, msg=f"DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11({rng.randint(1024, 65535)}),"
                                          f"LOG:  duration: {rng.randint(3000, 9000)}.{rng.randint(0, 999):03d} ms  "
                                          f"statement: {q}"))
        elif r < 0.85:
            nchunks = rng.randint(2, 4)
            for c in range(1, nchunks + 1):
                body = " " + ", ".join(str(rng.randint(100000, 999999)) for _ in range(rng.randint(5, 30)))
                out.append(pgline(t, pid, 3, c, body if c > 1 else
                                  "DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(4242),LOG:  duration: 5000.1 ms  "
                                  "statement: SELECT r.reservation_id FROM reservations r WHERE r.voyage_id IN ("))
            out.append(pgline(t, pid, 4, 1, "DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(4242),LOG:  disconnection"))
        else:
            out.append(f"{stamp(t)} db01 systemd: Started Session {pid} of user root.".encode())
    return out[:n]


def file_bytes(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


ACCESS = (b'203.0.113.9 - - [12/Nov/2016:08:00:{s:02d} +0900] "GET /search.php HTTP/1.1" 200 5120 "-" '
          b'"Mozilla/5.0 (Windows NT 6.1)"')


def access_text(size: int, seed: int = 0) -> bytes:
    """Access-log text starting mid-line, like a junk block of an old deleted file."""
    rng = random.Random(seed)
    lines = [ACCESS.replace(b"{s:02d}", b"%02d" % rng.randint(0, 59)) for _ in range(size // 60 + 2)]
    text = b"\n".join(lines)
    k = rng.randint(5, 60)
    return text[k:k + size]


def scatter(data: bytes, bs: int, seed: int = 7, junk: dict[int, bytes] | None = None,
            extent_blocks: tuple[int, int] = (1, 4)) -> tuple[bytes, list[tuple[int, int, int]]]:
    """Lay a file out in an image: cut into extents of whole blocks, placed in random order with
    free (zero) blocks between them; ``junk`` overwrites the given file blocks. Returns the image
    and the extents (file offset, image offset, length)."""
    rng = random.Random(seed)
    nblk = -(-len(data) // bs)
    pieces = []
    b = 0
    while b < nblk:
        k = min(nblk - b, rng.randint(*extent_blocks))
        pieces.append((b, k))
        b += k
    order = list(range(len(pieces)))
    rng.shuffle(order)
    image = bytearray(bs)          # block 0: free
    extents = []
    for idx in order:
        fb, k = pieces[idx]
        chunk = bytearray(data[fb * bs:(fb + k) * bs].ljust(k * bs, b"\0"))
        for j in range(k):
            if junk and fb + j in junk:
                chunk[j * bs:(j + 1) * bs] = junk[fb + j][:bs].ljust(bs, b"\0")
        extents.append((fb * bs, len(image), k * bs))
        image += chunk
        image += bytes(bs * rng.randint(1, 2))   # free space between extents
    return bytes(image), extents


def carve_all(image: bytes, chunk: int, scanner, bs: int, max_record: int = 1024):
    """Carve an image in chunks of ``chunk`` bytes with a margin of max_record."""
    from logsalvage.carve.pieces import ChunkPieces, carve_chunk
    out = ChunkPieces()
    for base in range(0, len(image), chunk):
        buf = image[base:base + chunk + max_record]
        got = carve_chunk(buf, base, min(len(image), base + chunk), block_size=bs, scanner=scanner,
                          max_record=max_record)
        out.records += got.records
        out.heads += got.heads
        out.tails += got.tails
        out.rejects += got.rejects
    return out


# --- tests ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sc():
    return Scanner(log_formats())


def pad(b: bytes, bs: int) -> bytes:
    assert len(b) <= bs
    return b + bytes(bs - len(b))


def carve(buf: bytes, sc, bs: int, **kw):
    return carve_chunk(buf, 0, len(buf), block_size=bs, scanner=sc, **kw)


def test_records_and_junk_before_a_header(sc):
    a, b = pgline(10, 1), pgline(20, 2)
    buf = pad(b"\x07\x01zz" + a + b"\n" + b + b"\n", 512)
    got = carve(buf, sc, 512)
    assert got.records == [Piece(4, a, "syslog"), Piece(5 + len(a), b, "syslog")]
    assert not got.heads and not got.tails and not got.rejects


@pytest.mark.parametrize("bad,reason", [
    (pgline(10, 1)[:60] + b"\x00" + pgline(10, 1)[61:], "nul"),
    (pgline(10, 1)[:60] + b"\x1b[0m" + pgline(10, 1)[61:], "control"),
    (pgline(10, 1)[:60] + b"\xff\xfe" + pgline(10, 1)[62:], "utf8"),
    (b"Dec 32 03:45:20 db01 postgres[1]: [3-1] x", "header"),
    (b"Dec  3 25:45:20 db01 postgres[1]: [3-1] x", "header"),
    (b"Dec  3 03:45:20 db01 just some words", "header"),
])
def test_rejects(sc, bad, reason):
    good = pgline(30, 2)
    buf = pad(bad + b"\n" + good + b"\n", 512)
    got = carve(buf, sc, 512)
    assert [(r.offset, r.reason) for r in got.rejects] == [(0, reason)]
    assert got.records == [Piece(len(bad) + 1, good, "syslog")]


def test_a_record_never_has_a_junk_tail(sc):
    # the line's end is overwritten by binary junk in the same block: no record, a reject
    line = pgline(10, 1)
    buf = pad(line[:70] + bytes([0x80, 0x01, 0x00]) + b"junk\n" + pgline(20, 2) + b"\n", 512)
    got = carve(buf, sc, 512)
    assert [r.reason for r in got.rejects] == ["utf8"] or [r.reason for r in got.rejects] == ["control"]
    assert [p.data for p in got.records] == [pgline(20, 2)]


def test_natural_join_across_a_block_boundary(sc):
    bs = 256
    lines = [pgline(10 + i, 100 + i) for i in range(6)]
    data = file_bytes(lines)
    buf = data + bytes(-len(data) % bs)
    got = carve(buf, sc, bs)
    assert [p.data for p in got.records] == lines
    assert not got.heads and not got.tails and not got.rejects


def test_line_cut_by_zeros_is_a_head(sc):
    bs = 256
    a = pgline(10, 1)
    b = pgline(12, 2)
    # b crosses the block end; the next block is free space
    first = a + b"\n" + b
    buf = first[:bs] + bytes(bs)
    got = carve(buf, sc, bs)
    assert got.records == [Piece(0, a, "syslog")]
    assert got.heads == [Piece(len(a) + 1, first[len(a) + 1:bs], "syslog", "head", neighbour=a)]
    assert not got.tails


def test_line_running_into_another_file_is_cut(sc):
    bs = 256
    a, b = pgline(10, 1), pgline(12, 2)
    first = (a + b"\n" + b)[:bs]
    junk = access_text(bs, seed=3)
    buf = first + junk
    got = carve(buf, sc, bs)
    assert got.heads[0].kind == "head" and got.heads[0].offset == len(a) + 1
    assert all(p.format_id == "apache-access" for p in got.heads[1:])   # cut by the image end
    # the access-log fragment at the block start is a tail, followed by an access-log line
    assert len(got.tails) == 1 and got.tails[0].offset == bs
    assert got.tails[0].follow == "header:apache-access"
    assert all(p.format_id == "apache-access" for p in got.records if p.offset >= bs)


def test_natural_join_refused_when_a_header_begins_after_the_boundary(sc):
    bs = 256
    a, b, c = pgline(10, 1), pgline(12, 2), pgline(13, 3)
    first = (a + b"\n" + b)[:bs]
    second = pad(b"xyz" + c + b"\n", bs)     # 'xyz' then a header, no newline between
    got = carve(first + second, sc, bs)
    assert got.heads and got.heads[0].offset == len(a) + 1
    assert [p.data for p in got.records] == [a, c]
    assert not got.tails


def test_natural_join_refused_when_time_or_seq_contradicts(sc):
    bs = 256
    a, b = pgline(10, 1), pgline(12, 2, 5, 1)
    first = (a + b"\n" + b)[:bs]
    # the next line in the following block is the same pid with a [seq-chunk] that cannot follow
    rest = b[bs - len(a) - 1:] + b"\n" + pgline(14, 2, 9, 1) + b"\n"
    got = carve(first + pad(rest, bs), sc, bs)
    assert [p.kind for p in got.heads] == ["head"]
    assert len(got.tails) == 1
    # a next line from hours earlier contradicts it too
    rest = b[bs - len(a) - 1:] + b"\n" + pgline(12 - 7200, 7) + b"\n"
    got = carve(first + pad(rest, bs), sc, bs)
    assert [p.kind for p in got.heads] == ["head"]
    # and the good case joins
    rest = b[bs - len(a) - 1:] + b"\n" + pgline(14, 2, 5, 2, "more") + b"\n"
    got = carve(first + pad(rest, bs), sc, bs)
    assert not got.heads and [p.data for p in got.records][:2] == [a, b]


@pytest.mark.parametrize("cut", [b"Dec  3 03:4", b"Dec", b"Dec  3 03:45:20 db01 postg"])
def test_header_cut_at_the_block_end_is_a_partial_header(sc, cut):
    bs = 256
    a = pgline(10, 1)
    first = a + b"\n"
    first += b"x" * (bs - len(first) - len(cut) - 1) + b"\n" + cut
    assert len(first) == bs
    got = carve(first + bytes(bs), sc, bs)
    assert [(p.offset, p.data, p.kind) for p in got.heads] == [(bs - len(cut), cut, "partial-header")]
    assert not got.rejects


def test_tail_at_a_block_start(sc):
    bs = 256
    b, c = pgline(20, 2), pgline(25, 3)
    second = pad(b"5:20 db01 postgres[9]: [3-1] xyz\n" + b + b"\n" + c + b"\n", 2 * bs)
    got = carve(bytes(bs) + second, sc, bs)
    # the neighbour: the bytes after the tail in its own block (c is cut by the block end)
    assert got.tails == [Piece(bs, b"5:20 db01 postgres[9]: [3-1] xyz", None, "tail",
                               neighbour=(b + b"\n" + c)[:bs - 33], follow="header:syslog")]
    assert [p.data for p in got.records] == [b, c]


def test_tail_kinds_of_follow(sc):
    bs = 256
    got = carve(bytes(bs) + pad(b"the end of a file\n", bs), sc, bs)
    assert [t.follow for t in got.tails] == ["zeros"]
    got = carve(bytes(bs) + b"x" * (bs - 1) + b"\n", sc, bs)
    assert [t.follow for t in got.tails] == ["block-end"]
    got = carve(bytes(bs) + pad(b"a tail\nsome other text\n", bs), sc, bs)
    assert [t.follow for t in got.tails] == ["text"]
    # no tail: NUL before the newline, or a header before it
    got = carve(bytes(bs) + pad(b"abc\x00def\n", bs), sc, bs)
    assert not got.tails
    got = carve(bytes(bs) + pad(b"abc " + pgline(3, 3) + b"\n", bs), sc, bs)
    assert not got.tails and len(got.records) == 1


def test_utf8_character_cut_by_the_boundary(sc):
    bs = 512
    line = pgline(10, 1, msg="LOG:  " + "スズキ" * 40)
    k = next(i for i in range(200, 256) if 0x80 <= line[i] < 0xC0)   # inside a character
    head_block = pad(pgline(5, 9) + b"\n", bs - k) + line[:k]
    assert len(head_block) == bs
    tail_block = pad(line[k:] + b"\n" + pgline(12, 2) + b"\n", bs * 2)
    # far apart in the image: a head ending in half a character, a tail starting with the rest
    got = carve(head_block + bytes(bs) + tail_block, sc, bs)
    assert [p.data for p in got.heads] == [line[:k]]
    assert [p.data for p in got.tails] == [line[k:]]
    assert utf8_ok(line[:k], cut_end=True) and not utf8_ok(line[:k])
    assert utf8_ok(line[k:], cut_start=True) and not utf8_ok(line[k:])


def test_too_long_and_image_end(sc):
    long = pgline(10, 1, msg="x" * 400)
    got = carve(pad(long + b"\n", 4096), sc, 4096, max_record=300)
    assert [r.reason for r in got.rejects] == ["too-long"]
    # the image ends in the middle of a line (and of a block): what there is is a head
    got = carve(pgline(10, 1) + b"\n" + pgline(11, 2)[:50], sc, 4096)
    assert [p.data for p in got.heads] == [pgline(11, 2)[:50]]


def test_base_must_be_block_aligned(sc):
    with pytest.raises(ValueError):
        carve_chunk(b"x" * 100, 10, 100, block_size=64, scanner=sc)
    empty = carve_chunk(b"", 0, 0, block_size=64, scanner=sc)
    assert not (empty.records or empty.heads or empty.tails or empty.rejects)


def test_a_record_belongs_to_the_chunk_where_its_header_starts(sc):
    bs = 256
    lines = [pgline(10 + i, 100 + i) for i in range(8)]
    data = file_bytes(lines)
    img = data + bytes(-len(data) % bs)
    one = carve(img, sc, bs)
    first = carve_chunk(img, 0, bs, block_size=bs, scanner=sc, max_record=1024)
    second = carve_chunk(img[bs:], bs, len(img), block_size=bs, scanner=sc, max_record=1024)
    assert first.records + second.records == one.records
    straddling = [p for p in one.records if p.offset < bs < p.offset + len(p.data)]
    assert straddling and straddling[0] in first.records and straddling[0] not in second.records
    assert not (first.tails or second.tails or first.heads or second.heads)


@pytest.mark.parametrize("seed", range(4))
def test_same_pieces_whatever_the_chunk_size(sc, seed):
    bs = 256
    rng = random.Random(seed)
    data = file_bytes(synthetic_log(400, seed=seed))
    nblk = -(-len(data) // bs)
    junk = {}
    for b in rng.sample(range(nblk), 6):
        junk[b] = rng.choice([bytes(bs), rng.randbytes(bs), access_text(bs, seed=b)])
    image, _ = scatter(data, bs, seed=seed, junk=junk)
    image += rng.randbytes(3 * bs) + b"Dec  3 03:4"      # junk and a cut header at the very end
    ref = carve_all(image, len(image), sc, bs)
    assert ref.records and ref.heads and ref.tails
    for chunk in (bs, 3 * bs, 16 * bs, 64 * bs):
        got = carve_all(image, chunk, sc, bs)
        assert got.records == ref.records, chunk
        assert got.heads == ref.heads, chunk
        assert got.tails == ref.tails, chunk
        assert got.rejects == ref.rejects, chunk


def test_both_backends_carve_the_same(sc):
    from logsalvage.carve.scan import hyperscan_available
    if not hyperscan_available():
        pytest.skip("hyperscan not installed")
    bs = 256
    data = file_bytes(synthetic_log(300, seed=9))
    image, _ = scatter(data, bs, seed=9, junk={3: access_text(bs), 7: random.Random(1).randbytes(bs)})
    py = Scanner(log_formats(), backend="python")
    hs = Scanner(log_formats(), backend="hyperscan")
    a, b = carve_all(image, 8 * bs, py, bs), carve_all(image, 8 * bs, hs, bs)
    assert (a.records, a.heads, a.tails, a.rejects) == (b.records, b.heads, b.tails, b.rejects)
