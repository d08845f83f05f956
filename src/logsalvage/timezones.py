"""Which time zone a host's clock was in, decided from the case config or the evidence.

``etc/localtime`` (a TZif file) is matched byte-for-byte against the IANA database that ships with
the ``tzdata`` package; failing that, its POSIX TZ footer (``JST-9``) gives a fixed offset.
``etc/timezone`` and RHEL's ``etc/sysconfig/clock`` name the zone in text.
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def zone_or_none(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        return None


@lru_cache(maxsize=1)
def _zone_files() -> dict[bytes, str]:
    """TZif content -> zone name, for every zone tzdata ships (canonical names preferred)."""
    roots = [resources.files("tzdata") / "zoneinfo"]
    if SYSTEM_ZONEINFO.is_dir():
        roots.append(SYSTEM_ZONEINFO)
    table: dict[bytes, str] = {}
    names = sorted(available_timezones(), key=lambda n: (n.startswith(("Etc/", "posix/", "right/")), "/" not in n, n))
    for root in roots:  # the packaged database, then the system's (another tzdata release)
        for name in names:
            try:
                data = root.joinpath(*name.split("/")).read_bytes()
            except (OSError, ValueError):
                continue
            table.setdefault(data, name)
    return table


_POSIX_FIXED = re.compile(r"^(?:<[^>]+>|[A-Za-z]{3,})([+-]?\d{1,2})(?::(\d\d))?$")
SYSTEM_ZONEINFO = Path("/usr/share/zoneinfo")


def zone_from_tzif(data: bytes) -> tuple[str | None, str]:
    """(zone name or fixed-offset name, how it was decided) from the bytes of a TZif file."""
    if not data.startswith(b"TZif"):
        return None, "not a TZif file"
    name = _zone_files().get(data)
    if name:
        return name, "etc/localtime matches the IANA zone file"
    footer = data.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii", "replace")
    m = _POSIX_FIXED.match(footer)
    if m:
        hours = -int(m.group(1))  # POSIX TZ offsets are west-positive
        minutes = int(m.group(2) or 0)
        return f"UTC{hours:+03d}:{abs(minutes):02d}", f"etc/localtime POSIX footer {footer!r} (fixed offset, no DST)"
    return None, f"etc/localtime not recognised (footer {footer!r})"


_CLOCK = re.compile(r'^\s*ZONE\s*=\s*"?([^"\s]+)"?', re.MULTILINE)


def zone_from_text(text: str) -> str | None:
    """etc/timezone ('Asia/Tokyo') or etc/sysconfig/clock ('ZONE="Asia/Tokyo"')."""
    m = _CLOCK.search(text)
    candidate = m.group(1) if m else text.strip().splitlines()[0].strip() if text.strip() else ""
    return candidate if candidate and zone_or_none(candidate) else None


def sql_zone_name(name: str) -> str:
    """Name DuckDB's ICU understands: fixed offsets 'UTC+09:00' become 'Etc/GMT-9' when whole hours."""
    m = re.fullmatch(r"UTC([+-])(\d\d):(\d\d)", name)
    if not m:
        return name
    if m.group(3) != "00":
        return name
    hours = int(m.group(2))
    return f"Etc/GMT{'-' if m.group(1) == '+' else '+'}{hours}" if hours else "UTC"
