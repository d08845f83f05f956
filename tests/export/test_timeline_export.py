"""Timeline exports built in slices of the time axis by DuckDB: the same lines, in the same total
order, whatever the slice size, and each line the event as Timesketch expects it (compared with
the event read back field by field)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logsalvage import export as export_module
from logsalvage.config import parse_config
from logsalvage.export import export
from logsalvage.ingest import ingest
from logsalvage.model import CANONICAL_FIELDS
from logsalvage.store import CaseStore

CONFIG = parse_config({"hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"]}}}, "test")


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    logs = root / "ev/web01/var/log"
    (logs / "httpd").mkdir(parents=True)
    # several records per second, two files sharing seconds, program output in the error log
    (logs / "httpd/access_log").write_text("".join(
        f'198.51.100.{i % 7} - - [15/Jul/2017:08:{i // 60:02d}:{(i // 3) % 60:02d} +0900] '
        f'"GET /p{i}?q=\\"x\\" HTTP/1.1" {200 + (i % 3) * 100} {i} "-" "UA ✓ {i}"\n' for i in range(180)))
    (logs / "httpd/access_log.1").write_text("".join(
        f'203.0.113.5 - - [15/Jul/2017:08:00:{s:02d} +0900] "GET /old HTTP/1.1" 200 1 "-" "-"\n'
        for s in range(0, 60, 2)))
    (logs / "httpd/error_log").write_text(
        "[Sat Jul 15 08:00:30 2017] [error] [client 198.51.100.1] File does not exist: /var/www/html/x\n"
        "--2017-07-15 08:00:31--  http://dl.example/a.tgz\n"
        "Resolving dl.example... 203.0.113.7\n"
        "Saving to: `a.tgz'\n")
    (logs / "vsftpd.log").write_text(
        'Sat Jul 15 08:01:00 2017 [pid 3002] [x] OK UPLOAD: Client "79.172.212.37", "/htdocs/a.php", '
        '1234 bytes, 98.00Kbyte/sec\n')
    ingest([root / "ev"], root / "case", config=CONFIG)
    return root / "case"


def _expected(store: CaseStore) -> list[dict]:
    """Every event as a Timesketch record, built in Python from the row (the reference)."""
    fields = ["host", "kind", "format_id", "event_type", "ts_raw", "time_basis", "recovered", "source_path",
              "offset", "line_no", *CANONICAL_FIELDS]
    cols = ", ".join(f'e."{c}"' for c in CANONICAL_FIELDS)
    out = []
    for row in store.query_dicts(f"""
            SELECT e.event_id, e.ts_utc, e.message, e.raw, e.host, e.kind, e.format_id, e.event_type, e.ts_raw,
                   e.time_basis, e.recovered, s.path || COALESCE('!' || s.member, '') AS source_path,
                   e."offset", e.line_no, {cols}, e.extra
            FROM events e JOIN sources s USING (source_id)
            ORDER BY e.ts_utc NULLS LAST, e.source_id, e."offset" """):
        ts = row["ts_utc"]
        record = {"message": row["message"] if row["message"] is not None else row["raw"],
                  "datetime": ts.isoformat() if ts is not None else None,
                  "timestamp": int(ts.timestamp() * 1_000_000) if ts is not None else None,
                  "timestamp_desc": "Event Recorded" if ts is not None else "No Timestamp",
                  "event_id": row["event_id"]}
        record = {k: v for k, v in record.items() if v is not None}
        record.update({name: row[name] for name in fields if row[name] is not None})
        for key, value in json.loads(row["extra"] or "{}").items():
            record[f"x_{key}"] = value
        out.append(record)
    return out


def test_each_line_is_the_event_and_the_order_is_total(case, tmp_path):
    out = tmp_path / "t.jsonl"
    with CaseStore(case, read_only=True) as store:
        n = export(store, "timesketch-jsonl", out)
        expected = _expected(store)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert n == len(lines) == len(expected) > 200
    got = [json.loads(line) for line in lines]
    assert got == expected
    assert [list(g) for g in got] == [list(e) for e in expected]  # same member order too
    assert [g["timestamp"] for g in got] == sorted(g["timestamp"] for g in got)
    assert any("x_" in "".join(g) for g in got)  # the formats' extra captures are carried
    assert all("\n" not in line and "\t" not in line for line in lines)


@pytest.mark.parametrize("fmt", ["timesketch-jsonl", "timesketch-csv", "csv"])
def test_slicing_the_time_axis_changes_nothing(case, tmp_path, monkeypatch, fmt):
    whole, sliced = tmp_path / "whole", tmp_path / "sliced"
    with CaseStore(case, read_only=True) as store:
        n = export(store, fmt, whole)
        monkeypatch.setattr(export_module, "SLICE_EVENTS", 7)
        assert len(export_module._time_slices(store)) > 20
        assert export(store, fmt, sliced) == n
    assert sliced.read_bytes() == whole.read_bytes()
