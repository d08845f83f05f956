"""logsalvage watch: incremental reading of live logs (once each, partial lines, rotation,
truncation, restarts), alerts (de-duplicated, heartbeat stopped, webhook) and an end-to-end round
on logs written as the daemons write them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from logsalvage.config import parse_config
from logsalvage.errors import ConfigError
from logsalvage.store import CaseStore
from logsalvage.watch import run_round
from logsalvage.watch.alerts import Alert, AlertSink

ACCESS_OLD = [
    '203.0.113.50 - - [21/Jan/2017:10:00:00 +0900] "GET /index.php?sort=id HTTP/1.1" 200 900 "-" "Mozilla/5.0"',
    '203.0.113.50 - - [21/Jan/2017:10:00:05 +0900] "GET /favicon.ico HTTP/1.1" 404 209 "-" "Mozilla/5.0"',
    '203.0.113.51 - - [21/Jan/2017:10:01:00 +0900] "GET /index.php HTTP/1.1" 200 900 "-" "Mozilla/5.0"',
    '203.0.113.52 - - [21/Jan/2017:10:02:00 +0900] "GET /index.php HTTP/1.1" 200 900 "-" "Mozilla/5.0"',
]
WEBSHELL = ('79.172.212.37 - - [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" 200 54 "-" '
            '"Wget/1.17.1"')
VSFTPD = [
    'Fri Oct 20 10:20:28 2017 [pid 3001] CONNECT: Client "79.172.212.37"',
    'Fri Oct 20 10:20:30 2017 [pid 3000] [kyushoferry] OK LOGIN: Client "79.172.212.37"',
    'Fri Oct 20 10:20:44 2017 [pid 3002] [kyushoferry] OK UPLOAD: Client "79.172.212.37", "/htdocs/wp-contacts.php", '
    '1234 bytes, 98.00Kbyte/sec',
]
CRON = [
    "Dec  2 07:23:06 web01 crontab[28410]: (nobody) REPLACE (nobody)",
    "Dec  2 07:24:01 web01 CROND[28500]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)",
]


def _config(tmp: Path, globs, **extra) -> object:
    data = {"hosts": {"web01": {"timezone": "Asia/Tokyo"}, "db01": {"timezone": "UTC"}},
            "inventory": {"web": ["/index.php", "/search.php"]},
            "detect": {"maintenance_addresses": ["153.156.83.40"]},
            "watch": {"paths": [{"glob": str(g), "host": h} for g, h in globs], "interval": 1, **extra}}
    return parse_config(data, str(tmp / "case.yaml"))


def _append(path: Path, lines) -> None:
    with open(path, "a", encoding="utf-8") as fh:  # as a daemon does: appended, never rewritten
        fh.write("".join(line + "\n" for line in lines))


def _events(case: Path) -> list[tuple]:
    with CaseStore(case, read_only=True) as store:
        return store.query('SELECT raw FROM events ORDER BY raw')


def _round(case, config, **kw):
    out = io.StringIO()
    result = run_round(case, config, AlertSink(out), **kw)
    alerts = [json.loads(line) for line in out.getvalue().splitlines()]
    return result, alerts


@pytest.fixture()
def logs(tmp_path):
    d = tmp_path / "live"
    d.mkdir()
    return d


def test_appended_lines_are_read_once(tmp_path, logs):
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:2])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    r1, _ = _round(case, config)
    assert r1.events == 2
    _append(access, ACCESS_OLD[2:])
    r2, _ = _round(case, config)
    assert r2.events == 2
    r3, _ = _round(case, config)
    assert r3.events == 0 and r3.pieces == 0
    raws = [r[0] for r in _events(case)]
    assert sorted(raws) == sorted(ACCESS_OLD)
    with CaseStore(case, read_only=True) as store:
        paths = [r[0] for r in store.query("SELECT path FROM sources ORDER BY path")]
        assert all("@" in p for p in paths) and len(paths) == 2
        assert store.query("SELECT \"offset\", size FROM watch_state")[0] == (access.stat().st_size,) * 2


def test_partial_last_line_waits(tmp_path, logs):
    access = logs / "access_log"
    line = ACCESS_OLD[1]
    access.write_text(ACCESS_OLD[0] + "\n" + line[:30])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    assert _round(case, config)[0].events == 1
    with open(access, "a") as fh:
        fh.write(line[30:] + "\n")
    assert _round(case, config)[0].events == 1
    assert sorted(r[0] for r in _events(case)) == sorted(ACCESS_OLD[:2])


def test_rotation_finishes_the_old_file_then_reads_the_new(tmp_path, logs):
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:1])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    _round(case, config)
    access.rename(logs / "access_log.1")
    _append(logs / "access_log.1", ACCESS_OLD[1:2])  # written before the daemon reopened its log
    _append(access, ACCESS_OLD[2:])
    r, _ = _round(case, config)
    assert r.events == 3
    assert sorted(r[0] for r in _events(case)) == sorted(ACCESS_OLD)
    assert _round(case, config)[0].events == 0


def test_truncation_alerts_and_reads_from_the_start(tmp_path, logs):
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:3])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    _round(case, config)
    access.write_text(ACCESS_OLD[3] + "\n")  # truncated in place (copytruncate, or someone hiding tracks)
    r, alerts = _round(case, config)
    assert r.events == 1
    assert [a["rule"] for a in alerts if a["rule"].startswith("watch.")] == ["watch.log_truncated"]
    assert "log truncated" in alerts[0]["title"]
    assert sorted(r[0] for r in _events(case)) == sorted(ACCESS_OLD)


@pytest.mark.parametrize("copy_name", ["access_log.1", "access_log-20170122"])
def test_copytruncate_rotation_reads_the_lines_from_the_copy(tmp_path, logs, copy_name):
    """logrotate's copytruncate: the log copied, then emptied; the lines written between the last
    round and the copy are read from the copy, once, and the rotation raises no truncation alert."""
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:1])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    _round(case, config)
    _append(access, ACCESS_OLD[1:3])  # after the round, before the rotation
    (logs / copy_name).write_bytes(access.read_bytes())
    access.write_text("")
    _append(access, ACCESS_OLD[3:])
    r, alerts = _round(case, config)
    assert r.events == 3 and [a for a in alerts if a["rule"].startswith("watch.")] == []
    assert sorted(r[0] for r in _events(case)) == sorted(ACCESS_OLD)
    assert _round(case, config)[0].events == 0


def test_a_truncation_whose_copy_differs_is_still_alerted(tmp_path, logs):
    """A file beside the log that does not begin as the log did is no copy of it."""
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:2])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    _round(case, config)
    (logs / "access_log.1").write_text(ACCESS_OLD[2] + "\n" + ACCESS_OLD[0] + "\n" + ACCESS_OLD[1] + "\n")
    access.write_text(ACCESS_OLD[3] + "\n")
    _, alerts = _round(case, config)
    assert [a["rule"] for a in alerts if a["rule"].startswith("watch.")] == ["watch.log_truncated"]


def test_state_survives_a_restart(tmp_path, logs):
    """Each --once run is a new process: the second reads only what was appended after the first."""
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:2] + [WEBSHELL])
    cfg = tmp_path / "case.yaml"
    cfg.write_text(yaml.safe_dump({"hosts": {"web01": {"timezone": "Asia/Tokyo"}},
                                   "inventory": {"web": ["/index.php"]},
                                   "watch": {"paths": [{"glob": str(access), "host": "web01"}]}}))
    case = tmp_path / "case"
    cmd = [sys.executable, "-m", "logsalvage", "watch", "--case", str(case), "--config", str(cfg), "--once"]
    p1 = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p1.returncode == 0, p1.stderr
    first = [json.loads(line) for line in p1.stdout.splitlines()]  # only JSON lines on stdout
    assert first and all({"time", "host", "rule", "severity", "title", "finding_id"} <= set(a) for a in first)
    _append(access, ACCESS_OLD[2:])
    p2 = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p2.returncode == 0, p2.stderr
    second = [json.loads(line) for line in p2.stdout.splitlines()]
    assert not {a["finding_id"] for a in first} & {a["finding_id"] for a in second}  # never alerted twice
    assert len(_events(case)) == 5


def test_alerts_are_not_repeated_across_rounds(tmp_path, logs):
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:1] + [WEBSHELL])
    config = _config(tmp_path, [(access, "web01")])
    case = tmp_path / "case"
    _, first = _round(case, config)
    assert any(a["rule"] == "web.script_outside_inventory" or "webshell" in a["rule"] for a in first), first
    _append(access, ACCESS_OLD[1:2])
    _, second = _round(case, config)
    assert not {a["finding_id"] for a in first} & {a["finding_id"] for a in second}
    _, third = _round(case, config, detect_always=True)
    assert third == []


def test_heartbeat_stopped_alert(tmp_path, logs):
    """A 30 s health check in the database server's syslog that stops: silent for more than k periods."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    last = now - timedelta(minutes=10)
    syslog = logs / "messages"
    beats = [last - timedelta(seconds=30 * i) for i in range(150)][::-1]
    _append(syslog, [f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 healthcheck[{100 + i}]: pg ok"
                     for i, t in enumerate(beats)])
    os.utime(syslog, (last.timestamp(), last.timestamp()))
    config = _config(tmp_path, [(syslog, "db01")], heartbeat_periods=3)
    case = tmp_path / "case"
    r, alerts = _round(case, config, now=last + timedelta(seconds=60))  # 2 periods: not yet
    assert r.events == 150
    assert not [a for a in alerts if a["rule"] == "watch.heartbeat_stopped"]
    _, alerts = _round(case, config, now=now)
    stopped = [a for a in alerts if a["rule"] == "watch.heartbeat_stopped"]
    assert len(stopped) == 1 and stopped[0]["host"] == "db01"
    assert stopped[0]["title"].startswith(f"heartbeat stopped on db01 since {last.isoformat()}")
    _, again = _round(case, config, now=now + timedelta(minutes=1))
    assert not [a for a in again if a["rule"] == "watch.heartbeat_stopped"]  # one alert per silence


class _Hook(BaseHTTPRequestHandler):
    received: list = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhook_post_is_received_and_failures_are_not_fatal():
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        out = io.StringIO()
        alert = Alert("2017-07-14T23:58:21+00:00", "web01", "web.webshell", "critical", "web shell", "F-1")
        AlertSink(out, webhook=url).emit(alert)
        assert _Hook.received == [("application/json", alert.as_dict())]
    finally:
        server.shutdown()
        server.server_close()
    # nothing listens there any more: logged, the alert is still on stdout
    out = io.StringIO()
    AlertSink(out, webhook=url, timeout=2).emit(alert)
    assert json.loads(out.getvalue()) == alert.as_dict()


def test_syslog_alerts_reach_a_syslog_socket(tmp_path):
    import socket

    path = str(tmp_path / "log.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        sink = AlertSink(io.StringIO(), syslog=True, facility="local3", syslog_address=path)
        sink.emit(Alert("t", "web01", "cron.crontab_replace", "high", "crontab replaced by nobody", "F-2"))
        sink.close()
        sock.settimeout(5)
        msg = sock.recv(65536).decode()
    finally:
        sock.close()
    assert msg.startswith(f"<{19 * 8 + 3}>logsalvage-watch: ")  # local3, error
    assert '"finding_id": "F-2"' in msg


def test_watch_section_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="watch: unknown key"):
        parse_config({"watch": {"paths": ["/x"], "intervall": 3}}, "case.yaml")
    with pytest.raises(ConfigError, match="webhook"):
        parse_config({"watch": {"paths": ["/x"], "webhook": "ftp://x"}}, "case.yaml")
    assert parse_config({"watch": {"paths": ["/var/log/*.log"]}}, "c").watch.paths == ({"glob": "/var/log/*.log"},)


def test_end_to_end_incident_patterns_alert_within_one_round(tmp_path, logs):
    """Logs written as Apache, vsftpd and cronie write them: each pattern of the incident alerts in
    the round that reads it."""
    access, ftp, cron = logs / "access_log", logs / "vsftpd.log", logs / "cron"
    _append(access, ACCESS_OLD)
    _append(ftp, ['Sat Oct 21 09:00:02 2017 [pid 3100] [kyushoferry] OK LOGIN: Client "153.156.83.40"'])
    _append(cron, ["Dec  1 07:30:01 web01 CROND[28502]: (root) CMD (/usr/lib64/sa/sa1 1 1)"])
    config = _config(tmp_path, [(access, "web01"), (ftp, "web01"), (cron, "web01")])
    case = tmp_path / "case"
    _, quiet = _round(case, config)
    assert not [a for a in quiet if a["severity"] in ("high", "critical")], quiet
    _append(access, [WEBSHELL])
    _append(ftp, VSFTPD)
    _append(cron, CRON)
    _, alerts = _round(case, config)
    rules = {a["rule"] for a in alerts}
    # a script answering 200 outside the inventory; an FTP login and upload from a new network; a
    # crontab replaced by a service account, and its job run
    assert {"web.webshell_execution", "ftp.login", "ftp.upload", "cron.crontab_change",
            "milestone.first_webshell_execution", "milestone.crontab_replace"} <= rules, rules
    by_rule = {a["rule"]: a for a in alerts}
    assert by_rule["web.webshell_execution"]["severity"] == "critical"
    assert "/wp-contacts.php" in by_rule["web.webshell_execution"]["title"]
    assert "79.172.212.37" in by_rule["ftp.upload"]["title"]
    assert "nobody" in by_rule["cron.crontab_change"]["title"]
    assert all(a["host"] == "web01" for a in alerts)


def _sqlmap(t: datetime, i: int, payload: str) -> str:
    from urllib.parse import quote

    return (f'198.51.100.9 - - [{t + timedelta(seconds=i):%d/%b/%Y:%H:%M:%S +0000}] "GET /safe.php?id='
            f'{quote(payload, safe="")} HTTP/1.1" 200 610 "-" "sqlmap/1.8#stable (https://sqlmap.org)"')


def test_end_to_end_sql_injection_scan_and_copy_to(tmp_path, logs):
    """An sqlmap scan in the web server's access log; a COPY … TO stdout of the customer table by
    another client in the database server's syslog (PostgreSQL through syslog)."""
    access, messages = logs / "access_log", logs / "messages"
    _append(access, ACCESS_OLD)
    t = datetime(2017, 12, 1, 4, 0, 0, tzinfo=timezone.utc)
    _append(messages, [f"Dec  1 04:00:0{i} db01 postgres[{5000 + i}]: [3-1] DATABASE=ferry,USER=webapp,"
                       f"CLIENT=192.168.10.11(4000{i}),LOG:  duration: 3.000 ms  statement: SELECT name FROM "
                       f"voyages WHERE voyage_id = {i}" for i in range(3)])
    data = {"hosts": {"web01": {"timezone": "UTC"}, "db01": {"timezone": "UTC"}},
            "acquired": "2017-12-02T00:00:00+00:00",
            "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
            "application": {"db_clients": ["192.168.10.11"], "db_users": ["webapp"],
                            "customer_tables": ["customers"]},
            "inventory": {"web": ["/index.php", "/safe.php"]},
            "watch": {"paths": [{"glob": str(access), "host": "web01"}, {"glob": str(messages), "host": "db01"}]}}
    config = parse_config(data, "case.yaml")
    case = tmp_path / "case"
    _round(case, config)
    payloads = ["1)", "1'", "1 AND 5617=5617", "1 AND 5617=8310", "1 AND 3321=3321", "1 AND 3321=9107",
                "1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))", "1 UNION ALL SELECT NULL-- Sojx",
                "1 UNION ALL SELECT NULL,NULL-- Sojx", "1 ORDER BY 1-- Wuxm"]
    _append(access, [_sqlmap(t, i, p) for i, p in enumerate(payloads)])
    _append(messages, ["Dec  1 05:00:00 db01 postgres[6001]: [3-1] DATABASE=ferry,USER=postgres,"
                       "CLIENT=203.0.113.50(50001),LOG:  duration: 8000.000 ms  statement: COPY public.customers "
                       "(customer_id, name, email) TO stdout;"])
    _, alerts = _round(case, config)
    rules = {a["rule"] for a in alerts}
    assert any("sqli" in r for r in rules), rules
    copy = [a for a in alerts if a["rule"] == "db.copy_to"]
    assert copy and copy[0]["host"] == "db01" and copy[0]["severity"] == "high", rules


@pytest.mark.parametrize("sig, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_loop_runs_rounds_until_a_signal(tmp_path, logs, sig, code):
    import signal

    access = logs / "access_log"
    _append(access, ACCESS_OLD[:1])
    cfg = tmp_path / "case.yaml"
    cfg.write_text(yaml.safe_dump({"watch": {"paths": [{"glob": str(access), "host": "web01"}]}}))
    case = tmp_path / "case"
    proc = subprocess.Popen([sys.executable, "-m", "logsalvage", "watch", "--case", str(case), "--config", str(cfg),
                             "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = []
        for line in proc.stderr:  # what the watch does goes to stderr
            seen.append(line)
            if "round 2:" in line:
                break
        assert any("round 1:" in s for s in seen), seen
        proc.send_signal(getattr(signal, sig))
        assert proc.wait(timeout=60) == code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(_events(case)) == 1


def test_a_config_without_watch_paths_is_a_usage_error(tmp_path):
    cfg = tmp_path / "case.yaml"
    cfg.write_text("hosts: {}\n")
    p = subprocess.run([sys.executable, "-m", "logsalvage", "watch", "--case", str(tmp_path / "case"), "--config",
                        str(cfg), "--once"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "watch.paths" in p.stderr and p.stdout == ""


def test_the_case_itself_is_never_watched(tmp_path, logs):
    access = logs / "access_log"
    _append(access, ACCESS_OLD[:2])
    config = _config(tmp_path, [(logs / "**", "web01")])
    case = logs / "case"  # kept inside the watched tree: its database and scratch files are not logs to read
    r, _ = _round(case, config)
    assert r.files == 1 and r.events == 2
    r, _ = _round(case, config)
    assert r.files == 1 and r.events == 0
