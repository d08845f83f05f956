"""Staging a binary log (``parsing.binary``): hashed, read by its reader, its records and issues
written through the same ``StageWriter`` as a text log's, so committing, batching and resuming are
the ones of every source. Bad input never raises: a record that is not one, a file cut short, a
journal journalctl cannot read are issues with their offsets."""

from __future__ import annotations

from functools import lru_cache

from logsalvage.parsing.binary import BINARY_FORMATS
from logsalvage.parsing.binary.fixed import FixedRecords
from logsalvage.parsing.binary.journal import ExportError, JournalRecords, entries
from logsalvage.parsing.binary.lastlog import SIZE as LASTLOG_SIZE
from logsalvage.parsing.binary.lastlog import LastlogFormat
from logsalvage.parsing.binary.utmp import UtmpFormat
from logsalvage.parsing.formats import shipped_formats
from logsalvage.sources import ReadProblem, sha256_of
from logsalvage.sources.binary import SPARSE_DIGEST_FROM, hole_bytes, record_chunks, record_digest
from logsalvage.sources.journalctl import journalctl, read_journal, version
from logsalvage.staging import StagedSource, StageSink, StageWriter

JOURNALCTL_MISSING = ("not read: journalctl is not installed (Debian: apt-get install systemd); the journal is read "
                      "when it is, by ingesting again")


def parse_binary(task, memory_rows: int) -> StagedSource:
    """Hash a binary candidate (an ``ingest.ParseTask``) and, if it is new, stage its records."""
    cand = task.cand
    reader = BINARY_FORMATS[cand.format_id].reader
    if reader == "journal" and journalctl() is None:
        return StagedSource("", "", error=JOURNALCTL_MISSING)  # recorded unread; a later ingest reads it
    try:
        sha, hash_note = _hash(cand, reader)
    except (OSError, ReadProblem, KeyError) as exc:
        return StagedSource("", "", error=str(exc))
    source_id = task.source_id(sha)
    if source_id in task.known_ids:
        return StagedSource(source_id, sha, known=True)
    writer = StageWriter(task.stage_dir, f"{source_id}-{task.index:05d}", memory_rows=memory_rows)
    sink = StageSink(writer, source_id, cand.display)
    if hash_note:
        sink.issue(None, None, None, hash_note, "")
    try:
        if reader == "journal":
            records, parser = _journal(task, sink)
        else:
            records, parser = _fixed(cand, sink, reader)
    finally:
        sink.flush()
        writer.close()
    return StagedSource(source_id, sha, writer.events_path, writer.issues_path, sink.events, sink.issues, records,
                        sink.year_state(), parser=parser, events_table=writer.events_table)


def _hash(cand, reader: str) -> tuple[str, str | None]:
    """The source's hash, and a note when it is not the sha256 of every byte (a sparse lastlog)."""
    if reader == "lastlog":
        holes = hole_bytes(cand)
        if holes > SPARSE_DIGEST_FROM:
            return record_digest(cand, LASTLOG_SIZE), (
                f"hashed by its non-zero records: a sparse file of {cand.size} bytes, {holes} of them holes never "
                "written, is not read byte by byte; its hash is the sha256 of each non-zero 292-byte record "
                "preceded by its index (8 bytes, little-endian), then of the size (8 bytes), not what sha256sum "
                "prints (logsalvage.sources.binary.record_digest)")
    return sha256_of(cand), None


def _fixed(cand, sink: StageSink, reader: str) -> tuple[int, str]:
    if reader == "utmp":
        fmt, parser = UtmpFormat(cand.format_id), "binary: glibc struct utmp (Linux x86-64, 384-byte records)"
    else:
        fmt, parser = LastlogFormat(), "binary: struct lastlog (Linux x86-64, 292-byte records, holes skipped)"
    records = FixedRecords(fmt, sink)
    try:
        for offset, data in record_chunks(cand, fmt.size):
            if isinstance(data, int):
                records.hole(offset, data)
            else:
                records.feed(offset, data)
    except (ReadProblem, OSError) as exc:
        records.close()
        sink.issue(getattr(exc, "offset", None), None, None, f"stream ends early: {exc}", "")
    records.close()
    return records.records, parser


@lru_cache(maxsize=1)
def _journalctl_version() -> str:
    return version() or "journalctl"


def _journal(task, sink: StageSink) -> tuple[int, str]:
    cand = task.cand
    reader = JournalRecords(shipped_formats()["syslog"], sink)

    def consume(stream) -> None:
        for index, fields in enumerate(entries(stream)):
            reader.entry(index, fields)

    problems: list[tuple[int | None, str]] = []
    how = "read in place"
    try:
        outcome = read_journal(cand, task.stage_dir, consume)
        problems, how = outcome.problems, outcome.how
    except ExportError as exc:
        problems.append((None, f"journalctl's export output is cut short after {reader.entries} entries: {exc}"))
    except (OSError, ReadProblem) as exc:
        problems.append((getattr(exc, "offset", None), f"journal not read past {reader.entries} entries: {exc}"))
    reader.close()
    for offset, reason in problems:
        sink.issue(offset, None, None, reason, "")
    return reader.entries, f"binary: {_journalctl_version()} -o export ({how}; offset = entry index)"
