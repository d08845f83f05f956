"""web01's /var/log/secure since the last rotation (2017-12-31): the maintenance admin's ssh
sessions (su, sudo), password guessing from the internet, and the investigation of
2018-01-05 (top, kill, reboot, crontab removal, shutdown)."""

from __future__ import annotations

import random

from . import actors
from .logtext import LogText
from .stamps import DAY, SyslogStamper, local
from .timeline import CRONTAB_REMOVED, REBOOT, SERVER_STOP, SITE_SLOW, Plan

HOST = "web01"


def render(plan: Plan) -> LogText:
    rng = random.Random(f"{plan.seed}:secure")
    begin = plan.web_rotations[-1]
    ev: list[tuple[int, int, str]] = []
    n = [0]
    pid = [4100]

    def add(t, msg):
        ev.append((t, n[0], msg))
        n[0] += 1

    def newpid():
        pid[0] += rng.randint(3, 90)
        return pid[0]

    def session(t, commands, su=False, close=True):
        p = newpid()
        port = rng.randint(50000, 60999)
        add(t, f"sshd[{p}]: Accepted password for admin from {actors.SSH_ADMIN_HOST} port {port} ssh2")
        add(t, f"sshd[{p}]: pam_unix(sshd:session): session opened for user admin by (uid=0)")
        for dt, cmd in commands:
            if cmd == "su":
                add(t + dt, "su: pam_unix(su-l:session): session opened for user root by admin(uid=1000)")
            else:
                add(t + dt, f"sudo:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND={cmd}")
        if close:
            end = t + (commands[-1][0] if commands else 0) + rng.randint(30, 400)
            add(end, f"sshd[{p}]: Received disconnect from {actors.SSH_ADMIN_HOST}: 11: disconnected by user")
            add(end, f"sshd[{p}]: pam_unix(sshd:session): session closed for user admin")

    # routine maintenance on working days
    day = begin - begin % DAY + DAY
    while day < SITE_SLOW - DAY:
        if local(day).tm_wday < 5 and rng.random() < 0.7:
            t = day + rng.randint(0, 8 * 3600)       # 09:00-17:00 JST
            session(t, [(rng.randint(20, 200), rng.choice(("/bin/ls /var/log/httpd", "/bin/df -h",
                                                          "/usr/bin/yum check-update", "su")))])
        day += DAY
    # password guessing
    for _ in range(rng.randint(8, 14)):
        t = begin + rng.randrange(SITE_SLOW - begin)
        ip = actors.scanner(rng)
        for _ in range(rng.randint(2, 9)):
            p = newpid()
            port = rng.randint(30000, 65000)
            user = rng.choice(("root", "root", "test", "oracle", "admin", "ubuntu", "postgres"))
            if user == "root" or user == "admin":
                add(t, f"sshd[{p}]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
                       f"tty=ssh ruser= rhost={ip}  user={user}")
                add(t + 2, f"sshd[{p}]: Failed password for {user} from {ip} port {port} ssh2")
            else:
                add(t, f"sshd[{p}]: Invalid user {user} from {ip} port {port}")
                add(t, f"sshd[{p}]: input_userauth_request: invalid user {user} [preauth]")
                add(t + 2, f"sshd[{p}]: Failed password for invalid user {user} from {ip} port {port} ssh2")
            add(t + 3, f"sshd[{p}]: Connection closed by {ip} port {port} [preauth]")
            t += rng.randint(4, 30)
    # 2018-01-05: the site is slow; process p at 100 % CPU; kill, reboot, crontab, stop
    t = SITE_SLOW + 4 * 60 + 12
    session(t, [(35, "/bin/top"), (290, "/bin/kill -9 2914"), (410, "/bin/top"),
                (REBOOT[0] - t - 2, "/sbin/reboot")], close=False)
    add(REBOOT[1] - 5, "sshd[1054]: Server listening on 0.0.0.0 port 22.")
    add(REBOOT[1] - 5, "sshd[1054]: Server listening on :: port 22.")
    pid[0] = 2100
    t = REBOOT[1] + 190
    session(t, [(40, "/bin/top"), (300, "/bin/ps -ef"), (CRONTAB_REMOVED - 95 - t, "/bin/crontab -l -u nobody"),
                (CRONTAB_REMOVED - t, "/bin/crontab -r -u nobody"),
                (SERVER_STOP - 40 - t, "/sbin/shutdown -h now")], close=False)
    stamp = SyslogStamper()
    text = LogText("syslog")
    for t, _, msg in sorted(ev):
        if begin < t < SERVER_STOP:
            text.add(f"{stamp(t)} {HOST} {msg}", t)
    return text
