"""A log file being composed line by line, with the counts truth.json reports for it."""

from __future__ import annotations

from .stamps import iso


class LogText:
    """Lines of one log file plus its truth: records, physical lines, malformed lines, span.

    In the formats composed here every record is one physical line. ``add_malformed`` plants a
    line a parser must reject (it is not a record); ``truncate_last`` cuts the final line short
    and drops its newline (the record it was becomes malformed). A record's time is None when
    the line carries no timestamp (bots' stderr in error_log); first/last ignore those.
    """

    def __init__(self, fmt: str):
        self.format = fmt
        self._lines: list[bytes] = []
        self._times: list[int | None] = []
        self._is_record: list[bool] = []
        self.malformed: list[dict] = []
        self._truncated = False

    def add(self, line: str | bytes, t: int | None) -> None:
        if isinstance(line, str):
            line = line.encode("utf-8")
        assert b"\n" not in line, line
        self._lines.append(line)
        self._times.append(t)
        self._is_record.append(True)

    def add_malformed(self, raw: bytes, reason: str, note: str) -> None:
        assert b"\n" not in raw
        self._lines.append(raw)
        self._times.append(None)
        self._is_record.append(False)
        self.malformed.append({"line": len(self._lines), "reason": reason, "note": note,
                               "length": len(raw)})

    def truncate_last(self, keep: int, note: str) -> None:
        """Cut the last line to ``keep`` bytes, with no newline after it."""
        self._lines[-1] = self._lines[-1][:keep]
        self._times[-1] = None
        self._is_record[-1] = False
        self._truncated = True
        self.malformed.append({"line": len(self._lines), "reason": "truncated", "note": note,
                               "length": keep})

    def insert_malformed(self, index: int, raw: bytes, reason: str, note: str) -> None:
        """Plant a malformed line before line ``index`` (0-based)."""
        self._lines.insert(index, raw)
        self._times.insert(index, None)
        self._is_record.insert(index, False)
        for m in self.malformed:
            if m["line"] > index:
                m["line"] += 1
        self.malformed.append({"line": index + 1, "reason": reason, "note": note, "length": len(raw)})
        self.malformed.sort(key=lambda m: m["line"])

    def line(self, index: int) -> bytes:
        return self._lines[index]

    def record_lines(self):
        """The lines that are records, in file order."""
        return (line for line, ok in zip(self._lines, self._is_record) if ok)

    @property
    def lines(self) -> int:
        return len(self._lines)

    @property
    def records(self) -> int:
        return sum(self._is_record)

    def times(self) -> list[int]:
        return [t for t in self._times if t is not None]

    def data(self) -> bytes:
        out = b"\n".join(self._lines)
        if self._lines and not self._truncated:
            out += b"\n"
        return out

    def stats(self) -> dict:
        ts = self.times()
        return {"format": self.format, "records": self.records, "lines": self.lines,
                "malformed": len(self.malformed),
                "first": iso(min(ts)) if ts else None, "last": iso(max(ts)) if ts else None}

    def entries(self):
        """(line, time, is_record) for every line, in file order."""
        return zip(self._lines, self._times, self._is_record)
