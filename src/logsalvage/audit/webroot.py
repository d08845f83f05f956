"""The web roots: can the FTP account write where the web server runs scripts, and does a web root
hold scripts that are not part of the site.

Owners and modes come from an ``ls -l`` listing in the evidence (the project's listing parser) or,
on a live or mounted system, from the file system itself; an evidence copy's own owners say
nothing about the original, so there the listing is the only basis.
"""

from __future__ import annotations

import stat as stat_mod
from dataclasses import dataclass

from logsalvage.audit import apache, nginx
from logsalvage.audit.accounts import Account, accounts, groups, in_group
from logsalvage.audit.extras import extra_files
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile
from logsalvage.audit.vsftpd import ftp_accounts
from logsalvage.parsing.listings import parse_inventory_line, parse_listing_lines

SCRIPT_SUFFIXES = (".php", ".php3", ".php4", ".php5", ".phtml", ".pl", ".cgi", ".py", ".sh", ".rb", ".fcgi", ".jsp",
                   ".asp", ".aspx")
LISTING_MIN_RATIO = 0.8  # of a file's lines that must read as listing (or checksum) lines
LIVE_WALK_MAX = 20_000  # entries examined under a live web root
SHOWN_NAMES = 8


@dataclass(frozen=True)
class Entry:
    path: str
    type: str
    mode: str
    owner: str | None
    grp: str | None
    file: ConfigFile | None  # the listing it came from (None: the live file system)
    line: int | None


def docroots(host: Host) -> list[str]:
    roots = []
    for d in apache.document_roots(host) + nginx.document_roots(host):
        path = d.args[0].strip("\"'").rstrip("/") or "/"
        if path.startswith("/") and path not in roots:
            roots.append(path)
    if host.options.inventory_docroot and host.options.inventory_docroot not in roots:
        roots.append(host.options.inventory_docroot.rstrip("/"))
    return roots


def _listing_entries(host: Host) -> list[Entry]:
    def make(h: Host) -> list[Entry]:
        out: list[Entry] = []
        for rel in extra_files(h):
            cf = h.tree.read(rel)
            if cf is None:
                continue
            entries, problems = parse_listing_lines(cf.numbered())
            if not entries or len(entries) < LISTING_MIN_RATIO * (len(entries) + len(problems)):
                continue
            out += [Entry(e.path, e.type, e.mode, e.owner, e.grp, cf, e.line_no) for e in entries]
        return out
    return host.fact("listing_entries", make)


def _live_entry(host: Host, path: str) -> Entry | None:
    st = host.tree.stat(path)
    if st is None:
        return None
    names = {a.uid: a.name for a in accounts(host).values()}
    gnames = {gid: name for name, (gid, _) in groups(host).items()}
    kind = "dir" if stat_mod.S_ISDIR(st.st_mode) else "file" if stat_mod.S_ISREG(st.st_mode) else "other"
    return Entry(path, kind, stat_mod.filemode(st.st_mode), names.get(st.st_uid, str(st.st_uid)),
                 gnames.get(st.st_gid, str(st.st_gid)), None, None)


def _live_walk(host: Host, root: str) -> list[Entry]:
    out, stack = [], [root]
    while stack and len(out) < LIVE_WALK_MAX:
        d = stack.pop()
        for name in host.tree.listdir(d):
            path = f"{d}/{name}"
            e = _live_entry(host, path)
            if e is None:
                continue
            out.append(e)
            if e.type == "dir":
                stack.append(path)
    return out


def _entries_under(host: Host, root: str) -> list[Entry]:
    if host.tree.live:
        top = _live_entry(host, root)
        return ([top] if top else []) + _live_walk(host, root)
    return [e for e in _listing_entries(host) if e.path == root or e.path.startswith(root + "/")]


def writable_by(host: Host, e: Entry, acc: Account) -> bool:
    mode = e.mode or ""
    if len(mode) < 10:
        return False
    return (e.owner == acc.name and mode[2] == "w") or (e.grp is not None and mode[5] == "w"
                                                         and in_group(host, acc.name, e.grp)) or mode[8] == "w"


def _inventory(host: Host, roots: list[str]) -> set[str]:
    paths: set[str] = set()
    for root in roots:
        paths |= {root + p if p.startswith("/") else f"{root}/{p}" for p in host.options.inventory_web}
    candidates = list(extra_files(host))
    for root in roots:
        par = root.rsplit("/", 1)[0] or "/"
        candidates += [f"{par.strip('/')}/{n}" for n in host.tree.listdir(par)
                       if n.endswith((".sha256", ".sha1", ".md5", ".sums", ".txt")) or "inventory" in n or "sum" in n]
    for rel in dict.fromkeys(candidates):
        if not host.tree.is_file(rel):
            continue
        cf = host.tree.read(rel)
        if cf is None:
            continue
        found, other = [], 0
        for no, text in cf.numbered():
            out = parse_inventory_line(no, text)
            if out is None:
                continue
            if hasattr(out, "hash"):
                found.append(out.path)
            else:
                other += 1
        if found and len(found) >= LISTING_MIN_RATIO * (len(found) + other):
            paths |= set(found)
    return paths


def check(host: Host) -> list[Finding]:
    f = host.finding
    out: list[Finding] = []
    roots = docroots(host)
    if not roots:
        return out
    writers = ftp_accounts(host)
    inventory = _inventory(host, roots)
    for root in roots:
        entries = _entries_under(host, root)
        if not entries:
            homes = [a for a in writers if a.home.rstrip("/") and (root + "/").startswith(a.home.rstrip("/") + "/")]
            if homes:
                a = homes[0]
                out.append(f("webroot.ftp_writable", "medium", "ftp", a.file,
                             f"The web root {root} lies in the FTP account '{a.name}''s home ({a.home})",
                             "What the FTP account uploads there, the web server runs: one guessed password is code "
                             "execution. (No listing of the web root in the evidence shows its owners.)",
                             "Give the web root to root (or a deploy account that cannot log in by FTP) and upload "
                             "elsewhere.", line=a.line, evidence=a.text))
            continue
        dirs = sorted((e for e in entries if e.type == "dir"), key=lambda e: (e.path != root, e.path))
        hit = None
        for e in dirs + [e for e in entries if e.type == "file"]:
            who = next((a for a in writers if writable_by(host, e, a)), None)
            if who is not None:
                hit = (e, who)
                break
        if hit:
            e, who = hit
            what = "the web root" if e.path == root else e.path
            out.append(f("webroot.ftp_writable", "high", "ftp", e.file or e.path,
                         f"The FTP account '{who.name}' can write {what} ({e.mode} {e.owner}:{e.grp})",
                         "Whatever is uploaded by FTP there, the web server runs: the incident's web shells "
                         "arrived exactly this way.",
                         "Give the web root to root (or a deploy account that cannot log in by FTP), mode 755/644, "
                         "and upload to a directory the web server does not serve.", line=e.line))
        else:
            world = next((e for e in dirs if len(e.mode) >= 10 and e.mode[8] == "w"), None)
            if world:
                out.append(f("webroot.world_writable", "high", "hardening", world.file or world.path,
                             f"{world.path} in the web root is writable by every account ({world.mode})",
                             "Any process on the host, the web server included, can drop a script there.",
                             "chmod o-w it.", line=world.line))
        if inventory and any(p.startswith(root + "/") for p in inventory):
            strangers = sorted(e.path for e in entries if e.type == "file" and e.path.lower().endswith(SCRIPT_SUFFIXES)
                               and e.path not in inventory)
            if strangers:
                first = next(e for e in entries if e.path == strangers[0])
                names = ", ".join(p[len(root):] for p in strangers[:SHOWN_NAMES])
                out.append(f("webroot.unknown_scripts", "high", "log_audit", first.file or first.path,
                             f"{len(strangers)} script(s) in {root} are not in the site's inventory: {names}"
                             f"{', …' if len(strangers) > SHOWN_NAMES else ''}",
                             "Scripts nobody deployed are how web shells look on disk; a regular comparison with the "
                             "inventory finds them in days instead of months.",
                             "Preserve them as evidence, remove them, and compare the web root with the inventory "
                             "on a schedule.", line=first.line))
    return out

