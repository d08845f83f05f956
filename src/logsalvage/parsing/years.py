"""Year inference for year-less timestamps (syslog's 'Dec  3 03:45:20').

Two steps, so a file can be streamed:

1. ``RolloverTracker`` walks the records in file order and gives each a *year epoch*: 0 for the
   first calendar year seen, +1 at every December→January roll-over. A record that steps back by
   more than half a year is a late straggler of the previous year (out-of-order tolerance), not a
   roll-over; a small step back is ordinary disorder and changes nothing.
2. ``resolve_base_year`` picks the year of the last epoch from an *anchor*: a date the file cannot
   be later than (the rotation suffix, the file's mtime, the acquisition date, or dated records of
   the same host). Every record's year is then ``base - (last_epoch - epoch)``.

Ordinals are taken in a leap reference year so Feb 29 always has a place.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date

_CUMULATIVE = (0, 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335)
HALF_YEAR_DAYS = 183


def ordinal(month: int, day: int) -> int:
    """Day of year in a leap reference year: Jan 1 -> 0, Feb 29 -> 59, Dec 31 -> 365."""
    return _CUMULATIVE[month] + day - 1


class RolloverTracker:
    """Assigns year epochs to year-less records in file order."""

    __slots__ = ("epoch", "_last", "max_ordinal_in_last_epoch", "rollovers")

    def __init__(self) -> None:
        self.epoch = 0
        self._last: int | None = None
        self.max_ordinal_in_last_epoch = -1
        self.rollovers = 0

    def feed(self, month: int, day: int) -> int:
        o = ordinal(month, day)
        last = self._last
        if last is None:
            self._last = o
            self.max_ordinal_in_last_epoch = o
            return 0
        if last - o > HALF_YEAR_DAYS:  # Dec -> Jan: a new year
            self.epoch += 1
            self.rollovers += 1
            self._last = o
            self.max_ordinal_in_last_epoch = o
            return self.epoch
        if o - last > HALF_YEAR_DAYS:  # a straggler from the previous year
            return self.epoch - 1
        self._last = o
        if o > self.max_ordinal_in_last_epoch:
            self.max_ordinal_in_last_epoch = o
        return self.epoch


@dataclass(frozen=True)
class Anchor:
    """A date the file's last record cannot be later than, and where it came from."""

    latest: date
    basis: str  # e.g. "rotation-suffix", "mtime", "acquired", "host-dated-logs", "config"


def resolve_base_year(last_ordinal: int, anchor: Anchor, *, tolerance_days: int = 1) -> int:
    """Year of the last epoch: the latest year in which the last record is not after the anchor."""
    anchor_ordinal = ordinal(anchor.latest.month, anchor.latest.day)
    if last_ordinal <= anchor_ordinal + tolerance_days:
        return anchor.latest.year
    return anchor.latest.year - 1


def year_not_after(month: int, day: int, anchor: Anchor, *, tolerance_days: int = 1) -> int:
    """The latest year in which (month, day) is not after the anchor: for records with no file order
    (carved from an image), each on its own."""
    return resolve_base_year(ordinal(month, day), anchor, tolerance_days=tolerance_days)


def fit_leap_days(base_year: int, last_epoch: int, feb29_epochs: set[int], *, max_back: int = 8) -> tuple[int, int]:
    """Move the base year back until every Feb 29 record falls in a leap year.

    Returns (base_year, years_moved_back); years_moved_back is -1 when no fit was found (the
    records keep the anchor's years and their Feb 29 stays unresolved).
    """
    if not feb29_epochs:
        return base_year, 0
    for back in range(max_back + 1):
        candidate = base_year - back
        if all(calendar.isleap(candidate - (last_epoch - e)) for e in feb29_epochs):
            return candidate, back
    return base_year, -1


def infer_years(month_days: list[tuple[int, int]], anchor: Anchor) -> list[int]:
    """Whole-list convenience over the two steps (used by tests and small inputs)."""
    tracker = RolloverTracker()
    epochs = [tracker.feed(m, d) for m, d in month_days]
    if not epochs:
        return []
    base = resolve_base_year(tracker.max_ordinal_in_last_epoch, anchor)
    feb29 = {e for (m, d), e in zip(month_days, epochs) if m == 2 and d == 29}
    base, _ = fit_leap_days(base, tracker.epoch, feb29)
    return [base - (tracker.epoch - e) for e in epochs]
