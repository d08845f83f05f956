"""Our packaged Sigma rules against attack samples other tools test their own detections with.

Samples (../shared/corpus, see MANIFEST.tsv):
- CrowdSec hub scenario tests (crowdsecurity/hub, MIT): the log each scenario test replays. Every
  line of an attack scenario's log counts as an attack, including the ones the scenario only
  counts toward its threshold (the Cacti CVE-2022-46169 log is 7 enumeration requests and 2
  injections: generic rules find the 2).
- OSSEC and Wazuh ruleset tests (GPL-2.0): the 'pass' lines of the sections named for an attack we
  cover, and every 'fail' line as a benign example. Their IIS W3C lines and access lines wrapped
  in syslog headers are not access-log lines and are left out.
- fail2ban regression logs (GPL-2.0+): lines annotated '"match": true' are attacks (failed logins,
  remote file inclusion), '"match": false' ones benign examples.
- Elastic's apache/nginx pipeline fixtures (elastic-package): ordinary traffic, benign examples.

Each category's lines are ingested into a temporary case as a host of their own (one file per
format, the format given), every packaged rule is run, and a line counts as detected when an event
covering it is among the events of a finding of one of the category's rules. The floors below are
the rates measured when the rules were written, rounded down; a rule change that loses detections
fails here. Benign lines a category's rules flag are counted too, with a ceiling.

Measured (attack lines detected / attack lines; benign lines flagged / benign lines):
  web_scanner                  39/42   benign 0/49   missed: a router CGI answered 404, two bot
                                                     User-Agents ('the beast', MJ12bot)
  sql_injection                13/18   benign 0/49   missed: CrowdSec's bare 'md5(', 'hex(',
                                                     'upper(', 'distinct(', 'selectchar(' probes
  webshell_command_injection   89/97   benign 0/49   missed: the 7 Cacti enumeration requests
                                                     (CVE-2022-46169) before its injection, and
                                                     '?src=http://example.php' (uploadify)
  path_traversal               12/13   benign 0/49   missed: '/%2Fetc%2Fgroups'
  auth_failure                 84/130  benign 12/44  fail2ban also bans on pre-authentication
                                                     disconnects and failed key negotiation
                                                     (not failed authentications); the 'benign'
                                                     lines flagged are failed public keys, PAM
                                                     failures and locked accounts that fail2ban
                                                     ignores in that test, failures all the same
"""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

from logsalvage.config import CaseConfig
from logsalvage.detect import sigma
from logsalvage.detect.context import Context, settings_from
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"

RULES = {
    "web_scanner": {"sigma.web_scanner_probe", "sigma.web_scanner_user_agent"},
    "sql_injection": {"sigma.web_sql_injection"},
    "webshell_command_injection": {"sigma.web_webshell_command_parameter", "sigma.web_os_command_injection",
                                   "sigma.web_remote_download_command", "sigma.web_remote_file_inclusion",
                                   "sigma.web_code_injection"},
    "path_traversal": {"sigma.web_path_traversal"},
    "auth_failure": {"sigma.lnx_failed_authentication", "sigma.vsftpd_failed_login"},
}
# (detected, attacks) measured; the test asserts the rate rounded down to a percent
MEASURED = {
    "web_scanner": (39, 42),
    "sql_injection": (13, 18),
    "webshell_command_injection": (89, 97),
    "path_traversal": (12, 13),
    "auth_failure": (84, 130),
}
# (flagged, benign) measured; the test asserts the rate rounded up to a percent
MEASURED_BENIGN = {
    "web_scanner": (0, 49),
    "sql_injection": (0, 49),
    "webshell_command_injection": (0, 49),
    "path_traversal": (0, 49),
    "auth_failure": (12, 44),
}

CROWDSEC = {
    "web_scanner": ["apache2-http-sensitive-files", "http-wordpress-scan", "nginx-http-backdoor", "http-cve-probing"],
    "sql_injection": ["nginx-http-sqli-probing"],
    "webshell_command_injection": ["apache-http-probing", "CVE-2022-46169", "CVE-2022-26134",
                                   "apache-cve-2021-41773", "cve-2021-42013"],
    "path_traversal": ["nginx-http-path-traversal", "apache-cve-2021-41773", "cve-2021-42013"],
    "auth_failure": ["ssh-bf", "vsftpd-bf"],
}
INI_FILES = ["ossec-hids/ossec-testing/web_appsec.ini", "wazuh-ruleset-tests/web_appsec.ini",
             "ossec-hids/ossec-testing/web_rules.ini", "wazuh-ruleset-tests/web_rules.ini"]
INI_SECTIONS = {
    "web_scanner": ["PHPMyAdmin scans (looking for setup.php).", "Suspicious URL access.",
                    "Blacklisted user agent (known malicious user agent)."],
    "sql_injection": ["SQL injection attempt", "SQL injection attempt-2", "SQL Injection Attempt - syslog format"],
    "webshell_command_injection": ["Simple shell.php command execution.", "BBS delete.php exploit attempt.",
                                   "Uploadify vulnerability exploit attempt.", "PHP CGI-bin vulnerability attempt."],
    "path_traversal": ["Cart.php directory transversal attempt."],
}
FAIL2BAN = {
    "webshell_command_injection": ["php-url-fopen"],
    "auth_failure": ["sshd", "dropbear", "vsftpd", "proftpd", "pure-ftpd", "wuftpd", "gssftpd"],
}
BENIGN_WEB = sorted(f"elastic-package/{d}/{f.name}" for d in ("apache-access", "nginx-access")
                    for f in (CORPUS / "elastic-package" / d).glob("*.log")) if CORPUS.is_dir() else []

_ACCESS = re.compile(rb'^(?:\S+:\d+ |\S+ (?=\S+ \S+ \S+ \[))?[^\s\[]+ \S+ \S+ \[\d{1,2}/\w{3}/\d{4}:')
_VSFTPD = re.compile(rb"^[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d \d{4} \[pid ")
_INI_LINE = re.compile(r"^log \d+ (pass|fail) = (.*)$")


@dataclass(frozen=True)
class Sample:
    category: str
    origin: str
    fmt: str
    line: bytes
    attack: bool


def _format(line: bytes) -> str | None:
    if _ACCESS.match(line):
        return "apache-access"
    if _VSFTPD.match(line):
        return "vsftpd"
    if re.match(rb"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d ", line):
        return "syslog"
    return None


def _lines(path: Path) -> list[bytes]:
    return [ln.rstrip(b"\r") for ln in path.read_bytes().split(b"\n") if ln.strip()]


def _crowdsec(category: str, name: str) -> list[Sample]:
    d = CORPUS / "crowdsec-hub" / name
    log = next(p for p in d.glob("*.log"))
    out = []
    for ln in _lines(log):
        fmt = _format(ln)
        # a web scenario's log may hold an error-log line: not an access line, not ours to count
        if fmt and (fmt == "apache-access") == (category != "auth_failure"):
            out.append(Sample(category, f"crowdsec:{name}", fmt, ln, True))
    return out


def _ini(rel: str) -> list[tuple[str, bool, bytes]]:
    out, section = [], None
    for text in (CORPUS / rel).read_text(encoding="utf-8", errors="surrogateescape").splitlines():
        if text.startswith("[") and text.rstrip().endswith("]"):
            section = text.strip()[1:-1]
        elif m := _INI_LINE.match(text):
            out.append((section, m[1] == "pass", m[2].encode("utf-8", "surrogateescape")))
    return out


def _fail2ban(name: str) -> list[tuple[dict, bytes]]:
    out, pending = [], None
    for raw in (CORPUS / "fail2ban" / name).read_bytes().split(b"\n"):
        raw = raw.rstrip(b"\r")
        if raw.startswith(b"# failJSON:"):
            pending = json.loads(raw[len(b"# failJSON:"):])
        elif raw.startswith(b"#") or not raw.strip():
            continue
        elif pending is not None:
            out.append((pending, raw))
            pending = None
    return out


def samples() -> list[Sample]:
    out: list[Sample] = []
    for category, names in CROWDSEC.items():
        for name in names:
            out += _crowdsec(category, name)
    ini = [(rel, *entry) for rel in INI_FILES for entry in _ini(rel)]
    for category, sections in INI_SECTIONS.items():
        for rel, section, passes, line in ini:
            if section in sections and passes and _format(line) == "apache-access":
                out.append(Sample(category, f"ini:{section}", "apache-access", line, True))
    for category, names in FAIL2BAN.items():
        for name in names:
            for note, line in _fail2ban(name):
                fmt = _format(line)
                if fmt and (fmt == "apache-access") == (category != "auth_failure"):
                    out.append(Sample(category, f"fail2ban:{name}", fmt, line, bool(note.get("match"))))
    benign = [("ini", line) for rel, _, passes, line in ini if not passes and _format(line) == "apache-access"]
    benign += [("elastic", ln) for rel in BENIGN_WEB for ln in _lines(CORPUS / rel) if _format(ln) == "apache-access"]
    out += [Sample("benign_web", f"{kind}", "apache-access", line, False) for kind, line in benign]
    # one copy of a line per category and format (OSSEC and Wazuh share most of their tests)
    seen, unique = set(), []
    for s in out:
        if (s.category, s.fmt, s.line) not in seen:
            seen.add((s.category, s.fmt, s.line))
            unique.append(s)
    return unique


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    if not (CORPUS / "MANIFEST.tsv").is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    root = tmp_path_factory.mktemp("corpus_detections")
    case = root / "case"
    groups: dict[tuple[str, str], list[Sample]] = defaultdict(list)
    for s in samples():
        groups[(s.category, s.fmt)].append(s)
    where: dict[tuple[str, str, int], Sample] = {}  # (host, file, line number) -> sample
    for (category, fmt), group in sorted(groups.items()):
        d = root / "evidence" / f"{category}-{fmt}"
        d.mkdir(parents=True)
        name = {"apache-access": "access_log", "syslog": "messages", "vsftpd": "vsftpd.log"}[fmt]
        (d / name).write_bytes(b"".join(s.line + b"\n" for s in group))
        ingest([d], case, host=category, format_id=fmt, config=CaseConfig())
        for i, s in enumerate(group, 1):
            where[(category, name, i)] = s
    with CaseStore(case) as store:
        run = sigma.run(Context(store, settings_from(CaseConfig())))
        flagged: dict[str, set[str]] = defaultdict(set)  # event id -> rules
        for f in run.findings:
            for eid in f.event_ids:
                flagged[eid].add(f.rule)
        covered: dict[int, set[str]] = defaultdict(set)  # id(sample) -> rules
        parsed: set[int] = set()
        for eid, host, path, line_no, count in store.query(
                "SELECT e.event_id, e.host, s.path, e.line_no, e.line_count FROM events e JOIN sources s USING (source_id)"):
            for n in range(line_no, line_no + count):
                s = where.get((host, Path(path).name, n))
                if s is not None:
                    parsed.add(id(s))
                    covered[id(s)] |= flagged.get(eid, set())
    rates = {}
    benign = [s for s in where.values() if s.category == "benign_web"]
    for category, rules in RULES.items():
        attacks = [s for s in where.values() if s.category == category and s.attack]
        negatives = [s for s in where.values() if s.category == category and not s.attack]
        if category != "auth_failure":
            negatives += benign
        rates[category] = {
            "attacks": len(attacks),
            "parsed": sum(1 for s in attacks if id(s) in parsed),
            "detected": sum(1 for s in attacks if covered[id(s)] & rules),
            "missed": [(s.origin, s.line[:140]) for s in attacks if not covered[id(s)] & rules],
            "benign": len(negatives),
            "flagged": sum(1 for s in negatives if covered[id(s)] & rules),
            "false": [(s.origin, s.line[:140]) for s in negatives if covered[id(s)] & rules],
        }
    return rates


def _table(rates) -> str:
    return "\n".join(f"  {c:28s} {r['detected']:4d}/{r['attacks']:<4d} (parsed {r['parsed']})  "
                     f"benign flagged {r['flagged']}/{r['benign']}" for c, r in rates.items())


@pytest.mark.parametrize("category", list(RULES))
def test_detection_rate_per_category(measured, category):
    r = measured[category]
    detected, attacks = MEASURED[category]
    assert r["attacks"] == attacks, f"the corpus changed: {r['attacks']} attack lines, {attacks} expected"
    floor = math.floor(100 * detected / attacks)
    rate = 100 * r["detected"] / r["attacks"]
    assert rate >= floor, (f"{category}: {r['detected']}/{r['attacks']} detected ({rate:.1f} %), "
                           f"at least {floor} % expected; missed:\n"
                           + "\n".join(f"    {o}: {ln!r}" for o, ln in r["missed"]) + "\n" + _table(measured))


@pytest.mark.parametrize("category", list(RULES))
def test_benign_lines_flagged_per_category(measured, category):
    r = measured[category]
    flagged, benign = MEASURED_BENIGN[category]
    ceiling = math.ceil(100 * flagged / benign)
    rate = 100 * r["flagged"] / max(1, r["benign"])
    assert rate <= ceiling, (f"{category}: {r['flagged']}/{r['benign']} benign lines flagged ({rate:.1f} %), "
                             f"at most {ceiling} % expected:\n"
                             + "\n".join(f"    {o}: {ln!r}" for o, ln in r["false"]) + "\n" + _table(measured))
