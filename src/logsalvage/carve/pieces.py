"""Cutting one chunk of a raw image into validated records and the fragments of cut ones.

``carve_chunk(buf, base, owned_end, block_size=..., scanner=...)`` looks at ``buf`` (image bytes
from absolute offset ``base``; ``[base, owned_end)`` is the chunk's own range, the rest a margin
of at least ``max_record`` bytes) and returns a ``ChunkPieces``:

- ``records``: a header found by the scanner, a body that validates (the format's
  ``carve.validate`` regex: real month, day, time, host token, ``prog[pid]:`` for syslog; no NUL,
  no control character but TAB; valid UTF-8; at most ``max_record`` bytes) and its newline
  (``data`` excludes it). Junk before a header is not part of the record, and a record never
  carries a junk tail: a line stopped by NUL, a control byte or invalid UTF-8 is rejected.
- a line that crosses a block boundary is taken whole (a *natural join*: the blocks are
  contiguous in the image and usually in the file) only when the whole line validates, no header
  of any format begins in the part after the boundary, and what follows the line in the next
  block does not contradict it (the next line's header is of another format, or of the same
  format but more than ``NATURAL_BACK`` seconds earlier or ``NATURAL_AHEAD`` later, or the next
  PostgreSQL chunk of the same pid does not continue its ``[seq-chunk]``). Otherwise the line
  is cut: a ``head`` (header to block end) and, at the next block's start, a ``tail``.
- ``heads``: pieces that begin with a header and reach a block end without a newline, kind
  ``head``; and the trailing partial line of a block that is too short to hold a whole header
  (``Dec  3 03:4``), kind ``partial-header``, so a header cut by the block end can be rejoined.
- ``tails``: at a block start that is not the continuation of the previous block's line and does
  not begin a header, the bytes up to the first newline, when no header comes first and they are
  clean (no NUL or control byte, UTF-8 apart from a character cut at the block start).
  A line of a format with a ``line_prefix`` (an access log's address before the header) that
  begins exactly at a block start is a tail too, with its ``format_id``: its prefix may be the
  rest of a line cut at the end of another block. Reassembly joins it with that head, or keeps
  it as a record when no head validates with it.
- ``rejects``: byte ranges that looked like headers but failed validation, with a reason.

Heads carry ``neighbour``: the whole lines just before them in their block; tails carry
``neighbour``: the bytes after them in their block (the last line may be cut; its header still
dates it), and ``follow``: what comes right after the tail's newline (``block-end``, ``zeros``,
``text``, ``header:<format>`` or ``other-header:<format>``). ``reassemble`` checks timestamps
and ``[seq-chunk]`` against them: a pipeline that stores pieces must keep these two fields (at
most 2 KiB a piece), or pass the records to ``reassemble`` instead.

``records`` is a ``RecordList``: three parallel columns (``offsets``, ``data``, ``formats``) that
read as a sequence of ``Piece``; building a ``Piece`` per record is the slow part, so bulk users
(Arrow tables) should take the columns. Runs of whole valid lines are validated with one regex
call over a contiguous stretch and cut with ``bytes.split``; the Python work per record is a
few list appends.

Ownership, so that chunks of any size give the same pieces as one chunk: a record, head or
reject belongs to the chunk where its header starts (for formats with a ``line_prefix``, where
the signature starts); everything about a block boundary B (the head or partial header that ends
there, the tail that starts there, whether the line crosses it) is decided by the chunk that
owns the byte before B, with the margin in view; the boundary at offset 0 belongs to the chunk
at 0. ``base`` must be a multiple of ``block_size``.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, repeat
from operator import itemgetter

from logsalvage.carve.scan import Scanner, time_diff

NATURAL_BACK = 120          # a next line this much earlier than the crossing line contradicts the join
NATURAL_AHEAD = 7 * 86400   # ... or this much later
NEIGHBOUR_BYTES = 2048      # context kept with heads and tails

_NON_NUL = re.compile(rb"[^\x00]")
_CTRL_TO_NUL = bytes(0 if (c < 0x20 and c not in (0x09, 0x0A)) or c == 0x7F else c for c in range(256))
_PRINTABLE_REV = re.compile(rb"[\x20-\x7e]*")
_NL = 0x0A
_PLUS1 = (1).__add__
_OFFSET = itemgetter(0)


class Piece(tuple):
    """A record or a fragment: ``offset`` (absolute), ``data`` (without the newline),
    ``format_id``, ``kind`` (record, head, partial-header, tail), ``spans`` ((offset, length) of
    each part when rejoined), ``joined``, ``neighbour`` (heads: whole lines before it in its
    block; tails: whole lines after it), ``follow`` (tails: what follows the newline).

    A tuple underneath, so that millions of records cost little to make and to keep."""

    __slots__ = ()
    _FIELDS = ("offset", "data", "format_id", "kind", "spans", "joined", "neighbour", "follow")

    def __new__(cls, offset: int, data: bytes, format_id: str | None, kind: str = "record",
                spans: list[tuple[int, int]] | None = None, joined: bool = False,
                neighbour: bytes | None = None, follow: str | None = None):
        if kind == "record" and spans is None and not joined and neighbour is None and follow is None:
            return tuple.__new__(cls, (offset, data, format_id))   # a plain record: three fields
        return tuple.__new__(cls, (offset, data, format_id, kind, spans, joined, neighbour, follow))

    offset = property(itemgetter(0))
    data = property(itemgetter(1))
    format_id = property(itemgetter(2))
    kind = property(lambda self: self[3] if len(self) > 3 else "record")
    spans = property(lambda self: self[4] if len(self) > 3 else None)
    joined = property(lambda self: self[5] if len(self) > 3 else False)
    neighbour = property(lambda self: self[6] if len(self) > 3 else None)
    follow = property(lambda self: self[7] if len(self) > 3 else None)

    def __eq__(self, other):
        return tuple(self.__iter__()) == tuple(other.__iter__()) if isinstance(other, Piece) else NotImplemented

    def __ne__(self, other):
        eq = self.__eq__(other)
        return eq if eq is NotImplemented else not eq

    __hash__ = tuple.__hash__

    def __iter__(self):
        """All eight fields, defaults included."""
        yield from tuple.__iter__(self)
        if tuple.__len__(self) == 3:
            yield from ("record", None, False, None, None)

    def __repr__(self) -> str:
        parts = [f"{k}={v!r}" for k, v in zip(self._FIELDS, self)
                 if k in ("offset", "data", "format_id", "kind") or v not in (None, False)]
        return f"Piece({', '.join(parts)})"

    def __getnewargs__(self):
        return tuple(self.__iter__())

    def replace(self, **changes) -> Piece:
        values = dict(zip(self._FIELDS, self))
        values.update(changes)
        return Piece(**values)


_NEW = tuple.__new__


@dataclass(slots=True)
class Reject:
    offset: int
    data: bytes                     # the examined bytes (at most 512)
    format_id: str | None
    reason: str
    length: int = 0                 # how far the examined line ran (>= len(data))


class RecordList(Sequence):
    """Whole records as three parallel columns (``offsets``, ``data``, ``formats``): cheap to
    build by the million and to hand to Arrow as they are; seen as a sequence of ``Piece``."""

    __slots__ = ("data", "formats", "offsets")

    def __init__(self, pieces=()):
        self.offsets: list[int] = []
        self.data: list[bytes] = []
        self.formats: list[str] = []
        self.extend(pieces)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [Piece(o, d, f) for o, d, f in zip(self.offsets[i], self.data[i], self.formats[i])]
        return Piece(self.offsets[i], self.data[i], self.formats[i])

    def __iter__(self):
        return map(_NEW, repeat(Piece), zip(self.offsets, self.data, self.formats))

    def __eq__(self, other):
        if isinstance(other, RecordList):
            return (self.offsets, self.data, self.formats) == (other.offsets, other.data, other.formats)
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    def __add__(self, other) -> list:
        return list(self) + list(other)

    def __iadd__(self, other):
        self.extend(other)
        return self

    def __repr__(self) -> str:
        return f"RecordList({list(self)!r})"

    def append(self, p) -> None:
        self.offsets.append(p.offset)
        self.data.append(p.data)
        self.formats.append(p.format_id)

    def extend(self, pieces) -> None:
        if isinstance(pieces, RecordList):
            self.offsets += pieces.offsets
            self.data += pieces.data
            self.formats += pieces.formats
        else:
            for p in pieces:
                self.append(p)


@dataclass
class ChunkPieces:
    records: RecordList = field(default_factory=RecordList)
    heads: list[Piece] = field(default_factory=list)
    tails: list[Piece] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)


def utf8_ok(b: bytes, *, cut_start: bool = False, cut_end: bool = False) -> bool:
    """Valid UTF-8; a character cut by a block boundary at the start or end is allowed."""
    if b.isascii():
        return True
    if cut_start:
        i = 0
        while i < 3 and i < len(b) and 0x80 <= b[i] < 0xC0:
            i += 1
        b = b[i:]
    try:
        b.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return cut_end and exc.reason == "unexpected end of data" and exc.end == len(b)


def continues(a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
    """PostgreSQL syslog chunk b directly follows a of the same pid."""
    return (b[1] == a[1] and b[2] == a[2] + 1) or (b[1] == a[1] + 1 and b[2] == 1)


def _reason(stop: int) -> str:
    return "nul" if stop == 0 else "control" if stop < 0x20 or stop == 0x7F else "grammar"


def carve_chunk(buf: bytes, base: int, owned_end: int, *, block_size: int, scanner: Scanner,
                max_record: int = 65536) -> ChunkPieces:
    bs = int(block_size)
    if bs <= 0 or base % bs:
        raise ValueError(f"chunk base {base} is not a multiple of the block size {bs}")
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    n = len(buf)
    own = max(0, min(owned_end - base, n))
    out = ChunkPieces()
    heads, rejects = out.heads, out.rejects
    r_off, r_data, r_fmt = out.records.offsets, out.records.data, out.records.formats
    fmts = scanner.formats
    hpos, hfid = scanner.find_arrays(buf, 0, n)
    nhits = len(hpos)
    find = buf.find
    continued: set[int] = set()   # boundaries crossed by an accepted record
    headed: set[int] = set()      # boundaries at which a head from phase 1 ends
    ctx = _Ctx(buf, bs, hpos, hfid, fmts)
    bad_at = ctx.bad_at
    cur = 0
    last_fid = None
    cf = hmatch = prefix = runmatch = None
    batch = bs <= max_record
    run_end = min(n, own + max_record + 1)
    nul_at = -1
    nown = bisect_left(hpos, own)
    i = -1

    # --- phase 1: every owned header ---------------------------------------------------------
    while True:
        i += 1
        if i >= nown:
            break
        rel = hpos[i]
        if rel < cur:
            i = bisect_left(hpos, cur, i, nown) - 1
            continue                       # inside a record already taken
        fid = hfid[i]
        if fid is not last_fid:
            last_fid = fid
            cf = fmts[fid]
            hmatch = cf.header_fast.match
            prefix = cf.line_prefix
            runmatch = cf.run.match if prefix is None and batch else None
        bnd = rel - rel % bs + bs           # the first block boundary after the header start
        if runmatch is not None:
            # the usual case: whole valid lines one after the other, across the block boundaries
            # of a contiguous stretch, taken in one go with the same checks as one by one (header,
            # newline, no control byte, UTF-8, at most max_record; a line crossing a boundary only
            # where the natural join holds)
            if nul_at < rel:                # a NUL ends any line: no run goes past the next one
                nul_at = find(b"\0", rel, run_end)
                if nul_at < 0:
                    nul_at = run_end
            rm = runmatch(buf, rel, nul_at)
            if rm is not None:
                stop = rm.end()
                bad = bad_at(rel, stop)
                if bad >= 0:
                    stop = buf.rfind(b"\n", rel, bad) + 1
                if stop > rel:
                    run = buf[rel:stop - 1]
                    if not run.isascii():
                        try:
                            run.decode("utf-8")
                        except UnicodeDecodeError as exc:
                            stop = buf.rfind(b"\n", rel, rel + exc.start) + 1
                            run = buf[rel:stop - 1]
                if stop > rel:
                    lines = run.split(b"\n")
                    offs = list(accumulate(map(_PLUS1, map(len, lines[:-1])), initial=rel))
                    keep = len(lines)
                    if stop > own:                          # lines that start in the margin
                        keep = bisect_left(offs, own)
                    if stop - rel > max_record and max(map(len, lines)) > max_record:
                        keep = min(keep, next(k for k, x in enumerate(lines) if len(x) > max_record))
                    if stop > bnd:
                        # the lines that cross a block boundary
                        b = bnd
                        last = offs[keep - 1] + len(lines[keep - 1]) if keep else rel
                        while b <= last:
                            k = bisect_left(offs, b, 0, keep)
                            if k < keep and offs[k] == b:
                                b += bs                     # a line begins at the boundary
                                continue
                            k -= 1
                            e = offs[k] + len(lines[k])
                            if not ctx.natural(offs[k], offs[k], e, b, cf, e + 1):
                                keep = k
                                break
                            while b <= e:
                                continued.add(b)
                                b += bs
                    if keep:
                        if keep < len(lines):
                            del lines[keep:], offs[keep:]
                        r_off.extend(map((base).__add__, offs) if base else offs)
                        r_data += lines
                        r_fmt += repeat(fid, keep)
                        cur = offs[-1] + len(lines[-1]) + 1
                        i -= 1
                        continue
        start = rel if prefix is None else _line_start(buf, rel, cf, bs)
        lim = start + max_record + 1
        lim = min(lim, n)
        hm = hmatch(buf, rel, lim)
        if hm is None:
            # a header cut by the block end is handled with the block's trailing fragment
            if bnd - rel <= cf.max_header and bnd <= n and find(b"\n", rel, bnd) < 0:
                continue
            nl = find(b"\n", rel, min(lim, rel + 512))
            stop = nl if nl >= 0 else min(lim, rel + 512)
            rejects.append(Reject(base + start, buf[start:stop], fid, "header", stop - start))
            continue
        he = hm.end()
        nl = find(b"\n", he, lim)
        e = nl if nl >= 0 else lim
        bad = bad_at(he, e)
        if bad >= 0:
            e = bad
        if e < bnd:
            # the line ends (or breaks) inside its block
            if bad < 0:
                if nl >= 0:
                    data = buf[start:nl]
                    blk = start - start % bs
                    if (data.isascii() or utf8_ok(data)) and prefix is not None and \
                            _PRINTABLE_REV.fullmatch(buf, blk, start) is not None:
                        # the line seems to begin in the first bytes of its block, but what precedes
                        # its header (an address) may be the rest of a line cut at the end of
                        # another block: a tail from the block start that reassembly joins with that
                        # head, or keeps as a record when it has no head to join
                        follow, after = ctx.after(nl + 1, min(n, blk + bs))
                        out.tails.append(Piece(base + blk, buf[blk:nl], fid, "tail", neighbour=after, follow=follow))
                        cur = nl + 1
                    elif data.isascii() or utf8_ok(data):
                        r_off.append(base + start)
                        r_data.append(data)
                        r_fmt.append(fid)
                        cur = nl + 1
                    else:
                        rejects.append(Reject(base + start, data[:512], fid, "utf8", len(data)))
                elif lim == n and n - start <= max_record:
                    # the image ends inside the block: keep what there is as a head
                    data = buf[start:n]
                    if utf8_ok(data, cut_end=True):
                        heads.append(Piece(base + start, data, fid, "head", neighbour=ctx.before(start)))
                        cur = n
                else:
                    rejects.append(Reject(base + start, buf[start:start + 512], fid, "too-long", e - start))
                continue
            rejects.append(Reject(base + start, buf[start:min(e + 1, start + 512)], fid, _reason(buf[e]),
                                  e + 1 - start))
            continue
        # the line reaches the block boundary: a natural join, or a head and (maybe) a tail
        if bad < 0 and nl >= 0 and ctx.natural(start, rel, nl, bnd, cf, lim):
            r_off.append(base + start)
            r_data.append(buf[start:nl])
            r_fmt.append(fid)
            b = bnd
            while b <= nl:
                continued.add(b)
                b += bs
            cur = nl + 1
            continue
        bnd = min(bnd, n)
        data = buf[start:bnd]
        if not utf8_ok(data, cut_end=True):
            rejects.append(Reject(base + start, data[:512], fid, "utf8", len(data)))
            continue
        sig = cf.signature.match(buf, rel, bnd)
        heads.append(Piece(base + start, data, fid, "head" if sig is not None else "partial-header",
                           neighbour=ctx.before(start)))
        headed.add(bnd)
        cur = bnd

    # --- phase 2: block boundaries owned by this chunk ----------------------------------------
    maxh = max((f.max_header for f in fmts.values()), default=128)
    tails = out.tails
    for bnd in _boundaries(buf, bs, 0 if base == 0 else bs, own):
        if bnd in continued:
            continue
        if bnd and bnd not in headed:
            c = buf[bnd - 1]
            if 0x20 <= c < 0x7F:
                _partial_header(ctx, base, bnd, maxh, heads)
        if bnd >= n or buf[bnd] == 0:
            continue
        j = bisect_left(hpos, bnd)
        if j < nhits and hpos[j] == bnd:
            continue                       # the block begins with a header
        blk_end = min(n, bnd + bs)
        nl = find(b"\n", bnd, blk_end)
        if nl < 0 or (j < nhits and hpos[j] < nl) or bad_at(bnd, nl) >= 0:
            continue
        data = buf[bnd:nl]
        if not utf8_ok(data, cut_start=True):
            continue
        follow, after = ctx.after(nl + 1, blk_end)
        tails.append(Piece(base + bnd, data, None, "tail", neighbour=after, follow=follow))
    heads.sort(key=_OFFSET)
    tails.sort(key=_OFFSET)
    return out


def _boundaries(buf: bytes, bs: int, first: int, last: int) -> list[int]:
    """The block boundaries in [first, last] worth a look: those with a non-NUL byte on either
    side (found from the first and last byte of every block, read as strided views)."""
    view = memoryview(buf)
    firsts = view[0::bs].tobytes()                   # byte at k*bs
    lasts = view[bs - 1::bs].tobytes()               # byte at (k+1)*bs - 1
    ks = {m.start() for m in _NON_NUL.finditer(firsts)}
    ks.update(m.start() + 1 for m in _NON_NUL.finditer(lasts))
    lo, hi = -(-first // bs), last // bs
    return [k * bs for k in sorted(ks) if lo <= k <= hi]


def _line_start(buf: bytes, rel: int, cf, bs: int) -> int:
    """Where the line of a signature found mid-line begins (what precedes it validated by the
    format's line_prefix; junk before is left out). Never before the block of the signature."""
    lo = max((rel // bs) * bs, rel - cf.max_header)
    nl = buf.rfind(b"\n", lo, rel)
    if nl >= 0:
        lo = nl + 1
    m = cf.line_prefix.search(buf, lo, rel)
    return m.start() if m is not None else rel


def _partial_header(ctx: _Ctx, base: int, bnd: int, maxh: int, heads: list[Piece]) -> None:
    """The trailing fragment of the block ending at bnd, when it may be a header cut short."""
    buf = ctx.buf
    blk = bnd - ctx.bs
    lo = max(blk, bnd - maxh - 1)
    window = buf[lo:bnd][::-1]
    k = _PRINTABLE_REV.match(window).end()
    if k == len(window) and lo > blk:
        return                              # printable further back than any header: not a header
    s = bnd - k
    hpos = ctx.hpos
    j = bisect_left(hpos, s)
    fid = None
    if j < len(hpos) and hpos[j] < bnd:
        s = hpos[j]                         # junk before a header is left out
        fid = ctx.hfid[j]
    if s >= bnd:
        return
    heads.append(Piece(base + s, buf[s:bnd], fid, "partial-header", neighbour=ctx.before(s)))


def _hit_at(hpos: list[int], x: int) -> bool:
    j = bisect_left(hpos, x)
    return j < len(hpos) and hpos[j] == x


class _Ctx:
    """Look-ups around a position: hits, neighbouring lines, natural-join checks."""

    __slots__ = ("bs", "buf", "fmts", "hfid", "hpos")

    def __init__(self, buf, bs, hpos, hfid, fmts):
        self.buf, self.bs, self.hpos, self.hfid, self.fmts = buf, bs, hpos, hfid, fmts

    def bad_at(self, a: int, b: int) -> int:
        """The first NUL or control byte (all but TAB and newline) in [a, b), or -1."""
        buf = self.buf
        z = buf.find(b"\0", a, b)
        if z >= 0:
            b = z
        k = buf[a:b].translate(_CTRL_TO_NUL).find(b"\0")
        return a + k if k >= 0 else z

    def before(self, s: int) -> bytes | None:
        """Whole lines right before s in its block (up to NEIGHBOUR_BYTES)."""
        buf = self.buf
        blk = (s // self.bs) * self.bs
        if s <= blk or buf[s - 1] != _NL:
            return None
        lo = max(blk, s - 1 - NEIGHBOUR_BYTES)
        # whole lines only: the first one counts when the block begins with a header (the byte
        # before the block may be in another chunk, so it is never looked at)
        if lo > blk or not _hit_at(self.hpos, blk):
            nl = buf.find(b"\n", lo, s - 1)
            if nl < 0:
                return None
            lo = nl + 1
        return buf[lo:s - 1] if lo < s - 1 else None

    def after(self, nxt: int, blk_end: int) -> tuple[str, bytes | None]:
        """What follows a tail's newline at nxt, and the bytes there up to the block end (at most
        NEIGHBOUR_BYTES; the last line may be cut, its header still dates it)."""
        buf = self.buf
        if nxt >= blk_end:
            return "block-end", None
        hi = min(blk_end, nxt + NEIGHBOUR_BYTES, len(buf))
        lines = buf[nxt:hi].rstrip(b"\x00") or None
        first_nl = buf.find(b"\n", nxt, blk_end)
        line_end = first_nl if first_nl >= 0 else blk_end
        j = bisect_left(self.hpos, nxt)
        if j < len(self.hpos) and self.hpos[j] < line_end:
            fid = self.hfid[j]
            if self.hpos[j] == nxt or self.fmts[fid].line_prefix is not None:
                return f"header:{fid}", lines
            return f"other-header:{fid}", lines
        if lines is None:
            return "zeros", None
        return "text", lines

    def natural(self, start: int, rel: int, e: int, bnd: int, cf, lim: int) -> bool:
        """May the line [start, e) that crosses bnd be taken whole?"""
        buf = self.buf
        data = buf[start:e]
        if not (data.isascii() or utf8_ok(data)):
            return False
        hpos = self.hpos
        j = bisect_left(hpos, bnd)
        if j < len(hpos) and hpos[j] < e:
            return False                    # a header begins after the boundary, inside the line
        nxt = e + 1
        blk_end = (e // self.bs + 1) * self.bs
        n = len(buf)
        if nxt >= blk_end or nxt >= n:
            return True
        first_nl = buf.find(b"\n", nxt, min(n, blk_end))
        line_end = first_nl if first_nl >= 0 else min(n, blk_end)
        if j < len(hpos) and hpos[j] < line_end:
            # the header of the next line (j is the first hit at or after bnd, and none is before e)
            fid2 = self.hfid[j]
            if fid2 != cf.id:
                return False
            if hpos[j] != nxt and cf.line_prefix is None:
                return False                # junk between the line and the next header
            m = cf.header.match(buf, rel, lim)
            m2 = cf.header.match(buf, hpos[j], line_end)
            if m is None or m2 is None:
                return True
            (t1, p1), (t2, p2) = cf.facts(m), cf.facts(m2)
            if t1 is not None and t2 is not None:
                d = time_diff(t1, t2)
                if d < -NATURAL_BACK or d > NATURAL_AHEAD:
                    return False
            if p1 is not None and p2 is not None and p1[0] == p2[0] and not continues(p1, p2):
                return False
        return True
