"""``generate(..., exfil=True)`` / ``logsalvage demo --exfil``: a theft through the web shell.

Checks that the plan is where truth.json says (exposure window, a preserved DB file, not the
hole, at every scale), that the planted lines are in the evidence exactly as PostgreSQL through
rsyslog and Apache would write them, that nothing else in the evidence moved, that ingest reads
them as the events an analyst would query, and that a run without it is byte-identical to the
demo from before the option existed.
"""

from __future__ import annotations

import calendar
import gzip
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import quote

import duckdb
import pytest

from logsalvage import cli
from logsalvage.demo import exfil, generate, make_plan, pgsyslog
from logsalvage.demo.timeline import DEFAULT_DAYS, MAX_DAYS, MIN_DAYS
from logsalvage.errors import UsageError
from logsalvage.ingest import ingest

DAYS, SEED = 40, 2017
# sha256 over "<sha256>  <path>\n" of every file a days=40 seed=2017 demo writes (evidence/,
# truth.json, truth-db-records.tsv.gz), taken from the generator without --exfil. If the default
# demo is changed on purpose, recompute it with tree_digest() and update it here. (Changed on
# purpose when the system configuration the readiness audit reads was added: demo/sysconfigs.py.)
PRE_EXFIL_DIGEST = "41d669afbbe49060715836c7af7a6c32c25515061ba1c1341b71aa5ea59789bf"
PRE_EXFIL_FILES = 150

FIRST_SHELL = "2017-07-15T08:58:21+09:00"
CONTAINMENT = "2018-01-05T19:50:00+09:00"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ACCESS = re.compile(r'^(\S+) - - \[(\d\d)/(\w{3})/(\d{4}):(\d\d):(\d\d):(\d\d) \+0900\] '
                    r'"(\S+) (\S+) HTTP/1\.1" (\d{3}) (\d+|-) "-" "([^"]*)"$')


def epoch(s: str) -> int:
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\+09:00", s)
    y, mo, d, h, mi, se = map(int, m.groups())
    return calendar.timegm((y, mo, d, h, mi, se)) - 9 * 3600


def syslog_stamp(iso: str) -> str:
    _, mo, d, h, mi, se = map(int, re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\+09:00", iso).groups())
    return f"{MONTHS[mo - 1]} {d:2d} {h:02d}:{mi:02d}:{se:02d}"


def tree_files(out: Path) -> dict[str, str]:
    """Digests of the evidence and the truth files (case.yaml, the responders' facts, came later)."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name != "case.yaml"}


def tree_digest(out: Path) -> str:
    lines = "".join(f"{h}  {rel}\n" for rel, h in sorted(tree_files(out).items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def text_of(path: Path) -> list[str]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8", "backslashreplace").splitlines()


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    out = tmp_path_factory.mktemp("plain")
    return out, generate(out, days=DAYS, seed=SEED)


@pytest.fixture(scope="module")
def stolen(tmp_path_factory):
    out = tmp_path_factory.mktemp("exfil")
    return out, generate(out, days=DAYS, seed=SEED, exfil=True)


@pytest.fixture(scope="module")
def case(stolen, tmp_path_factory):
    out, truth = stolen
    case_dir = tmp_path_factory.mktemp("case")
    ingest([out / "evidence"], case_dir)
    con = duckdb.connect(str(case_dir / "case.duckdb"), read_only=True)
    yield truth, con
    con.close()


# --- the default stays what it was ------------------------------------------------------------

def test_without_exfil_the_demo_is_byte_identical_to_before(plain):
    out, truth = plain
    assert truth["exfiltration"] == "none"
    assert not any(m["kind"] == "exfiltration" for m in truth["milestones"])
    assert len(tree_files(out)) == PRE_EXFIL_FILES
    assert tree_digest(out) == PRE_EXFIL_DIGEST, "the demo without --exfil changed"


def test_exfil_run_is_deterministic(stolen, tmp_path):
    out, truth = stolen
    again = generate(tmp_path, days=DAYS, seed=SEED, exfil=True)
    assert again == truth
    assert tree_digest(tmp_path) == tree_digest(out)


# --- truth --------------------------------------------------------------------------------------

def test_truth_describes_the_theft(stolen):
    _, truth = stolen
    ex = truth["exfiltration"]
    assert ex["planted"] is True and ex["via"] == "web shell" and ex["client"] == "192.168.10.11"
    assert ex["source"] in truth["addresses"]["C"] and ex["source_block"] == "C"
    assert ex["shell"] == "/wp-contacts.php"
    t0, t1 = epoch(ex["time"]), epoch(ex["until"])
    assert epoch(FIRST_SHELL) < t0 < t1 < epoch(CONTAINMENT)
    assert truth["exposure_window"] == {"start": FIRST_SHELL, "end": CONTAINMENT}
    hole = truth["db"]["hole"]
    assert t1 < epoch(hole["start"]) or t0 > epoch(hole["end"])
    # inside a preserved (live) file of db01 that the truth lists
    files = {f["name"]: f for f in truth["db"]["files"]}
    for st in ex["statements"]:
        f = files[st["file"]]
        assert f["kind"] == "live" and epoch(f["first"]) < epoch(st["time"]) < epoch(f["last"])
        assert t0 <= epoch(st["time"]) <= t1
        assert st["client"].startswith("192.168.10.11(") and st["user"] == "webapp" and st["database"] == "ferry"
    assert ex["web_requests"] == len(ex["web"]) == 7
    assert [w["time"] for w in ex["web"]] == sorted(w["time"] for w in ex["web"])
    assert ex["web"][0]["time"] == ex["time"]
    assert ex["tables"] == ["customers", "reservations", "voyages"]
    kinds = [(s["kind"], s["statement"].split(" (")[0][:24]) for s in ex["statements"]]
    assert kinds == [("error", "SELECT * FROM users"), ("duration", "SELECT table_name,"),
                     ("duration", "SELECT * FROM customers"), ("duration", "COPY customers TO STDOUT"),
                     ("duration", "COPY")]
    for s in ex["statements"]:
        if s["kind"] == "duration":
            assert s["duration_ms"] > 3000           # over log_min_duration_statement, so logged
        else:
            assert s["error"] == 'relation "users" does not exist'
    # the statements are none of the application's templates
    shapes = [re.sub(r"\{\w+\}", "", t).split(" WHERE ")[0] for t in truth["db"]["app_query_templates"]]
    for s in ex["statements"]:
        assert not any(s["statement"].startswith(shape) for shape in shapes), s["statement"]
    ms = [m for m in truth["milestones"] if m["kind"] == "exfiltration"]
    assert len(ms) == 1 and ms[0]["time"] == ex["time"] and ms[0]["host"] == "db01"
    assert ms[0]["detail"]["client"] == "192.168.10.11" and ms[0]["detail"]["statements"] == 5
    assert "web shell" in truth["attacker_db_activity"]


def test_counts_in_truth_grow_by_exactly_the_planted_records(plain, stolen):
    (_, before), (_, after) = plain, stolen
    ex = after["exfiltration"]
    n_lines = sum(len(s["lines"]) for s in ex["statements"])
    assert after["db"]["records_total"] == before["db"]["records_total"] + len(ex["statements"])
    assert after["db"]["lines_total"] == before["db"]["lines_total"] + n_lines
    assert after["db"]["heartbeats_total"] == before["db"]["heartbeats_total"]
    assert after["db"]["gaps"] == before["db"]["gaps"] and after["db"]["hole"] == before["db"]["hole"]
    rel = "db01/var/log/" + ex["statements"][0]["file"]
    assert after["files"][rel]["records"] == before["files"][rel]["records"] + len(ex["statements"])
    assert after["files"][rel]["lines"] == before["files"][rel]["lines"] + n_lines
    assert after["counts"]["webshell_executions"] == before["counts"]["webshell_executions"] + 7
    assert after["counts"]["webshell_planned"] == before["counts"]["webshell_planned"] + 7
    assert after["counts"]["webshell_by_block"]["C"] == before["counts"]["webshell_by_block"]["C"] + 7


@pytest.mark.parametrize("kwargs", [{"days": MIN_DAYS}, {"days": DEFAULT_DAYS}, {"days": MAX_DAYS}, {"full": True}])
def test_every_scale_and_seed_keeps_the_theft_in_a_preserved_file(kwargs):
    for seed in range(0, 60, 7):
        plan = make_plan(seed=seed, **kwargs)
        theft = exfil.make_exfil(seed)
        exfil.check_placement(plan, theft)      # raises when outside a live/backup file or in the hole
        kinds = {f.kind for f in plan.db_files if f.begin < theft.first and
                 theft.last < (f.rotation or plan.period[1])}
        assert kinds == {"live"}


# --- the evidence -------------------------------------------------------------------------------

def test_planted_db_lines_are_written_like_postgresql_through_rsyslog(stolen):
    out, truth = stolen
    ex = truth["exfiltration"]
    for st in ex["statements"]:
        head = f"{syslog_stamp(st['time'])} db01 postgres[{st['pid']}]: "
        prefix = f"DATABASE=ferry,USER=webapp,CLIENT={st['client']},"
        if st["kind"] == "error":
            expected = [head + f'[3-1] {prefix}ERROR:  relation "users" does not exist at character 15',
                        head + f"[3-2] {prefix}STATEMENT:  SELECT * FROM users"]
        else:
            msg = f"{prefix}LOG:  duration: {st['duration_ms']:.3f} ms  statement: {st['statement']}".encode()
            expected = [head + f"[3-{i}] " + chunk.decode() for i, chunk in enumerate(pgsyslog.chunks(msg), 1)]
        assert st["lines"] == expected
        lines = text_of(out / "evidence/db01/var/log" / st["file"])
        i = lines.index(expected[0])
        assert lines[i:i + len(expected)] == expected
        assert all(len(line.split("] ", 1)[1].encode()) <= pgsyslog.PG_SYSLOG_LIMIT for line in expected)
    # the long COPY is cut into [seq-chunk] lines, the continuation starting with the space
    long = ex["statements"][-1]["lines"]
    assert len(long) == 2 and "[3-2]  " in long[1]
    # a fresh backend per psql run: distinct, increasing pids
    pids = [s["pid"] for s in ex["statements"]]
    assert pids == sorted(set(pids))


def test_web_shell_requests_in_the_access_log(stolen):
    out, truth = stolen
    ex = truth["exfiltration"]
    day = ex["time"][:10]
    got = []
    for path in sorted((out / "evidence/web01/var/log/httpd").glob("access_log*")):
        for line in text_of(path):
            m = ACCESS.match(line)
            if m and m.group(1) == ex["source"] and m.group(9).startswith("/wp-contacts.php?c="):
                when = f"{m.group(4)}-{MONTHS.index(m.group(3)) + 1:02d}-{m.group(2)}"
                if when == day:
                    got.append(m)
    assert len(got) == 7
    for m, w in zip(got, ex["web"]):
        assert m.group(8) == "GET" and m.group(10) == "200"
        assert m.group(9) == "/wp-contacts.php?c=" + quote(w["command"], safe="") == w["url"]
        assert m.group(11) == (str(w["bytes"]) if w["bytes"] else "-")
        assert f"{m.group(5)}:{m.group(6)}:{m.group(7)}" == w["time"][11:19]
    commands = [w["command"] for w in ex["web"]]
    assert commands[0] == "cat /var/www/html/config.inc.php"
    assert all("psql -h 192.168.10.21 -U webapp -d ferry" in c for c in commands[1:])
    assert sum(w["bytes"] for w in ex["web"]) > 30 * 2**20      # the tables went out in the responses
    # psql's complaint about "users" went to Apache's error_log (stderr not redirected)
    err = [line for p in (out / "evidence/web01/var/log/httpd").glob("error_log*") for line in text_of(p)]
    i = err.index('ERROR:  relation "users" does not exist')
    assert err[i + 1:i + 3] == ["LINE 1: SELECT * FROM users", " " * 22 + "^"]


def test_nothing_else_in_the_evidence_moved(plain, stolen):
    """Without the planted lines (and with db01's pids, which shift by one per psql backend,
    masked) every file is what the run without --exfil wrote."""
    (a, ta), (b, tb) = plain, stolen
    fa, fb = tree_files(a), tree_files(b)
    assert set(fa) == set(fb)
    changed = {rel for rel in fa if fa[rel] != fb[rel]}
    ex = tb["exfiltration"]
    first_file = ex["statements"][0]["file"]
    names = [f["name"] for f in ta["db"]["files"]]
    later = {f"evidence/db01/var/log/{n}" for n in names[names.index(first_file):]}
    expected = later | {"evidence/db01/image/sdb1.dd", "truth.json", "truth-db-records.tsv.gz",
                        "evidence/web01/var/log/httpd/access_log-20171224.gz",
                        "evidence/web01/var/log/httpd/error_log-20171224.gz"}
    assert changed == expected
    planted = {line for s in ex["statements"] for line in s["lines"]}
    pid = re.compile(r" postgres\[\d+\]: ")
    for rel in sorted(later):
        mine = [pid.sub(" postgres[N]: ", line) for line in text_of(b / rel) if line not in planted]
        theirs = [pid.sub(" postgres[N]: ", line) for line in text_of(a / rel)]
        assert mine == theirs, rel
    urls = {w["url"] for w in ex["web"]}
    rel = "evidence/web01/var/log/httpd/access_log-20171224.gz"
    assert [x for x in text_of(b / rel) if not any(f" {u} " in x for u in urls)] == text_of(a / rel)
    rel = "evidence/web01/var/log/httpd/error_log-20171224.gz"
    stderr = {'ERROR:  relation "users" does not exist', "LINE 1: SELECT * FROM users", " " * 22 + "^"}
    assert [x for x in text_of(b / rel) if x not in stderr] == text_of(a / rel)


# --- ingest -------------------------------------------------------------------------------------

def test_ingest_yields_the_planted_events(case):
    truth, con = case
    ex = truth["exfiltration"]
    lo, hi = ex["time"][:19].replace("T", " "), ex["until"][:19].replace("T", " ")
    rows = con.execute(
        "SELECT ts_local, event_type, source_ip, source_port, db_user, db_name, process_pid, pg_seq, pg_level, "
        "duration_ms, relation, statement, line_count FROM events "
        "WHERE host = 'db01' AND source_ip = '192.168.10.11' AND ts_local BETWEEN ? AND ? "
        "ORDER BY ts_local, process_pid", [lo, hi]).fetchall()
    by_pid = {r[6]: r for r in rows}
    for st in ex["statements"]:
        r = by_pid[st["pid"]]
        assert r[0].isoformat() == st["time"][:19]
        assert (r[2], r[3], r[4], r[5], r[7]) == ("192.168.10.11", int(st["client"][14:-1]), "webapp", "ferry", 3)
        assert r[12] == len(st["lines"])
        if st["kind"] == "error":
            assert r[1] == "postgresql.undefined_table" and r[8] == "ERROR" and r[10] == "users"
            assert r[11] == "SELECT * FROM users"
        else:
            assert r[1] == "postgresql.duration" and r[8] == "LOG"
            assert r[9] == pytest.approx(st["duration_ms"]) and r[11] == st["statement"]
    # each planted record is one event, once (the live file; the image is not carved by ingest)
    n = con.execute("SELECT count(*) FROM events WHERE host = 'db01' AND statement = 'SELECT * FROM customers'"
                    ).fetchone()[0]
    assert n == 1


def test_ingest_yields_the_web_shell_requests(case):
    truth, con = case
    ex = truth["exfiltration"]
    rows = con.execute(
        "SELECT ts_local, format_id, http_method, url_path, url_query, http_status, bytes FROM events "
        "WHERE host = 'web01' AND source_ip = ? AND url_path = '/wp-contacts.php' "
        "AND ts_local BETWEEN ? AND ? ORDER BY ts_local",
        [ex["source"], ex["time"][:19].replace("T", " "), ex["until"][:19].replace("T", " ")]).fetchall()
    assert len(rows) == ex["web_requests"] == 7
    for r, w in zip(rows, ex["web"]):
        assert r[0].isoformat() == w["time"][:19]
        assert (r[1], r[2], r[5]) == ("apache-access", "GET", 200)
        assert "/wp-contacts.php?" + r[4] == w["url"]
        assert (r[6] or 0) == w["bytes"]


# --- the command line ---------------------------------------------------------------------------

def test_cli_refuses_to_reuse_a_demo_made_with_the_other_setting(stolen, plain, capsys):
    (xout, _), (pout, _) = stolen, plain
    before = (xout / "truth.json").read_bytes()
    assert cli.main(["demo", str(xout), "--days", str(DAYS), "--seed", str(SEED)]) == 2
    assert "with --exfil" in capsys.readouterr().err
    assert cli.main(["demo", str(pout), "--days", str(DAYS), "--seed", str(SEED), "--exfil"]) == 2
    assert "without --exfil" in capsys.readouterr().err
    assert cli.main(["demo", str(xout), "--days", str(DAYS), "--seed", str(SEED), "--exfil"]) == 0
    assert "kept as it is" in capsys.readouterr().err
    assert (xout / "truth.json").read_bytes() == before
    with pytest.raises(UsageError):
        cli._existing_demo(xout, cli.build_parser().parse_args(["demo", str(xout)]))
    assert json.loads(before)["exfiltration"]["planted"] is True
