"""The banner MySQL and MariaDB write at the top of a general or slow query log each time they open
it (server start, FLUSH LOGS): three lines, one record.

    /usr/sbin/mariadbd, Version: 10.11.19-MariaDB-0+deb12u1-log (Debian 12). started with:
    Tcp port: 3306  Unix socket: /run/mysqld/mysqld.sock
    Time                 Id Command    Argument

The format files name the lines' patterns ``banner``, ``banner-port`` and ``banner-columns``. The
banner has no time of its own: its record stays timeless rather than borrow a neighbour's.
"""

from __future__ import annotations

from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import Line

HEAD = "banner"
PARTS = ("banner-port", "banner-columns")


class Banner:
    def __init__(self, hook: LineHook):
        self.hook = hook
        self.open: dict | None = None

    def take(self, rec: dict, line: Line, text: str, valid: bool) -> bool:
        """Whether ``rec`` (a parsed line) is a banner line; if so it is taken."""
        role = rec.get("_pattern")
        if role == HEAD:
            self.close()
            self.open = self.hook.begin(rec, line, text, valid)
        elif role in PARTS and self.open is not None:
            head = self.open
            self.hook.extend(head, line, text, valid, message=False)
            for key, value in rec.items():
                if not key.startswith("_") and key not in ("raw", "message", "event_type") and value is not None:
                    head.setdefault(key, value)
        elif role in PARTS:  # a part without its first line (the log begins with it)
            self.hook.emit(self.hook.begin(rec, line, text, valid))
            return True
        else:
            return False
        if role == PARTS[-1]:  # the column titles end it
            self.close()
        return True

    def close(self) -> None:
        if self.open is not None:
            self.hook.emit(self.open)
            self.open = None

    def first_line(self) -> float:
        return self.open["_line_no"] if self.open is not None else float("inf")
