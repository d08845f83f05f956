"""Cron detectors: crontab changes by unexpected users, and jobs run from writable or hidden
places (``/tmp``, ``/dev/shm``, dot-directories) or as service accounts."""

from __future__ import annotations

import re

from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone

ADMINS = frozenset({"root"})
SERVICE_ACCOUNTS = frozenset({"nobody", "apache", "www-data", "httpd", "nginx", "daemon", "ftp", "postgres"})
SUSPICIOUS_PATH = re.compile(r"(^|[\s;|&])(/tmp/|/var/tmp/|/dev/shm/|\S*/\.[^/\s]+)")


def detect(ctx: Context) -> list:
    out: list = []
    for (host,) in ctx.query("SELECT DISTINCT host FROM events WHERE event_type LIKE 'cron%' ORDER BY 1"):
        out += _crontab_changes(ctx, host)
        out += _suspicious_jobs(ctx, host)
    return out


def _crontab_changes(ctx: Context, host: str) -> list:
    rows = ctx.query("""
        SELECT event_id, ts_utc, user_name, target_user, action FROM events
        WHERE host = ? AND event_type = 'cron.crontab' AND action IS NOT NULL ORDER BY ts_utc, event_id""", [host])
    out: list = []
    unexpected = [r for r in rows if r[2] not in ADMINS]
    for r in rows:
        action = r[4].lower().replace(" ", "_")
        kind = f"crontab_{action}" + ("_by_admin" if r[2] in ADMINS else "")
        out.append(Milestone(kind, r[1], host, {"user": r[2], "target": r[3]}, (r[0],)))
    by_user: dict[str, list] = {}
    for r in unexpected:
        by_user.setdefault(r[2], []).append(r)
    for user, hits in sorted(by_user.items()):
        actions = sorted({r[4] for r in hits})
        out.append(Finding("cron.crontab_change", f"crontab {'/'.join(actions)} by {user}",
                           "high" if user in SERVICE_ACCOUNTS else "medium", host, hits[0][1], hits[-1][1],
                           len(hits), (), tuple(r[0] for r in hits),
                           {"key": user, "user": user, "actions": actions,
                            "targets": sorted({r[3] for r in hits if r[3]})}))
    return out


def _suspicious_jobs(ctx: Context, host: str) -> list:
    rows = ctx.query("""
        SELECT command, user_name, count(*), min(ts_utc), max(ts_utc), list(event_id ORDER BY ts_utc, event_id)
        FROM events WHERE host = ? AND event_type = 'cron.cmd' AND command IS NOT NULL
        GROUP BY command, user_name ORDER BY min(ts_utc), command, user_name""", [host])
    out: list = []
    for command, user, n, first, last, ids in rows:
        first_id = ids[0]  # the first run: copies of it (live file, backup) share its time
        writable = SUSPICIOUS_PATH.search(command)
        service = user in SERVICE_ACCOUNTS
        if not (writable or service):
            continue
        why = [w for w, on in (("runs from a writable or hidden place", writable),
                               (f"runs as the service account {user}", service)) if on]
        out.append(Finding("cron.suspicious_job", f"cron job {command!r}: " + "; ".join(why),
                           "high" if writable else "medium", host, first, last, n, (), tuple(ids),
                           {"key": f"{user}:{command}", "command": command, "user": user}))
        out.append(Milestone("cron_first_run", first, host, {"user": user, "command": command}, (first_id,)))
    return out
