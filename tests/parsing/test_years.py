"""Year inference for year-less syslog timestamps: roll-over, Feb 29, out-of-order tolerance."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from logsalvage.parsing.years import Anchor, RolloverTracker, fit_leap_days, infer_years, ordinal


def test_ordinal_has_a_place_for_feb_29():
    assert ordinal(1, 1) == 0
    assert ordinal(2, 29) == 59
    assert ordinal(3, 1) == 60
    assert ordinal(12, 31) == 365


def test_december_to_january_rolls_over():
    years = infer_years([(12, 30), (12, 31), (1, 1), (1, 2)], Anchor(date(2018, 1, 11), "rotation"))
    assert years == [2017, 2017, 2018, 2018]


def test_last_record_after_anchor_day_means_previous_year():
    assert infer_years([(12, 20)], Anchor(date(2018, 1, 6), "acquired")) == [2017]
    assert infer_years([(1, 5)], Anchor(date(2018, 1, 6), "acquired")) == [2018]


def test_straggler_from_previous_year_is_not_a_rollover():
    years = infer_years([(12, 31), (1, 1), (12, 31), (1, 1), (1, 2)], Anchor(date(2018, 2, 1), "x"))
    assert years == [2017, 2018, 2017, 2018, 2018]


def test_feb_29_moves_the_year_to_a_leap_year():
    # anchored in 2017 (not leap): the only consistent year for Feb 29 is 2016
    years = infer_years([(2, 28), (2, 29), (3, 1)], Anchor(date(2017, 3, 2), "mtime"))
    assert years == [2016, 2016, 2016]
    base, moved = fit_leap_days(2017, 0, {0})
    assert (base, moved) == (2016, 1)


def test_small_disorder_changes_nothing():
    t = RolloverTracker()
    assert [t.feed(*md) for md in [(5, 2), (5, 1), (5, 3)]] == [0, 0, 0]


@settings(max_examples=200, deadline=None)
@given(start=st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2030, 1, 1)),
       steps=st.lists(st.integers(min_value=0, max_value=3 * 86400), min_size=1, max_size=400),
       lateness=st.integers(min_value=0, max_value=5))
def test_inferred_years_match_a_real_sequence(start, steps, lateness):
    """Any time-ordered sequence spanning < 1 year gets back its true years from a valid anchor."""
    times = [start]
    for s in steps:
        times.append(times[-1] + timedelta(seconds=s))
    if times[-1] - times[0] > timedelta(days=300):
        times = [t for t in times if t - times[0] <= timedelta(days=300)]
    anchor = Anchor((times[-1] + timedelta(days=lateness)).date(), "test")
    got = infer_years([(t.month, t.day) for t in times], anchor)
    assert got == [t.year for t in times]


@settings(max_examples=100, deadline=None)
@given(year=st.integers(min_value=1996, max_value=2040))
def test_feb_29_parses_in_every_leap_year(year):
    if not calendar.isleap(year):
        year += 4 - year % 4
        if not calendar.isleap(year):
            year += 4
    got = infer_years([(2, 28), (2, 29)], Anchor(date(year, 3, 1), "test"))
    assert got == [year, year]
