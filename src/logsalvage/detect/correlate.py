"""Correlation across hosts: which web-shell session drove the database's suspicious statements.

When the data left through the web server, the database sees the web server's own address (the
attacker runs psql or PHP through the shell with the application's credentials). The session on
the web server is the run of web-shell requests from one address, without a pause over
``SESSION_GAP``, that was under way when the first suspicious statement reached the database.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone

SESSION_GAP = timedelta(minutes=5)
LEAD = timedelta(minutes=15)  # how long before the statement the session may have begun asking


def exfiltration_milestone(ctx: Context, verdict: dict, findings: list[Finding]) -> Milestone | None:
    if verdict.get("exfiltration") not in ("found", "suspected"):
        return None
    evidence = set(verdict.get("event_ids") or ())
    anomalies = [f for f in findings if f.rule.startswith("exfil.") and (not evidence or evidence & set(f.event_ids))]
    if not anomalies:
        return None
    first = min(anomalies, key=lambda f: f.first_seen)
    kind = "exfiltration" if verdict["exfiltration"] == "found" else "suspected_exfiltration"
    detail: dict = {"verdict": verdict["exfiltration"], "rule": first.rule, "db_clients": list(first.sources)}
    session = _shell_session_before(ctx, findings, first.first_seen)
    if session is None:
        return Milestone(kind, first.first_seen, first.host, detail, first.event_ids[:1])
    start, source, host, ids = session
    detail.update(via="web shell", web_host=host, source=source, requests=len(ids))
    return Milestone(kind, start, first.host, detail, tuple(ids[:1]) + first.event_ids[:1])


def _shell_session_before(ctx: Context, findings: list[Finding], when: datetime):
    shells = [f for f in findings if f.rule == "web.webshell_execution"]
    if not shells:
        return None
    scripts = sorted({f.detail.get("script") for f in shells if f.detail.get("script")})
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_ip, host FROM events
        WHERE format_id = 'apache-access' AND url_path IN (SELECT unnest(?::VARCHAR[]))
          AND ts_utc BETWEEN ? AND ? ORDER BY ts_utc, event_id""", [scripts, when - LEAD - SESSION_GAP, when])
    near = [r for r in rows if r[1] >= when - LEAD]
    if not near:
        return None
    source = near[-1][2]
    mine = [r for r in rows if r[2] == source]
    i = len(mine) - 1
    while i > 0 and mine[i][1] - mine[i - 1][1] <= SESSION_GAP:
        i -= 1
    session = mine[i:]
    return session[0][1], source, session[0][3], [r[0] for r in session]
