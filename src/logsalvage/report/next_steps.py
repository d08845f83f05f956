"""What to do now, in order: contain, preserve, rotate credentials, notify, fix — each step built
from what this case found, so it names the files, addresses, scheduled jobs and accounts concerned.

* **Contain**: the web shells and the files uploaded by the intruders to remove, the addresses they
  came from to block, their scheduled jobs (cron) and hidden folders to delete.
* **Preserve**: images and logs of the hosts involved, before anything is cleaned.
* **Rotate credentials**: the database accounts the theft or injection used, the accounts that logged
  in after password guessing or from addresses the maintainers do not use, and every password stored
  on a host a web shell ran on.
* **Notify**: when data left, or when it cannot be excluded.
* **Fix**: the readiness audit's most serious findings with their fixes, when the audit ran.

A step with nothing to name is left out, not padded. Pure: findings.json values in, plain text out.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from logsalvage.detect.database import is_public
from logsalvage.report.plain_language import joined
from logsalvage.report.times import CaseClock

SHOWN = 8  # items of one kind named in a step; the rest are counted
AUDIT_FIXES = 5  # of the readiness audit's findings, the most serious first
# findings whose addresses are the intruders' own
INTRUDER_RULES = ("web.webshell_execution", "ftp.upload", "ftp.login", "ftp.upload_then_request",
                  "access.guessing_then_login", "web.command_parameter", "exfil.sqli_extraction")


def steps(*, findings: list[Mapping], milestones: list[Mapping], verdict: Mapping, audit: Mapping | None,
          clock: CaseClock, theft: Mapping | None = None) -> list[dict]:
    """The ordered steps: ``{"kind", "label", "text", "actions"}``."""
    out = []
    for kind, label, build in (("contain", "Contain", _contain), ("preserve", "Preserve", _preserve),
                               ("rotate", "Rotate credentials", _rotate), ("notify", "Notify", _notify),
                               ("fix", "Fix", _fix)):
        text, items = build(findings=findings, milestones=milestones, verdict=verdict, audit=audit, clock=clock,
                            theft=theft)
        if text:
            out.append({"kind": kind, "label": label, "text": text, "actions": items})
    return out


def _named(values, where: str) -> str:
    """The first ``SHOWN`` values, and how many more are listed ``where`` in the analyst part."""
    values = list(dict.fromkeys(str(v) for v in values if v))
    if len(values) <= SHOWN:
        return joined(values)
    return ", ".join(values[:SHOWN]) + f" and {len(values) - SHOWN:,} more (under {where})"


def _contain(*, findings, milestones, verdict, theft, **_) -> tuple[str | None, list[str]]:
    items = []
    shells: dict[str, list[str]] = {}
    for f in findings:
        if f.get("rule") == "web.webshell_execution" and (f.get("detail") or {}).get("script"):
            shells.setdefault(str(f.get("host")), []).append(str(f["detail"]["script"]))
    for host, scripts in sorted(shells.items()):
        items.append(f"Take {host} off the internet or block its web shells, then remove them: "
                     f"{_named(sorted(set(scripts)), 'Findings')}.")
    uploads: dict[str, list[str]] = {}
    for m in milestones:
        if m.get("kind") == "ftp_upload_session":
            uploads.setdefault(str(m.get("host")), []).extend((m.get("detail") or {}).get("uploads") or [])
    for host, files in sorted(uploads.items()):
        items.append(f"Remove the files the intruders uploaded to {host} by FTP: "
                     f"{_named(sorted(set(files)), 'Continuity')}.")
    addresses = sorted({a for f in findings if f.get("rule") in INTRUDER_RULES for a in f.get("sources") or []
                        if _public(a)}, key=_address_key)
    web = (theft or {}).get("web") or {}
    addresses += [a for a in web.get("sources") or [] if _public(a) and a not in addresses]
    networks = sorted({str(m["detail"]["network"]) for m in milestones
                       if m.get("kind") == "webshell_first_use_from_network"
                       and (m.get("detail") or {}).get("network")})
    if networks:
        items.append(f"Block the networks the intruders came from, {joined(networks)}, or at least their addresses: "
                     f"{_named(addresses, 'Source addresses')}.")
    elif addresses:
        items.append(f"Block the addresses the intruders used: {_named(addresses, 'Source addresses')}.")
    jobs: dict[tuple[str, str], list[str]] = {}
    for m in milestones:
        d = m.get("detail") or {}
        if m.get("kind") == "cron_first_run" and d.get("command"):
            jobs.setdefault((str(m.get("host")), str(d.get("user") or "?")), []).append(str(d["command"]))
    for f in findings:
        d = f.get("detail") or {}
        if f.get("rule") == "cron.suspicious_job" and d.get("command"):
            jobs.setdefault((str(f.get("host")), str(d.get("user") or "?")), []).append(str(d["command"]))
    for (host, user), commands in sorted(jobs.items()):
        items.append(f"Delete the scheduled jobs (crontab) of {user} on {host}: "
                     f"{_named(sorted(set(commands)), 'Dated steps')}.")
    hidden = sorted({(str(f.get("host")), str((f.get("detail") or {}).get("path")))
                     for f in findings if f.get("rule") == "fs.hidden_dir" and (f.get("detail") or {}).get("path")})
    for host, path in hidden:
        items.append(f"Delete the hidden folder {path} on {host} and the programs in it.")
    if not items:
        return None, []
    return "Stop the intruders' access before anything else:", items


def _preserve(*, findings, milestones, verdict, **_) -> tuple[str | None, list[str]]:
    hosts = sorted({str(f.get("host")) for f in findings if f.get("host")} |
                   {str(m.get("host")) for m in milestones if m.get("host")} |
                   ({str(verdict["db_host"])} if verdict.get("db_host") else set()))
    if not hosts:
        return None, []
    return ("Before cleaning, keep what proves what happened: logs rotate away and cleaning destroys traces.",
            [f"Take a disk image of {joined(hosts)} and copy their logs (/var/log and the database's log), "
             "recording their SHA-256 as this report does for the evidence it read (Case facts).",
             "Keep this case directory (case database, findings.json, report) with them."])


def _rotate(*, findings, milestones, verdict, theft, **_) -> tuple[str | None, list[str]]:
    items = []
    facts = verdict.get("theft") or {}
    users = list(facts.get("db_users") or [])
    if users:
        items.append(f"Change the password of the database account{'s' * (len(users) != 1)} {joined(users)}, used to "
                     "read the data, and put the new one in the application's configuration.")
    guessed: dict[tuple[str, str], set[str]] = {}
    for f in findings:
        d = f.get("detail") or {}
        if f.get("rule") == "access.guessing_then_login" and d.get("account"):
            guessed.setdefault((str(d["account"]), str(d.get("service") or "login")), set()).add(str(f.get("host")))
        elif f.get("rule") == "ftp.login" and d.get("account"):
            guessed.setdefault((str(d["account"]), "FTP"), set()).add(str(f.get("host")))
    for (account, service), hosts in sorted(guessed.items()):
        items.append(f"Change the password of {account} ({service} on {joined(sorted(hosts))}): it logged in after "
                     "password guessing or from addresses the maintainers do not use.")
    shell_hosts = sorted({str(f.get("host")) for f in findings if f.get("rule") == "web.webshell_execution"})
    if shell_hosts:
        items.append(f"Change every password stored on {joined(shell_hosts)} (configuration files, database "
                     "credentials, keys): a web shell reads whatever the web server can.")
    if not items:
        return None, []
    return "Assume the intruders know these credentials:", items


def _notify(*, verdict, clock, **_) -> tuple[str | None, list[str]]:
    v = verdict.get("exfiltration")
    facts = verdict.get("theft") or {}
    tables = facts.get("tables") or []
    whose = f" whose data is in {joined(tables)}" if tables else ""
    if v == "found":
        when = f" (on {clock.show(facts['first'])})" if facts.get("first") else ""
        return ("Customer data left the database" + when + ":",
                [f"Notify the people{whose} and the data-protection authority, within the deadline the law sets.",
                 "Tell the people affected what was taken and what they should watch for."])
    if v == "suspected" or v == "undetermined" or (v == "none-found" and verdict.get("confidence") != "high"):
        reason = {"suspected": "there are signs that data may have left the database",
                  "undetermined": "the evidence cannot tell whether data left the database",
                  "none-found": "the database log does not cover all of the time the intruders had access"}[v]
        return (f"That data left cannot be excluded: {reason}.",
                [f"Ask your legal adviser now whether to notify the people{whose or ' whose data the database holds'} "
                 "and the data-protection authority; the deadline may run from now."])
    return None, []


def _fix(*, audit, **_) -> tuple[str | None, list[str]]:
    if not audit:
        return ("So that it does not happen again:",
                ["No readiness audit ran with this case: run one (logsalvage audit) to list what made the intrusion "
                 "possible and what would make the next one answerable."])
    weaknesses = [f for g in audit.get("groups") or [] for f in g.get("findings") or []]
    order = {"high": 0, "medium": 1, "low": 2, "info": 3}
    top = sorted(weaknesses, key=lambda f: order.get(f.get("severity"), 4))[:AUDIT_FIXES]
    if not top:
        return None, []
    items = [f"{f.get('fix')} ({f.get('host')}: {f.get('title')})" for f in top]
    more = len(weaknesses) - len(top)
    text = "So that it does not happen again, the readiness audit's most serious findings first"
    text += f" ({more:,} more under What to change):" if more > 0 else ":"
    return text, items


def _public(address: str) -> bool:
    """An address outside the organisation's own networks (blocking one of those would block itself)."""
    return is_public(str(address).strip("[]"))


def _address_key(address: str):
    ip = ipaddress.ip_address(address.strip("[]"))
    return (ip.version, int(ip))
