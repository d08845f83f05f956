"""The MySQL/MariaDB general query log (``general_log_file``): the lines ``mysql-general.yaml``
reads, put together into records.

What the format file cannot say by itself:

* MySQL 5.x and MariaDB write the time only when it changed since the record before (two tabs in
  its place otherwise): such a record takes the last time written, which is its own to the second
  (the log's resolution), and says where it came from. Before any written time it stays timeless;
* a statement is written as it was sent: a line that is no record's first continues the record
  before it (``message``, then the refinement's ``statement``, hold all its lines);
* the banner (``mysql_banner``) is one record;
* a Connect record is the attempt: both servers log it before they check the password, then a
  second Connect 'Access denied for user …' when the check fails. The attempt's ``outcome`` is
  settled by the connection's next record (a denial: failure; anything else: success) or, when the
  connection is quiet, by ``SETTLE_LINES`` lines without a denial (success: the server answers a
  login within the handshake); at the end of the log an unsettled attempt has no outcome.
"""

from __future__ import annotations

from logsalvage.parsing.engine import looks_binary
from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import Line
from logsalvage.parsing.mysql_banner import Banner

SETTLE_LINES = 1000
CONNECT = "mysql.connect"


class GeneralLog(LineHook):
    def __init__(self, asm):
        super().__init__(asm)
        self.banner = Banner(self)
        self.open: dict | None = None  # the record later lines may continue
        self.dated: dict | None = None  # the last record with a time written
        self.pending: dict[str, dict] = {}  # connection id -> its Connect, outcome not settled yet

    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        self._settle_quiet(line.line_no)
        blank = not text.strip()
        rec = None if blank else self.parse(text)
        if rec is None:
            if self.open is not None and (blank or not looks_binary(data)):
                self.extend(self.open, line, text, valid)
            else:
                self.unusable(line, data, text, valid)
            return
        self._finish()
        if self.banner.take(rec, line, text, valid):
            return
        self.banner.close()
        self.open = self.begin(rec, line, text, valid)
        if rec["_stamp"] is not None:
            self.dated = rec
        elif self.dated is not None:
            self._take_time(rec, self.dated)

    @staticmethod
    def _take_time(rec: dict, dated: dict) -> None:
        rec["_stamp"] = dated["_stamp"]
        rec["ts_raw"] = dated.get("ts_raw")
        rec["_ts_note"] = (f"the general log writes the time only when it changes: the time written on line "
                           f"{dated['_line_no']} (offset {dated['_offset']})")

    # -- records ---------------------------------------------------------------------------------
    def _finish(self) -> None:
        rec, self.open = self.open, None
        if rec is None:
            return
        self.parser.refine(rec)
        conn = rec.get("connection_id")
        if rec.get("event_type") == CONNECT:
            if rec.get("outcome") == "failure":  # 'Access denied …': the attempt before it failed
                attempt = self.pending.pop(conn, None)
                if attempt is not None:
                    self._settled(attempt, "failure")
            else:
                earlier = self.pending.pop(conn, None)
                if earlier is not None:  # a new login on the same connection (Change user)
                    self._settled(earlier, "success")
                self.pending[conn] = rec
                return
        elif conn in self.pending:
            self._settled(self.pending.pop(conn), "success")
        self.emit(rec)

    def _settled(self, rec: dict, outcome: str | None) -> None:
        if outcome is not None:
            rec["outcome"] = outcome
        self.emit(rec)

    def _settle_quiet(self, line_no: int) -> None:
        while self.pending:
            conn, rec = next(iter(self.pending.items()))
            if line_no - rec["_line_no"] < SETTLE_LINES:
                break
            del self.pending[conn]
            self._settled(rec, "success")

    # -- hook interface --------------------------------------------------------------------------
    def interrupt(self) -> None:
        self._finish()
        self.banner.close()

    def close(self) -> None:
        self.interrupt()
        for rec in self.pending.values():
            self._settled(rec, None)
        self.pending.clear()

    def first_open_line(self) -> float:
        first = min(self.banner.first_line(), self.open["_line_no"] if self.open is not None else float("inf"))
        if self.pending:
            first = min(first, next(iter(self.pending.values()))["_line_no"])
        return first
