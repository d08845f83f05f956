import struct
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import numpy as np
import pytest

from logsalvage.errors import UsageError
from logsalvage.report.plots import (
    DPI,
    FIGURE_SIZE_PX,
    CoverageRow,
    coverage_figure,
    duration_label,
    gap_histogram_figure,
    local_seconds,
    time_of_day_figure,
)

YEAR_2017 = int(datetime(2017, 1, 1, tzinfo=UTC).timestamp())
DAY = 86_400


def utc(*fields) -> int:
    return int(datetime(*fields, tzinfo=UTC).timestamp())


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_written(paths, stem):
    png, svg = paths
    assert (png.name, svg.name) == (f"{stem.name}.png", f"{stem.name}.svg")
    assert png_size(png) == FIGURE_SIZE_PX == (1600, 900)
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    # 16 in x 9 in, in points
    assert (root.get("width"), root.get("height")) == ("1152pt", "648pt")
    assert FIGURE_SIZE_PX[0] / DPI * 72 == 1152


def heartbeat_with_hole(period: int) -> np.ndarray:
    """A record every `period` seconds through 2017 with 16 days missing from 10 April."""
    times = np.arange(YEAR_2017, YEAR_2017 + 365 * DAY, period, dtype=np.int64)
    hole_start = utc(2017, 4, 10)
    return times[(times < hole_start) | (times >= hole_start + 16 * DAY)]


# --- duration_label -------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, label", [
    (0, "0 s"),
    (45, "45 s"),
    (60, "1 min"),
    (200, "3 min 20 s"),
    (3599, "59 min 59 s"),
    (3600, "1 h"),
    (2 * 3600 + 5 * 60, "2 h 5 min"),
    (2 * 3600 + 4 * 60 + 40, "2 h 5 min"),   # rounded to the smaller unit shown
    (DAY - 1, "1 d"),                         # 23 h 59 min 59 s rounds up to a whole day
    (15 * DAY + 21 * 3600, "15 d 21 h"),
    (15 * DAY + 21 * 3600 + 50 * 60, "15 d 22 h"),
    (16 * DAY, "16 d"),
    (-90, "-1 min 30 s"),
])
def test_duration_label(seconds, label):
    assert duration_label(seconds) == label


# --- local_seconds ----------------------------------------------------------------------------

def test_local_seconds_follows_dst_in_berlin():
    times = np.array([
        utc(2017, 3, 26, 0, 30),   # CET, before the spring change at 01:00 UTC
        utc(2017, 3, 26, 1, 30),   # CEST: 03:30 local
        utc(2017, 10, 29, 0, 30),  # CEST: 02:30 local
        utc(2017, 10, 29, 1, 30),  # CET again: 02:30 local, the repeated hour
    ], dtype=np.int64)
    local = local_seconds(times, "Europe/Berlin")
    assert list(local - times) == [3600, 7200, 7200, 3600]
    assert list(local % DAY) == [5400, 12600, 9000, 9000]


def test_local_seconds_when_the_offset_changes_inside_a_utc_hour():
    # Lord Howe Island moves from +10:30 to +11:00 at 02:00 local standard time, 15:30 UTC.
    change = utc(2017, 9, 30, 15, 30)
    times = np.array([change - 1, change, change + 60], dtype=np.int64)
    assert list(local_seconds(times, "Australia/Lord_Howe") - times) == [37800, 39600, 39600]


def test_local_seconds_keeps_order_and_handles_fixed_offsets_and_empty_input():
    times = np.array([YEAR_2017 + 7200, YEAR_2017, YEAR_2017 + 7200], dtype=np.int64)
    assert list(local_seconds(times, "UTC+09:00") - times) == [32400] * 3
    assert list(local_seconds(times, "UTC-03:30") - times) == [-12600] * 3
    assert local_seconds(np.array([], dtype=np.int64), "Europe/Berlin").size == 0


def test_unknown_time_zone_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="Mars/Olympus"):
        local_seconds(np.array([0]), "Mars/Olympus")
    with pytest.raises(UsageError, match="Mars/Olympus"):
        time_of_day_figure(np.array([], dtype=np.int64), "Mars/Olympus", tmp_path / "t")


# --- time_of_day_figure -----------------------------------------------------------------------

def test_day_fold_of_three_million_records_stays_small(tmp_path):
    times = heartbeat_with_hole(10)
    assert len(times) > 3_000_000
    stem = tmp_path / "secure.time_of_day"
    paths = time_of_day_figure(times, "Europe/Berlin", stem, title="web01 /var/log/secure")
    assert_written(paths, stem)
    assert paths[1].stat().st_size < 5_000_000


def test_week_fold(tmp_path):
    stem = tmp_path / "week"
    assert_written(time_of_day_figure(heartbeat_with_hole(300), "Europe/Berlin", stem, fold="week"), stem)


def test_time_of_day_rejects_an_unknown_fold(tmp_path):
    with pytest.raises(UsageError, match="fortnight"):
        time_of_day_figure(np.array([0]), "UTC", tmp_path / "t", fold="fortnight")


@pytest.mark.parametrize("fold", ["day", "week"])
def test_time_of_day_without_records(tmp_path, fold):
    stem = tmp_path / "empty"
    paths = time_of_day_figure(np.array([], dtype=np.int64), "UTC", stem, fold=fold)
    assert_written(paths, stem)
    assert "no records" in paths[1].read_text()


def test_time_of_day_single_record(tmp_path):
    stem = tmp_path / "one"
    assert_written(time_of_day_figure(np.array([YEAR_2017]), "UTC", stem), stem)


def test_same_input_gives_the_same_bytes(tmp_path):
    times = heartbeat_with_hole(600)
    first = time_of_day_figure(times, "Europe/Berlin", tmp_path / "a")
    second = time_of_day_figure(times, "Europe/Berlin", tmp_path / "b")
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()


def test_figures_drawn_in_parallel_threads_give_the_same_bytes(tmp_path):
    times = heartbeat_with_hole(3600)
    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(lambda i: time_of_day_figure(times, "Europe/Berlin", tmp_path / f"t{i}"), range(4)))
    svgs = {paths[1].read_bytes() for paths in outputs}
    pngs = {paths[0].read_bytes() for paths in outputs}
    assert len(svgs) == 1 and len(pngs) == 1


# --- coverage_figure --------------------------------------------------------------------------

def coverage_rows(salvaged_pieces: int = 20_000) -> list[CoverageRow]:
    starts = np.sort(np.random.default_rng(7).integers(YEAR_2017, YEAR_2017 + 365 * DAY, salvaged_pieces))
    return [
        CoverageRow("live  web01/var/log/secure", "live", ((YEAR_2017 + 200 * DAY, YEAR_2017 + 365 * DAY),)),
        CoverageRow("backup  web01/backup.tar.gz!var/log/secure-20170409", "backup",
                    ((YEAR_2017, utc(2017, 4, 10)),)),
        CoverageRow("salvage  db01/image/sdb1.dd", "salvage", tuple((int(s), int(s) + 120) for s in starts)),
        CoverageRow("live  db01/pg_log (nothing read)", "live", ()),
        CoverageRow("merged", "merged", ((YEAR_2017, utc(2017, 4, 10)), (utc(2017, 4, 26), YEAR_2017 + 365 * DAY))),
    ]


def test_coverage_figure(tmp_path):
    holes = [(utc(2017, 4, 10), utc(2017, 4, 26)), (utc(2017, 7, 1, 12), utc(2017, 7, 1, 12, 3))]
    stem = tmp_path / "coverage"
    paths = coverage_figure(coverage_rows(), holes, stem, tz="Europe/Berlin", title="Coverage, db01 and web01")
    assert_written(paths, stem)
    svg = paths[1].read_text()
    assert "16 d" in svg           # the long hole is labelled
    assert "3 min" not in svg      # the short one is too narrow for a label
    # 20 000 salvaged intervals are drawn as what the pixels can show, not 20 000 paths
    assert paths[1].stat().st_size < 1_000_000


def test_coverage_of_nothing_still_renders(tmp_path):
    assert_written(coverage_figure([], [], tmp_path / "none"), tmp_path / "none")
    rows = [CoverageRow("live  web01/var/log/messages", "live", ())]
    paths = coverage_figure(rows, [], tmp_path / "empty_row")
    assert_written(paths, tmp_path / "empty_row")
    assert "web01/var/log/messages" in paths[1].read_text()


def test_coverage_labels_from_evidence_are_not_mathtext(tmp_path):
    # An unbalanced TeX command between dollar signs would make matplotlib's mathtext raise.
    rows = [CoverageRow(r"live  /tmp/$\frac{$x.log", "weird\x1bkind", ((YEAR_2017, YEAR_2017 + 60),))]
    paths = coverage_figure(rows, [], tmp_path / "hostile", title=r"$\sqrt{$")
    assert_written(paths, tmp_path / "hostile")


def test_long_row_labels_are_cut_in_the_middle(tmp_path):
    label = "salvage  db01/" + "deep/" * 40 + "postgresql-2017-04-10.log"
    paths = coverage_figure([CoverageRow(label, "salvage", ((YEAR_2017, YEAR_2017 + DAY),))], [], tmp_path / "long")
    assert_written(paths, tmp_path / "long")
    svg = paths[1].read_text()
    assert "salvage  db01/deep/" in svg and "postgresql-2017-04-10.log" in svg and label not in svg


def test_coverage_same_input_gives_the_same_bytes(tmp_path):
    rows = coverage_rows(500)
    holes = [(utc(2017, 4, 10), utc(2017, 4, 26))]
    first = coverage_figure(rows, holes, tmp_path / "a", tz="Europe/Berlin")
    second = coverage_figure(rows, holes, tmp_path / "b", tz="Europe/Berlin")
    assert first[1].read_bytes() == second[1].read_bytes()


# --- gap_histogram_figure ---------------------------------------------------------------------

def test_gap_histogram(tmp_path):
    gaps, counts = np.unique(np.diff(heartbeat_with_hole(30)), return_counts=True)
    histogram = dict(zip(gaps.tolist(), counts.tolist()))
    histogram.update({0: 120, 29: 4000, 31: 3900, 3 * 60 + 20: 2, 7200: 1})
    stem = tmp_path / "gaps"
    paths = gap_histogram_figure(histogram, stem, title="web01 heartbeat", expected_period=30)
    assert_written(paths, stem)
    svg = paths[1].read_text()
    assert "heartbeat period" in svg
    for label in ("16 d", "2 h", "3 min 20 s"):  # the three longest gaps beyond twice the period
        assert label in svg


def test_gap_histogram_with_many_distinct_gaps_stays_small(tmp_path):
    gaps = np.unique(np.random.default_rng(3).integers(0, 2_000_000, 50_000))
    paths = gap_histogram_figure({int(g): 1 for g in gaps}, tmp_path / "many")
    assert_written(paths, tmp_path / "many")
    assert paths[1].stat().st_size < 2_000_000


def test_gap_histogram_without_gaps(tmp_path):
    paths = gap_histogram_figure({}, tmp_path / "none", expected_period=60)
    assert_written(paths, tmp_path / "none")
    assert "no gaps" in paths[1].read_text()
