"""The evidence model: what discovery finds (``Candidate``; an archive member's ``MemberLoc``), how
it is read (``Reading``), what stops a reading (``ReadProblem``), and the issues of skipped entries."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path, PurePosixPath

from logsalvage.config import DecompressionLimits

_ROTATED_DATE = re.compile(r"[-_.](\d{4})-?(\d\d)-?(\d\d)(?:[-_.]\d+)?(?:\.(?:gz|bz2|xz|Z|zip))?$")

# the issues recorded for entries that are accounted for but never read (see ``discovery`` and ``archives``)
SKIP_LINK = "skipped: symbolic link, not followed"
SKIP_LINK_MEMBER = "skipped: link member of an archive, not content"
SKIP_SPECIAL_MEMBER = "skipped: device or FIFO member of an archive, no content"


class ReadProblem(Exception):
    """Raised inside reading when the stored bytes end early or are corrupt."""

    def __init__(self, message: str, offset: int | None = None):
        super().__init__(message)
        self.offset = offset  # decompressed bytes delivered before the problem


@dataclass(frozen=True)
class Reading:
    """How a candidate is read: the decompression limits (case config) and where a compressed
    tar may be spooled (the case directory; the system's temporary directory when it is not there
    yet). Travels with each candidate, so a worker reads it as the ingest decided."""

    limits: DecompressionLimits = DecompressionLimits()
    spool_dir: str | None = None


@dataclass(frozen=True)
class MemberLoc:
    """Where an archive member's bytes are: found by position, never by name."""

    archive: str  # "tar" | "zip"
    index: int  # position among all the archive's entries (0-based)
    name: str  # the name stored in the archive (several members may share it)
    offset: int  # tar: first data byte in the (decompressed) tar; zip: its local header
    container: str | None = None  # a compressed tar's compression (gz, bz2, xz): read through the spool
    sparse: bool = False  # a GNU sparse tar member: read through tarfile
    method: int = 0  # zip: compression method
    csize: int = 0  # zip: compressed size
    crc: int = 0  # zip: CRC-32 of the content
    end: int | None = None  # zip: where the next member (or the directory) begins


@dataclass(frozen=True)
class Candidate:
    """One thing found under an evidence path: a log, a config, an image, or something unknown."""

    path: Path  # the file on disk (the archive for a member)
    rel: str  # path relative to the evidence root (POSIX form)
    member: str | None  # an archive member's reference: its name, ``name#n`` for the n-th of that name
    size: int
    mtime: datetime | None
    host: str | None
    kind: str  # live | backup | salvage
    role: str  # log | config | image | archive | unknown | unreadable | skipped
    compression: str | None = None
    format_id: str | None = None
    config_kind: str | None = None
    detail: str | None = None
    loc: MemberLoc | None = None
    disk: tuple[int, int] | None = None  # (size, mtime in ns) of the file on disk when found
    issue: str | None = None  # what the responder must be told about this input (recorded as an issue)
    # when the content was last written, where the container says so better than ``mtime``: a gzip
    # header's MTIME, a zip member's DOS time (wall-clock time, no zone: naive) — and which it is
    content_time: datetime | None = None
    content_time_basis: str | None = None
    reading: Reading = field(default=Reading(), compare=False)

    @property
    def display(self) -> str:
        return f"{self.rel}!{self.member}" if self.member else self.rel

    @property
    def name(self) -> str:
        if self.loc is not None:
            return PurePosixPath(self.loc.name).name
        return PurePosixPath(self.member).name if self.member else self.path.name

    @property
    def rotation_date(self) -> date | None:
        m = _ROTATED_DATE.search(self.name)
        if not m:
            return None
        try:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        except ValueError:
            return None
