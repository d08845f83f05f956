"""Timeline exports: Timesketch JSONL and CSV, and a spreadsheet-safe CSV.

Rows come out in a total order (UTC time, source, offset) so two exports of the same case are
byte-identical. Every field is attacker-controlled text: the spreadsheet CSV neutralises cells a
spreadsheet would run as formulas.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from logsalvage.errors import UsageError
from logsalvage.model import CANONICAL_FIELDS
from logsalvage.store import CaseStore

FORMATS = ("timesketch-jsonl", "timesketch-csv", "csv")
_FIELDS = ["host", "kind", "format_id", "event_type", "ts_raw", "time_basis", "recovered", "source_path",
           "offset", "line_no", *CANONICAL_FIELDS]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "|", "%")


def _rows(store: CaseStore):
    cols = ", ".join(f'e."{c}"' for c in CANONICAL_FIELDS)
    yield from store.query_dicts(f"""
        SELECT e.event_id, e.ts_utc, e.message, e.raw, e.host, e.kind, e.format_id, e.event_type, e.ts_raw,
               e.time_basis, e.recovered, s.path || COALESCE('!' || s.member, '') AS source_path, e."offset",
               e.line_no, {cols}, e.extra
        FROM events e JOIN sources s USING (source_id)
        ORDER BY e.ts_utc NULLS LAST, e.source_id, e."offset"
    """)


def _timesketch(row: dict) -> dict:
    ts = row["ts_utc"]
    out = {
        "message": row["message"] if row["message"] is not None else row["raw"],
        "datetime": ts.isoformat() if ts is not None else None,
        "timestamp": int(ts.timestamp() * 1_000_000) if ts is not None else None,
        "timestamp_desc": "Event Recorded" if ts is not None else "No Timestamp",
        "event_id": row["event_id"],
    }
    for name in _FIELDS:
        value = row.get(name)
        if value is not None:
            out[name] = value
    if row.get("extra"):
        for k, v in json.loads(row["extra"]).items():
            out.setdefault(f"x_{k}", v)
    return out


def spreadsheet_safe(value) -> str:
    """Text a spreadsheet shows as text: formula-leading cells get a leading apostrophe."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def export(store: CaseStore, fmt: str, out: Path) -> int:
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    n = 0
    header = ["message", "datetime", "timestamp", "timestamp_desc", "event_id", *_FIELDS]
    with open(out, "w", encoding="utf-8", newline="") as fh:
        if fmt == "timesketch-jsonl":
            for row in _rows(store):
                fh.write(json.dumps(_timesketch(row), ensure_ascii=False, sort_keys=False, default=str) + "\n")
                n += 1
            return n
        writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(header)
        for row in _rows(store):
            ts = _timesketch(row)
            values = [ts.get(h) for h in header]
            if fmt == "csv":
                values = [spreadsheet_safe(v) for v in values]
            writer.writerow(["" if v is None else v for v in values])
            n += 1
    return n
