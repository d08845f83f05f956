"""Durations as people say them, for figures, terminal output, reasons and the report. Pure."""

from __future__ import annotations

SECONDS_PER_DAY = 86_400


def duration_label(seconds: float) -> str:
    """A duration as people say it, to two units: '45 s', '3 min 20 s', '2 h 5 min', '15 d 21 h'.

    Rounded to the smaller unit shown, so 2 h 4 min 40 s reads '2 h 5 min'.
    """
    seconds = round(seconds)
    if seconds < 0:
        return "-" + duration_label(-seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    if seconds < SECONDS_PER_DAY:
        minutes = (seconds + 30) // 60
        if minutes < 24 * 60:
            hours, rest = divmod(minutes, 60)
            return f"{hours} h {rest} min" if rest else f"{hours} h"
        seconds = minutes * 60  # rounded up to a whole day
    hours = (seconds + 1800) // 3600
    days, rest = divmod(hours, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"
