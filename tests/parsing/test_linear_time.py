"""Every format pattern runs on RE2 in both engines: no input line can make matching backtrack.

The lines are the ones that took a backtracking engine minutes (a 3,984-byte access log 77 s, a
60,000-space one 146 s, a syslog PAM line 21 s); each must now cost milliseconds in the per-line
reference engine too, and the cost must grow no faster than the line."""

from __future__ import annotations

import time

import pytest

from logsalvage.parsing.dialect import DialectError, LinearPattern, compile_shared
from logsalvage.parsing.engine import ParseContext
from logsalvage.parsing.formats import shipped_formats

from tests.parsing.differential import reference

PREFIX = "DATABASE=%d,USER=%u,CLIENT=%r,"
HOSTILE = [
    ("apache-access", lambda n: '1.2.3.4 - - [15/Jul/2017:08:58:21 +0900] "GET / HTTP/1.1" ' + " " * n + "5502"),
    ("apache-access", lambda n: "1.2.3.4 -" + " " * n),
    ("apache-access", lambda n: '1.2.3.4 - ' + "- " * n + '[15/Jul/2017:08:58:21 +0900] "GET / HTTP/1.1" 200 5'),
    ("syslog", lambda n: "Dec  3 03:45:20 web01 sshd[1]: authentication failure;" + " " * n + "x"),
    ("syslog", lambda n: "Dec  3 03:45:20 web01 su: authentication failure;" + " rhost=" * (n // 7)),
    ("syslog", lambda n: "Dec  3 03:45:20 db01 postgres[1]: [1-1] " + "DATABASE=," * (n // 10) + "LOG:  x"),
    ("syslog", lambda n: "Dec  3 03:45:20 web01 sshd[1]: Failed password for " + "invalid user " * (n // 13)),
    ("apache-error", lambda n: "[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 1] " + "[client " * (n // 8)),
    ("vsftpd", lambda n: "Sat Jul 15 08:58:21 2017 [pid 1] [ftp] OK UPLOAD: Client \"" + " " * n),
    ("xferlog", lambda n: "Sat Jul 15 08:58:21 2017 1 1.2.3.4 " + "1 " * (n // 2)),
    ("postgresql-stderr", lambda n: "2017-07-15 08:58:21 JST " + "DATABASE=," * (n // 10) + "LOG:  x"),
    ("mysql-error", lambda n: "171225 15:28:56 " + " " * n + "[Note"),
    ("mysql-general", lambda n: "\t\t    12 Connect\t" + "a@" * (n // 2) + " on "),
    ("mysql-general", lambda n: "171225 15:28:56\t" + " " * n + "12 Init DB"),
    ("mysql-slow", lambda n: "# User@Host: x[x] @ h [" + "1" * n + "]"),
    ("pgbouncer", lambda n: "2017-12-25 15:28:56.123 UTC [1] LOG C-0x1: db/u@" + ":" * n + "1 login attempt: db=x"),
    ("postgresql-jsonlog", lambda n: '{"timestamp":"2017-12-25 15:28:56 UTC","message":"duration: 1 ms  statement: '
     + "x" * n + '"}'),
    ("postgresql-jsonlog", lambda n: "[" * n),
]


def _all_patterns():
    for spec in shipped_formats().values():
        for p in (*spec.patterns, *spec.message_patterns):
            yield spec.id, p.id, p.regex
        for r in spec.refinements:
            yield spec.id, r.id, r.when
            for p in r.patterns:
                yield spec.id, f"{r.id}/{p.id}", p.regex
        for u in spec.unframed:
            yield spec.id, u.id, u.regex
        for i, rx in enumerate(spec.detect):
            yield spec.id, f"detect{i}", rx


def test_every_shipped_pattern_runs_on_re2():
    patterns = list(_all_patterns())
    assert len(patterns) > 100
    slow = [f"{f}:{pid}" for f, pid, rx in patterns if not isinstance(rx, LinearPattern)]
    assert slow == []


def test_a_pattern_re2_cannot_run_is_refused_and_a_nested_quantifier_is_harmless():
    with pytest.raises(DialectError):
        compile_shared(r"(?<=a)b")
    with pytest.raises(DialectError):
        compile_shared(r"(a)\1")
    nested = compile_shared(r"^(a+)+$")  # exponential for a backtracking engine
    start = time.perf_counter()
    assert nested.match("a" * 100_000 + "b") is None
    assert time.perf_counter() - start < 0.5


def test_matches_read_like_python_re():
    rx = compile_shared(r"^(?P<user>\S+) é(?P<n>\d+)?(?P<rest>.*)$")
    m = rx.match("bob é42 ünïcode")
    assert m.groupdict() == {"user": "bob", "n": "42", "rest": " ünïcode"}
    assert m.group("rest") == m[3] == " ünïcode" and m.group(0) == "bob é42 ünïcode"
    assert m.span("rest") == (7, 15) and m.start("n") == 5 and m.re is rx
    assert rx.search("  x") is None and compile_shared(r"\d+").search("ab ١٢ 34").group() == "34"


@pytest.mark.parametrize("format_id,make", HOSTILE, ids=[f"{f}-{i}" for i, (f, _) in enumerate(HOSTILE)])
def test_the_reference_engine_costs_milliseconds_on_hostile_lines(format_id, make, tmp_path):
    spec = shipped_formats()[format_id]
    ctx = ParseContext(pg_log_line_prefix=PREFIX)

    def per_line(n: int, count: int) -> float:
        data = ((make(n) + "\n") * count).encode()
        start = time.perf_counter()
        events, issues, _ = reference(spec, ctx, data, tmp_path / f"s{n}")
        assert len(events) + len(issues) >= count  # every line an event or an issue
        return (time.perf_counter() - start) / count

    small, large = per_line(2_000, 40), per_line(60_000, 10)
    assert large < 0.010 * 30, f"{large * 1000:.1f} ms for a 60,000-byte line"
    assert small < 0.010, f"{small * 1000:.1f} ms for a 2,000-byte line"
    assert large < small * 30 * 3 + 0.002, "cost grows faster than the line"
