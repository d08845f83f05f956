"""Discovery: the evidence paths walked (links never followed, nothing but regular files opened),
every entry met accounted for as a candidate — a file or archive member to read, or one skipped or
unreadable, with why."""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from logsalvage.errors import UsageError
from logsalvage.parsing.formats import FormatSpec, log_formats
from logsalvage.sources.archives import _archive_candidates
from logsalvage.sources.files import file_type
from logsalvage.sources.identify import _classify, _host_from_layout, _kind_from_layout, _with_format
from logsalvage.sources.model import SKIP_LINK, Candidate, Reading

_SKIP_SPECIAL = {stat.S_IFIFO: ("skipped: FIFO, not a regular file, never opened",
                                "opening one blocks until something writes to it"),
                 stat.S_IFSOCK: ("skipped: socket, not a regular file", "a socket holds no stored bytes"),
                 stat.S_IFCHR: ("skipped: device, not a regular file", "a device is not evidence stored in a file"),
                 stat.S_IFBLK: ("skipped: device, not a regular file", "a device is not evidence stored in a file")}


def _link_note(path: Path, root: Path) -> str:
    """Where a link leads, said without following it to read anything (``stat`` opens nothing)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "a loop of links"
        return f"nothing there ({exc.strerror})"
    real = Path(os.path.realpath(path))
    inside = real == root or root in real.parents
    return f"{file_type(st.st_mode)} {'inside' if inside else 'outside'} the evidence tree"


def _skipped_entry(cand: Candidate, st: os.stat_result, root: Path) -> Candidate:
    if stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(cand.path)
        except OSError as exc:
            target = f"<unreadable: {exc.strerror}>"
        return replace(cand, role="skipped", issue=SKIP_LINK,
                       detail=f"symbolic link to {target!r} ({_link_note(cand.path, root)}): not followed — a link "
                              "can lead out of the evidence tree, to a device or into a loop")
    kind = file_type(st.st_mode).removeprefix("a ")
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        kind += f" {os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    issue, why = _SKIP_SPECIAL.get(stat.S_IFMT(st.st_mode), ("skipped: not a regular file", "not a regular file"))
    return replace(cand, role="skipped", issue=issue, detail=f"{kind}: not read — {why}")


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime, timezone.utc)


def _given(given: Path) -> tuple[Path, bool]:
    """What a path given directly stands for: (the path to read, whether it is a single file).

    A directory is walked and a regular file read. A symbolic link given directly is what the user
    named: it is followed when it leads to a regular file or a directory, and what it leads to is
    read as if it had been given (its real path is recorded). Anything else — a FIFO, a socket, a
    device, a link to one of them, a link that leads nowhere or into a loop — is a ``UsageError``:
    it is never opened (opening a FIFO blocks until a writer comes; a device can be endless)."""
    try:
        st = os.lstat(given)
    except OSError as exc:
        raise UsageError(f"evidence path cannot be examined: {given}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(given)
        except OSError as exc:
            why = "a loop of links" if exc.errno == errno.ELOOP else exc.strerror
            raise UsageError(f"evidence path {given} is a symbolic link that leads nowhere ({why})") from None
        given = Path(os.path.realpath(given))
    if stat.S_ISDIR(st.st_mode):
        return given, False
    if stat.S_ISREG(st.st_mode):
        return given, True
    raise UsageError(f"evidence path {given} is {file_type(st.st_mode)}, not a regular file or a directory: "
                     "not read (it is never opened)")


def _walk(root: Path) -> list[tuple[Path, OSError | None]]:
    """Every entry under ``root`` that is not a directory walked, and each directory that could not
    be listed (with why), sorted; links are never followed."""
    out: list[tuple[Path, OSError | None]] = []
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                entries = list(it)
        except OSError as exc:
            out.append((d, exc))
            continue
        for e in entries:
            try:
                is_dir = e.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if is_dir:
                stack.append(Path(e.path))
            else:
                out.append((Path(e.path), None))
    out.sort(key=lambda t: t[0])
    return out


def discover(paths: list[Path], *, host: str | None = None, kind: str | None = None,
             format_id: str | None = None, host_for_path=None,
             specs: list[FormatSpec] | None = None, reading: Reading | None = None) -> list[Candidate]:
    """Everything under ``paths``, classified, in a deterministic order.

    Every entry met is a candidate: a regular file (or archive member) to read, or a ``skipped``
    one (a link, FIFO, socket or device, never opened) or an ``unreadable`` one, each with why.
    See ``_given`` for paths given directly. ``reading``: decompression limits and spool place."""
    specs = specs or log_formats()
    reading = reading or Reading()
    out: list[Candidate] = []
    for given in paths:
        root, single = _given(Path(given))
        base = root.parent if single else root
        for f, walk_error in ([(root, None)] if single else _walk(root)):
            rel = PurePosixPath(f.relative_to(base).as_posix())
            h = host or (host_for_path(str(rel)) if host_for_path else None) or _host_from_layout(root, rel)
            blank = Candidate(f, str(rel), None, 0, None, h, kind or _kind_from_layout(str(rel), None), "unknown",
                              reading=reading)
            if walk_error is not None:
                out.append(replace(blank, role="unreadable",
                                   detail=f"directory cannot be listed ({walk_error.strerror}): "
                                          "what it holds is not read"))
                continue
            try:
                st = f.lstat()
            except OSError as exc:
                out.append(replace(blank, role="unreadable", detail=exc.strerror))
                continue
            cand = replace(blank, size=st.st_size, mtime=_mtime(st), disk=(st.st_size, st.st_mtime_ns))
            if not stat.S_ISREG(st.st_mode):
                out.append(_skipped_entry(cand, st, root))
                continue
            if not os.access(f, os.R_OK):
                out.append(replace(cand, role="unreadable", detail="permission denied"))
                continue
            listed = _archive_candidates(cand, specs, format_id, kind)
            if isinstance(listed, str):
                if listed != "not an archive":
                    out.append(replace(cand, role="unreadable", detail=listed))
                    continue
            else:
                members, problem = listed
                if problem:
                    issue = f"archive read in part: {problem}; the members after the last listed are not read"
                    out.append(replace(cand, role="archive", issue=issue,
                                       detail=f"archive: read member by member; {issue}"))
                else:
                    out.append(replace(cand, role="archive", detail="archive: read member by member"))
                out.extend(members)
                continue
            out.append(_with_format(_classify(cand, specs), format_id))
    return out
