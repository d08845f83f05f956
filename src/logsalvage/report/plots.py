"""Figures for the log-continuity analysis, each written as a PNG and an SVG of a fixed size.

Every figure is a ``matplotlib.figure.Figure`` of its own (never pyplot's global figure state), so
figures can be drawn from several threads. Dense data (millions of records, thousands of covered
intervals) is reduced to what the pixels can show before it is drawn: a 2-D histogram image for
records, intervals merged below the width of a pixel for coverage. That keeps the SVG small, and
nothing is lost on the PNG. The same input gives the same bytes (fixed SVG id salt, no dates).

Every label that comes from the evidence (source paths, host names) is attacker-controlled text:
``_literal`` stops matplotlib reading it as mathtext and replaces control characters.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import matplotlib
import matplotlib.dates as mdates
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import (
    FixedLocator,
    MaxNLocator,
    NullFormatter,
    StrMethodFormatter,
)
from matplotlib.transforms import blended_transform_factory

from logsalvage.errors import UsageError
from logsalvage.report.durations import duration_label

FIGURE_SIZE_PX = (1600, 900)
DPI = 100

# Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
KIND_COLOURS = {
    "live": "#0072B2",     # blue
    "backup": "#009E73",   # bluish green
    "salvage": "#E69F00",  # orange
    "merged": "#000000",   # black
}
OTHER_KIND_COLOUR = "#999999"
HOLE_COLOUR = "#D55E00"    # vermilion, the palette's red

# Saving reads these from the global rcParams; pinned so a user's matplotlibrc cannot change the
# size ('tight' bbox) or the bytes (random SVG ids when no salt is set).
_SAVE_SETTINGS = {
    "svg.hashsalt": "logsalvage",
    "savefig.bbox": "standard",
    "savefig.transparent": False,
    "savefig.facecolor": "white",
    "savefig.edgecolor": "white",
}
# rcParams are global: hold this while they are pinned so a concurrent save cannot restore them
# halfway through ours.
_SAVE_LOCK = threading.Lock()

_SECONDS_PER_DAY = 86_400
_SECONDS_PER_WEEK = 7 * _SECONDS_PER_DAY
# 1970-01-01 was a Thursday: shift by three days so the week fold starts on Monday 00:00.
_EPOCH_DAYS_AFTER_MONDAY = 3
_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# Bins of the time-of-day image. Kept at or below the axes' size in pixels so that drawing the
# image never drops a row or column (a lone record in a hole must stay visible).
_DAY_X_BIN_SECONDS = 120        # 720 columns
_WEEK_X_BIN_SECONDS = 600       # 1008 columns
_MAX_Y_BINS = 600

# Row labels longer than this are cut in the middle so that the bars keep most of the width.
_MAX_ROW_LABEL = 60

_FIXED_OFFSET_NAME = re.compile(r"UTC([+-])(\d\d):(\d\d)")


@dataclass(frozen=True)
class CoverageRow:
    """One bar of the coverage figure: a source (or the merged timeline) and what it covers."""
    label: str                 # e.g. "salvage  db01/image/sdb1.dd" or "merged"
    kind: str                  # "live" | "backup" | "salvage" | "merged"
    intervals: tuple[tuple[int, int], ...]   # covered intervals, epoch seconds UTC, start < end


# ---------------------------------------------------------------------------------------------
# Values (pure)

def zone_for_name(tz: str) -> tzinfo:
    """The tzinfo for an IANA name or a fixed offset as ``timezones`` writes it ('UTC+09:00')."""
    m = _FIXED_OFFSET_NAME.fullmatch(tz)
    if m:
        offset = timedelta(hours=int(m.group(2)), minutes=int(m.group(3)))
        return timezone(-offset if m.group(1) == "-" else offset, tz)
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError):
        raise UsageError(f"unknown time zone {tz!r} (expected an IANA name such as 'Europe/Berlin' "
                         f"or a fixed offset such as 'UTC+09:00')") from None


def _utc_offset(zone: tzinfo, epoch_second: int) -> int:
    return int(datetime.fromtimestamp(epoch_second, zone).utcoffset().total_seconds())


def local_seconds(times: np.ndarray, tz: str) -> np.ndarray:
    """Epoch seconds UTC -> the same instants as local wall-clock seconds (epoch + UTC offset).

    ``result % 86400`` is the local time of day. Vectorised: the zone is asked once per distinct
    hour, not per record. Offsets nearly always change on a whole UTC hour; where one changes
    inside an hour (Lord Howe's half-hour shift at 15:30 UTC, historical local-mean-time zones)
    the records of that hour are looked up one distinct second at a time.
    """
    times = np.asarray(times, dtype=np.int64)
    if times.size == 0:
        return times.copy()
    zone = zone_for_name(tz)
    hours, record_hour = np.unique(times // 3600, return_inverse=True)
    record_hour = record_hour.reshape(times.shape)
    at_start = np.array([_utc_offset(zone, int(h) * 3600) for h in hours], dtype=np.int64)
    at_end = np.array([_utc_offset(zone, int(h) * 3600 + 3599) for h in hours], dtype=np.int64)
    offsets = at_start[record_hour]
    in_changing_hour = (at_start != at_end)[record_hour]
    if in_changing_hour.any():
        seconds, which = np.unique(times[in_changing_hour], return_inverse=True)
        exact = np.array([_utc_offset(zone, int(s)) for s in seconds], dtype=np.int64)
        offsets[in_changing_hour] = exact[which.ravel()]
    return times + offsets


def _literal(text: str) -> str:
    """Evidence text shown as itself: no mathtext between '$' signs, no control characters."""
    shown = "".join(ch if ch.isprintable() else "\N{REPLACEMENT CHARACTER}" for ch in text)
    return shown.replace("$", r"\$")


def _shortened(text: str, limit: int = _MAX_ROW_LABEL) -> str:
    """Long labels cut in the middle, keeping the kind and host in front and the file name at the end."""
    if len(text) <= limit:
        return text
    keep = limit - 1
    return text[: keep - keep // 2] + "…" + text[len(text) - keep // 2:]


def _merge_for_display(intervals: np.ndarray, min_width: float, join_gap: float) -> np.ndarray:
    """Sorted, merged (start, end) rows as a screen can show them.

    Intervals narrower than ``min_width`` are widened to it, so one salvaged record among months
    still shows as a line; gaps narrower than ``join_gap`` (under a pixel) are closed, which
    bounds the number of drawn rectangles by the axis width whatever the number of intervals.
    """
    if len(intervals) == 0:
        return intervals.reshape(0, 2)
    ordered = intervals[np.argsort(intervals[:, 0], kind="stable")]
    starts = ordered[:, 0]
    ends = np.maximum(ordered[:, 1], starts + min_width)
    reach = np.maximum.accumulate(ends)
    opens_group = np.concatenate(([True], starts[1:] > reach[:-1] + join_gap))
    first = np.flatnonzero(opens_group)
    last = np.concatenate((first[1:] - 1, [len(starts) - 1]))
    return np.column_stack((starts[first], reach[last]))


def _tallest_per_column(scaled_x: np.ndarray, scaled_limits: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Indices of the tallest bar in each pixel column (the figure's width as the column count).

    Bars in one column overlap on screen, so drawing only the tallest looks the same; it keeps
    tens of thousands of distinct gap lengths from becoming as many (slow, large) SVG paths.
    """
    low, high = scaled_limits
    column = np.floor((scaled_x - low) / (high - low) * FIGURE_SIZE_PX[0]).astype(np.int64)
    order = np.lexsort((-heights, column))
    first_in_column = np.concatenate(([True], column[order][1:] != column[order][:-1]))
    return np.sort(order[first_in_column])


# ---------------------------------------------------------------------------------------------
# Figure plumbing (the I/O edge)

def _new_figure() -> tuple[Figure, Axes]:
    figure = Figure(figsize=(FIGURE_SIZE_PX[0] / DPI, FIGURE_SIZE_PX[1] / DPI), dpi=DPI, layout="constrained")
    return figure, figure.add_subplot()


def _save(figure: Figure, out_stem: Path) -> list[Path]:
    out_stem = Path(out_stem)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    # Appended, not with_suffix: a stem like 'coverage.db01' must keep its dot.
    png_path = out_stem.parent / f"{out_stem.name}.png"
    svg_path = out_stem.parent / f"{out_stem.name}.svg"
    with _SAVE_LOCK, matplotlib.rc_context(_SAVE_SETTINGS):
        figure.savefig(png_path, format="png", dpi=DPI, metadata={"Software": None})
        figure.savefig(svg_path, format="svg", dpi=DPI, metadata={"Date": None})
    return [png_path, svg_path]


def _message(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=20, color="#555555")


def _title(figure: Figure, title: str, default: str) -> None:
    figure.suptitle(_literal(title) if title else default, fontsize=15)


# ---------------------------------------------------------------------------------------------
# Figures

def time_of_day_figure(times: np.ndarray, tz: str, out_stem: Path, *, fold: str = "day",
                       title: str = "") -> list[Path]:
    """Each record at (local time of day or of week, record number), as a 2-D histogram image.

    Steady logging draws diagonal bands; a hole shows as a jump in the band pattern, a rotation
    seam as a discontinuity. ``times`` are epoch seconds UTC in timeline order.
    """
    if fold not in ("day", "week"):
        raise UsageError(f"unknown fold {fold!r} (expected 'day' or 'week')")
    zone_for_name(tz)  # an unknown zone is an error even when there is nothing to draw
    times = np.asarray(times, dtype=np.int64).ravel()
    count = len(times)
    period, bin_seconds = ((_SECONDS_PER_DAY, _DAY_X_BIN_SECONDS) if fold == "day"
                           else (_SECONDS_PER_WEEK, _WEEK_X_BIN_SECONDS))
    period_hours = period // 3600

    figure, ax = _new_figure()
    _title(figure, title, f"Records by local time of {fold} and record number")
    ax.set_xlim(0, period_hours)
    ax.set_ylim(0, max(count, 1))
    ax.set_xlabel(f"local time of {fold} ({_literal(tz)})" + (", hours" if fold == "day" else ""))
    ax.set_ylabel("record number (timeline order)")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    if fold == "day":
        ax.set_xticks(range(period_hours + 1))
    else:
        ax.xaxis.set_major_locator(FixedLocator(range(0, period_hours + 1, 24)))
        ax.xaxis.set_major_formatter(NullFormatter())
        ax.set_xticks(range(12, period_hours, 24), _WEEKDAY_NAMES, minor=True)
        ax.tick_params(axis="x", which="minor", length=0)

    if count == 0:
        _message(ax, "no records")
        return _save(figure, out_stem)

    x_bins = period // bin_seconds
    y_bins = min(_MAX_Y_BINS, count)
    shift = _EPOCH_DAYS_AFTER_MONDAY * _SECONDS_PER_DAY if fold == "week" else 0
    x_index = ((local_seconds(times, tz) + shift) % period) // bin_seconds
    y_index = np.arange(count, dtype=np.int64) * y_bins // count
    counts = np.bincount(y_index * x_bins + x_index, minlength=x_bins * y_bins).reshape(y_bins, x_bins)

    colours = matplotlib.colormaps["viridis"].with_extremes(bad="white")
    image = ax.imshow(np.ma.masked_equal(counts, 0), cmap=colours,
                      norm=LogNorm(vmin=1, vmax=max(int(counts.max()), 10)),
                      origin="lower", extent=(0, period_hours, 0, count), aspect="auto",
                      # 'none': SVG embeds the histogram at its own resolution; Agg upsamples it.
                      interpolation="none")
    figure.colorbar(image, ax=ax, label="records per bin", pad=0.01)
    ax.set_title(f"{count:,} records; a bin is {duration_label(bin_seconds)} wide and "
                 f"{count / y_bins:,.1f} records tall", fontsize=10, color="#444444")
    return _save(figure, out_stem)


_BAR_HEIGHT = 0.6
_HOLE_LABEL_MIN_FRACTION = 0.01


def coverage_figure(rows: list[CoverageRow], holes: list[tuple[int, int]], out_stem: Path, *,
                    tz: str = "UTC", title: str = "") -> list[Path]:
    """One horizontal bar per row (top to bottom in the given order) on a shared time axis,
    coloured by kind, with the holes as red spans across all rows labelled with their length."""
    zone = zone_for_name(tz)
    figure, ax = _new_figure()
    _title(figure, title, "Coverage of the evidence over time")

    interval_arrays = [np.asarray(row.intervals, dtype=np.int64).reshape(-1, 2) for row in rows]
    hole_array = np.asarray(holes, dtype=np.int64).reshape(-1, 2)
    every_bound = np.concatenate([a.ravel() for a in interval_arrays] + [hole_array.ravel()])
    epoch_day = mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC))  # honours date.epoch

    ax.set_yticks(range(len(rows)), [_literal(_shortened(row.label)) for row in rows])
    ax.set_ylim(max(len(rows), 1) - 0.5, -0.5)  # inverted: the first row on top
    ax.set_xlabel(f"time ({_literal(tz)})")

    if len(every_bound) == 0:
        _message(ax, "no coverage" if rows else "no sources")
        ax.set_xticks([])
        return _save(figure, out_stem)

    first, last = int(every_bound.min()), int(every_bound.max())
    span = max(last - first, 60)
    # A pixel's worth of time, taking the whole figure width as the axis: a little finer than
    # the real axes, so merging never hides what the PNG could show.
    pixel = span / FIGURE_SIZE_PX[0]
    pad = span * 0.01
    ax.set_xlim(epoch_day + (first - pad) / _SECONDS_PER_DAY, epoch_day + (last + pad) / _SECONDS_PER_DAY)
    locator = mdates.AutoDateLocator(tz=zone)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)

    def to_bars(intervals: np.ndarray) -> list[tuple[float, float]]:
        shown = _merge_for_display(intervals.astype(np.float64), min_width=pixel, join_gap=pixel / 2)
        return [(epoch_day + s / _SECONDS_PER_DAY, (e - s) / _SECONDS_PER_DAY) for s, e in shown]

    for position, (row, intervals) in enumerate(zip(rows, interval_arrays)):
        ax.broken_barh(to_bars(intervals), (position - _BAR_HEIGHT / 2, _BAR_HEIGHT),
                       facecolors=KIND_COLOURS.get(row.kind, OTHER_KIND_COLOUR), linewidth=0)

    bottom, top = ax.get_ylim()
    ax.broken_barh(to_bars(hole_array), (top, bottom - top), facecolors=HOLE_COLOUR, alpha=0.25,
                   linewidth=0, zorder=3)
    label_y = blended_transform_factory(ax.transData, ax.transAxes)
    for start, end in sorted(map(tuple, hole_array.tolist())):
        if end - start > _HOLE_LABEL_MIN_FRACTION * span:
            ax.text(epoch_day + (start + end) / 2 / _SECONDS_PER_DAY, 0.99, duration_label(end - start),
                    transform=label_y, ha="center", va="top", fontsize=9, color="#8B2E00", zorder=4,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})

    kinds = list(dict.fromkeys(row.kind for row in rows))
    handles = [Patch(color=KIND_COLOURS.get(kind, OTHER_KIND_COLOUR), label=_literal(kind)) for kind in kinds]
    handles.append(Patch(color=HOLE_COLOUR, alpha=0.25, label="hole"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=len(handles), frameon=False)
    return _save(figure, out_stem)


# Duration ticks for the gap axis, from which those inside the data range are used.
_GAP_TICKS = (0, 10, 20, 30, 40, 50, 60, 300, 600, 1800, 3600, 6 * 3600, _SECONDS_PER_DAY, 7 * _SECONDS_PER_DAY,
              30 * _SECONDS_PER_DAY, 365 * _SECONDS_PER_DAY)
_ANNOTATED_GAPS = 3


def gap_histogram_figure(histogram: dict[int, int], out_stem: Path, *, title: str = "",
                         expected_period: int | None = None) -> list[Path]:
    """How many times each gap (seconds between consecutive records) occurs, on log-log-ish axes:
    symlog x keeps 0..60 s linear and multi-day gaps on the same axis; the longest gaps (beyond
    twice the expected period, when given) are labelled with their duration."""
    figure, ax = _new_figure()
    _title(figure, title, "Gaps between consecutive records")
    ax.set_xlabel("gap between consecutive records")
    ax.set_ylabel("number of gaps")
    ax.set_xscale("symlog", linthresh=60, linscale=1.5)
    ax.set_yscale("log")

    pairs = sorted((int(gap), int(n)) for gap, n in histogram.items() if n > 0)
    if not pairs:
        ax.set_xlim(0, _SECONDS_PER_DAY)
        ax.set_ylim(0.5, 10)
        _message(ax, "no gaps")
        return _save(figure, out_stem)

    gaps = np.array([gap for gap, _ in pairs], dtype=np.int64)
    counts = np.array([n for _, n in pairs], dtype=np.int64)
    left = min(-1, int(gaps.min()) - 1)
    right = max(int(gaps.max()) * 1.5, 2 * (expected_period or 0), 120)
    ax.set_xlim(left, right)
    # Bars start below 1 so that a single occurrence still has a visible height on a log axis.
    floor = 0.5
    ax.set_ylim(floor, counts.max() * 30)  # headroom for the labels above the bars
    ticks = [t for t in _GAP_TICKS if left <= t <= right]
    ax.set_xticks(ticks, [duration_label(t) for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)

    # Thin vertical bars: a gap length is one integer, so a bar of fixed screen width reads the
    # same at 3 s as at 3 weeks on the symlog axis.
    shown = _tallest_per_column(ax.xaxis.get_transform().transform(gaps.astype(np.float64)),
                                ax.xaxis.get_transform().transform(np.array([left, right], dtype=np.float64)),
                                counts)
    ax.vlines(gaps[shown], floor, counts[shown], colors=KIND_COLOURS["live"], linewidth=2.0)

    if expected_period is not None:
        ax.axvline(expected_period, color="#444444", linestyle="--", linewidth=1.2)
        ax.text(expected_period, 0.99, f" heartbeat period ({duration_label(expected_period)})",
                transform=blended_transform_factory(ax.transData, ax.transAxes),
                ha="left", va="top", fontsize=9, color="#444444")

    threshold = 2 * expected_period if expected_period is not None else 0
    longest = [(gap, n) for gap, n in reversed(pairs) if gap > threshold][:_ANNOTATED_GAPS]
    for rank, (gap, n) in enumerate(longest):
        text = duration_label(gap) + (f" (×{n:,})" if n > 1 else "")
        # Staggered upwards: the longest gaps are often neighbours on a log axis.
        ax.annotate(text, xy=(gap, n), xytext=(0, 10 + 16 * rank), textcoords="offset points",
                    ha="center", va="bottom", fontsize=9, color="#8B2E00",
                    arrowprops={"arrowstyle": "-", "color": "#8B2E00", "linewidth": 0.6})
    return _save(figure, out_stem)


# Okabe-Ito again, one colour per HTTP status class; drawn in this order (the common classes first,
# so the rarer ones stay visible on top).
STATUS_CLASS_COLOURS = {
    "2xx": "#0072B2",   # blue
    "3xx": "#009E73",   # bluish green
    "4xx": "#E69F00",   # orange
    "5xx": "#D55E00",   # vermilion
    "other": "#999999",  # no status, or outside 200-599
}
SESSION_COLOUR = "#CC79A7"  # reddish purple: not a status colour
_ADDRESS_SPACE = 1 << 32
_ADDRESS_TICK_STEP = 16 << 24  # a labelled tick every 16 /8 networks
_DOT_AREA = 4.0  # points squared: a few pixels, so that one lone request still shows


def _dotted_quad(value: float, _position=None) -> str:
    number = int(min(max(value, 0), _ADDRESS_SPACE - 1))
    return ".".join(str((number >> shift) & 0xFF) for shift in (24, 16, 8, 0))


def status_class(statuses: np.ndarray) -> np.ndarray:
    """'2xx' … '5xx' per HTTP status, 'other' where there is none (NaN, 0) or it is out of range."""
    values = np.asarray(statuses, dtype=np.float64).ravel()
    hundreds = np.where(np.isfinite(values), values // 100, 0)
    classes = np.full(values.shape, "other", dtype=object)
    for digit in (2, 3, 4, 5):
        classes[hundreds == digit] = f"{digit}xx"
    return classes


def address_time_figure(times: np.ndarray, addresses_u32: np.ndarray, statuses: np.ndarray, out_stem: Path, *,
                        tz: str, sessions: tuple | list = (), title: str = "") -> list[Path]:
    """Every web request at (time, source address as an unsigned 32-bit number), one dot coloured by
    its HTTP status class — the incident report's figure 4. A scan is a burst of one colour at one
    height, a network of attackers a band of heights, a web shell a long thread of 2xx dots.

    ``times`` are epoch seconds UTC, ``addresses_u32`` IPv4 addresses as integers (the caller leaves
    out other addresses), ``statuses`` HTTP statuses (NaN or 0 where unknown). ``sessions`` are
    (start, end, label) epoch seconds of FTP upload sessions, drawn as vertical bands (at least a
    pixel wide, so a session of seconds still shows). The dots are rasterised in the SVG: hundreds of
    thousands of requests stay an image, not as many SVG elements.
    """
    zone = zone_for_name(tz)
    times = np.asarray(times, dtype=np.int64).ravel()
    addresses = np.asarray(addresses_u32, dtype=np.int64).ravel()
    classes = status_class(statuses)
    if not (len(times) == len(addresses) == len(classes)):
        raise ValueError(f"times, addresses and statuses differ in length "
                         f"({len(times)}, {len(addresses)}, {len(classes)})")
    bands = sorted((int(s), int(max(e, s)), str(label)) for s, e, label in sessions)

    figure, ax = _new_figure()
    _title(figure, title, "Requests by source address and time")
    ax.set_ylim(0, _ADDRESS_SPACE)
    ax.set_yticks(range(0, _ADDRESS_SPACE + 1, _ADDRESS_TICK_STEP))
    ax.yaxis.set_major_formatter(_dotted_quad)
    ax.set_ylabel("source address (IPv4 as a 32-bit number)")
    ax.set_xlabel(f"time ({_literal(tz)})")

    bounds = np.concatenate([times, np.array([b for s, e, _ in bands for b in (s, e)], dtype=np.int64)])
    if len(bounds) == 0:
        _message(ax, "no requests")
        ax.set_xticks([])
        return _save(figure, out_stem)

    epoch_day = mdates.date2num(datetime(1970, 1, 1, tzinfo=UTC))  # honours date.epoch
    first, last = int(bounds.min()), int(bounds.max())
    span = max(last - first, 60)
    pad = span * 0.01
    ax.set_xlim(epoch_day + (first - pad) / _SECONDS_PER_DAY, epoch_day + (last + pad) / _SECONDS_PER_DAY)
    locator = mdates.AutoDateLocator(tz=zone)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=zone))
    ax.grid(color="#e5e5e5", linewidth=0.8)
    ax.set_axisbelow(True)

    pixel = span / FIGURE_SIZE_PX[0]
    label_y = blended_transform_factory(ax.transData, ax.transAxes)
    for start, end, label in bands:
        middle = (start + end) / 2
        half = max(end - start, pixel) / 2
        ax.axvspan(epoch_day + (middle - half) / _SECONDS_PER_DAY, epoch_day + (middle + half) / _SECONDS_PER_DAY,
                   color=SESSION_COLOUR, alpha=0.3, linewidth=0, zorder=3)  # over the dots, which show through
        if label:
            ax.text(epoch_day + middle / _SECONDS_PER_DAY, 0.995, _literal(_shortened(label, 40)),
                    transform=label_y, rotation=90, ha="right", va="top", fontsize=7, color="#6B2D5C",
                    zorder=4)

    x = epoch_day + times / _SECONDS_PER_DAY
    handles = []
    for name, colour in STATUS_CLASS_COLOURS.items():
        mine = classes == name
        count = int(mine.sum())
        if not count:
            continue
        ax.scatter(x[mine], addresses[mine], s=_DOT_AREA, c=colour, linewidths=0, marker="s",
                   rasterized=True, zorder=2)
        handles.append(Patch(color=colour, label=f"{name} ({count:,})"))
    if bands:
        handles.append(Patch(color=SESSION_COLOUR, alpha=0.3, label=f"FTP upload session ({len(bands):,})"))
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=max(len(handles), 1),
              frameon=False)
    distinct = len(np.unique(addresses)) if len(addresses) else 0
    ax.set_title(f"{len(times):,} requests from {distinct:,} IPv4 addresses", fontsize=10, color="#444444",
                 loc="right")
    return _save(figure, out_stem)
