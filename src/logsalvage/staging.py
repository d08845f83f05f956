"""Staging: one parsed source as Parquet files in the case, before it is committed.

A parse (in this process or on a Dask worker) writes the source's records and issues here in
bounded batches; the case database then takes the whole source in one transaction. Timestamps
are staged as parts (year if the record has one, month, day, microseconds of the day, UTC offset,
year epoch) because the year of a year-less record is decided only when the whole file is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from logsalvage.model import CANONICAL_FIELDS

_ARROW_TYPES = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64()}
STAGE_SCHEMA = pa.schema(
    [("offset", pa.int64()), ("length", pa.int64()), ("line_no", pa.int64()), ("line_count", pa.int32()),
     ("spans", pa.string()), ("event_type", pa.string()), ("ts_raw", pa.string()), ("ts_note", pa.string()),
     ("y", pa.int32()), ("mo", pa.int32()), ("d", pa.int32()), ("sod_us", pa.int64()),
     ("utc_offset_s", pa.int32()), ("year_epoch", pa.int32()), ("raw", pa.string()), ("message", pa.string())]
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


@dataclass
class StagedSource:
    """The outcome of parsing one candidate: where its rows are, and their counts."""

    source_id: str
    sha256: str
    events_path: Path | None = None
    issues_path: Path | None = None
    events: int = 0
    issues: int = 0
    lines: int = 0
    years: YearState = field(default_factory=YearState)
    known: bool = False  # already in the case: nothing was parsed
    error: str | None = None  # the source could not be read at all

    def discard(self) -> None:
        for p in (self.events_path, self.issues_path):
            if p is not None:
                p.unlink(missing_ok=True)


class StageWriter:
    """Appends record and issue batches of one source to its Parquet files."""

    def __init__(self, stage_dir: Path, source_id: str):
        stage_dir.mkdir(parents=True, exist_ok=True)
        self.events_path = stage_dir / f"{source_id}.events.parquet"
        self.issues_path = stage_dir / f"{source_id}.issues.parquet"
        self._events = pq.ParquetWriter(self.events_path, STAGE_SCHEMA, compression="none")
        self._issues = pq.ParquetWriter(self.issues_path, ISSUE_SCHEMA, compression="none")

    def events(self, columns: dict[str, list]) -> None:
        self._events.write_table(pa.Table.from_pydict(columns, schema=STAGE_SCHEMA))

    def issues(self, rows: list[tuple]) -> None:
        if rows:
            cols = list(zip(*rows))
            self._issues.write_table(pa.Table.from_arrays(
                [pa.array(list(c), type=f.type) for c, f in zip(cols, ISSUE_SCHEMA)], schema=ISSUE_SCHEMA))

    def close(self) -> None:
        self._events.close()
        self._issues.close()
