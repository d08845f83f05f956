"""Package installs and removals during the exposure window (dpkg.log, apt's history.log, yum.log).

An intruder with root installs what their tools need (a compiler, nmap, netcat, a proxy) or removes
what watches them (auditd, rsyslog, an integrity checker); routine upgrades happen too. One finding
per host lists every change in the window; its severity follows what changed: a tool of the kind
intruders install, or a watcher removed, is high; other installs and removals are low; a window
with upgrades only is info.
"""

from __future__ import annotations

import json
from datetime import datetime

from logsalvage.continuity.timeline import one_copy_sql
from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding

# packages an intruder installs to scan, tunnel, crack, build or mine
INTRUDER_TOOLS = frozenset({
    "nmap", "nmap-ncat", "ncat", "netcat", "netcat-openbsd", "netcat-traditional", "nc", "socat", "masscan",
    "zmap", "hydra", "john", "hashcat", "medusa", "sqlmap", "nikto", "tor", "proxychains", "proxychains4",
    "proxychains-ng", "sshpass", "gcc", "cc", "make", "build-essential", "tcpdump", "ettercap-text-only",
    "dsniff", "xmrig", "cpuminer", "screen", "tmux", "expect",
})
# packages whose removal blinds the investigation or the defence
WATCHERS = frozenset({
    "rsyslog", "syslog-ng", "sysklogd", "auditd", "audit", "logrotate", "aide", "tripwire", "ossec-hids",
    "wazuh-agent", "fail2ban", "clamav", "rkhunter", "chkrootkit", "apparmor", "selinux-policy",
    "openssh-server",  # replaced with a trojaned build
})
_EVENTS = ("dpkg.install", "dpkg.change", "yum.install", "yum.change", "apt.transaction")


def package_name(text: str) -> str:
    """'nmap:amd64' → 'nmap'; 'libpcap0.8:amd64 (1.8.1-3, automatic)' → 'libpcap0.8'."""
    return text.strip().split(" ", 1)[0].split(":", 1)[0]


def _changes(event_type: str, action: str | None, extra: dict) -> list[tuple[str, str]]:
    """(action, package) pairs one record stands for."""
    if event_type == "apt.transaction":
        packages = extra.get("packages") or []
        if isinstance(packages, str):
            packages = [p for p in packages.split("), ") if p.strip()]
        return [(action or "install", package_name(p)) for p in packages if package_name(p)]
    package = extra.get("package")
    return [(action or "change", package_name(package))] if package else []


def in_window(ctx: Context, window: tuple[datetime, datetime]) -> list[Finding]:
    rows = ctx.query(f"""
        SELECT host, event_id, ts_utc, event_type, action, extra FROM events
        WHERE event_type IN ({", ".join(f"'{e}'" for e in _EVENTS)}) AND ts_utc BETWEEN ? AND ?
        {one_copy_sql()}
        ORDER BY host, ts_utc, event_id""", list(window))
    by_host: dict[str, list] = {}
    for host, event_id, ts, etype, action, extra in rows:
        try:
            fields = json.loads(extra) if extra else {}
        except ValueError:
            fields = {}
        for act, package in _changes(etype, action, fields if isinstance(fields, dict) else {}):
            by_host.setdefault(host, []).append((ts, event_id, act, package))
    out = []
    for host, changes in by_host.items():
        installed = sorted({p for _, _, a, p in changes if a == "install"})
        removed = sorted({p for _, _, a, p in changes if a in ("remove", "purge")})
        upgraded = sorted({p for _, _, a, p in changes if a == "upgrade"})
        tools = sorted(set(installed) & INTRUDER_TOOLS)
        blinded = sorted(set(removed) & WATCHERS)
        if tools or blinded:
            severity = "high"
        elif installed or removed:
            severity = "low"
        elif upgraded:
            severity = "info"
        else:
            continue
        parts = [f"{label}: {', '.join(names[:8])}{' …' * (len(names) > 8)}"
                 for label, names in (("installed", installed), ("removed", removed)) if names]
        if upgraded:
            parts.append(f"{len(upgraded)} upgraded")
        ids = tuple(dict.fromkeys(e for _, e, _, _ in changes))
        out.append(Finding("host.package_changes", f"Packages changed during the exposure window ({'; '.join(parts)})",
                           severity, host, changes[0][0], changes[-1][0], len(ids), (), ids,
                           {"key": host, "installed": installed, "removed": removed, "upgraded": upgraded,
                            "intruder_tools": tools, "watchers_removed": blinded}))
    return out
