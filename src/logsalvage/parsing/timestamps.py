"""Timestamp texts of the supported log formats, parsed into parts.

A parsed timestamp is a ``Stamp``: the year when the text has one (``None`` for syslog's
year-less form), month, day, microseconds since local midnight, and the UTC offset in seconds
when the text states one. Turning local time into UTC is left to the ingest step, which knows
the host's time zone and records how it decided.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}

# Abbreviations PostgreSQL and others print for %Z; only unambiguous ones.
TZ_ABBREVIATIONS = {
    "UTC": 0, "GMT": 0, "Z": 0, "JST": 9 * 3600, "KST": 9 * 3600, "EST": -5 * 3600, "EDT": -4 * 3600,
    "CST": None, "CET": 3600, "CEST": 7200, "MSK": 3 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
    "MST": -7 * 3600, "MDT": -6 * 3600, "BST": 3600, "IST": None, "AEST": 10 * 3600, "HKT": 8 * 3600,
    "SGT": 8 * 3600, "WET": 0, "EET": 7200, "EEST": 3 * 3600,
}
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Stamp(NamedTuple):
    year: int | None
    month: int
    day: int
    sod_us: int  # microseconds since local midnight
    utc_offset_s: int | None = None


def _fraction_us(frac: str | None) -> int:
    if not frac:
        return 0
    return int((frac + "000000")[:6])


def _valid(month: int, day: int, h: int, mi: int, s: int) -> bool:
    # second 60 is a leap second some loggers print; keep it valid and let it roll.
    return 1 <= month <= 12 and 1 <= day <= _DAYS_IN_MONTH[month] and h < 24 and mi < 60 and s <= 60


def _offset(text: str | None) -> int | None:
    """'+0900', '+09:00', '-05', 'Z', 'JST' -> seconds east of UTC; None when unknown."""
    if not text:
        return None
    if text[0] in "+-":
        digits = text[1:].replace(":", "")
        if not digits.isdigit() or len(digits) not in (2, 4):
            return None
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        sign = -1 if text[0] == "-" else 1
        return sign * (hours * 3600 + minutes * 60)
    return TZ_ABBREVIATIONS.get(text.upper())


def _stamp(year, month, day, h, mi, s, frac=None, offset=None) -> Stamp | None:
    if not _valid(month, day, h, mi, s):
        return None
    return Stamp(year, month, day, ((h * 60 + mi) * 60 + s) * 1_000_000 + _fraction_us(frac), offset)


_SYSLOG = re.compile(
    r"(?:(\d{4}) )?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: (\d{4}))?\Z", re.ASCII)


def parse_syslog(text: str) -> Stamp | None:
    """'Dec  3 03:45:20', 'Dec 3 03:45:20.123', '2008 Jan  9 16:16:34', 'Dec  3 03:45:20 2017'."""
    m = _SYSLOG.match(text)
    if not m:
        return None
    month = MONTHS.get(m[2])
    if month is None:
        return None
    year = m[1] or m[8]
    return _stamp(int(year) if year else None, month, int(m[3]), int(m[4]), int(m[5]), int(m[6]), m[7])


_ISO = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)(?:T| {1,2})(\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?"
    r"(?: ?(Z|[+-]\d\d(?::?\d\d)?|[A-Za-z]{1,5}))?\Z", re.ASCII)


def parse_iso(text: str) -> Stamp | None:
    """RFC 3339 / ISO 8601 and PostgreSQL's %t/%m ('2017-12-03 03:45:20.123 JST'); apt's history and
    term logs put two spaces between date and time ('2017-12-25  15:28:56')."""
    m = _ISO.match(text)
    if not m:
        return None
    return _stamp(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]), (m[7] or "")[:6],
                  _offset(m[8]))


_SLASH = re.compile(r"(\d{4})/(\d\d)/(\d\d) (\d\d):(\d\d):(\d\d)\Z", re.ASCII)


def parse_slash(text: str) -> Stamp | None:
    """nginx's error log: '2017/12/25 15:28:56' (local time, no zone)."""
    m = _SLASH.match(text)
    if not m:
        return None
    return _stamp(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))


_APACHE = re.compile(
    r"(\d{1,2})/([A-Z][a-z]{2})/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?: ([+-]\d{4}))? ?\Z", re.ASCII)


def parse_apache(text: str) -> Stamp | None:
    """Apache access %t: '15/Jul/2017:08:58:21 +0900'.

    Without the zone ('27/Jun/2013:11:55:44', from a custom ``%{...}t`` or another server) the
    offset is unknown (None), left for the ingest step to decide and record.
    """
    m = _APACHE.match(text)
    if not m or m[2] not in MONTHS:
        return None
    return _stamp(int(m[3]), MONTHS[m[2]], int(m[1]), int(m[4]), int(m[5]), int(m[6]), m[7], _offset(m[8]))


_CTIME = re.compile(
    r"(?:[A-Z][a-z]{2} )?([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))? (\d{4})\Z", re.ASCII)


def parse_ctime(text: str) -> Stamp | None:
    """ctime(3) as Apache error, vsftpd and xferlog write it: 'Mon Dec 25 15:27:05[.123456] 2017'."""
    m = _CTIME.match(text)
    if not m or m[1] not in MONTHS:
        return None
    return _stamp(int(m[7]), MONTHS[m[1]], int(m[2]), int(m[3]), int(m[4]), int(m[5]), m[6])


_EPOCH = re.compile(r"(\d{9,10})(?:\.(\d{1,6}))?\Z", re.ASCII)


def parse_epoch(text: str) -> Stamp | None:
    """Seconds since 1970 (PostgreSQL %n, some exports)."""
    import datetime as _dt

    m = _EPOCH.match(text)
    if not m:
        return None
    t = _dt.datetime.fromtimestamp(int(m[1]), _dt.timezone.utc)
    return _stamp(t.year, t.month, t.day, t.hour, t.minute, t.second, m[2], 0)


_MYSQL = re.compile(r"(\d\d)(\d\d)(\d\d) {1,2}(\d{1,2}):(\d\d):(\d\d)\Z", re.ASCII)


def parse_mysql(text: str) -> Stamp | None:
    """MySQL's and MariaDB's two-digit year, hour padded with a space: '171225 15:28:56',
    '171225  9:05:01' (5.5 error log, mysqld_safe, general and slow query logs). The century
    is POSIX %y's: 69-99 are 1969-1999, 00-68 are 2000-2068."""
    m = _MYSQL.match(text)
    if not m:
        return None
    yy = int(m[1])
    return _stamp(yy + (1900 if yy >= 69 else 2000), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))


_MARIADB = re.compile(r"(\d{4})-(\d\d)-(\d\d) {1,2}(\d{1,2}):(\d\d):(\d\d)\Z", re.ASCII)


def parse_mariadb(text: str) -> Stamp | None:
    """MariaDB 10's error log, hour padded with a space: '2017-12-25  9:05:01'."""
    m = _MARIADB.match(text)
    if not m:
        return None
    return _stamp(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))


PARSERS: dict[str, Callable[[str], Stamp | None]] = {
    "syslog": parse_syslog,
    "iso": parse_iso,
    "slash": parse_slash,
    "apache": parse_apache,
    "ctime": parse_ctime,
    "epoch": parse_epoch,
    "mysql": parse_mysql,
    "mariadb": parse_mariadb,
}


def parser_for(names: list[str]) -> Callable[[str], Stamp | None]:
    """One callable trying the named timestamp parsers in order."""
    funcs = []
    for name in names:
        if name not in PARSERS:
            raise KeyError(name)
        funcs.append(PARSERS[name])
    if len(funcs) == 1:
        return funcs[0]

    def parse(text: str) -> Stamp | None:
        for f in funcs:
            st = f(text)
            if st is not None:
                return st
        return None

    return parse
