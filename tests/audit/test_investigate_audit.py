"""``investigate`` audits the evidence's configuration as one more resumable step: audit.json and
the case's audit_findings table, an ``audit`` summary in findings.json, and the report's "What
to change" section (evidence text escaped, under the report's Content-Security-Policy)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from logsalvage.config import parse_config
from logsalvage.investigate import investigate
from logsalvage.report.html import CSP

JST = timezone(timedelta(hours=9))
CONFIG = parse_config({"acquired": "2017-12-31T00:00:00+09:00",
                       "hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"]},
                                 "db01": {"timezone": "Asia/Tokyo", "paths": ["db01/**"]}},
                       "audit": {"dwell_days": 90}}, "test")
SCRIPT = "<script>alert('audit')</script>"


def _evidence(root: Path) -> Path:
    ev = root / "evidence"
    start = datetime(2017, 12, 1, tzinfo=JST)
    access = [f'203.0.113.{i % 50} - - [{start + timedelta(minutes=7 * i):%d/%b/%Y:%H:%M:%S} +0900] '
              f'"GET /index.php HTTP/1.1" 200 900 "-" "M"' for i in range(200)]
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text("\n".join(access) + "\n")
    (ev / "web01/etc").mkdir(parents=True)
    (ev / "web01/etc/vsftpd.conf").write_text("listen=YES\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\n")
    (ev / "web01/etc/php.ini").write_text(f"[PHP]\nallow_url_include = On ; {SCRIPT}\n")
    lines = [f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 postgres[{3000 + i}]: [3-1] DATABASE=[unknown],"
             f"USER=[unknown],CLIENT=127.0.0.1({40000 + i}),LOG:  incomplete startup packet"
             for i, t in enumerate(start + timedelta(seconds=30 * i) for i in range(24 * 120))]
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text("\n".join(lines) + "\n")
    return ev


@pytest.mark.slow
def test_investigate_audits_reports_and_resumes(tmp_path):
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    first = investigate(ev, case, config=CONFIG, timeline=False)
    assert first.steps["audit"] == "done"
    audit = json.loads((case / "audit.json").read_text())
    assert audit["dwell_days"] == 90
    highs = {(f["host"], f["id"]) for f in audit["findings"] if f["severity"] == "high"}
    assert {("web01", "vsftpd.open"), ("web01", "php.allow_url_include")} <= highs
    assert ("db01", "audit.no_configuration") in {(f["host"], f["id"]) for f in audit["findings"]}

    findings = json.loads((case / "findings.json").read_text())
    assert findings["audit"]["by_severity"]["high"] == len(highs)
    assert any(h["id"] == "vsftpd.open" and h["at"] == "web01/etc/vsftpd.conf:1" for h in findings["audit"]["high"])
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM audit_findings").fetchone()[0] == len(audit["findings"])
    con.close()

    html = (case / "report.html").read_text()
    assert '<section id="audit">' in html and "What to change" in html and 'href="#audit"' in html
    assert "web01/etc/php.ini:2" in html and "No FTP, or FTP only from fixed addresses" in html
    assert SCRIPT not in html and "&lt;script&gt;alert(" in html  # evidence text escaped
    assert f'content="{CSP}"' in html[:600]
    assert html.index('id="audit"') < html.index('id="findings"')

    again = investigate(ev, case, config=CONFIG, timeline=False)
    assert again.steps["audit"] == "reused" and again.steps["report"] == "reused"
    assert json.loads((case / "findings.json").read_text()) == findings

    # a configuration file changed (no log did): the audit and the report are redone, nothing else
    (ev / "web01/etc/php.ini").write_text("[PHP]\nallow_url_include = Off\n")
    third = investigate(ev, case, config=CONFIG, timeline=False)
    assert third.steps["audit"] == "done" and third.steps["report"] == "done"
    assert third.steps["detect"] == "reused" and third.steps["continuity"] == "reused"
    assert "php.allow_url_include" not in {h["id"] for h in json.loads((case / "findings.json").read_text())
                                           ["audit"]["high"]}


def test_evidence_of_logs_alone_audits_to_a_note(tmp_path):
    ev = tmp_path / "evidence"
    (ev / "logs").mkdir(parents=True)
    (ev / "logs/messages").write_text("Dec  1 00:00:00 db01 sshd[1]: Server listening on 0.0.0.0 port 22.\n"
                                      "Dec  1 00:10:00 db01 sshd[1]: Received signal 15; terminating.\n")
    result = investigate(ev, tmp_path / "case", config=CONFIG, timeline=False)
    assert result.steps["audit"].startswith("skipped: no system tree")
    assert json.loads((tmp_path / "case/findings.json").read_text())["audit"]["weaknesses"] == 0
