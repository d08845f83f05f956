"""The MySQL/MariaDB slow query log: one ``mysql.slow_query`` record per logged statement, from the
block of lines the server writes for it (``mysql-slow.yaml`` reads each line; this puts the blocks
together).

A block: '# Time:' (only when the second changed since the block before: a block without one
takes the last written), '# User@Host:', further '# Key: value' lines (MariaDB and Percona add
several), 'use db;' when the default database changed, 'SET timestamp=N;' (the statement's start in
seconds since 1970, UTC: the record's time when present), then the statement as it was sent with
';' added. The statement may span lines and ends where the next block or banner begins; its lines
are taken as they are, whatever they look like. '# administrator command: Quit;' stands for the
statement of an administrative command (log_slow_admin_statements).

The format file names each line's pattern by its role: ``time``, ``user-host``, ``meta…``,
``use``, ``set-timestamp``, ``admin-command``, and the banner's (``mysql_banner``).
"""

from __future__ import annotations

from logsalvage.parsing.engine import looks_binary
from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import Line
from logsalvage.parsing.mysql_banner import Banner
from logsalvage.parsing.timestamps import parse_epoch

_HEAD_ROLES = ("use", "set-timestamp")


def _head(role: str | None) -> bool:
    """A line of a block's head after its first: '# Key: value', 'use db;', 'SET timestamp=N;'."""
    return role is not None and (role in _HEAD_ROLES or role.startswith("meta"))
_KEEP_OUT = frozenset({"raw", "message", "event_type", "ts_raw", "query_time", "set_timestamp", "admin_command"})


class _Block:
    def __init__(self, rec: dict):
        self.rec = rec  # the record, its provenance from the block's first line
        self.user = False  # a '# User@Host:' line seen
        self.statement: list[str] | None = None  # the statement's lines, once it began
        self.time: dict | None = None  # the '# Time:' line's record
        self.query_time: str | None = None
        self.epoch: str | None = None
        self.admin: str | None = None


class SlowLog(LineHook):
    def __init__(self, asm):
        super().__init__(asm)
        self.banner = Banner(self)
        self.block: _Block | None = None
        self.last_time: dict | None = None  # the last '# Time:' line's record

    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        blank = not text.strip()
        rec = None if blank else self.parse(text)
        role = rec["_pattern"] if rec is not None else None
        block = self.block
        if role == "time":
            self._finish()
            block = self._start(rec, line, text, valid)
            block.time = self.last_time = {k: rec[k] for k in ("_stamp", "ts_raw", "_line_no", "_offset")}
        elif role == "user-host":
            if block is None or block.user or block.statement is not None:
                self._finish()
                block = self._start(rec, line, text, valid)
            else:
                self._merge(block, rec, line, text, valid)
            block.user = True
        elif rec is not None and self.banner.take(rec, line, text, valid):
            self._finish()
        elif _head(role) and block is None:
            self._start(rec, line, text, valid)  # a block whose first lines are missing
        elif _head(role) and block.statement is None:
            self._merge(block, rec, line, text, valid)
        elif block is None or blank and block.statement is None or rec is None and not blank and looks_binary(data):
            self.unusable(line, data, text, valid)
        else:  # the statement: its lines as they are, whatever they look like
            self.extend(block.rec, line, text, valid, message=False)
            if block.statement is None:
                block.statement = []
                if role == "admin-command":
                    block.admin = rec.get("admin_command")
                    return
            block.statement.append(text)

    # -- blocks ----------------------------------------------------------------------------------
    def _start(self, rec: dict, line: Line, text: str, valid: bool) -> _Block:
        self.banner.close()
        self.block = _Block(self.begin(rec, line, text, valid))
        self._fields(self.block, rec)
        return self.block

    def _merge(self, block: _Block, rec: dict, line: Line, text: str, valid: bool) -> None:
        self.extend(block.rec, line, text, valid, message=False)
        for key, value in rec.items():
            if not key.startswith("_") and key not in _KEEP_OUT and value is not None:
                block.rec.setdefault(key, value)
        self._fields(block, rec)

    @staticmethod
    def _fields(block: _Block, rec: dict) -> None:
        block.query_time = block.query_time or rec.get("query_time")
        block.epoch = block.epoch or rec.get("set_timestamp")

    def _finish(self) -> None:
        block, self.block = self.block, None
        if block is None:
            return
        rec = block.rec
        for key in ("_stamp", "ts_raw", "_pattern", "query_time", "set_timestamp", "admin_command"):
            rec.pop(key, None)
        rec["event_type"] = self.spec.event_type
        statement = "\n".join(block.statement) if block.statement else None
        if statement is not None and statement.endswith(";"):
            statement = statement[:-1]  # the server's own ';'
        rec["statement"] = statement or None
        rec["message"] = statement or (f"administrator command: {block.admin}" if block.admin else None)
        if block.admin:
            rec["admin_command"] = block.admin
        if block.query_time is not None:
            rec["duration_ms"] = round(float(block.query_time) * 1000, 3)
            rec["query_time"] = block.query_time
        self._time(block, rec)
        self.emit(rec)

    def _time(self, block: _Block, rec: dict) -> None:
        """The statement's start ('SET timestamp'), else the block's '# Time:', else the last one."""
        stamp = parse_epoch(block.epoch) if block.epoch else None
        logged = block.time or self.last_time
        if stamp is not None:
            rec["_stamp"], rec["ts_raw"] = stamp, block.epoch
            if logged is not None:
                rec["time_logged"] = logged.get("ts_raw")
        elif logged is not None:
            rec["_stamp"], rec["ts_raw"] = logged["_stamp"], logged.get("ts_raw")
            if block.time is None:
                rec["_ts_note"] = (f"the slow log writes '# Time:' only when the second changes: the time "
                                   f"written on line {logged['_line_no']} (offset {logged['_offset']})")
        else:
            rec["_stamp"] = None

    # -- hook interface --------------------------------------------------------------------------
    def interrupt(self) -> None:
        self._finish()
        self.banner.close()

    def first_open_line(self) -> float:
        first = self.banner.first_line()
        return min(first, self.block.rec["_line_no"]) if self.block is not None else first
