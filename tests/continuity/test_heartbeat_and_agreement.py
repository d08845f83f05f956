"""Heartbeat detection, holes and coverage of a host, and the agreement of two sources with each
mismatch cause planted once."""

from __future__ import annotations

import re

import pytest

from logsalvage.continuity import heartbeat as hb
from logsalvage.continuity.agreement import _text_cause, compare, compare_in_case, resolve_side
from logsalvage.continuity.analysis import Options, case_continuity, host_continuity
from logsalvage.continuity.timeline import ensure_timeline
from logsalvage.errors import UsageError
from logsalvage.store import CaseStore
from synthetic import Record, between, ingest_files, records, stamp, write

HOLE = (20_000, 26_000)
SPAN = 43_200


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hb")
    recs = records(SPAN, seed=4, hole=HOLE)
    live = write(tmp / "ev/live/messages", between(recs, 30_000, SPAN))
    backup = write(tmp / "ev/backup/messages-20171201", between(recs, 0, 30_000))
    ingest_files(tmp / "case", [(live, "live"), (backup, "backup")])
    with CaseStore(tmp / "case") as store:
        ensure_timeline(store)
    return tmp / "case", recs


def test_the_heartbeat_is_found_with_its_period(case):
    path, _ = case
    with CaseStore(path) as store:
        beat = hb.detect(store, "db01")
    assert beat.period_s == 30 and beat.how == "auto"
    assert beat.template["event_type"] == "postgresql.incomplete_startup"
    assert beat.template["source_ip"] == "127.0.0.1"
    assert beat.formats == ("syslog",)
    assert re.search(beat.pattern, beat.example)
    assert "127\\.0\\.0\\.1" in beat.pattern  # the client address stays literal


def test_holes_and_coverage_of_a_host(case):
    path, recs = case
    beats = [r.t for r in recs if r.heartbeat]
    before = max(t for t in beats if t < HOLE[0])
    after = min(t for t in beats if t > HOLE[1])
    with CaseStore(path) as store:
        result = host_continuity(store, "db01")
    assert len(result["holes"]) == 1
    hole = result["holes"][0]
    assert (hole["start"], hole["end"]) == (_iso(before), _iso(after))
    first, last = recs[0].t, recs[-1].t
    assert result["coverage"]["total_s"] == last - first
    assert result["coverage"]["covered_s"] == last - first - (after - before)
    assert result["span"]["start"] == _iso(first)
    assert set(result["coverage_by_kind"]) == {"live", "backup"}
    # backup alone covers up to its last heartbeat; live alone from its first
    assert result["coverage_by_kind"]["backup"]["covered_s"] < result["coverage"]["covered_s"]
    times = sorted(r.t for r in recs for _ in set(r.lines))
    widest = max(b - a for a, b in zip(times, times[1:]))
    assert max(result["gap_histogram"]) == widest and result["gap_histogram"][widest] == 1
    assert sum(result["gap_histogram"].values()) == result["records"] - 1
    assert all(s["ok"] for s in result["seams"])  # backup -> live within the cadence
    assert [p["kind"] for p in result["periods"]] == ["backup", "live"]


def test_a_given_heartbeat_and_period_give_the_same_holes(case):
    path, _ = case
    with CaseStore(path) as store:
        auto = host_continuity(store, "db01")
        given = host_continuity(store, "db01", Options(heartbeat=auto["heartbeat"]["pattern"], period=30))
        coarse = host_continuity(store, "db01", Options(period=30, k=400))
    assert given["heartbeat"]["how"] == "given"
    assert given["holes"] == auto["holes"] and given["coverage"] == auto["coverage"]
    assert coarse["holes"] == []  # 6000 s is not more than 400 periods


def test_a_window_limits_coverage(case):
    path, _ = case
    with CaseStore(path) as store:
        result = case_continuity(store, host="db01", since=_iso(HOLE[1] + 600), until=_iso(SPAN - 600))
    assert result["hosts"][0]["coverage"]["ratio"] == 1.0
    assert result["hosts"][0]["holes"] == []


def test_bad_heartbeat_arguments_are_usage_errors(case):
    path, _ = case
    with CaseStore(path) as store:
        with pytest.raises(UsageError, match="not a valid regular expression"):
            case_continuity(store, host="db01", heartbeat="(unclosed")
        with pytest.raises(UsageError, match="no host"):
            case_continuity(store, host="web99")
        with pytest.raises(UsageError, match="ISO 8601"):
            case_continuity(store, host="db01", since="last tuesday")
        with pytest.raises(UsageError, match="empty window"):
            case_continuity(store, host="db01", since="2017-12-02", until="2017-12-01")
        nothing = case_continuity(store, host="db01", heartbeat="no such text anywhere")
        assert nothing["hosts"][0]["heartbeat"] is None and nothing["hosts"][0]["coverage"] is None


def _iso(t: int) -> str:
    from synthetic import START
    from datetime import timedelta
    return (START + timedelta(seconds=t)).isoformat()


# -- agreement -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A live file and a salvaged copy differing in known ways, one per cause."""
    tmp = tmp_path_factory.mktemp("agree")
    recs = records(14_400, seed=8)
    salvage = list(recs)
    # line end lost: a single-line record cut short, and a two-chunk message missing its last line
    single = next(i for i, r in enumerate(salvage) if len(r.lines) == 1 and "statement:" in r.lines[0])
    salvage[single] = Record(salvage[single].t, (salvage[single].lines[0][:90],))
    double = next(i for i, r in enumerate(salvage) if len(r.lines) == 2 and "[3-2]" in r.lines[1])
    salvage[double] = Record(salvage[double].t, salvage[double].lines[:1])
    cron = next(i for i, r in enumerate(salvage) if "systemd" in r.lines[0] and len(r.lines) == 1
                and i > single and i > double)
    salvage[cron] = Record(salvage[cron].t, (salvage[cron].lines[0][:-8],))
    # same-second reorder: two records of one second swapped
    t = 7000
    pair = [Record(t, (f"{stamp(t)} db01 kernel: usb 2-1: new device number {n}",)) for n in (1, 2)]
    live_recs = sorted(recs + pair, key=lambda r: r.t)
    salvage = sorted(salvage + pair[::-1], key=lambda r: r.t)
    # period absent: ten minutes missing from the salvage
    salvage = [r for r in salvage if not 10_000 <= r.t < 10_600]
    # other: one record alone missing, heartbeats on both sides of it
    lonely = next(r for r in salvage if 12_000 < r.t and not r.heartbeat and len(r.lines) == 1
                  and "statement:" in r.lines[0])
    salvage.remove(lonely)
    live = write(tmp / "ev/live/messages", live_recs)
    carved = write(tmp / "ev/image/carved.txt", salvage)
    ingest_files(tmp / "case", [(live, "live"), (carved, "salvage")])
    absent = sum(len(r.lines) if len(set(r.lines)) == 1 else 1 for r in recs if 10_000 <= r.t < 10_600)
    return tmp / "case", absent


def test_every_planted_difference_is_found_with_its_cause(planted):
    path, absent = planted
    with CaseStore(path) as store:
        result = compare_in_case(store, "db01", "live", "salvage", examples=3)
    m = result["mismatches"]
    assert m["line_end_lost"] == 3
    assert m["same_second_reorder"] == 2
    assert m["period_absent"] == absent
    assert m["other"] == 1
    assert m["header_lost"] == 0
    assert result["missing_in_b"] == absent + 1 and result["missing_in_a"] == 0
    union = result["matched"] + sum(m.values())
    assert result["agreement_ratio"] == round(result["matched"] / union, 8)
    assert result["a_events"] - result["b_events"] == absent + 1
    causes = {e["cause"] for e in result["examples"]}
    assert causes == {"line_end_lost", "same_second_reorder", "period_absent", "other"}
    assert result["overlap"]["start"].endswith("+09:00")


def test_a_source_agrees_fully_with_itself(planted):
    path, _ = planted
    with CaseStore(path) as store:
        side = resolve_side(store, "db01", "live")
        result = compare(store, "db01", side, side, period=30)
    assert result["agreement_ratio"] == 1.0 and sum(result["mismatches"].values()) == 0


def test_unknown_sides_are_usage_errors(planted):
    path, _ = planted
    with CaseStore(path) as store:
        with pytest.raises(UsageError, match="no source of host"):
            resolve_side(store, "db01", "backup")
        with pytest.raises(UsageError, match="no host"):
            compare_in_case(store, "web01", "live", "salvage")


def test_text_causes():
    whole = "Dec  1 00:00:01 db01 postgres[1]: [3-1] a\nDec  1 00:00:01 db01 postgres[1]: [3-2] b"
    assert _text_cause(whole, whole.split("\n")[0]) == "line_end_lost"
    three = whole + "\nDec  1 00:00:01 db01 postgres[1]: [3-3] c"
    assert _text_cause(three, whole.split("\n")[0] + "\n" + three.split("\n")[2]) == "header_lost"
    assert _text_cause("abc", "abd") == "other"
