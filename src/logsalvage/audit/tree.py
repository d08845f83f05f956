"""Read-only access to one system's file tree: an evidence folder laid out as ``<host>/etc/...``,
a mounted image, or a live system's ``/``.

The tree is read as that system would see it: a symbolic link is followed only inside the tree,
an absolute target taken from the tree's own root (``/etc/nginx/sites-enabled/default ->
/etc/nginx/sites-available/default`` inside an evidence copy means the copy's file, never the
analyst's), ``..`` never climbs above the root. Nothing but regular files is opened (the project's
``_open_regular``: no FIFO, device or socket, ``O_NOFOLLOW``), nothing is written, and what could
not be read is noted with why.
"""

from __future__ import annotations

import gzip
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path

from logsalvage.errors import UsageError
from logsalvage.sources.discovery import _given
from logsalvage.sources.files import _open_regular, file_type
from logsalvage.sources.model import ReadProblem

MAX_FILE = 16 << 20  # bytes read from one file (configs are small; a schema dump or package list may not be)
MAX_LINKS = 40  # link hops while resolving one path (the kernel's limit)
MAX_LISTED = 20_000  # entries read from one directory
SYSTEM_MARKERS = ("etc", "var")  # a directory holding one of these is a system's root
SEARCH_DEPTH = 3  # how deep below a given path system roots are looked for


@dataclass(frozen=True)
class ConfigFile:
    """The text of one file of a system tree, split into lines (line ``n`` is ``lines[n - 1]``)."""

    rel: str  # path from the system's root, without a leading slash: "etc/vsftpd/vsftpd.conf"
    shown: str  # how the audit names it: "web01/etc/vsftpd/vsftpd.conf", or "/etc/vsftpd.conf" on a live system
    lines: tuple[str, ...]
    truncated: bool = False

    def numbered(self):
        """(line number, text) of every line."""
        return enumerate(self.lines, 1)


class SystemTree:
    """One system's root: reads files and lists directories inside it, never outside."""

    def __init__(self, root: Path, host: str, shown_prefix: str, *, live: bool):
        self.root = Path(root)
        self.host = host
        self.shown_prefix = shown_prefix  # "web01/" for an evidence folder, "/" for a live or mounted root
        self.live = live  # the tree is a real file system (owners and modes are the system's own)
        self.notes: list[str] = []  # what could not be read, and why
        self.read_files: list[str] = []
        self._cache: dict[str, ConfigFile | None] = {}

    def shown(self, rel: str) -> str:
        return self.shown_prefix + rel.strip("/")

    # -- resolution ------------------------------------------------------------------------------
    def resolve(self, rel: str) -> Path | None:
        """The real path of ``rel`` inside the tree (links resolved as the system would, never
        leaving it), or None when it does not exist, loops, or passes through a non-directory (or
        is no path at all: a NUL byte in a name a configuration gave)."""
        if "\x00" in rel:
            return None
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        done: list[str] = []
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == "..":
                if done:
                    done.pop()
                continue
            cur = self.root.joinpath(*done, name)
            try:
                st = os.lstat(cur)
            except OSError:
                return None
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_LINKS:
                    self.notes.append(f"{self.shown('/'.join(done + [name]))}: a loop of links, not followed")
                    return None
                try:
                    target = os.readlink(cur)
                except OSError:
                    return None
                if "\x00" in target:
                    return None
                if target.startswith("/"):
                    done = []  # the system's own root, not the analyst's
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                continue
            if parts and not stat.S_ISDIR(st.st_mode):
                return None
            done.append(name)
        return self.root.joinpath(*done)

    def stat(self, rel: str) -> os.stat_result | None:
        path = self.resolve(rel)
        if path is None:
            return None
        try:
            return os.lstat(path)
        except OSError:
            return None

    def is_dir(self, rel: str) -> bool:
        st = self.stat(rel)
        return st is not None and stat.S_ISDIR(st.st_mode)

    def is_file(self, rel: str) -> bool:
        st = self.stat(rel)
        return st is not None and stat.S_ISREG(st.st_mode)

    def exists(self, rel: str) -> bool:
        return self.stat(rel) is not None

    # -- listing ---------------------------------------------------------------------------------
    def listdir(self, rel: str) -> list[str]:
        """Names in the directory ``rel`` (sorted; empty when it is not a directory of the tree)."""
        path = self.resolve(rel)
        if path is None:
            return []
        try:
            if not stat.S_ISDIR(os.lstat(path).st_mode):
                return []
            with os.scandir(path) as it:
                names = []
                for entry in it:
                    names.append(entry.name)
                    if len(names) >= MAX_LISTED:
                        self.notes.append(f"{self.shown(rel)}: more than {MAX_LISTED} entries, the rest not read")
                        break
        except OSError as exc:
            self.notes.append(f"{self.shown(rel)}: cannot be listed ({exc.strerror})")
            return []
        return sorted(names)

    def glob(self, pattern: str) -> list[str]:
        """Paths matching ``pattern`` (components may hold one ``*``; no other wildcard), sorted."""
        found = [""]
        for part in [p for p in pattern.split("/") if p]:
            nxt = []
            for base in found:
                if "*" in part:
                    for name in self.listdir(base or "."):
                        if name_matches(part, name):
                            nxt.append(f"{base}/{name}" if base else name)
                else:
                    cand = f"{base}/{part}" if base else part
                    if self.exists(cand):
                        nxt.append(cand)
            found = nxt
        return sorted(found)

    def files(self, pattern: str) -> list[str]:
        return [p for p in self.glob(pattern) if self.is_file(p)]

    # -- reading ---------------------------------------------------------------------------------
    def read(self, rel: str, *, limit: int = MAX_FILE) -> ConfigFile | None:
        """The text of a regular file of the tree (``.gz`` decompressed, at most ``limit`` bytes),
        or None when it is not there or cannot be read (noted)."""
        rel = rel.strip("/")
        if rel in self._cache:
            return self._cache[rel]
        self._cache[rel] = out = self._read(rel, limit)
        return out

    def _read(self, rel: str, limit: int) -> ConfigFile | None:
        path = self.resolve(rel)
        if path is None:
            return None
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                if not stat.S_ISDIR(st.st_mode):
                    self.notes.append(f"{self.shown(rel)}: {file_type(st.st_mode)}, not opened")
                return None
            with _open_regular(path) as fh:
                if rel.endswith(".gz"):
                    with gzip.GzipFile(fileobj=fh) as gz:
                        data = gz.read(limit + 1)
                else:
                    data = fh.read(limit + 1)
        except (OSError, ReadProblem, EOFError, gzip.BadGzipFile) as exc:
            self.notes.append(f"{self.shown(rel)}: not read ({getattr(exc, 'strerror', None) or exc})")
            return None
        truncated = len(data) > limit
        if truncated:
            data = data[:limit]
            self.notes.append(f"{self.shown(rel)}: larger than {limit >> 20} MiB, only the first part read")
        self.read_files.append(self.shown(rel))
        text = data.decode("utf-8", "backslashreplace")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return ConfigFile(rel, self.shown(rel), tuple(line.rstrip("\r") for line in lines), truncated)

    def newest_mtime(self, rels: list[str]) -> float | None:
        """The latest modification time of the entries directly in the directories ``rels``."""
        best = None
        for rel in rels:
            path = self.resolve(rel)
            if path is None:
                continue
            try:
                with os.scandir(path) as it:
                    for entry in it:
                        try:
                            t = entry.stat(follow_symlinks=False).st_mtime
                        except OSError:
                            continue
                        best = t if best is None or t > best else best
            except OSError:
                continue
        return best


def name_matches(pattern: str, name: str) -> bool:
    """A file name against a pattern with at most one ``*`` (no regular expression involved)."""
    if "*" not in pattern:
        return pattern == name
    head, _, tail = pattern.partition("*")
    return len(name) >= len(head) + len(tail) and name.startswith(head) and name.endswith(tail)


def _is_system_root(d: Path) -> bool:
    for marker in SYSTEM_MARKERS:
        try:
            if stat.S_ISDIR(os.lstat(d / marker).st_mode):
                return True
        except OSError:
            continue
    return False


def _hostname_of(root: Path) -> str | None:
    tree = SystemTree(root, "", "/", live=True)
    cf = tree.read("etc/hostname", limit=4096)
    if cf:
        for line in cf.lines:
            name = line.split("#", 1)[0].strip()
            if name:
                return name.split(".", 1)[0]
    return None


def find_systems(paths: list[Path], host_for=None) -> list[SystemTree]:
    """The system trees under the given paths: a path that is a system's root (it holds ``etc/`` or
    ``var/``) is one; otherwise the directories below it that are (to ``SEARCH_DEPTH`` levels;
    links never followed), each named as the evidence layout names hosts (the directory's name,
    or ``host_for`` from the case config). A live or mounted root is named by its ``etc/hostname``.
    Raises ``UsageError`` for a path that cannot be audited."""
    out: list[SystemTree] = []
    for given in paths:
        root, single = _given(Path(given))
        if single:
            raise UsageError(f"audit reads a directory tree (an evidence folder, a mounted image or /), not a file: "
                             f"{given}")
        found = _roots(root)
        if not found:
            raise UsageError(f"no system tree under {given}: neither it nor a directory below it holds etc/ or var/")
        for d in found:
            live = d == Path("/") or os.path.ismount(d)
            rel = d.relative_to(root).as_posix() if d != root else ""
            name = (host_for(f"{rel}/etc") if host_for and rel else None)
            if name is None:
                name = (_hostname_of(d) or (socket.gethostname().split(".", 1)[0] if d == Path("/") else None)) \
                    if live else None
            name = name or d.name or "localhost"
            # a system given as the path is named by its own paths (/etc/...); one found below the
            # path by where it lies, as ingest names evidence (web01/etc/...)
            prefix = f"{rel}/" if rel else "/"
            out.append(SystemTree(d, name, prefix, live=live))
    return out


def _roots(root: Path) -> list[Path]:
    if _is_system_root(root):
        return [root]
    found: list[Path] = []
    level = [root]
    for _ in range(SEARCH_DEPTH):
        nxt = []
        for d in level:
            try:
                with os.scandir(d) as it:
                    children = sorted(Path(e.path) for e in it if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            for c in children:
                (found if _is_system_root(c) else nxt).append(c)
        level = nxt
    return sorted(found)
