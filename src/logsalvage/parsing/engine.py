"""The line engine: lines in, records and issues out, driven by a ``FormatSpec``.

A record is a plain dict: canonical fields (``model.CANONICAL_FIELDS``), anything else a format
captured (stored as JSON ``extra``), and reserved keys starting with ``_`` (timestamp parts and
provenance). Assemblers decide how lines make records: one line each, syslog with PostgreSQL's
``[seq-chunk]`` joining and indented continuations, PostgreSQL stderr with its tab-indented
continuation and DETAIL/STATEMENT parts, csvlog's multi-line quoted fields, and Apache's error
log with the headerless output of programs the server ran.

Nothing here raises on bad input: a line that cannot be used becomes an issue with its reason.
"""

from __future__ import annotations

import csv
import heapq
import importlib
import io
import itertools
import re
from collections import deque
from re import _parser as sre_parse  # the stdlib regex parser, to find a pattern's literal first character
from dataclasses import dataclass, field
from typing import Iterable, Protocol

from logsalvage.model import CANONICAL_FIELDS, FLOAT_FIELDS, INT_FIELDS
from logsalvage.parsing.apache_logformat import compile_logformat, split_request
from logsalvage.parsing.derived import DERIVATIONS
from logsalvage.parsing.dialect import LinearPattern, compile_shared, to_python
from logsalvage.parsing.formats import FormatSpec, LinePattern, Refinement
from logsalvage.parsing.lines import Line
from logsalvage.parsing.pg_prefix import PrefixLines, compile_line, split_remote
from logsalvage.parsing.timestamps import Stamp, parse_iso

# groups consumed by the engine itself, never copied to ``extra``
_CONSUMED = frozenset({"ts", "time", "request", "message", "pg_rest", "pg_message", "pg_remote",
                       "pg_remote_host", "pg_time", "pri_text"})
_NULLS = frozenset({"-", ""})
# what a record read again whole keeps of itself: where it lies and what its bytes were
_WHOLE_KEEPS = ("_offset", "_length", "_line_no", "_line_count", "_spans", "_copies", "raw", "encoding", "line_end")
PG_SECONDARY = frozenset({"DETAIL", "HINT", "STATEMENT", "CONTEXT", "LOCATION", "QUERY"})
PG_PART_FIELDS = {"DETAIL": "pg_detail", "HINT": "pg_hint", "STATEMENT": "statement",
                  "CONTEXT": "pg_context", "QUERY": "pg_query", "LOCATION": "pg_location"}
PG_SYSLOG_LIMIT = 900  # PostgreSQL splits syslog lines longer than this (src/backend/utils/error/elog.c)
_SYSLOG_ESCAPE = re.compile(r"#([0-3][0-7]{2})")
PG_CHUNK_WINDOW = 2000  # lines within which all chunks of one message arrive (one write_syslog() call)
EXCERPT = 200
_CHUNK = re.compile(r"\[(\d+)-(\d+)\] ?(.*)", re.DOTALL | re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def unescape_syslog(text: str) -> str:
    """Undo rsyslog's escaping of control bytes ('#011' for a tab); other '#ddd' text is left alone."""
    if "#" not in text:
        return text

    def repl(m: re.Match) -> str:
        code = int(m.group(1), 8)
        return chr(code) if code < 0o40 or code == 0o177 else m.group(0)

    return _SYSLOG_ESCAPE.sub(repl, text)


def join_pg_chunks(texts: list[str], prefixed: LinearPattern) -> str:
    """One PostgreSQL message from its syslog chunks (write_syslog() in elog.c, reversed).

    PostgreSQL cuts a message at each newline and puts a tab after it (so a chunk starting with a
    tab continues on a new line), and cuts a line longer than 900 bytes at the last whitespace
    before the limit, the next chunk starting with that whitespace; with no whitespace the cut
    falls at 897-900 bytes. A chunk starting with the prefix and a level (STATEMENT, DETAIL …)
    is a new part of the message.
    """
    text = texts[0]
    for prev, nxt in zip(texts, texts[1:]):
        if nxt.startswith(" "):
            text += nxt
        elif nxt.startswith("\t"):
            text += "\n" + nxt[1:]
        elif len(prev.encode()) >= PG_SYSLOG_LIMIT - 3 and not prefixed.match(nxt):
            text += nxt
        else:
            text += "\n" + nxt
    return text


# assemblers written as code of their own: the format's ``assembler:`` name -> (module, class). The
# class is given the Assembler and receives every line; its records are refined once whole
HOOKED = {
    "mysql-general": ("logsalvage.parsing.mysql_general", "GeneralLog"),
    "mysql-slow": ("logsalvage.parsing.mysql_slow", "SlowLog"),
    "jsonlog": ("logsalvage.parsing.jsonlog", "JsonLog"),
    "stanza": ("logsalvage.parsing.stanzas", "Stanzas"),
    "apt-history": ("logsalvage.parsing.stanzas", "AptHistory"),
    "shell-history": ("logsalvage.parsing.shell_history", "ShellHistory"),
    "auditd": ("logsalvage.parsing.auditd", "AuditLog"),
}


class Sink(Protocol):
    def event(self, rec: dict) -> None: ...

    def issue(self, offset: int, length: int, line_no: int, reason: str, excerpt: str,
              event_offset: int | None = None) -> None:
        """A byte range that is not an event, or (``event_offset`` given) a problem inside the event there."""


@dataclass
class ParseContext:
    """What the evidence says about how its logs were written."""

    pg_log_line_prefix: str | None = None
    # further prefixes the source's own records were written with (a server whose setting changed,
    # ``pg_prefix_choice``), tried after the first
    pg_other_prefixes: tuple[str, ...] = ()
    apache_logformats: tuple[str, ...] = ()
    # fields the source's place gives every record of it (a shell history's user, from the home
    # directory it lies in), as (name, value) pairs; formats whose assembler applies them say so
    source_fields: tuple[tuple[str, str], ...] = ()


def decode(data: bytes) -> tuple[str, bool]:
    """Text of a line and whether it was valid UTF-8 (invalid bytes kept as \\xNN escapes)."""
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace"), False


def line_text(line: Line) -> tuple[bytes, str, bool]:
    """A line's bytes without a trailing CR, its text, and whether it was valid UTF-8."""
    data = line.data[:-1] if line.data.endswith(b"\r") else line.data
    return (data, *decode(data))


def too_long_reason(line: Line) -> str:
    """The issue of a line over the length limit (its kept bytes are the limit)."""
    return f"line longer than the {len(line.data) or 'maximum'} byte limit"


def excerpt(text: str) -> str:
    return text[:EXCERPT]


def looks_binary(data: bytes) -> bool:
    if b"\x00" in data:
        return True
    sample = data[:512].decode("latin-1")
    return len(_CONTROL.findall(sample)) > max(2, len(sample) // 20)


_OUTCOMES = {"OK": "success", "FAIL": "failure", "FAILED": "failure"}
_INT_LIMIT = {name: 1 << (31 if CANONICAL_FIELDS[name] == "INTEGER" else 63) for name in INT_FIELDS}


def _convert(name: str, value: str | None):
    if value is None:
        return None
    if name == "outcome":
        return _OUTCOMES.get(value, value)
    if name in INT_FIELDS:
        try:
            number = int(value)
        except ValueError:
            return None
        # out of the column's range: no value (as a failed cast), never an overflow at staging
        return number if -_INT_LIMIT[name] <= number < _INT_LIMIT[name] else None
    if name in FLOAT_FIELDS:
        try:
            return float(value)
        except ValueError:
            return None
    return value


def _first_literal(rx: LinearPattern) -> str | None:
    """The character an anchored pattern must start with, or None when it could start with several."""
    if not rx.pattern.startswith("^"):
        return None
    try:
        ops = list(sre_parse.parse(to_python(rx.pattern)))
    except Exception:  # an exotic construct: no shortcut, just try the pattern
        return None
    for op, arg in ops:
        if op is sre_parse.AT:
            continue
        return chr(arg) if op is sre_parse.LITERAL else None
    return None


_DISPATCH: dict[int, tuple[tuple[LinePattern, ...], dict[str, tuple[LinePattern, ...]], tuple[LinePattern, ...]]] = {}


def candidates(patterns: tuple[LinePattern, ...], text: str) -> tuple[LinePattern, ...]:
    """The patterns, in order, that can match ``text`` given its first character."""
    entry = _DISPATCH.get(id(patterns))
    if entry is None or entry[0] is not patterns:
        firsts = [_first_literal(p.regex) for p in patterns]
        default = tuple(p for p, f in zip(patterns, firsts) if f is None)
        by_char = {c: tuple(p for p, f in zip(patterns, firsts) if f is None or f == c)
                   for c in set(firsts) if c is not None}
        entry = _DISPATCH[id(patterns)] = (patterns, by_char, default)
    return entry[1].get(text[:1], entry[2])


class LineParser:
    """Applies a format's patterns and refinements to one line of text."""

    def __init__(self, spec: FormatSpec, ctx: ParseContext | None = None):
        self.spec = spec
        self.ctx = ctx or ParseContext()
        extra = tuple(LinePattern(f"logformat{i + 1}", compile_shared(compile_logformat(f)), spec.event_type,
                                  source=compile_logformat(f))
                      for i, f in enumerate(self.ctx.apache_logformats)) if spec.id == "apache-access" else ()
        self.patterns = extra + spec.patterns
        self.pg_line = PrefixLines((self.ctx.pg_log_line_prefix, *self.ctx.pg_other_prefixes))
        self.pg_generic = compile_line(None)
        self._when_fields = tuple(dict.fromkeys(r.when_field for r in spec.refinements))
        self._ref_cache: dict[tuple, Refinement | None] = {}
        self._stamp_cache: dict[str, Stamp | None] = {}

    # -- single line -------------------------------------------------------------------------
    def parse(self, text: str) -> dict | None:
        for pat in self.patterns:
            m = pat.regex.match(text)
            if m is None:
                continue
            rec = self._fields(m.groupdict())
            stamp = None
            ts_field = self.spec.timestamp_field
            # a pattern without the timestamp group describes lines that carry none (PostgreSQL
            # stderr with an empty log_line_prefix): its records are timeless, never guessed
            if ts_field and ts_field in m.re.groupindex:
                raw_ts = m.group(ts_field)
                if raw_ts is None:
                    continue
                raw_ts = raw_ts.strip("[]")
                try:
                    stamp = self._stamp_cache[raw_ts]
                except KeyError:
                    if len(self._stamp_cache) > 50_000:
                        self._stamp_cache.clear()
                    stamp = self._stamp_cache[raw_ts] = self.spec.parse_timestamp(raw_ts)
                if stamp is None:
                    continue  # a header-shaped line with an impossible date: try the next pattern
                rec["ts_raw"] = raw_ts
            rec["_stamp"] = stamp
            rec["event_type"] = pat.event_type or self.spec.event_type
            for k, v in pat.set.items():
                rec[k] = v
            for name in self.spec.derived:
                DERIVATIONS[name].apply(rec)
            rec["_pattern"] = pat.id
            if self.spec.assembler not in HOOKED:  # a hook refines its records once they are whole
                self._refine(rec)
            return rec
        return None

    def _fields(self, groups: dict[str, str | None]) -> dict:
        rec: dict = {}
        for name, value in groups.items():
            if value is None:
                continue
            if name in _CONSUMED:
                rec["_" + name] = value
                continue
            if value in _NULLS and name != "message":
                continue
            rec[name] = _convert(name, value) if name in CANONICAL_FIELDS else value
        if "_request" in rec:
            for k, v in split_request(rec["_request"]).items():
                if v is not None and k not in rec:
                    rec[k] = v
        rec["message"] = rec.pop("_message", None) if "_message" in rec else None
        return rec

    def _refinement(self, rec: dict) -> Refinement | None:
        """The first refinement whose condition holds (decided once per distinct field value)."""
        key = tuple(rec.get(f) for f in self._when_fields)
        try:
            return self._ref_cache[key]
        except KeyError:
            pass
        found = None
        for ref in self.spec.refinements:
            value = rec.get(ref.when_field)
            if value is not None and ref.when.search(str(value)):
                found = ref
                break
        if len(self._ref_cache) > 10_000:
            self._ref_cache.clear()
        self._ref_cache[key] = found
        return found

    def read_whole(self, rec: dict) -> None:
        """A record continued on further lines, read again from all of them (its ``raw``): the
        fields of the whole text replace those of its first line; its provenance stays. Kept as it
        was when the whole text matches no pattern."""
        again = self.parse(rec["raw"]) if "\x00" not in rec["raw"] else None
        if again is None:
            return
        kept = {k: rec[k] for k in _WHOLE_KEEPS if k in rec}
        rec.clear()
        rec.update(again)
        rec.update(kept)

    def refine(self, rec: dict) -> None:
        """The format's refinements (or message patterns) applied to a record made elsewhere (a
        journal entry given the syslog format's meaning); a PostgreSQL one is left with ``_pg``
        and ``_pg_rest`` for joining and ``finish_pg``."""
        self._refine(rec)

    def _refine(self, rec: dict) -> None:
        ref = self._refinement(rec) if self.spec.refinements else None
        if ref is not None:
            if ref.special == "pg-syslog":
                self._pg_chunk(rec, ref)
                return
            self.apply_patterns(rec, ref.patterns, rec.get(ref.target), ref.event_type)
            return
        if self.spec.message_patterns and self.spec.assembler not in ("pg-stderr", "csvlog"):
            self.apply_patterns(rec, self.spec.message_patterns, rec.get("message"), None)

    @staticmethod
    def apply_patterns(rec: dict, patterns: Iterable[LinePattern], text: str | None, default_type: str | None) -> None:
        if text is not None:
            for pat in candidates(patterns, text):
                m = pat.regex.search(text)
                if m is None:
                    continue
                for name, value in m.groupdict().items():
                    if value is None or value in _NULLS or name in rec and rec[name] is not None:
                        continue
                    rec[name] = _convert(name, value) if name in CANONICAL_FIELDS else value
                for k, v in pat.set.items():
                    rec[k] = v
                if pat.event_type:
                    rec["event_type"] = pat.event_type
                return
        if default_type:
            rec["event_type"] = default_type

    # -- PostgreSQL ----------------------------------------------------------------------------
    def _pg_chunk(self, rec: dict, ref: Refinement) -> None:
        rec["event_type"] = ref.event_type
        rec["_pg"] = ref
        m = _CHUNK.match(rec.get("message") or "")
        if m and int(m[1]) < 1 << 63 and int(m[2]) < 1 << 31:  # larger numbers are text, not PostgreSQL's
            rec["pg_seq"], rec["pg_chunk"], rec["_pg_rest"] = int(m[1]), int(m[2]), m[3]
        else:  # syslog_sequence_numbers = off
            rec["_pg_rest"] = rec.get("message") or ""

    def finish_pg(self, rec: dict, text: str, patterns: Iterable[LinePattern]) -> None:
        """Fields of a whole PostgreSQL message (all its chunks or continuation lines joined)."""
        first, *rest = text.split("\n")
        m = self.pg_line.match(first) or self.pg_generic.match(first)
        if m is None:
            rec.setdefault("event_type", "postgresql.unparsed")
            return
        g = m.groupdict()
        for name, value in g.items():
            if value is None or name in _CONSUMED or value in _NULLS:
                continue
            if name not in rec or rec[name] is None:
                rec[name] = _convert(name, value) if name in CANONICAL_FIELDS else value
        host, port = split_remote(g.get("pg_remote") or g.get("pg_remote_host"))
        if host and "source_ip" not in rec:
            rec["source_ip"] = host
            if port is not None:
                rec["source_port"] = port
        if g.get("pg_time") and "_pg_stamp" not in rec:
            rec["_pg_stamp"] = parse_iso(g["pg_time"])
        primary = [g["pg_message"]]
        part_field = None
        for line in rest:
            pm = self.pg_line.match(line) or self.pg_generic.match(line)
            if pm and pm.group("pg_level") in PG_SECONDARY:
                part_field = PG_PART_FIELDS[pm.group("pg_level")]
                rec[part_field] = pm.group("pg_message")
            elif part_field:
                rec[part_field] += "\n" + line
            else:
                primary.append(line)
        message = "\n".join(primary)
        rec["pg_message"] = message
        level = g.get("pg_level")
        rec["pg_level"] = level
        rec["log_level"] = level
        self.apply_patterns(rec, patterns, message, None)
        rec["event_type"] = rec.get("event_type") or "postgresql"
        if rec["event_type"] in ("postgresql", "postgresql.syslog") and level:
            rec["event_type"] = f"postgresql.{level.lower()}"


@dataclass
class _Pending:
    rec: dict
    texts: list[str] = field(default_factory=list)


class Assembler:
    """Feeds lines through a ``LineParser`` and emits whole records and issues to a sink."""

    def __init__(self, spec: FormatSpec, ctx: ParseContext, sink: Sink):
        self.spec = spec
        self.parser = LineParser(spec, ctx)
        self.sink = sink
        self.last: dict | None = None  # the last record still open for continuation lines
        self.pg_open: dict[int, _Pending] = {}  # pid -> message being joined from [seq-chunk] lines
        self.pg_order: deque[tuple[int, int, _Pending]] = deque()  # (line_no, pid, pending) oldest first
        self.dated: dict | None = None  # the last record with a timestamp of its own
        self.undated: list[dict] = []  # headerless lines waiting for a dated one
        self.csv_lines: list[Line] = []
        self._held: list[tuple[int, int, dict]] = []  # finished records not yet passed on (file order)
        self._seq = itertools.count()
        self.pg_patterns = self._pg_patterns()
        # formats whose writers put multi-line messages out verbatim (rsyslog, sysklogd) declare
        # what a record's first line can look like; any other line directly after a record,
        # indented or not, continues it
        cont = (spec.raw.get("continuation") or {}).get("unindented_unless")
        self.header_like = re.compile(cont) if cont else None
        # the format's line pattern read again over all the lines of a continued record (nginx writes
        # the client and request after a PHP stack trace it quotes)
        self.read_whole = bool((spec.raw.get("continuation") or {}).get("read_whole"))
        self.hook = None
        if spec.assembler in HOOKED:
            module, name = HOOKED[spec.assembler]
            self.hook = getattr(importlib.import_module(module), name)(self)

    def _pg_patterns(self) -> tuple[LinePattern, ...]:
        for ref in self.spec.refinements:
            if ref.special == "pg-syslog":
                return ref.patterns
        return self.spec.message_patterns

    # -- file order ------------------------------------------------------------------------------
    def _out(self, rec: dict) -> None:
        """A finished record waits until every record that starts before it is finished too, so the
        sink sees them in file order (year inference walks them in that order) even when a
        PostgreSQL message is completed lines after the records that follow its first chunk."""
        heapq.heappush(self._held, (rec["_line_no"], next(self._seq), rec))

    def _drain(self, everything: bool = False) -> None:
        held = self._held
        if not held:
            return
        if everything:
            limit = float("inf")
        else:
            limit = float("inf")  # the first line of the oldest record still open, if any
            if self.pg_order:
                limit = min(limit, self.pg_order[0][0])
            if self.last is not None:
                limit = min(limit, self.last["_line_no"])
            if self.undated:
                limit = min(limit, self.undated[0]["_line_no"])
            if self.hook is not None:
                limit = min(limit, self.hook.first_open_line())
        while held and held[0][0] < limit:
            self.sink.event(heapq.heappop(held)[2])

    # -- entry points ---------------------------------------------------------------------------
    def feed(self, line: Line) -> None:
        self._feed(line)
        if self._held:
            self._drain()

    def _feed(self, line: Line) -> None:
        if self.hook is not None:
            self.hook.feed(line)
            return
        if line.too_long:
            self._flush_last()
            self.sink.issue(line.offset, line.length, line.line_no, too_long_reason(line), "")
            return
        data, text, valid = line_text(line)
        if self.spec.assembler == "csvlog":
            self._csv_feed(line)
            return
        if not text.strip():
            if text[:1] in (" ", "\t") and self._continues(line):
                self._continue(self.last, line, text)  # a blank line inside a tab-indented statement
                return
            self.sink.issue(line.offset, line.length, line.line_no, "empty line", "")
            return
        rec = self.parser.parse(text) if "\x00" not in text else None
        if rec is not None:
            self._provenance(rec, line, text, valid)
            self._record(rec, line, text)
        else:
            self._unmatched(line, data, text, valid)

    def close(self) -> None:
        if self.hook is not None:
            self.hook.close()
        if self.spec.assembler == "csvlog":
            self._csv_flush(final=True)
        self._flush_last()
        for pid in list(self.pg_open):
            self._emit_pg(self.pg_open.pop(pid))
        self.pg_order.clear()
        if self.undated:
            for rec in self.undated:  # no dated line at all: keep them, timeless
                self._out(rec)
            self.undated = []
        self._drain(everything=True)

    # -- records --------------------------------------------------------------------------------
    def _provenance(self, rec: dict, line: Line, text: str, valid: bool) -> None:
        rec["_offset"] = line.offset
        rec["_length"] = line.length
        rec["_line_no"] = line.line_no
        rec["_line_count"] = 1
        rec["_spans"] = list(line.spans) if line.spans else None
        rec["raw"] = text
        if not valid:
            rec["encoding"] = "invalid-utf8 (backslash-escaped)"
            self.sink.issue(line.offset, line.length, line.line_no,
                            "invalid UTF-8: the event keeps the bytes as \\xNN escapes", excerpt(text),
                            event_offset=line.offset)
        if line.no_newline:
            rec["line_end"] = "missing"

    def _record(self, rec: dict, line: Line, text: str) -> None:
        if "_pg" in rec and self.spec.assembler == "syslog":
            self._flush_last()
            self._pg_line(rec, line)
            return
        if self.spec.assembler == "pg-stderr":
            self._pg_stderr(rec)
            return
        self._flush_last()
        self.last = rec
        if rec.get("_stamp") is not None:
            self._dated(rec)

    def _flush_last(self) -> None:
        rec, self.last = self.last, None
        if rec is None:
            return
        if self.spec.assembler == "pg-stderr":
            text = rec.pop("_pg_text", None)
            if text is not None:
                self.parser.finish_pg(rec, text, self.spec.message_patterns)
        elif self.read_whole and rec["_line_count"] > 1:
            self.parser.read_whole(rec)
        self._out(rec)

    @staticmethod
    def _extend(rec: dict, offset: int, length: int) -> None:
        """Make a further byte range part of a record: one range while contiguous, spans once not."""
        spans = rec["_spans"]
        if spans is None and rec["_offset"] + rec["_length"] == offset:
            rec["_length"] += length
        else:
            if spans is None:
                spans = rec["_spans"] = [(rec["_offset"], rec["_length"])]
            spans.append((offset, length))
        rec["_line_count"] += 1

    @staticmethod
    def _end(rec: dict) -> int:
        spans = rec["_spans"]
        return spans[-1][0] + spans[-1][1] if spans else rec["_offset"] + rec["_length"]

    def _continue(self, rec: dict, line: Line, text: str) -> None:
        """Append a continuation line to an open record."""
        rec["raw"] += "\n" + text
        self._extend(rec, line.offset, line.length)
        if "_pg_text" in rec:  # PostgreSQL puts a tab after each newline of a message
            rec["_pg_text"] += "\n" + (text[1:] if text.startswith("\t") else text)
        elif rec.get("message") is not None:
            rec["message"] += "\n" + text

    def _continues(self, line: Line) -> bool:
        """Whether a headerless line could continue the open record: right after it, in a format that has
        them (syslog, PostgreSQL stderr, and a one-line format that declares ``continuation``: nginx's
        error log quoting a PHP stack trace, vsftpd's multi-line FTP replies)."""
        return (self.spec.assembler in ("syslog", "pg-stderr") or self.spec.assembler == "lines"
                and self.header_like is not None) and self.last is not None and self._end(self.last) == line.offset

    def _unmatched(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        asm = self.spec.assembler
        if looks_binary(data):
            self._flush_last()
            self.sink.issue(line.offset, line.length, line.line_no, "binary data", excerpt(text))
            return
        if self._continues(line) and (text[:1] in (" ", "\t")
                                      or self.header_like is not None and not self.header_like.match(text)):
            self._continue(self.last, line, text)
            return
        if asm == "apache-error" or self.spec.unframed:
            if self._unframed(line, text, valid):
                return
        self._flush_last()
        reason = "no pattern of format %s matched" % self.spec.id
        if not valid:
            reason += " (invalid UTF-8)"
        self.sink.issue(line.offset, line.length, line.line_no, reason, excerpt(text))

    # -- headerless program output (Apache error_log) -------------------------------------------
    def _unframed(self, line: Line, text: str, valid: bool) -> bool:
        for rule in self.spec.unframed:
            m = rule.regex.search(text)
            if m is None:
                continue
            rec = {k: (_convert(k, v) if k in CANONICAL_FIELDS else v)
                   for k, v in m.groupdict().items() if v is not None and k != "ts"}
            rec["event_type"] = rule.event_type
            rec["message"] = text
            self._provenance(rec, line, text, valid)
            own = parse_iso(m.group("ts")) if rule.own_timestamp and "ts" in m.re.groupindex and m.group("ts") else None
            self._flush_last()
            if own is not None:
                rec["_stamp"] = own
                rec["ts_raw"] = m.group("ts")
                self._dated(rec)
                self._out(rec)
            elif self.dated is not None:
                self._borrow_time(rec, self.dated)
                self._out(rec)
            else:
                self.undated.append(rec)
            return True
        return False

    def _dated(self, rec: dict) -> None:
        self.dated = rec
        if self.undated:
            for waiting in self.undated:
                self._borrow_time(waiting, rec)
                self._out(waiting)
            self.undated = []

    @staticmethod
    def _borrow_time(rec: dict, dated: dict) -> None:
        rec["_stamp"] = dated["_stamp"]
        rec["ts_raw"] = dated.get("ts_raw")
        rec["_ts_note"] = f"no timestamp of its own: time of the dated line {dated['_line_no']} (offset {dated['_offset']})"

    # -- PostgreSQL through syslog ------------------------------------------------------------
    def _pg_line(self, rec: dict, line: Line) -> None:
        pid = rec.get("process_pid") or -1
        chunk = rec.get("pg_chunk")
        rest = rec.pop("_pg_rest", "")
        open_ = self.pg_open.get(pid)
        if chunk is None or chunk == 1:
            if open_ is not None:
                self._emit_pg(self.pg_open.pop(pid))
            pending = _Pending(rec, [rest])
            if chunk is None:
                self._emit_pg(pending)
                return
            self.pg_open[pid] = pending
            self.pg_order.append((line.line_no, pid, pending))
            self._emit_settled(line.line_no)
            return
        seq = rec.get("pg_seq")
        if open_ is not None and open_.rec.get("pg_seq") == seq:
            joined = len(open_.texts)
            if chunk == joined + 1:
                head = open_.rec
                self._extend(head, line.offset, line.length)
                head["raw"] += "\n" + rec["raw"]
                open_.texts.append(rest)
                return
            if chunk <= joined and open_.texts[chunk - 1] == rest:
                # a second copy of a chunk already joined (salvage: the same line found twice)
                self.sink.issue(line.offset, line.length, line.line_no,
                                f"PostgreSQL chunk [{seq}-{chunk}] repeated: the same text is already part of "
                                "its message", excerpt(rec["raw"]))
                return
            # out of sequence (salvage: a chunk line lost between them): the message ends with the
            # chunks joined in order, and this one has no predecessor
            self._emit_pg(self.pg_open.pop(pid))
            self.sink.issue(line.offset, line.length, line.line_no,
                            f"PostgreSQL continuation chunk [{seq}-{chunk}] out of sequence: its message ends "
                            "before it", excerpt(rec["raw"]))
            return
        self.sink.issue(line.offset, line.length, line.line_no,
                        f"PostgreSQL continuation chunk [{seq}-{chunk}] without its first chunk",
                        excerpt(rec["raw"]))

    def _emit_settled(self, line_no: int) -> None:
        """Emit messages whose first chunk is too far back for more chunks to follow."""
        order = self.pg_order
        while order and order[0][0] < line_no - PG_CHUNK_WINDOW:
            _, pid, pending = order.popleft()
            if self.pg_open.get(pid) is pending:
                del self.pg_open[pid]
                self._emit_pg(pending)

    def _emit_pg(self, pending: _Pending) -> None:
        rec = pending.rec
        rec.pop("_pg", None)
        text = join_pg_chunks([unescape_syslog(t) for t in pending.texts], self.parser.pg_line)
        rec["message"] = text
        self.parser.finish_pg(rec, text, self.pg_patterns)
        self._out(rec)

    # -- PostgreSQL stderr ----------------------------------------------------------------------
    def _pg_stderr(self, rec: dict) -> None:
        """A prefixed line: a new message, or a DETAIL/STATEMENT part of the one before."""
        level_m = self.parser.pg_line.match(rec["raw"]) or self.parser.pg_generic.match(rec["raw"])
        level = level_m.group("pg_level") if level_m else None
        prev = self.last  # still open: it may get DETAIL/STATEMENT parts
        if level in PG_SECONDARY and prev is not None and prev.get("process_pid") == rec.get("process_pid"):
            prev["_pg_text"] += "\n" + rec["raw"]
            prev["raw"] += "\n" + rec["raw"]
            self._extend(prev, rec["_offset"], rec["_length"])
            self.last = prev
            return
        self._flush_last()
        rec["_pg_text"] = rec["raw"]
        self.last = rec
        if rec.get("_stamp") is not None:
            self._dated(rec)

    # -- csvlog ----------------------------------------------------------------------------------
    def _csv_feed(self, line: Line) -> None:
        self.csv_lines.append(line)
        joined = b"\n".join(ln.data for ln in self.csv_lines)
        if joined.count(b'"') % 2 == 0:
            self._csv_flush(final=False)
        elif sum(ln.length for ln in self.csv_lines) > (1 << 20):
            self._csv_flush(final=True)

    def _csv_flush(self, final: bool) -> None:
        lines, self.csv_lines = self.csv_lines, []
        if not lines:
            return
        first = lines[0]
        length = sum(ln.length for ln in lines)
        data = b"\n".join(ln.data for ln in lines)
        text, valid = decode(data)
        if final and data.count(b'"') % 2:
            self.sink.issue(first.offset, length, first.line_no, "csvlog record with an unterminated quote",
                            excerpt(text))
            return
        if not text.strip():
            self.sink.issue(first.offset, length, first.line_no, "empty line", "")
            return
        try:
            row = next(csv.reader(io.StringIO(text)))
        except (csv.Error, StopIteration) as exc:
            self.sink.issue(first.offset, length, first.line_no, f"csvlog record not valid CSV: {exc}", excerpt(text))
            return
        rec = self._csv_record(row)
        if rec is None:
            self.sink.issue(first.offset, length, first.line_no, "csvlog record without a valid log_time",
                            excerpt(text))
            return
        rec.update(_offset=first.offset, _length=length, _line_no=first.line_no, _line_count=len(lines),
                   _spans=None, raw=text)
        if not valid:
            rec["encoding"] = "invalid-utf8 (backslash-escaped)"
        self._out(rec)

    CSV_COLUMNS = ("log_time", "db_user", "db_name", "process_pid", "connection_from", "db_session",
                   "pg_session_line", "pg_command_tag", "pg_session_start", "pg_vxid", "pg_xid", "pg_level",
                   "sql_state", "pg_message", "pg_detail", "pg_hint", "pg_internal_query", "pg_internal_query_pos",
                   "pg_context", "statement", "pg_query_pos", "pg_location", "db_application",
                   "pg_backend_type", "pg_leader_pid", "pg_query_id")

    @staticmethod
    def _csv_remote(value: str | None) -> tuple[str | None, int | None]:
        """csvlog's connection_from is 'host:port' (elog.c), so an IPv6 client reads '::1:16790'."""
        if value and ":" in value:
            host, _, port = value.rpartition(":")
            if host and port.isdigit():
                return host, int(port)
        return split_remote(value)

    def _csv_record(self, row: list[str]) -> dict | None:
        if len(row) < 14:
            return None
        stamp = parse_iso(row[0])
        if stamp is None:
            return None
        rec: dict = {"_stamp": stamp, "ts_raw": row[0]}
        for name, value in zip(self.CSV_COLUMNS[1:], row[1:]):
            if value in ("",):
                continue
            rec[name] = _convert(name, value) if name in CANONICAL_FIELDS else value
        host, port = self._csv_remote(rec.pop("connection_from", None))
        if host:
            rec["source_ip"], rec["source_port"] = host, port
        rec["log_level"] = rec.get("pg_level")
        rec["message"] = rec.get("pg_message")
        self.parser.apply_patterns(rec, self.spec.message_patterns, rec.get("pg_message"), None)
        rec.setdefault("event_type", f"postgresql.{(rec.get('pg_level') or 'log').lower()}")
        if rec["event_type"] is None:
            rec["event_type"] = f"postgresql.{(rec.get('pg_level') or 'log').lower()}"
        return rec


def parse_text(spec: FormatSpec, text: str, ctx: ParseContext | None = None) -> tuple[list[dict], list[tuple]]:
    """Parse a whole text (tests, samples): returns (records, issues)."""
    from logsalvage.parsing.lines import iter_lines

    events: list[dict] = []
    issues: list[tuple] = []

    class _Collect:
        def event(self, rec: dict) -> None:
            events.append(rec)

        def issue(self, offset, length, line_no, reason, excerpt_, event_offset=None):
            if event_offset is None:  # only ranges that did not become events
                issues.append((offset, length, line_no, reason, excerpt_))

    asm = Assembler(spec, ctx or ParseContext(), _Collect())
    for line in iter_lines(io.BytesIO(text.encode("utf-8"))):
        asm.feed(line)
    asm.close()
    events.sort(key=lambda r: r["_offset"])
    return events, issues
