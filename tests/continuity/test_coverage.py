"""Holes and coverage: the interval arithmetic, checked against the demo's own truth definition."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from logsalvage.continuity.coverage import Coverage, distinct_sorted, find_holes
from logsalvage.continuity.seams import SourceSpan, chain_name, seams
from logsalvage.demo.truth import Coverage as TruthCoverage


def test_holes_are_gaps_longer_than_the_threshold_with_their_edges():
    beats = [100, 130, 160, 400, 430]
    assert find_holes(beats, (100, 430), 60) == [(160, 400)]
    # the span's edges count when the first or last heartbeat is far from them
    assert find_holes(beats, (0, 600), 60) == [(0, 100), (160, 400), (430, 600)]
    # exactly k periods is not a hole (more than k is)
    assert find_holes([0, 60, 120], (0, 120), 60) == []
    assert find_holes([], (0, 100), 60) == [(0, 100)]
    assert find_holes([5], (5, 5), 60) == []


def test_coverage_counts_time_outside_the_span_as_uncovered():
    cov = Coverage((100, 200), ((120, 150),))
    assert cov.covered(100, 200) == 70
    assert cov.ratio(100, 200) == 0.7
    assert cov.ratio(0, 200) == 70 / 200
    assert cov.ratio(150, 150) is None
    assert cov.as_dict(100, 200) == {"ratio": 0.7, "covered_s": 70, "total_s": 100}
    assert cov.covered_intervals() == [(100, 120), (150, 200)]


def test_distinct_sorted_matches_numpy_unique():
    a = np.array([1, 1, 2, 5, 5, 5, 9], dtype=np.int64)
    assert distinct_sorted(a).tolist() == np.unique(a).tolist()
    assert distinct_sorted(np.array([], dtype=np.int64)).size == 0


beat_lists = st.lists(st.integers(min_value=0, max_value=10_000), min_size=0, max_size=200).map(sorted)


@settings(max_examples=200, deadline=None)
@given(beat_lists, st.integers(1, 500), st.integers(0, 10_000), st.integers(0, 10_000))
def test_coverage_agrees_with_the_demo_truth_definition(beats, threshold, a, b):
    beats = sorted(set(beats))
    start, end = 0, 10_000
    truth = TruthCoverage(start, end, threshold)
    for t in beats:
        truth.feed(t)
    truth.finish()
    ours = Coverage((start, end), tuple(find_holes(np.array(beats, dtype=np.int64), (start, end), threshold)))
    assert list(ours.holes) == truth.holes
    lo, hi = min(a, b), max(a, b)
    if hi > lo:
        assert round(ours.ratio(lo, hi), 6) == truth.ratio(lo, hi)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 1000), st.lists(st.integers(1, 30), min_size=1, max_size=300), st.integers(30, 90))
def test_a_period_without_holes_is_fully_covered(start, steps, threshold):
    beats = np.cumsum([start] + steps)
    span = (int(beats[0]), int(beats[-1]))
    cov = Coverage(span, tuple(find_holes(beats, span, threshold)))
    assert cov.holes == ()
    if span[1] > span[0]:
        assert cov.ratio(*span) == 1.0
        mid = (span[0] + span[1]) // 2
        if mid > span[0]:
            assert cov.ratio(span[0], mid) == 1.0


@settings(max_examples=200, deadline=None)
@given(beat_lists, st.integers(1, 300))
def test_covered_and_uncovered_add_up(beats, threshold):
    beats = sorted(set(beats))
    cov = Coverage((0, 10_000), tuple(find_holes(np.array(beats, dtype=np.int64), (0, 10_000), threshold)))
    for lo, hi in ((0, 10_000), (-500, 5_000), (2_000, 12_000)):
        assert cov.covered(lo, hi) + cov.uncovered(lo, hi) == hi - lo
        assert 0 <= cov.covered(lo, hi) <= hi - lo
    ends = [x for h in cov.holes for x in h]
    assert ends == sorted(ends)  # holes in order, never overlapping


def test_chain_names_strip_rotation_and_compression():
    assert chain_name("messages-20171210") == "messages"
    assert chain_name("messages") == "messages"
    assert chain_name("access_log-20170122.gz") == "access_log"
    assert chain_name("access_log.1") == "access_log"
    assert chain_name("cron-20171231.bz2") == "cron"
    assert chain_name("secure.2.gz") == "secure"
    assert chain_name("error_log-2017-01-22") == "error_log"


def _span(name, kind, first, last, last_record=None, fmt="syslog"):
    return SourceSpan(source_id=name, display=name, name=name, kind=kind, format_id=fmt, first=first, last=last,
                      events=10, first_record="x", last_record=last_record)


def test_seams_judge_the_gap_between_consecutive_files_of_a_chain():
    hup = "Nov 10 23:09:50 db01 rsyslogd: [origin software=\"rsyslogd\"] rsyslogd was HUPed"
    spans = [_span("messages-20171105", "backup", 0, 1000, hup), _span("messages-20171110", "backup", 1010, 2000, hup),
             _span("messages-20171210", "live", 5000, 6000), _span("image", "salvage", 0, 6000),
             _span("access_log-20171105", "live", 0, 100, fmt="apache-access")]
    coverage = Coverage((0, 6000), ((3000, 3500),))
    out = seams(spans, threshold=60, coverage=coverage)
    messages = [s for s in out if s["chain"] == "messages"]
    assert [(s["from"], s["to"], s["gap_s"], s["ok"]) for s in messages] == [
        ("messages-20171105", "messages-20171110", 10, True), ("messages-20171110", "messages-20171210", 3000, False)]
    assert messages[0]["rotation_mark"] and messages[1]["rotation_mark"]
    assert messages[0]["gap_covered_by_other_sources"] is None
    assert messages[1]["gap_covered_by_other_sources"] == 2500 / 3000  # the salvage fills all but the hole
    assert all(s["from"] != "image" and s["to"] != "image" for s in out)  # salvage is not a file chain
    unknown = seams(spans, threshold=None)
    assert all(s["ok"] is None for s in unknown)
