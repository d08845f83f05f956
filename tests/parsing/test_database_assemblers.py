"""The assemblers written as code (parsing/mysql_general.py, mysql_slow.py, jsonlog.py) on what
their samples do not show: records handed on in file order while a login waits for its outcome,
an attempt left unsettled or settled by silence, junk inside and between records, hostile JSON.
Every line becomes an event or an issue, and nothing raises."""

from __future__ import annotations

import io

import pytest

from logsalvage.parsing import mysql_general
from logsalvage.parsing.engine import Assembler, ParseContext, parse_text
from logsalvage.parsing.formats import shipped_formats
from logsalvage.parsing.lines import iter_lines


class Collect:
    def __init__(self):
        self.events, self.issues = [], []

    def event(self, rec):
        self.events.append(rec)

    def issue(self, offset, length, line_no, reason, excerpt, event_offset=None):
        self.issues.append((line_no, reason, event_offset))


def run(format_id: str, text: str | bytes) -> Collect:
    """The reference engine's Assembler, its sink seeing records in the order it hands them on."""
    sink = Collect()
    asm = Assembler(shipped_formats()[format_id], ParseContext(), sink)
    data = text.encode() if isinstance(text, str) else text
    for line in iter_lines(io.BytesIO(data)):
        asm.feed(line)
    asm.close()
    return sink


def accounted(sink: Collect, text: str) -> None:
    lines = {r["_line_no"] + k for r in sink.events for k in range(r["_line_count"])}
    lines |= {i[0] for i in sink.issues if i[2] is None}
    assert lines == set(range(1, len(text.splitlines()) + 1))


# -- general query log ----------------------------------------------------------------------------

def test_records_are_handed_on_in_file_order_while_a_login_waits_for_its_outcome():
    text = ("171225 15:28:56\t    12 Connect\tapp@10.0.0.5 on shop using TCP/IP\n"
            "\t\t    13 Query\tSELECT 1\n"  # another connection's work before 12's next record
            "\t\t    12 Connect\tAccess denied for user 'app'@'10.0.0.5' (using password: YES)\n"
            "\t\t    13 Quit\t\n")
    sink = run("mysql-general", text)
    assert [r["_line_no"] for r in sink.events] == [1, 2, 3, 4]
    assert [r.get("outcome") for r in sink.events] == ["failure", None, "failure", None]
    accounted(sink, text)


def test_a_login_the_log_ends_on_has_no_outcome_and_a_quiet_one_succeeded(monkeypatch):
    monkeypatch.setattr(mysql_general, "SETTLE_LINES", 3)
    text = ("171225 15:28:56\t     1 Connect\tapp@10.0.0.5 on shop using TCP/IP\n"
            + "".join(f"\t\t     2 Query\tSELECT {i}\n" for i in range(3))
            + "\t\t     3 Connect\tapp@10.0.0.6 on shop using TCP/IP\n")
    sink = run("mysql-general", text)
    outcomes = {r["_line_no"]: r.get("outcome") for r in sink.events if r["event_type"] == "mysql.connect"}
    assert outcomes == {1: "success", 5: None}
    assert [r["_line_no"] for r in sink.events] == [1, 2, 3, 4, 5]


def test_records_before_any_written_time_stay_timeless():
    text = "\t\t     7 Query\tSELECT 1\n171225  9:05:01\t     7 Quit\t\n\t\t     8 Quit\t\n"
    events, issues = parse_text(shipped_formats()["mysql-general"], text)
    assert [e["_stamp"] is None for e in events] == [True, False, False] and not issues
    assert events[2]["ts_raw"] == "171225  9:05:01" and "_ts_note" in events[2] and "_ts_note" not in events[1]


def test_junk_ends_the_open_record_and_is_an_issue():
    text = ("171225 15:28:56\t     7 Query\tSELECT a,\n"
            "  b FROM t\n"
            "\x00\x01\x02\x03 binary junk \x04\x05\x06\x07\x08\n"
            "  FROM nowhere\n"  # nothing open to continue
            "\n"
            "\t\t     7 Quit\t\n")
    sink = run("mysql-general", text)
    assert [(r["_line_no"], r["_line_count"]) for r in sink.events] == [(1, 2), (6, 1)]
    assert sink.events[0]["statement"] == "SELECT a,\n  b FROM t"
    assert [(n, reason.split(" (")[0]) for n, reason, _ in sink.issues] == [
        (3, "binary data"), (4, "no pattern of format mysql-general matched"), (5, "empty line")]
    assert sink.events[1]["ts_raw"] == "171225 15:28:56"


def test_a_blank_line_inside_a_statement_is_part_of_it():
    text = "171225 15:28:56\t     7 Query\tSELECT a\n\n  FROM t\n\t\t     7 Quit\t\n"
    events, issues = parse_text(shipped_formats()["mysql-general"], text)
    assert events[0]["statement"] == "SELECT a\n\n  FROM t" and not issues


def test_invalid_utf8_in_a_continuation_is_kept_escaped_and_noted():
    sink = run("mysql-general", b"171225 15:28:56\t     7 Query\tSELECT 'a\n\xff\xfe'\n")
    assert sink.events[0]["statement"] == "SELECT 'a\n\\xff\\xfe'"
    assert sink.issues == [(2, "invalid UTF-8: the event keeps the bytes as \\xNN escapes", 0)]


# -- slow query log -------------------------------------------------------------------------------

SLOW_BLOCK = ("# User@Host: app[app] @  [10.0.0.5]\n"
              "# Query_time: 0.5  Lock_time: 0.0 Rows_sent: 1  Rows_examined: 9\n"
              "SET timestamp=1514183336;\n")


def test_slow_statement_lines_are_taken_as_they_are():
    text = ("# Time: 171225 15:28:56\n" + SLOW_BLOCK
            + "SELECT 1 -- comment;\n# not a header inside a statement\nuse x;\n\nFROM t;;\n"
            + SLOW_BLOCK + "SELECT 2;\n")
    events, issues = parse_text(shipped_formats()["mysql-slow"], text)
    assert not issues
    assert [e["statement"] for e in events] == [
        "SELECT 1 -- comment;\n# not a header inside a statement\nuse x;\n\nFROM t;", "SELECT 2"]
    assert [e["duration_ms"] for e in events] == [500.0, 500.0]


def test_slow_blocks_without_a_head_or_a_statement():
    text = ("SELECT lost FROM t;\n"  # the statement of a block the log begins after
            "# Time: 171225 15:28:56\n"
            "# Time: 171225 15:28:57\n"  # a block of a time alone
            "# Query_time: 0.5  Lock_time: 0.0 Rows_sent: 1  Rows_examined: 9\n"  # no User@Host before it
            "SELECT 1;\n")
    sink = run("mysql-slow", text)
    assert [(n, r.split(" (")[0]) for n, r, _ in sink.issues] == [(1, "no pattern of format mysql-slow matched")]
    assert [(e["_line_no"], e["statement"], e["ts_raw"]) for e in sink.events] == [
        (2, None, "171225 15:28:56"), (3, "SELECT 1", "171225 15:28:57")]
    accounted(sink, text)


# -- PostgreSQL jsonlog ---------------------------------------------------------------------------

@pytest.mark.parametrize("line,reason", [
    ("LOG:  not json", "not a JSON object: Expecting value"),
    ('["timestamp", "2017-12-25 15:28:56 UTC"]', "not a JSON object: a JSON list"),
    ("[" * 100_000, "not a JSON object"),
    ('{"message": "no time"}', "jsonlog record without a valid timestamp"),
    ('{"timestamp": "2017-13-45 99:00:00 UTC", "message": "x"}', "jsonlog record without a valid timestamp"),
    ('{"timestamp": 1514183336}', "jsonlog record without a valid timestamp"),
    ('{"timestamp": "2017-12-25 15:28:56 UTC", "message": "cut', "not a JSON object: Unterminated string"),
])
def test_jsonlog_lines_that_are_not_records_are_issues(line, reason):
    sink = run("postgresql-jsonlog", line + "\n")
    assert not sink.events and len(sink.issues) == 1 and sink.issues[0][1].startswith(reason)


def test_jsonlog_odd_values_are_text_and_nothing_raises(tmp_path):
    from tests.parsing.differential import reference

    lines = [
        '{"timestamp":"2017-12-25 15:28:56.123 UTC","pid":"77","user":{"a":[1,2]},"error_severity":"ERROR",'
        '"message":"relation \\"x\\" does not exist","remote_host":"10.0.0.5","remote_port":"http","txid":1e999}',
        '{"timestamp":"2017-12-25 15:28:57 UTC","pid":99999999999999999999999,"message":"bad \\ud800 half",'
        '"error_severity":true,"dbname":"a\\u0000b"}',
    ]
    data = ("\n".join(lines) + "\n").encode()
    sink = run("postgresql-jsonlog", data)
    first, second = sink.events
    assert first["process_pid"] == 77 and first["db_user"] == '{"a": [1, 2]}' and "source_port" not in first
    assert first["event_type"] == "postgresql.undefined_table" and first["pg_xid"] == "Infinity"
    assert second.get("process_pid") is None and second["pg_message"] == "bad \\ud800 half"
    assert second["event_type"] == "postgresql.true"
    assert [i[1].split(":")[0] for i in sink.issues] == ["a JSON string holds a lone surrogate (\\uD800-\\uDFFF)"]
    events, issues, _ = reference(shipped_formats()["postgresql-jsonlog"], ParseContext(), data, tmp_path / "s")
    assert len(events) == 2 and events[1]["db_name"] == "a\x00b"
