"""A small case whose every log field carries markup, script, template syntax and control
characters: web01's access, error, FTP and cron logs and db01's PostgreSQL records, with the case
config that makes detection find them. The report tests build it once (conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

from logsalvage.config import parse_config
from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.report import model as report_model
from logsalvage.report.html import write_report
from logsalvage.store import CaseStore

SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
CLOSE = "</script><script>"
JS_URL = "javascript:alert(1)"
SVG = "<svg onload=alert(1)>"
TEMPLATE = "{{7*7}}"
ESC = "\x1b[31m"
LS = "\u2028"
RLO = "\u202e"
PAYLOADS = (SCRIPT, IMG, CLOSE, JS_URL, SVG, TEMPLATE)

# Apache escapes '"' and '\' in the request line, referrer and user agent (ap_escape_logitem); the
# payloads without spaces go where Apache's fields have none (user, request target).
_UA = (SCRIPT + " " + IMG + " " + SVG + " " + TEMPLATE + " " + ESC + LS + RLO).replace('"', '\\"')
_REF = (JS_URL + "/" + CLOSE + TEMPLATE).replace('"', '\\"')
ACCESS = "".join([
    f'198.51.100.7 - - [20/Jan/2017:05:39:0{i} +0900] "GET /phpMyAdmin/{p} HTTP/1.1" 404 209 "{_REF}" "{_UA}"\n'
    for i, p in enumerate(("setup.php", "<script>alert(1)</script>", "<svg/onload=alert(1)>"))
]) + "".join([
    '203.0.113.50 - - [21/Jan/2017:10:00:00 +0900] "GET /index.php?sort=id HTTP/1.1" 200 900 "-" "Mozilla/5.0"\n',
    (f'79.172.212.37 - {SCRIPT} [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id;{SCRIPT} HTTP/1.1" 200 54 '
     f'"{_REF}" "{_UA}"\n'),
    (f'79.172.212.37 - - [15/Jul/2017:08:58:40 +0900] "GET /wp-contacts.php?c=uname%20-a&x={SVG.replace(" ", "/")} '
     f'HTTP/1.1" 200 120 "{_REF}" "Wget/1.17.1 {TEMPLATE}"\n'),
    (f'46.166.148.58 - - [31/Aug/2017:08:57:58 +0900] "GET /wp-contacts.php?c=df%20-h&u={JS_URL} HTTP/1.1" 200 300 '
     f'"{JS_URL}" "-"\n'),
    # not a request at all: stored as an issue, and its excerpt is shown
    f'{SCRIPT} {IMG} {TEMPLATE}{ESC}{LS}\n',
])
VSFTPD = (
    'Fri Oct 20 10:20:28 2017 [pid 3001] CONNECT: Client "79.172.212.37"\n'
    f'Fri Oct 20 10:20:30 2017 [pid 3000] [{SCRIPT}] OK LOGIN: Client "79.172.212.37"\n'
    f'Fri Oct 20 10:20:44 2017 [pid 3002] [{SCRIPT}] OK UPLOAD: Client "79.172.212.37", '
    f'"/htdocs/wp-contacts.php{SVG}{TEMPLATE}", 1234 bytes, 98.00Kbyte/sec\n'
    'Fri Oct 20 10:20:50 2017 [pid 3002] [x] OK UPLOAD: Client "79.172.212.37", "/htdocs/wp-contacts.php", '
    '1234 bytes, 98.00Kbyte/sec\n'
) + "".join(f'Thu Feb  2 01:48:{30 + i:02d} 2017 [pid {4000 + i}] [{IMG}] FAIL LOGIN: Client "91.200.49.29"\n'
            for i in range(6))
CRON = "".join(f"Dec 12 {h:02d}:{m:02d}:01 web01 CROND[{20000 + h * 60 + m}]: (root) CMD (/usr/lib64/sa/sa1 1 1)\n"
               for h in range(6, 9) for m in range(0, 60, 10)) + (
    f"Dec 12 07:23:06 web01 crontab[28410]: (nobody) REPLACE (nobody)\n"
    f"Dec 12 07:24:01 web01 CROND[28500]: (nobody) CMD (/tmp/upd {SCRIPT} {JS_URL} {TEMPLATE}{ESC} >/dev/null 2>&1)\n"
    f"Dec 12 07:25:01 web01 CROND[28501]: (nobody) CMD (/tmp/upd {SCRIPT} {JS_URL} {TEMPLATE}{ESC} >/dev/null 2>&1)\n"
)
ERRORS = "".join(
    f"[Mon Dec 25 15:2{i}:15 2017] [error] [client 61.89.205.218] File does not exist: /var/www/html/"
    f"{SCRIPT}{SVG}{TEMPLATE}\n" for i in range(6)) + (
    f"--2017-12-25 15:28:56--  http://dl.mirror-cdn.example/{SCRIPT}{TEMPLATE}\n"
    "Resolving dl.mirror-cdn.example... 203.0.113.5\n"
    "Connecting to dl.mirror-cdn.example|203.0.113.5|:80... connected.\n"
    "HTTP request sent, awaiting response... 200 OK\n"
    f"Saving to: `{IMG}'\n"
    f"2017-12-25 15:28:58 (1.2 MB/s) - `{IMG}' saved [1841651/1841651]\n"
    "[Fri Jan 05 19:50:00 2018] [notice] caught SIGTERM, shutting down\n"
)


def _pg(minute: int, pid: int, body: str) -> str:
    return f"Dec 12 07:{minute:02d}:00 db01 postgres[{pid}]: [3-1] {body}\n"


MESSAGES = "".join(
    f"Dec 12 {h:02d}:{m:02d}:{s:02d} db01 postgres[{5000 + h * 120 + m * 2 + s // 30}]: [3-1] "
    f"DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1({40000 + m}),LOG:  incomplete startup packet\n"
    for h in range(6, 9) for m in range(60) for s in (0, 30)
) + "".join([
    _pg(30, 7001, f'DATABASE=ferry,USER={SCRIPT},CLIENT=203.0.113.9(50001),ERROR:  relation "{SVG}" does not exist '
                  "at character 15"),
    _pg(31, 7002, f"DATABASE=ferry,USER=postgres,CLIENT=203.0.113.9(50002),LOG:  duration: 65000.1 ms  statement: "
                  f"COPY customers TO stdout -- {IMG} {TEMPLATE} {JS_URL}{ESC}{LS}"),
])

CONFIG = parse_config({
    "acquired": "2018-01-06T15:00:00+09:00",
    "hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"]},
              "db01": {"timezone": "Asia/Tokyo", "paths": ["db01/**"]}},
    "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
    "inventory": {"web": ["/index.php", "/search.php"]},
    "application": {"db_clients": ["192.168.10.11"], "db_users": ["webapp"], "customer_tables": ["customers"]},
}, "test")


def build(root: Path):
    """(case dir, findings, model, html) of the hostile case built under ``root``."""
    files = {"web01/var/log/httpd/access_log": ACCESS, "web01/var/log/httpd/error_log": ERRORS,
             "web01/var/log/vsftpd.log": VSFTPD, "web01/var/log/cron": CRON, "db01/var/log/messages": MESSAGES}
    for rel, text in files.items():
        path = root / "ev" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    case = root / "case"
    ingest([root / "ev"], case, config=CONFIG)
    with CaseStore(case) as store:
        findings = json.loads(json.dumps(run_detection(store, CONFIG), default=str))
        model = report_model.build(store, case, findings, figures_dir=case / "figures")
    path = write_report(model, case)
    return case, findings, model, path.read_text(encoding="utf-8")


