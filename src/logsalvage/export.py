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
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterator

from logsalvage.errors import UsageError
from logsalvage.model import CANONICAL_FIELDS
from logsalvage.store import CaseStore

FORMATS = ("timesketch-jsonl", "timesketch-csv", "csv")
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
}
_EXTRA_JSON = """CASE WHEN e.extra IS NULL THEN '{}'::JSON ELSE to_json(map_from_entries(list_transform(
                    json_keys(e.extra::JSON),
                    lambda k: struct_pack(k := 'x_' || k, v := e.extra::JSON -> k)))) END"""


def _value(name: str) -> str:
    return _SQL_VALUE.get(name, f'e."{name}"')


def _time_slices(store: CaseStore) -> list[tuple[str, list]]:
    """WHERE clauses (with their parameters) cutting the time axis into slices of about
    SLICE_EVENTS events, in order; the last one also holds the events without a time."""
    (n,) = store.query("SELECT count(*) FROM events")[0]
    parts = max(1, n // SLICE_EVENTS)
    cuts = []
    if parts > 1:
        (qs,) = store.query("SELECT quantile_disc(ts_utc, ?) FROM events", [[i / parts for i in range(1, parts)]])[0]
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


def _ordered(store: CaseStore, select: str) -> Iterator[tuple]:
    """Rows of ``select`` over every event, in export order, one time slice at a time."""
    for where, params in _time_slices(store):
        cur = store.con.execute(f"""
            SELECT {select} FROM events e JOIN sources s USING (source_id)
            WHERE {where}
            ORDER BY e.ts_utc NULLS LAST, e.source_id, e."offset" """, params)
        while rows := cur.fetchmany(20_000):
            yield from rows


def _jsonl_lines(store: CaseStore) -> Iterator[str]:
    fields = ", ".join(f"'{name}': {_value(name)}" for name in _HEADER)
    # merging into '{}' drops the null members; the extras are merged in after the fields
    line = f"json_merge_patch(json_merge_patch('{{}}', to_json({{{fields}}})), {_EXTRA_JSON})"
    for (text,) in _ordered(store, line):
        yield text


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


def export(store: CaseStore, fmt: str, out: Path) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    n = 0
    with open(out, "w", encoding="utf-8", newline="") as fh:
        if fmt == "timesketch-jsonl":
            batch = []
            for text in _jsonl_lines(store):
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
        writer.writerow(_HEADER)
        for row in _ordered(store, ", ".join(_value(name) for name in _HEADER)):
            # both CSV formats: Timesketch imports its CSV, and analysts open it in spreadsheets
            writer.writerow([spreadsheet_safe(v) for v in row])
            n += 1
    return n
