"""Acceptance on the demo: the planted hole, the coverage ratios of truth.json, the agreement of
salvaged and preserved copies, and the figures."""

from __future__ import annotations

import struct
from datetime import datetime

import pytest

from logsalvage.carve.pipeline import carve_into_case, parse_acquired
from logsalvage.continuity.agreement import compare_in_case
from logsalvage.continuity.analysis import case_continuity
from logsalvage.demo import generate
from logsalvage.ingest import ingest
from logsalvage.report.figures import write_continuity_figures
from logsalvage.store import CaseStore

TOLERANCE = 0.0001  # 0.01 percentage points


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("continuity-demo") / "demo"
    truth = generate(out, days=40, seed=5)
    case = out.parent / "case"
    ingest([out / "evidence"], case)
    carve_into_case([out / "evidence/db01/image/sdb1.dd"], case, host="db01",
                    acquired=parse_acquired(truth["acquired"]))
    return case, truth


def _t(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


@pytest.fixture(scope="module")
def db01(demo):
    case, truth = demo
    with CaseStore(case) as store:
        return case_continuity(store, host="db01")["hosts"][0], truth


def test_the_planted_hole_is_found_within_one_heartbeat(db01):
    result, truth = db01
    period = truth["db"]["heartbeat"]["period_s"]
    assert result["heartbeat"]["period_s"] == period
    assert "incomplete\\ startup\\ packet" in result["heartbeat"]["pattern"]
    planted = truth["db"]["hole"]
    found = max(result["holes"], key=lambda h: h["seconds"])
    assert abs(_t(found["start"]) - _t(planted["start"])) <= period
    assert abs(_t(found["end"]) - _t(planted["end"])) <= period
    # and every other gap truth knows of (junk blocks in the salvage-only periods)
    assert [(_t(h["start"]), _t(h["end"])) for h in result["holes"]] == \
        [(_t(g["start"]), _t(g["end"])) for g in truth["db"]["gaps"]]


def test_the_span_is_the_database_log_period(db01):
    result, truth = db01
    assert result["span"]["start"] == truth["db"]["period"]["start"]
    assert result["span"]["end"] == truth["db"]["period"]["end"]


@pytest.mark.parametrize("window", ["whole_period", "since_hole_end", "exposure_window"])
def test_coverage_matches_truth(demo, window):
    case, truth = demo
    bounds = {"whole_period": (None, None),
              "since_hole_end": (truth["db"]["hole"]["end"], None),
              "exposure_window": (truth["exposure_window"]["start"], truth["exposure_window"]["end"])}[window]
    with CaseStore(case) as store:
        host = case_continuity(store, host="db01", since=bounds[0], until=bounds[1])["hosts"][0]
    assert abs(host["coverage"]["ratio"] - truth["db"]["coverage"][window]) <= TOLERANCE
    salvage_alone = host["coverage_by_kind"]["salvage"]["ratio"]
    assert abs(salvage_alone - truth["db"]["coverage_image_only"][window]) <= TOLERANCE


def test_the_merged_periods_follow_the_sources(db01):
    result, truth = db01
    kinds = [p["kind"] for p in result["periods"]]
    expected = []
    for f in truth["db"]["files"]:
        if not expected or expected[-1] != f["kind"]:
            expected.append(f["kind"])
    assert kinds == expected
    live = [p for p in result["periods"] if p["kind"] == "live"][0]
    assert live["start"] == truth["db"]["live"]["start"]
    # a seam of the preserved files is wide exactly where only the salvage holds the files between
    files = truth["db"]["files"]
    preserved = [i for i, f in enumerate(files) if f["kind"] != "salvage"]
    expected_wide = [(files[i]["name"], files[j]["name"]) for i, j in zip(preserved, preserved[1:]) if j > i + 1]
    wide = [(s["from"].rsplit("/", 1)[-1], s["to"].rsplit("/", 1)[-1]) for s in result["seams"] if s["ok"] is False]
    assert wide == expected_wide
    assert len(result["seams"]) == len(preserved) - 1
    assert all(s["rotation_mark"] for s in result["seams"])


def test_salvaged_and_live_copies_agree_with_causes(demo):
    case, truth = demo
    with CaseStore(case) as store:
        result = compare_in_case(store, "db01", "live", "salvage")
    assert result["a_events"] > 10_000 and result["matched"] > 0.99 * result["a_events"]
    assert 0.99 < result["agreement_ratio"] < 1.0
    assert sum(result["mismatches"].values()) > 0
    assert result["mismatches"]["period_absent"] > 0  # junk blocks over parts of the live files' old copies
    assert result["missing_in_a"] == 0  # the salvage holds nothing the live files lack
    assert {e["cause"] for e in result["examples"]} <= set(result["mismatches"])


def test_figures_render(demo, tmp_path):
    case, _ = demo
    with CaseStore(case) as store:
        written = write_continuity_figures(store, tmp_path / "figs", host="db01")
    names = sorted(p.name for p in written)
    assert names == sorted(f"db01-{n}.{ext}" for n in ("time-of-day", "time-of-week", "coverage", "gaps")
                           for ext in ("png", "svg"))
    for p in written:
        data = p.read_bytes()
        assert len(data) > 10_000
        if p.suffix == ".png":
            assert data[:8] == b"\x89PNG\r\n\x1a\n"
            assert struct.unpack(">II", data[16:24]) == (1600, 900)
        else:
            head = data[:2000].decode()
            assert 'width="1152pt"' in head and 'height="648pt"' in head
