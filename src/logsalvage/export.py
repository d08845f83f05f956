"""Timeline exports: Timesketch JSONL and CSV, and a plain CSV (both CSVs spreadsheet-safe).

Rows come out in a total order (UTC time, source, offset) so two exports of the same case are
byte-identical. Every field is attacker-controlled text: both CSV formats pass every text cell
through ``spreadsheet_safe`` (see there what it neutralises) and quote every cell, so no cell and
no line of the file can be run by a spreadsheet as a formula; the exact text stays in the case
database and in the JSONL export.

The case can hold millions of events, so the export is read in slices of the time axis (each
slice sorted on its own, a bounded sort within the store's memory limit), and the Timesketch
JSONL lines are built by DuckDB itself: a field that is empty is left out, and the format's
extra captures follow as ``x_<name>``.

Three scopes. ``full``: every event of the case. ``findings``: what an analyst loads into
Timesketch first, read from ``findings.json`` — the events behind every finding, milestone and the
verdict, each with a ``tag`` list (Timesketch's tags: the ids and rules of the findings it
supports, the kinds of its milestones, ``verdict:<verdict>``). An info finding only describes
routine activity (the application's usual statements) through up to 10,000 examples: its first
INFO_FINDING_EVENTS are in the scope, as many as the report quotes (all of them: ten times the size).
At the default demo's scale the scope is 1.1 % of the full export's 2.1 GB. ``window`` adds every
database record (PostgreSQL's, MySQL's) inside the exposure window, tagged when a finding names
it: most of a database server's log, so it is asked for, never the default. The scope is a
temporary table of event ids and tags in the case database, joined to the events slice by slice:
nothing the size of the case is held in Python.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from logsalvage.errors import UsageError
from logsalvage.findings_file import read_findings
from logsalvage.model import CANONICAL_FIELDS
from logsalvage.store import CaseStore

FORMATS = ("timesketch-jsonl", "timesketch-csv", "csv")
SCOPES = ("findings", "window", "full")
_FIELDS = ["host", "kind", "format_id", "event_type", "ts_raw", "time_basis", "recovered", "source_path",
           "offset", "line_no", *CANONICAL_FIELDS]
_HEADER = ["message", "datetime", "timestamp", "timestamp_desc", "event_id", *_FIELDS]
# what a spreadsheet may start a formula (or a DDE call) with, and what it ignores before one
_FORMULA_CHARS = "=+-@|%"
_CELL_START = tuple(_FORMULA_CHARS + "\t\r\n")  # OWASP: TAB and CR as a cell's first character too
# a line break inside a cell (whatever a spreadsheet, or str.splitlines, starts a new line at)
# followed, after blanks, by a formula character
_LINE_THEN_FORMULA = re.compile("(\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029])" r"(?=\s*[-=+@|%])")
SLICE_EVENTS = 200_000  # events per sorted slice of the time axis
# an info finding describes routine activity (the application's usual statements, …) and carries
# up to 10,000 examples of it: the scoped export keeps as many as the report quotes
INFO_FINDING_EVENTS = 20

_SQL_VALUE = {
    "message": "COALESCE(e.message, e.raw)",
    # Python's isoformat: microseconds only when there are any, offset written +00:00
    "datetime": """CASE WHEN e.ts_utc IS NULL THEN NULL
                        WHEN microsecond(e.ts_utc) % 1000000 = 0
                        THEN strftime(timezone('UTC', e.ts_utc), '%Y-%m-%dT%H:%M:%S+00:00')
                        ELSE strftime(timezone('UTC', e.ts_utc), '%Y-%m-%dT%H:%M:%S.%f+00:00') END""",
    "timestamp": "epoch_us(e.ts_utc)",
    "timestamp_desc": "CASE WHEN e.ts_utc IS NULL THEN 'No Timestamp' ELSE 'Event Recorded' END",
    "source_path": "s.path || COALESCE('!' || s.member, '')",
    "tag": "coalesce(t.tags, []::VARCHAR[])",
}
_EXTRA_JSON = """CASE WHEN e.extra IS NULL THEN '{}'::JSON ELSE to_json(map_from_entries(list_transform(
                    json_keys(e.extra::JSON),
                    lambda k: struct_pack(k := 'x_' || k, v := e.extra::JSON -> k)))) END"""


def _value(name: str) -> str:
    return _SQL_VALUE.get(name, f'e."{name}"')


def _csv_value(name: str) -> str:
    # a CSV cell holds the tag list as a JSON array, which Timesketch's CSV import reads as tags
    return f"to_json({_value(name)})::VARCHAR" if name == "tag" else _value(name)


@dataclass(frozen=True)
class _Rows:
    """The events an export writes: a FROM clause over ``events e`` and ``sources s`` and a
    condition on it (with its parameters), and whether each row carries a ``tag`` list (``t.tags``)."""

    source: str = "events e JOIN sources s USING (source_id)"
    where: str = "TRUE"
    params: tuple = ()
    tagged: bool = False


_EVERY_EVENT = _Rows()
_DATABASE_RECORD = "(e.event_type LIKE 'postgresql%' OR e.event_type LIKE 'mysql.%')"


def _time_slices(store: CaseStore, rows: _Rows = _EVERY_EVENT) -> list[tuple[str, list]]:
    """WHERE clauses (with their parameters) cutting the time axis of ``rows`` into slices of about
    SLICE_EVENTS events, in order; the last one also holds the events without a time."""
    (n,) = store.query(f"SELECT count(*) FROM {rows.source} WHERE {rows.where}", list(rows.params))[0]
    parts = max(1, n // SLICE_EVENTS)
    cuts = []
    if parts > 1:
        (qs,) = store.query(f"SELECT quantile_disc(e.ts_utc, ?) FROM {rows.source} WHERE {rows.where}",
                            [[i / parts for i in range(1, parts)], *rows.params])[0]
        cuts = sorted({q for q in qs or [] if q is not None})
    bounds = [None, *cuts, None]
    slices = []
    for lo, hi in zip(bounds, bounds[1:]):
        conds, params = [], []
        if lo is not None:
            conds.append("e.ts_utc >= ?")
            params.append(lo)
        if hi is not None:
            conds.append("e.ts_utc < ?")
            params.append(hi)
        where = " AND ".join(conds) or "TRUE"
        if hi is None:
            where = f"(({where}) OR e.ts_utc IS NULL)"
        slices.append((where, params))
    return slices


def _ordered(store: CaseStore, select: str, rows: _Rows = _EVERY_EVENT) -> Iterator[tuple]:
    """Rows of ``select`` over ``rows``, in export order, one time slice at a time."""
    for where, params in _time_slices(store, rows):
        cur = store.con.execute(f"""
            SELECT {select} FROM {rows.source}
            WHERE ({rows.where}) AND {where}
            ORDER BY e.ts_utc NULLS LAST, e.source_id, e."offset" """, [*rows.params, *params])
        while batch := cur.fetchmany(20_000):
            yield from batch


def _header(rows: _Rows) -> list[str]:
    return [*_HEADER, "tag"] if rows.tagged else _HEADER


def _jsonl_lines(store: CaseStore, rows: _Rows = _EVERY_EVENT) -> Iterator[str]:
    fields = ", ".join(f"'{name}': {_value(name)}" for name in _header(rows))
    # merging into '{}' drops the null members; the extras are merged in after the fields
    line = f"json_merge_patch(json_merge_patch('{{}}', to_json({{{fields}}})), {_EXTRA_JSON})"
    for (text,) in _ordered(store, line, rows):
        yield text


def _tags(findings: Mapping) -> list[tuple[str, str, bool]]:
    """(event id, tag, in the findings scope) rows: each finding's id and rule, each milestone's kind
    and ``verdict:<verdict>`` on the events behind them; an info finding's events past its first
    INFO_FINDING_EVENTS are tagged but not in the scope by themselves."""
    rows: list[tuple[str, str, bool]] = []

    def add(event_ids, *names, limit: int | None = None) -> None:
        for i, event_id in enumerate(dict.fromkeys(event_ids or ())):
            rows.extend((str(event_id), str(name), limit is None or i < limit) for name in names if name)

    for f in findings.get("findings") or []:
        limit = INFO_FINDING_EVENTS if f.get("severity") == "info" else None
        add(f.get("event_ids"), f.get("id"), f.get("rule"), limit=limit)
    for m in findings.get("milestones") or []:
        add(m.get("event_ids"), m.get("kind"))
    verdict = findings.get("verdict") or {}
    add(verdict.get("event_ids"), f"verdict:{verdict.get('exfiltration') or 'undetermined'}")
    return rows


def _scoped_rows(store: CaseStore, findings: Mapping, with_window: bool) -> _Rows:
    """The events behind ``findings``, and with ``with_window`` the database records inside the
    exposure window too; their tags in the temporary table ``export_tags`` (event id, sorted tags,
    in the findings scope)."""
    store.con.execute("CREATE OR REPLACE TEMP TABLE export_tag_rows (event_id VARCHAR, tag VARCHAR, scoped BOOLEAN)")
    store.insert_rows("export_tag_rows", ["event_id", "tag", "scoped"], _tags(findings))
    store.con.execute("""CREATE OR REPLACE TEMP TABLE export_tags AS
                         SELECT event_id, list_sort(list_distinct(list(tag))) AS tags, bool_or(scoped) AS scoped
                         FROM export_tag_rows GROUP BY event_id""")
    store.con.execute("DROP TABLE export_tag_rows")
    window = findings.get("exposure_window") or {}
    source = "events e JOIN sources s USING (source_id) LEFT JOIN export_tags t USING (event_id)"
    if not (with_window and window.get("start") and window.get("end")):
        return _Rows(source, "t.scoped", (), tagged=True)
    return _Rows(source, f"t.scoped OR ({_DATABASE_RECORD} AND e.ts_utc BETWEEN ?::TIMESTAMPTZ AND ?::TIMESTAMPTZ)",
                 (window["start"], window["end"]), tagged=True)


def spreadsheet_safe(value):
    """A CSV cell a spreadsheet shows as text, never runs (OWASP's CSV-injection guidance).

    Numbers pass as they are (a number is not a formula). Any other value is text, and gets a
    leading apostrophe when it starts with ``= + - @ | %``, TAB, CR or LF, or with one of
    ``= + - @ | %`` after leading whitespace; the same apostrophe goes after every line break inside
    the cell that is followed (after blanks) by one of those characters, so no line of the file
    starts a formula even for a reader that splits lines. The writer quotes every cell, so an
    embedded CR, LF or quote never ends the row. Nothing but those apostrophes is added or changed;
    the exact text stays in the case database and in the JSONL export.
    """
    if value is None:
        return ""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = _LINE_THEN_FORMULA.sub(r"\1'", str(value))
    if text.startswith(_CELL_START) or text.lstrip().startswith(tuple(_FORMULA_CHARS)):
        text = "'" + text
    return text


def export(store: CaseStore, fmt: str, out: Path, *, scope: str = "full", findings: Mapping | None = None) -> int:
    """Write the events of ``scope`` to ``out`` in ``fmt``; the number written. The scoped exports
    read ``findings`` (default: the case's ``findings.json``)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if scope not in SCOPES:
        raise UsageError(f"unknown export scope {scope!r}; choose one of {', '.join(SCOPES)}")
    rows = _EVERY_EVENT
    if scope != "full":
        if findings is None:
            findings = read_findings(store.case_dir, otherwise=", or export with --scope full")
        rows = _scoped_rows(store, findings, with_window=scope == "window")
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as fh:
        if fmt == "timesketch-jsonl":
            batch = []
            for text in _jsonl_lines(store, rows):
                batch.append(text)
                if len(batch) >= 20_000:
                    fh.write("\n".join(batch) + "\n")
                    n += len(batch)
                    batch = []
            if batch:
                fh.write("\n".join(batch) + "\n")
                n += len(batch)
            return n
        # every cell quoted: an embedded CR or LF (which Python's writer leaves unquoted when it is
        # not in the line terminator) can never start a row
        writer = csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow(_header(rows))
        for row in _ordered(store, ", ".join(_csv_value(name) for name in _header(rows)), rows):
            # both CSV formats: Timesketch imports its CSV, and analysts open it in spreadsheets
            writer.writerow([spreadsheet_safe(v) for v in row])
            n += 1
    return n
