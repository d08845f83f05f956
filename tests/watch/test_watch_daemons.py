"""logsalvage watch against real daemons: PostgreSQL logging through a private rsyslogd (the
incident's settings), a health check that connects every second and then stops — the watch,
reading rsyslog's live file round after round, alerts that the heartbeat stopped, to stdout and
through /dev/log back into rsyslog. Skipped without the daemons or root (the daemons: conftest.py)."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # daemons.py

import daemons  # noqa: E402

from logsalvage.config import parse_config  # noqa: E402
from logsalvage.store import CaseStore  # noqa: E402
from logsalvage.watch import run_round  # noqa: E402
from logsalvage.watch.alerts import AlertSink  # noqa: E402

BEATS = 105  # the heartbeat detector wants 100 beats before it calls a template periodic


def test_stopped_health_check_alerts(syslog_and_postgres, tmp_path):
    rs, pg = syslog_and_postgres
    config = parse_config({"hosts": {"db01": {"timezone": "UTC"}},
                           "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
                           "watch": {"paths": [{"glob": str(rs.log_file), "host": "db01"}],
                                     "heartbeat_periods": 3, "syslog": True}}, "case.yaml")
    case = tmp_path / "case"
    out = io.StringIO()
    sink = AlertSink(out, syslog=True, facility="local0")
    events = 0
    start = time.monotonic()
    for i in range(BEATS):  # the health check: one connection a second
        daemons.incomplete_startup_packet(pg.port)
        if i % 40 == 39:  # the watch reads the live file while it grows
            events += run_round(case, config, sink).events
        time.sleep(max(0.0, start + i + 1 - time.monotonic()))
    daemons.wait_until(lambda: rs.log_file.read_text(errors="replace").count("incomplete startup packet") >= BEATS,
                       20, "rsyslog to write the health checks")
    events += run_round(case, config, sink).events
    assert not [a for a in map(json.loads, out.getvalue().splitlines()) if a["rule"] == "watch.heartbeat_stopped"]
    with CaseStore(case, read_only=True) as store:
        beats = store.query("SELECT count(*) FROM events WHERE raw LIKE '%incomplete startup packet%'")[0][0]
    assert beats == BEATS  # each line read once across the rounds
    time.sleep(5)  # the health check stopped: more than 3 periods of 1 s
    run_round(case, config, sink)
    sink.close()
    stopped = [a for a in map(json.loads, out.getvalue().splitlines()) if a["rule"] == "watch.heartbeat_stopped"]
    assert len(stopped) == 1 and stopped[0]["host"] == "db01"
    assert stopped[0]["title"].startswith("heartbeat stopped on db01 since ")
    daemons.wait_until(lambda: "logsalvage-watch: " in rs.log_file.read_text(errors="replace")
                       and "watch.heartbeat_stopped" in rs.log_file.read_text(errors="replace"),
                       20, "the alert to reach rsyslog through /dev/log")
