"""Acceptance: ``logsalvage investigate`` on a demo evidence set, interrupted with Ctrl-C (SIGINT)
while it carves the image and run again, gives the answer key's verdict, coverage and milestones,
in the report as in findings.json, with no event twice."""

from __future__ import annotations

import html
import json
import re
import signal
import subprocess
import sys
import time

import pytest

from logsalvage.demo import generate
from logsalvage.demo.truth import missed_milestones
from logsalvage.report.model import VERDICT_LABELS
from logsalvage.store import CaseStore


@pytest.mark.slow
def test_investigate_the_demo_agrees_with_truth(tmp_path):
    out = tmp_path / "demo"
    truth = generate(out, days=40, seed=11)
    case = tmp_path / "case"
    cmd = [sys.executable, "-m", "logsalvage", "investigate", str(out / "evidence"), "--case", str(case),
           "--config", str(out / "case.yaml")]
    # Ctrl-C once the carving has written its first chunk
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    deadline = time.monotonic() + 900
    while first.poll() is None and time.monotonic() < deadline:
        if any(p.is_file() for p in (case / "carve").glob("*/*")):
            break
        time.sleep(0.1)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=600)
    assert first.returncode == 130, err[-3000:]
    assert "interrupted" in err and "Traceback" not in err
    assert not (case / "findings.json").exists()
    cp = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, stdin=subprocess.DEVNULL, check=False)
    assert cp.returncode == 0, cp.stderr[-3000:]
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    verdict = findings["verdict"]
    coverage = truth["db"]["coverage"]["exposure_window"]
    assert verdict["exfiltration"] == ("none-found" if coverage >= 0.5 else "undetermined")
    assert abs(verdict["coverage_of_exposure_window"] - coverage) < 0.0001
    assert missed_milestones(truth, findings["milestones"]) == []
    assert findings["exposure_window"]["start"] == truth["exposure_window"]["start"]
    # the terminal ends with the verdict and the report's path
    assert f"exfiltration: {verdict['exfiltration']} (confidence {verdict['confidence']}" in cp.stdout
    assert f"report: {case / 'report.html'}" in cp.stdout
    # the report says the same
    text = html.unescape(re.sub(r"<[^>]+>", " ", (case / "report.html").read_text(encoding="utf-8")))
    text = " ".join(text.split())
    assert VERDICT_LABELS[verdict["exfiltration"]] in text
    assert f"{verdict['coverage_of_exposure_window'] * 100:.2f} %" in text
    assert f"Every dated step ({len(findings['milestones'])})" in text
    # the image was carved into the case; the Timesketch timeline holds every event behind a milestone
    # (the default scope: what an analyst loads first), each tagged
    with CaseStore(case, read_only=True) as store:
        (salvaged,) = store.query("SELECT count(*) FROM events WHERE kind = 'salvage'")[0]
        (events,) = store.query("SELECT count(*) FROM events")[0]
        (distinct,) = store.query("SELECT count(DISTINCT event_id) FROM events")[0]
    assert salvaged > 10_000
    assert events == distinct  # nothing read twice
    with open(case / "timeline.jsonl", encoding="utf-8") as fh:
        timeline = {row["event_id"]: row["tag"] for row in map(json.loads, fh)}
    assert 0 < len(timeline) < events
    for m in findings["milestones"]:
        assert all(m["kind"] in timeline[e] for e in m["event_ids"]), m["kind"]
