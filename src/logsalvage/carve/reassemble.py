"""Rejoining records cut at block boundaries: a head at the end of one block, its tail at the
start of another, non-adjacent block.

``reassemble(heads, tails, records=None, block_size=...)`` returns ``(joined, leftover)``.
A head (ending exactly at a block end) and a tail (starting exactly at a block start) are a
candidate pair when

- ``head.data + tail.data`` validates as one record of the head's format (header, a body with no
  NUL or control byte, valid UTF-8), the format's header begins the record and no header of any
  format begins in the tail or across the junction; and a tail that starts with the rest of a cut
  header (``carve.header_rest``: ``ostgres[9]: [3-1] ...``) only completes a head that holds
  that header's beginning, never a head that already has a whole header;
- the join agrees with its surroundings, read from the pieces' ``neighbour`` bytes (or, for
  pieces without them, from ``records``): the records around a join are consecutive lines of one
  log, so the step from the last record before the head (in its block) to the joined record, and
  from it to the first record after the tail (in its block), may go back at most ``slack``
  seconds and forward at most the log's own cadence there: the longest step between
  neighbouring lines on either side, at least ``cadence`` (30 s: the health check's period),
  plus ``slack``, never more than ``window``. What follows the tail must not be another format's
  header;
- for PostgreSQL syslog lines, ``[seq-chunk]`` continues the nearest chunk of the same pid
  before the head and after the tail, where there is one.

Among candidates the best pairs are taken first (confirmed ``[seq-chunk]`` continuity, then the
number of time anchors, then the smallest time spread; ties by head offset, then tail offset),
each head and tail at most once. A tail that is a whole line of its own (``keep_headed_tails``)
and joins nothing comes back as a plain record among ``joined``. Joined pieces carry ``spans=[(head.offset, len(head.data)),
(tail.offset, len(tail.data) + 1)]`` and ``joined=True``. Everything else comes back as
``leftover`` (never dropped).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise

from logsalvage.carve.pieces import Piece, continues, utf8_ok
from logsalvage.carve.scan import YEAR_S, Scanner, _outermost, time_diff

WINDOW = 300   # seconds between the records around a join (the log's cadence is 10-30 s)
SLACK = 5      # how far out of order neighbouring records may be
CADENCE = 30   # a step between consecutive records always allowed (plus slack): the heartbeat


@lru_cache(maxsize=1)
def _default_scanner() -> Scanner:
    from logsalvage.parsing.formats import log_formats
    return Scanner(log_formats())


@dataclass(slots=True)
class _Side:
    stamp: int | None     # time of the nearest record of the format on that side
    pg: list              # (pid, seq, chunk) of the records on that side, nearest first
    gap: int | None       # the longest time between consecutive records on that side
    far: int | None = None  # time of the farthest record of the format on that side


def keep_headed_tails(joined: list[Piece], leftover: list, scanner: Scanner) -> tuple[list[Piece], list]:
    """Tails that begin with a whole line of their format (a line with a prefix at a block start)
    and were not joined are records as found, from where the prefix validates: add them to
    ``joined`` (not flagged as joined)."""
    rest = []
    for p in leftover:
        cf = scanner.formats.get(p.format_id) if getattr(p, "kind", None) == "tail" else None
        m = header_match(cf, p.data.lstrip(b" ")) if cf is not None else None
        if m is None:
            rest.append(p)
            continue
        skip = len(p.data) - len(p.data.lstrip(b" "))
        joined.append(Piece(p.offset + skip, p.data[skip:], p.format_id))
    joined.sort(key=lambda p: p.offset)
    return joined, rest


def header_match(cf, line: bytes):
    """The format's header in a line: at its start, or (formats whose lines begin with a prefix
    before the header, such as an access log's client address) after a valid prefix."""
    if cf.line_prefix is None:
        return cf.header.match(line)
    m = cf.header.search(line, 0, cf.max_header + 512)
    if m is None or cf.line_prefix.match(line, 0, m.start()) is None:
        return None
    return m


def _side(cf, lines: bytes | None, nearest_last: bool) -> _Side:
    if not lines:
        return _Side(None, [], None)
    parts = lines.split(b"\n")
    if nearest_last:
        parts.reverse()
    stamps = []
    pgs = []
    for line in parts:
        m = header_match(cf, line)     # the header dates a line, even one cut by the block end
        if m is None:
            continue
        t = cf.stamp(m)
        if t is not None:
            stamps.append(t)
        p = cf.pg(m)
        if p is not None:
            pgs.append(p)
    gap = max((abs(time_diff(a, b)) for a, b in pairwise(stamps)), default=None)
    return _Side(stamps[0] if stamps else None, pgs, gap, stamps[-1] if stamps else None)


def _pg_check(pg, side: _Side, before: bool) -> int | None:
    """1 when the nearest chunk of the same pid continues correctly, 0 when there is none, None
    when it contradicts the join."""
    for p in side.pg:
        if p[0] == pg[0]:
            ok = continues(p, pg) if before else continues(pg, p)
            return 1 if ok else None
    return 0


class _RecordIndex:
    """Context for pieces that carry no neighbour lines: the records around them."""

    def __init__(self, records, bs: int):
        recs = sorted(records, key=lambda r: r.offset)
        self.offsets = [r.offset for r in recs]
        self.recs = recs
        self.bs = bs

    def before(self, off: int) -> bytes | None:
        i = bisect_left(self.offsets, off) - 1
        blk = off - off % self.bs
        lines = []
        while i >= 0 and self.offsets[i] >= blk and len(lines) < 16:
            lines.append(self.recs[i].data)
            i -= 1
        return b"\n".join(reversed(lines)) or None

    def after(self, off: int) -> bytes | None:
        i = bisect_right(self.offsets, off)
        blk_end = off - off % self.bs + self.bs
        lines = []
        while i < len(self.offsets) and self.offsets[i] < blk_end and len(lines) < 16:
            lines.append(self.recs[i].data)
            i += 1
        return b"\n".join(lines) or None


def joinable(heads: list, tails: list, bs: int) -> tuple[list, list, list]:
    """(heads that end at a block end, tails that start at a block start and hold no newline, the
    rest): only the first two can ever be joined."""
    H, T, rest = [], [], []
    for h in heads:
        (H if h.data and (h.offset + len(h.data)) % bs == 0 else rest).append(h)
    for t in tails:
        (T if t.offset % bs == 0 and b"\n" not in t.data else rest).append(t)
    return H, T, rest


def context_before(h, index: _RecordIndex | None) -> bytes | None:
    """The whole lines before a head in its block: its own, or from the records when it has none."""
    nb = getattr(h, "neighbour", None)
    return index.before(h.offset) if nb is None and index is not None else nb


def context_after(t, index: _RecordIndex | None) -> bytes | None:
    """The lines after a tail in its block: its own, or from the records when it has none."""
    nb = getattr(t, "neighbour", None)
    return index.after(t.offset) if nb is None and index is not None else nb


def reassemble(heads: list, tails: list, records: list | None = None, *, block_size: int,
               scanner: Scanner | None = None, window: int = WINDOW, slack: int = SLACK,
               cadence: int = CADENCE) -> tuple[list[Piece], list]:
    bs = int(block_size)
    scanner = scanner or _default_scanner()
    fmts = scanner.formats
    index = _RecordIndex(records, bs) if records else None
    H, T, leftover = joinable(heads, tails, bs)

    # time keys to find candidate pairs without trying every head with every tail
    tail_keys = []        # (stamp of the next record, index) for tails that have one
    free_tails = []       # tails without a dated neighbour: tried with every head
    tail_side: dict[tuple[int, str], _Side] = {}
    for k, t in enumerate(T):
        after = context_after(t, index)
        stamp = None
        if after:
            for cf in fmts.values():
                side = _side(cf, after, nearest_last=False)
                tail_side[(k, cf.id)] = side
                if side.stamp is not None and stamp is None:
                    stamp = side.stamp
        if stamp is None:
            free_tails.append(k)
        else:
            tail_keys.append((stamp, k))
    tail_keys.sort()
    keys = [s for s, _ in tail_keys]

    def tails_near(stamp: int | None) -> list[int]:
        if stamp is None or not keys:
            return list(range(len(T)))
        out = list(free_tails)
        lo, hi = stamp - window - slack, stamp + window + slack
        for a, b in ((lo, hi), (lo - YEAR_S, hi - YEAR_S), (lo + YEAR_S, hi + YEAR_S)):
            i = bisect_left(keys, a)
            while i < len(keys) and keys[i] <= b:
                out.append(tail_keys[i][1])
                i += 1
        return sorted(set(out))

    candidates = []
    for hi_, h in enumerate(H):
        if h.format_id is not None and h.format_id in fmts:
            cands = [fmts[h.format_id]]
        else:
            cands = [cf for cf in fmts.values() if cf.first_bytes[h.data[0]] or cf.line_prefix is not None]
        before = context_before(h, index)
        sides = {cf.id: _side(cf, before, nearest_last=True) for cf in cands}
        ref = None
        for cf in cands:
            m = header_match(cf, h.data)
            ref = cf.stamp(m) if m is not None else None
            if ref is None:
                ref = sides[cf.id].stamp
            if ref is not None:
                break
        for k in tails_near(ref):
            t = T[k]
            best = None
            for cf in cands:
                got = _evaluate(h, t, cf, scanner, sides[cf.id], tail_side.get((k, cf.id)), window, slack,
                                cadence)
                if got is not None and (best is None or got[0] < best[0]):
                    best = got
            if best is not None:
                key, fid, data, _, _ = best
                candidates.append((key + (h.offset, t.offset), hi_, k, fid, data))

    candidates.sort(key=lambda c: c[0])
    used_h: set[int] = set()
    used_t: set[int] = set()
    joined: list[Piece] = []
    for _, hi_, k, fid, data in candidates:
        if hi_ in used_h or k in used_t:
            continue
        used_h.add(hi_)
        used_t.add(k)
        h, t = H[hi_], T[k]
        joined.append(Piece(h.offset, data, fid, "record",
                            spans=[(h.offset, len(h.data)), (t.offset, len(t.data) + 1)], joined=True))
    leftover.extend(h for i, h in enumerate(H) if i not in used_h)
    leftover.extend(t for i, t in enumerate(T) if i not in used_t)
    leftover.sort(key=lambda p: (p.offset, getattr(p, "kind", "") or ""))
    return keep_headed_tails(joined, leftover, scanner)


def _evaluate(h, t, cf, scanner: Scanner, before: _Side, after: _Side | None, window: int, slack: int,
              cadence: int, gap_factor: int = 1, unknown_step: int | None = None):
    """(score key, format id, joined bytes, time of the joined record, pairing rank) when head h
    and tail t make a consistent record. A step between records may be ``gap_factor`` times the longest step seen
    between the neighbouring records (plus slack), at least ``cadence``, at most ``window``; with no
    step seen, ``unknown_step`` (default ``window``)."""
    follow = getattr(t, "follow", None)
    if follow and ":" in follow:
        kind, fid = follow.split(":", 1)
        if kind != "header" or fid != cf.id:
            return None           # the tail is followed by another format's line, or by junk and a header
    data = h.data + t.data
    # the format's header must begin the record (after its line prefix), and no header may begin
    # in the tail or across the junction
    hits = scanner.matches(data, 0, len(data))
    outer = _outermost(hits)
    if not outer:
        return None
    s0, _, f0 = outer[0]
    if f0 != cf.id:
        return None
    if s0 != 0 and (cf.line_prefix is None or cf.line_prefix.match(data, 0, s0) is None):
        return None
    cut = len(h.data)
    for s, e, _ in outer[1:]:
        if e > cut:
            return None
    m = cf.full.fullmatch(data, s0)
    if m is None or not utf8_ok(data):
        return None
    if cf.header_rest is not None and cut >= m.end("hdr") and cf.header_rest.match(t.data):
        return None               # a whole header, then the rest of another (cut) header
    tj = cf.stamp(m)
    if after is None:
        after = _Side(None, [], None)
    # the records around a join are consecutive lines of one log: each step from the record
    # before the head to the joined one and on to the record after the tail is within the
    # log's own cadence there (the longest step between neighbouring lines), and within window
    gaps = [g for g in (before.gap, after.gap) if g is not None]
    step = min(window, max(cadence, gap_factor * max(gaps)) + slack) if gaps else (unknown_step or window)
    anchors = 0
    spread = 0
    if tj is not None:
        if before.stamp is not None:
            d = time_diff(before.stamp, tj)
            if d < -slack or d > step:
                return None
            anchors += 1
            spread += abs(d)
        if after.stamp is not None:
            d = time_diff(tj, after.stamp)
            if d < -slack or d > step:
                return None
            anchors += 1
            spread += abs(d)
    confirmed = 0
    after_confirmed = 0
    pg = cf.pg(m)
    if pg is not None:
        for side, is_before in ((before, True), (after, False)):
            got = _pg_check(pg, side, is_before)
            if got is None:
                return None
            confirmed += got
            after_confirmed += 0 if is_before else got
    # what speaks for this pairing itself: checks against the tail's side, and against the head's
    # side only when the header (time, pid, seq) is completed by the tail
    cut_header = cut < m.end("hdr")
    pair = (-(confirmed if cut_header else after_confirmed),
            -(anchors if cut_header else int(tj is not None and after.stamp is not None)))
    return (-confirmed, -anchors, spread), cf.id, data, tj, pair
