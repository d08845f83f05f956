"""Artifacts in the web server's error log: the output of programs an attacker ran through the
server (their stderr lands there). Downloads recovered from wget/curl output, bursts of
``find … Permission denied`` (a search for writable directories), other stray program output,
and the server's own stops and restarts."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone
from logsalvage.model import SYSTEM_LOG_SQL

FIND_BURST_GAP = timedelta(minutes=10)
RESTART_WITHIN = timedelta(minutes=30)


def detect(ctx: Context) -> list:
    out: list = []
    for host in ctx.hosts_with("apache-error"):
        out += _downloads(ctx, host)
        out += _find_bursts(ctx, host)
        out += _other_output(ctx, host)
        out += _stops(ctx, host)
    return out


def _downloads(ctx: Context, host: str) -> list:
    # each wget request line starts a group holding the lines wget printed about it
    rows = ctx.query("""
        WITH wget AS (
          SELECT event_id, ts_utc, event_type, url_full, source_id, "offset",
                 sum(CASE WHEN event_type = 'program-output.wget.request' THEN 1 ELSE 0 END)
                   OVER (PARTITION BY source_id ORDER BY "offset" ROWS UNBOUNDED PRECEDING) AS request
          FROM events WHERE host = ? AND event_type LIKE 'program-output.wget%')
        SELECT arg_min(event_id, "offset"), min(ts_utc), arg_min(url_full, "offset"),
               bool_or(event_type = 'program-output.wget.saved'), bool_or(event_type = 'program-output.wget.error'),
               list(event_id ORDER BY "offset")
        FROM wget WHERE request > 0 GROUP BY source_id, request ORDER BY 2, 1""", [host])
    out: list = []
    for first_id, t, url, saved, error, ids in rows:
        outcome = "saved" if saved else "failed" if error else "refused"
        out.append(Milestone("download", t, host, {"url": url, "outcome": outcome}, tuple(ids)))
    if rows:
        domains = sorted({urlsplit(r[2]).hostname or "" for r in rows if r[2]} - {""})
        ioc = sorted(d for d in domains if d.lower() in ctx.settings.ioc_domains)
        out.append(Finding("errorlog.download", f"{len(rows)} downloads by wget run from the web server", "high",
                           host, rows[0][1], rows[-1][1], len(rows), tuple(domains), tuple(r[0] for r in rows),
                           {"key": "wget", "urls": sorted({r[2] for r in rows if r[2]}),
                            "saved": sum(1 for r in rows if r[3]), **({"ioc_domains": ioc} if ioc else {})}))
    return out


def _find_bursts(ctx: Context, host: str) -> list:
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_id, "offset" FROM events
        WHERE host = ? AND event_type = 'program-output.find.denied' ORDER BY ts_utc, event_id""", [host])
    out: list = []
    bursts: list[list] = []
    for r in rows:
        if bursts and r[1] - bursts[-1][-1][1] <= FIND_BURST_GAP:
            bursts[-1].append(r)
        else:
            bursts.append([r])
    for burst in bursts:
        started = _request_that_ran(ctx, host, "find", burst[0][1], _next_dated(ctx, burst[-1]))
        detail = {"lines": len(burst)}
        if started:
            detail.update(request=started[0], url=started[2],
                          timing="the web-shell request that ran find (its output lines carry no time of their own)")
        out.append(Finding("errorlog.find_permission_denied",
                           f"{len(burst)} 'find: … Permission denied' lines: a search of the file system",
                           "high", host, burst[0][1], burst[-1][1], len(burst), (), tuple(r[0] for r in burst),
                           {"key": burst[0][1].isoformat()}))
        when = started[1] if started else burst[0][1]
        out.append(Milestone("find_scan", when, host, detail, (burst[0][0],) + ((started[0],) if started else ())))
    return out


def _next_dated(ctx: Context, row) -> object:
    """The time of the first line after ``row`` in its file that carries its own timestamp."""
    found = ctx.query("""SELECT min(ts_utc) FROM events WHERE source_id = ? AND "offset" > ?
                         AND time_basis NOT LIKE 'no timestamp%'""", [row[2], row[3]])[0][0]
    return found or row[1]


def _request_that_ran(ctx: Context, host: str, program: str, not_before, not_after) -> tuple | None:
    """The first web-shell request between the dated lines around headerless output whose command
    runs ``program``: the output is timed by the dated line before it, the request is the better
    clock."""
    from logsalvage.detect.web import command_like

    for event_id, t, path, query in ctx.query("""
            SELECT event_id, ts_utc, url_path, url_query FROM events
            WHERE host = ? AND format_id = 'apache-access' AND ts_utc BETWEEN ? AND ?
              AND url_query ILIKE ? ORDER BY ts_utc, event_id""", [host, not_before, not_after, f"%{program}%"]):
        command = command_like(query)
        if command and command.split()[0] == program:
            return event_id, t, f"{path}?{query}"
    return None


def _other_output(ctx: Context, host: str) -> list:
    rows = ctx.query("""
        SELECT event_type, count(*), min(ts_utc), max(ts_utc), list(event_id ORDER BY ts_utc, event_id),
               -- the example: the first line in the case's total order (lines of one program's output
               -- share the time of the dated line before them, so the time alone is a tie)
               first(message ORDER BY ts_utc, source_id, "offset")
        FROM events WHERE host = ? AND event_type LIKE 'program-output.%'
          AND event_type NOT LIKE 'program-output.wget%' AND event_type <> 'program-output.find.denied'
        GROUP BY event_type ORDER BY min(ts_utc), event_type""", [host])
    return [Finding("errorlog.program_output", f"{n} lines of {kind.split('.', 1)[1]} output in the error log",
                    "medium", host, first, last, n, (), tuple(ids), {"key": kind, "example": example})
            for kind, n, first, last, ids, example in rows]


def _stops(ctx: Context, host: str) -> list:
    """Apache stopped (SIGTERM): a reboot when the host boots before Apache is back, a restart
    otherwise, the server stopped when it never comes back."""
    rows = ctx.query("""
        SELECT event_id, ts_utc, CASE WHEN message LIKE '%caught SIGTERM%' THEN 'stop' ELSE 'start' END
        FROM events WHERE host = ? AND format_id = 'apache-error'
          AND (message LIKE '%caught SIGTERM, shutting down%' OR message LIKE '%resuming normal operations%')
        ORDER BY ts_utc, event_id""", [host])
    boots = [r[0] for r in ctx.query(f"""
        SELECT ts_utc FROM events WHERE host = ? AND {SYSTEM_LOG_SQL}
          AND (message LIKE '%@reboot jobs will be run%' OR message LIKE 'Linux version %'
               OR message LIKE '%Initializing cgroup subsys%' OR message LIKE '%systemd%Startup finished%')
        ORDER BY ts_utc""", [host])]
    out: list = []
    for i, (event_id, t, what) in enumerate(rows):
        if what != "stop":
            continue
        restart = next((r for r in rows[i + 1:] if r[2] == "start"), None)
        if restart is None:
            out.append(Milestone("server_stopped", t, host, {}, (event_id,)))
        elif restart[1] - t <= RESTART_WITHIN:
            booted = any(t <= b <= restart[1] for b in boots)
            out.append(Milestone("reboot" if booted else "web_server_restart", t, host,
                                 {"back_at": restart[1].isoformat()}, (event_id, restart[0])))
    return out
