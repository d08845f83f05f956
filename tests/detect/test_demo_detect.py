"""Acceptance on the demo: every planted milestone at its time, nothing on normal traffic rated
high, and the exfiltration verdict — none found, found when one is planted, undetermined when the
database logs of the window are gone."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from logsalvage.carve.pipeline import carve_into_case, parse_acquired
from logsalvage.config import load_config
from logsalvage.demo import generate
from logsalvage.demo.truth import missed_milestones
from logsalvage.detect.run import run_detection, write_findings
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore



def _case(out: Path, case: Path, truth: dict, *, carve: bool = True) -> dict:
    config = load_config(out / "case.yaml")
    ingest([out / "evidence"], case, config=config)
    image = out / "evidence/db01/image/sdb1.dd"
    if carve and image.exists():
        carve_into_case([image], case, host="db01", acquired=parse_acquired(truth["acquired"]), config=config)
    with CaseStore(case) as store:
        result = run_detection(store, config)
    write_findings(case, result)
    return result


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("detect-demo") / "demo"
    truth = generate(out, days=40, seed=5)
    return truth, _case(out, out.parent / "case", truth)


@pytest.fixture(scope="module")
def exfil_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("detect-exfil") / "demo"
    truth = generate(out, days=40, seed=5, exfil=True)
    return out, truth


def _t(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def test_every_planted_milestone_is_found_at_its_time(plain):
    truth, result = plain
    assert missed_milestones(truth, result["milestones"]) == []


def test_milestones_carry_the_planted_details(plain):
    truth, result = plain
    by_kind = {}
    for m in result["milestones"]:
        by_kind.setdefault(m["kind"], []).append(m)
    first = by_kind["first_webshell_execution"][0]
    planted = next(m for m in truth["milestones"] if m["kind"] == "first_webshell_execution")
    assert first["detail"]["source"] == planted["detail"]["source"] and first["detail"]["url"] == planted["detail"]["url"]
    downloads = sorted((m["time"], m["detail"]["url"]) for m in by_kind["download"])
    assert downloads == sorted((m["time"], m["detail"]["url"]) for m in truth["milestones"] if m["kind"] == "download")
    uploads = [m for m in truth["milestones"] if m["kind"] == "ftp_upload_session"]
    assert len(by_kind["ftp_upload_session"]) == len(uploads)
    scan = by_kind["sqli_scan"][0]
    planted = next(m for m in truth["milestones"] if m["kind"] == "sqli_scan")
    assert scan["detail"]["source"] == planted["detail"]["source"]
    assert scan["detail"]["requests"] == planted["detail"]["requests"]


def test_nothing_on_normal_traffic_is_rated_high(plain):
    truth, result = plain
    a = truth["addresses"]
    attackers = {*a["A"], *a["B"], *a["C"], a["sqli_scanner"]}
    for f in result["findings"]:
        if f["severity"] not in ("high", "critical"):
            continue
        addresses = {s for s in f["sources"] if s[:1].isdigit()}
        assert addresses <= attackers | set(a["download_server"].values()) | {"127.0.0.1"} or \
            f["rule"].startswith(("errorlog.", "cron.", "fs.")), f


def test_no_exfiltration_is_found_and_the_coverage_is_said(plain):
    truth, result = plain
    verdict = result["verdict"]
    coverage = truth["db"]["coverage"]["exposure_window"]
    # a short demo's database log covers too little of the window to clear it
    assert verdict["exfiltration"] == ("none-found" if coverage >= 0.5 else "undetermined")
    assert abs(verdict["coverage_of_exposure_window"] - coverage) < 0.0001
    assert any("cover" in r for r in verdict["reasons"])
    assert result["exposure_window"]["start"] == truth["exposure_window"]["start"]
    assert result["exposure_window"]["end"] == truth["exposure_window"]["end"]


def test_findings_json_contract(plain, tmp_path):
    _, result = plain
    assert {"verdict", "exposure_window", "milestones", "findings"} <= set(result)
    assert set(result["verdict"]) >= {"exfiltration", "confidence", "coverage_of_exposure_window"}
    for f in result["findings"]:
        assert set(f) >= {"id", "rule", "severity", "first_seen", "last_seen", "count", "sources", "event_ids"}
    for m in result["milestones"]:
        assert set(m) >= {"kind", "time", "host", "detail", "event_ids"}
    json.dumps(result)  # serialisable as it is


def test_a_planted_exfiltration_is_found_and_pointed_at(exfil_demo, tmp_path):
    out, truth = exfil_demo
    result = _case(out, tmp_path / "case", truth, carve=False)
    verdict = result["verdict"]
    assert verdict["exfiltration"] in ("found", "suspected")
    planted = {s["statement"].split("\n")[0][:40] for s in truth["exfiltration"]["statements"]}
    with CaseStore(tmp_path / "case", read_only=True) as store:
        pointed = {r[0][:40] for r in store.query(
            "SELECT coalesce(statement, pg_message) FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
            [verdict["event_ids"]])}
    assert pointed and pointed <= planted
    theft = [m for m in result["milestones"] if m["kind"] in ("exfiltration", "suspected_exfiltration")]
    planted_milestone = next(m for m in truth["milestones"] if m["kind"] == "exfiltration")
    assert [(_t(m["time"]), m["detail"].get("source")) for m in theft] == \
        [(_t(planted_milestone["time"]), planted_milestone["detail"]["source"])]


def test_without_the_database_logs_of_the_window_the_verdict_is_undetermined(exfil_demo, tmp_path):
    out, truth = exfil_demo
    partial = tmp_path / "demo"
    partial.mkdir()
    shutil.copy(out / "case.yaml", partial / "case.yaml")
    # the live database files and the image are lost: only the older backups remain
    shutil.copytree(out / "evidence", partial / "evidence",
                    ignore=lambda d, names: [n for n in names if (d.endswith("db01") and n == "image")
                                             or (Path(d).as_posix().endswith("db01/var") and n == "log")])
    result = _case(partial, tmp_path / "case", truth)
    assert result["verdict"]["exfiltration"] == "undetermined"
    assert result["verdict"]["coverage_of_exposure_window"] is None or \
        result["verdict"]["coverage_of_exposure_window"] < 0.5
