"""web01's /var/log/cron (cronie + anacron on RHEL 7), weekly rotation.

web01 kept 8 weekly cron files (not the default 4), so the crontab LIST (Nov 12/13) and
DELETE (Nov 28) survive alongside the REPLACE of Dec 12 and Dec 25. logrotate itself runs from
cron.daily, so on rotation days ``starting logrotate`` ends the old file and
``finished logrotate`` is in the new one.
"""

from __future__ import annotations

import random
from typing import Iterator

from .attack import AttackPlan
from .logtext import LogText
from .stamps import SyslogStamper, local, local_midnight, ymd
from .timeline import CRON_KEPT_ROTATIONS, REBOOT, SERVER_STOP, Plan

HOST = "web01"


class _Pids:
    def __init__(self, rng: random.Random, start: int):
        self.rng = rng
        self.pid = start

    def __call__(self, step: int = 1) -> int:
        self.pid += step + self.rng.randint(0, 3)
        if self.pid >= 32768:
            self.pid = 300 + self.pid - 32768
        return self.pid


def _events(plan: Plan, attack: AttackPlan, begin: int) -> list[tuple[int, int, str]]:
    """(time, order, message after the host) from ``begin`` to the server's stop."""
    rng = random.Random(f"{plan.seed}:cron")
    pids = _Pids(rng, 21000)
    out: list[tuple[int, int, str]] = []
    order = [0]

    def add(t, msg):
        out.append((t, order[0], msg))
        order[0] += 1

    crond = 712
    rotations = set(plan.web_rotations)
    changes = sorted(attack.cron, key=lambda c: c.t)
    nobody_cmd = None
    ci = 0
    t = begin - begin % 60 + 60
    down = False
    reload_pending = False
    while t < SERVER_STOP:
        minute = t + 1          # crond runs jobs at second :01
        # crontab changes and the administrator's commands happen between minutes
        while ci < len(changes) and changes[ci].t < minute:
            c = changes[ci]
            add(c.t, f"crontab[{pids(40)}]: ({c.user}) {c.action} ({c.target})")
            if c.action == "REPLACE":
                nobody_cmd = c.command
                reload_pending = True
            elif c.action == "DELETE":
                nobody_cmd = None
            ci += 1
        if REBOOT[0] <= minute <= REBOOT[1]:
            if not down:
                down = True
            t += 60
            continue
        if down and minute > REBOOT[1]:
            down = False
            crond = 698
            up = REBOOT[1] - 20
            pids.pid = 690
            add(up, f"crond[{crond}]: (CRON) INFO (RANDOM_DELAY will be scaled with factor 61% if used.)")
            add(up, f"crond[{crond}]: (CRON) INFO (running with inotify support)")
            add(up, f"crond[{crond}]: (CRON) INFO (@reboot jobs will be run at computer's startup.)")
        lt = local(minute)
        if reload_pending:
            add(minute, f"crond[{crond}]: (nobody) RELOAD (/var/spool/cron/nobody)")
            reload_pending = False
        if nobody_cmd is not None:
            add(minute, f"CROND[{pids(4)}]: (nobody) CMD ({nobody_cmd})")
        if lt.tm_min % 10 == 0:
            add(minute, f"CROND[{pids(3)}]: (root) CMD (/usr/lib64/sa/sa1 1 1)")
        if lt.tm_hour == 23 and lt.tm_min == 53:
            add(minute, f"CROND[{pids(3)}]: (root) CMD (/usr/lib64/sa/sa2 -A)")
        if lt.tm_min == 1:
            p = pids(3)
            add(minute, f"CROND[{p}]: (root) CMD (run-parts /etc/cron.hourly)")
            rp = pids(1)
            add(minute, f"run-parts(/etc/cron.hourly)[{rp}]: starting 0anacron")
            if lt.tm_hour == 3:
                day = local_midnight(minute)
                rot = next((r for r in rotations if local_midnight(r) == day), None)
                start_job = (rot - 4) if rot else minute + 60 * rng.randint(6, 44) + rng.randint(0, 50)
                ana = pids(2)
                date = f"{lt.tm_year:04d}-{lt.tm_mon:02d}-{lt.tm_mday:02d}"
                add(minute, f"anacron[{ana}]: Anacron started on {date}")
                add(minute, f"anacron[{ana}]: Will run job `cron.daily' in {max(1, (start_job - minute) // 60)} min.")
                add(minute, f"anacron[{ana}]: Jobs will be executed sequentially")
                add(start_job, f"anacron[{ana}]: Job `cron.daily' started")
                tt = start_job
                for job in ("logrotate", "man-db.cron"):
                    rj = pids(2)
                    add(tt, f"run-parts(/etc/cron.daily)[{rj}]: starting {job}")
                    tt = (rot + 1) if (rot and job == "logrotate") else tt + rng.randint(0, 2)
                    add(tt, f"run-parts(/etc/cron.daily)[{pids(1)}]: finished {job}")
                    tt += rng.randint(0, 3)
                add(tt, f"anacron[{ana}]: Job `cron.daily' terminated")
                add(tt, f"anacron[{ana}]: Normal exit (1 job run)")
            add(minute, f"run-parts(/etc/cron.hourly)[{pids(2)}]: finished 0anacron")
        t += 60
    return out


def files(plan: Plan, attack: AttackPlan) -> Iterator[tuple[str, int | None, LogText]]:
    """(name, rotation time or None, text) for the kept cron files, oldest first."""
    rots = list(plan.web_rotations)
    kept = rots[-CRON_KEPT_ROTATIONS:]
    begin = rots[-CRON_KEPT_ROTATIONS - 1]
    stamp = SyslogStamper()
    events = sorted(e for e in _events(plan, attack, begin) if begin < e[0] < SERVER_STOP)
    bounds = list(zip([begin] + kept, kept + [None]))
    i = 0
    for lo, hi in bounds:
        text = LogText("syslog")
        while i < len(events) and (hi is None or events[i][0] <= hi):
            t, _, msg = events[i]
            text.add(f"{stamp(t)} {HOST} {msg}", t)
            i += 1
        yield (f"cron-{ymd(hi)}" if hi is not None else "cron"), hi, text


def first_nobody_cmd(plan: Plan, attack: AttackPlan) -> int:
    """Time of the first every-minute run of the planted crontab (a milestone)."""
    replace = min(c.t for c in attack.cron if c.action == "REPLACE")
    return replace - replace % 60 + 61

