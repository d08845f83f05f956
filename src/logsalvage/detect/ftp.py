"""FTP detectors (vsftpd native log and xferlog): logins, guessing bursts, uploads, and the chain
*upload of P → first web request for P*.

A session is one client address's run of vsftpd records (CONNECT, LOGIN, transfers) with no
pause over ``SESSION_GAP``; vsftpd logs them from three processes, so the pid cannot group them.
Maintenance addresses (case config ``detect.maintenance_addresses``) are known good.
"""

from __future__ import annotations

from datetime import timedelta

from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone

SESSION_GAP = timedelta(minutes=30)
BURST_GAP = timedelta(minutes=10)
BURST_MIN = 5  # failed logins from one address within BURST_GAP of each other


def detect(ctx: Context) -> list:
    out: list = []
    native = set(ctx.hosts_with("vsftpd"))
    for host in sorted(native | set(ctx.hosts_with("xferlog"))):
        out += _logins(ctx, host)
        # transfers from the native log where there is one (vsftpd's dual logging writes both), else
        # from xferlog alone
        out += _uploads(ctx, host, "vsftpd" if host in native else "xferlog")
    return out


def _known(ctx: Context, address: str | None) -> bool:
    return address in ctx.settings.maintenance_addresses


def _logins(ctx: Context, host: str) -> list:
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_ip, user_name, outcome FROM events
        WHERE host = ? AND event_type = 'ftp.login' ORDER BY ts_utc, event_id""", [host])
    out: list = []
    failures: dict[str, list] = {}
    for r in rows:
        if r[4] == "failure":
            failures.setdefault(r[2], []).append(r)
    bursts = []
    for address, fails in failures.items():
        run = [fails[0]]
        for r in fails[1:]:
            if r[1] - run[-1][1] <= BURST_GAP:
                run.append(r)
                continue
            if len(run) >= BURST_MIN:
                bursts.append((address, run))
            run = [r]
        if len(run) >= BURST_MIN:
            bursts.append((address, run))
    for address, run in sorted(bursts, key=lambda b: b[1][0][1]):
        accounts = sorted({r[3] for r in run if r[3]})
        out.append(Finding("ftp.login_guessing", f"{len(run)} failed FTP logins from {address}", "medium", host,
                           run[0][1], run[-1][1], len(run), (address,), tuple(r[0] for r in run),
                           {"key": f"{address}@{run[0][1].isoformat()}", "accounts": accounts}))
    ok = [r for r in rows if r[4] == "success" and not _known(ctx, r[2])]
    by_pair: dict[tuple, list] = {}
    for r in ok:
        by_pair.setdefault((r[2], r[3]), []).append(r)
    for (address, account), hits in sorted(by_pair.items(), key=lambda kv: kv[1][0][1]):
        out.append(Finding("ftp.login", f"FTP login as {account} from {address}, not a known maintenance address",
                           "high", host, hits[0][1], hits[-1][1], len(hits), (address,), tuple(r[0] for r in hits),
                           {"key": f"{address}/{account}", "account": account}))
    return out


def _uploads(ctx: Context, host: str, format_id: str) -> list:
    # xferlog says whether a transfer completed ('c') or not ('i'), not 'OK'/'FAIL'
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_ip, user_name, event_type, file_path,
               CASE WHEN format_id = 'xferlog' THEN CASE json_extract_string(extra, '$.completion')
                                                      WHEN 'c' THEN 'success' WHEN 'i' THEN 'failure' END
                    ELSE outcome END AS outcome
        FROM events WHERE host = ? AND format_id = ? ORDER BY source_ip, ts_utc, event_id""", [host, format_id])
    sessions: list[list] = []
    for r in rows:
        if sessions and sessions[-1][-1][2] == r[2] and r[1] - sessions[-1][-1][1] <= SESSION_GAP:
            sessions[-1].append(r)
        else:
            sessions.append([r])
    out: list = []
    for session in sorted(sessions, key=lambda s: s[0][1]):
        address = session[0][2]
        uploads = [r for r in session if r[4] == "ftp.upload" and r[6] == "success"]
        if not uploads or _known(ctx, address):
            continue
        users = sorted({r[3] for r in session if r[3]})
        paths = [r[5] for r in uploads]
        out.append(Milestone("ftp_upload_session", session[0][1], host,
                             {"source": address, "user": users[0] if users else None, "uploads": paths},
                             tuple(r[0] for r in session)))
        out.append(Finding("ftp.upload", f"FTP upload of {', '.join(paths)} from {address}", "high", host,
                           uploads[0][1], uploads[-1][1], len(uploads), (address,), tuple(r[0] for r in uploads),
                           {"key": f"{address}@{uploads[0][1].isoformat()}", "paths": paths, "users": users}))
        for r in uploads:
            out += _first_request(ctx, host, r)
    return out


def _first_request(ctx: Context, host: str, upload) -> list:
    """The first web request for an uploaded file after its upload (by file name under any root)."""
    name = (upload[5] or "").rsplit("/", 1)[-1]
    if not name:
        return []
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_ip, url_path, http_status FROM events
        WHERE format_id = 'apache-access' AND ts_utc >= ? AND (url_path = ? OR ends_with(url_path, ?))
        ORDER BY ts_utc, event_id LIMIT 1""", [upload[1], "/" + name, "/" + name])
    if not rows:
        return []
    r = rows[0]
    delay = (r[1] - upload[1]).total_seconds()
    return [Finding("ftp.upload_then_request", f"{upload[5]} uploaded by FTP, then requested over HTTP",
                    "critical" if 200 <= (r[4] or 0) < 300 else "high", host, upload[1], r[1], 2,
                    tuple(sorted({a for a in (upload[2], r[2]) if a})), (upload[0], r[0]),
                    {"key": f"{upload[5]}@{upload[1].isoformat()}", "path": upload[5], "url": r[3],
                     "status": r[4], "delay_s": delay})]
