"""What the binary readers share: C strings of fixed-size fields, epoch times, addresses, and the
record dict the line engine's sinks take (provenance keys as ``parsing.engine`` makes them)."""

from __future__ import annotations

import re
import socket
from datetime import date, datetime, timedelta, timezone

from logsalvage.parsing.timestamps import Stamp

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
PLAUSIBLE_FROM = 315532800  # 1980-01-01: no Linux login record is older
LATEST = 253402300800  # 10000-01-01: no later time is a date
_EPOCH_DATE = date(1970, 1, 1)
_PRINTABLE = bytes(range(0x20, 0x7f))
# utmpdump's cleanse(): every byte that is not printable ASCII shown as '?'
_SHOWN = bytes(b if 0x20 <= b < 0x7f else 0x3f for b in range(256))


def c_string(field: bytes) -> str | None:
    """A fixed-size ``char[]`` field as text: printable UTF-8 up to the first NUL and only NULs
    after it (glibc copies with ``strncpy``, which pads with NULs; a field filled to its size has
    none). None when it is not that: binary data, garbage after the terminator."""
    text = field.rstrip(b"\x00")
    if b"\x00" in text:
        return None
    if not text.translate(None, _PRINTABLE):  # printable ASCII, the common case
        return text.decode("ascii")
    try:
        value = text.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(value) else value


def shown(field: bytes) -> str:
    """A field as utmpdump shows it: up to the first NUL, each byte not printable ASCII as '?'."""
    end = field.find(b"\x00")
    return (field if end < 0 else field[:end]).translate(_SHOWN).decode("ascii")


def stamp_from_epoch(seconds: int, micros: int = 0) -> Stamp:
    """A UTC time given as seconds (and microseconds) since 1970 as the engine's timestamp parts."""
    days, sod = divmod(seconds, 86400)
    t = _EPOCH_DATE + timedelta(days=days)
    return Stamp(t.year, t.month, t.day, sod * 1_000_000 + micros, 0)


def iso_utc(seconds: int, micros: int | None = None, sep: str = ".") -> str:
    """'2023-12-01T09:12:04,123456+00:00' (utmpdump's form with ``sep=','``), without the fraction
    when ``micros`` is None."""
    t = datetime.fromtimestamp(seconds, timezone.utc).isoformat()[:19]
    return f"{t}{sep}{micros:06d}+00:00" if micros is not None else f"{t}+00:00"


def address(text: str | None) -> str | None:
    """``text`` when it is an IPv4 or IPv6 address (in its canonical form), else None."""
    if not text:
        return None
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            return socket.inet_ntop(family, socket.inet_pton(family, text))
        except (OSError, ValueError):
            continue
    return None


def record(offset: int, length: int, number: int, event_type: str, stamp: Stamp | None, ts_raw: str | None,
           raw: str, message: str, fields: dict) -> dict:
    """A record as the staging sink takes it: ``number`` is its 1-based place in the source
    (the record number where a text log has its line number); empty fields are left out."""
    rec = {k: v for k, v in fields.items() if v is not None and v != ""}
    rec.update(_offset=offset, _length=length, _line_no=number, _line_count=1, _spans=None, _stamp=stamp,
               event_type=event_type, raw=raw, message=message)
    if stamp is not None:
        rec["ts_raw"] = ts_raw
    else:
        rec["_ts_note"] = "no time in the record"
    return rec
