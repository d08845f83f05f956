"""Identification: what a file or member is (log and its format, config, image, inventory, listing,
unknown) from its name where that is decisive, else its first bytes; its host and kind from where
it lies in the evidence."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from contextlib import nullcontext
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from logsalvage.errors import ConfigError
from logsalvage.parsing.apache_logformat import compile_logformat
from logsalvage.parsing.binary import identify_binary
from logsalvage.parsing.dialect import DialectError, compile_shared
from logsalvage.parsing.formats import FormatSpec, log_formats
from logsalvage.parsing.lines import cr_only, iter_lines
from logsalvage.sources.compression import sniff_compression
from logsalvage.sources.histories import history_format
from logsalvage.sources.model import Candidate, ReadProblem
from logsalvage.sources.reading import SNIFF_BYTES, _read_head_from, open_raw

SNIFF_LINES = 200
IMAGE_SUFFIXES = (".dd", ".img", ".raw", ".e01", ".001", ".aff", ".vmdk", ".iso")
CONFIG_NAMES = {
    "postgresql.conf": "postgresql.conf",
    "postgresql.auto.conf": "postgresql.conf",
    "httpd.conf": "httpd.conf",
    "apache2.conf": "httpd.conf",
    "logrotate.conf": "logrotate.conf",
    "localtime": "localtime",
    "timezone": "timezone",
    "clock": "clock",
    "vsftpd.conf": "vsftpd.conf",
    "rsyslog.conf": "rsyslog.conf",
}
# top-level directories of a Unix tree: evidence laid out as <host>/var/log/... is recognised by them
FS_TOP = {"var", "etc", "usr", "home", "root", "opt", "srv", "tmp", "boot", "log", "logs"}


def detect_format(head: bytes, specs: list[FormatSpec] | None = None) -> tuple[str | None, float]:
    """Best format for the first lines of a stream, and the share of lines it recognised (lines it
    reads as the continuation of a record, ``_continuations``, are not counted against it)."""
    specs = specs or log_formats()
    lines = _sample_lines(head)
    if not lines:
        return None, 0.0
    best: tuple[float, int, str] | None = None
    for spec in specs:
        if not spec.detect:
            continue
        matched = [any(rx.search(text) for rx in spec.detect) for text in lines]
        hits = sum(matched)
        ratio = hits / max(1, len(lines) - _continuations(spec, lines, matched))
        if ratio >= spec.detect_min_ratio and (best is None or (ratio, spec.priority) > best[:2]):
            best = (ratio, spec.priority, spec.id)
    return (best[2], best[0]) if best else (None, 0.0)


def _sample_lines(head: bytes) -> list[str]:
    """The first non-blank lines of a sample (at most ``SNIFF_LINES``; a partial last line left out)."""
    if cr_only(head):  # read as it will be parsed: each CR a line end
        head = head.replace(b"\r", b"\n")
    lines: list[str] = []
    for line in iter_lines(io.BytesIO(head)):
        if line.no_newline and len(lines) > 0:
            break  # a partial last line of the sample
        text = line.data.decode("utf-8", "replace").rstrip("\r")
        if text.strip():
            lines.append(text)
        if len(lines) >= SNIFF_LINES:
            break
    return lines


DECLARED_MIN_RATIO = 0.5  # of the first lines matching a LogFormat declared for the host


def with_declared_logformats(cand: Candidate, logformats: list[str]) -> Candidate:
    """An input of unknown content whose first lines are written with a ``LogFormat`` its host's
    own httpd.conf declares (or the case config names) is that host's access log."""
    if cand.role != "unknown" or not logformats:
        return cand
    patterns = []
    for fmt in logformats:
        try:
            patterns.append(compile_shared(compile_logformat(fmt)))
        except (ConfigError, DialectError, re.error):
            continue  # a declared format the engine cannot run: it reads nothing anyway
    try:
        with open_raw(cand) as fh:
            head = _read_head_from(fh, cand.compression, cand.reading.limits, SNIFF_BYTES)
    except (OSError, ReadProblem):
        return cand
    lines = _sample_lines(head)
    hits = sum(1 for text in lines if any(p.match(text) for p in patterns))
    if not lines or hits / len(lines) < DECLARED_MIN_RATIO:
        return cand
    return replace(cand, role="log", format_id="apache-access",
                   detail=f"{hits / len(lines):.0%} of the first lines match a LogFormat declared for host {cand.host}")


def _continuations(spec: FormatSpec, lines: list[str], matched: list[bool]) -> int:
    """How many of the sample's lines the format reads as part of the record before them, not as
    records of their own — not counted against it: indented lines under a syslog or PostgreSQL
    header (a multi-line message, a statement, an autovacuum report), for the Apache error log
    any line after its headers (the output of programs the server ran), for a log of stanzas (apt's
    term.log) any line of one, and for a one-line format that declares continuations any line that
    does not look like its header. Only when the sample begins with one of the format's headers: a
    log begins with a record."""
    if not matched or not matched[0]:
        return 0
    if spec.assembler in ("syslog", "pg-stderr"):
        return sum(1 for text, m in zip(lines, matched) if not m and text[:1] in (" ", "\t"))
    if spec.assembler == "apache-error" or spec.raw.get("stanza"):  # program output; a stanza's other lines
        return matched.count(False)
    header = (spec.raw.get("continuation") or {}).get("unindented_unless")
    if spec.assembler == "lines" and header:  # lines after a header that no header begins (nginx's PHP traces)
        rx = compile_shared(header)
        return sum(1 for text, m in zip(lines, matched) if not m and not rx.match(text))
    return 0


def _host_from_layout(root: Path, rel: PurePosixPath) -> str | None:
    parts = rel.parts
    if root.is_dir() and ((root / "var").is_dir() or (root / "etc").is_dir()):
        return root.name
    if len(parts) >= 2 and parts[0] not in FS_TOP:
        return parts[0]
    return None


def _kind_from_layout(rel: str, member: str | None) -> str:
    lowered = rel.lower()
    if member is not None or any(p in lowered for p in ("backup", "bur/", "restore")):
        return "backup"
    return "live"


def _classify(cand: Candidate, specs: list[FormatSpec], prefix: bytes | None = None) -> Candidate:
    """Decide what a file or member is, from its name where that is decisive, else its content.
    ``prefix``: the first raw bytes when the content is not to be opened again (a member met in
    the one streaming pass over a compressed tar)."""
    name = cand.name
    if name.lower().endswith(IMAGE_SUFFIXES):
        return replace(cand, role="image", kind="salvage")

    def raw_stream():
        return nullcontext(io.BytesIO(prefix)) if prefix is not None else open_raw(cand)

    try:
        with raw_stream() as fh:
            magic = fh.read(8)
    except (OSError, ReadProblem, tarfile.TarError, zipfile.BadZipFile, KeyError) as exc:
        return replace(cand, role="unreadable", detail=str(exc))
    compression = sniff_compression(magic)
    cand = replace(cand, compression=compression)
    if compression == "gz" and len(magic) >= 8:
        written = int.from_bytes(magic[4:8], "little")  # MTIME: the compressed file's own time (0: none)
        if written:
            cand = replace(cand, content_time=datetime.fromtimestamp(written, timezone.utc),
                           content_time_basis="gzip header")
    base = re.sub(r"\.(?:gz|bz2|xz)$", "", name)
    if base in CONFIG_NAMES or (base.endswith(".conf") and ("httpd" in cand.display or "apache2" in cand.display)):
        return replace(cand, role="config", config_kind=CONFIG_NAMES.get(base, "httpd.conf"))
    history = history_format(base)  # a shell history: its content cannot tell it from any text
    if history:
        return replace(cand, role="log", format_id=history, detail=f"shell history (named {base})")
    try:
        with raw_stream() as fh:
            head = _read_head_from(fh, compression, cand.reading.limits, SNIFF_BYTES)
    except (OSError, ReadProblem):
        head = b""
    if head.startswith(b"TZif"):
        return replace(cand, role="config", config_kind="localtime")
    if compression is None and (head.startswith(b"XFSB") or head.startswith(b"EVF\x09\x0d\x0a\xff\x00")):
        return replace(cand, role="image", kind="salvage")
    binary = identify_binary(head, base, cand.size if compression is None else None)  # wtmp, lastlog, journal
    if binary:
        return replace(cand, role="log", format_id=binary[0], detail=binary[1])
    other = _non_log_evidence(head)
    if other:
        return replace(cand, role=other[0], detail=other[1])
    fmt, ratio = detect_format(head, specs)
    if fmt:
        return replace(cand, role="log", format_id=fmt, detail=f"{ratio:.0%} of the first lines look like {fmt}")
    system = _system_file(cand.rel, head)
    if system:
        return replace(cand, role="system", detail=system)
    return replace(cand, role="unknown", detail="content not recognised as a supported log format")


_PACKAGE_LINE = re.compile(rb"^[A-Za-z0-9_.+-]+-[^-\s]+-[^-\s]+\.(?:x86_64|i[3-6]86|noarch|aarch64|ppc64le|s390x)"
                           rb"(?:\s|$)")


def _system_file(rel: str, head: bytes) -> str | None:
    """A file of the system, not a log, that the readiness audit reads: configuration under etc/,
    crontabs, scripts, package lists. Recorded (hashed) as such, never called unknown input: an
    unknown input is a log the investigation may be missing."""
    parts = PurePosixPath(rel).parts
    if "etc" in parts[:-1]:
        return "system configuration (read by logsalvage audit)"
    if "crontabs" in parts[:-1] or any(parts[i:i + 3] == ("var", "spool", "cron") for i in range(len(parts))):
        return "crontab (read by logsalvage audit)"
    if head.startswith(b"#!"):
        return "script (program text, not a log)"
    lines = [ln for ln in head.split(b"\n")[:50] if ln.strip()]
    if lines and (sum(1 for ln in lines if _PACKAGE_LINE.match(ln)) / len(lines) >= 0.8
                  or head.startswith(b"Package: ")):
        return "package list (read by logsalvage audit)"
    return None


_CHECKSUM_LINE = re.compile(rb"^[0-9a-f]{32,128} [ *]\S")
_LS_LINE = re.compile(rb"^(?:total \d+|[-dlcbps][rwxsStT-]{9}[.+@]? +\d+ )")
_BODYFILE_LINE = re.compile(rb"^[0-9a-fA-F]*\|[^|]*\|\d+(?:-\d+)*\|[-drwxlcbps/]{10,}\|")


def _non_log_evidence(head: bytes) -> tuple[str, str] | None:
    """File-system evidence that is not a log: checksum inventories, ls listings, bodyfiles."""
    lines = [ln for ln in head.split(b"\n")[:50] if ln.strip() and not ln.startswith(b"#")]
    if not lines:
        return None
    for role, rx, what in (("inventory", _CHECKSUM_LINE, "checksum inventory (sha256sum/md5sum output)"),
                           ("listing", _LS_LINE, "file listing (ls -l output)"),
                           ("listing", _BODYFILE_LINE, "bodyfile (TSK/mactime)")):
        hits = sum(1 for ln in lines if rx.match(ln) or (role == "listing" and ln.endswith(b":")))
        if hits / len(lines) >= 0.8:
            return role, what
    return None


def _with_format(cand: Candidate, format_id: str | None) -> Candidate:
    """A format forced by the user applies to every file that is not a config, archive or image."""
    if format_id and cand.role in ("log", "unknown"):
        return replace(cand, role="log", format_id=format_id, detail=f"format {format_id} given by the user")
    return cand
