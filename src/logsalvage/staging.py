"""Staging: one parsed source as Parquet files in the case, before it is committed.

A parse (in this process or on a Dask worker) writes the source's records and issues here in
bounded batches; the case database then takes the whole source in one transaction. Timestamps
are staged as parts (year if the record has one, month, day, microseconds of the day, UTC offset,
year epoch) because the year of a year-less record is decided only when the whole file is read.
"""

from __future__ import annotations

import errno
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq

from logsalvage.model import CANONICAL_FIELDS
from logsalvage.parsing.years import Anchor, RolloverTracker, year_not_after

BATCH = 10_000
ROW_GROUP = 32_768
_CANON = frozenset(CANONICAL_FIELDS)
_NOT_EXTRA = frozenset({"raw", "message", "event_type", "ts_raw"})

_ARROW_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64()}
STAGE_SCHEMA = pa.schema(
    [("offset", pa.int64()), ("length", pa.int64()), ("line_no", pa.int64()), ("line_count", pa.int32()),
     ("spans", pa.string()), ("event_type", pa.string()), ("ts_raw", pa.string()), ("ts_note", pa.string()),
     ("y", pa.int32()), ("mo", pa.int32()), ("d", pa.int32()), ("sod_us", pa.int64()),
     ("utc_offset_s", pa.int32()), ("year_epoch", pa.int32()), ("raw", pa.string()), ("message", pa.string()),
     ("copies", pa.string())]
    + [(name, _ARROW_TYPES[typ]) for name, typ in CANONICAL_FIELDS.items()]
    + [("extra", pa.string())])
ISSUE_SCHEMA = pa.schema([("source_id", pa.string()), ("path", pa.string()), ("offset", pa.int64()),
                          ("length", pa.int64()), ("line_no", pa.int64()), ("reason", pa.string()),
                          ("excerpt", pa.string()), ("event_offset", pa.int64())])


@dataclass
class YearState:
    """What year inference needs to know about a staged source's year-less records."""

    yearless: int = 0
    last_epoch: int = 0
    rollovers: int = 0
    max_ordinal_in_last_epoch: int = -1
    feb29_epochs: set[int] = field(default_factory=set)
    guesses: list[str] = field(default_factory=list)  # readings that rest on a long quiet stretch (years)
    guessed: int = 0


@dataclass
class StagedSource:
    """The outcome of parsing one candidate: where its rows are, and their counts."""

    source_id: str
    sha256: str
    events_path: Path | list[Path] | None = None  # several when the source was parsed in slices
    issues_path: Path | list[Path] | None = None
    events: int = 0
    issues: int = 0
    lines: int = 0
    years: YearState = field(default_factory=YearState)
    known: bool = False  # already in the case: nothing was parsed
    parser: str = "reference"  # which engine read it ('columnar', or 'reference: why not columnar')
    error: str | None = None  # the source could not be read at all
    events_table: pa.Table | None = None  # a small source's records, kept in memory instead (StageWriter)

    @staticmethod
    def _paths(value) -> list[Path]:
        return [p for p in (value if isinstance(value, list) else [value]) if p is not None]

    @property
    def events_paths(self) -> list[Path]:
        return self._paths(self.events_path)

    @property
    def issues_paths(self) -> list[Path]:
        return self._paths(self.issues_path)

    def discard(self) -> None:
        self.events_table = None
        for p in self.events_paths + self.issues_paths:
            Path(p).unlink(missing_ok=True)


class StageWriter:
    """Appends record and issue batches of one source to its Parquet files. A file is made by its
    first batch: a source without issues (most) has no issues file, and one without records no
    events file (``events_path``/``issues_path`` stay None) — a writer costs a millisecond or two,
    which counts when an archive holds a thousand one-line logs.

    ``memory_rows``: records are kept in memory (``events_table`` after ``close``) until there are
    more than that many, and only then written to the file — a small source is committed from
    memory, never staged on disk."""

    def __init__(self, stage_dir: Path, source_id: str, *, memory_rows: int = 0):
        stage_dir.mkdir(parents=True, exist_ok=True)
        self._paths = {"events": stage_dir / f"{source_id}.events.parquet",
                       "issues": stage_dir / f"{source_id}.issues.parquet"}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self.events_path: Path | None = None
        self.issues_path: Path | None = None
        self._memory_rows = memory_rows
        self._held: list[pa.Table] = []  # records not written yet (memory_rows)
        self._held_rows = 0
        self.events_table: pa.Table | None = None

    def _hold(self, table: pa.Table) -> bool:
        """Keep ``table`` in memory if the source is still small; else write what was held."""
        if "events" not in self._writers and self._held_rows + table.num_rows <= self._memory_rows:
            self._held.append(table)
            self._held_rows += table.num_rows
            return True
        held, self._held = self._held, []
        for t in held:
            self._write_events(t)
        return False

    def _write_events(self, table: pa.Table) -> None:
        with _naming(self._paths["events"]):
            self._writer("events", STAGE_SCHEMA).write_table(table, row_group_size=ROW_GROUP)

    def _writer(self, kind: str, schema: pa.Schema) -> pq.ParquetWriter:
        writer = self._writers.get(kind)
        if writer is None:
            path = self._paths[kind]
            setattr(self, f"{kind}_path", path)  # before opening: a failed open leaves nothing unnamed
            writer = self._writers[kind] = pq.ParquetWriter(path, schema, compression="none")
        return writer

    def events(self, columns: dict[str, list]) -> None:
        self.event_table(pa.Table.from_pydict(columns, schema=STAGE_SCHEMA))

    def event_table(self, table: pa.Table) -> None:
        # row groups of a bounded size: the case database reads a column chunk in one allocation
        if not self._hold(table):
            self._write_events(table)

    def issues(self, rows: list[tuple]) -> None:
        if rows:
            cols = list(zip(*rows))
            with _naming(self._paths["issues"]):
                self._writer("issues", ISSUE_SCHEMA).write_table(pa.Table.from_arrays(
                    [pa.array(list(c), type=f.type) for c, f in zip(cols, ISSUE_SCHEMA)], schema=ISSUE_SCHEMA))

    def close(self) -> None:
        if self._held:
            self.events_table = pa.concat_tables(self._held) if len(self._held) > 1 else self._held[0]
            self._held = []
        for kind, writer in self._writers.items():
            with _naming(self._paths[kind]):
                writer.close()


@contextmanager
def _naming(path: Path):
    """An I/O failure while staging (a full disk) names the staging file it was writing."""
    try:
        yield
    except OSError as exc:
        if getattr(exc, "filename", None):
            raise
        raise OSError(exc.errno or errno.EIO, f"cannot write staging file ({exc.strerror or exc})", str(path)) from exc


class StageSink:
    """Receives records from the assembler and stages them in batches, deciding year epochs."""

    def __init__(self, writer: StageWriter, source_id: str, path: str, anchor: Anchor | None = None,
                 annotate: Callable[[dict], None] | None = None):
        """``anchor``: records have no file order (carved from an image): each year-less record gets
        the latest year that does not put it after the anchor, instead of roll-over tracking."""
        self.writer = writer
        self.annotate = annotate  # adds provenance fields to each record (blocks, allocation of carved ones)
        self.anchor = anchor
        self.anchor_note = (f"year inferred: latest date not after {anchor.latest} ({anchor.basis})"
                            if anchor else None)
        self.source_id = source_id
        self.path = path
        self.rows: list[dict] = []
        self.issue_rows: list[tuple] = []
        self.tracker = RolloverTracker()
        self.years = YearState()
        self.events = 0
        self.issues = 0

    def event(self, rec: dict) -> None:
        if self.annotate is not None:
            self.annotate(rec)
        self.rows.append(rec)
        if len(self.rows) >= BATCH:
            self.flush()

    def issue(self, offset: int, length: int, line_no: int, reason: str, excerpt: str,
              event_offset: int | None = None) -> None:
        self.issue_rows.append((self.source_id, self.path, offset, length, line_no, reason, excerpt, event_offset))
        self.issues += 1
        if len(self.issue_rows) >= BATCH:
            self.flush()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        if rows:
            self.writer.events(self._columns(rows))
            self.events += len(rows)
        issues, self.issue_rows = self.issue_rows, []
        self.writer.issues(issues)

    def year_state(self) -> YearState:
        t = self.tracker
        self.years.last_epoch, self.years.rollovers = t.epoch, t.rollovers
        self.years.max_ordinal_in_last_epoch = t.max_ordinal_in_last_epoch
        self.years.guesses, self.years.guessed = list(t.guesses), t.guessed
        return self.years

    def _columns(self, rows: list[dict]) -> dict[str, list]:
        cols = record_columns(rows)
        tracker = self.tracker
        for i, rec in enumerate(rows):
            st = rec.get("_stamp")
            if st is None or st[0] is not None:
                continue
            mo, d = st[1], st[2]
            if self.anchor is not None:
                cols["y"][i] = year_not_after(mo, d, self.anchor)
                cols["ts_note"][i] = rec.get("_ts_note") or self.anchor_note
            else:
                epoch = tracker.feed(mo, d, rec["_line_no"])
                cols["year_epoch"][i] = epoch
                self.years.yearless += 1
                if mo == 2 and d == 29:
                    self.years.feb29_epochs.add(epoch)
        return cols


def record_columns(rows: list[dict]) -> dict[str, list]:
    """Records (engine dicts) as staging columns, year epochs left empty."""
    n = len(rows)
    cols: dict[str, list] = {name: [None] * n for name in STAGE_SCHEMA.names}
    for i, rec in enumerate(rows):
        extra = {}
        for key, value in rec.items():
            if key in _CANON:
                cols[key][i] = value
            elif key[0] != "_" and key not in _NOT_EXTRA:
                extra[key] = value
        if extra:
            cols["extra"][i] = json.dumps(extra, ensure_ascii=False, sort_keys=True)
        cols["offset"][i] = rec["_offset"]
        cols["length"][i] = rec["_length"]
        cols["line_no"][i] = rec["_line_no"]
        cols["line_count"][i] = rec["_line_count"]
        spans = rec["_spans"]
        if spans:
            cols["spans"][i] = ",".join(f"{o}+{n_}" for o, n_ in spans)
        cols["event_type"][i] = rec.get("event_type")
        cols["ts_raw"][i] = rec.get("ts_raw")
        cols["ts_note"][i] = rec.get("_ts_note")
        cols["raw"][i] = rec.get("raw")
        cols["message"][i] = rec.get("message")
        cols["copies"][i] = rec.get("_copies")
        st = rec.get("_stamp")
        if st is not None:
            cols["y"][i], cols["mo"][i], cols["d"][i], cols["sod_us"][i], cols["utc_offset_s"][i] = st
    return cols
