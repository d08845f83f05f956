"""Records that are stanzas of lines: apt's history.log (``Start-Date:`` … ``End-Date:``, one
transaction) and term.log (``Log started:`` … ``Log ended:``, the output of one dpkg run).

The format file names the pattern of a stanza's first line and of its last (``stanza: {start: ID,
end: ID}``); the first line's time is the record's. The format's other patterns give fields from
the lines between, the first line to give a field winning (its ``set:`` values too); a line no
pattern takes is kept in the record all the same. The message is the stanza's body, the lines
between its first and last. Blank lines before a first line belong to the record it opens: apt
writes ``"\\nStart-Date: …"`` in one piece. A line outside any stanza is an issue; a stanza cut short
(a new first line, a line that cannot be part of it, the end of the file) is a record noted
``stanza_end: missing``. A record keeps at most ``MAX_TEXT`` characters of text; the lines past
that stay in its byte range and the record says how many bytes it did not keep.
"""

from __future__ import annotations

from logsalvage.parsing.engine import Assembler, too_long_reason
from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import MAX_LINE, Line

MAX_TEXT = MAX_LINE  # characters of one record's text (raw and message), as one line may hold
_NOT_FIELDS = frozenset({"event_type", "message", "ts_raw", "raw"})


class Stanzas(LineHook):
    def __init__(self, asm):
        super().__init__(asm)
        conf = self.spec.raw.get("stanza") or {}
        self.start_id, self.end_id = conf.get("start"), conf.get("end")
        self.open: dict | None = None
        self.body: list[str] = []
        self.kept = 0  # characters of text the open record holds
        self.blanks: list[Line] = []  # blank lines waiting for the stanza they precede

    # -- LineHook ------------------------------------------------------------------------------
    def feed(self, line: Line) -> None:
        if line.too_long and self.open is not None:  # an issue of its own; the stanza goes on
            self.sink.issue(line.offset, line.length, line.line_no, too_long_reason(line), "",
                            event_offset=self.open["_offset"])
            self._extend_range(self.open, line)
            return
        super().feed(line)

    def first_open_line(self) -> float:
        firsts = [ln.line_no for ln in self.blanks[:1]] + ([self.open["_line_no"]] if self.open else [])
        return min(firsts, default=float("inf"))

    def interrupt(self) -> None:
        self._finish(complete=False)
        self._drop_blanks()

    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        if not text.strip():
            if self.open is not None:
                self._add(line, text, valid, body=True)
            else:
                self.blanks.append(line)
            return
        rec = self.parse(text)
        pattern = rec.get("_pattern") if rec is not None else None
        if pattern == self.start_id:
            self._finish(complete=False)
            self._begin(rec, line, text, valid)
            return
        if self.open is None:
            self.unusable(line, data, text, valid)
            return
        if rec is not None:
            for key, value in rec.items():
                if key[0] != "_" and key not in _NOT_FIELDS and value is not None and self.open.get(key) is None:
                    self.open[key] = value
        self._add(line, text, valid, body=pattern != self.end_id)
        if pattern == self.end_id:
            self._finish(complete=True)

    # -- what a format adds (apt's package lists) ------------------------------------------------
    def complete(self, rec: dict) -> None:
        """Fields of a whole stanza that its lines' patterns cannot give."""

    # -- the open record ---------------------------------------------------------------------------
    def _begin(self, rec: dict, line: Line, text: str, valid: bool) -> None:
        rec["message"] = None  # the body, once whole
        blanks, self.blanks = self.blanks, []
        if blanks:  # the record begins with them: one range from the first
            first = blanks[0]
            line = Line(first.line_no, first.offset, line.data, line.offset + line.length - first.offset,
                        no_newline=line.no_newline)
            text = "\n" * len(blanks) + text
        self.begin(rec, line, text, valid)
        rec["_line_count"] += len(blanks)
        self.open, self.body, self.kept = rec, [], len(rec["raw"])

    def _add(self, line: Line, text: str, valid: bool, body: bool) -> None:
        rec = self.open
        if self.kept + len(text) + 1 > MAX_TEXT:
            self._extend_range(rec, line)
            rec["text_not_kept_bytes"] = rec.get("text_not_kept_bytes", 0) + line.length
            return
        self.extend(rec, line, text, valid, message=False)
        self.kept += len(text) + 1
        if body:
            self.body.append(text)

    @staticmethod
    def _extend_range(rec: dict, line: Line) -> None:
        Assembler._extend(rec, line.offset, line.length)

    def _finish(self, complete: bool) -> None:
        rec, self.open = self.open, None
        if rec is None:
            return
        rec["message"] = "\n".join(self.body)
        self.body = []
        if not complete:
            rec["stanza_end"] = "missing"
        self.complete(rec)
        self.parser.refine(rec)
        self.emit(rec)

    def _drop_blanks(self) -> None:
        for ln in self.blanks:
            self.sink.issue(ln.offset, ln.length, ln.line_no, "empty line", "")
        self.blanks = []


def apt_packages(text: str) -> list[str]:
    """apt's package list, item by item as apt wrote it: 'nmap:amd64 (7.40-1), libpcap0.8:amd64
    (1.8.1-3, automatic)' is ['nmap:amd64 (7.40-1)', 'libpcap0.8:amd64 (1.8.1-3, automatic)'] (an
    upgrade's item names the version before and after)."""
    items = [item.strip() for item in text.split("), ")]
    return [item if item.endswith(")") or "(" not in item else item + ")" for item in items if item]


class AptHistory(Stanzas):
    """apt's history.log: the packages of the record's action (its first action line, captured
    whole by the format's pattern under the action's name) as a list, ``packages``; every action
    line stays whole in its own field (``install``, ``upgrade`` …)."""

    def complete(self, rec: dict) -> None:
        action = rec.get("action")
        if action and isinstance(rec.get(action), str):
            rec["packages"] = apt_packages(rec[action])
