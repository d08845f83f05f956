"""reassemble: heads and tails cut at block boundaries joined back, only where the join holds."""

from __future__ import annotations

import random

import pytest
from test_pieces import (  # noqa: F401
    access_text,
    carve_all,
    file_bytes,
    pgline,
    scatter,
    stamp,
    synthetic_log,
)

from logsalvage.carve.pieces import Piece, carve_chunk
from logsalvage.carve.reassemble import reassemble
from logsalvage.carve.scan import Scanner
from logsalvage.parsing.formats import log_formats

BS = 512


@pytest.fixture(scope="module")
def sc():
    return Scanner(log_formats())


def pad(b: bytes, n: int) -> bytes:
    assert len(b) <= n
    return b + bytes(n - len(b))


def assert_nothing_dropped(got, joined, leftover) -> None:
    """Each join uses one head and one tail; a tail kept as a record of its own uses one tail."""
    used = sum(2 if p.joined else 1 for p in joined)
    assert used + len(leftover) == len(got.heads) + len(got.tails)


def carve_and_join(image: bytes, sc, bs: int = BS, chunk: int | None = None):
    got = carve_all(image, chunk or 8 * bs, sc, bs)
    joined, leftover = reassemble(got.heads, got.tails, block_size=bs, scanner=sc)
    assert_nothing_dropped(got, joined, leftover)
    return got, joined, leftover


@pytest.mark.parametrize("seed", range(5))
def test_scattered_file_comes_back_whole(sc, seed):
    lines = synthetic_log(700, seed=seed)
    image, _extents = scatter(file_bytes(lines), BS, seed=seed)
    got, joined, leftover = carve_and_join(image, sc)
    assert joined, "extents cut lines"
    out = [p.data for p in got.records] + [p.data for p in joined]
    assert sorted(out) == sorted(lines)
    assert not leftover
    for p in joined:
        assert p.joined and p.kind == "record" and p.format_id == "syslog"
        (ho, hl), (to, tl) = p.spans
        assert ho == p.offset and (ho + hl) % BS == 0 and to % BS == 0
        assert image[ho:ho + hl] + image[to:to + tl] == p.data + b"\n"


@pytest.mark.parametrize("seed", range(4))
def test_junk_blocks_never_give_a_wrong_record(sc, seed):
    # 4 KiB blocks as on the demo's XFS: a lost block is minutes of log, far beyond its cadence,
    # so the fragments on either side of it are not taken for each other
    bs = 4096
    rng = random.Random(seed)
    lines = synthetic_log(4000, seed=10 + seed)
    data = file_bytes(lines)
    nblk = -(-len(data) // bs)
    junk = {b: rng.choice([bytes(bs), rng.randbytes(bs), access_text(bs, seed=b)])
            for b in rng.sample(range(1, nblk - 1), 12)}
    image, _ = scatter(data, bs, seed=seed, junk=junk)
    got, joined, leftover = carve_and_join(image, sc, bs=bs)
    wanted = set(lines)
    out = [p.data for p in got.records + joined if p.format_id == "syslog"]
    assert all(d in wanted for d in out), [d for d in out if d not in wanted][:3]
    # every line whose bytes all survived is recovered
    survived = _surviving_lines(lines, junk, bs)
    assert survived - set(out) == set()
    assert leftover        # the fragments next to junk are kept, not dropped


def _surviving_lines(lines: list[bytes], junk: dict[int, bytes], bs: int) -> set[bytes]:
    out, pos = set(), 0
    for line in lines:
        end = pos + len(line) + 1
        if not any(pos // bs <= b <= (end - 1) // bs for b in junk):
            out.add(line)
        pos = end
    return out


def _layout(*blocks: tuple[int, bytes], size: int = 16) -> bytes:
    img = bytearray(size * BS)
    for at, content in blocks:
        img[at * BS:at * BS + len(content)] = content
    return bytes(img)


def _head_block(prev: list[bytes], head: bytes) -> bytes:
    """A block of whole lines ending with the head (which ends exactly at the block end)."""
    body = b"".join(p + b"\n" for p in prev)
    filler = BS - len(body) - len(head)
    assert filler == 0 or filler > 40
    lead = b"Dec  3 00:59:59 db01 systemd: " if filler else b""
    return (lead + b"x" * (filler - len(lead) - 1) + b"\n" if filler else b"") + body + head


@pytest.mark.parametrize("k", [4, 11, 15, 16, 30, 60])
def test_cut_inside_the_header_or_anywhere(sc, k):
    # a cut at k bytes into the line: inside the time ('Dec  3 01:0|0:15'), after it, in the body
    line = pgline(3615, 7)
    prev, nxt = pgline(3600, 6), pgline(3630, 8)
    a = _head_block([prev], line[:k])
    b = line[k:] + b"\n" + nxt + b"\n"
    image = _layout((2, a), (9, b))
    _got, joined, leftover = carve_and_join(image, sc)
    assert [p.data for p in joined] == [line]
    assert joined[0].spans == [(3 * BS - k, k), (9 * BS, len(line) - k + 1)]
    assert not leftover


def test_line_end_cut_before_its_newline(sc):
    line, nxt = pgline(3615, 7), pgline(3630, 8)
    a = _head_block([pgline(3600, 6)], line)
    image = _layout((2, a), (9, b"\n" + nxt + b"\n"))
    _got, joined, _leftover = carve_and_join(image, sc)
    assert [p.data for p in joined] == [line] and joined[0].spans[1] == (9 * BS, 1)


def test_time_out_of_order_is_not_joined(sc):
    line = pgline(3615, 7)
    a = _head_block([pgline(3600, 6)], line[:60])
    # what follows the tail is two hours earlier than the joined line
    image = _layout((2, a), (9, line[60:] + b"\n" + pgline(3615 - 7200, 8) + b"\n"))
    _got, joined, leftover = carve_and_join(image, sc)
    assert not joined and len(leftover) == 2


def test_gap_beyond_the_cadence_is_not_joined(sc):
    # head and tail from either side of a lost block: the records around them are minutes apart
    # while the log's neighbouring lines are seconds apart
    prev = [pgline(3600 + i, 20 + i) for i in range(2)]
    line = pgline(3602, 30)
    a = _head_block(prev, line[:70])
    after = [pgline(3602 + 300 + i, 40 + i) for i in range(2)]
    b = b"ABCDEF 0.0.1(46118),LOG:  incomplete startup packet\n" + b"".join(x + b"\n" for x in after)
    image = _layout((2, a), (9, b))
    _got, joined, _leftover = carve_and_join(image, sc)
    assert not joined


def test_seq_chunk_continuity_picks_the_tail(sc):
    head_line = pgline(3615, 7, 3, 2, "first half second half")
    a = _head_block([pgline(3615, 7, 3, 1, "q")], head_line[:55])
    rest = head_line[55:]
    wrong = rest + b"\n" + pgline(3616, 7, 9, 1, "not next") + b"\n"   # pid 7 jumps to [9-1]
    right = rest + b"\n" + pgline(3616, 7, 3, 3, "next chunk") + b"\n"
    image = _layout((2, a), (5, wrong), (9, right))
    _got, joined, leftover = carve_and_join(image, sc)
    assert [p.data for p in joined] == [head_line]
    assert joined[0].spans[1][0] == 9 * BS
    assert [p.offset for p in leftover] == [5 * BS]


def test_ties_are_broken_by_offset(sc):
    line = pgline(3615, 7)
    a = _head_block([pgline(3600, 6)], line[:60])
    b = line[60:] + b"\n" + pgline(3620, 8) + b"\n"
    image = _layout((2, a), (9, b), (12, b))      # an identical copy of the tail block
    got, joined, leftover = carve_and_join(image, sc)
    assert [p.spans[1][0] for p in joined] == [9 * BS]
    assert [p.offset for p in leftover] == [12 * BS]
    # the outcome does not depend on the order of the pieces given
    j2, l2 = reassemble(list(reversed(got.heads)), list(reversed(got.tails)), block_size=BS, scanner=sc)
    assert j2 == joined and l2 == leftover


def test_tail_followed_by_another_format_is_not_joined(sc):
    line = pgline(3615, 7)
    a = _head_block([pgline(3600, 6)], line[:60])
    b = line[60:] + b"\n" + access_text(200, seed=1).split(b"\n", 1)[1]
    image = _layout((2, a), (9, b))
    _got, joined, _leftover = carve_and_join(image, sc)
    assert not [p for p in joined if p.format_id == "syslog"]


def test_pieces_without_context_use_the_records(sc):
    # pieces as a pipeline may store them: no neighbour lines; the records give the context
    line = pgline(3615, 7)
    head = Piece(3 * BS - 60, line[:60], "syslog", "head")
    good = Piece(9 * BS, line[60:], None, "tail")
    bad = Piece(5 * BS, line[60:], None, "tail")
    records = [Piece(3 * BS - 200, pgline(3600, 6), "syslog"),
               Piece(5 * BS + len(line) - 59, pgline(3615 - 7200, 9), "syslog"),   # two hours before
               Piece(9 * BS + len(line) - 59, pgline(3620, 8), "syslog")]
    joined, leftover = reassemble([head], [bad, good], records, block_size=BS, scanner=sc)
    assert [(p.data, p.spans[1][0]) for p in joined] == [(line, 9 * BS)]
    assert leftover == [bad]
    # without any context the two tails tie: the lower offset wins
    joined, leftover = reassemble([head], [good, bad], block_size=BS, scanner=sc)
    assert [p.spans[1][0] for p in joined] == [5 * BS]


def test_misplaced_pieces_are_leftovers(sc):
    line = pgline(3615, 7)
    head = Piece(3 * BS - 61, line[:60], "syslog", "head")     # does not end at a block end
    tail = Piece(9 * BS + 3, line[60:], None, "tail")          # does not start at one
    joined, leftover = reassemble([head], [tail], block_size=BS, scanner=sc)
    assert not joined and leftover == [head, tail]


def test_default_scanner_and_demo_block_size(sc):
    # called as the pipeline calls it: heads, tails and the block size only
    lines = synthetic_log(300, seed=3)
    image, _ = scatter(file_bytes(lines), 4096, seed=3, extent_blocks=(1, 2))
    got = carve_chunk(image, 0, len(image), block_size=4096, scanner=sc)
    joined, _leftover = reassemble(got.heads, got.tails, block_size=4096)
    assert sorted([p.data for p in got.records] + [p.data for p in joined]) == sorted(lines)
