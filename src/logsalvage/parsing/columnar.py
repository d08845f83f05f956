"""The columnar engine: a whole source parsed as columns, in DuckDB, on RE2.

Lines arrive as an Arrow table (``columnar_lines``); each step of the reference engine
(``parsing.engine``) becomes a set operation over all of them (SQL from ``columnar_sql``):
which line pattern matches first, its named groups, the timestamp parts, the refinement keyed on
the program, the refinement's or the format's message patterns, PostgreSQL's ``[seq-chunk]``
lines grouped into messages and read with the server's ``log_line_prefix``, and the ``extra``
JSON. Cost is linear in the input whatever the text: RE2 never backtracks.

What is rare stays with the reference engine's own code, line by line, so the two agree by
construction: lines matched by no pattern (continuations, binary data, issues), lines that are
not valid UTF-8 or hold a NUL, a matching line whose date is impossible, PostgreSQL messages whose
chunk lines are not contiguous (carved), and the grouping of ``[seq-chunk]`` lines when some are
lost, repeated or out of order (carved images; narrow columns only). A source whose structure the
columnar steps do not model — a format with another assembler, a continuation line after a
rejoined record — raises ``Unsupported`` and is read by the reference engine instead; ``ingest``
records which engine read each source.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import deque
from dataclasses import dataclass, field
from itertools import count
from typing import Callable

import duckdb
import numpy as np
import pyarrow as pa

from logsalvage.model import CANONICAL_FIELDS
from logsalvage.parsing import columnar_sql as q
from logsalvage.parsing.columnar_lines import LINE_SCHEMA, iter_line_tables
from logsalvage.parsing.derived import DERIVATIONS
from logsalvage.parsing.engine import (_CONSUMED, PG_CHUNK_WINDOW, PG_PART_FIELDS, PG_SECONDARY, PG_SYSLOG_LIMIT, Assembler, LineParser, ParseContext,
                                       _Pending, excerpt, looks_binary)
from logsalvage.parsing.formats import FormatSpec, LinePattern
from logsalvage.parsing.lines import Line
from logsalvage.parsing.pg_prefix import LEVEL_RE, line_source
from logsalvage.parsing.years import Anchor, RolloverTracker, ordinal
from logsalvage.staging import STAGE_SCHEMA, YearState, record_columns

COVERED_ASSEMBLERS = ("lines", "syslog", "apache-error")
SLICE_BYTES = 16 << 20  # a stream is parsed in slices of about this many bytes (bounded memory)
_REQUEST_KEYS = ("http_method", "url_path", "url_query", "http_version", "url_full")
_NOT_FIELD = _CONSUMED | {"message"}
# Python's str.strip() whitespace: a line of only these is an empty line
_BLANK = r"^[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]*$"
_CHUNK_HEAD = r"^(\[(\d+)-(\d+)\] ?)"  # engine._CHUNK without its '(.*)' tail (the rest of the message)
_SEQ = count()
_RESERVED = frozenset(STAGE_SCHEMA.names) - frozenset(CANONICAL_FIELDS) | {
    "no_newline", "text", "pat", "stamp_ok", "line_count", "s"} - {"extra"}


class Unsupported(Exception):
    """The source uses a construct the columnar steps do not model: read it with the reference engine."""


def not_covered(spec: FormatSpec) -> str | None:
    """Why a format cannot be read by the columnar engine, or None when it can."""
    if spec.assembler not in COVERED_ASSEMBLERS:
        return f"the {spec.assembler} assembler is not columnar"
    missing = [f for f in spec.timestamp_formats if f not in q.STAMP_FORMATS]
    if missing:
        return f"timestamp format {', '.join(missing)} is not columnar"
    return None


@dataclass
class ColumnarResult:
    events: pa.Table  # STAGE_SCHEMA
    issues: list[tuple] = field(default_factory=list)  # (offset, length, line_no, reason, excerpt, event_offset)
    lines: int = 0
    years: YearState = field(default_factory=YearState)
    cut: int | None = None  # with parse(may_cut=True): the first line not read (the next slice's first)


class _Collect:
    """A sink for the reference code run on rare lines."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.issues: list[tuple] = []

    def event(self, rec: dict) -> None:
        self.events.append(rec)

    def issue(self, offset, length, line_no, reason, excerpt_, event_offset=None) -> None:
        self.issues.append((offset, length, line_no, reason, excerpt_, event_offset))


_LOCAL = threading.local()


def parse_connection() -> duckdb.DuckDBPyConnection:
    """The in-memory DuckDB connection this thread parses with, made once (a source's parse leaves
    nothing in it: what it registers it unregisters), not once per source (15 ms each); a new one
    in a forked process."""
    held = getattr(_LOCAL, "con", None)
    if held is None or held[0] != os.getpid():
        con = duckdb.connect()
        con.execute("SET memory_limit = '512MB'")  # spills past this; the slices keep well under it
        con.execute("SET enable_progress_bar = false")
        held = _LOCAL.con = (os.getpid(), con)
    return held[1]


class ColumnarParser:
    def __init__(self, spec: FormatSpec, ctx: ParseContext | None = None,
                 con: duckdb.DuckDBPyConnection | None = None):
        why = not_covered(spec)
        if why:
            raise Unsupported(why)
        self.spec = spec
        self.ctx = ctx or ParseContext()
        self.sink = _Collect()
        self.asm = Assembler(spec, self.ctx, self.sink)  # the reference, for rare lines
        self.parser: LineParser = self.asm.parser
        self.con = con if con is not None else parse_connection()
        self.pg_ref = next((i + 1 for i, r in enumerate(spec.refinements) if r.special == "pg-syslog"), None)
        self.pg_patterns = self.asm.pg_patterns
        if self.ctx.pg_other_prefixes:
            raise Unsupported("a PostgreSQL log written with several log_line_prefixes")
        self.pg_source = line_source(self.ctx.pg_log_line_prefix)[4:]  # without its leading (?s)
        self.pg_generic = line_source(None)[4:]
        self.columns = self._columns()

    # -- the column universe ------------------------------------------------------------------
    def _columns(self) -> dict[str, str]:
        """Every field any step can set, with its SQL type (canonical ones typed, others text)."""
        names: list[str] = []

        def add(pats):
            for p in pats:
                names.extend(q.group_names(p.source))
                names.extend(p.set)

        add(self.parser.patterns)
        for d in self.spec.derived:
            names.extend(DERIVATIONS[d].outputs)
        for r in self.spec.refinements:
            add(r.patterns)
        add(self.spec.message_patterns)
        if self.pg_ref:
            names.extend(q.group_names(self.pg_source))
            names.extend(q.group_names(self.pg_generic))
        always = list(_REQUEST_KEYS) + ["line_end"]
        if self.pg_ref:
            always += ["source_ip", "source_port", "pg_seq", "pg_chunk", "pg_message", "pg_level", "log_level"]
            always += list(PG_PART_FIELDS.values())
        out = {}
        for n in names + always:
            if n.startswith("_") or n in out or n in _NOT_FIELD and n not in always:
                continue
            if n in _RESERVED:
                raise Unsupported(f"a pattern group named {n!r}, a column of the engine itself")
            out[n] = q.column_type(n)
        return out

    # -- entry point ------------------------------------------------------------------------------
    def parse(self, lines: pa.Table, odd_bytes: dict[int, bytes] | None = None, *, anchor: Anchor | None = None,
              annotate: Callable[[dict], None] | None = None, tracker: RolloverTracker | None = None,
              years: YearState | None = None, may_cut: bool = False) -> ColumnarResult:
        """Records and issues of ``lines`` (``columnar_lines.LINE_SCHEMA``).

        Records carved from an image (``carve.pipeline``) also bring, per line, ``spans`` (the
        pieces of a rejoined line, 'offset+length,…'), ``copies`` (offsets of identical copies) and
        provenance fields (any further text column), which a record takes from its first line;
        ``annotate`` recomputes those for a record the reference code assembled, and ``anchor``
        dates each year-less record on its own (no file order: the latest year not after it).

        ``may_cut``: ``lines`` is a slice of a longer stream (``parse_stream``): only the records
        before a line where no record is cut in two are returned, ``result.cut`` is that line (None
        when there is none: read on); ``tracker`` and ``years`` carry year inference across slices.
        """
        self.tracker, self.years, self.may_cut = tracker, years, may_cut
        self.sink.events, self.sink.issues = [], []
        self.pgk: str | None = None
        con = self.con
        self.anchor, self.annotate = anchor, annotate
        self.line_fields = [c for c in lines.column_names if c not in LINE_SCHEMA.names and c not in ("spans", "copies")]
        for c in self.line_fields:
            if c in _RESERVED or c in self.columns and self.columns[c] != "VARCHAR":
                raise Unsupported(f"a line field named {c!r}")
            self.columns.setdefault(c, "VARCHAR")
        self.has_spans = "spans" in lines.column_names
        self.nlines = False  # whether records of several lines (PostgreSQL chunks) carry their count
        self.has_copies = "copies" in lines.column_names
        tag = f"c{next(_SEQ)}"
        self.tag = tag
        con.register(f"{tag}_in", lines)
        self.registered = [f"{tag}_in"]
        self.adopted: set[int] = set()  # lines whose records the reference code took over (_adopt)
        self.fields: dict[str, set[str]] = {}  # materialised relation -> the field columns it holds
        try:
            return self._parse(lines, odd_bytes or {})
        finally:
            try:
                con.execute("SELECT 1").fetchall()  # finish anything an error left half-read
            except duckdb.Error:
                pass
            for name in self.registered:
                con.unregister(name)

    def _mat(self, name: str, sql: str) -> str:
        """Run ``sql`` into an Arrow table registered as ``name``."""
        full = f"{self.tag}_{name}"
        table = self.con.sql(sql).to_arrow_table()
        self.con.register(full, table)
        self.registered.append(full)
        self.fields[full] = {c for c in table.column_names if c in self.columns}
        return full

    def _parse(self, lines: pa.Table, odd_bytes: dict[int, bytes]) -> ColumnarResult:
        con, tag = self.con, self.tag
        n = lines.num_rows
        result = ColumnarResult(STAGE_SCHEMA.empty_table(), lines=n)
        if n == 0:
            return result
        first_line = lines.column("line_no")[0].as_py()
        patterns = self.parser.patterns
        # 1. which line pattern matches first (-1 too long, -2 odd bytes, -3 empty line, 0 none)
        carried = "".join(f", {q.ident(c)}" for c in self.line_fields)
        carried += ", spans" if self.has_spans else ", CAST(NULL AS VARCHAR) AS spans"
        carried += ", copies" if self.has_copies else ", CAST(NULL AS VARCHAR) AS copies"
        # what each record takes from its first line (columns of the table h below)
        self.carried = "".join(f", {q.ident(c)}" for c in self.line_fields) + ", spans, copies"
        h = self._mat("h", f"""SELECT line_no, "offset", length, text, no_newline{carried},
            lag("offset" + length) OVER (ORDER BY line_no) AS prev_end,
            lag(CASE WHEN spans IS NULL THEN "offset" + length
                     ELSE CAST(split_part(string_split(spans, ',')[-1], '+', 1) AS BIGINT)
                          + CAST(split_part(string_split(spans, ',')[-1], '+', 2) AS BIGINT) END)
                OVER (ORDER BY line_no) AS prev_record_end,
            CASE WHEN too_long THEN -1 WHEN odd THEN -2 WHEN regexp_matches(text, {q.lit(_BLANK)}) THEN -3
                 ELSE {q.first_match('text', [_head_source(p.source)[0] for p in patterns], anchored=True)} END AS pat
            FROM {tag}_in""")
        used = {k for (k,) in con.execute(f"SELECT DISTINCT pat FROM {h} WHERE pat > 0").fetchall()}
        # 2. records: the matched pattern's groups, the request line split, the timestamp parts, and
        # the refinement each belongs to (syslog's program); only the columns some row can hold
        live = [(k, p) for k, p in enumerate(patterns, start=1) if k in used]
        # (_ref is NULL for a line whose date is impossible: the reference engine tries it again; no
        # WHERE here, which DuckDB would answer by computing the timestamp twice)
        records, names = self._records_sql(live)
        base = f"SELECT *, CASE WHEN stamp_ok THEN {self._refinement_expr(live)} END AS _ref FROM ({records})"
        if self.pg_ref:
            base = self._pg_chunks_sql(base, names)
        d0 = self._mat("d0", base)
        refs = {k for (k,) in con.execute(f"SELECT DISTINCT _ref FROM {d0} WHERE _ref IS NOT NULL").fetchall()}
        # 3. each refinement's rows through its own patterns, the others through the message patterns
        parts = []
        for i, ref in enumerate(self.spec.refinements, start=1):
            if not ref.special and i in refs:
                parts.append(self._apply(f"SELECT * FROM {d0} WHERE _ref = {i}", self.fields[d0], ref.target,
                                         ref.patterns, ref.event_type, f"r{i}"))
        if 0 in refs:
            rest = (f"SELECT * FROM {d0} WHERE _ref = 0", self.fields[d0])
            if self.spec.message_patterns:
                rest = self._apply(rest[0], rest[1], "message", self.spec.message_patterns, None, "m")
            parts.append(rest)
        # 4. PostgreSQL through syslog: chunks into messages, then prefix and message patterns
        py_records: list[dict] = []
        if self.pg_ref and self.pg_ref in refs:
            part, more = self._postgres(d0)
            parts.append(part)
            py_records += more
        drop = "EXCLUDE (_pid, _rest)" if self.pg_ref else ""
        self.done = " UNION ALL BY NAME ".join(f"(SELECT * {drop} FROM ({sql}))" for sql, _ in parts) \
            if parts else None
        self.done_fields = set().union(*(f for _, f in parts)) if parts else set()
        # 5. lines no pattern took (and odd ones), in file order, the reference way
        kinds = self._kinds(n, first_line, d0)
        cont: dict[int, list[tuple[int, int, str]]] = {}
        py_records += self._rare(kinds, first_line, odd_bytes, cont, d0)
        if self.annotate is not None:
            for rec in py_records:
                self.annotate(rec)
        # 6. all records as staging columns (with a slice of a stream, those before the cut)
        issues = self.sink.issues
        if self.may_cut:
            cut = self._cut_point(first_line, first_line + n - 1, cont, py_records)
            if cut is None:
                return result
            py_records = [r for r in py_records if r["_line_no"] < cut]
            issues = [i for i in issues if i[2] < cut]
            result.cut, result.lines = cut, cut - first_line
        tables = [self._stage_table(cont, result.cut)] if self.done else []
        if py_records:
            tables.append(pa.Table.from_pydict(record_columns(py_records), schema=STAGE_SCHEMA))
        table = pa.concat_tables(tables) if tables else STAGE_SCHEMA.empty_table()
        result.events, result.years = _year_epochs(table, self.anchor, self.tracker, self.years)
        result.issues = issues
        return result

    def parse_stream(self, stream, write: Callable[[ColumnarResult], None], block: int = SLICE_BYTES) -> YearState:
        """A whole stream in slices of about ``block`` bytes, so memory stays bounded whatever its
        size: each slice ends where no record is cut in two, the lines after that point are read
        again with the next slice. ``write`` receives each slice's result; returns the year state."""
        tracker, years = RolloverTracker(), YearState()
        odd: dict[int, bytes] = {}
        tables = iter_line_tables(stream, block, odd)
        carry = None
        nxt = next(tables, None)
        while nxt is not None:
            table = nxt if carry is None else pa.concat_tables([carry, nxt])
            nxt = next(tables, None)
            result = self.parse(table, odd, tracker=tracker, years=years, may_cut=nxt is not None)
            if nxt is not None and result.cut is None:
                carry = table  # no place to end this slice yet: read on
                continue
            write(result)
            if result.cut is None:
                break
            first = table.column("line_no")[0].as_py()
            carry = table.slice(result.cut - first)
            for k in [k for k in odd if k < result.cut]:
                del odd[k]
        return years

    def _cut_point(self, first: int, last: int, cont: dict, py_records: list[dict]) -> int | None:
        if self.spec.assembler == "apache-error" or self.spec.unframed:
            # a headerless line borrows the time of a record before (or after) it, across any cut
            raise Unsupported("lines without a header of their own in a source read in slices")
        """The last line at which this slice can end: a line with a header of the format, at least
        PG_CHUNK_WINDOW lines before the slice's end (so no later chunk can belong to a message
        before it), inside no multi-line record."""
        hi = last - PG_CHUNK_WINDOW
        if hi <= first:
            return None
        cands = self.con.execute(f"SELECT line_no FROM {self.tag}_h WHERE pat > 0 AND line_no > ? AND line_no <= ? "
                                 f"ORDER BY line_no", [first, hi]).fetchnumpy()["line_no"]
        if len(cands) == 0:
            return None
        spans = [(owner, owner + len(parts)) for owner, parts in cont.items()]
        spans += [(r["_line_no"], r["_line_no"] + r["_line_count"] - 1) for r in py_records if r["_line_count"] > 1]
        if self.pgk is not None:
            spans += self.con.execute(f"SELECT _head, max(line_no) FROM {self.pgk} GROUP BY _head "
                                      f"HAVING count(*) > 1").fetchall()
        inside = np.zeros(last - first + 2, np.int64)
        for a, b in spans:  # lines a+1 .. b continue the record that starts at a
            inside[a + 1 - first] += 1
            inside[b + 1 - first] -= 1
        ok = cands[np.cumsum(inside)[cands - first] == 0]
        return int(ok[-1]) if len(ok) else None

    # -- step 2 -----------------------------------------------------------------------------------
    def _records_sql(self, live: list[tuple[int, LinePattern]]) -> tuple[str, list[str]]:
        """The records of the lines the ``live`` patterns matched, and the field columns they hold."""
        tag = self.tag
        ts_field = self.spec.timestamp_field
        names = list(dict.fromkeys(c for _, p in live for c in list(q.group_names(p.source)) + list(p.set)
                                   if c in self.columns))
        if "request" in {g for _, p in live for g in q.group_names(p.source)}:
            names += [k for k in _REQUEST_KEYS if k not in names]
        if live and "line_end" not in names:
            names.append("line_end")
        derivations = [DERIVATIONS[d] for d in self.spec.derived]
        names += [c for d in derivations if d.source in names for c in d.outputs if c not in names]
        parts = []
        for k, pat in live:
            source, tail = _head_source(pat.source)
            groups = q.group_names(source)
            cols = {c: f"CAST(NULL AS {self.columns[c]})" for c in names}
            for g in groups:
                if g in self.columns:
                    cols[g] = q.convert(g, q.no_value(f"s.{q.ident(g)}"))
            for key, value in pat.set.items():
                cols[key] = q.lit(str(value))
            for d in derivations:  # (engine.LineParser.parse: after the pattern's set values)
                if d.source in groups or d.source in pat.set:
                    cols.update(d.sql(cols[d.source], cols))
            if tail:  # '(?P<message>.*)$' at the end: the rest of the line after the matched head
                message = "substr(text, length(s._m) + 1)"
                rx = "(?P<_m>" + source + ")"
            else:
                message = "s.message" if "message" in groups else "CAST(NULL AS VARCHAR)"
                rx = source
            request = "s.request" if "request" in groups else "CAST(NULL AS VARCHAR)"
            ts = f"trim(s.{q.ident(ts_field)}, '[]')" if ts_field and ts_field in groups else "CAST(NULL AS VARCHAR)"
            select = ", ".join(f"{v} AS {q.ident(c)}" for c, v in cols.items())
            parts.append(f"""SELECT line_no, "offset", length, no_newline{self.carried}, text AS raw, {message} AS message,
                                    {request} AS _request, {ts} AS ts_raw,
                                    {q.lit(pat.event_type or self.spec.event_type)} AS event_type{', ' if select else ''}{select}
                             FROM (SELECT *, {q.extract('text', rx, anchored=True)} AS s
                                   FROM {tag}_h WHERE pat = {k})""")
        if not parts:
            parts.append(f"""SELECT line_no, "offset", length, no_newline{self.carried}, text AS raw, text AS message,
                                    text AS _request, text AS ts_raw, text AS event_type FROM {tag}_h WHERE false""")
        body = " UNION ALL ".join(parts)
        if "http_method" in names:
            body = self._split_request(body)
        inner = q.stamp_query(body, "ts_raw", self.spec.timestamp_formats) if self.spec.timestamp_formats else \
            f"SELECT *, NULL::INTEGER AS y, NULL::INTEGER AS mo, NULL::INTEGER AS d, NULL::BIGINT AS sod_us, " \
            f"NULL::INTEGER AS utc_offset_s, true AS stamp_ok FROM ({body})"
        # a pattern without the timestamp group describes lines that carry none: timeless, valid
        line_end = ", CASE WHEN no_newline THEN 'missing' ELSE line_end END AS line_end" if "line_end" in names else ""
        return f"""SELECT * EXCLUDE (_request) REPLACE (stamp_ok OR ts_raw IS NULL AS stamp_ok{line_end})
                   FROM ({inner})""", names

    def _split_request(self, body: str) -> str:
        """``apache_logformat.split_request``: method, path, query, version of the request line."""
        p = "string_split(_request, ' ')"
        ok3 = f"(len({p}) = 3 AND starts_with({p}[3], 'HTTP/'))"
        ok2 = f"(len({p}) = 2 AND upper({p}[1]) = {p}[1] AND lower({p}[1]) <> {p}[1])"
        usable = "(_request IS NOT NULL AND _request NOT IN ('', '-'))"
        url = f"CASE WHEN {ok3} OR {ok2} THEN {p}[2] END"
        qpos = f"strpos({url}, '?')"
        new = {
            "http_method": f"CASE WHEN {usable} AND ({ok3} OR {ok2}) THEN {p}[1] END",
            "url_path": f"CASE WHEN {usable} THEN CASE WHEN {qpos} > 0 THEN substr({url}, 1, {qpos} - 1) ELSE {url} END END",
            "url_query": f"CASE WHEN {usable} AND {qpos} > 0 THEN substr({url}, {qpos} + 1) END",
            "http_version": f"CASE WHEN {usable} AND {ok3} THEN {p}[3] END",
            "url_full": f"CASE WHEN {usable} THEN CASE WHEN {ok3} OR {ok2} THEN {url} ELSE _request END END",
        }
        rep = ", ".join(f"COALESCE({q.ident(k)}, {v}) AS {q.ident(k)}" for k, v in new.items())
        return f"SELECT * REPLACE ({rep}) FROM ({body})"

    # -- step 3 -----------------------------------------------------------------------------------
    def _refinement_expr(self, live: list[tuple[int, LinePattern]]) -> str:
        refs = self.spec.refinements
        present = {c for _, p in live for c in list(q.group_names(p.source)) + list(p.set)}
        if not refs:
            return "0"
        whens = []
        for i, r in enumerate(refs, start=1):
            if r.when_field not in present or r.when_field not in self.columns:
                continue
            f = q.ident(r.when_field)
            whens.append(f"WHEN {f} IS NOT NULL AND regexp_matches(CAST({f} AS VARCHAR), {q.lit(r.when_source)}) THEN {i}")
        return f"CASE {' '.join(whens)} ELSE 0 END" if whens else "0"

    def _apply(self, rel: str, fields: set[str], target: str, patterns: tuple[LinePattern, ...],
               default_type: str | None, step: str) -> tuple[str, set[str]]:
        """``LineParser.apply_patterns`` on every row of ``rel``: the first pattern that matches
        ``target`` anywhere sets the fields not set yet, its ``set:`` values and its event type.
        Returns the SQL and the field columns it holds."""
        tgt = q.ident(target) if target in fields or target == "message" else "CAST(NULL AS VARCHAR)"
        whens = " ".join(f"WHEN regexp_matches({tgt}, {q.lit(p.source)}) THEN {k}"
                         for k, p in enumerate(patterns, start=1))
        m = self._mat(f"a{step}", f"SELECT *, CASE WHEN {tgt} IS NULL THEN 0 {whens} ELSE 0 END AS _sel FROM ({rel})")
        used = {k for (k,) in self.con.execute(f"SELECT DISTINCT _sel FROM {m}").fetchall()}
        structs = []
        new_fields: dict[str, list[str]] = {}
        sets: dict[str, list[str]] = {}
        types = []
        for k, p in enumerate(patterns, start=1):
            if k not in used:
                continue
            groups = [g for g in q.group_names(p.source) if g in self.columns]
            if groups:
                structs.append(f"CASE WHEN _sel = {k} THEN {q.extract(tgt, p.source, anchored=False)} END AS _s{k}")
                for g in groups:
                    new_fields.setdefault(g, []).append(
                        f"WHEN _sel = {k} THEN {q.convert(g, q.no_value(f'_s{k}.{q.ident(g)}'))}")
            for key, value in p.set.items():
                sets.setdefault(key, []).append(f"WHEN _sel = {k} THEN {q.lit(str(value))}")
            if p.event_type:
                types.append(f"WHEN _sel = {k} THEN {q.lit(p.event_type)}")
        if default_type and 0 in used:
            types.append(f"WHEN _sel = 0 THEN {q.lit(default_type)}")
        out: dict[str, str] = {}
        for g, whens_g in new_fields.items():
            found = f"CASE {' '.join(whens_g)} END"
            out[g] = f"COALESCE({q.ident(g)}, {found})" if g in fields else found
        for key, whens_s in sets.items():
            base = out.get(key, q.ident(key) if key in fields else "NULL")
            out[key] = f"CASE {' '.join(whens_s)} ELSE {base} END"
        if types:
            out["event_type"] = f"CASE {' '.join(types)} ELSE event_type END"
        replace = {c: v for c, v in out.items() if c in fields or c == "event_type"}
        added = {c: v for c, v in out.items() if c not in replace}
        typed = lambda c, v: f"CAST({v} AS {self.columns.get(c, 'VARCHAR')}) AS {q.ident(c)}"
        drop = ["_sel"] + [f"_s{k}" for k, p in enumerate(patterns, start=1)
                           if k in used and any(g in self.columns for g in q.group_names(p.source))]
        select = f"SELECT * EXCLUDE ({', '.join(drop)})"
        if replace:
            select += f" REPLACE ({', '.join(typed(c, v) for c, v in replace.items())})"
        if added:
            select += ", " + ", ".join(typed(c, v) for c, v in added.items())
        inner = f"SELECT *, {', '.join(structs)} FROM {m}" if structs else f"SELECT * FROM {m}"
        return f"{select} FROM ({inner})", fields | set(added)

    # -- step 4 -----------------------------------------------------------------------------------
    def _pg_chunks_sql(self, rel: str, names: list[str]) -> str:
        """PostgreSQL lines: pid, ``[seq-chunk]`` and the text after it."""
        if "pg_seq" in names or "pg_chunk" in names:
            raise Unsupported("a line pattern that captures pg_seq or pg_chunk itself")
        is_pg = f"_ref = {self.pg_ref}"
        rx = q.lit(_CHUNK_HEAD)
        chunk = (f"CASE WHEN {is_pg} AND regexp_matches(COALESCE(message, ''), {rx}) "
                 f"THEN regexp_extract(message, {rx}, ['m', 'seq', 'chunk']) END")
        # numbers too large for the columns are text, not PostgreSQL's (as engine._pg_chunk)
        usable = ("CASE WHEN TRY_CAST(_c0.seq AS BIGINT) IS NOT NULL AND TRY_CAST(_c0.chunk AS INTEGER) IS NOT NULL "
                  "THEN _c0 END")
        pid = "process_pid" if "process_pid" in names else "NULL"
        return f"""
            SELECT * EXCLUDE (_c, _c0),
                   CASE WHEN {is_pg} THEN TRY_CAST(_c.seq AS BIGINT) END AS pg_seq,
                   CASE WHEN {is_pg} THEN TRY_CAST(_c.chunk AS INTEGER) END AS pg_chunk,
                   CASE WHEN {is_pg} THEN CASE WHEN _c IS NULL THEN COALESCE(message, '')
                                               ELSE substr(message, length(_c.m) + 1) END END AS _rest,
                   CASE WHEN {is_pg} THEN CASE WHEN {pid} IS NULL OR {pid} = 0 THEN -1 ELSE {pid} END END AS _pid
            FROM (SELECT * REPLACE (CASE WHEN {is_pg} THEN {q.lit(self.spec.refinements[self.pg_ref - 1].event_type)}
                                         ELSE event_type END AS event_type),
                         {usable} AS _c FROM (SELECT *, {chunk} AS _c0 FROM ({rel})))"""

    def _postgres(self, d0: str) -> tuple[tuple[str, set[str]], list[dict]]:
        """PostgreSQL messages in SQL; those whose lines are not contiguous (carved) through the
        reference code."""
        con = self.con
        pg_lines = f"(SELECT * FROM {d0} WHERE _ref = {self.pg_ref})"
        # the message each line belongs to (the line of its first chunk) and its number of lines,
        # window functions over narrow columns; right when every continuation follows its predecessor
        pgk = self._mat("pgk", f"""
            SELECT line_no, _head, count(*) OVER (PARTITION BY _pid, _head) AS _parts,
                   pg_chunk IS NULL OR pg_chunk = 1 OR COALESCE(prev_seq = pg_seq AND prev_chunk = pg_chunk - 1
                                                                AND line_no - _head <= {PG_CHUNK_WINDOW}, false) AS _in_order
            FROM (SELECT line_no, _pid, pg_seq, pg_chunk, lag(pg_seq) OVER w AS prev_seq, lag(pg_chunk) OVER w AS prev_chunk,
                         max(CASE WHEN pg_chunk IS NULL OR pg_chunk = 1 THEN line_no END) OVER (w ROWS UNBOUNDED PRECEDING) AS _head
                  FROM {pg_lines} WINDOW w AS (PARTITION BY _pid ORDER BY line_no))""")
        if not con.execute(f"SELECT bool_and(_in_order) FROM {pgk}").fetchall()[0][0]:
            # chunks lost, repeated or out of order (carved images): the reference's decisions, on
            # narrow columns only (whose messages may stay open past any slice boundary)
            if self.may_cut:
                raise Unsupported("PostgreSQL [seq-chunk] lines out of order in a source read in slices")
            pgk = self._pg_groups(pg_lines)
        self.pgk = pgk
        pg_lines = f"(SELECT * FROM {d0} WHERE _ref = {self.pg_ref} AND line_no IN (SELECT line_no FROM {pgk}))"
        unescaped = _unescape_sql("_rest")
        multi = self._mat("pgmulti", f"SELECT k.line_no FROM {pgk} k JOIN {pg_lines} USING (line_no) "
                                     f"WHERE _parts > 1")
        singles = (f"SELECT * REPLACE ({unescaped} AS message) FROM {pg_lines} "
                   f"WHERE line_no NOT IN (SELECT line_no FROM {multi})")
        # messages of several chunks: joined as engine.join_pg_chunks does, where their lines are
        # contiguous and the first is not a rejoined line (else the reference code joins them)
        own_head = self.pg_source[:-len(_PG_TAIL)]
        joined = self._mat("pgjoin", f"""
            SELECT _head, string_agg(_piece, '' ORDER BY line_no) AS _text, string_agg(raw, chr(10) ORDER BY line_no) AS _raw,
                   sum(length) AS _len, count(*) AS _nlines,
                   NOT bool_or(_gap) AND bool_and(_k > 1 OR spans IS NULL) AS _simple
            FROM (SELECT *, CASE WHEN _k = 1 THEN _u
                                 WHEN starts_with(_u, ' ') THEN _u
                                 WHEN starts_with(_u, chr(9)) THEN chr(10) || substr(_u, 2)
                                 WHEN strlen(_pu) >= {PG_SYSLOG_LIMIT - 3}
                                      AND NOT regexp_matches(_u, {q.lit('^(?s:' + own_head + ')')}) THEN _u
                                 ELSE chr(10) || _u END AS _piece,
                            (_k > 1 AND "offset" <> _pend) AS _gap
                  FROM (SELECT *, lag(_u) OVER w AS _pu, lag("offset" + length) OVER w AS _pend, row_number() OVER w AS _k
                        FROM (SELECT line_no, _head, "offset", length, raw, spans, {unescaped} AS _u
                              FROM {pg_lines} JOIN {pgk} USING (line_no) WHERE line_no IN (SELECT line_no FROM {multi}))
                        WINDOW w AS (PARTITION BY _head ORDER BY line_no)))
            GROUP BY _head""")
        heads = (f"SELECT d.* REPLACE (j._text AS message, j._raw AS raw, j._len AS length), j._nlines AS _nlines "
                 f"FROM {pg_lines} d JOIN {joined} j ON d.line_no = j._head WHERE j._simple")
        self.nlines = True
        part = self._finish_pg(f"({singles}) UNION ALL BY NAME ({heads})", self.fields[d0])
        # the rest through the reference code
        rows = con.sql(f"SELECT * FROM {pg_lines} JOIN {pgk} USING (line_no) "
                       f"WHERE _head IN (SELECT _head FROM {joined} WHERE NOT _simple) ORDER BY _pid, _head, line_no") \
            .to_arrow_table().to_pylist()
        out: list[dict] = []
        pending: _Pending | None = None
        key = None
        for row in rows:
            if pending is None or (row["_pid"], row["_head"]) != key:
                if pending is not None:
                    out.append(self._emit_pg(pending))
                key = (row["_pid"], row["_head"])
                pending = _Pending(self._row_record(row), [row["_rest"]])
            else:
                head = pending.rec
                Assembler._extend(head, row["offset"], row["length"])
                head["raw"] += "\n" + row["raw"]
                pending.texts.append(row["_rest"])
        if pending is not None:
            out.append(self._emit_pg(pending))
        return part, out

    def _pg_parts(self, messages: str, own_head: str, gen_head: str) -> str:
        """The lines after the first of multi-line PostgreSQL messages (``finish_pg``): a line with a
        secondary level (DETAIL, STATEMENT …) starts that part, the lines after it continue it; the
        lines before any part continue the primary message. A later part of the same kind wins."""
        own, gen = "(?s:(" + own_head + "))", "(?s:(" + gen_head + "))"
        own_names, gen_names = ["_m"] + q.group_names(own_head), ["_m"] + q.group_names(gen_head)
        levels = ", ".join(q.lit(x) for x in sorted(PG_SECONDARY))
        pivot = ", ".join(f"arg_max(val, part) FILTER (WHERE lvl = {q.lit(lvl)}) AS {q.ident('_p_' + f)}"
                          for lvl, f in PG_PART_FIELDS.items())
        return self._mat("pgparts", f"""
            WITH lines AS (
                SELECT line_no, unnest(string_split(message, chr(10))) AS line,
                       generate_subscripts(string_split(message, chr(10)), 1) AS idx
                FROM ({messages}) WHERE strpos(message, chr(10)) > 0),
            matched AS (
                SELECT *, CASE WHEN o IS NULL AND regexp_matches(line, {q.lit('^' + gen)})
                               THEN regexp_extract(line, {q.lit('^' + gen)}, {_names_sql(gen_names)}) END AS g
                FROM (SELECT *, CASE WHEN regexp_matches(line, {q.lit('^' + own)})
                                     THEN regexp_extract(line, {q.lit('^' + own)}, {_names_sql(own_names)}) END AS o
                      FROM lines WHERE idx > 1)),
            levelled AS (
                SELECT line_no, idx, line, COALESCE(o.pg_level, g.pg_level) AS lvl,
                       CASE WHEN o IS NOT NULL THEN substr(line, length(o._m) + 1) ELSE substr(line, length(g._m) + 1) END AS rest
                FROM matched),
            placed AS (
                SELECT *, max(CASE WHEN lvl IN ({levels}) THEN idx END)
                              OVER (PARTITION BY line_no ORDER BY idx ROWS UNBOUNDED PRECEDING) AS part
                FROM levelled),
            parts AS (
                SELECT line_no, part, max(CASE WHEN idx = part THEN lvl END) AS lvl,
                       string_agg(CASE WHEN idx = part THEN rest ELSE line END, chr(10) ORDER BY idx) AS val
                FROM placed WHERE part IS NOT NULL GROUP BY line_no, part),
            more AS (SELECT line_no, string_agg(line, chr(10) ORDER BY idx) AS _p_more
                     FROM placed WHERE part IS NULL GROUP BY line_no),
            pivoted AS (SELECT line_no, {pivot} FROM parts GROUP BY line_no)
            SELECT * FROM more FULL JOIN pivoted USING (line_no)""")

    def _pg_groups(self, pg_lines: str) -> str:
        """``Assembler._pg_line`` over PostgreSQL lines: which message each line joins, and an issue
        for each line that joins none (a repeated chunk, one out of sequence, one without its first)."""
        t = self.con.sql(f"SELECT line_no, _pid, pg_seq, pg_chunk, _rest FROM {pg_lines} ORDER BY line_no") \
            .to_arrow_table()
        line_nos, pids = t.column("line_no").to_pylist(), t.column("_pid").to_pylist()
        seqs, chunks, rests = t.column("pg_seq").to_pylist(), t.column("pg_chunk").to_pylist(), t.column("_rest").to_pylist()
        head_of: dict[int, int] = {}
        issues: list[tuple[int, str]] = []
        open_: dict[int, list] = {}  # pid -> [head line, seq, texts]
        order: deque = deque()  # (head line, pid, group) oldest first
        for line_no, pid, seq, chunk, rest in zip(line_nos, pids, seqs, chunks, rests):
            group = open_.get(pid)
            if chunk is None or chunk == 1:
                if group is not None:
                    del open_[pid]
                head_of[line_no] = line_no
                if chunk is None:
                    continue
                group = [line_no, seq, [rest]]
                open_[pid] = group
                order.append((line_no, pid, group))
                while order and order[0][0] < line_no - PG_CHUNK_WINDOW:  # settled: no more chunks
                    _, p, g = order.popleft()
                    if open_.get(p) is g:
                        del open_[p]
                continue
            if group is not None and group[1] == seq:
                joined = len(group[2])
                if chunk == joined + 1:
                    head_of[line_no] = group[0]
                    group[2].append(rest)
                    continue
                if chunk <= joined and group[2][chunk - 1] == rest:
                    issues.append((line_no, f"PostgreSQL chunk [{seq}-{chunk}] repeated: the same text is already "
                                            "part of its message"))
                    continue
                del open_[pid]
                issues.append((line_no, f"PostgreSQL continuation chunk [{seq}-{chunk}] out of sequence: its message "
                                        "ends before it"))
                continue
            issues.append((line_no, f"PostgreSQL continuation chunk [{seq}-{chunk}] without its first chunk"))
        if issues:
            where = {r[0]: r[1:] for r in self.con.execute(
                f"SELECT line_no, \"offset\", length, raw FROM {pg_lines} WHERE line_no IN "
                f"(SELECT unnest(?::BIGINT[]))", [[i[0] for i in issues]]).fetchall()}
            for line_no, reason in issues:
                offset, length, raw = where[line_no]
                self.sink.issue(offset, length, line_no, reason, excerpt(raw))
        counts: dict[int, int] = {}
        for h in head_of.values():
            counts[h] = counts.get(h, 0) + 1
        lines = list(head_of)
        return self._register("pgk", pa.table({"line_no": pa.array(lines, pa.int64()),
                                               "_head": pa.array([head_of[x] for x in lines], pa.int64()),
                                               "_parts": pa.array([counts[head_of[x]] for x in lines], pa.int64())}))

    def _register(self, name: str, table: pa.Table) -> str:
        full = f"{self.tag}_{name}"
        self.con.register(full, table)
        self.registered.append(full)
        self.fields[full] = set()
        return full

    def _row_record(self, row: dict) -> dict:
        """An engine record from a SQL row of a PostgreSQL chunk line (as ``Assembler`` holds it)."""
        rec = {k: v for k, v in row.items() if v is not None and k in self.columns and k not in self.line_fields}
        rec.pop("line_end", None)
        rec.update(_offset=row["offset"], _length=row["length"], _line_no=row["line_no"], _line_count=1,
                   _spans=_parse_spans(row["spans"]), raw=row["raw"], event_type=row["event_type"],
                   message=row["message"])
        if row["ts_raw"] is not None:
            rec["ts_raw"] = row["ts_raw"]
        rec["_stamp"] = (row["y"], row["mo"], row["d"], row["sod_us"], row["utc_offset_s"]) \
            if row["mo"] is not None else None
        if row["no_newline"]:
            rec["line_end"] = "missing"
        return rec

    def _emit_pg(self, pending: _Pending) -> dict:
        sink, self.asm.sink = self.asm.sink, _Collect()
        try:
            self.asm._emit_pg(pending)
            self.asm._drain(everything=True)
            return self.asm.sink.events[0]
        finally:
            self.asm.sink = sink

    def _finish_pg(self, singles: str, fields: set[str]) -> tuple[str, set[str]]:
        """``LineParser.finish_pg`` on single-line messages: prefix fields, client, level, patterns.
        Built in layers (groups, then the client address, then the fields) so no expression is
        repeated inside another."""
        own_head, gen_head = self.pg_source[:-len(_PG_TAIL)], self.pg_generic[:-len(_PG_TAIL)]
        own_groups, gen_groups = q.group_names(own_head), q.group_names(gen_head)
        rx_own, rx_gen = "(?s:(" + own_head + "))", "(?s:(" + gen_head + "))"
        ex_own = f"regexp_extract(_first, {q.lit('^' + rx_own)}, {_names_sql(['_m'] + own_groups)})"
        ex_gen = f"regexp_extract(_first, {q.lit('^' + rx_gen)}, {_names_sql(['_m'] + gen_groups)})"
        names = [g for g in dict.fromkeys(own_groups + gen_groups) if g in self.columns and g not in _CONSUMED]
        parts = self._pg_parts(singles, own_head, gen_head)
        wanted = list(dict.fromkeys(names + ["pg_remote", "pg_remote_host", "pg_level"]))

        def grp(name):
            a = f"_pgo.{q.ident(name)}" if name in own_groups else "NULL"
            b = f"_pgg.{q.ident(name)}" if name in gen_groups else "NULL"
            return f"CASE WHEN _pgo IS NOT NULL THEN {a} ELSE {b} END"

        def old(c):
            return q.ident(c) if c in fields else "NULL"

        first = f"""SELECT *, CASE WHEN strpos(message, chr(10)) > 0 THEN split_part(message, chr(10), 1)
                                   ELSE message END AS _first
                    FROM ({singles})"""
        own_layer = _head_layer(first, own_head, rx_own, ex_own, "_pgo", "true")
        layer1 = _head_layer(own_layer, gen_head, rx_gen, ex_gen, "_pgg", "_pgo IS NULL")
        groups = ", ".join(f"{grp(g)} AS {q.ident('_g_' + g)}" for g in wanted)
        layer2 = f"""SELECT * EXCLUDE (_pgo, _pgg), {groups},
                            (_pgo IS NOT NULL OR _pgg IS NOT NULL) AS _pg_ok,
                            CASE WHEN _pgo IS NOT NULL THEN substr(_first, length(_pgo._m) + 1)
                                 ELSE substr(_first, length(_pgg._m) + 1) END AS _g_msg
                     FROM ({layer1})"""
        r = "_remote"
        layer3 = f"""SELECT *, (ends_with({r}, ')') AND strpos({r}, '(') > 0) AS _paren,
                            (length({r}) - strpos(reverse({r}), '(') + 1) AS _lpar,
                            (length({r}) - length(replace({r}, ':', '')) = 1
                             AND regexp_full_match(substr({r}, strpos({r}, ':') + 1), '[0-9]+')) AS _colon
                     FROM (SELECT *, COALESCE(nullif("_g_pg_remote", ''), nullif("_g_pg_remote_host", '')) AS {r}
                           FROM ({layer2}))"""
        inner_port = f"substr({r}, _lpar + 1, length({r}) - _lpar - 1)"
        layer4 = f"""SELECT *,
                       CASE WHEN {r} IS NULL OR {r} = '[unknown]' THEN NULL
                            WHEN _paren THEN substr({r}, 1, _lpar - 1)
                            WHEN _colon THEN substr({r}, 1, strpos({r}, ':') - 1) ELSE {r} END AS _host,
                       CASE WHEN {r} IS NULL OR {r} = '[unknown]' THEN NULL
                            WHEN _paren THEN TRY_CAST(CASE WHEN regexp_full_match({inner_port}, '[0-9]+') THEN {inner_port} END AS INTEGER)
                            WHEN _colon THEN TRY_CAST(substr({r}, strpos({r}, ':') + 1) AS INTEGER) END AS _port
                     FROM ({layer3})"""
        new = {g: f"CASE WHEN _pg_ok THEN COALESCE({old(g)}, {q.convert(g, q.no_value(q.ident('_g_' + g)))}) ELSE {old(g)} END"
               for g in names}
        take = f"_pg_ok AND {old('source_ip')} IS NULL AND nullif(_host, '') IS NOT NULL"
        new["source_ip"] = f"CASE WHEN {take} THEN _host ELSE {old('source_ip')} END"
        new["source_port"] = f"CASE WHEN {take} AND _port IS NOT NULL THEN _port ELSE {old('source_port')} END"
        new["pg_message"] = (f"CASE WHEN _pg_ok THEN _g_msg || COALESCE(chr(10) || _p_more, '') "
                             f"ELSE {old('pg_message')} END")
        for part in PG_PART_FIELDS.values():  # DETAIL, STATEMENT … lines of the message
            new[part] = f"CASE WHEN _pg_ok AND {q.ident('_p_' + part)} IS NOT NULL THEN {q.ident('_p_' + part)} ELSE {old(part)} END"
        new["pg_level"] = f"CASE WHEN _pg_ok THEN _g_pg_level ELSE {old('pg_level')} END"
        new["log_level"] = f"CASE WHEN _pg_ok THEN _g_pg_level ELSE {old('log_level')} END"
        typed = lambda c, v: f"CAST({v} AS {self.columns.get(c, 'VARCHAR')}) AS {q.ident(c)}"
        replace = [typed(c, v) for c, v in new.items() if c in fields]
        added = [typed(c, v) for c, v in new.items() if c not in fields]
        scratch = ", ".join(q.ident("_g_" + g) for g in wanted) + ", _g_msg, _remote, _paren, _lpar, _colon, _host, _port, _first"
        scratch += ", _p_more, " + ", ".join(q.ident("_p_" + f) for f in PG_PART_FIELDS.values())
        step1 = self._mat("pgfin", f"""
            SELECT * EXCLUDE ({scratch}) {('REPLACE (' + ', '.join(replace) + ')') if replace else ''}
                   {', ' + ', '.join(added) if added else ''}
            FROM ({layer4}) LEFT JOIN {parts} USING (line_no)""")
        sql, fields2 = self._apply(f"SELECT * FROM {step1} WHERE _pg_ok", self.fields[step1], "pg_message",
                                   self.pg_patterns, None, "pg")
        final = f"""SELECT * EXCLUDE (_pg_ok) REPLACE (
                        CASE WHEN COALESCE(nullif(event_type, ''), 'postgresql') IN ('postgresql', 'postgresql.syslog')
                                  AND nullif(pg_level, '') IS NOT NULL THEN 'postgresql.' || lower(pg_level)
                             ELSE COALESCE(nullif(event_type, ''), 'postgresql') END AS event_type)
                    FROM ({sql})
                    UNION ALL BY NAME
                    SELECT * EXCLUDE (_pg_ok) FROM {step1} WHERE NOT _pg_ok"""
        return final, fields2

    # -- step 5 -----------------------------------------------------------------------------------
    def _kinds(self, n: int, first_line: int, d0: str) -> np.ndarray:
        """Per line: 1 a record that continuation lines may extend, 2 a PostgreSQL line, 0 neither."""
        kinds = np.zeros(n, np.int8)
        rows = self.con.execute(f"SELECT line_no, _ref FROM {d0} WHERE _ref IS NOT NULL").fetchnumpy()
        pg = rows["_ref"] == (self.pg_ref or -1)
        kinds[rows["line_no"][~pg] - first_line] = 1
        kinds[rows["line_no"][pg] - first_line] = 2
        return kinds

    def _rare(self, kinds: np.ndarray, first_line: int, odd_bytes: dict[int, bytes],
              cont: dict[int, list[tuple[int, int, str]]], d0: str) -> list[dict]:
        """Lines no pattern took, odd lines and impossible dates: the reference engine's decisions."""
        tag = self.tag
        rows = self.con.execute(f"""
            SELECT h.line_no, h."offset", h.length, h.text, h.no_newline, h.pat, h.prev_end, h.prev_record_end, h.spans
            FROM {tag}_h AS h LEFT JOIN (SELECT line_no FROM {d0} WHERE _ref IS NOT NULL) r USING (line_no)
            WHERE h.pat <= 0 OR r.line_no IS NULL ORDER BY h.line_no""").fetchall()
        asm = self.asm
        # formats whose headerless lines continue the record before them (Assembler._continues)
        syslog = self.spec.assembler == "syslog" or self.spec.assembler == "lines" and asm.header_like is not None
        records: list[dict] = []
        owner_sql: int | None = None
        owner_rec: dict | None = None
        last_line = None
        spanned = set()
        if self.has_spans:
            spanned = set(self.con.execute(f"SELECT line_no FROM {tag}_h WHERE spans IS NOT NULL").fetchnumpy()["line_no"].tolist())
        unframed = self.spec.assembler == "apache-error" or bool(self.spec.unframed)
        # lines without a header of their own take the time of the dated record before them (or,
        # before any, of the first after): the dated records the SQL steps made, in line order
        dated = deque(self.con.execute(
            f"SELECT line_no, \"offset\", y, mo, d, sod_us, utc_offset_s, ts_raw FROM {d0} "
            f"WHERE _ref IS NOT NULL AND mo IS NOT NULL ORDER BY line_no").fetchall()) if unframed else deque()

        def pass_dated(before: float) -> None:
            while dated and dated[0][0] < before:
                ln, off, *stamp, ts_raw = dated.popleft()
                asm._dated({"_stamp": tuple(stamp), "ts_raw": ts_raw, "_line_no": ln, "_offset": off})

        for line_no, offset, length, text, no_newline, pat, prev_end, prev_record_end, spans in rows:
            i = line_no - first_line
            pass_dated(line_no)
            # the open record: the nearest record line before this one, if nothing closed it since
            if i > 0 and kinds[i - 1] == 1 and line_no - 1 != last_line:
                owner_sql, owner_rec = line_no - 1, None
            # ... and a line continues it only where the record ends (carved lines need not)
            if i == 0 or kinds[i - 1] not in (1, 3):
                open_ = False
            elif kinds[i - 1] == 3:
                open_ = prev_end == offset
            elif owner_rec is not None:
                open_ = Assembler._end(owner_rec) == offset
            else:
                open_ = prev_record_end == offset
            if open_ and owner_rec is None and owner_sql in spanned:
                raise Unsupported("a continuation line after a rejoined record")
            last_line = line_no
            if pat == -1:
                asm.sink.issue(offset, length, line_no, "line longer than the maximum byte limit", "")
                continue
            data = odd_bytes.get(line_no)
            valid = True
            if data is None:
                data = text.encode("utf-8")
            else:
                valid = _utf8(data)
            if pat == -3 and not text.strip():
                if syslog and text[:1] in (" ", "\t") and open_:
                    owner_rec = self._continue(owner_sql, owner_rec, cont, offset, length, text, records)
                    kinds[i] = 3
                else:
                    asm.sink.issue(offset, length, line_no, "empty line", "")
                continue
            rec = None
            if pat != 0 and "\x00" not in text:
                rec = self.parser.parse(text)
            if rec is not None:
                if "_pg" in rec:
                    raise Unsupported("a PostgreSQL line that is not valid UTF-8 or has an impossible date")
                asm._provenance(rec, Line(line_no, offset, data, length, no_newline=no_newline,
                                          spans=_parse_spans(spans)), text, valid)
                records.append(rec)
                kinds[i] = 1
                owner_sql, owner_rec = None, rec
                if unframed and rec.get("_stamp") is not None:
                    asm._dated(rec)
                continue
            if looks_binary(data):
                asm.sink.issue(offset, length, line_no, "binary data", excerpt(text))
                continue
            if unframed:
                if asm._unframed(Line(line_no, offset, data, length, no_newline=no_newline,
                                      spans=_parse_spans(spans)), text, valid):
                    continue
            if syslog and open_ and (text[:1] in (" ", "\t")
                                     or asm.header_like is not None and not asm.header_like.match(text)):
                owner_rec = self._continue(owner_sql, owner_rec, cont, offset, length, text, records)
                kinds[i] = 3
                continue
            reason = "no pattern of format %s matched" % self.spec.id
            if not valid:
                reason += " (invalid UTF-8)"
            asm.sink.issue(offset, length, line_no, reason, excerpt(text))
        if unframed:  # as Assembler.close: the rest take the next dated time, or stay timeless
            pass_dated(float("inf"))
            for rec in asm.undated:
                asm._out(rec)
            asm.undated = []
            asm._drain(everything=True)
            records += self.sink.events
            self.sink.events = []
        if asm.read_whole:  # as Assembler._flush_last: a continued record read again whole
            for rec in records:
                if rec["_line_count"] > 1:
                    self.parser.read_whole(rec)
        return records

    def _continue(self, owner_sql, owner_rec, cont, offset, length, text, records: list[dict]) -> dict | None:
        """A continuation line joins its record; returns the record when the reference code holds it.
        A format that reads a continued record again whole (``continuation: read_whole``) has the
        reference code take over the record the SQL steps made."""
        if owner_rec is None and self.asm.read_whole:
            owner_rec = self._adopt(owner_sql, records)
        if owner_rec is not None:
            self.asm._continue(owner_rec, Line(0, offset, b"", length), text)
        else:
            cont.setdefault(owner_sql, []).append((offset, length, text))
        return owner_rec

    def _adopt(self, line_no: int, records: list[dict]) -> dict:
        """The record of a line the SQL steps read, made again by the reference code (which it then
        leaves to: ``_stage_table`` drops the SQL row)."""
        (offset, length, text, no_newline, spans), = self.con.execute(
            f'SELECT "offset", length, text, no_newline, spans FROM {self.tag}_h WHERE line_no = ?', [line_no]).fetchall()
        rec = self.parser.parse(text)
        if rec is None:  # it matched in SQL: the engines disagree on a pattern
            raise Unsupported(f"line {line_no} matched by the SQL steps only")
        self.asm._provenance(rec, Line(line_no, offset, text.encode("utf-8"), length, no_newline=no_newline,
                                       spans=_parse_spans(spans)), text, True)
        records.append(rec)
        self.adopted.add(line_no)
        return rec

    # -- step 6 -----------------------------------------------------------------------------------
    def _stage_table(self, cont: dict[int, list[tuple[int, int, str]]], cut: int | None = None) -> pa.Table:
        con, tag = self.con, self.tag
        extras = sorted(c for c in self.done_fields if c not in CANONICAL_FIELDS)
        nlines = "COALESCE(_nlines, 1)" if self.nlines else "1"
        done = self.done
        if self.adopted:  # records the reference code made again (continued, read whole)
            done = f"SELECT * FROM ({done}) WHERE line_no NOT IN ({', '.join(str(n) for n in sorted(self.adopted))})"
        if cont:
            rows = [(owner, "\n".join(t for _, _, t in parts), sum(n for _, n, _ in parts), len(parts))
                    for owner, parts in cont.items()]
            con.register(f"{tag}_cont", pa.table({"line_no": [r[0] for r in rows], "more": [r[1] for r in rows],
                                                  "more_len": [r[2] for r in rows], "more_lines": [r[3] for r in rows]}))
            self.registered.append(f"{tag}_cont")  # (unregistered with the others when the parse ends)
            src = f"""(SELECT d.* REPLACE (CASE WHEN c.line_no IS NULL THEN d.raw ELSE d.raw || chr(10) || c.more END AS raw,
                                          CASE WHEN c.line_no IS NULL OR d.message IS NULL THEN d.message
                                               ELSE d.message || chr(10) || c.more END AS message,
                                          d.length + COALESCE(c.more_len, 0) AS length),
                              {nlines} + COALESCE(c.more_lines, 0) AS line_count
                       FROM ({done}) d LEFT JOIN {tag}_cont c USING (line_no))"""
        else:
            src = f"(SELECT *, {nlines} AS line_count FROM ({done}))"
        pieces = [f"CASE WHEN {q.ident(c)} IS NOT NULL THEN {q.lit(json.dumps(c, ensure_ascii=False) + ': ')} || "
                  f"to_json({q.ident(c)}::VARCHAR)::VARCHAR END" for c in extras]
        any_extra = " OR ".join(f"{q.ident(c)} IS NOT NULL" for c in extras) or "false"
        control = " OR ".join(f"regexp_matches({q.ident(c)}, '[\\x00-\\x1f\\x7f]')" for c in extras) or "false"
        extra = f"CASE WHEN {any_extra} THEN '{{' || concat_ws(', ', {', '.join(pieces)}) || '}}' END" if extras else "NULL"
        canon = ", ".join(f"CAST({q.ident(c)} AS {t}) AS {q.ident(c)}" for c, t in CANONICAL_FIELDS.items()
                          if c in self.done_fields)
        table = con.sql(f"""
            SELECT "offset", length, line_no, CAST(line_count AS INTEGER) AS line_count, spans, copies,
                   event_type, ts_raw, y, mo, d, sod_us, utc_offset_s, raw, message, {canon + ',' if canon else ''}
                   CASE WHEN {control} THEN NULL ELSE {extra} END AS extra,
                   ({control}) AS _py_extra, {', '.join(q.ident(c) for c in extras) or 'NULL AS _none'}
            FROM {src} {f'WHERE line_no < {int(cut)}' if cut is not None else ''}""").to_arrow_table()
        py = table.column("_py_extra").to_numpy(zero_copy_only=False)
        if py.any():  # control characters: Python's own JSON escaping, row by row
            values = table.column("extra").to_pylist()
            cols = {c: table.column(c).to_pylist() for c in extras}
            for i in np.flatnonzero(py):
                d = {c: cols[c][i] for c in extras if cols[c][i] is not None}
                values[i] = json.dumps(d, ensure_ascii=False, sort_keys=True) if d else None
            table = table.set_column(table.schema.get_field_index("extra"), "extra", pa.array(values, pa.string()))
        n = table.num_rows
        return pa.table([table.column(f.name) if f.name in table.column_names else pa.nulls(n, f.type)
                         for f in STAGE_SCHEMA], schema=STAGE_SCHEMA)


_PG_TAIL = "(?P<pg_message>.*)"
# the prefix pattern of a PostgreSQL line whose log_line_prefix is not known: any text, then the level
_GENERIC_HEAD = line_source(None)[4:-len(_PG_TAIL)]
# the level at the end of a match of the generic prefix (no level is a suffix of another)
_LEVEL_AT_END = "(?s:" + LEVEL_RE + ")$"


def _head_layer(rel: str, head: str, rx: str, extract: str, out: str, when: str) -> str:
    """``rel`` with column ``out``: the struct of the match of ``rx`` (the prefix pattern ``head``)
    at the start of ``_first`` and its groups, where ``when`` holds and it matches (else NULL).

    RE2 finds where a pattern matches with its DFA, but takes its groups with a slower automaton,
    which for the generic prefix's lazy ``.*?`` tries a level at every position (6x the DFA's time
    on PostgreSQL syslog lines). Its two groups are read without it: the DFA's match, the level
    that ends it (an end-anchored search), the prefix the text before the level."""
    if head != _GENERIC_HEAD:
        return (f"SELECT *, CASE WHEN {when} AND regexp_matches(_first, {q.lit('^' + rx)}) THEN {extract} END AS {out} "
                f"FROM ({rel})")
    m, lv = out + "_m", out + "_lv"
    return f"""SELECT * EXCLUDE ({m}, {lv}),
                      CASE WHEN {m} <> '' THEN struct_pack(_m := {m}, pg_prefix := left({m}, length({m}) - length({lv}) - 3),
                                                           pg_level := {lv}) END AS {out}
               FROM (SELECT *, regexp_extract({m}, {q.lit(_LEVEL_AT_END)}, 1) AS {lv}
                     FROM (SELECT *, CASE WHEN {when} THEN regexp_extract(_first, {q.lit('^' + rx)}, 0) END AS {m}
                           FROM ({rel})))"""


def _names_sql(names: list[str]) -> str:
    return "[" + ", ".join(q.lit(n) for n in names) + "]"


def _head_source(source: str) -> tuple[str, bool]:
    """A pattern ending in '(?P<message>.*)$' without that tail (True): on a line (no newline) the
    tail always matches the rest, so RE2 need only find where the head ends."""
    tail = "(?P<message>.*)$"
    if source.endswith(tail) and not source.endswith("\\" + tail):
        head = source[:-len(tail)]
        try:
            q.group_names(head)
        except re.error:
            return source, False
        return head, True
    return source, False


def _parse_spans(text: str | None) -> list[tuple[int, int]] | None:
    """'offset+length,…' (staging's spans) as pairs."""
    if not text:
        return None
    return [tuple(int(x) for x in part.split("+")) for part in text.split(",")]


def _unescape_sql(expr: str) -> str:
    """``engine.unescape_syslog``: rsyslog's '#ooo' for control bytes (never makes a new escape)."""
    out = expr
    for code in list(range(0o40)) + [0o177]:
        out = f"replace({out}, '#{code:03o}', chr({code}))"
    return f"CASE WHEN strpos({expr}, '#') = 0 THEN {expr} ELSE {out} END"


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _year_epochs(table: pa.Table, anchor: Anchor | None = None, tracker: RolloverTracker | None = None,
                 ys: YearState | None = None) -> tuple[pa.Table, YearState]:
    """``years.RolloverTracker`` over the year-less records in file order, fed once per run of
    equal days (the same answer for every record of the run); ``tracker`` and ``ys`` carry on from
    the slice before. With an ``anchor``, each record's own latest year not after it."""
    tracker = tracker or RolloverTracker()
    ys = ys or YearState()
    y = table.column("y").to_numpy(zero_copy_only=False)
    mo = table.column("mo").to_numpy(zero_copy_only=False)
    d = table.column("d").to_numpy(zero_copy_only=False)
    yearless = np.flatnonzero(pd_isnull(y) & ~pd_isnull(mo))
    if len(yearless) == 0:
        return table, ys
    if anchor is not None:
        return _anchored_years(table, yearless, mo, d, anchor), ys
    line_no = table.column("line_no").to_numpy()
    yearless = yearless[np.argsort(line_no[yearless], kind="stable")]  # file order
    m = mo[yearless].astype(np.int64)
    dd = d[yearless].astype(np.int64)
    o = _CUMULATIVE[m] + dd - 1
    epochs = np.empty(len(o), np.int64)
    starts = np.flatnonzero(np.r_[True, o[1:] != o[:-1]])
    ends = np.r_[starts[1:], len(o)]
    first_lines = line_no[yearless]
    for s, e in zip(starts.tolist(), ends.tolist()):
        epochs[s:e] = tracker.feed(int(m[s]), int(dd[s]), int(first_lines[s]))
    full = np.full(table.num_rows, None, object)
    full[yearless] = epochs
    ys.yearless += len(yearless)
    ys.last_epoch, ys.rollovers, ys.max_ordinal_in_last_epoch = (tracker.epoch, tracker.rollovers,
                                                                 tracker.max_ordinal_in_last_epoch)
    ys.feb29_epochs |= set(int(x) for x in epochs[(m == 2) & (dd == 29)])
    ys.guesses, ys.guessed = list(tracker.guesses), tracker.guessed
    i = table.schema.get_field_index("year_epoch")
    return table.set_column(i, "year_epoch", pa.array(full, pa.int32())), ys


_CUMULATIVE = np.array((0, 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335))


def _anchored_years(table: pa.Table, yearless: np.ndarray, mo, d, anchor: Anchor) -> pa.Table:
    o = _CUMULATIVE[mo[yearless].astype(np.int64)] + d[yearless].astype(np.int64) - 1
    limit = ordinal(anchor.latest.month, anchor.latest.day) + 1
    years = np.where(o <= limit, anchor.latest.year, anchor.latest.year - 1)
    full_y = table.column("y").to_pylist()
    notes = table.column("ts_note").to_pylist()
    note = f"year inferred: latest date not after {anchor.latest} ({anchor.basis})"
    for i, year in zip(yearless.tolist(), years.tolist()):
        full_y[i] = year
        notes[i] = notes[i] or note
    table = table.set_column(table.schema.get_field_index("y"), "y", pa.array(full_y, pa.int32()))
    return table.set_column(table.schema.get_field_index("ts_note"), "ts_note", pa.array(notes, pa.string()))


def pd_isnull(a: np.ndarray) -> np.ndarray:
    if a.dtype == object:
        return np.array([v is None for v in a], bool)
    return np.isnan(a) if a.dtype.kind == "f" else np.zeros(len(a), bool)
