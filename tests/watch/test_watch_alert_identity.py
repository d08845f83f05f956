"""An attack step still going on when a round reads it — a scan whose requests keep coming — is
alerted once: the next rounds see the same milestone with a grown detail (more requests, a later
end), not a new one."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from logsalvage.config import parse_config
from logsalvage.watch import run_round
from logsalvage.watch.alerts import AlertSink

ORDINARY = [f'203.0.113.{i} - - [01/Dec/2017:03:5{i}:00 +0000] "GET /index.php HTTP/1.1" 200 900 "-" "Mozilla/5.0"'
            for i in range(5)]
PAYLOADS = ["1)", "1'", "1 AND 5617=5617", "1 AND 5617=8310", "1 AND 3321=3321", "1 AND 3321=9107",
            "1 UNION ALL SELECT NULL-- Sojx", "1 UNION ALL SELECT NULL,NULL-- Sojx", "1 ORDER BY 1-- Wuxm",
            "1 ORDER BY 2-- Wuxm", "1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))", "1 OR 1=1-- Xyz"]


def _probe(i: int, payload: str) -> str:
    t = datetime(2017, 12, 1, 4, 0, 0, tzinfo=timezone.utc) + timedelta(seconds=i)
    return (f'198.51.100.9 - - [{t:%d/%b/%Y:%H:%M:%S +0000}] "GET /safe.php?id={quote(payload, safe="")} HTTP/1.1" '
            f'200 610 "-" "sqlmap/1.8#stable (https://sqlmap.org)"')


def _append(path, lines) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("".join(line + "\n" for line in lines))


def _round(case, config) -> list[dict]:
    out = io.StringIO()
    run_round(case, config, AlertSink(out))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_scan_read_over_several_rounds_is_one_milestone_alert(tmp_path):
    access = tmp_path / "access_log"
    config = parse_config({"hosts": {"web01": {"timezone": "UTC"}},
                           "inventory": {"web": ["/index.php", "/safe.php"]},
                           "watch": {"paths": [{"glob": str(access), "host": "web01"}]}}, str(tmp_path / "case.yaml"))
    case = tmp_path / "case"
    _append(access, ORDINARY)
    assert _round(case, config) == []
    alerts = []
    for part in (PAYLOADS[:6], PAYLOADS[6:9], PAYLOADS[9:]):  # the scan goes on while the watch reads it
        first = PAYLOADS.index(part[0])
        _append(access, [_probe(first + i, p) for i, p in enumerate(part)])
        alerts.append(_round(case, config))
    scans = [a for got in alerts for a in got if a["rule"] == "milestone.sqli_scan"]
    assert len(scans) == 1, json.dumps(alerts, indent=1)
    assert [a["rule"] for a in alerts[0] if a["rule"] == "milestone.sqli_scan"] == ["milestone.sqli_scan"]
    ids = [a["finding_id"] for got in alerts for a in got]
    assert len(ids) == len(set(ids))
