"""The report's one clock: every time it shows in the case's zone and in one format, with its UTC
beside it for the reader who needs it.

A report that mixes ``2017-06-20T05:12:59+00:00`` with ``2017-06-20 14:12:59 +09:00`` makes its
reader convert. The case's zone is the zone its hosts share (the case config's, as decided at
ingest); when they differ, UTC, so that no host's clock is silently preferred. The report states the
zone once, at the top, and each standalone time carries its UTC (``stamp``) for a tooltip. Times
inside tool-made sentences (the detectors' reasons, finding details) are rewritten with
``in_text``; the records themselves are never touched — a log line is shown as it was written.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from logsalvage.continuity.analysis import host_zone
from logsalvage.store import CaseStore

FORMAT = "%Y-%m-%d %H:%M:%S"
UTC = ZoneInfo("UTC")
# an ISO 8601 date-time with its offset, as the detectors and continuity write them
_ISO = re.compile(r"(?<![\d-])\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})(?![\d:])")


class CaseClock:
    """Times in one zone, one format."""

    def __init__(self, zone: ZoneInfo = UTC):
        self.zone = zone

    @classmethod
    def for_case(cls, store: CaseStore) -> CaseClock:
        """The zone every host of the case shares; UTC when they differ (or the case is empty)."""
        hosts = [r[0] for r in store.query("SELECT DISTINCT host FROM events WHERE host IS NOT NULL ORDER BY 1")]
        keys = {getattr(host_zone(store, h), "key", None) for h in hosts}
        if len(keys) == 1 and None not in keys:
            return cls(ZoneInfo(keys.pop()))
        return cls(UTC)

    @property
    def name(self) -> str:
        return self.zone.key

    def moment(self, value) -> datetime | None:
        """``value`` (a datetime, an ISO text or epoch seconds) as an aware datetime; None when it is
        not a time. A time without offset is UTC, as the case stores it."""
        if value is None or isinstance(value, bool):
            return None
        if isinstance(value, datetime):
            t = value
        elif isinstance(value, (int, float)):
            t = datetime.fromtimestamp(value, tz=timezone.utc)
        else:
            try:
                t = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
            except ValueError:
                return None
        return t if t.tzinfo else t.replace(tzinfo=timezone.utc)

    def show(self, value) -> str | None:
        """'2017-07-15T08:58:21+09:00' -> '2017-07-15 08:58:21' (in the case's zone); anything that
        is not a time is returned as it is."""
        t = self.moment(value)
        if t is None:
            return value
        return t.astimezone(self.zone).strftime(FORMAT)

    def utc(self, value) -> str | None:
        t = self.moment(value)
        return None if t is None else t.astimezone(timezone.utc).strftime(FORMAT) + " UTC"

    def stamp(self, value) -> dict | None:
        """A standalone time for the template: shown in the case's zone, its UTC for the tooltip and the
        machine-readable ``datetime``."""
        t = self.moment(value)
        if t is None:
            return None
        u = t.astimezone(timezone.utc)
        return {"text": t.astimezone(self.zone).strftime(FORMAT), "utc": u.strftime(FORMAT) + " UTC",
                "iso": u.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def in_text(self, text: str | None) -> str | None:
        """Tool-made text with every ISO date-time in it shown in the case's zone."""
        if not text:
            return text
        return _ISO.sub(lambda m: self.show(m.group(0).replace(" ", "T", 1)) or m.group(0), str(text))

    def statement(self, year: int | None = None) -> str:
        """The zone as stated once at the top of the report: its name and UTC offset(s)."""
        year = year or 2000
        offsets = sorted({datetime(year, month, 1, 12, tzinfo=self.zone).utcoffset() or timedelta(0)
                          for month in (1, 7)})
        if len(offsets) > 1:
            return f"{self.name} ({_offset(offsets[0])}, {_offset(offsets[-1])} in summer time)"
        return f"{self.name} ({_offset(offsets[0])})"


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
