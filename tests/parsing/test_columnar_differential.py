"""The columnar engine against the per-line reference engine: identical events, fields, provenance,
issues and year decisions — on every format's samples, the real corpus, a demo case, and lines
Hypothesis grows (an attacker's among them). Also: no line, whatever its content, costs the
columnar engine more than a few milliseconds (RE2 does not backtrack)."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from logsalvage.parsing.columnar import ColumnarParser, Unsupported, not_covered
from logsalvage.parsing.columnar_lines import read_line_table
from logsalvage.parsing.engine import ParseContext
from logsalvage.parsing.formats import log_formats, shipped_formats
from logsalvage.sources import detect_format
from differential import differences

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "corpus"))
from corpus_support import CORPUS_ROOT, read_bytes  # noqa: E402

COVERED = [s.id for s in log_formats() if not_covered(s) is None]
PREFIX = "DATABASE=%d,USER=%u,CLIENT=%r,"


def test_the_columnar_engine_covers_the_formats_that_carry_the_evidence():
    assert {"syslog", "apache-access", "apache-error", "vsftpd", "xferlog"} <= set(COVERED)


# -- every format's samples --------------------------------------------------------------------
SAMPLES = [(spec.id, i, sample) for spec in log_formats() if spec.id in COVERED for i, sample in enumerate(spec.samples)]


@pytest.mark.parametrize("format_id,index,sample", SAMPLES, ids=[f"{c[0]}-{c[1]}" for c in SAMPLES])
def test_samples_agree(format_id, index, sample, tmp_path):
    ctx = ParseContext(**(sample.get("context") or {}))
    lines = sample["lines"] if "lines" in sample else [sample["line"]]
    data = ("\n".join(lines) + "\n").encode()
    try:
        diffs = differences(shipped_formats()[format_id], ctx, data, tmp_path)
    except Unsupported:  # samples of broken [seq-chunk] order: read by the reference engine
        assert sample.get("expect_issues"), "a well-formed sample must be columnar"
        return
    assert diffs == []


# -- the real corpus ----------------------------------------------------------------------------
def _corpus_files() -> list[tuple[str, str]]:
    out = []
    if not CORPUS_ROOT.is_dir():
        return out
    for p in sorted(CORPUS_ROOT.rglob("*")):
        if not p.is_file() or p.name == "MANIFEST.tsv" or p.stat().st_size > 8 << 20:
            continue
        rel = str(p.relative_to(CORPUS_ROOT))
        try:
            head = read_bytes(rel)[:64 << 10]
        except (OSError, EOFError, ValueError):
            continue
        fmt, _ = detect_format(head)
        if fmt in COVERED:
            out.append((rel, fmt))
    return out


CORPUS = _corpus_files()


@pytest.mark.skipif(not CORPUS, reason="the shared corpus is not present")
@pytest.mark.parametrize("rel,format_id", CORPUS, ids=[c[0] for c in CORPUS])
def test_corpus_files_agree(rel, format_id, tmp_path):
    data = read_bytes(rel)
    spec = shipped_formats()[format_id]
    try:
        diffs = differences(spec, ParseContext(), data, tmp_path)
    except Unsupported as exc:  # read by the reference engine instead: nothing to compare
        pytest.skip(f"not columnar: {exc}")
    assert diffs == []


def test_most_of_the_corpus_is_read_by_the_columnar_engine():
    """Falling back is allowed per source, but must stay the exception on real logs."""
    fallbacks = []
    for rel, fmt in CORPUS:
        try:
            ColumnarParser(shipped_formats()[fmt]).parse(read_line_table(io.BytesIO(read_bytes(rel))))
        except Unsupported as exc:
            fallbacks.append((rel, str(exc)))
    assert len(CORPUS) >= 20
    assert len(fallbacks) <= len(CORPUS) // 10, fallbacks


# -- lines Hypothesis grows ---------------------------------------------------------------------
HOSTILE = ["\x0b", "\x1c", "\x85", "\u00a0", "\u2003", "\u0663", "#011", "#012", "#177", "\\", '"', "'", "\t",
           "\x01", "\x7f", "  ", " " * 300, "-", "[", "]", "(", ")", ":", "%", "é", "\U0001f600", "$", "\r"]
PROGRAMS = ["sshd", "sudo", "su", "CROND", "crontab", "run-parts(/etc/cron.daily)", "vsftpd", "dropbear",
            "kernel", "systemd", "postgres", "in.ftpd", "unix_chkpwd", "pure-ftpd"]
MESSAGES = [
    "Accepted password for {w} from 10.0.0.{n} port 5{n} ssh2",
    "Failed password for invalid user {w} from 203.0.113.{n} port 4{n} ssh2",
    "Invalid user {w} from 198.51.100.{n}",
    "pam_unix(sshd:session): session opened for user {w} by (uid=0)",
    "authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.1.1.{n}  user={w}",
    "authentication failure;{w} rhost={w}",
    "({w}) CMD (/tmp/x{w})",
    "({w}) REPLACE ({w})",
    "{w} : TTY=pts/0 ; PWD=/home/{w} ; USER=root ; COMMAND=/bin/{w}",
    "Connection closed by 192.0.2.{n} port 2{n} [preauth]",
    "Disconnected from user {w} 192.0.2.{n} port 1{n}",
    "message from {w} 10.9.8.{n}{w}",
    "Password auth succeeded for '{w}' from 10.2.3.{n}:22{n}",
    "[pid {n}] [{w}] OK UPLOAD: Client \"10.0.0.{n}\", \"/var/www/{w}.php\", {n} bytes, 1.00Kbyte/sec",
    "{w}",
    "",
]
PG = ["DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11({n}),LOG:  duration: {n}.5 ms  statement: SELECT '{w}'",
      "DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1({n}),LOG:  incomplete startup packet",
      "DATABASE=ferry,USER=webapp,CLIENT=[local],ERROR:  invalid input syntax for integer: \"{w}\"",
      "DATABASE={w},USER={w},CLIENT={w},FATAL:  password authentication failed for user \"{w}\"",
      "LOG:  connection received: host={w} port={n}",
      "{w}"]

words = st.lists(st.sampled_from(HOSTILE + ["root", "nobody", "admin", "x", "GET", "1", "0"]), max_size=6).map("".join)
stamps = st.builds(lambda m, d, h, s: f"{m} {d:>2} {h:02d}:{s:02d}:{s:02d}",
                   st.sampled_from(["Jan", "Feb", "Dec", "Nov", "Jun", "Foo"]), st.integers(0, 32),
                   st.integers(0, 25), st.integers(0, 61))


@st.composite
def syslog_line(draw):
    kind = draw(st.integers(0, 9))
    stamp = draw(stamps)
    if kind == 0:  # not a record at all
        return draw(st.sampled_from(["", " ", "\t", " continued text", "\u2003", "\x00\x01\x02binary",
                                     "\x1b[31mred", "#011", "--- last message repeated 3 times ---"])) + draw(words)
    if kind == 1:  # an rsyslog repeat or mark line
        return draw(st.sampled_from([f"{stamp} h1 last message repeated {draw(st.integers(0, 9))} times",
                                     f"{stamp} -- MARK --", f"{stamp} h1 --- {draw(words)} ---"]))
    program = draw(st.sampled_from(PROGRAMS))
    pid = draw(st.sampled_from(["", "[123]", "[0]", "[99999999999]", "[٣]"]))
    n, w = draw(st.integers(0, 99)), draw(words)
    if program == "postgres":
        seq, chunk = draw(st.integers(1, 5)), draw(st.sampled_from([1, 1, 1, 2]))
        text = draw(st.sampled_from(PG)).format(n=n, w=w)
        msg = f"[{seq}-{chunk}] {text}" if draw(st.booleans()) else text
    else:
        msg = draw(st.sampled_from(MESSAGES)).format(n=n, w=w)
    host = draw(st.sampled_from(["web01", "db01", "-", "---x", "a:b"]))
    return f"{stamp} {host} {program}{pid}: {msg}"


@st.composite
def syslog_file(draw):
    lines = draw(st.lists(syslog_line(), min_size=1, max_size=25))
    ends = draw(st.lists(st.sampled_from(["\n", "\n", "\r\n"]), min_size=len(lines), max_size=len(lines)))
    data = "".join(l + e for l, e in zip(lines, ends))
    if draw(st.booleans()):
        data = data.rstrip("\n")
    raw = data.encode("utf-8")
    if draw(st.integers(0, 5)) == 0:  # bytes that are not UTF-8
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\xff\xfe" + raw[at:]
    return raw


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=syslog_file(), prefixed=st.booleans())
def test_grown_syslog_agrees(data, prefixed, tmp_path):
    ctx = ParseContext(pg_log_line_prefix=PREFIX if prefixed else None)
    try:
        diffs = differences(shipped_formats()["syslog"], ctx, data, tmp_path)
    except Unsupported:
        return  # [seq-chunk] lines out of order: the whole source goes to the reference engine
    assert diffs == []


# without a known log_line_prefix the prefix is any text before the first level: levels inside the
# prefix, a level that is a prefix of another, one followed by one space, one at the very start
GENERIC_PREFIX_LINES = [
    "DATABASE=LOG:  x,USER=u,CLIENT=c,ERROR:  late",
    "DEBUG:  first",
    "DEBUG5:  five",
    "user=DEBUGX:  a DEBUG1:  b FATAL:  c",
    "prefix LOG: one space WARNING:  two spaces",
    "LOG:",
    "no level at all",
    "xé中 LOG:  wide characters before the level",
    "app=psql LOCATION:  QUERY:  nested",
]


def test_generic_prefix_agrees(tmp_path):
    lines = [f"Jan  1 00:00:{i:02d} db01 postgres[{100 + i}]: [{i + 1}-1] {text}"
             for i, text in enumerate(GENERIC_PREFIX_LINES)]
    data = ("\n".join(lines) + "\n").encode()
    assert differences(shipped_formats()["syslog"], ParseContext(pg_log_line_prefix=None), data, tmp_path) == []
    assert differences(shipped_formats()["syslog"], ParseContext(pg_log_line_prefix=PREFIX), data, tmp_path) == []


@st.composite
def pg_messages(draw):
    """Well-formed PostgreSQL-through-syslog output: several processes, messages of 1-3 chunks."""
    out = []
    seqs: dict[int, int] = {}
    for _ in range(draw(st.integers(1, 12))):
        pid = draw(st.sampled_from([101, 202, 303]))
        seqs[pid] = seqs.get(pid, 0) + 1
        chunks = draw(st.lists(st.sampled_from(PG + [" tail {w}", "\t{w}", "#011{w}"]), min_size=1, max_size=3))
        stamp = draw(stamps.filter(lambda s: not s.startswith("Foo")))
        for i, text in enumerate(chunks, start=1):
            body = text.format(n=draw(st.integers(0, 99)), w=draw(words))
            out.append(f"{stamp} db01 postgres[{pid}]: [{seqs[pid]}-{i}] {body}")
    return ("\n".join(out) + "\n").encode()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=pg_messages())
# a client whose "port" is a non-ASCII digit ('\u0663'): not a port for either engine
@example(data="Jan  1 00:00:00 db01 postgres[101]: [1-1] DATABASE=:\u0663,USER=:\u0663,CLIENT=:\u0663,FATAL:  "
              "password authentication failed for user \":\u0663\"\n".encode())
def test_postgres_chunk_joining_agrees(data, tmp_path):
    assert differences(shipped_formats()["syslog"], ParseContext(pg_log_line_prefix=PREFIX), data, tmp_path) == []


ACCESS = st.builds(lambda ip, user, req, status, size, ref, ua: f'{ip} - {user} [15/Jul/2017:08:58:21 +0900] "{req}" '
                   f'{status} {size} "{ref}" "{ua}"',
                   st.sampled_from(["10.0.0.1", "::1", "-", "1.2.3.4, 5.6.7.8"]), words, words.map(lambda w: f"GET /{w} HTTP/1.1"),
                   st.sampled_from(["200", "404", "-", "2OO"]), st.sampled_from(["0", "-", "123", "99999999999999999999"]),
                   words, words)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.one_of(ACCESS, words), min_size=1, max_size=15))
def test_grown_access_log_agrees(lines, tmp_path):
    data = ("\n".join(lines) + "\n").encode()
    assert differences(shipped_formats()["apache-access"], ParseContext(), data, tmp_path) == []


def _demo(tmp_path_factory) -> Path:
    from logsalvage.demo import generate

    demo = tmp_path_factory.getbasetemp() / "carve-demo-d40-s3"  # shared with the carve tests
    if not (demo / "truth.json").exists():
        generate(demo, days=40, seed=3)
    return demo


def test_a_stream_read_in_slices_agrees(tmp_path_factory, tmp_path):
    """Bounded memory: a source is parsed in slices that end only where no record (PostgreSQL
    message of several chunks, syslog record with continuation lines) is cut in two."""
    data = (_demo(tmp_path_factory) / "evidence/db01/var/log/messages").read_bytes()[:6 << 20]
    data += b"Dec 31 23:59:59 db01 kernel: a record\n continued\n\tand again\n" * 50
    assert len(data) > 8 * (256 << 10)
    ctx = ParseContext(pg_log_line_prefix=PREFIX)
    assert differences(shipped_formats()["syslog"], ctx, data, tmp_path, block=256 << 10) == []


ERROR_LINES = st.one_of(
    st.builds(lambda d, w: f"[Mon Dec {d:>2} 15:27:05 2017] [error] [client 1.2.3.4] File does not exist: /x/{w}",
              st.integers(0, 33), words),
    st.builds(lambda w: f"[Wed Oct 11 14:32:52.123456 2000] [core:error] [pid 35708:tid 1] [client 72.15.99.187:5555] "
                        f"AH00037: {w}", words),
    st.builds(lambda w: f"--2017-07-15 03:12:{w[:2] or '00'}--  http://198.51.100.7/{w}", words),
    st.builds(lambda w: f"2017-07-15 03:12:09 (1.2 MB/s) - '{w}' saved [123/123]", words),
    st.builds(lambda w: f"find: '/root/{w}': Permission denied", words),
    st.sampled_from(["Resolving example.org... 1.2.3.4", "  % Total    % Received", "sh: 1: x: not found",
                     "", "   ", "\x00\x01", "PHP Warning:  x", "plain text"]),
    words)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(lines=st.lists(ERROR_LINES, min_size=1, max_size=20))
def test_grown_error_log_agrees(lines, tmp_path):
    """Headerless program output between (or before) dated records borrows their time."""
    data = ("\n".join(lines) + "\n").encode()
    assert differences(shipped_formats()["apache-error"], ParseContext(), data, tmp_path) == []


# -- no line is expensive -----------------------------------------------------------------------
PATHOLOGICAL = [
    ("apache-access", '1.2.3.4 - - [15/Jul/2017:08:58:21 +0900] "GET / HTTP/1.1" ' + " " * 2000 + "5502"),
    ("apache-access", "1.2.3.4 -" + " " * 60000),
    ("syslog", "Dec  3 03:45:20 web01 sshd[1]: authentication failure;" + " " * 2000),
    ("syslog", "Dec  3 03:45:20 web01 su: authentication failure;" + " rhost=" * 5000),
    ("syslog", "Dec  3 03:45:20 db01 postgres[1]: [1-1] " + "DATABASE=," * 3000 + "LOG:  x"),
]


@pytest.mark.parametrize("format_id,line", PATHOLOGICAL, ids=[f"{f}-{len(l)}" for f, l in PATHOLOGICAL])
def test_no_line_costs_more_than_milliseconds(format_id, line):
    """Lines built to make a backtracking engine take minutes: per line, a few milliseconds."""
    n = 200
    data = ((line + "\n") * n).encode()
    parser = ColumnarParser(shipped_formats()[format_id], ParseContext(pg_log_line_prefix=PREFIX))
    table = read_line_table(io.BytesIO(data))
    start = time.perf_counter()
    result = parser.parse(table)
    per_line = (time.perf_counter() - start) / n
    assert result.events.num_rows + len(result.issues) >= n
    assert per_line < 0.010, f"{per_line * 1000:.1f} ms per line"


# -- a whole demo case, through ingest and carve ------------------------------------------------
def _same_tables(a: Path, b: Path) -> None:
    import duckdb

    con = duckdb.connect()
    con.execute(f"ATTACH '{a / 'case.duckdb'}' AS r (READ_ONLY)")
    con.execute(f"ATTACH '{b / 'case.duckdb'}' AS c (READ_ONLY)")
    for table in ("events", "issues"):
        total = con.execute(f"SELECT count(*) FROM r.{table}").fetchall()[0][0]
        only_r = con.execute(f"SELECT count(*) FROM (SELECT * FROM r.{table} EXCEPT ALL SELECT * FROM c.{table})").fetchall()[0][0]
        only_c = con.execute(f"SELECT count(*) FROM (SELECT * FROM c.{table} EXCEPT ALL SELECT * FROM r.{table})").fetchall()[0][0]
        assert (only_r, only_c) == (0, 0), f"{table}: {only_r} rows only by the reference, {only_c} only columnar of {total}"
    cols = "source_id, year_basis, lines, events, issues, first_ts, last_ts"
    assert con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM r.sources EXCEPT SELECT {cols} FROM c.sources)").fetchall()[0][0] == 0


def test_demo_case_is_identical_with_either_engine(tmp_path_factory):
    """Ingest of every log and carving of the image (deleted PostgreSQL records: chunks lost,
    repeated, from two generations) give the same case, row for row, with either engine."""
    from logsalvage.carve.pipeline import carve_into_case
    from logsalvage.config import load_config
    from logsalvage.ingest import ingest

    demo = _demo(tmp_path_factory)
    config = load_config(demo / "case.yaml")
    cases = {}
    for engine in ("reference", "auto"):
        case = tmp_path_factory.mktemp(f"case-{engine}")
        result = ingest([demo / "evidence"], case, config=config, engine=engine)
        carve_into_case([demo / "evidence/db01/image/sdb1.dd"], case, host="db01", config=config, engine=engine)
        cases[engine] = (case, result)
    assert "columnar" in {s["parser"] for s in cases["auto"][1].sources}
    import duckdb
    with duckdb.connect(str(cases["auto"][0] / "case.duckdb"), read_only=True) as con:
        salvage = con.execute("SELECT format_id, parser FROM sources WHERE kind = 'salvage'").fetchall()
    assert ("syslog", "columnar") in salvage
    _same_tables(cases["reference"][0], cases["auto"][0])
