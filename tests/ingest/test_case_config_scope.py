"""The case config's log_line_prefix and LogFormats apply to every host of the evidence, also to a
host that has no entry under ``hosts:`` and no configuration file of its own."""

from __future__ import annotations

import duckdb

from logsalvage.config import parse_config
from logsalvage.ingest import ingest


def test_case_level_settings_reach_a_host_the_config_does_not_list(tmp_path):
    ev = tmp_path / "ev"
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text(
        "Dec  3 03:45:20 db01 postgres[11324]: [3-1] DATABASE=shop,USER=app,CLIENT=10.0.0.5(4000),LOG:  "
        "connection authorized: user=app database=shop\n")
    (ev / "web01/var/log/httpd/access_log").write_text(
        '[15/Jul/2017:08:58:21 +0900] 203.0.113.9 "GET /item.php?id=1 HTTP/1.1" 200 7590\n')
    config = parse_config({"postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
                           "apache": {"logformats": ['%t %h "%r" %>s %b']}}, "test")
    result = ingest([ev], tmp_path / "case", config=config)
    assert sorted((s["format"], s["events"], s["issues"]) for s in result.sources) == [
        ("apache-access", 1, 0), ("syslog", 1, 0)]
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    rows = con.execute("SELECT format_id, source_ip, bytes FROM events ORDER BY format_id").fetchall()
    con.close()
    assert rows == [("apache-access", "203.0.113.9", 7590), ("syslog", "10.0.0.5", None)]
