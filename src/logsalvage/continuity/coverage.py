"""Holes and coverage: interval arithmetic over heartbeat times (epoch seconds). Pure.

Definition (the one the incident's investigators used, made exact): let h1 < ... < hn be the
distinct seconds holding a heartbeat in at least one source. Each interval (hi, hi+1) longer
than ``k`` periods is a hole, entirely uncovered; so are the stretches from the span's start to
h1 and from hn to its end when longer than ``k`` periods. Every other second of the span is
covered; time outside the span is uncovered. coverage(window) = covered seconds in the window /
seconds in the window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def find_holes(beats: np.ndarray, span: tuple[int, int], threshold: int) -> list[tuple[int, int]]:
    """Intervals longer than ``threshold`` seconds without a heartbeat, inside ``span``.

    ``beats``: heartbeat times, sorted, distinct (numpy int64 or a sequence).
    """
    start, end = span
    beats = np.asarray(beats, dtype=np.int64)
    beats = beats[(beats >= start) & (beats <= end)]
    if end <= start:
        return []
    if beats.size == 0:
        return [(start, end)]
    holes: list[tuple[int, int]] = []
    if beats[0] - start > threshold:
        holes.append((start, int(beats[0])))
    gaps = np.diff(beats)
    for i in np.nonzero(gaps > threshold)[0]:
        holes.append((int(beats[i]), int(beats[i + 1])))
    if end - beats[-1] > threshold:
        holes.append((int(beats[-1]), end))
    return holes


def distinct_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values of an already sorted array (cheaper than ``np.unique``)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size == 0:
        return values
    keep = np.empty(values.size, dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


@dataclass(frozen=True)
class Coverage:
    span: tuple[int, int]
    holes: tuple[tuple[int, int], ...]

    def uncovered(self, lo: int, hi: int) -> int:
        if hi <= lo:
            return 0
        start, end = self.span
        outside = max(0, min(hi, start) - lo) + max(0, hi - max(lo, end))
        if end <= start:
            return hi - lo
        inside = sum(max(0, min(b, hi) - max(a, lo)) for a, b in self.holes)
        return min(hi - lo, outside + inside)

    def covered(self, lo: int, hi: int) -> int:
        return max(0, hi - lo) - self.uncovered(lo, hi)

    def ratio(self, lo: int, hi: int) -> float | None:
        return self.covered(lo, hi) / (hi - lo) if hi > lo else None

    def as_dict(self, lo: int, hi: int) -> dict:
        ratio = self.ratio(lo, hi)
        return {"ratio": round(ratio, 8) if ratio is not None else None,
                "covered_s": self.covered(lo, hi), "total_s": max(0, hi - lo)}

    def covered_intervals(self) -> list[tuple[int, int]]:
        """The span minus the holes, as intervals (for figures)."""
        out, cursor = [], self.span[0]
        for a, b in sorted(self.holes):
            if a > cursor:
                out.append((cursor, a))
            cursor = max(cursor, b)
        if self.span[1] > cursor:
            out.append((cursor, self.span[1]))
        return out
