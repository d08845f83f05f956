"""File-system triage detectors over ``file_listing`` and ``file_inventory`` (ls listings,
bodyfiles and checksum inventories found in the evidence).

- ``fs.hidden_dir``: a dot-directory under a world-writable or unusual parent (/tmp, /var/tmp,
  /dev/shm, /usr/local/src, web roots); high when it holds executables.
- ``fs.same_second_unpack``: several files of one directory in an unusual place changed within the
  same second — an archive unpacked by a script, not files written by a person. ctime is used where
  the evidence has it (tar restores mtimes from the archive; the ctime is when the unpacking
  happened), else mtime. In a hidden directory this is the ``hidden_dir_unpacked`` milestone.
- ``fs.ioc_hash``: an inventory hash among the case config's ``iocs.sha256``.
- ``fs.executable_in_web_dir``: executables (an x bit, or a known malware name) in places the web
  server can write: the docroot, /tmp and friends, world-writable directories, directories owned
  by the web server's account.

``web_inventory_paths`` gives the web-shell detector the legitimate URL paths of a site.
"""

from __future__ import annotations

import posixpath
from datetime import datetime, timedelta, timezone

from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone

MIN_SAME_SECOND = 3  # files changed in one second before it looks like an unpack, not a person
UNUSUAL_ROOTS = ("/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/usr/local/src", "/var/www", "/var/lib/php",
                 "/srv/www", "/usr/share/nginx/html")
WEB_WRITABLE_ROOTS = ("/tmp", "/var/tmp", "/dev/shm", "/run/shm", "/var/lib/php", "/var/www")
WEB_USERS = frozenset({"nobody", "apache", "www-data", "www", "httpd", "nginx", "wwwrun", "daemon"})
# dot-directories every Linux /tmp has (X11 and ICE sockets), and version control: reported only
# when they hold executables
BENIGN_HIDDEN = frozenset({".X11-unix", ".ICE-unix", ".font-unix", ".XIM-unix", ".Test-unix",
                           ".git", ".svn", ".hg", ".bzr"})
# what builds leave in source trees (libtool puts executables in .libs): reported only under a
# world-writable parent
BUILD_HIDDEN = frozenset({".libs", ".deps"})
# scripts a site may legitimately keep executable in its docroot (CGI)
SCRIPT_SUFFIXES = (".cgi", ".pl", ".php", ".py", ".sh", ".rb", ".fcgi")
KNOWN_MALWARE_NAMES = frozenset({"xmrig", "xmr-stak", "minerd", "cpuminer", "kinsing", "kdevtmpfsi", "kworkerds",
                                 "watchbog", "tsunami", "kaiten", "mirai", "gafgyt", "bashlite", "dbused",
                                 "sysupdate", "networkservice", "sysguard", "ddgs", "qW3xT", "libprocesshider.so"})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# any execute bit of an ls-style mode string
_EXEC_SQL = ("(substr(mode, 4, 1) IN ('x', 's') OR substr(mode, 7, 1) IN ('x', 's') "
             "OR substr(mode, 10, 1) IN ('x', 't'))")


def _t(us: int | None) -> datetime | None:
    return None if us is None else _EPOCH + timedelta(microseconds=int(us))


def _has_table(ctx: Context, name: str) -> bool:
    return bool(ctx.query("SELECT 1 FROM information_schema.tables WHERE table_name = ?", [name]))


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _hidden_parts(path: str) -> list[str]:
    """Each dot-directory along ``path`` (``/a/.b/c/.d`` -> ``/a/.b``, ``/a/.b/c/.d``)."""
    out, parts = [], path.split("/")
    for i, part in enumerate(parts):
        if part.startswith(".") and part not in (".", ".."):
            out.append("/".join(parts[:i + 1]) or "/")
    return out


class _Dirs:
    """What the listings of one host say about directories: mode and owner by path."""

    def __init__(self, ctx: Context, host: str):
        self.info: dict[str, tuple[str | None, str | None, str | None]] = {}
        for path, mode, owner, grp in ctx.query(
                "SELECT DISTINCT path, mode, owner, grp FROM file_listing WHERE host = ? AND type = 'dir' "
                "ORDER BY 1, 2, 3, 4", [host]):
            self.info.setdefault(path, (mode, owner, grp))

    def world_writable(self, path: str) -> bool:
        mode = self.info.get(path, (None,))[0]
        return bool(mode) and len(mode) >= 10 and mode[8] == "w"

    def web_writable(self, path: str) -> bool:
        mode, owner, grp = self.info.get(path, (None, None, None))
        if not mode or len(mode) < 10:
            return False
        return mode[8] == "w" or (owner in WEB_USERS and mode[2] == "w") or (grp in WEB_USERS and mode[5] == "w")


def _place_reasons(place: str, ctx: Context, dirs: _Dirs) -> list[str]:
    """Why ``place`` is an unusual directory to find things in (empty: an ordinary place)."""
    why = []
    roots = (*UNUSUAL_ROOTS, ctx.settings.docroot)
    inside = [r for r in roots if _under(place, (r,))]
    if inside:
        why.append(f"under {inside[0]}")
    writable = [p for p in _ancestors(place) if dirs.world_writable(p)]
    if writable:
        why.append(f"world-writable {'parent ' if writable[0] != place else ''}{writable[0]}")
    return why


def _ancestors(path: str) -> list[str]:
    """``path`` and its parents, nearest first."""
    out = []
    while path and path not in out:
        out.append(path)
        if path in ("/", "."):
            break
        path = posixpath.dirname(path)
    return out


def detect(ctx: Context) -> list[Finding | Milestone]:
    out: list = []
    if _has_table(ctx, "file_listing"):
        for (host,) in ctx.query("SELECT DISTINCT host FROM file_listing ORDER BY 1"):
            dirs = _Dirs(ctx, host)
            out += _hidden_dirs(ctx, host, dirs)
            out += _same_second(ctx, host, dirs)
            out += _executables_in_web_dirs(ctx, host, dirs)
    if _has_table(ctx, "file_inventory"):
        out += _ioc_hashes(ctx)
    return out


# -- fs.hidden_dir ---------------------------------------------------------------------------------
def _hidden_dirs(ctx: Context, host: str, dirs: _Dirs) -> list[Finding]:
    places = ctx.query("""
        SELECT DISTINCT directory FROM file_listing WHERE host = ? AND directory IS NOT NULL
        UNION SELECT DISTINCT path FROM file_listing WHERE host = ? AND type = 'dir' ORDER BY 1""", [host, host])
    hidden = sorted({h for (p,) in places for h in _hidden_parts(p)})
    out = []
    for path in hidden:
        why = _place_reasons(posixpath.dirname(path), ctx, dirs)
        if not why:
            continue
        inside = ctx.query(f"""
            SELECT count(DISTINCT path) FILTER (WHERE name NOT IN ('.', '..') AND path <> ?),
                   list(DISTINCT path ORDER BY path) FILTER (WHERE type = 'file' AND {_EXEC_SQL}),
                   min(epoch_us(time)), max(epoch_us(time))
            FROM file_listing
            WHERE host = ? AND name <> '..' AND (path = ? OR starts_with(path, ? || '/'))""",
                           [path, host, path, path])[0]
        entries, executables, first, last = inside[0], inside[1] or [], _t(inside[2]), _t(inside[3])
        if posixpath.basename(path) in BENIGN_HIDDEN and not executables:
            continue
        if posixpath.basename(path) in BUILD_HIDDEN and not any(w.startswith("world-writable") for w in why):
            continue
        mode = dirs.info.get(path, (None, None, None))
        out.append(Finding(
            "fs.hidden_dir", f"Hidden directory {path}" + (f" holding {len(executables)} executable(s)"
                                                           if executables else ""),
            "high" if executables else "medium", host, first or _EPOCH, last or first or _EPOCH, max(entries, 1),
            detail={"key": path, "path": path, "why": why, "mode": mode[0], "owner": mode[1],
                    "entries": entries, "executables": executables[:100],
                    **({} if first else {"time": "no time of the directory or its contents in the listings"})}))
    return out


# -- fs.same_second_unpack + hidden_dir_unpacked ---------------------------------------------------
def _same_second(ctx: Context, host: str, dirs: _Dirs) -> list:
    groups = ctx.query(f"""
        WITH e AS (
          SELECT DISTINCT directory, name, type, mode, time_kind, epoch_us(time) AS us FROM file_listing
          WHERE host = ? AND time IS NOT NULL AND time_precision IN ('s', 'ns') AND time_kind IN ('ctime', 'mtime')
            AND directory IS NOT NULL AND name NOT IN ('.', '..')),
        pref AS (SELECT directory, CASE WHEN bool_or(time_kind = 'ctime') THEN 'ctime' ELSE 'mtime' END AS kind
                 FROM e GROUP BY directory)
        SELECT e.directory, e.time_kind, e.us // 1000000 AS sec, count(DISTINCT e.name) AS n,
               list(DISTINCT e.name ORDER BY e.name), min(e.us), max(e.us),
               count(DISTINCT e.name) FILTER (WHERE e.type = 'file' AND {_EXEC_SQL})
        FROM e JOIN pref ON pref.directory = e.directory AND pref.kind = e.time_kind
        GROUP BY e.directory, e.time_kind, sec HAVING count(DISTINCT e.name) >= ?
        ORDER BY e.directory, sec""", [host, MIN_SAME_SECOND])
    out: list = []
    best: dict[str, tuple] = {}
    zone = ctx.zone(host)
    for directory, kind, sec, n, names, first, last, n_exec in groups:
        hidden = bool(_hidden_parts(directory))
        why = (["hidden directory"] if hidden else []) + _place_reasons(directory, ctx, dirs)
        if dirs.web_writable(directory):
            why.append("writable by the web server's account")
        if not why:
            continue  # package installs fill ordinary directories in one second too
        second = datetime.fromtimestamp(int(sec), timezone.utc)
        out.append(Finding(
            "fs.same_second_unpack", f"{n} files in {directory} changed within one second ({kind})",
            "high" if hidden or n_exec else "medium", host, _t(first), _t(last), n,
            detail={"key": f"{directory}@{int(sec)}", "path": directory, "time_kind": kind,
                    "second": second.astimezone(zone).isoformat(), "files": names[:200], "executables": n_exec,
                    "why": why}))
        if hidden and (directory not in best or n > best[directory][0]):
            best[directory] = (n, second)
    for directory, (_, second) in sorted(best.items()):
        out.append(Milestone("hidden_dir_unpacked", second.astimezone(zone), host, {"path": directory}))
    return out


# -- fs.executable_in_web_dir ----------------------------------------------------------------------
def _executables_in_web_dirs(ctx: Context, host: str, dirs: _Dirs) -> list[Finding]:
    names = ", ".join("'" + n.replace("'", "''") + "'" for n in sorted(KNOWN_MALWARE_NAMES))
    rows = ctx.query(f"""
        SELECT directory, path, name, mode, min(epoch_us(time)), max(epoch_us(time)),
               {_EXEC_SQL} AS x
        FROM file_listing
        WHERE host = ? AND type = 'file' AND directory IS NOT NULL
          AND ({_EXEC_SQL} OR name IN ({names}) OR regexp_matches(name, '\\.so(\\.\\d+)*$|\\.elf$'))
        GROUP BY ALL ORDER BY directory, path""", [host])
    web_roots = (*WEB_WRITABLE_ROOTS, ctx.settings.docroot)
    by_dir: dict[str, list] = {}
    for row in rows:
        directory = row[0]
        if _under(directory, web_roots) or dirs.web_writable(directory):
            by_dir.setdefault(directory, []).append(row)
    out = []
    for directory, hits in sorted(by_dir.items()):
        paths = sorted({r[1] for r in hits})
        firsts = [r[4] for r in hits if r[4] is not None]
        lasts = [r[5] for r in hits if r[5] is not None]
        why = [f"under {r}" for r in web_roots if _under(directory, (r,))][:1]
        if dirs.web_writable(directory):
            mode, owner, _ = dirs.info[directory]
            why.append(f"directory {mode} owned by {owner}")
        first = _t(min(firsts)) if firsts else _EPOCH
        # executable scripts in the docroot may be CGI; anything else there, or anywhere else, is not
        cgi_like = all(_under(r[1], (ctx.settings.docroot,)) and r[2].endswith(SCRIPT_SUFFIXES) and r[6]
                       for r in hits) and not dirs.web_writable(directory)
        out.append(Finding(
            "fs.executable_in_web_dir", f"{len(paths)} executable(s) in web-writable {directory}",
            "medium" if cgi_like else "high", host,
            first, _t(max(lasts)) if lasts else first, len(paths),
            detail={"key": directory, "path": directory, "executables": paths[:200], "why": why,
                    "by_name": sorted({r[1] for r in hits if not r[6]})}))
    return out


# -- fs.ioc_hash -----------------------------------------------------------------------------------
def _ioc_hashes(ctx: Context) -> list[Finding]:
    iocs = sorted(ctx.settings.ioc_sha256)
    if not iocs:
        return []
    rows = ctx.query("""
        SELECT i.host, i.path, i.hash, min(i.input_path), min(epoch_us(l.time)) FILTER (WHERE l.time_kind = 'mtime'),
               min(epoch_us(l.time)), min(epoch_us(i.input_mtime))
        FROM file_inventory i LEFT JOIN file_listing l ON l.host = i.host AND l.path = i.path
        WHERE i.hash_type = 'sha256' AND list_contains(?, i.hash)
        GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""", [iocs])
    out = []
    for host, path, digest, inventory, mtime, any_time, listed in rows:
        us, basis = ((mtime, "modification time in a listing") if mtime is not None else
                     (any_time, "a time of the file in a listing") if any_time is not None else
                     (listed, "modification time of the inventory file (when it was made)"))
        t = _t(us) or _EPOCH
        out.append(Finding("fs.ioc_hash", f"File with a known-bad SHA-256: {path}", "high", host, t, t, 1,
                           detail={"key": f"{path}:{digest}", "path": path, "sha256": digest, "inventory": inventory,
                                   "time_basis": basis}))
    return out


# -- for the web-shell detector --------------------------------------------------------------------
def web_inventory_paths(ctx: Context, host: str) -> set[str] | None:
    """The legitimate URL paths of ``host``'s site: the case config's ``inventory.web`` if given,
    else the checksum-inventory paths under the docroot (``/var/www/html/index.php`` ->
    ``/index.php``); None when there is no inventory at all."""
    if ctx.settings.web_inventory is not None:
        return set(ctx.settings.web_inventory)
    if not _has_table(ctx, "file_inventory"):
        return None
    rows = ctx.query("SELECT DISTINCT path FROM file_inventory WHERE host = ? ORDER BY 1", [host])
    if not rows:
        return None
    docroot = ctx.settings.docroot.rstrip("/") or "/"
    relative_root = docroot.lstrip("/") + "/"
    out = set()
    for (path,) in rows:
        if path.startswith("/"):
            if _under(path, (docroot,)) and path != docroot:
                out.add("/" + posixpath.normpath(path[len(docroot):]).lstrip("/"))
        else:  # 'sha256sum' run inside the docroot ('./index.php'), or from / ('var/www/html/…')
            rel = posixpath.normpath(path)
            if rel.startswith(relative_root):
                rel = rel[len(relative_root):]
            if not rel.startswith(".."):
                out.add("/" + rel.lstrip("/"))
    return out
