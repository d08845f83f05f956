"""Both CSV exports are safe to open in a spreadsheet (issue 13): no cell, and no physical line of
the file, starts with a formula character, whatever the evidence holds (a bare CR or LF inside a
message included), every event is one row, and the only change to the text is the apostrophes
that neutralise it (the JSONL export keeps the exact text)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from logsalvage.config import parse_config
from logsalvage.export import export, spreadsheet_safe
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

HOSTILE = ["=1+1", "\r=1+1", "\n@SUM(1)", "+cmd", "-2+3", "\t=x", "  =x", "%0A=x", "|calc", "a\r\n  +b",
           "@x\u2028=y"]
FORMULA = "=+-@|%"
CONFIG = parse_config({"hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"]}}}, "test")


def _risky(text: str) -> bool:
    """Would a spreadsheet (or a reader splitting lines) start a formula here?"""
    return text.startswith(tuple(FORMULA + "\t\r\n")) or text.lstrip().startswith(tuple(FORMULA))


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile-csv")
    logs = root / "ev/web01/var/log"
    (logs / "httpd").mkdir(parents=True)
    # syslog messages carry every value (a line that starts with LF is a continuation: the message
    # is the two lines); the access log's user agent those without TAB or line breaks, its user
    # those without blanks
    (logs / "messages").write_bytes("".join(
        f"Jul 15 08:00:{i:02d} web01 prog[{100 + i}]:{v}\n" for i, v in enumerate(HOSTILE)).encode())
    one_line = [v for v in HOSTILE if not re.search(r"[\t\r\n]", v)]
    (logs / "httpd/access_log").write_bytes("".join(
        f'198.51.100.{i} - {"-" if " " in v else v} [15/Jul/2017:08:01:{i:02d} +0900] "GET /{i} HTTP/1.1" 200 1 '
        f'"-" "{v}"\n' for i, v in enumerate(one_line)).encode())
    ingest([root / "ev"], root / "case", config=CONFIG)
    return root / "case"


@pytest.fixture(scope="module")
def events(case) -> list[dict]:
    """The events as the case holds them, checked to hold the hostile text."""
    with CaseStore(case, read_only=True) as store:
        events = list(store.query_dicts(
            "SELECT event_id, COALESCE(message, raw) AS message, user_name, user_agent FROM events"))
    messages = {e["message"] for e in events}
    agents = {e["user_agent"] for e in events}
    names = {e["user_name"] for e in events}
    assert {"\r=1+1", "\n@SUM(1)", "+cmd", "-2+3", "\t=x", "a\n  +b", "@x\u2028=y"} <= messages
    assert {"=1+1", "  =x", "+cmd", "-2+3", "|calc", "@x\u2028=y"} <= agents
    assert {"=1+1", "+cmd", "-2+3", "|calc"} <= names
    return events


@pytest.mark.parametrize("fmt", ["csv", "timesketch-csv"])
def test_no_cell_and_no_line_starts_a_formula(case, events, tmp_path, fmt):
    out = tmp_path / f"t.{fmt}"
    with CaseStore(case, read_only=True) as store:
        n = export(store, fmt, out)
    text = out.read_bytes().decode("utf-8")

    # the raw file, line by line, whatever a reader takes for a line break
    for lines in (re.split(r"\r\n|\r|\n", text), text.splitlines()):
        bad = [line for line in lines if _risky(line)]
        assert not bad, bad

    # parsed back: one row per event, no cell a formula, the text itself only gained apostrophes
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, rows = rows[0], rows[1:]
    assert {"message", "datetime", "timestamp", "timestamp_desc"} <= set(header)
    assert n == len(rows) == len(events)
    assert all(len(row) == len(header) for row in rows)
    bad = [cell for row in rows for cell in row if _risky(cell)]
    assert not bad, bad
    by_id = {e["event_id"]: e for e in events}
    for row in map(dict, (zip(header, row) for row in rows)):
        event = by_id[row["event_id"]]
        for name in ("message", "user_name", "user_agent"):
            original = event[name] or ""
            assert row[name].replace("'", "") == original.replace("'", "")
            if _risky(original):
                assert row[name] != original
        # the columns Timesketch needs, as we generate them (nothing to neutralise there)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", row["datetime"])
        assert row["timestamp"].isdigit() and row["timestamp_desc"] == "Event Recorded"

    # the exact text is still there for whoever needs it: in the JSONL export
    jsonl = tmp_path / "t.jsonl"
    with CaseStore(case, read_only=True) as store:
        export(store, "timesketch-jsonl", jsonl)
    lines = jsonl.read_text(encoding="utf-8").rstrip("\n").split("\n")  # U+2028 is not a line break here
    exact = {r["event_id"]: r["message"] for r in map(json.loads, lines)}
    assert exact == {e["event_id"]: e["message"] for e in events}


CELLS = [
    ("=1+1", "'=1+1"), ("\r=1+1", "'\r'=1+1"), ("\n@SUM(1)", "'\n'@SUM(1)"), ("+cmd", "'+cmd"),
    ("-2+3", "'-2+3"), ("\t=x", "'\t=x"), ("  =x", "'  =x"), ("\tplain", "'\tplain"),
    ("a\n=b", "a\n'=b"), ("a\r\n  +b\n\nc", "a\r\n'  +b\n\nc"), ("x\u2028=y", "x\u2028'=y"),
    ("plain", "plain"), ("", ""), ("  ", "  "), ("a-b=c", "a-b=c"), (None, ""), (-5, -5), (2.5, 2.5),
]


def test_spreadsheet_safe_cells():
    """Text gains apostrophes where a formula could start (the cell's start, or a line's inside
    it); numbers stay numbers."""
    assert [(value, spreadsheet_safe(value)) for value, _ in CELLS] == CELLS
