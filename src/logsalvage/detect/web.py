"""Web server detectors over access logs: scanner probes, web-shell executions, command-like
parameters, SQL injection in URLs.

A web-shell execution is a 2xx answer to a script that is not part of the site: not in the
legitimate inventory (case config ``inventory.web`` or the checksum inventory found in the
evidence). Without any inventory, a script answering 2xx to command-like parameters stands in.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import parse_qsl, unquote_plus

from logsalvage.detect import injection
from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone

# paths every internet scanner asks for: admin tools, CMS logins, leaked files, known exploits
SCANNER_PATHS = (
    r"phpmyadmin", r"/pma/", r"myadmin", r"/mysql/admin", r"/db/?$", r"dbadmin", r"sqlmanager",
    r"wp-login\.php", r"/wp-admin", r"xmlrpc\.php", r"setup-config\.php", r"/\.env", r"/\.git/",
    r"/\.htaccess", r"/\.svn/", r"/cgi-bin/", r"/manager/html", r"/admin/?$", r"revslider",
    r"\.action$", r"/solr/", r"/hnap1", r"w00tw00t", r"eval-stdin\.php", r"/shell\.php", r"/cmd\.php",
    r"/boaform/", r"/vendor/phpunit", r"/console/?$", r"/actuator", r"/\.aws/", r"/config\.json$",
)
SCANNER_SQL = "(" + "|".join(SCANNER_PATHS) + ")"
MIN_COMMANDS = 3  # distinct command-like values a script must take to count as a shell
SCRIPT_SQL = r"\.(php\d?|phtml|pl|cgi|py|sh|jsp|aspx?)$"
# the first word of a shell command an attacker sends through a web shell
_WORDS = (r"id|uname|whoami|pwd|ls|cat|w|df|ps|netstat|uptime|php|perl|python\d?|wget|curl|cd|chmod|crontab|echo|"
          r"find|kill|nohup|tar|rm|mkdir|cp|mv|free|ifconfig|ip|head|tail|sh|bash|nc|base64")
COMMAND = re.compile(rf"^\s*({_WORDS})(\s|$|;|\|)")
# a command chained or substituted after something else (not SQL's ';SELECT')
SHELL_META = re.compile(rf"(;|&&|\|\|?)\s*({_WORDS})(\s|$)|`[^`]+`|\$\([^)]+\)|>\s*/(tmp|dev|var)/")


def command_like(query: str | None) -> str | None:
    """The command a query string carries, if any of its values reads like a shell command."""
    if not query:
        return None
    for _, value in parse_qsl(query, keep_blank_values=True):
        text = unquote_plus(value) if "%" in value or "+" in value else value
        if COMMAND.match(text) or SHELL_META.search(text):
            return text
    return None


def network_of(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def detect(ctx: Context) -> list:
    out: list = []
    for host in ctx.hosts_with("apache-access"):
        out += _scanner_probes(ctx, host)
        out += _web_shells(ctx, host)
        out += _sql_injection(ctx, host)
        out += injection.detect(ctx, host)
    return out


def _sql_injection(ctx: Context, host: str) -> list:
    """One finding per client sending SQL in parameters, whatever it targeted (the campaigns per
    script and parameter, their milestones and what they read: ``injection``)."""
    by_source: dict[str, list] = {}
    for c in injection.campaigns(ctx, host):
        for p in c.probes:
            by_source.setdefault(p.source or "unknown", []).append((p, c.script))
    out: list = []
    for source, group in sorted(by_source.items(), key=lambda kv: min(p.time for p, _ in kv[1])):
        group = sorted({p.event_id: (p, s) for p, s in group}.values(), key=lambda x: (x[0].time, x[0].event_id))
        first, last = group[0][0], group[-1][0]
        out.append(Finding(
            "web.sqli_probe", f"{len(group)} requests from {source} with SQL in their parameters", "high", host,
            first.time, last.time, len(group), (source,), tuple(p.event_id for p, _ in group),
            {"key": source, "scripts": sorted({s for _, s in group}), "answered_2xx": sum(p.answered for p, _ in group),
             "examples": sorted({p.value for p, _ in group})[:10]}))
    return out


def _scanner_probes(ctx: Context, host: str) -> list:
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_ip FROM events
        WHERE host = ? AND format_id = 'apache-access' AND http_status BETWEEN 400 AND 499
          AND regexp_matches(lower(url_path), ?)
        ORDER BY ts_utc, event_id""", [host, SCANNER_SQL])
    if not rows:
        return []
    sources = sorted({r[2] for r in rows if r[2]})
    first = rows[0]
    return [
        Finding("web.scanner_probe", "Requests for well-known admin tools, logins and leaked files, refused",
                "low", host, first[1], rows[-1][1], len(rows), tuple(sources), tuple(r[0] for r in rows),
                {"key": "scanner", "addresses": len(sources)}),
        Milestone("first_probe", first[1], host, {"source": first[2]}, (first[0],)),
    ]


def _inventory(ctx: Context, host: str) -> set[str] | None:
    try:
        from logsalvage.detect.filesystem import web_inventory_paths
    except ImportError:  # filesystem triage not available: use the case config only
        return set(ctx.settings.web_inventory) if ctx.settings.web_inventory is not None else None
    return web_inventory_paths(ctx, host)


def _web_shells(ctx: Context, host: str) -> list:
    inventory = _inventory(ctx, host)
    base = f"""SELECT event_id, ts_utc, source_ip, url_path, url_query FROM events
               WHERE host = ? AND format_id = 'apache-access' AND http_status BETWEEN 200 AND 299
                 AND regexp_matches(lower(url_path), '{SCRIPT_SQL}')"""
    # a cheap filter in SQL (any parameter at all), the exact test in Python on what is left
    candidates = ctx.query(base + " AND url_query IS NOT NULL AND url_query <> '' ORDER BY ts_utc, event_id",
                           [host])
    commands = [(r, c) for r in candidates if (c := command_like(r[4]))]
    # one script taking several different commands is a shell; one value such as '?sort=id' is not
    distinct: dict[str, set[str]] = {}
    for r, c in commands:
        distinct.setdefault(r[3], set()).add(c)
    commands = [(r, c) for r, c in commands if len(distinct[r[3]]) >= MIN_COMMANDS]
    out: list = []
    if commands:
        out.append(Finding(
            "web.command_parameter", "Scripts answering 2xx to shell commands in their parameters", "high", host,
            commands[0][0][1], commands[-1][0][1], len(commands), tuple(sorted({r[2] for r, _ in commands if r[2]})),
            tuple(r[0] for r, _ in commands),
            {"key": "commands", "scripts": sorted({r[3] for r, _ in commands}),
             "examples": sorted({c for _, c in commands})[:20]}))
    if inventory is not None:
        foreign = ctx.query(base + " AND url_path NOT IN (SELECT unnest(?::VARCHAR[])) ORDER BY ts_utc, event_id",
                            [host, sorted(inventory)])
        basis = "not in the site's inventory"
    else:
        scripts = {r[3] for r, _ in commands}
        foreign = [r for r in candidates if r[3] in scripts] if scripts else []
        basis = "no inventory: scripts that ran shell commands"
    by_script: dict[str, list] = {}
    for r in foreign:
        by_script.setdefault(r[3], []).append(r)
    for script, hits in sorted(by_script.items()):
        out.append(Finding(
            "web.webshell_execution", f"Requests answered by {script}, a script {basis}", "critical", host,
            hits[0][1], hits[-1][1], len(hits), tuple(sorted({r[2] for r in hits if r[2]})),
            tuple(r[0] for r in hits), {"key": script, "script": script, "basis": basis}))
    if foreign:
        first = foreign[0]
        out.append(Milestone("first_webshell_execution", first[1], host, {"source": first[2], "url": _url(first)},
                             (first[0],)))
        seen: set[str] = set()
        for r in foreign:
            net = network_of(r[2]) if r[2] else None
            if net and net not in seen:
                seen.add(net)
                out.append(Milestone("webshell_first_use_from_network", r[1], host,
                                     {"network": net, "source": r[2], "url": _url(r)}, (r[0],)))
    return out


def _url(row) -> str:
    return row[3] + (f"?{row[4]}" if row[4] else "")
