"""The facts of a theft for the verdict's headline: when, which tables, how much, by which database
account and client program, from which address, and through what — a web shell or SQL injection.

Everything comes from findings.json: the verdict's ``theft`` (``detect.exfiltration``) and, when the
statements' text is not in any URL (a web shell driven by POST), the exfiltration milestone's
web-shell session (``detect.correlate``), whose first request names the shell through the web-shell
finding that holds it. Nothing is queried again. Values from the evidence stay plain text here.
"""

from __future__ import annotations

from collections.abc import Mapping

from logsalvage.report.plain_language import joined as _list
from logsalvage.report.times import CaseClock

ROWS_NOT_LOGGED = "the database log does not record how many rows a request returned"


def size_label(n: int) -> str:
    """Bytes in decimal units, as a reader compares them with a file's size: '49.4 MB'."""
    for unit, scale in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:,} bytes"


def _shell_of(milestone: Mapping, findings: list[Mapping]) -> str | None:
    """The web shell of the exfiltration milestone's session: the script of the web-shell finding that
    holds the session's first request."""
    first = (milestone.get("event_ids") or [None])[0]
    for f in findings:
        if f.get("rule") == "web.webshell_execution" and first in (f.get("event_ids") or ()):
            return (f.get("detail") or {}).get("script")
    return None


def through_web(verdict: Mapping, findings: list[Mapping], milestones: list[Mapping]) -> dict | None:
    """How the data went through the web server, when the findings link it: the shell's script(s), the
    web host, the intruders' address(es), the requests and their answers' bytes."""
    theft = verdict.get("theft") or {}
    web = theft.get("web")
    if web:
        return {"scripts": list(web.get("scripts") or []), "hosts": list(web.get("hosts") or []),
                "sources": list(web.get("sources") or []), "requests": web.get("requests"),
                "bytes": web.get("bytes"), "first": web.get("first"), "last": web.get("last"),
                "carried": True}
    for m in milestones:
        d = m.get("detail") or {}
        if m.get("kind") in ("exfiltration", "suspected_exfiltration") and d.get("via") == "web shell":
            script = _shell_of(m, findings)
            return {"scripts": [script] if script else [], "hosts": [d["web_host"]] if d.get("web_host") else [],
                    "sources": [d["source"]] if d.get("source") else [], "requests": d.get("requests"),
                    "bytes": None, "first": m.get("time"), "last": None, "carried": False}
    return None


def facts(verdict: Mapping, findings: list[Mapping], milestones: list[Mapping], clock: CaseClock) -> dict | None:
    """The headline's facts when data left or may have (None otherwise): a list of labelled rows."""
    theft = verdict.get("theft")
    if not theft or verdict.get("exfiltration") not in ("found", "suspected"):
        return None
    found = verdict.get("exfiltration") == "found"
    web = through_web(verdict, findings, milestones)
    tables = theft.get("tables") or []
    rows = [{"label": "When", "start": clock.stamp(theft.get("first")), "text": None,
             "end": clock.stamp(theft.get("last")) if theft.get("last") != theft.get("first") else None},
            _row("Which tables", _list(tables) if tables else "not named in the records"),
            _row("How much", _amount(theft, web)),
            _row("By whom", _who(theft)),
            _row("From where", _where(theft, web))]
    through = _through(theft, web)
    if through:
        rows.append(_row("Through", through))
    return {"title": "What left, when and how" if found else "What may have left, when and how",
            "rows": rows, "web": web}


def _row(label: str, text: str) -> dict:
    return {"label": label, "text": text, "start": None, "end": None}


def _amount(theft: Mapping, web: Mapping | None) -> str:
    parts = []
    n = theft.get("statements") or 0
    if n:
        parts.append(f"{n:,} database request{'s' * (n != 1)} reading or copying out whole tables")
    if theft.get("rows"):
        parts.append(f"{theft['rows']:,} rows walked one by one through SQL injection")
    else:
        parts.append(f"rows not counted: {ROWS_NOT_LOGGED}")
    text = "; ".join(parts)
    if web and web.get("bytes"):
        text += (f". The web shell's answers to the requests that ran them came to {size_label(web['bytes'])} "
                 f"({web['bytes']:,} bytes)")
    for i in theft.get("injection") or []:
        if i.get("bytes"):
            text += (f". The answers to the SQL-injection requests came to {size_label(i['bytes'])} "
                     f"({i['bytes']:,} bytes)")
    return text + "."


def _who(theft: Mapping) -> str:
    users = theft.get("db_users") or []
    programs = theft.get("client_programs") or []
    text = (f"database account{'s' * (len(users) != 1)} {_list(users)}" if users else
            "no database account is named in the records")
    text += (f"; client program {_list(programs)}" if programs else
             "; the client program is not in the log")
    return text + "."


def _where(theft: Mapping, web: Mapping | None) -> str:
    hosts = theft.get("client_hosts") or {}
    clients = [f"{c} ({hosts[c]})" if c in hosts else c for c in theft.get("clients") or []]
    parts = []
    if clients:
        parts.append(f"the database saw {_list(clients)}")
    if web and web.get("sources"):
        parts.append(f"the intruders reached {_list(web.get('hosts') or ['the web server'])} from "
                     f"{_list(web['sources'])}")
    for i in theft.get("injection") or []:
        if i.get("sources"):
            parts.append(f"the injection came from {_list(i['sources'])}")
    return ("; ".join(parts) or "no address is in the records") + "."


def _through(theft: Mapping, web: Mapping | None) -> str | None:
    parts = []
    if web:
        shell = f"the web shell {_list(web['scripts'])}" if web.get("scripts") else "a web shell"
        on = f" on {_list(web['hosts'])}" if web.get("hosts") else ""
        n = web.get("requests") or 0
        if web.get("carried"):
            parts.append(f"{shell}{on}: {n:,} request{'s' * (n != 1)} carried the database commands")
        else:
            parts.append(f"{shell}{on}: a session of {n:,} request{'s' * (n != 1)} was under way when the first of "
                         "them reached the database")
    for i in theft.get("injection") or []:
        parts.append(f"SQL injection into {i.get('script')} (parameter {i.get('parameter')}) on {i.get('host')}")
    if theft.get("copy_to") and not parts:
        parts.append(f"COPY … TO {_list(theft['copy_to'])} straight from the database")
    return "; ".join(parts) + "." if parts else None
