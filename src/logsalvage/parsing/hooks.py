"""The base of assemblers written as code (``engine.HOOKED``), for formats whose records a YAML file
cannot describe alone: the MySQL/MariaDB general log (the time written only when it changes), the
slow query log (a block of lines per statement), PostgreSQL's jsonlog (one JSON object a line).

A hook receives every line of its source from ``engine.Assembler`` and hands each finished record
back to it (``Assembler._out`` keeps them in file order); records still open are reported by
``first_open_line`` so nothing after them is passed on early. Any line that becomes an issue ends
the open records, so a record's lines are always contiguous. Nothing here raises on bad input.
"""

from __future__ import annotations

from logsalvage.parsing.engine import Assembler, candidates, excerpt, line_text, looks_binary, too_long_reason
from logsalvage.parsing.lines import Line


class LineHook:
    def __init__(self, asm: Assembler):
        self.asm = asm
        self.spec = asm.spec
        self.parser = asm.parser
        self.sink = asm.sink

    # -- what a hook implements ------------------------------------------------------------------
    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        raise NotImplementedError

    def interrupt(self) -> None:
        """A line that is no part of any record: finish every open one."""

    def first_open_line(self) -> float:
        """The first line of the oldest record not finished yet (infinity when none is open)."""
        return float("inf")

    # -- entry points (engine.Assembler) ---------------------------------------------------------
    def feed(self, line: Line) -> None:
        if line.too_long:
            self.interrupt()
            self.sink.issue(line.offset, line.length, line.line_no, too_long_reason(line), "")
            return
        data, text, valid = line_text(line)
        self.line(line, data, text, valid)

    def close(self) -> None:
        self.interrupt()

    # -- helpers ---------------------------------------------------------------------------------
    def parse(self, text: str) -> dict | None:
        """The record of a line by the format's patterns (not refined yet), or None (at once when
        no pattern can begin with its first character: a statement's line)."""
        if "\x00" in text or not candidates(self.parser.patterns, text):
            return None
        return self.parser.parse(text)

    def begin(self, rec: dict, line: Line, text: str, valid: bool) -> dict:
        """``rec`` becomes a record starting at ``line``."""
        self.asm._provenance(rec, line, text, valid)
        return rec

    def extend(self, rec: dict, line: Line, text: str, valid: bool, message: bool = True) -> None:
        """``line`` is part of ``rec`` too (with ``message``: its text continues the message)."""
        rec["raw"] += "\n" + text
        Assembler._extend(rec, line.offset, line.length)
        if message and rec.get("message") is not None:
            rec["message"] += "\n" + text
        if not valid:
            rec["encoding"] = "invalid-utf8 (backslash-escaped)"
            self.sink.issue(line.offset, line.length, line.line_no,
                            "invalid UTF-8: the event keeps the bytes as \\xNN escapes", excerpt(text),
                            event_offset=rec["_offset"])
        if line.no_newline:
            rec["line_end"] = "missing"

    def emit(self, rec: dict) -> None:
        self.asm._out(rec)

    def unusable(self, line: Line, data: bytes, text: str, valid: bool, reason: str | None = None) -> None:
        """A line no record can take: an issue, and the end of the open records."""
        self.interrupt()
        if not text.strip():
            self.sink.issue(line.offset, line.length, line.line_no, "empty line", "")
            return
        if reason is None:
            if looks_binary(data):
                reason = "binary data"
            else:
                reason = "no pattern of format %s matched" % self.spec.id
                if not valid:
                    reason += " (invalid UTF-8)"
        self.sink.issue(line.offset, line.length, line.line_no, reason, excerpt(text))
