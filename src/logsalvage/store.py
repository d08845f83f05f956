"""The case database: ``CASE_DIR/case.duckdb`` holding sources, events and issues.

The only module that imports duckdb. Events arrive per source into a staging table (columns of
records with timestamp *parts*), and one SQL statement per source turns them into final events
once the year of every record and the host's time zone are decided, inside the same transaction
that registers the source: a source is either wholly in the case or not at all, so an interrupted
ingest is simply run again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from logsalvage.errors import UsageError
from logsalvage.model import CANONICAL_FIELDS

DB_NAME = "case.duckdb"
SCHEMA_VERSION = 1

_CANON_SQL = ",\n  ".join(f'"{name}" {typ}' for name, typ in CANONICAL_FIELDS.items())

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS sources (
  source_id VARCHAR PRIMARY KEY,
  sha256 VARCHAR NOT NULL,
  path VARCHAR NOT NULL,
  member VARCHAR,
  host VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  format_id VARCHAR NOT NULL,
  size BIGINT,
  compression VARCHAR,
  mtime TIMESTAMPTZ,
  rotation_date DATE,
  tz VARCHAR,
  tz_basis VARCHAR,
  year_basis VARCHAR,
  lines BIGINT,
  events BIGINT,
  issues BIGINT,
  first_ts TIMESTAMPTZ,
  last_ts TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS source_copies (
  source_id VARCHAR NOT NULL,
  path VARCHAR NOT NULL,
  member VARCHAR,
  host VARCHAR,
  kind VARCHAR
);
CREATE TABLE IF NOT EXISTS inputs (
  path VARCHAR NOT NULL,
  member VARCHAR,
  sha256 VARCHAR,
  size BIGINT,
  role VARCHAR NOT NULL,
  host VARCHAR,
  detail VARCHAR
);
CREATE TABLE IF NOT EXISTS events (
  event_id VARCHAR NOT NULL,
  source_id VARCHAR NOT NULL,
  host VARCHAR NOT NULL,
  kind VARCHAR NOT NULL,
  format_id VARCHAR NOT NULL,
  event_type VARCHAR,
  ts_utc TIMESTAMPTZ,
  ts_local TIMESTAMP,
  ts_raw VARCHAR,
  time_basis VARCHAR,
  recovered BOOLEAN NOT NULL,
  "offset" BIGINT NOT NULL,
  length BIGINT NOT NULL,
  line_no BIGINT,
  line_count INTEGER NOT NULL,
  spans VARCHAR,
  raw VARCHAR,
  message VARCHAR,
  {_CANON_SQL},
  extra VARCHAR
);
CREATE TABLE IF NOT EXISTS issues (
  source_id VARCHAR,
  path VARCHAR,
  "offset" BIGINT,
  length BIGINT,
  line_no BIGINT,
  reason VARCHAR NOT NULL,
  excerpt VARCHAR
);
"""

# staging: what the engine produced for one source, timestamps still in parts
STAGE_FIELDS: list[tuple[str, pa.DataType]] = [
    ("offset", pa.int64()), ("length", pa.int64()), ("line_no", pa.int64()), ("line_count", pa.int32()),
    ("spans", pa.string()), ("event_type", pa.string()), ("ts_raw", pa.string()), ("ts_note", pa.string()),
    ("y", pa.int32()), ("mo", pa.int32()), ("d", pa.int32()), ("sod_us", pa.int64()),
    ("utc_offset_s", pa.int32()), ("year_epoch", pa.int32()), ("raw", pa.string()), ("message", pa.string()),
] + [(name, {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64()}[typ])
     for name, typ in CANONICAL_FIELDS.items()] + [("extra", pa.string())]
STAGE_SCHEMA = pa.schema(STAGE_FIELDS)
ISSUE_SCHEMA = pa.schema([("source_id", pa.string()), ("path", pa.string()), ("offset", pa.int64()),
                          ("length", pa.int64()), ("line_no", pa.int64()), ("reason", pa.string()),
                          ("excerpt", pa.string())])


@dataclass(frozen=True)
class SourceRecord:
    source_id: str
    sha256: str
    path: str
    member: str | None
    host: str
    kind: str
    format_id: str
    size: int
    compression: str | None
    mtime: object
    rotation_date: object
    tz: str
    tz_basis: str


@dataclass(frozen=True)
class YearDecision:
    base_year: int | None  # year of the last year-epoch; None when every record has its own year
    last_epoch: int
    basis: str


class CaseStore:
    """A case directory's database."""

    def __init__(self, case_dir: Path, *, read_only: bool = False):
        self.case_dir = Path(case_dir)
        self.path = self.case_dir / DB_NAME
        if read_only and not self.path.exists():
            raise UsageError(f"no case database at {self.path} (run 'logsalvage ingest' first)")
        if not read_only:
            self.case_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise UsageError(f"cannot open case database {self.path}: {exc}") from None
        except duckdb.Error as exc:
            raise UsageError(f"{self.path} is not a usable case database: {exc}") from None
        # bounded memory whatever the evidence size; DuckDB spills to disk past this
        self.con.execute("SET memory_limit = '1GB'")
        self.con.execute("SET preserve_insertion_order = false")
        self.con.execute(f"SET temp_directory = '{(self.case_dir / 'tmp').as_posix()}'" if not read_only else "SELECT 1")
        if not read_only:
            self.con.execute(SCHEMA)
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
        self.stage_dir = self.case_dir / "tmp"
        self._stage_writer: pq.ParquetWriter | None = None
        self._stage_path: Path | None = None

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "CaseStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sources ------------------------------------------------------------------------------
    def has_source(self, source_id: str) -> bool:
        return self.con.execute("SELECT 1 FROM sources WHERE source_id = ?", [source_id]).fetchone() is not None

    def add_copy(self, source_id: str, path: str, member: str | None, host: str, kind: str) -> None:
        exists = self.con.execute(
            "SELECT 1 FROM source_copies WHERE source_id=? AND path=? AND member IS NOT DISTINCT FROM ?",
            [source_id, path, member]).fetchone()
        if not exists:
            self.con.execute("INSERT INTO source_copies VALUES (?, ?, ?, ?, ?)", [source_id, path, member, host, kind])

    def record_input(self, path: str, member: str | None, sha256: str | None, size: int | None, role: str,
                     host: str | None, detail: str | None) -> None:
        self.con.execute("DELETE FROM inputs WHERE path = ? AND member IS NOT DISTINCT FROM ?", [path, member])
        self.con.execute("INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [path, member, sha256, size, role, host, detail])

    def add_issue(self, source_id: str | None, path: str | None, offset: int | None, length: int | None,
                  line_no: int | None, reason: str, excerpt: str = "") -> None:
        self.con.execute("INSERT INTO issues VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [source_id, path, offset, length, line_no, reason, excerpt])

    # -- staging ------------------------------------------------------------------------------
    def begin_source(self, source_id: str) -> None:
        """Start staging a source: batches go to a Parquet file in the case (bounded memory)."""
        self.stage_dir.mkdir(parents=True, exist_ok=True)
        self._stage_path = self.stage_dir / f"stage-{source_id}.parquet"
        self._stage_writer = pq.ParquetWriter(self._stage_path, STAGE_SCHEMA, compression="none")
        # issues of a source whose ingest was interrupted before its commit
        self.con.execute("DELETE FROM issues WHERE source_id IN (SELECT DISTINCT source_id FROM issues "
                         "EXCEPT SELECT source_id FROM sources)")

    def stage_rows(self, columns: dict[str, list]) -> None:
        self._stage_writer.write_table(pa.Table.from_pydict(columns, schema=STAGE_SCHEMA))

    def _close_stage(self) -> Path | None:
        if self._stage_writer is not None:
            self._stage_writer.close()
            self._stage_writer = None
        return self._stage_path

    def stage_issues(self, rows: list[tuple]) -> None:
        if not rows:
            return
        cols = list(zip(*rows))
        table = pa.Table.from_arrays([pa.array(list(c), type=f.type) for c, f in zip(cols, ISSUE_SCHEMA)],
                                     schema=ISSUE_SCHEMA)
        self.con.register("issue_batch", table)
        self.con.execute("INSERT INTO issues SELECT * FROM issue_batch")
        self.con.unregister("issue_batch")

    def commit_source(self, src: SourceRecord, years: YearDecision, *, recovered: bool, lines: int) -> dict:
        """Turn the staged rows into events and register the source, atomically."""
        staged = self._close_stage()
        self.con.execute("BEGIN TRANSACTION")
        canon = ", ".join(f'"{c}"' for c in CANONICAL_FIELDS)
        base = years.base_year if years.base_year is not None else 1970
        # local -> UTC through the offset of each distinct local hour (one ICU lookup per hour, not
        # per row); a local hour whose offset differs at its start and end is a DST transition hour
        self.con.execute(f"""
            CREATE OR REPLACE TEMP VIEW staged AS
            SELECT *, CASE WHEN mo IS NULL THEN NULL
                           WHEN mo = 2 AND d = 29 AND NOT (yr % 4 = 0 AND (yr % 100 <> 0 OR yr % 400 = 0)) THEN NULL
                           ELSE make_timestamp(yr, mo, d, 0, 0, 0) + to_microseconds(sod_us) END AS ts_local
            FROM (SELECT *, COALESCE(y, {int(base)} - ({int(years.last_epoch)} - year_epoch)) AS yr
                  FROM read_parquet('{_sql_str(staged)}'))
            """)
        self.con.execute("""
            CREATE OR REPLACE TEMP TABLE hour_offsets AS
            SELECT h, timezone(?, h) AS utc_start,
                   (timezone(?, h + INTERVAL 1 HOUR) - timezone(?, h)) <> INTERVAL 1 HOUR AS transition
            FROM (SELECT DISTINCT date_trunc('hour', ts_local) AS h FROM staged
                  WHERE ts_local IS NOT NULL AND utc_offset_s IS NULL)
            """, [src.tz, src.tz, src.tz])
        self.con.execute(f"""
            INSERT INTO events
            SELECT ? || ':' || s."offset", ?, ?, ?, ?, event_type,
              CASE WHEN ts_local IS NULL THEN NULL
                   WHEN utc_offset_s IS NOT NULL THEN timezone('UTC', ts_local - to_seconds(utc_offset_s))
                   ELSE o.utc_start + (ts_local - o.h) END,
              ts_local, ts_raw,
              concat_ws('; ',
                COALESCE(ts_note, CASE WHEN mo IS NULL THEN 'no timestamp'
                                       WHEN y IS NOT NULL THEN 'year in record'
                                       WHEN ts_local IS NULL THEN 'Feb 29 in non-leap year ' || yr || ': time undetermined'
                                       ELSE ? END),
                CASE WHEN mo IS NULL THEN NULL
                     WHEN utc_offset_s IS NOT NULL THEN 'UTC offset in record'
                     WHEN o.transition THEN ? || '; DST transition hour: ambiguous or skipped local time, first offset used'
                     ELSE ? END),
              ?, s."offset", length, line_no, line_count, spans, raw, message, {canon}, extra
            FROM staged s LEFT JOIN hour_offsets o ON o.h = date_trunc('hour', s.ts_local) AND s.utc_offset_s IS NULL
            """, [src.source_id, src.source_id, src.host, src.kind, src.format_id, years.basis,
                  f"time zone {src.tz} ({src.tz_basis})", f"time zone {src.tz} ({src.tz_basis})", recovered])
        self.con.execute("DROP VIEW staged")
        self.con.execute("DROP TABLE hour_offsets")
        stats = self.con.execute(
            "SELECT count(*), min(ts_utc), max(ts_utc) FROM events WHERE source_id = ?", [src.source_id]).fetchone()
        n_issues = self.con.execute("SELECT count(*) FROM issues WHERE source_id = ?", [src.source_id]).fetchone()[0]
        self.con.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [src.source_id, src.sha256, src.path, src.member, src.host, src.kind, src.format_id, src.size,
             src.compression, src.mtime, src.rotation_date, src.tz, src.tz_basis, years.basis, lines, stats[0],
             n_issues, stats[1], stats[2]])
        self.con.execute("COMMIT")
        staged.unlink()
        return {"events": stats[0], "issues": n_issues, "first": stats[1], "last": stats[2]}

    def abort_source(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction was open: only the staged file exists
        staged = self._close_stage()
        if staged is not None:
            staged.unlink(missing_ok=True)

    # -- queries ------------------------------------------------------------------------------
    def host_dated_span(self, host: str) -> tuple | None:
        """First and last local date of events of ``host`` whose year came from the record itself."""
        row = self.con.execute(
            "SELECT min(ts_local)::DATE, max(ts_local)::DATE FROM events "
            "WHERE host = ? AND time_basis LIKE 'year in record%'", [host]).fetchone()
        return row if row and row[1] is not None else None

    def query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def query_dicts(self, sql: str, params: Iterable = ()) -> Iterator[dict]:
        cur = self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        while True:
            rows = cur.fetchmany(10_000)
            if not rows:
                return
            for row in rows:
                yield dict(zip(names, row))


def _sql_str(value) -> str:
    return str(value).replace("'", "''")


def extra_json(values: dict) -> str | None:
    return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str) if values else None
