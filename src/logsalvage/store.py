"""The case database: ``CASE_DIR/case.duckdb`` holding sources, events and issues.

The only module that imports duckdb. Events arrive per source into staging files (columns of
records with timestamp *parts*), and set-oriented SQL turns them into final events once the year
of every record and the host's time zone are decided, inside the same transaction that registers
the source — or a batch of sources, each row joined to its own source's constants, so that many
small sources cost one transaction: a source (a batch) is either wholly in the case or not at all,
so an interrupted ingest is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from datetime import date
from typing import Iterable, Iterator

import duckdb
import pyarrow as pa

from logsalvage.errors import UsageError
from logsalvage.model import CANONICAL_FIELDS, Source
from logsalvage.staging import StagedSource

DB_NAME = "case.duckdb"
SCHEMA_VERSION = 3

# a record of a repeated local hour (DST ends) that comes after a later time of that hour by more
# than this, in file order, is in the second pass of the hour (see CaseStore._local_to_utc)
DST_STEP_BACK_MIN = 10
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
  last_ts TIMESTAMPTZ,
  parser VARCHAR  -- which engine read it: 'columnar', or 'reference' and why
);
CREATE TABLE IF NOT EXISTS source_copies (
  source_id VARCHAR NOT NULL,
  path VARCHAR NOT NULL,
  member VARCHAR,
  host VARCHAR,
  kind VARCHAR
);
CREATE TABLE IF NOT EXISTS watch_state (   -- logsalvage watch: how far each live log has been read
  path VARCHAR PRIMARY KEY,
  device UBIGINT,
  inode UBIGINT,
  "offset" BIGINT NOT NULL,   -- first byte not yet in the case (a partial last line waits here)
  size BIGINT,
  head_sha256 VARCHAR,        -- sha256 of the first head_len bytes (up to 4 KiB): the file's identity
  head_len INTEGER,
  host VARCHAR,
  format_id VARCHAR,
  updated TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS watch_alerts (  -- logsalvage watch: what was alerted, never alerted twice
  alert_id VARCHAR PRIMARY KEY,
  rule VARCHAR,
  host VARCHAR,
  alerted TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS host_settings (
  host VARCHAR NOT NULL,
  key VARCHAR NOT NULL,   -- timezone, pg_log_line_prefix
  value VARCHAR,
  basis VARCHAR,          -- where the value came from
  PRIMARY KEY (host, key)
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
  copies VARCHAR,  -- offsets of identical copies of the record elsewhere in the same source (carved images)
  raw VARCHAR,
  message VARCHAR,
  {_CANON_SQL},
  extra VARCHAR,
  -- copies of one record share host, second and this key: PostgreSQL (pid, message number), else
  -- the text and its occurrence number within the source (see continuity.timeline)
  record_key UBIGINT
);
CREATE TABLE IF NOT EXISTS issues (
  source_id VARCHAR,
  path VARCHAR,
  "offset" BIGINT,
  length BIGINT,
  line_no BIGINT,
  reason VARCHAR NOT NULL,
  excerpt VARCHAR,
  event_id VARCHAR  -- set when the problem is inside an event (e.g. invalid UTF-8 it keeps escaped)
);
-- file-system evidence that is not a log (parsing.listings): one row per checksum line
CREATE TABLE IF NOT EXISTS file_inventory (
  host VARCHAR NOT NULL,
  input_path VARCHAR NOT NULL,  -- inputs.path / inputs.member of the inventory file
  member VARCHAR,
  hash_type VARCHAR NOT NULL,   -- md5, sha1, sha256, … (from the digest length)
  hash VARCHAR NOT NULL,        -- lower-case hex
  path VARCHAR NOT NULL,
  line_no BIGINT,
  input_mtime TIMESTAMPTZ       -- modification time of the inventory file: about when it was made
);
-- one row per (entry, time kind) of an ls -l listing or a bodyfile
CREATE TABLE IF NOT EXISTS file_listing (
  host VARCHAR NOT NULL,
  input_path VARCHAR NOT NULL,
  member VARCHAR,
  directory VARCHAR,            -- the directory listed; NULL when the listing does not say
  name VARCHAR NOT NULL,        -- as shown ('.' and '..' included)
  path VARCHAR NOT NULL,        -- directory/name resolved ('.' is the directory, '..' its parent)
  type VARCHAR NOT NULL,        -- file, dir, symlink, char, block, fifo, socket, unknown
  mode VARCHAR,                 -- ls-style permissions, e.g. -rwxr-xr-x
  links BIGINT,
  owner VARCHAR,
  grp VARCHAR,
  size BIGINT,
  time_kind VARCHAR NOT NULL,   -- mtime | ctime | atime | crtime
  time TIMESTAMPTZ,
  time_raw VARCHAR,
  target VARCHAR,               -- symlink target
  line_no BIGINT,
  time_basis VARCHAR,           -- how zone and year were decided
  time_precision VARCHAR        -- ns, s, min or day: what the listing shows
);
-- the readiness audit (audit.run): one row per weakness or strength, replaced by each audit
CREATE TABLE IF NOT EXISTS audit_findings (
  host VARCHAR NOT NULL,
  finding_id VARCHAR NOT NULL,  -- the check, e.g. vsftpd.open
  severity VARCHAR NOT NULL,    -- high, medium, low, info, strength
  category VARCHAR NOT NULL,    -- the incident's countermeasure it serves (audit.model.CATEGORIES)
  file VARCHAR,                 -- the file that shows it (or whose absence does)
  line BIGINT,
  absent BOOLEAN,
  title VARCHAR,
  why VARCHAR,
  fix VARCHAR,
  evidence VARCHAR              -- the configuration line as found
);
"""

_ARROW_OF = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "INTEGER": pa.int32(), "DOUBLE": pa.float64(),
             "BOOLEAN": pa.bool_(), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
             "TIMESTAMP": pa.timestamp("us"), "DATE": pa.date32()}


CARVED_BATCH_ROWS = 20_000  # carved records read at a time, in parse order


def _arrow_reader(relation, rows: int):
    """A relation's result as a stream of Arrow batches (``to_arrow_reader`` from DuckDB 2, its
    older name ``fetch_arrow_reader`` before)."""
    reader = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    return reader(rows)

# the record key of an event (a column expression over an event's columns; a window per source)
def record_key_sql(per_source: str = "source_id, ", offset: str = '"offset"') -> str:
    return record_key_joined_sql(f"row_number() OVER (PARTITION BY {per_source}hash(raw) ORDER BY {offset})")


# the records of ``staged`` without copies of the same text in the same source (``_dedupe_view``)
DEDUPE_WINDOW_SQL = """
    SELECT * EXCLUDE (rn, all_offsets, copies),
           nullif(concat_ws(',', copies, nullif(array_to_string(all_offsets[2:], ','), '')), '') AS copies
    FROM (SELECT *, row_number() OVER (PARTITION BY _idx, raw ORDER BY "offset") AS rn,
                 list("offset" ORDER BY "offset") OVER (PARTITION BY _idx, raw) AS all_offsets
          FROM staged)
    WHERE rn = 1"""


def raw_repeats_sql(rows: str, per_source: str = "source_id") -> str:
    """The rows of ``rows`` whose text's hash is not alone in its source, each with its rank by offset
    among them (``row_number`` of ``record_key_sql``'s window) — a narrow aggregation instead of a
    window that carries every column of every row (most texts are alone: their rank is 1)."""
    return f"""SELECT {per_source}, unnest(offs) AS "offset", unnest(range(1, len(offs) + 1)) AS rn
       FROM (SELECT {per_source}, list("offset" ORDER BY "offset") AS offs FROM {rows}
             GROUP BY {per_source}, hash(raw) HAVING count(*) > 1)"""


def record_key_joined_sql(rn: str) -> str:
    """The record key where ``rn`` is the row's rank among the rows of its source with the same text's
    hash (``record_key_sql``'s window; ``raw_repeats_sql``'s ``rn``, NULL when the text is alone)."""
    return f"""CASE WHEN process_pid IS NOT NULL AND pg_seq IS NOT NULL THEN hash(process_pid, pg_seq)
       ELSE hash(raw, COALESCE({rn}, CAST(1 AS BIGINT))) END"""


@dataclass(frozen=True)
class YearDecision:
    base_year: int | None  # year of the last year-epoch; None when every record has its own year
    last_epoch: int
    basis: str


def check_case_dir(case_dir: Path) -> None:
    """A case directory is ours or new: an existing directory without a case database must be
    empty, so that a mistyped ``--case`` never turns another directory (its files deleted from
    ``staging/``, its report.html overwritten) into a case."""
    case_dir = Path(case_dir)
    if case_dir.exists() and not case_dir.is_dir():
        raise UsageError(f"the case directory {case_dir} is a file, not a directory")
    if case_dir.is_dir() and not (case_dir / DB_NAME).exists():
        try:
            entries = sorted(p.name for p in case_dir.iterdir())
        except OSError as exc:
            raise UsageError(f"cannot read the case directory {case_dir}: {exc.strerror or exc}") from None
        if entries:
            shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
            raise UsageError(f"{case_dir} is not a logsalvage case (no {DB_NAME}) and not empty ({shown}): "
                             "give a new or empty directory, or an existing case")


def check_case_outside(case_dir: Path, paths: list[Path]) -> None:
    """Outputs never go into the evidence: the case may not be an evidence path, lie inside an
    evidence directory, or be the directory that holds an evidence file (its database, staging
    and report would sit among the evidence files)."""
    case = Path(case_dir).resolve()
    for p in paths:
        ev = Path(p).resolve()
        if case == ev or ev in case.parents or (not ev.is_dir() and case == ev.parent):
            raise UsageError(f"the case directory {case_dir} is inside the evidence {p}: outputs never go "
                             "into the evidence tree")


class CaseStore:
    """A case directory's database."""

    def __init__(self, case_dir: Path, *, read_only: bool = False):
        self.case_dir = Path(case_dir)
        self.path = self.case_dir / DB_NAME
        if read_only and not self.path.exists():
            raise UsageError(f"no case database at {self.path} (run 'logsalvage ingest' first)")
        if not read_only:
            check_case_dir(self.case_dir)
            self.case_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            raise UsageError(f"cannot open case database {self.path}: {exc}") from None
        except duckdb.Error as exc:
            raise UsageError(f"{self.path} is not a usable case database: {exc}") from None
        # bounded memory whatever the evidence size; DuckDB spills to disk past this
        self.con.execute("SET memory_limit = '512MB'")
        self.con.execute("SET preserve_insertion_order = false")
        # DuckDB's own progress bar writes to stdout, which belongs to --json output
        self.con.execute("SET enable_progress_bar = false")
        if not read_only:
            # (zstd on every column would write events a third faster, benchmarks/case_compression.py,
            # but reading them back then needs more memory: the full timeline export of the default
            # demo ran out of the 512 MB limit; DuckDB's own choice of codecs is kept)
            # a checkpoint rewrites the events table's last, partly filled row group: after every
            # 16 MiB of log (the default) that was a quarter of the default demo's ingest; every 64 MiB
            # halves it at the same peak memory
            self.con.execute("SET checkpoint_threshold = '64MB'")
        if not read_only:  # (a path with a quote in it must stay a path: SET takes no parameters)
            self.con.execute(f"SET temp_directory = '{_sql_str((self.case_dir / 'tmp').as_posix())}'")
        if not read_only:
            self.con.execute(SCHEMA)
            self.con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
            self._migrate()
        self.stage_dir = self.case_dir / "staging"

    def _migrate(self) -> None:
        """Bring a case written by an earlier version up to this schema, in place."""
        version = int(self.con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
        if version < 2:  # record_key: computed once for the events already in the case
            self.con.execute("BEGIN TRANSACTION")
            self.con.execute("ALTER TABLE events ADD COLUMN IF NOT EXISTS record_key UBIGINT")
            self.con.execute(f"""
                UPDATE events SET record_key = k.key
                FROM (SELECT source_id, "offset", {record_key_sql()} AS key FROM events) k
                WHERE events.source_id = k.source_id AND events."offset" = k."offset"
                """)
            self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", ['2'])
            self.con.execute("COMMIT")
        if version < 3:  # which engine read each source
            self.con.execute("ALTER TABLE sources ADD COLUMN IF NOT EXISTS parser VARCHAR")
            self.con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION)])

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
        """Record ``path``/``member`` as another copy of a source already read — unless it is that
        source's own input read again (a repeated ingest), which is no copy."""
        exists = self.con.execute(
            """SELECT 1 FROM source_copies WHERE source_id=? AND path=? AND member IS NOT DISTINCT FROM ?
               UNION ALL SELECT 1 FROM sources WHERE source_id=? AND path=? AND member IS NOT DISTINCT FROM ?""",
            [source_id, path, member, source_id, path, member]).fetchone()
        if not exists:
            self.con.execute("INSERT INTO source_copies VALUES (?, ?, ?, ?, ?)", [source_id, path, member, host, kind])

    def record_input(self, path: str, member: str | None, sha256: str | None, size: int | None, role: str,
                     host: str | None, detail: str | None) -> None:
        self.con.execute("DELETE FROM inputs WHERE path = ? AND member IS NOT DISTINCT FROM ?", [path, member])
        self.con.execute("INSERT INTO inputs VALUES (?, ?, ?, ?, ?, ?, ?)",
                         [path, member, sha256, size, role, host, detail])

    def insert_rows(self, table: str, columns: list[str], rows: list[tuple]) -> int:
        """Append many rows to ``table`` in one statement (through Arrow, not row by row).

        Aware datetimes go into TIMESTAMPTZ columns as the same instant."""
        if not rows:
            return 0
        if not table.isidentifier() or not all(c.isidentifier() for c in columns):
            raise ValueError(f"bad table or column name: {table} {columns}")
        types = dict(self.con.execute("SELECT column_name, data_type FROM information_schema.columns "
                                      "WHERE table_name = ?", [table]).fetchall())
        arrays = []
        for i, col in enumerate(columns):
            values = [row[i] for row in rows]
            arrays.append(pa.array(values, type=_ARROW_OF.get(types.get(col), pa.string())))
        batch = pa.table(arrays, names=columns)
        self.con.register("_bulk_rows", batch)
        try:
            cols = ", ".join(f'"{c}"' for c in columns)
            self.con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _bulk_rows")
        finally:
            self.con.unregister("_bulk_rows")
        return len(rows)

    def set_host_setting(self, host: str, key: str, value: str | None, basis: str | None) -> None:
        self.con.execute("INSERT OR REPLACE INTO host_settings VALUES (?, ?, ?, ?)", [host, key, value, basis])

    def host_setting(self, host: str, key: str) -> tuple[str | None, str | None] | None:
        row = self.con.execute("SELECT value, basis FROM host_settings WHERE host = ? AND key = ?",
                               [host, key]).fetchone()
        return (row[0], row[1]) if row else None

    def add_issue(self, source_id: str | None, path: str | None, offset: int | None, length: int | None,
                  line_no: int | None, reason: str, excerpt: str = "") -> None:
        self.con.execute("INSERT INTO issues VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                         [source_id, path, offset, length, line_no, reason, excerpt])

    # -- staging ------------------------------------------------------------------------------
    def commit_source(self, src: Source, years: YearDecision, staged: StagedSource, *, recovered: bool,
                      dedupe: bool = False) -> dict:
        """Turn a staged source into events and issues and register it, in one transaction.

        ``dedupe``: records with identical text are one event at the lowest offset, the others listed
        in ``copies`` (old copies of a file found again in a carved image).
        """
        return self.commit_sources([(src, years, staged, recovered)], dedupe=dedupe)[0]

    def commit_sources(self, batch: list[tuple[Source, YearDecision, StagedSource, bool]], *, dedupe: bool = False,
                       inputs: Iterable[tuple] = (), copies: Iterable[tuple] = (),
                       issues: Iterable[tuple] = ()) -> list[dict]:
        """Turn staged sources — (source, year decision, staged files, recovered) — into events and
        issues and register them, all in one transaction: the batch is wholly in the case or not at all.

        The statements are set-oriented over the whole batch (one read of all its staging files, each
        row joined to its own source's constants: host, year decision, time zone), so a batch of many
        small sources costs about what one did — a source's commit is mostly planning — and the
        result is the one of committing them one by one. Also recorded in the same transaction:
        ``inputs`` rows (path, member, sha256, size, role, host, detail), each replacing the earlier
        row of its path and member (as ``record_input``; the last of a path wins); ``copies``
        (source_id, path, member, host, kind), as ``add_copy`` once the batch's sources are in; and
        source-less ``issues`` (source_id, path, offset, length, line_no, reason, excerpt).
        Returns each source's counts and time span, in batch order.
        """
        inputs = list({(r[0], r[1]): r for r in inputs}.values())  # the last row of a path and member
        first: dict[tuple, tuple] = {}
        for r in copies:  # the first row of a copy (source, path, member), as add_copy keeps it
            first.setdefault(r[:3], r)
        copies = list(first.values())
        issues = list(issues)
        con = self.con
        tables = {}  # what the statements read, registered for the transaction
        if inputs:
            tables["_commit_inputs"] = pa.Table.from_pylist([dict(zip(_INPUT_SCHEMA.names, r)) for r in inputs],
                                                            schema=_INPUT_SCHEMA)
        if issues:
            tables["_commit_issues"] = pa.Table.from_pylist([dict(zip(_ISSUE_SCHEMA.names, r)) for r in issues],
                                                            schema=_ISSUE_SCHEMA)
        if copies:
            tables["_commit_copies"] = pa.Table.from_pylist([dict(zip(_COPY_SCHEMA.names, r)) for r in copies],
                                                            schema=_COPY_SCHEMA)
        held = False
        if batch:
            tables["_commit_batch"] = _batch_table(batch)
            # small sources' records kept in memory, each with its source's number
            kept = [st.events_table.append_column("_idx", pa.array([i] * st.events_table.num_rows, pa.int32()))
                    for i, (_, _, st, _) in enumerate(batch) if st.events_table is not None]
            if kept:
                tables["_commit_held"] = pa.concat_tables(kept, promote_options="permissive")
                held = True
            tables["_commit_files"] = pa.table(
                {"filename": pa.array([str(p) for _, _, st, _ in batch for p in st.events_paths], pa.string()),
                 "idx": pa.array([i for i, (_, _, st, _) in enumerate(batch) for _ in st.events_paths], pa.int32())})
        stats: list[dict] = []
        registered = []
        con.execute("BEGIN TRANSACTION")  # (first: it also completes any result left unread on the connection)
        try:
            for name, table in tables.items():
                con.register(name, table)
                registered.append(name)
            if inputs:
                con.execute("""DELETE FROM inputs WHERE EXISTS (SELECT 1 FROM _commit_inputs n
                                   WHERE n.path = inputs.path AND n.member IS NOT DISTINCT FROM inputs.member)""")
                con.execute("INSERT INTO inputs SELECT * FROM _commit_inputs")
            if issues:
                con.execute("INSERT INTO issues SELECT *, NULL FROM _commit_issues")
            if batch:
                stats = self._commit_staged(batch, dedupe, held)
            if copies:
                con.execute("""
                    INSERT INTO source_copies SELECT c.source_id, c.path, c.member, c.host, c.kind FROM _commit_copies c
                    WHERE NOT EXISTS (SELECT 1 FROM source_copies x WHERE x.source_id = c.source_id
                                        AND x.path = c.path AND x.member IS NOT DISTINCT FROM c.member)
                      AND NOT EXISTS (SELECT 1 FROM sources x WHERE x.source_id = c.source_id
                                        AND x.path = c.path AND x.member IS NOT DISTINCT FROM c.member)""")
            con.execute("COMMIT")
        except BaseException:
            self.abort()  # first: an aborted transaction refuses everything else (the unregisters below)
            raise
        finally:
            for name in registered:
                try:
                    con.unregister(name)
                except duckdb.Error:
                    pass  # never hides why the commit failed (an interrupt, a full disk)
        for _, _, staged, _ in batch:
            staged.discard()
        return stats

    def _commit_staged(self, batch: list[tuple[Source, YearDecision, StagedSource, bool]], dedupe: bool,
                       held: bool) -> list[dict]:
        """The events, issues and sources rows of a batch (``_commit_batch``: one row per source with
        its constants; ``_commit_files``: its staging files; ``_commit_held``, when ``held``: the
        records of the sources kept in memory), inside the open transaction."""
        con = self.con
        issue_files = [p for _, _, st, _ in batch for p in st.issues_paths]
        if issue_files:
            con.execute(f"""INSERT INTO issues SELECT source_id, path, "offset", length, line_no, reason, excerpt,
                                source_id || ':' || event_offset FROM read_parquet({_parquet_list(issue_files)})""")
        event_files = [p for _, _, st, _ in batch for p in st.events_paths]
        if event_files or held:
            self._commit_events(event_files, held, dedupe, several=len(batch) > 1)
        rows = con.execute("""
            INSERT INTO sources
            SELECT b.source_id, b.sha256, b.path, b.member, b.host, b.kind, b.format_id, b.size, b.compression,
                   b.mtime, b.rotation_date, b.tz, b.tz_basis, b.year_basis, b.lines, coalesce(e.n, 0),
                   coalesce(i.n, 0), e.first_ts, e.last_ts, b.parser
            FROM _commit_batch b
            LEFT JOIN (SELECT source_id, count(*) AS n, min(ts_utc) AS first_ts, max(ts_utc) AS last_ts FROM events
                       WHERE source_id IN (SELECT source_id FROM _commit_batch) GROUP BY source_id) e
              ON e.source_id = b.source_id
            LEFT JOIN (SELECT source_id, count(*) AS n FROM issues
                       WHERE source_id IN (SELECT source_id FROM _commit_batch) GROUP BY source_id) i
              ON i.source_id = b.source_id
            RETURNING source_id, events, issues, first_ts, last_ts""").fetchall()
        by_id = {r[0]: {"events": r[1], "issues": r[2], "first": r[3], "last": r[4]} for r in rows}
        return [by_id[src.source_id] for src, _, _, _ in batch]

    def _commit_events(self, event_files: list, held: bool, dedupe: bool, several: bool) -> None:
        """INSERT INTO events the staged records of the batch, each with its own source's constants:
        those of ``event_files`` and, when ``held``, those of the registered table ``_commit_held``
        (small sources' records kept in memory, with their source's number ``_idx``)."""
        con = self.con
        canon = ", ".join(f'e."{c}"' for c in CANONICAL_FIELDS)
        # every staged record with its source's number ``_idx`` (no staged column starts with '_') and
        # its local time, the year of a year-less one from its source's decision; a view over one
        # source's files (bounded memory whatever its size), a table when there are more (a batch of
        # small sources: their many files are read once, not by each statement)
        what = "TABLE" if several else "VIEW"
        parts = ([f"""SELECT r.* EXCLUDE (filename), f.idx AS _idx
                      FROM read_parquet({_parquet_list(event_files)}, filename = true) r
                      JOIN _commit_files f ON f.filename = r.filename"""] if event_files else [])
        parts += ["SELECT * FROM _commit_held"] if held else []
        con.execute(f"""
            CREATE OR REPLACE TEMP {what} staged AS
            SELECT *, CASE WHEN mo IS NULL THEN NULL
                           WHEN mo = 2 AND d = 29 AND NOT (yr % 4 = 0 AND (yr % 100 <> 0 OR yr % 400 = 0)) THEN NULL
                           ELSE make_timestamp(yr, mo, d, 0, 0, 0) + to_microseconds(sod_us) END AS ts_local
            FROM (SELECT r.*, COALESCE(r.y, b.base_year - (b.last_epoch - r.year_epoch)) AS yr
                  FROM ({" UNION ALL BY NAME ".join(parts)}) r
                  JOIN _commit_batch b ON b.idx = r._idx)
            """)
        if dedupe:
            source = "deduped"
            self._dedupe_view()
        else:
            source = "staged"
        dst = self._local_to_utc(file_order=not dedupe)
        con.execute(f"CREATE OR REPLACE TEMP TABLE raw_repeats AS {raw_repeats_sql(source, per_source='_idx')}")
        # the record key's rank among repeated texts (raw_repeats) and the source's constants
        # (_commit_batch) join by source and offset
        con.execute(f"""
            INSERT INTO events
            SELECT b.source_id || ':' || e."offset", b.source_id, b.host, b.kind, b.format_id, e.event_type, e.ts_utc,
              e.ts_local, e.ts_raw,
              concat_ws('; ',
                COALESCE(e.ts_note, CASE WHEN e.mo IS NULL THEN 'no timestamp'
                                         WHEN e.y IS NOT NULL THEN 'year in record'
                                         WHEN e.ts_local IS NULL THEN 'Feb 29 in non-leap year ' || e.yr || ': time undetermined'
                                         ELSE b.year_basis END),
                CASE WHEN e.mo IS NULL THEN NULL
                     WHEN e.utc_offset_s IS NOT NULL THEN 'UTC offset in record'
                     ELSE concat_ws('; ', b.tz_note, e.dst_note) END),
              b.recovered, e."offset", e.length, e.line_no, e.line_count, e.spans, e.copies, e.raw, e.message, {canon},
              e.extra, e.record_key
            FROM (SELECT s.*,
                    CASE WHEN ts_local IS NULL THEN NULL
                         WHEN utc_offset_s IS NOT NULL THEN timezone('UTC', ts_local - to_seconds(utc_offset_s))
                         {'WHEN r."offset" IS NOT NULL THEN r.utc' if dst else ''}
                         ELSE o.utc_start + (ts_local - o.h) END AS ts_utc,
                    {'r.dst_note' if dst else 'NULL::VARCHAR'} AS dst_note,
                    {record_key_joined_sql("k.rn")} AS record_key
                  FROM {source} s
                  LEFT JOIN raw_repeats k ON k._idx = s._idx AND k."offset" = s."offset"
                  LEFT JOIN hour_offsets o ON o.idx = s._idx AND o.h = date_trunc('hour', s.ts_local)
                                          AND s.utc_offset_s IS NULL
                  {'LEFT JOIN dst_records r ON r.idx = s._idx AND r."offset" = s."offset"' if dst else ''}) e
            JOIN _commit_batch b ON b.idx = e._idx
            """)
        if dst:
            con.execute("DROP TABLE dst_records")
        if dedupe:
            con.execute("DROP VIEW deduped")
            con.execute("DROP TABLE IF EXISTS copy_groups")
        con.execute(f"DROP {what} staged")
        con.execute("DROP TABLE hour_offsets")
        con.execute("DROP TABLE raw_repeats")

    def _dedupe_view(self) -> None:
        """View ``deduped``: the ``staged`` records with one record per text and source, the one at
        the lowest offset, the others' offsets added to its ``copies`` (the reference is
        ``DEDUPE_WINDOW_SQL``). The copies are found by a narrow aggregation (source, text -> offsets),
        not by windows that carry every column of every row; where two staged records share a source
        and offset (none are expected) the windows decide instead."""
        con = self.con
        shared = con.execute('SELECT count(*) - count(DISTINCT (_idx, "offset")) FROM staged').fetchone()[0]
        if shared:
            con.execute(f"CREATE OR REPLACE TEMP VIEW deduped AS {DEDUPE_WINDOW_SQL}")
            return
        con.execute("""
            CREATE OR REPLACE TEMP TABLE copy_groups AS
            SELECT _idx, offs[1] AS keep, offs[2:] AS others
            FROM (SELECT _idx, list("offset" ORDER BY "offset") AS offs FROM staged GROUP BY _idx, raw HAVING count(*) > 1)""")
        con.execute("""
            CREATE OR REPLACE TEMP VIEW deduped AS
            SELECT s.* REPLACE (nullif(concat_ws(',', s.copies, nullif(array_to_string(g.others, ','), '')), '') AS copies)
            FROM staged s
            LEFT JOIN copy_groups g ON g._idx = s._idx AND g.keep = s."offset"
            ANTI JOIN (SELECT _idx, unnest(others) AS "offset" FROM copy_groups) d
                 ON d._idx = s._idx AND d."offset" = s."offset"
            """)

    def _local_to_utc(self, *, file_order: bool) -> bool:
        """Offsets of the local hours of the ``staged`` records, each in its own source's zone (table
        ``hour_offsets``, per source and hour), and when a DST change is near some of them, each of those
        records placed on its own (table ``dst_records``, by source and offset: its UTC and a note when
        its local time is repeated or skipped). Returns whether ``dst_records`` was made.

        Per distinct local hour of a source, not per row (a few ICU lookups per hour): the offsets 6
        hours before and after it. Where the two differ, a local time valid with one offset only takes
        it; one valid with both (the hour repeated when the clock goes back) is its first occurrence
        (the offset before the change) — unless, in its file's order, it follows a record of that hour
        whose time is later by more than ``DST_STEP_BACK_MIN`` minutes: the clock went back in between,
        so it is the second occurrence; one valid with neither (skipped when the clock goes forward)
        is read with the offset before the change, as Python's zoneinfo reads it (fold=0). Records
        carved from an image have no file order: a repeated time is its first occurrence. (Read from
        ``staged``, not the deduplicated view, whose windows over the text are costly; the records
        deduplication keeps join by their offset.)
        """
        self.con.execute("""
            CREATE OR REPLACE TEMP TABLE hour_offsets AS
            SELECT idx, tz, h, timezone('UTC', h - to_seconds(before_s)) AS utc_start, before_s, after_s,
                   before_s <> after_s AS transition
            FROM (SELECT idx, tz, h, (epoch(timezone(tz, u - INTERVAL 6 HOUR)) - epoch(u - INTERVAL 6 HOUR))::BIGINT AS before_s,
                                     (epoch(timezone(tz, u + INTERVAL 6 HOUR)) - epoch(u + INTERVAL 6 HOUR))::BIGINT AS after_s
                  FROM (SELECT k.idx, b.tz, k.h, timezone(b.tz, k.h) AS u
                        FROM (SELECT DISTINCT _idx AS idx, date_trunc('hour', ts_local) AS h FROM staged
                              WHERE ts_local IS NOT NULL AND utc_offset_s IS NULL) k
                        JOIN _commit_batch b ON b.idx = k.idx))
            """)
        if not self.con.execute("SELECT count(*) FROM hour_offsets WHERE transition").fetchall()[0][0]:
            return False
        if file_order:
            second = f"""SELECT idx, "offset", bool_or(back) OVER (PARTITION BY idx, h ORDER BY "offset"
                                                                     ROWS UNBOUNDED PRECEDING) AS second
                         FROM (SELECT idx, "offset", h, ts_local < max(ts_local) OVER (PARTITION BY idx, h ORDER BY "offset"
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) - INTERVAL {DST_STEP_BACK_MIN} MINUTE AS back
                               FROM valid WHERE first_ok AND second_ok)"""
            first_why = "no earlier record of the file shows a later time of that hour"
        else:
            second = 'SELECT idx, "offset", false AS second FROM valid WHERE false'
            first_why = "carved records have no file order to show a second one"
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE dst_records AS
            WITH placed AS (
              SELECT s._idx AS idx, s."offset", o.tz, o.h, s.ts_local, o.before_s, o.after_s,
                     timezone('UTC', s.ts_local - to_seconds(o.before_s)) AS first_utc,
                     timezone('UTC', s.ts_local - to_seconds(o.after_s)) AS second_utc
              FROM staged s JOIN hour_offsets o ON o.idx = s._idx AND o.h = date_trunc('hour', s.ts_local)
              WHERE o.transition AND s.utc_offset_s IS NULL),
            valid AS (
              SELECT *, timezone(tz, first_utc) = ts_local AS first_ok, timezone(tz, second_utc) = ts_local AS second_ok
              FROM placed),
            passes AS ({second})
            SELECT v.idx, v."offset",
              CASE WHEN v.first_ok AND v.second_ok AND coalesce(p.second, false) THEN v.second_utc
                   WHEN v.second_ok AND NOT v.first_ok THEN v.second_utc
                   ELSE v.first_utc END AS utc,
              CASE WHEN v.first_ok AND v.second_ok AND coalesce(p.second, false)
                     THEN 'DST: local time repeated when the clock went back, taken as its second occurrence ('
                          || {_utc_offset_sql("v.after_s")} || '): an earlier record of the file shows a later '
                          || 'time of that hour (by more than {DST_STEP_BACK_MIN} minutes)'
                   WHEN v.first_ok AND v.second_ok
                     THEN 'DST: local time repeated when the clock went back, taken as its first occurrence ('
                          || {_utc_offset_sql("v.before_s")} || '): {first_why}'
                   WHEN NOT v.first_ok AND NOT v.second_ok
                     THEN 'DST: local time skipped when the clock went forward (it did not exist), read with the '
                          || 'offset before the change (' || {_utc_offset_sql("v.before_s")} || ')'
              END AS dst_note
            FROM valid v LEFT JOIN passes p USING (idx, "offset")
            """)
        return True

    def abort(self) -> None:
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # no transaction was open

    # -- carving ------------------------------------------------------------------------------
    def carved_records(self, chunk_files: list[Path], rejoined: Path, format_id: str,
                       anchor: date | None) -> Iterator[pa.RecordBatch]:
        """(offset, bytes, spans) of a carved format's records, in the order to parse them, as Arrow
        batches.

        Syslog records go in time order (year from the anchor: the latest year not after it), then
        pid, PostgreSQL seq and chunk, then offset: a message whose chunk lines lie in different
        places of the image comes together again. Other formats keep image order. DuckDB sorts
        out of core, so memory stays bounded whatever the image size.
        """
        files = ", ".join(f"'{_sql_str(f)}'" for f in chunk_files)
        if format_id == "syslog" and anchor is not None:
            months = "['Jan','Feb','Mar','Apr','May','Jun','Jul','Aug','Sep','Oct','Nov','Dec']"
            order = f"""
                CASE WHEN mo = 0 OR d IS NULL THEN NULL
                     WHEN mo * 100 + d <= {anchor.month * 100 + anchor.day + 1} THEN {anchor.year}
                     ELSE {anchor.year - 1} END NULLS LAST, mo, d, hms, pid, seq, chunk, "offset" """
            keys = f"""list_position({months}, substr(t, 1, 3)) AS mo, TRY_CAST(trim(substr(t, 5, 2)) AS INTEGER) AS d,
                       substr(t, 8, 8) AS hms,
                       TRY_CAST(regexp_extract(t, '\\[(\\d+)\\]: \\[\\d+-\\d+\\]', 1) AS BIGINT) AS pid,
                       TRY_CAST(regexp_extract(t, '\\]: \\[(\\d+)-\\d+\\]', 1) AS BIGINT) AS seq,
                       TRY_CAST(regexp_extract(t, '\\]: \\[\\d+-(\\d+)\\]', 1) AS BIGINT) AS chunk"""
        else:
            order, keys = '"offset"', "NULL AS nothing"
        reader = self.con.sql(f"""
            SELECT "offset", data, spans FROM (
              SELECT *, {keys} FROM (
                SELECT "offset", data, spans, decode(data) AS t FROM (
                  SELECT "offset", data, NULL::VARCHAR AS spans FROM read_parquet([{files}])
                  WHERE kind = 'record' AND format_id = ?
                  UNION ALL
                  SELECT "offset", data, spans FROM read_parquet('{_sql_str(rejoined)}') WHERE format_id = ?)))
            ORDER BY {order}""", params=[format_id, format_id])
        yield from _arrow_reader(reader, CARVED_BATCH_ROWS)

    # -- queries ------------------------------------------------------------------------------
    def host_dated_span(self, host: str) -> tuple | None:
        """First and last local date of events of ``host`` whose year came from the record itself."""
        row = self.con.execute(
            "SELECT min(ts_local)::DATE, max(ts_local)::DATE FROM events "
            "WHERE host = ? AND time_basis LIKE 'year in record%'", [host]).fetchall()[0]
        return row if row[1] is not None else None

    def query(self, sql: str, params: Iterable = ()) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def execute(self, sql: str, params: Iterable = ()) -> None:
        self.con.execute(sql, list(params))

    def columns(self, sql: str, params: Iterable = ()) -> dict:
        """A query's result as one numpy array per column (bulk numbers for analysis and plots)."""
        return self.con.execute(sql, list(params)).fetchnumpy()

    def regex_error(self, pattern: str) -> str | None:
        """Why DuckDB (RE2) rejects ``pattern``, or None when it is a valid regular expression."""
        try:
            self.con.execute("SELECT regexp_matches('', ?)", [pattern])
        except duckdb.Error as exc:
            return str(exc).split("\n", 1)[0]
        return None

    def carved_formats(self, image_sha: str) -> set[str]:
        """The formats an image was carved for, once all of them are committed (empty before)."""
        return set(filter(None, (self.meta(f"carve.done.{image_sha}") or "").split(",")))

    def set_carved(self, image_sha: str, formats: Iterable[str]) -> None:
        self.set_meta(f"carve.done.{image_sha}", ",".join(sorted(formats)))

    def meta(self, key: str) -> str | None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def transaction(self):
        """``with store.transaction():`` commits on success, rolls back on any error."""
        return _Transaction(self.con)

    def arrow_batches(self, sql: str, params: Iterable = (), rows: int = 65_536) -> Iterator[pa.RecordBatch]:
        """The result of ``sql`` as a stream of Arrow batches (memory bounded by the batch)."""
        yield from _arrow_reader(self.con.sql(sql, params=list(params) or None), rows)

    def query_dicts(self, sql: str, params: Iterable = ()) -> Iterator[dict]:
        cur = self.con.execute(sql, list(params))
        names = [d[0] for d in cur.description]
        while True:
            rows = cur.fetchmany(10_000)
            if not rows:
                return
            for row in rows:
                yield dict(zip(names, row))


class _Transaction:
    def __init__(self, con):
        self.con = con

    def __enter__(self):
        self.con.execute("BEGIN TRANSACTION")
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.con.execute("ROLLBACK" if exc_type else "COMMIT")


def _utc_offset_sql(seconds: str) -> str:
    """SQL text 'UTC-04:00' of an offset given in seconds east of UTC."""
    return (f"printf('UTC%s%02d:%02d', CASE WHEN {seconds} < 0 THEN '-' ELSE '+' END, abs({seconds}) // 3600, "
            f"abs({seconds}) % 3600 // 60)")


_INPUT_SCHEMA = pa.schema([("path", pa.string()), ("member", pa.string()), ("sha256", pa.string()),
                           ("size", pa.int64()), ("role", pa.string()), ("host", pa.string()), ("detail", pa.string())])
_ISSUE_SCHEMA = pa.schema([("source_id", pa.string()), ("path", pa.string()), ("offset", pa.int64()),
                           ("length", pa.int64()), ("line_no", pa.int64()), ("reason", pa.string()),
                           ("excerpt", pa.string())])
_COPY_SCHEMA = pa.schema([("source_id", pa.string()), ("path", pa.string()), ("member", pa.string()),
                          ("host", pa.string()), ("kind", pa.string())])
_BATCH_SCHEMA = pa.schema([
    ("idx", pa.int32()), ("source_id", pa.string()), ("sha256", pa.string()), ("path", pa.string()),
    ("member", pa.string()), ("host", pa.string()), ("kind", pa.string()), ("format_id", pa.string()),
    ("size", pa.int64()), ("compression", pa.string()), ("mtime", pa.timestamp("us", tz="UTC")),
    ("rotation_date", pa.date32()), ("tz", pa.string()), ("tz_basis", pa.string()), ("year_basis", pa.string()),
    ("lines", pa.int64()), ("parser", pa.string()), ("base_year", pa.int64()), ("last_epoch", pa.int64()),
    ("tz_note", pa.string()), ("recovered", pa.bool_())])


def _batch_table(batch: list[tuple[Source, YearDecision, StagedSource, bool]]) -> pa.Table:
    """One row per source of a batch: what its sources row holds and what its events take from it."""
    rows = [{"idx": i, "source_id": src.source_id, "sha256": src.sha256, "path": src.path, "member": src.member,
             "host": src.host, "kind": src.kind, "format_id": src.format_id, "size": src.size,
             "compression": src.compression, "mtime": src.mtime, "rotation_date": src.rotation_date, "tz": src.tz,
             "tz_basis": src.tz_basis, "year_basis": years.basis, "lines": staged.lines, "parser": staged.parser,
             # a year-less record's year: base year minus the year epochs after its own (see staging)
             "base_year": years.base_year if years.base_year is not None else 1970,
             "last_epoch": years.last_epoch, "tz_note": f"time zone {src.tz} ({src.tz_basis})",
             "recovered": bool(recovered)}
            for i, (src, years, staged, recovered) in enumerate(batch)]
    return pa.Table.from_pylist(rows, schema=_BATCH_SCHEMA)


def _parquet_list(paths) -> str:
    return "[" + ", ".join(f"'{_sql_str(p)}'" for p in paths) + "]"


def _sql_str(value) -> str:
    return str(value).replace("'", "''")

