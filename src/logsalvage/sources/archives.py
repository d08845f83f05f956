"""Archive listing: a tar or zip listed once, in archive order, each member a candidate identified
by its position (``member_refs``), its name checked, links and devices recorded, never read as content."""

from __future__ import annotations

import lzma
import os
import stat
import struct
import tarfile
import zipfile
import zlib
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import BinaryIO

from logsalvage.sources.compression import DecompressingStream, GuardedStream, sniff_compression
from logsalvage.sources.files import _open_regular, _pread, _Range
from logsalvage.sources.identify import _classify, _kind_from_layout, _with_format
from logsalvage.sources.members import ZIP_METHODS
from logsalvage.sources.model import SKIP_LINK_MEMBER, SKIP_SPECIAL_MEMBER, Candidate, MemberLoc, ReadProblem
from logsalvage.sources.reading import open_raw

PREFIX_BYTES = 1 << 20  # raw bytes of a streamed member kept to classify it (enough for 64 KiB decompressed)
MAX_MEMBER_SIZE = 64 << 30
MAX_MEMBERS = 100_000


def _safe_member(name: str) -> bool:
    p = PurePosixPath(name)
    return not p.is_absolute() and ".." not in p.parts and "\x00" not in name


def is_archive_name(name: str) -> bool:
    n = name.lower()
    return n.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip"))


def member_refs(names: list[str]) -> list[str]:
    """A unique, readable reference for each member: its name, and for the n-th member of a name
    met before, ``name#n`` (or the next free ``name#k`` when the archive also holds that literally)."""
    taken = set(names)
    seen: dict[str, int] = {}
    used: set[str] = set()
    out = []
    for name in names:
        seen[name] = k = seen.get(name, 0) + 1
        ref = name
        if k > 1:
            ref = f"{name}#{k}"
            while ref in taken or ref in used:
                k += 1
                ref = f"{name}#{k}"
        used.add(ref)
        out.append(ref)
    return out


def _tar_mtime(m: tarfile.TarInfo) -> datetime | None:
    try:
        return datetime.fromtimestamp(m.mtime, timezone.utc)
    except (OverflowError, OSError, ValueError, TypeError):
        return None


def _tar_member(cand: Candidate, index: int, m: tarfile.TarInfo, container: str | None, prefix: bytes | None,
                specs, format_id, kind) -> Candidate:
    """One tar entry as a candidate (its reference, ``member``, is set once the whole listing is known)."""
    loc = MemberLoc("tar", index, m.name, m.offset_data, container, sparse=m.sparse is not None)
    mcand = replace(cand, member=m.name, size=m.size, mtime=_tar_mtime(m), loc=loc, role="unknown",
                    kind=kind or _kind_from_layout(cand.rel, m.name), detail=None, issue=None)
    if not _safe_member(m.name):
        return replace(mcand, role="unreadable", detail="unsafe member name (absolute or '..')")
    if m.issym():
        return replace(mcand, role="skipped", size=0, issue=SKIP_LINK_MEMBER,
                       detail=f"symbolic link member to {m.linkname!r}: not content, not followed")
    if m.islnk():
        return replace(mcand, role="skipped", size=0, issue=SKIP_LINK_MEMBER,
                       detail=f"hard link member to {m.linkname!r}: not content (the member it names is read "
                              "as itself)")
    if not m.isreg():
        what = {tarfile.CHRTYPE: "character device", tarfile.BLKTYPE: "block device",
                tarfile.FIFOTYPE: "FIFO"}.get(m.type, f"entry of type {m.type!r}")
        return replace(mcand, role="skipped", size=0, issue=SKIP_SPECIAL_MEMBER,
                       detail=f"{what} member: no content, not read")
    if m.size > MAX_MEMBER_SIZE:
        return replace(mcand, role="unreadable", detail=f"member larger than {MAX_MEMBER_SIZE} bytes")
    return _with_format(_classify(mcand, specs, prefix), format_id)


def _tar_candidates(cand: Candidate, container: str | None, specs, format_id, kind) -> tuple[list, str | None] | str:
    """Every entry of a tar, listed and classified in one pass (a compressed tar is streamed: each
    member is classified from its first bytes as the stream passes, nothing is kept of it), and why
    the listing ended early; or "not an archive"."""
    names: list[str] = []
    out: list[Candidate] = []
    problem = None
    with _open_regular(cand.path) as fh:
        size = cand.disk[0] if cand.disk else os.fstat(fh.fileno()).st_size
        try:
            if container:
                raw = _Range(_pread(fh.fileno()), 0, size, "the archive is shorter than when it was found")
                stream = GuardedStream(DecompressingStream(raw, container, cand.reading.limits, unit="archive"),
                                       cand.display)
                tf = tarfile.open(fileobj=stream, mode="r|", bufsize=1 << 20)
            else:
                tf = tarfile.open(fileobj=fh, mode="r:")
        except (tarfile.TarError, ReadProblem, OSError, EOFError):
            return "not an archive"
        while True:
            if len(names) >= MAX_MEMBERS:
                problem = f"more than {MAX_MEMBERS} members: the rest are not listed"
                break
            try:
                m = tf.next()
            except (tarfile.TarError, ReadProblem, OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
                problem = str(exc)
                break
            if m is None:
                break
            index = len(names)
            names.append(m.name)
            if m.isdir():
                continue
            prefix = None
            if container and m.isreg() and _safe_member(m.name):
                try:
                    ex = tf.extractfile(m)
                    prefix = ex.read(min(m.size, PREFIX_BYTES)) if ex is not None else b""
                except (tarfile.TarError, ReadProblem, OSError, EOFError) as exc:
                    prefix, problem = b"", str(exc)
            out.append(_tar_member(cand, index, m, container, prefix, specs, format_id, kind))
            if problem:
                break
    refs = member_refs(names)
    return [replace(c, member=refs[c.loc.index]) for c in out], problem


def _zip_is_link(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def _zip_candidates(cand: Candidate, fh: BinaryIO, specs, format_id, kind) -> tuple[list, str | None] | str:
    try:
        zf = zipfile.ZipFile(fh)
        infos = zf.infolist()
        directory = zf.start_dir
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, struct.error) as exc:
        return f"archive unreadable: {exc}"
    problem = None
    if len(infos) > MAX_MEMBERS:
        infos, problem = infos[:MAX_MEMBERS], f"more than {MAX_MEMBERS} members: the rest are not listed"
    starts = sorted({i.header_offset for i in infos} | {directory})
    next_start = {s: starts[k + 1] if k + 1 < len(starts) else None for k, s in enumerate(starts)}
    refs = member_refs([i.filename for i in infos])
    out = []
    for index, (info, ref) in enumerate(zip(infos, refs)):
        if info.is_dir():
            continue
        loc = MemberLoc("zip", index, info.filename, info.header_offset, method=info.compress_type,
                        csize=info.compress_size, crc=info.CRC, end=next_start.get(info.header_offset))
        mcand = replace(cand, member=ref, size=info.file_size, loc=loc, role="unknown", detail=None, issue=None,
                        mtime=_zip_mtime(info), kind=kind or _kind_from_layout(cand.rel, ref),
                        content_time=_zip_wall_clock(info), content_time_basis="zip header, local time")
        if not _safe_member(info.filename):
            out.append(replace(mcand, role="unreadable", detail="unsafe member name (absolute or '..')"))
        elif info.flag_bits & 0x1:
            out.append(replace(mcand, role="unreadable", detail="encrypted member: not readable without its password"))
        elif info.compress_type not in ZIP_METHODS:
            out.append(replace(mcand, role="unreadable",
                               detail=f"zip compression method {info.compress_type} not supported"))
        elif _zip_is_link(info):
            try:
                with open_raw(mcand) as link:
                    target = link.read(4096).decode("utf-8", "backslashreplace")
            except (OSError, ReadProblem) as exc:
                target = f"<unreadable: {exc}>"
            out.append(replace(mcand, role="skipped", issue=SKIP_LINK_MEMBER,
                               detail=f"symbolic link member to {target!r}: not content, not followed"))
        elif info.file_size > MAX_MEMBER_SIZE:
            out.append(replace(mcand, role="unreadable", detail=f"member larger than {MAX_MEMBER_SIZE} bytes"))
        else:
            out.append(_with_format(_classify(mcand, specs), format_id))
    return out, problem


def _zip_wall_clock(info: zipfile.ZipInfo) -> datetime | None:
    """A zip member's DOS time as written: the zipping machine's wall clock, no zone."""
    try:
        return datetime(*info.date_time)
    except (ValueError, TypeError):
        return None


def _zip_mtime(info: zipfile.ZipInfo) -> datetime | None:
    try:
        return datetime(*info.date_time, tzinfo=timezone.utc)
    except (ValueError, TypeError):
        return None


def _archive_candidates(cand: Candidate, specs, format_id, kind) -> tuple[list, str | None] | str:
    """The members of a tar or zip archive as candidates (in archive order) and why the listing
    ended early, or the reason it cannot be listed ("not an archive": read it as a file)."""
    try:
        with _open_regular(cand.path) as fh:
            magic = os.pread(fh.fileno(), 8, 0)
            # a zip begins with a member (or is an empty zip): its end record alone proves nothing,
            # and 22 bytes appended to a log must not turn the log into an empty archive
            if magic.startswith((b"PK\x03\x04", b"PK\x05\x06")) and zipfile.is_zipfile(fh):
                return _zip_candidates(cand, fh, specs, format_id, kind)
        if not is_archive_name(cand.path.name):
            return "not an archive"
        return _tar_candidates(cand, sniff_compression(magic), specs, format_id, kind)
    except (OSError, ReadProblem) as exc:
        return f"archive unreadable: {exc}"
