"""The code the audit, apt and shell-history formats need besides their YAML files: what their
samples do not reach — long and hostile input, bounds, broken structure."""

from __future__ import annotations

import time

import pytest

from logsalvage.errors import ConfigError
from logsalvage.parsing import stanzas
from logsalvage.parsing.auditd import pairs, unhex
from logsalvage.parsing.engine import ParseContext, parse_text
from logsalvage.parsing.formats import load_definitions, shipped_formats


def _parse(format_id: str, text: str, **ctx):
    return parse_text(shipped_formats()[format_id], text, ParseContext(**ctx))


def test_audit_pairs_survive_broken_quoting_in_linear_time():
    assert pairs('a="x y" b=\'c d\' e={ f=g } h=i') == [("a", "x y", True), ("b", "c d", True), ("e", "{ f=g }", False),
                                                       ("h", "i", False)]
    assert pairs('avc:  denied  { read } for x="unterminated') == [
        (None, "avc:", False), (None, "denied", False), (None, "{", False), (None, "read", False), (None, "}", False),
        (None, "for", False), ("x", "unterminated", True)]
    assert pairs("= ==a b=") == [(None, "=", False), (None, "=", False), (None, "=", False), (None, "a", False),
                                 ("b", "", False)]
    hostile = 'k="' + "x=" * 200_000
    start = time.perf_counter()
    assert len(pairs(hostile)) == 1 and len(pairs("a=b " * 100_000)) == 100_000
    assert time.perf_counter() - start < 1.0


def test_audit_hex_is_decoded_only_where_auditd_encodes():
    assert unhex("69643B20756E616D65202D61") == "id; uname -a" and unhex("7F") == "\x7f"
    assert unhex("abc") is None and unhex("12 4") is None and unhex("") is None and unhex("C3") == "\\xc3"
    events, issues = _parse("auditd", "type=CONFIG_CHANGE msg=audit(1514183336.123:1): op=set backlog_limit=8192 "
                                      "old=64 auid=4294967295 ses=4294967295 res=1\n")
    assert not issues and events[0]["old"] == "64" and events[0]["outcome"] == "success"
    events, _ = _parse("auditd", "type=PATH msg=audit(1514183336.123:2): item=0 name=(null) inode=1 nametype=UNKNOWN\n")
    assert events[0]["name"] == "(null)" and events[0].get("file_path") is None


def test_audit_long_execve_argument_in_pieces():
    # the kernel cuts an argument longer than its buffer into a1[0], a1[1] … after a1_len
    arg = "A" * 10 + " " + "B" * 10
    encoded = arg.encode().hex().upper()
    line = (f"type=EXECVE msg=audit(1514183336.123:456): argc=3 a0=\"sh\" a1_len={len(arg)} "
            f"a1[0]={encoded[:20]} a1[1]={encoded[20:]} a2=\"tail\"\n")
    (rec,), issues = _parse("auditd", line)
    assert not issues and rec["command"] == f"sh '{arg}' tail" and rec["audit_serial"] == 456


def test_a_term_log_session_keeps_bounded_text_and_every_byte(monkeypatch):
    monkeypatch.setattr(stanzas, "MAX_TEXT", 200)
    output = [f"Unpacking package-{i:03d} (1.0-{i}) ..." for i in range(40)]
    text = "\n".join(["", "Log started: 2017-12-25  15:28:56", *output, "Log ended: 2017-12-25  15:29:40", ""]) + "\n"
    (rec,), issues = _parse("apt-term", text)
    kept = rec["message"].split("\n")
    assert kept == output[:len(kept)] and 0 < len(kept) < 40 and len(rec["raw"]) <= 200
    assert rec["_offset"] == 0 and rec["_length"] == len(text.encode()) - 1 and rec["_line_count"] == 43
    assert rec["text_not_kept_bytes"] == sum(len(ln) + 1 for ln in output[len(kept):]) + len("Log ended: 2017-12-25  15:29:40\n")
    # the last line's fields are read all the same: the stanza is whole
    assert rec["end_time"] == "2017-12-25  15:29:40" and rec.get("stanza_end") is None
    assert [i[3] for i in issues] == ["empty line"]  # the blank line after the last stanza


def test_a_line_outside_any_stanza_is_an_issue_and_cuts_the_open_one():
    text = "\n".join(["Start-Date: 2017-12-25  15:28:56", "Commandline: apt-get install nmap",
                      "Start-Date: 2017-12-25  15:30:00", "End-Date: 2017-12-25  15:30:05", "", "",
                      "garbage after the last stanza", "Commandline: apt-get purge nmap"]) + "\n"
    events, issues = _parse("apt-history", text)
    assert [(e["_line_no"], e.get("command"), e.get("stanza_end")) for e in events] == [
        (1, "apt-get install nmap", "missing"), (3, None, None)]
    assert [(i[2], i[3]) for i in issues] == [(5, "empty line"), (6, "empty line"),
                                              (7, "no pattern of format apt-history matched"),
                                              (8, "no pattern of format apt-history matched")]


def test_shell_history_time_lines_that_date_nothing_are_issues():
    text = "#1514183336\n#1514183340\nid\n\n#1514183350\n"
    events, issues = _parse("bash-history", text, source_fields=(("user_name", "www-data"),))
    assert [(e["command"], e["ts_raw"], e["_line_no"], e["user_name"]) for e in events] == [
        ("id", "1514183340", 2, "www-data")]
    assert [(i[2], i[3]) for i in issues] == [(1, "bash-history: a time line with no command after it"),
                                              (4, "empty line"),
                                              (5, "bash-history: a time line with no command after it")]


def test_zsh_command_cut_at_the_end_of_the_file():
    events, issues = _parse("zsh-history", ": 1514183336:0;echo a\\\n")
    assert not issues and events[0]["command"] == "echo a" and events[0]["_line_count"] == 1


def test_a_format_naming_a_pattern_it_lacks_is_refused(tmp_path):
    for key, conf in (("stanza", "{start: begin}"), ("shell_history", "{stamp_pattern: stamp}")):
        (tmp_path / "x.yaml").write_text(f"id: x\nassembler: stanza\n{key}: {conf}\n"
                                         f"patterns: [{{id: line, regex: '^(?P<message>.*)$'}}]\n")
        with pytest.raises(ConfigError, match=rf"x\.yaml.*{key}\.\w+: no pattern with id"):
            load_definitions((tmp_path,))
