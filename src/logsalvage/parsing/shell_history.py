"""Shell histories: one record per command, dated when the shell wrote a time.

bash with ``HISTTIMEFORMAT`` writes ``#1514183336`` on the line before each command; the format
file names that line's pattern (``shell_history: {stamp_pattern: ID}``) and a stamp dates the one
line after it, as bash itself reads its file (a stamp with no command after it is an issue). A
command with no stamp before it — the whole file when ``HISTTIMEFORMAT`` was never set, the lines
of a multi-line command after its first — is a record without a time, never a borrowed one. zsh's
extended history dates each line itself (``: 1514183336:0;command``) and writes a command's
newlines as a backslash at the end of the line (``shell_history: {backslash_continues: true}``).

Every record carries the fields the source's place gives (``ParseContext.source_fields``: the user
whose home directory holds the file) and its command as its message.
"""

from __future__ import annotations

from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import Line


class ShellHistory(LineHook):
    def __init__(self, asm):
        super().__init__(asm)
        conf = self.spec.raw.get("shell_history") or {}
        self.stamp_id = conf.get("stamp_pattern")
        self.backslash = bool(conf.get("backslash_continues"))
        self.fields = dict(asm.parser.ctx.source_fields or ())
        self.stamp: tuple[dict, Line, str, bool] | None = None  # a time line waiting for its command
        self.open: dict | None = None  # a command whose last line ended with a backslash

    def first_open_line(self) -> float:
        if self.stamp is not None:
            return self.stamp[1].line_no
        return self.open["_line_no"] if self.open is not None else float("inf")

    def interrupt(self) -> None:
        self._finish()
        if self.stamp is not None:
            _, line, text, _ = self.stamp
            self.stamp = None
            self.sink.issue(line.offset, line.length, line.line_no,
                            f"{self.spec.id}: a time line with no command after it", text)

    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        if self.open is not None:  # the next line of a multi-line command
            self.extend(self.open, line, text, valid, message=False)
            self.open["command"] += "\n" + text
            if not self._continues(text):
                self._finish()
            return
        rec = self.parse(text) if text.strip() else None
        if rec is None:
            self.unusable(line, data, text, valid)
            return
        if rec.get("_pattern") == self.stamp_id and self.stamp_id is not None:
            self.interrupt()  # two time lines in a row: the first dates nothing
            self.stamp = (rec, line, text, valid)
            return
        if self.stamp is not None:  # the command the time line before it dates
            head, stamp_line, stamp_text, stamp_valid = self.stamp
            self.stamp = None
            self.begin(head, stamp_line, stamp_text, stamp_valid)
            self.extend(head, line, text, valid, message=False)
            for key, value in rec.items():
                if key[0] != "_" and key not in ("ts_raw", "raw", "message") and value is not None:
                    head[key] = value
            rec = head
        else:
            self.begin(rec, line, text, valid)
        rec["command"] = rec.get("command") or ""
        self.open = rec
        if not self._continues(text):
            self._finish()

    def _continues(self, text: str) -> bool:
        return self.backslash and text.endswith("\\")

    def _finish(self) -> None:
        rec, self.open = self.open, None
        if rec is None:
            return
        if self.backslash:  # zsh's newline escape: 'a\\' + 'b' is the command 'a\nb'
            rec["command"] = rec["command"].replace("\\\n", "\n").removesuffix("\\")
        rec["message"] = rec["command"]
        for key, value in self.fields.items():
            rec.setdefault(key, value)
        self.parser.refine(rec)
        self.emit(rec)
