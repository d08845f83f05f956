"""Logs a broken-into server leaves besides its web and database logs — nginx's error log, apt's
history and terminal logs, the audit log, shell histories, vsftpd's protocol log — written by the
real programs (tests/data/*/README.md say how), recognised without --format and read whole.

The expected counts come from the files themselves (lines of a kind, counted here with plain
string tests), the expected values from what the programs were asked to do."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from logsalvage.ingest import ingest
from logsalvage.parsing.engine import ParseContext
from logsalvage.parsing.formats import shipped_formats
from logsalvage.sources.histories import history_format, history_owner

from tests.parsing.differential import differences

DATA = Path(__file__).resolve().parents[1] / "data"


def _evidence(tmp_path: Path) -> Path:
    ev = tmp_path / "ev"
    log = ev / "web01/var/log"
    for rel, to in [("nginx_error/error.log", "nginx/error.log"), ("apt/history.log", "apt/history.log"),
                    ("apt/term.log", "apt/term.log"), ("auditd/audit.log", "audit/audit.log"),
                    ("vsftpd_protocol/vsftpd.log", "vsftpd.log")]:
        (log / to).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(DATA / rel, log / to)
    shutil.copytree(DATA / "shell_history/web01", ev / "web01", dirs_exist_ok=True)
    return ev


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("system_logs")
    result = ingest([_evidence(tmp)], tmp / "case")
    con = duckdb.connect(str(tmp / "case/case.duckdb"), read_only=True)
    yield result, con
    con.close()


def _rows(con, sql, *args):
    return con.execute(sql, list(args)).fetchall()


def _lines(rel: str) -> list[str]:
    """The file's lines as the engine cuts them: at LF only (term.log's progress lines hold CRs)."""
    return [ln.removesuffix("\r") for ln in (DATA / rel).read_bytes().decode("utf-8").split("\n")[:-1]]


def test_each_log_is_recognised_and_read_without_issues(case):
    result, _ = case
    got = {s["path"]: (s["format"], s["issues"]) for s in result.sources}
    assert got == {
        "web01/var/log/nginx/error.log": ("nginx-error", 0),
        "web01/var/log/apt/history.log": ("apt-history", 0),
        "web01/var/log/apt/term.log": ("apt-term", 0),
        "web01/var/log/audit/audit.log": ("auditd", 0),
        "web01/var/log/vsftpd.log": ("vsftpd", 0),
        "web01/home/alice/.bash_history": ("bash-history", 0),
        "web01/root/.bash_history": ("bash-history", 0),
        "web01/home/bob/.zsh_history": ("zsh-history", 0),
    }
    assert result.issues == 0


def test_nginx_error_log(case):
    _, con = case
    lines = _lines("nginx_error/error.log")
    headers = [ln for ln in lines if ln[:4].isdigit() and ln[4:5] == "/"]
    rows = _rows(con, """SELECT line_no, line_count, event_type, log_level, source_ip, vhost, http_method, url_path,
                                url_query, file_path, action, json_extract_string(extra, '$.php_level'), ts_utc
                         FROM events WHERE format_id = 'nginx-error' ORDER BY line_no""")
    assert len(rows) == len(headers)  # the PHP stack trace's lines are part of their record
    types = Counter(r[2] for r in rows)
    assert types["web.error.file_missing"] == sum('" failed (2: No such file or directory), client' in h
                                                  and h.split(": *", 1)[1].split(" ", 2)[1].startswith("open()")
                                                  for h in headers)
    assert types["web.error.script_missing"] == sum("Primary script unknown" in h or "access forbidden" in h
                                                    for h in headers)
    assert types["web.error.php"] == 1
    levels = Counter(r[3] for r in rows)
    assert levels == Counter(h.split("[", 1)[1].split("]", 1)[0] for h in headers)
    php = next(r for r in rows if r[2] == "web.error.php")
    # the client and the request nginx wrote after the quoted stack trace, three lines down
    assert php[1] == 4 and php[4:8] == ("127.0.0.1", "_", "GET", "/err.php") and php[11] == "Warning"
    shell = next(r for r in rows if r[7] == "/shell.php")
    assert shell[8] == "cmd=cat%20/etc/passwd&x=1"
    missing = next(r for r in rows if r[7] == "/missing.html")
    assert missing[2] == "web.error.file_missing" and missing[9].endswith("/html/missing.html")
    assert [r[10] for r in rows if r[10] in ("start", "reload", "stop")] == ["start", "reload", "stop"]
    assert str(rows[0][12]) == "2026-12-07 07:25:45+00:00"  # local time; the host's zone is UTC here


def test_the_columnar_engine_reads_nginx_and_vsftpd_and_leaves_the_rest_to_the_reference(case, tmp_path):
    data = (DATA / "nginx_error/error.log").read_bytes()
    assert differences(shipped_formats()["nginx-error"], ParseContext(), data, tmp_path / "d") == []
    result = ingest([_evidence(tmp_path)], tmp_path / "case", engine="columnar")
    parsers = {s["format"]: s["parser"] for s in result.sources}
    assert parsers.pop("nginx-error") == parsers.pop("vsftpd") == "columnar"
    assert parsers == {fmt: f"reference: the {asm} assembler is not columnar" for fmt, asm in [
        ("apt-history", "apt-history"), ("apt-term", "stanza"), ("auditd", "auditd"),
        ("bash-history", "shell-history"), ("zsh-history", "shell-history")]}
    auto = {s["path"]: (s["events"], s["issues"]) for s in case[0].sources}
    assert {s["path"]: (s["events"], s["issues"]) for s in result.sources} == auto


def test_vsftpd_protocol_log_agrees_on_both_engines(case, tmp_path):
    _, con = case
    data = (DATA / "vsftpd_protocol/vsftpd.log").read_bytes()
    assert differences(shipped_formats()["vsftpd"], ParseContext(), data, tmp_path) == []
    lines = _lines("vsftpd_protocol/vsftpd.log")
    asked = next(i for i, ln in enumerate(lines) if ln.endswith('"FEAT"')) + 1
    answered = next(i for i, ln in enumerate(lines) if ln.endswith('"211 End"')) + 1
    feat = _rows(con, """SELECT json_extract_string(extra, '$.detail'), json_extract_string(extra, '$.direction')
                         FROM events WHERE format_id = 'vsftpd' AND event_type = 'ftp.protocol'
                           AND line_no > ? AND line_no <= ? ORDER BY line_no""", asked, answered)
    # the reply to FEAT, piece by piece as vsftpd logged it, its CR LF shown as '??'
    assert [r[0] for r in feat] == ["211-Features:", " EPRT??", " EPSV??", " MDTM??", " PASV??", " REST STREAM??",
                                    " SIZE??", " TVFS??", "211 End"]
    assert {r[1] for r in feat} == {"response"}
    assert _rows(con, "SELECT count(*) FROM events WHERE format_id = 'vsftpd'")[0][0] == len(lines)


def test_apt_history_and_term_log(case):
    _, con = case
    history = _lines("apt/history.log")
    rows = _rows(con, """SELECT line_no, command, action, outcome, user_name, json_extract_string(extra, '$.error'),
                                json_extract(extra, '$.packages'), strftime(ts_utc, '%Y-%m-%d  %H:%M:%S')
                         FROM events WHERE event_type = 'apt.transaction' ORDER BY line_no""")
    starts = [i + 1 for i, ln in enumerate(history) if ln.startswith("Start-Date: ")]
    assert [r[0] + 1 for r in rows] == starts  # each stanza from the blank line apt writes before it
    assert [r[1] for r in rows] == [ln[len("Commandline: "):] for ln in history if ln.startswith("Commandline: ")]
    assert [r[7] for r in rows] == [ln[len("Start-Date: "):] for ln in history if ln.startswith("Start-Date: ")]
    assert [r[2] for r in rows] == ["upgrade", "install", "install", "install", "remove", "purge"]
    assert [r[3] for r in rows] == ["success"] * 4 + ["failure", "success"]
    assert rows[4][5] == "Sub-process /usr/bin/dpkg returned an error code (1)"
    big = json.loads(rows[2][6])
    install_line = next(ln for ln in history if ln.startswith("Install: zsh-common"))
    assert ", ".join(big) == install_line[len("Install: "):] and len(big) == install_line.count("), ") + 1
    assert "auditd:amd64 (1:3.0.9-1)" in big and "nginx:amd64 (1.22.1-9+deb12u12, automatic)" in big
    assert json.loads(rows[0][6]) == ["tzdata:amd64 (2025b-0+deb12u1, 2025b-0+deb12u2)"]
    term = _rows(con, """SELECT line_no, line_count, message, json_extract_string(extra, '$.end_time')
                         FROM events WHERE event_type = 'apt.term' ORDER BY line_no""")
    lines = _lines("apt/term.log")
    assert [r[0] + 1 for r in term] == [i + 1 for i, ln in enumerate(lines) if ln.startswith("Log started: ")]
    assert sum(r[1] for r in term) == len(lines)  # every line in a session, blank ones included
    refused = term[4][2]
    assert "Refusing to remove sudo." in refused and "\r\n\r\nIf you would prefer" not in refused
    assert [r[3] for r in term] == [ln[len("Log ended: "):] for ln in lines if ln.startswith("Log ended: ")]


def test_audit_log(case):
    _, con = case
    lines = _lines("auditd/audit.log")
    rows = _rows(con, """SELECT event_type, json_extract(extra, '$.audit_serial')::BIGINT, command, user_name, outcome,
                                process_pid, json_extract_string(extra, '$.UID'), epoch_ms(ts_utc), line_no
                         FROM events WHERE format_id = 'auditd' ORDER BY line_no""")
    assert len(rows) == len(lines)
    assert Counter(r[0] for r in rows) == Counter("audit." + ln.split(" ", 1)[0][5:].lower() for ln in lines)
    for (etype, serial, *_rest, ms, line_no) in rows:
        stamp = lines[line_no - 1].split("msg=audit(", 1)[1].split(")", 1)[0]
        assert (ms, serial) == (int(stamp.split(":")[0].replace(".", "")), int(stamp.split(":")[1]))
    by_serial = {}
    for r in rows:
        by_serial.setdefault(r[1], []).append(r)
    execve = {r[0]: r for r in by_serial[119]}
    assert execve["audit.execve"][2] == "sh -c 'id; uname -a'"  # a2 was hex: it holds a space
    assert execve["audit.syscall"][5] == 12361 and execve["audit.syscall"][6] == "www-data"  # ENRICHED
    assert next(r for r in by_serial[123] if r[0] == "audit.execve")[2] == "/bin/echo 'quoted \"arg\"' plain"
    cmd = next(r for r in by_serial[129])
    assert cmd[:5] == ("audit.user_cmd", 129, "/bin/ls -la /tmp/a2_audit/work", None, "success")
    auth = [(r[1], r[3], r[4]) for r in rows if r[0] == "audit.user_auth"]
    assert auth == [(138, "nobody", "failure"), (139, "nobody", "failure"), (143, "nobody", "success")]


def test_shell_histories(case):
    _, con = case
    rows = _rows(con, """SELECT s.path, e.user_name, e.command, e.ts_utc IS NULL, e.line_no, e.line_count,
                                epoch(e.ts_utc)::BIGINT
                         FROM events e JOIN sources s USING (source_id)
                         WHERE e.event_type = 'shell.command' ORDER BY s.path, e.line_no""")
    users = {path: {r[1] for r in rows if r[0] == path} for path in {r[0] for r in rows}}
    assert users == {"web01/home/alice/.bash_history": {"alice"}, "web01/home/bob/.zsh_history": {"bob"},
                     "web01/root/.bash_history": {"root"}}
    alice = [r for r in rows if r[1] == "alice"]
    lines = _lines("shell_history/web01/home/alice/.bash_history")
    stamps = [i for i, ln in enumerate(lines) if ln.startswith("#")]
    assert len(alice) == len(lines) - len(stamps)  # a command a line, its time line part of its record
    for r in alice:
        before = lines[r[4] - 1]
        if r[3]:  # no time: the first session's lines, and a multi-line command's lines after its first
            assert not before.startswith("#") and (r[4] < 2 or not lines[r[4] - 2].startswith("#"))
        else:
            assert before == f"#{r[6]}" and lines[r[4]] == r[2] and r[5] == 2
    assert [r[2] for r in alice if r[3]][:3] == ["id", "uname -a", "exit"]
    root = [r for r in rows if r[1] == "root"]
    assert [r[2] for r in root] == _lines("shell_history/web01/root/.bash_history") and all(r[3] for r in root)
    bob = [r for r in rows if r[1] == "bob"]
    zsh = _lines("shell_history/web01/home/bob/.zsh_history")
    assert len(bob) == sum(ln.startswith(": ") for ln in zsh) and not any(r[3] for r in bob)
    loop = next(r for r in bob if r[2].startswith("for "))
    assert loop[2] == "for f in a b\ndo\necho $f\ndone" and loop[5] == 4
    assert [r[6] for r in bob] == [int(ln[2:].split(":", 1)[0]) for ln in zsh if ln.startswith(": ")]


@pytest.mark.parametrize("name,fmt", [(".bash_history", "bash-history"), (".zsh_history", "zsh-history"),
                                      (".bash_history-20171225", "bash-history"), (".bash_historyX", None),
                                      (".histfile", "zsh-history"), ("bash_history", None)])
def test_history_names(name, fmt):
    assert history_format(name) == fmt


@pytest.mark.parametrize("path,user", [("web01/home/alice/.bash_history", "alice"), ("root/.bash_history", "root"),
                                       ("backup/home/bob/.zsh_history", "bob"), ("home/.bash_history", None),
                                       ("var/www/.bash_history", None), ("Users/carol/.zsh_history", "carol")])
def test_history_owner(path, user):
    assert history_owner(path) == user


def test_a_history_in_a_backup_archive_is_its_owners(tmp_path):
    import tarfile

    ev = tmp_path / "ev/web01/backup"
    ev.mkdir(parents=True)
    with tarfile.open(ev / "homes.tar.gz", "w:gz") as tar:
        tar.add(DATA / "shell_history/web01/home/alice/.bash_history", arcname="home/alice/.bash_history")
        tar.add(DATA / "shell_history/web01/home/bob/.zsh_history", arcname="./home/bob/.zsh_history")
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    assert sorted((s["format"], s["kind"], s["issues"]) for s in result.sources) == [
        ("bash-history", "backup", 0), ("zsh-history", "backup", 0)]
    con = duckdb.connect(str(tmp_path / "case/case.duckdb"), read_only=True)
    users = con.execute("SELECT format_id, list(DISTINCT user_name) FROM events GROUP BY ALL ORDER BY 1").fetchall()
    con.close()
    assert users == [("bash-history", ["alice"]), ("zsh-history", ["bob"])]
