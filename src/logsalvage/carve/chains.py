"""Block-chain reassembly: records cut at block boundaries joined back in time linear in the image.

A deleted log survives as blocks scattered over the image. Each block of one log generation has
one successor in the file; a record cut at the end of block B (a *head*) continues at the start
of B's successor (a *tail*). ``reassemble_chains(heads, tails, ...)`` finds each head's successor
from the blocks' own summaries, not by trying every pair:

1. every head and tail is summarised once: the format, the time of the record the head starts
   (or of the last whole record before it in its block) and of the first record after the tail
   in its block, the PostgreSQL ``pid [seq-chunk]`` of the records at the edge, the longest step
   between neighbouring records (the log's cadence there);
2. the tails of each format are ordered by that time; a head looks only at the tails whose next
   record falls within ``window`` seconds of its own time (modulo a year, for year-less logs and
   the December→January roll-over): the blocks that can follow it in time order. Their number is
   bounded by the log's density, not by the image's size, so the whole step is n log n;
3. each candidate join is validated as ``reassemble`` does (``_evaluate``: the joined record's
   grammar, no header inside the tail, the time steps from the record before the head to the
   joined one and on to the record after the tail within the cadence, ``[seq-chunk]``
   continuity) and ranked by the evidence for the pairing itself: confirmed ``[seq-chunk]``
   continuity, then time anchors, counting the head's side only when the tail completes the
   header (a head that holds its whole header agrees with its own block whatever follows it);
4. a join is made only when the chain order is unambiguous: among the head's best-ranked tails,
   and among the best-ranked heads of that tail, every candidate gives the same record bytes.
   Identical candidates are copies (an older generation of the same file, a copy logrotate left):
   they join pairwise in offset order and give one record. Two candidates that would give
   different records leave both pieces unjoined: no join is better than a wrong one.

Tails with no dated record after them (the last block of a file, a record as long as a block)
cannot be placed in time: any head whose record they complete would do, so they are not joined
(trying them against every head would make the step quadratic and the join a guess). What cannot
be placed comes back in ``leftover`` (never dropped)
and ``stats`` says why (``ambiguous``, ``no-candidate``, ``undated_tails``); a tail that is a
whole line of its own and joins nothing comes back as a plain record among the joined.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field

from logsalvage.carve.pieces import Piece
from logsalvage.carve.reassemble import (
    CADENCE,
    SLACK,
    WINDOW,
    _default_scanner,
    _evaluate,
    _RecordIndex,
    _Side,
    _side,
    context_after,
    context_before,
    header_match,
    joinable,
    keep_headed_tails,
)
from logsalvage.carve.scan import YEAR_S, Scanner, time_diff

CHAIN_WINDOW = 3600     # how far in time a tail's next record may be from the head (sparse logs)
GAP_FACTOR = 3          # a step may be this many times the longest step between neighbouring records


@dataclass
class ChainStats:
    heads: int = 0
    tails: int = 0
    joined: int = 0
    evaluated: int = 0             # candidate pairs validated
    ambiguous: int = 0             # heads with candidates that would give different records
    no_candidate: int = 0          # heads with no tail that validates
    undated_tails: int = 0         # tails with no dated record after them: never placed
    reasons: dict = field(default_factory=dict)   # leftover offset -> why it was not joined

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "reasons"}


def reassemble_chains(heads: list, tails: list, records: list | None = None, *, block_size: int,
                      scanner: Scanner | None = None, window: int = CHAIN_WINDOW, slack: int = SLACK,
                      cadence: int = CADENCE, stats: ChainStats | None = None) -> tuple[list[Piece], list]:
    bs = int(block_size)
    scanner = scanner or _default_scanner()
    fmts = scanner.formats
    stats = stats if stats is not None else ChainStats()
    index = _RecordIndex(records, bs) if records else None
    H, T, leftover = joinable(heads, tails, bs)
    stats.heads, stats.tails = len(H), len(T)

    # --- 1. summaries ---------------------------------------------------------------------------
    tail_side: list[dict[str, _Side]] = []
    dated: dict[str, list[tuple[int, int]]] = defaultdict(list)   # format -> (stamp, tail index)
    for k, t in enumerate(T):
        after = context_after(t, index)
        follow = getattr(t, "follow", None) or ""
        only = follow.split(":", 1)[1] if follow.startswith("header:") else None
        sides: dict[str, _Side] = {}
        is_dated = False
        if after:
            for cf in fmts.values():
                if only is not None and cf.id != only:
                    continue
                side = _side(cf, after, nearest_last=False)
                sides[cf.id] = side
                if side.stamp is not None:
                    dated[cf.id].append((side.stamp, k))
                    is_dated = True
        tail_side.append(sides)
        if not is_dated:
            stats.undated_tails += 1
    keys = {}
    for fid, items in dated.items():
        items.sort()
        keys[fid] = [s for s, _ in items]

    def dated_near(fid: str, ref: int) -> list[int]:
        items = dated.get(fid)
        if not items:
            return []
        ks = keys[fid]
        out = []
        lo, hi = ref - slack, ref + window + slack
        for a, b in ((lo, hi), (lo - YEAR_S, hi - YEAR_S), (lo + YEAR_S, hi + YEAR_S)):
            i = bisect_left(ks, a)
            j = bisect_right(ks, b)
            out.extend(items[x][1] for x in range(i, j))
        return out

    # --- 2./3. candidates among the tails that can follow each head in time --------------------
    # a candidate: (rank, tail, format, data, time of the joined record); rank is
    # (-confirmed seq-chunk continuity, -time anchors) of what speaks for the pairing itself (the
    # tail's side; the head's side only when the tail completes the header), lower is better
    cands: dict[int, list[tuple]] = {}
    head_info = []

    def evaluate(hi_, k, cf, sides, found):
        stats.evaluated += 1
        got = _evaluate(H[hi_], T[k], cf, scanner, sides[cf.id], tail_side[k].get(cf.id), window, slack, cadence,
                        GAP_FACTOR, WINDOW)
        if got is not None:
            found.append((got[4], k, got[1], got[2], got[3]))

    for hi_, h in enumerate(H):
        if h.format_id is not None and h.format_id in fmts:
            formats = [fmts[h.format_id]]
        else:
            formats = [cf for cf in fmts.values() if cf.first_bytes[h.data[0]] or cf.line_prefix is not None]
        before = context_before(h, index)
        sides = {cf.id: _side(cf, before, nearest_last=True) for cf in formats}
        head_info.append((formats, sides))
        found: list[tuple] = []
        for cf in formats:
            m = header_match(cf, h.data)
            ref = cf.stamp(m) if m is not None else None
            if ref is None:
                ref = sides[cf.id].stamp
            if ref is None:
                continue
            own = m is not None and ref is not None
            before_gap = sides[cf.id].gap
            for k in dated_near(cf.id, ref):
                if own:
                    # the time step to the tail's next record, checked before the costly validation
                    side = tail_side[k].get(cf.id)
                    gaps = [g for g in (before_gap, side.gap if side else None) if g is not None]
                    step = min(window, max(cadence, GAP_FACTOR * max(gaps)) + slack) if gaps else WINDOW
                    d = time_diff(ref, side.stamp) if side is not None and side.stamp is not None else 0
                    if d < -slack or d > step:
                        continue
                evaluate(hi_, k, cf, sides, found)
        if found:
            cands[hi_] = found

    # --- 4. unambiguous joins --------------------------------------------------------------------
    tail_cands: dict[int, list] = defaultdict(list)
    for hi_, found in cands.items():
        for rank, k, fid, data, tj in found:
            tail_cands[k].append((rank, hi_, fid, data, tj))

    def after_of(k, fid):
        side = tail_side[k].get(fid)
        return (side.stamp, side.far) if side is not None else (None, None)

    def before_far(hi_, fid):
        side = head_info[hi_][1].get(fid)
        return side.far if side is not None else None

    def decide(found, timing):
        """The record the best-ranked candidates agree on, or that one log's chain order picks:
        ``timing(candidate)`` gives (time distance, far end of its known block, whether it overlaps
        a given far end); the nearest wins when every candidate giving another record is farther and
        does not overlap the nearest one's block. None when ambiguous."""
        best = min(c[0] for c in found)
        top = [c for c in found if c[0] == best]
        if len({c[3] for c in top}) == 1:
            return best, top[0][3]
        timed = []
        for c in top:
            got = timing(c)
            if got is None:
                return best, None
            timed.append((*got, c[3]))
        timed.sort(key=lambda x: x[0])
        d1, far1, _, data1 = timed[0]
        for d, _, overlaps, data in timed[1:]:
            if data != data1 and (d <= d1 or overlaps(far1)):
                return best, None
        return best, data1

    def head_timing(c):
        """From a head's side: the tail whose next record is nearest; a rival tail's block must
        begin after the whole known part of the nearest tail's block."""
        _, k, fid, _, tj = c
        stamp, far = after_of(k, fid)
        if stamp is None or tj is None:
            return None
        return time_diff(tj, stamp), far, lambda far1: time_diff(far1, stamp) < 0

    def tail_timing(c):
        """From a tail's side: the head whose joined record is latest before the tail's next
        record; a rival head's record must be older than the whole known part of its block."""
        _, hi_, fid, data, tj = c
        stamp = next((after_of(c2[1], fid)[0] for c2 in cands[hi_] if c2[3] == data), None)
        if stamp is None or tj is None:
            return None
        far = before_far(hi_, fid)
        return time_diff(tj, stamp), far if far is not None else tj, lambda far1: time_diff(tj, far1) < 0

    # a head chooses among the tails for which it is one of the best-ranked heads
    tail_best = {k: min(c[0] for c in found) for k, found in tail_cands.items()}
    head_pick = {}
    for hi_, found in cands.items():
        avail = [c for c in found if c[0] == tail_best[c[1]]]
        head_pick[hi_] = decide(avail, head_timing) if avail else (None, None)
    tail_pick = {k: decide(found, tail_timing) for k, found in tail_cands.items()}
    used_t: set[int] = set()
    joined: list[Piece] = []
    joined_h: set[int] = set()
    for hi_ in sorted(cands, key=lambda i: H[i].offset):
        best, data = head_pick[hi_]
        options = sorted((T[k].offset, k, fid) for rank, k, fid, d, _ in cands[hi_]
                         if rank == best and d == data and k not in used_t and tail_pick[k] == (best, data))
        if data is None or not options:
            stats.ambiguous += 1
            stats.reasons[H[hi_].offset] = "ambiguous"
            continue
        _, k, fid = options[0]
        used_t.add(k)
        joined_h.add(hi_)
        h, t = H[hi_], T[k]
        joined.append(Piece(h.offset, data, fid, "record",
                            spans=[(h.offset, len(h.data)), (t.offset, len(t.data) + 1)], joined=True))
    for hi_, h in enumerate(H):
        if hi_ not in joined_h:
            if hi_ not in cands:
                stats.no_candidate += 1
                stats.reasons.setdefault(h.offset, "no tail validates")
            leftover.append(h)
    leftover.extend(t for k, t in enumerate(T) if k not in used_t)
    stats.joined = len(joined)
    leftover.sort(key=lambda p: (p.offset, getattr(p, "kind", "") or ""))
    return keep_headed_tails(joined, leftover, scanner)
