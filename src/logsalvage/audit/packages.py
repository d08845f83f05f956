"""Continuous updates: how old is the newest package install or upgrade the evidence shows
(dpkg.log, apt's history.log, yum.log, dnf.rpm.log, an ``rpm -qa --last`` listing; on a live or
mounted system also the package database's own modification time)."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from logsalvage.audit.extras import extra_files
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile
from logsalvage.parsing.dialect import compile_shared

MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
                                      "Dec"), 1)}
_MON = "(?P<mon>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
# rpm -qa --last: "httpd-2.4.6-40.el7.x86_64   Thu 03 Dec 2015 10:41:27 AM JST" or "… Thu Dec  3 10:41:27 2015"
RPM_LAST = (compile_shared(r"^\S+-\d\S*\s+\S+ (?P<d>\d{1,2}) " + _MON + r" (?P<y>\d{4}) (?P<t>\d\d:\d\d:\d\d)"
                           r"(?: (?P<ampm>AM|PM))?"),
            compile_shared(r"^\S+-\d\S*\s+\S+ " + _MON + r" +(?P<d>\d{1,2}) (?P<t>\d\d:\d\d:\d\d) (?P<y>\d{4})"))
LOGS = ("var/log/dpkg.log*", "var/log/apt/history.log*", "var/log/yum.log*", "var/log/dnf.rpm.log*")
DB_FILES = ("var/lib/dpkg/status", "var/lib/rpm/Packages", "var/lib/rpm/rpmdb.sqlite")
SNIFF_RATIO = 0.8
VERY_OLD_DAYS = 365


def _iso(text: str) -> datetime | None:
    try:
        return datetime.strptime(text[:19].replace("T", " "), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def _newest_in_log(cf: ConfigFile, mtime: float | None) -> tuple[datetime, int] | None:
    best: tuple[datetime, int] | None = None
    name = cf.rel.rsplit("/", 1)[-1]
    for no, line in cf.numbered():
        t = None
        if name.startswith("dpkg.log"):
            words = line.split()
            if len(words) >= 4 and (words[2] in ("install", "upgrade") or words[2:4] == ["status", "installed"]):
                t = _iso(line)
        elif name.startswith("history.log"):
            if line.startswith("Start-Date:"):
                t = _iso(" ".join(line.split()[1:3]))
        elif name.startswith("dnf.rpm.log"):
            if any(w in line for w in ("Installed:", "Upgraded:", "Installing:", "Upgrading:")):
                t = _iso(line)
        elif name.startswith("yum.log"):
            words = line.split()
            if len(words) >= 4 and words[0] in MONTHS and words[3] in ("Installed:", "Updated:"):
                ref = time.gmtime(mtime) if mtime else time.gmtime()
                year = ref.tm_year - (1 if MONTHS[words[0]] > ref.tm_mon else 0)
                try:
                    t = datetime.strptime(f"{year} {words[0]} {words[1]} {words[2]}", "%Y %b %d %H:%M:%S")
                except ValueError:
                    t = None
        if t and (best is None or t > best[0]):
            best = (t, no)
    return best


def _rpm_last(cf: ConfigFile) -> tuple[datetime, int] | None:
    """The newest time of an ``rpm -qa --last`` listing, when the file is one."""
    best, hits, lines = None, 0, 0
    for no, line in cf.numbered():
        if not line.strip() or line.startswith("#"):
            continue
        lines += 1
        m = RPM_LAST[0].search(line) or RPM_LAST[1].search(line)
        if not m:
            continue
        hits += 1
        hh, mm, ss = (int(x) for x in m.group("t").split(":"))
        ampm = m.groupdict().get("ampm")
        if ampm == "PM" and hh < 12:
            hh += 12
        elif ampm == "AM" and hh == 12:
            hh = 0
        try:
            t = datetime(int(m.group("y")), MONTHS[m.group("mon")], int(m.group("d")), hh, mm, ss)
        except ValueError:
            continue
        if best is None or t > best[0]:
            best = (t, no)
    return best if lines and hits >= SNIFF_RATIO * lines else None


def newest_change(host: Host) -> tuple[datetime, ConfigFile | str, int | None] | None:
    """(time, the file that shows it — read, or a path of the tree —, line) of the newest install or upgrade."""
    found: list[tuple[datetime, ConfigFile | str, int | None]] = []
    for pattern in LOGS:
        for rel in host.tree.files(pattern):
            cf = host.tree.read(rel)
            st = host.tree.stat(rel)
            if cf:
                hit = _newest_in_log(cf, st.st_mtime if st else None)
                if hit:
                    found.append((hit[0], cf, hit[1]))
    for rel in extra_files(host):
        cf = host.tree.read(rel)
        hit = _rpm_last(cf) if cf else None
        if hit:
            found.append((hit[0], cf, hit[1]))
    if host.tree.live:
        for rel in DB_FILES:
            st = host.tree.stat(rel)
            if st is not None:
                found.append((datetime.fromtimestamp(st.st_mtime, timezone.utc).replace(tzinfo=None), rel, None))
    return max(found, key=lambda x: x[0]) if found else None


def reference_time(host: Host) -> datetime:
    """When the system was examined: the case's acquisition time, else the newest entry of /var/log
    (an evidence copy), else now (a live system). Naive UTC, like the package times (day precision)."""
    if host.options.acquired is not None:
        return host.options.acquired.astimezone(timezone.utc).replace(tzinfo=None)
    if not host.tree.live:
        newest = host.tree.newest_mtime(["var/log"])
        if newest is not None:
            return datetime.fromtimestamp(newest, timezone.utc).replace(tzinfo=None)
    return datetime.now(timezone.utc).replace(tzinfo=None)


def check(host: Host) -> list[Finding]:
    newest = newest_change(host)
    if newest is None:
        return []
    t, at, line = newest
    days = (reference_time(host) - t).days
    f = host.finding
    limit = host.options.package_age_days
    when = t.strftime("%Y-%m-%d")
    if days > limit:
        return [f("packages.age", "high" if days > VERY_OLD_DAYS else "medium", "updates", at,
                  f"No package was installed or upgraded for {days} days (the newest change: {when})",
                  "Every security fix published since then is missing: scanners find such servers by their "
                  "version banners and use the published exploits.",
                  f"Apply updates at least every {limit} days (unattended security updates where possible), and "
                  "replace components past their end of life.", line=line)]
    return [f("packages.age", "strength", "updates", at,
              f"Packages were updated recently ({when}, {max(days, 0)} days before the audit's reference time)",
              "Published fixes are applied.", "Keep it.", line=line)]
