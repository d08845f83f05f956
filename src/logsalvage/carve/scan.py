"""Finding record headers in raw bytes: every format whose definition declares a carve signature.

``Scanner(specs).find(buf, start, end)`` returns ``[(offset, format_id), ...]``: the offsets in
``[start, end)`` where a format's ``carve.signature`` matches, sorted and deduplicated. A match
may run past ``end`` (up to ``SLACK`` bytes), so a header that starts in a chunk's own range is
found by that chunk whatever follows. A header is reported only where it begins: a match that
starts strictly inside an earlier-starting match (the ``Oct 20 10:20:44`` inside a vsftpd
``Fri Oct 20 10:20:44 2017 [pid 1] `` header, say) is not a header of its own.

Two backends give identical results:

- **hyperscan** (PyPI ``hyperscan``) with ``HS_FLAG_SOM_LEFTMOST``: one pass over the buffer for
  all signatures at once, several GB/s, about 0.2-0.3 µs of Python per match;
- a pure-Python **literal-first** fallback, used when hyperscan is not importable: a fixed part
  that every header of the format contains (``carve.anchor``, by default the ``:mm:ss`` of its
  time, whose first character is a literal, so ``re`` skips to it at C speed) is searched, and
  the signature is then tried at the header starts it implies (``carve.anchor_offsets``: how far
  the anchor lies from the header start). A format without anchor offsets is searched with its
  whole signature (correct, only slower).

Each format also carries what the carver validates a record with, from its definition's
``carve:`` section (all optional but ``signature``):

- ``validate``: the header a record must begin with, as a regex (bytes), with named groups for
  the time (``mon`` or ``mnum``, ``day``, ``H``, ``M``, ``S``) and, for syslog, ``pid`` and
  PostgreSQL's ``pgseq``/``pgchunk``; the body after it is every format's: no NUL, no control
  byte but TAB, valid UTF-8, up to the newline. Without it the signature is the header.
- ``anchor_offsets`` (and ``anchor``, by default the time's ``:mm:ss``): the literal-first plan above;
- ``line_prefix``: what stands on the line before the signature (an access log's client
  address), matched back from the signature within the signature's block;
- ``max_header``: the longest header, for headers cut by a block end (default 128);
- ``header_rest``: what a tail beginning inside a cut header looks like (``ostgres[9]: ``).

``find`` also exists as ``find_arrays`` (two parallel lists), what the carver walks.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from operator import le

try:  # the fast backend; the literal-first fallback below needs nothing
    import hyperscan as _hs
except ImportError:  # pragma: no cover - exercised by forcing backend="python"
    _hs = None

SLACK = 1024                   # how far past ``end`` a header that starts before ``end`` may run
DEFAULT_ANCHOR = r":\d\d:\d\d"  # the minutes and seconds of a time: in every shipped signature
MONTHS = {m: i for i, m in enumerate(
    (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"))}
_CUM_DAYS = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)
YEAR_S = 365 * 86400
# a record body: anything but NUL, newline and the other C0 controls (TAB allowed); UTF-8 is
# checked apart, on the bytes
BODY = rb"[^\x00-\x08\x0a-\x1f\x7f]*"


def hyperscan_available() -> bool:
    return _hs is not None


@dataclass
class CarveFormat:
    """What the carver needs of one format definition, compiled for bytes."""

    id: str
    signature: re.Pattern[bytes]
    header: re.Pattern[bytes]             # carve.validate: the header (named groups for time, pid...)
    header_fast: re.Pattern[bytes]        # the same without the named groups (the hot path)
    full: re.Pattern[bytes]               # header and body, for fullmatch on a whole line
    run: re.Pattern[bytes]                # one or more whole lines, each a header and a body
    anchor: str | None
    anchor_offsets: tuple[int, ...]
    first_bytes: bytes                    # 256-byte table: 1 where a header can begin with that byte
    line_prefix: re.Pattern[bytes] | None  # what precedes the signature on its line, matched to its end
    max_header: int
    groups: dict[str, int] = field(default_factory=dict)
    header_rest: re.Pattern[bytes] | None = None  # what a tail starting inside a cut header looks like

    def facts(self, m: re.Match) -> tuple[int | None, tuple[int, int, int] | None]:
        """(stamp, pg) of a validated match in one look: see ``stamp`` and ``pg``."""
        g = self.groups
        if "S" not in g:
            return None, None
        pgn = "pgseq" in g and "pid" in g
        if "mon" in g:
            vals = m.group("mon", "day", "H", "M", "S", "pid", "pgseq", "pgchunk") if pgn else \
                m.group("mon", "day", "H", "M", "S")
            month = MONTHS.get(vals[0])
        else:
            vals = m.group("mnum", "day", "H", "M", "S")
            month = int(vals[0]) - 1 if vals[0] else None
        try:
            stamp = ((_CUM_DAYS[month] + int(vals[1]) - 1) * 86400 + int(vals[2]) * 3600
                     + int(vals[3]) * 60 + int(vals[4]))
        except (IndexError, TypeError, ValueError):
            stamp = None
        pg = None
        if pgn and vals[6] is not None and vals[5] is not None:
            pg = int(vals[5]), int(vals[6]), int(vals[7])
        return stamp, pg

    def stamp(self, m: re.Match) -> int | None:
        """Seconds within a (non-leap) year of a validated match: enough to compare neighbours
        minutes apart, year-less formats included (differences are taken modulo a year)."""
        try:
            if "mon" in self.groups:
                mon, day, hh, mm, ss = m.group("mon", "day", "H", "M", "S")
                month = MONTHS[mon]
            else:
                mon, day, hh, mm, ss = m.group("mnum", "day", "H", "M", "S")
                month = int(mon) - 1
            return (_CUM_DAYS[month] + int(day) - 1) * 86400 + int(hh) * 3600 + int(mm) * 60 + int(ss)
        except (IndexError, KeyError, TypeError, ValueError):
            return None

    def pg(self, m: re.Match) -> tuple[int, int, int] | None:
        """(pid, seq, chunk) of a PostgreSQL syslog line, else None."""
        if "pgseq" not in self.groups:
            return None
        pid, seq, chunk = m.group("pid", "pgseq", "pgchunk")
        if seq is None or pid is None:
            return None
        return int(pid), int(seq), int(chunk)


def time_diff(a: int, b: int) -> int:
    """b - a in seconds, for year-less stamps: the representative nearest zero modulo a year."""
    d = (b - a) % YEAR_S
    return d - YEAR_S if d > YEAR_S // 2 else d


def _first_bytes(pattern: str) -> bytes:
    """Bytes a match of ``pattern`` can begin with (all 256 when that cannot be worked out)."""
    try:
        from re import _parser  # type: ignore[attr-defined]
        from re._constants import (  # type: ignore
            BRANCH,
            CATEGORY,
            CATEGORY_DIGIT,
            IN,
            LITERAL,
            MAX_REPEAT,
            MIN_REPEAT,
            RANGE,
            SUBPATTERN,
        )

        def first(items) -> set[int] | None:
            if not items:
                return None
            op, av = items[0]
            if op == LITERAL:
                return {av}
            if op == IN:
                out: set[int] = set()
                for iop, iav in av:
                    if iop == LITERAL:
                        out.add(iav)
                    elif iop == RANGE:
                        out.update(range(iav[0], iav[1] + 1))
                    elif iop == CATEGORY and iav == CATEGORY_DIGIT:
                        out.update(range(0x30, 0x3A))
                    else:
                        return None
                return out
            if op == SUBPATTERN:
                return first(list(av[-1]))
            if op == BRANCH:
                out = set()
                for alt in av[1]:
                    f = first(list(alt))
                    if f is None:
                        return None
                    out |= f
                return out
            if op in (MAX_REPEAT, MIN_REPEAT) and av[0] >= 1:
                return first(list(av[2]))
            return None

        got = first(list(_parser.parse(pattern)))
    except Exception:  # noqa: BLE001 - a private module: any surprise means "could be anything"
        got = None
    if got is None:
        return bytes([1]) * 256
    return bytes(1 if i in got else 0 for i in range(256))


def compile_format(spec) -> CarveFormat | None:
    """The carve information of a FormatSpec (None when it declares no signature)."""
    carve = spec.carve or {}
    sig = carve.get("signature")
    if not sig:
        return None
    sig_b = sig.encode("utf-8")
    validate = carve.get("validate")
    # without a header regex of its own a format's header is its signature
    hdr_b = validate.encode("utf-8") if validate else sig_b
    prefix = carve.get("line_prefix")
    offsets = carve.get("anchor_offsets")
    hdr = re.compile(hdr_b)
    return CarveFormat(
        id=spec.id,
        signature=re.compile(sig_b),
        header=hdr,
        header_fast=re.compile(_NAMED.sub(b"(?:", hdr_b)),
        full=re.compile(b"(?P<hdr>" + hdr_b + b")" + BODY),
        run=re.compile(b"(?:(?:" + _NAMED.sub(b"(?:", hdr_b) + rb")[^\n]*\n)+"),
        anchor=str(carve.get("anchor", DEFAULT_ANCHOR)) if offsets else None,
        anchor_offsets=tuple(int(o) for o in offsets) if offsets else (),
        first_bytes=_first_bytes(sig),
        line_prefix=re.compile(b"(?:" + prefix.encode("utf-8") + rb")\Z") if prefix else None,
        max_header=int(carve.get("max_header", 128)),
        groups=dict(hdr.groupindex),
        header_rest=re.compile(carve["header_rest"].encode("utf-8")) if carve.get("header_rest") else None,
    )


_NAMED = re.compile(rb"\(\?P<\w+>")


class Scanner:
    """Candidate header starts of every carvable format in a bytes buffer."""

    def __init__(self, specs: Iterable, *, backend: str = "auto"):
        self.formats: dict[str, CarveFormat] = {}
        for spec in specs:
            cf = compile_format(spec)
            if cf is not None:
                self.formats[cf.id] = cf
        self.ids = sorted(self.formats)
        if backend == "auto":
            backend = "hyperscan" if _hs is not None else "python"
        if backend == "hyperscan" and _hs is None:
            raise RuntimeError("hyperscan is not installed (pip install hyperscan)")
        if backend not in ("hyperscan", "python"):
            raise ValueError(f"unknown scanner backend {backend!r}")
        self.backend = backend
        self._db = None
        if backend == "hyperscan" and self.ids:
            self._compile_hyperscan()
        # fallback plan: anchor regex -> [(offset, format), ...] ordered by offset
        plans: dict[str, list[tuple[int, CarveFormat]]] = {}
        self._plain: list[CarveFormat] = []
        for f in self.ids:
            cf = self.formats[f]
            if cf.anchor is None:
                self._plain.append(cf)
                continue
            for off in cf.anchor_offsets:
                plans.setdefault(cf.anchor, []).append((off, cf))
        self._anchors = [(re.compile(a.encode("utf-8")), sorted(p, key=lambda x: (x[0], x[1].id)),
                          max(o for o, _ in p)) for a, p in sorted(plans.items())]

    def __getstate__(self):  # hyperscan objects do not pickle: rebuild them where unpickled
        state = dict(self.__dict__)
        state.pop("_db", None)
        state.pop("_scratch", None)
        state["_db"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.backend == "hyperscan" and self.ids:
            if _hs is None:
                self.backend = "python"
                return
            self._compile_hyperscan()

    def _compile_hyperscan(self) -> None:
        db = _hs.Database(mode=_hs.HS_MODE_BLOCK)
        db.compile(expressions=[self.formats[f].signature.pattern for f in self.ids],
                   ids=list(range(len(self.ids))), elements=len(self.ids),
                   flags=[_hs.HS_FLAG_SOM_LEFTMOST] * len(self.ids))
        self._db = db
        self._scratch = _hs.Scratch(db)

    # --- matching ---------------------------------------------------------------------------
    def matches(self, buf, start: int = 0, end: int | None = None) -> list[tuple[int, int, str]]:
        """Every signature match ``(start, end, format_id)`` that begins in ``[start, end)`` and
        ends within ``end + SLACK`` (and the buffer), nested ones included; sorted, one per start
        and format (the longest)."""
        raw = self._raw(buf, start, end)
        if raw is None:
            return []
        S, E, I, end = raw
        ids = self.ids
        best: dict[tuple[int, int], int] = {}
        for s, e, i in zip(S, E, I):
            if s < end and best.get((s, i), -1) < e:
                best[(s, i)] = e
        return sorted((s, e, ids[i]) for (s, i), e in best.items())

    def _raw(self, buf, start: int, end: int | None):
        """(starts, ends, format indexes, end) of the backend's raw matches beginning in [start, end);
        None when there is nothing to scan."""
        n = len(buf)
        end = n if end is None else min(end, n)
        if start >= end or not self.ids:
            return None
        lim = min(n, end + SLACK)
        if self.backend == "hyperscan":
            return (*self._hs_raw(buf, start, lim), end)
        return (*self._py_raw(buf, start, end, lim), end)

    def find(self, buf, start: int = 0, end: int | None = None) -> list[tuple[int, str]]:
        """Header starts ``(offset, format_id)`` in ``[start, end)``, sorted, deduplicated, with
        headers nested inside an earlier-starting header dropped."""
        pos, fids = self.find_arrays(buf, start, end)
        return list(zip(pos, fids))

    def find_arrays(self, buf, start: int = 0, end: int | None = None) -> tuple[list[int], list[str]]:
        """``find`` as two parallel lists (offsets, format ids): what the carver walks."""
        raw = self._raw(buf, start, end)
        if raw is None:
            return [], []
        S, E, I, end = raw
        ids = self.ids
        # the usual case: starts in order and no match overlapping the next one
        nxt = islice(S, 1, None)
        if all(map(le, S, nxt)) and all(map(le, E, islice(S, 1, None))):
            k = bisect_left(S, end)
            if k < len(S):
                del S[k:], I[k:]
            if len(ids) == 1:
                return S, [ids[0]] * len(S)
            return S, list(map(ids.__getitem__, I))
        best: dict[tuple[int, int], int] = {}
        for s, e, i in zip(S, E, I):
            if s < end and best.get((s, i), -1) < e:
                best[(s, i)] = e
        out = _outermost(sorted((s, e, ids[i]) for (s, i), e in best.items()))
        return [m[0] for m in out], [m[2] for m in out]

    def _hs_raw(self, buf, start: int, lim: int) -> tuple[list[int], list[int], list[int]]:
        S: list[int] = []
        E: list[int] = []
        I: list[int] = []
        sa, ea, ia = S.append, E.append, I.append

        def on_match(i, frm, to, flags, ctx):
            sa(frm)
            ea(to)
            ia(i)

        self._db.scan(memoryview(buf)[start:lim], match_event_handler=on_match, scratch=self._scratch)
        if start:
            S = [s + start for s in S]
            E = [e + start for e in E]
        return S, E, I

    def _py_raw(self, buf, start: int, end: int, lim: int) -> tuple[list[int], list[int], list[int]]:
        found: dict[tuple[int, int], int] = {}
        index = {f: k for k, f in enumerate(self.ids)}
        for anchor, plan, back in self._anchors:
            # an anchor at h is the anchor of headers starting at h - offset; those that start in
            # [start, end) have their anchor in [start, end + back)
            plan_i = [(off, cf.first_bytes, cf.signature.match, index[cf.id]) for off, cf in plan]
            for m in anchor.finditer(buf, start, min(lim, end + back + 64)):
                h = m.start()
                for off, first, match, k in plan_i:
                    s = h - off
                    if s < start or s >= end or not first[buf[s]]:
                        continue
                    mm = match(buf, s, lim)
                    if mm is not None:
                        key = (s, k)
                        if found.get(key, -1) < mm.end():
                            found[key] = mm.end()
        for cf in self._plain:
            pos = start
            sig = cf.signature
            k = index[cf.id]
            while True:
                mm = sig.search(buf, pos, lim)
                if mm is None or mm.start() >= end:
                    break
                s = mm.start()
                if found.get((s, k), -1) < mm.end():
                    found[(s, k)] = mm.end()
                pos = s + 1
        items = sorted((s, k, e) for (s, k), e in found.items())
        return [x[0] for x in items], [x[2] for x in items], [x[1] for x in items]


def _outermost(ms: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    out = []
    reach = -1          # the furthest end of matches that started before the current start
    i, n = 0, len(ms)
    while i < n:
        s = ms[i][0]
        j = i
        group_end = reach
        while j < n and ms[j][0] == s:
            if s >= reach:
                out.append(ms[j])
            group_end = max(group_end, ms[j][1])
            j += 1
        reach = group_end
        i = j
    return out
