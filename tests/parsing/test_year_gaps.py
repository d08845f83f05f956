"""Year inference in file order: a jump forward is a quiet stretch, a step back a new year, and the
readings that rest on a long quiet stretch are said to be guesses."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from logsalvage.parsing.years import Anchor, RolloverTracker, describe_guesses, infer_years


def test_forward_jump_of_more_than_half_a_year_stays_in_the_year():
    # Mar 12 … Nov 5, the file last written on Nov 5: all of it is that year
    years = infer_years([(3, 12), (3, 13), (11, 5)], Anchor(date(2017, 11, 5), "mtime"))
    assert years == [2017, 2017, 2017]


def test_the_long_forward_jump_is_a_stated_guess():
    t = RolloverTracker()
    assert [t.feed(m, d, n) for n, (m, d) in enumerate([(3, 12), (3, 12), (11, 5), (11, 6)], 1)] == [0, 0, 0, 0]
    assert t.guessed == 1 and t.rollovers == 0
    assert t.guesses == ["line 3: Nov 5 after Mar 12, read as a quiet stretch of 238 days within the year "
                         "(a guess: it may also span whole years)"]
    assert describe_guesses(t.guesses, t.guessed).startswith("; 1 guess(es) on long quiet stretches: line 3")


def test_a_short_jump_forward_is_no_guess():
    t = RolloverTracker()
    for m, d in [(3, 1), (5, 1), (8, 30)]:  # two months, then four
        t.feed(m, d)
    assert t.guessed == 0 and describe_guesses(t.guesses, t.guessed) == ""


def test_step_back_beyond_disorder_is_the_next_year():
    # a log is written forwards: Oct 1 then Jul 28 is Jul 28 of the next year, after 301 quiet days
    t = RolloverTracker()
    assert [t.feed(10, 1, 1), t.feed(7, 28, 2)] == [0, 1]
    assert t.rollovers == 1 and t.guessed == 1 and "a step back of 65 days" in t.guesses[0]
    assert infer_years([(10, 1), (7, 28)], Anchor(date(2018, 8, 1), "mtime")) == [2017, 2018]


def test_ordinary_roll_over_is_no_guess():
    t = RolloverTracker()
    for m, d in [(12, 10), (2, 3)]:  # quiet over the holidays: 55 days
        t.feed(m, d)
    assert t.rollovers == 1 and t.guessed == 0


def test_late_lines_a_few_days_back_change_nothing():
    t = RolloverTracker()
    assert [t.feed(*md) for md in [(5, 10), (5, 4), (5, 10), (5, 11)]] == [0, 0, 0, 0]
    assert t.rollovers == 0 and t.guessed == 0
    # … and across the new year they belong to the old one
    t = RolloverTracker()
    assert [t.feed(*md) for md in [(12, 30), (1, 2), (12, 27), (1, 3)]] == [0, 1, 0, 1]


def test_guesses_past_the_first_few_are_counted():
    t = RolloverTracker()
    # every step a long quiet stretch: forward within a year, or back into the next year
    days = [(7, 1), (1, 10), (7, 20), (1, 30), (8, 9), (2, 19), (8, 29), (3, 10)]
    for n, (m, d) in enumerate(days, 1):
        t.feed(m, d, n)
    assert t.guessed == 7 and len(t.guesses) == 5
    assert describe_guesses(t.guesses, t.guessed).endswith("; and 2 more")


@settings(max_examples=300, deadline=None)
@given(start=st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2030, 1, 1)),
       steps=st.lists(st.one_of(st.integers(min_value=0, max_value=3 * 86400),
                                st.integers(min_value=0, max_value=290 * 86400)), min_size=1, max_size=60),
       lateness=st.integers(min_value=0, max_value=5))
def test_any_time_ordered_file_within_300_days_gets_its_true_years(start, steps, lateness):
    """Gaps of any length (quiet months included) inside a file spanning at most 300 days."""
    times = [start]
    for s in steps:
        times.append(times[-1] + timedelta(seconds=s))
    times = [t for t in times if t - times[0] <= timedelta(days=300)]
    anchor = Anchor((times[-1] + timedelta(days=lateness)).date(), "test")
    assert infer_years([(t.month, t.day) for t in times], anchor) == [t.year for t in times]


@settings(max_examples=300, deadline=None)
@given(days=st.lists(st.tuples(st.integers(1, 12), st.integers(1, 28)), min_size=1, max_size=80),
       repeats=st.lists(st.integers(1, 4), min_size=80, max_size=80))
def test_feeding_a_run_of_one_day_once_is_feeding_every_record(days, repeats):
    """What lets the columnar engine feed the tracker once per run of equal days."""
    every, once = RolloverTracker(), RolloverTracker()
    got_every, got_once = [], []
    line = 0
    for (m, d), k in zip(days, repeats):
        line += 1
        first = once.feed(m, d, line)
        for i in range(k):
            got_every.append(every.feed(m, d, line + i))
            got_once.append(first)
        line += k - 1
    assert got_every == got_once
    assert ((every.epoch, every.rollovers, every.max_ordinal_in_last_epoch, every.guesses, every.guessed)
            == (once.epoch, once.rollovers, once.max_ordinal_in_last_epoch, once.guesses, once.guessed))
