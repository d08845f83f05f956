"""Log lines from the regression tests of fail2ban, OSSEC and Wazuh, parsed, and compared with their
annotations where they state parse results.

Sources:
- fail2ban/fail2ban @ deffcbcd1712a3a0cbd79c1da324096ebf36d306 (GPL-2.0-or-later):
  fail2ban/tests/files/logs/<name>. Each log line follows a '# failJSON: {time, match, host[, user]}'
  comment: the time fail2ban reads from the line, and for matching lines the attacker's host and user.
- ossec/ossec-hids @ 7f06fe0d7047e6b6b4ece86f82248660f89c3dbe (GPL-2.0 with the OpenSSL exception):
  contrib/logtesting/<n>/{log,res} (res: ossec-logtest's pre-decoding: hostname, program_name, log)
  and contrib/ossec-testing/tests/*.ini.
- wazuh/wazuh branch 4.14.8 @ 1387bcd0e7115d44c81d8c9b7307e12bb71de484 (GPL-2.0): ruleset/testing/tests/*.ini.

The INI files hold single lines ('log N pass = <line>') for decoder tests; they are gathered per
format (a line starting with '[Day ' is Apache error, '<ctime> [pid' is vsftpd, 'host ident user [' is
an access line, the rest syslog) and parsed per format.

Not covered: the IIS W3C lines of the web_rules.ini files; proftpd's own SystemLog lines are counted
as the issues they are.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from corpus_support import CORPUS_ROOT, assert_coverage, parse, read_bytes, split_lines, wall, without_comments

# (file, format, issues, LogFormat): issues None = at least 99 % of lines in events
FAIL2BAN = [
    ("apache-auth", "apache-error", None, None),
    ("apache-badbots", "apache-access", None, None),
    ("apache-botsearch", "apache-error", None, None),
    ("apache-modsecurity", "apache-error", None, None),
    ("apache-nohome", "apache-error", None, None),
    ("apache-noscript", "apache-error", None, None),
    ("apache-overflows", "apache-error", None, None),
    ("apache-shellshock", "apache-error", None, None),
    ("php-url-fopen", "apache-access", None, None),
    # combined without the zone in %t
    ("apache-pass", "apache-access", None, None),
    # a custom LogFormat (fail2ban's fixture comes without an httpd.conf: rebuilt from the line)
    ("apache-fakegooglebot", "apache-access", None, '%h %l %u - %t %v "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %X %I %O %D'),
    ("bsd/syslog-plain.txt", "syslog", None, None),
    ("bsd/syslog-v.txt", "syslog", None, None),
    ("bsd/syslog-vv.txt", "syslog", None, None),
    ("dropbear", "syslog", None, None),
    ("gssftpd", "syslog", None, None),
    ("pam-generic", "syslog", None, None),
    # one proftpd SystemLog line ('2013-11-16 21:59:30,121 novo proftpd[25891] …'), not syslog
    ("proftpd", "syslog", 1, None),
    ("pure-ftpd", "syslog", None, None),
    ("sshd", "syslog", None, None),
    ("wuftpd", "syslog", None, None),
    ("xinetd-fail", "syslog", None, None),
    # fail2ban's date-detector fixtures: '[Jun 21 16:55:03] <auth.info> …', '0000-12-30 …',
    # '[test-demo][13709] F2B: …' and the like, which no syslog daemon writes
    ("zzz-generic-example", "syslog", 13, None),
    # the audit log: sshd's USER_LOGIN/USER_AUTH/USER_ERR records (time in msg=audit(…), address in addr=)
    ("selinux-ssh", "auditd", None, None),
]
_SYSLOG_HEADER = re.compile(rb"[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s:\[]+(?:\[\d+\])?: ")


class _Both:
    """An Apache error log with some lines that httpd sent through syslog ('ErrorLog syslog:'):
    split by line, each part parsed in its own format."""

    def __init__(self, *results):
        self.parts = results
        self.events = [e for r in results for e in r.events]

    def problems(self):
        return [p for r in self.parts for p in r.problems()]

    @property
    def coverage(self):
        bad = sum(len(r.problems()) for r in self.parts)
        return 1 - bad / max(1, sum(r.nonblank for r in self.parts))

    @property
    def nonblank(self):
        return sum(r.nonblank for r in self.parts)

    def describe(self):
        return "\n".join(r.describe() for r in self.parts)


def _parse_fail2ban(name: str, fmt: str, logformat: str | None):
    data = without_comments(read_bytes(f"fail2ban/{name}"))
    ctx = {"apache_logformats": (logformat,)} if logformat else {}
    if fmt == "apache-error":
        via_syslog, rest = split_lines(data, lambda ln: _SYSLOG_HEADER.match(ln) is not None)
        if via_syslog:
            return _Both(parse(fmt, rest), parse("syslog", via_syslog))
    return parse(fmt, data, **ctx)


def fail_json(name: str) -> list[tuple[dict, str]]:
    """(annotation, the log line it describes) pairs, in file order."""
    out, pending = [], None
    for raw in read_bytes(f"fail2ban/{name}").decode("utf-8", "backslashreplace").split("\n"):
        if raw.startswith("# failJSON:"):
            pending = json.loads(raw[len("# failJSON:"):])
        elif raw.startswith("#") or not raw.strip():
            continue
        elif pending is not None:
            out.append((pending, raw.rstrip("\r")))
            pending = None
    return out


@pytest.mark.parametrize("name,fmt,issues,logformat", FAIL2BAN, ids=[f[0] for f in FAIL2BAN])
def test_fail2ban_file_parses(corpus, name, fmt, issues, logformat):
    result = _parse_fail2ban(name, fmt, logformat)
    if issues is None:
        assert_coverage(result, name)
    else:
        assert len(result.problems()) == issues, f"{name}:\n{result.describe()}"


# fail2ban checks the time of the lines its filter matches only; in these files some other lines'
# annotations are off by an hour (selinux-ssh: audit(1372546928.000:52008), 23:02:08 UTC, annotated
# 02:02:08 CEST; audit(1372557500.000:61750) annotated 04:58:20 where the matching line of the same
# second says 03:58:20)
_TIME_OF_MATCHES_ONLY = {"selinux-ssh"}


def _in_test_zone(rec: dict) -> tuple:
    st = rec["_stamp"]
    if st.utc_offset_s is None:
        return wall(rec)
    local = dt.datetime(st.year, st.month, st.day) + dt.timedelta(microseconds=st.sod_us)
    utc = (local - dt.timedelta(seconds=st.utc_offset_s)).replace(tzinfo=dt.timezone.utc)
    t = utc.astimezone(ZoneInfo("CET"))
    return t.year, t.month, t.day, t.strftime("%H:%M:%S"), t.microsecond


def _f2b_time(text: str) -> tuple:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return t.year, t.month, t.day, t.strftime("%H:%M:%S"), t.microsecond


@pytest.mark.parametrize("name,fmt,issues,logformat", FAIL2BAN, ids=[f[0] for f in FAIL2BAN])
def test_fail2ban_annotations(corpus, name, fmt, issues, logformat):
    """The time fail2ban reads from each line, and the host and user it finds in matching lines."""
    notes = fail_json(name)
    if not notes:
        pytest.skip(f"{name} carries no failJSON annotations")
    result = _parse_fail2ban(name, fmt, logformat)
    by_line: dict[str, list[dict]] = {}
    for rec in result.events:
        by_line.setdefault(rec["raw"].split("\n", 1)[0], []).append(rec)
    checked = 0
    for note, line in notes:
        recs = by_line.get(line)
        if not recs:
            continue  # a line this format does not read (counted by the coverage test above)
        rec = recs[0]
        where = f"{name}: {line[:80]!r}"
        if "time" in note and (note.get("match") or name not in _TIME_OF_MATCHES_ONLY):
            # fail2ban's tests run in CET/CEST and supply the year of year-less lines from their
            # clock (and, in apache-botsearch, even over a year the line states): month, day and
            # time are compared, in CET/CEST where the line states its offset
            want = _f2b_time(note["time"])
            assert _in_test_zone(rec)[1:4] == want[1:4], f"{where}: {wall(rec)} vs {note['time']}"
            checked += 1
        host = note.get("host")
        if note.get("match") and host and (rec.get("source_ip") or rec.get("source_host")):
            ours = {rec.get("source_ip"), rec.get("source_host")}
            ours |= {a[7:] for a in ours if a and a.startswith("::ffff:")}
            assert host in ours, f"{where}: host {host!r}, ours {ours}"
            checked += 1
        user = note.get("user")
        if note.get("match") and user and rec.get("user_name"):
            assert user in (rec.get("user_name"), rec.get("target_user")), f"{where}: user {user!r}, ours {rec.get('user_name')!r}"
            checked += 1
    assert checked >= len(result.events) // 2, f"{name}: only {checked} values compared"


def test_fail2ban_vsftpd_mixed(corpus):
    """fail2ban's vsftpd file mixes vsftpd's own log and syslog lines: split by line, two parses."""
    data = without_comments(read_bytes("fail2ban/vsftpd"))
    native, syslog = split_lines(data, lambda ln: re.match(rb"[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \d{4} \[pid ", ln) is not None)
    nat = parse("vsftpd", native)
    sys_ = parse("syslog", syslog)
    assert_coverage(nat, "fail2ban vsftpd native lines")
    assert_coverage(sys_, "fail2ban vsftpd syslog lines")
    assert all(r["event_type"] == "ftp.login" and r["outcome"] == "failure" for r in nat.events)
    hosts = {r.get("source_ip") for r in sys_.events if r.get("source_ip")}
    assert {"209.67.1.67", "192.0.2.222"} <= hosts


def test_fail2ban_sshd_sources(corpus):
    """Most of the 155 sshd variants name the attacker; the parse finds the same address fail2ban does."""
    result = _parse_fail2ban("sshd", "syslog", None)
    with_ip = [r for r in result.events if r.get("source_ip")]
    assert len(with_ip) > 100


# ---------------------------------------------------------------------------------------------
_INI_LINE = re.compile(rb"^log \d+ (?:pass|fail) = (.*)$")
INI_FILES = sorted(str(p.relative_to(CORPUS_ROOT)) for d in ("ossec-hids/ossec-testing", "wazuh-ruleset-tests")
                   for p in (CORPUS_ROOT / d).glob("*.ini")) if CORPUS_ROOT.is_dir() else []
# lines per file that are decoder input rather than file lines: proftpd SystemLog, a doubled year
# ('2015 2015 Nov 13 …'). (The apache.ini error lines cut before their timestamp, '[error] [client …]',
# are read as an error log reads headerless lines: program output, timed by the line before.)
INI_ISSUES = {
    "ossec-hids/ossec-testing/proftpd.ini": 1, "wazuh-ruleset-tests/proftpd.ini": 1,
    "ossec-hids/ossec-testing/syslog.ini": 1,
    # three test lines whose user agent was cut before its closing quote ("Googlebo…)
    "ossec-hids/ossec-testing/web_appsec.ini": 3, "wazuh-ruleset-tests/web_appsec.ini": 3,
}
_IIS = re.compile(rb"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+ (?:\S+ )*(?:GET|POST|HEAD) ")


def ini_lines(rel: str) -> list[bytes]:
    return [m.group(1) + b"\n" for ln in read_bytes(rel).split(b"\n") if (m := _INI_LINE.match(ln.rstrip(b"\r")))]


def classify(line: bytes) -> str | None:
    if line.startswith(b"["):
        return "apache-error"
    if re.match(rb"[A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d \d{4} \[pid ", line):
        return "vsftpd"
    if re.match(rb"\S+ \S+ \S+ \[\d", line):
        return "apache-access"
    if _IIS.match(line):
        return None  # IIS W3C extended log: not a supported format
    return "syslog"


@pytest.mark.parametrize("rel", INI_FILES)
def test_ruleset_test_lines_parse(corpus, rel):
    groups: dict[str, list[bytes]] = {}
    for line in ini_lines(rel):
        fmt = classify(line)
        if fmt:
            groups.setdefault(fmt, []).append(line)
    assert groups
    problems = []
    for fmt, lines in groups.items():
        problems += parse(fmt, b"".join(lines)).problems()
    assert len(problems) == INI_ISSUES.get(rel, 0), f"{rel}: {[p[4][:100] for p in problems]}"


LOGTESTING = sorted((p for p in (CORPUS_ROOT / "ossec-hids/logtesting").glob("*/log")),
                    key=lambda p: int(p.parent.name)) if CORPUS_ROOT.is_dir() else []


def _res_fields(res: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s+(hostname|program_name|log): '(.*)'$", res, re.M)}


@pytest.mark.parametrize("log", LOGTESTING, ids=[p.parent.name for p in LOGTESTING])
def test_ossec_logtest_predecoding(corpus, log: Path):
    """Where ossec-logtest's pre-decoder read a syslog header, the same host, program and message."""
    line = log.read_bytes()
    fields = _res_fields((log.parent / "res").read_text(encoding="utf-8", errors="replace"))
    fmt = classify(line)
    if fmt != "syslog" or fields.get("program_name") in (None, "(null)"):
        pytest.skip("ossec-logtest read no syslog header here (not syslog, or a day without padding)")
    result = parse("syslog", line if line.endswith(b"\n") else line + b"\n")
    (rec,) = result.events
    assert rec["log_host"] == fields["hostname"]
    assert rec["program"] == fields["program_name"]
    if "encoding" not in rec:  # invalid UTF-8 is backslash-escaped here, replaced by ossec-logtest
        assert rec["message"] == fields["log"].strip()
