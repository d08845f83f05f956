"""Year inference for year-less timestamps (syslog's 'Dec  3 03:45:20').

Two steps, so a file can be streamed:

1. ``RolloverTracker`` walks the records in file order and gives each a *year epoch*: 0 for the
   first calendar year seen, +1 at every roll-over. A log is written forwards, so the month and
   day only move on: a step forward, however long, is a quiet stretch within the year (not a
   year change); a step back is a roll-over into the next year, unless it is within
   ``DISORDER_DAYS`` (ordinary disorder: a late line). A record just *before* the latest date by
   way of the year boundary (Jan 2, then Dec 31) is a late record of the previous year. Where
   the reading rests on an unusually long quiet stretch (more than half a year, forwards or
   across a roll-over), the tracker says so in ``guesses``: the month and day cannot tell a
   quiet stretch from one that also spans whole years.
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
_MONTHS = ("", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
YEAR_DAYS = 366  # the leap reference year of ``ordinal``
HALF_YEAR_DAYS = 183  # a quiet stretch longer than this is worth a note
DISORDER_DAYS = 7  # a step back this small is a late line, not a new year
MAX_GUESSES = 5  # guesses described one by one; the rest are counted


def ordinal(month: int, day: int) -> int:
    """Day of year in a leap reference year: Jan 1 -> 0, Feb 29 -> 59, Dec 31 -> 365."""
    return _CUMULATIVE[month] + day - 1


class RolloverTracker:
    """Assigns year epochs to year-less records in file order.

    Feeding the same (month, day) twice in a row gives the same epoch and changes nothing, so a
    caller may feed a run of records of one day once (the columnar engine does)."""

    __slots__ = ("epoch", "max_ordinal_in_last_epoch", "rollovers", "guesses", "guessed")

    def __init__(self) -> None:
        self.epoch = 0
        self.max_ordinal_in_last_epoch = -1  # the latest day seen in the current epoch
        self.rollovers = 0
        self.guesses: list[str] = []  # the first MAX_GUESSES readings that rest on a long quiet stretch
        self.guessed = 0  # how many there were

    def feed(self, month: int, day: int, line_no: int | None = None) -> int:
        o = ordinal(month, day)
        latest = self.max_ordinal_in_last_epoch
        if latest < 0:
            self.max_ordinal_in_last_epoch = o
            return 0
        if o >= latest:
            if latest + YEAR_DAYS - o <= DISORDER_DAYS:  # Jan 2, then Dec 31: a late line of the year before
                return self.epoch - 1
            if o - latest > HALF_YEAR_DAYS:
                self._guess(line_no, month, day, latest,
                            f"read as a quiet stretch of {o - latest} days within the year (a guess: it may "
                            "also span whole years)")
            self.max_ordinal_in_last_epoch = o
            return self.epoch
        if latest - o <= DISORDER_DAYS:  # ordinary disorder
            return self.epoch
        quiet = o + YEAR_DAYS - latest
        if quiet > HALF_YEAR_DAYS:
            self._guess(line_no, month, day, latest,
                        f"a step back of {latest - o} days read as a roll-over into the next year after a "
                        f"quiet stretch of {quiet} days (a guess: it may be late lines or a clock set back)")
        self.epoch += 1
        self.rollovers += 1
        self.max_ordinal_in_last_epoch = o
        return self.epoch

    def _guess(self, line_no: int | None, month: int, day: int, latest: int, what: str) -> None:
        self.guessed += 1
        if len(self.guesses) < MAX_GUESSES:
            where = f"line {line_no}: " if line_no is not None else ""
            self.guesses.append(f"{where}{_MONTHS[month]} {day} after {_day_name(latest)}, {what}")


def _day_name(o: int) -> str:
    month = max(m for m in range(1, 13) if _CUMULATIVE[m] <= o)
    return f"{_MONTHS[month]} {o - _CUMULATIVE[month] + 1}"


def describe_guesses(guesses: list[str], guessed: int) -> str:
    """The part of a year basis that lists the guesses of a file's year inference ('' when none)."""
    if not guessed:
        return ""
    more = f"; and {guessed - len(guesses)} more" if guessed > len(guesses) else ""
    return f"; {guessed} guess(es) on long quiet stretches: " + "; ".join(guesses) + more


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
