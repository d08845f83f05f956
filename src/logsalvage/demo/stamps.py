"""Timestamp text in the style of each log the demo writes.

All scenario times are integer POSIX seconds; the hosts ran on Asia/Tokyo, which has had no
daylight saving since 1951, so local time is always UTC+09:00 and plain arithmetic is exact.
"""

from __future__ import annotations

import calendar
import time

JST_OFFSET = 9 * 3600
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
DAY = 86400


def jst(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """POSIX seconds of a wall-clock time in Asia/Tokyo."""
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) - JST_OFFSET


def local(t: int) -> time.struct_time:
    return time.gmtime(t + JST_OFFSET)


def local_midnight(t: int) -> int:
    """Start of the local day containing t."""
    return t - (t + JST_OFFSET) % DAY


def iso(t: int) -> str:
    """ISO 8601 with the +09:00 offset, as truth.json writes every time."""
    lt = local(t)
    return (f"{lt.tm_year:04d}-{lt.tm_mon:02d}-{lt.tm_mday:02d}"
            f"T{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}+09:00")


def ymd(t: int) -> str:
    lt = local(t)
    return f"{lt.tm_year:04d}{lt.tm_mon:02d}{lt.tm_mday:02d}"


def syslog(t: int) -> str:
    """RFC 3164 stamp: ``Dec  3 03:45:20`` (day padded by a space, no year)."""
    lt = local(t)
    return f"{MONTHS[lt.tm_mon - 1]} {lt.tm_mday:2d} {lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}"


def apache_access(t: int) -> str:
    """``15/Jul/2017:08:58:21 +0900`` (inside the brackets of %t)."""
    lt = local(t)
    return (f"{lt.tm_mday:02d}/{MONTHS[lt.tm_mon - 1]}/{lt.tm_year:04d}:"
            f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d} +0900")


def apache_error(t: int) -> str:
    """Apache 2.2 error_log stamp ``Mon Dec 25 15:27:05 2017`` (day zero-padded)."""
    lt = local(t)
    return (f"{WEEKDAYS[lt.tm_wday]} {MONTHS[lt.tm_mon - 1]} {lt.tm_mday:02d} "
            f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d} {lt.tm_year:04d}")


def ctime(t: int) -> str:
    """ctime(3)-style stamp used by vsftpd and xferlog: ``Sun Dec  3 10:20:44 2017``."""
    lt = local(t)
    return (f"{WEEKDAYS[lt.tm_wday]} {MONTHS[lt.tm_mon - 1]} {lt.tm_mday:2d} "
            f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d} {lt.tm_year:04d}")


def wget(t: int) -> str:
    """wget's own stamp: ``2017-12-25 15:28:56``."""
    lt = local(t)
    return (f"{lt.tm_year:04d}-{lt.tm_mon:02d}-{lt.tm_mday:02d} "
            f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}")


def full_iso_ls(t: int, nanos: int) -> str:
    """``ls --time-style=full-iso``: ``2017-12-25 15:29:01.318262042 +0900``."""
    return f"{wget(t)}.{nanos:09d} +0900"


class SyslogStamper:
    """Fast syslog stamps for millions of lines: a per-day prefix plus a table of HH:MM:SS."""

    _HMS = tuple(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))

    def __init__(self) -> None:
        self._day = None
        self._prefix = ""

    def __call__(self, t: int) -> str:
        lt = t + JST_OFFSET
        day, sod = divmod(lt, DAY)
        if day != self._day:
            self._day = day
            self._prefix = syslog(t)[:7]
        return self._prefix + self._HMS[sod]


class IsoStamper:
    """Fast ``iso`` for many times: a per-day date prefix plus the HH:MM:SS table."""

    def __init__(self) -> None:
        self._day = None
        self._prefix = ""

    def __call__(self, t: int) -> str:
        day, sod = divmod(t + JST_OFFSET, DAY)
        if day != self._day:
            self._day = day
            self._prefix = iso(t)[:11]
        return self._prefix + SyslogStamper._HMS[sod] + "+09:00"
