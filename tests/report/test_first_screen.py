"""The report's first screen, for the decision maker: the theft's facts in the verdict, the verdict's
grounds in plain words, the story with the gap in how the intruders got in, what to do now — and no
identifier of the tool's own (rule, finding, event) anywhere in it.

A small case is built for it: web01's access log, where a web shell first answers on day 1 and on
day 2 runs psql with the application's credentials (the statement in the URL), its FTP log, where the
shell's file is uploaded only after its first request, and db01's PostgreSQL log (a health check
every 30 s, the application's statements, and the COPY the shell ran). The pure parts (narrative,
next steps, plain language, the clock) are also checked on hand-made findings.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from logsalvage.config import parse_config
from logsalvage.detect import commands
from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.report import model as report_model
from logsalvage.report import narrative, next_steps, plain_language
from logsalvage.report.html import write_report
from logsalvage.report.times import CaseClock
from logsalvage.store import CaseStore

JST = timezone(timedelta(hours=9))
START = datetime(2017, 12, 1, tzinfo=JST)
SHELL = "/up.php"
INTRUDER = "198.51.100.66"
COPY = "COPY customers TO STDOUT WITH CSV HEADER"
PSQL = ("PGPASSWORD%3Dsecret%20psql%20-h%20192.168.10.21%20-U%20webapp%20-d%20shop%20-c%20%22COPY%20customers"
        "%20TO%20STDOUT%20WITH%20CSV%20HEADER%22")
ANSWER_BYTES = 5_000_000
FIRST_SHELL = START + timedelta(days=1, hours=10)
THEFT_REQUEST = START + timedelta(days=2, hours=14)
THEFT_LOGGED = THEFT_REQUEST + timedelta(seconds=8)  # the statement is logged when it ends
UPLOAD = START + timedelta(days=2, hours=20)
FTP_LOG_START = START + timedelta(hours=9)
CONFIG = parse_config({
    "acquired": "2017-12-05T12:00:00+09:00",
    "hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"], "addresses": ["192.168.10.11"]},
              "db01": {"timezone": "Asia/Tokyo", "paths": ["db01/**"], "addresses": ["192.168.10.21"]}},
    "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
    "inventory": {"web": ["/index.php"]},
    "application": {"db_clients": ["192.168.10.11"], "db_users": ["webapp"], "customer_tables": ["customers"]},
    "detect": {"maintenance_addresses": ["192.168.10.50"]},
}, "test")
ONE_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
ANY_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d|UTC))?")


def _access(t: datetime, ip: str, target: str, status: int = 200, size: int = 900) -> str:
    return f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0900] "GET {target} HTTP/1.1" {status} {size} "-" "Mozilla/5.0"\n'


def _syslog(t: datetime, pid: int, body: str) -> str:
    return f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 postgres[{pid}]: [3-1] {body}\n"


def _vsftpd(t: datetime, text: str) -> str:
    return f"{t:%a %b} {t.day:2d} {t:%H:%M:%S %Y} [pid {4000 + t.hour}] {text}\n"


def _evidence(root: Path) -> Path:
    ev = root / "ev"
    site = [(START + timedelta(minutes=10 * i), f"203.0.113.{i % 50}", "/index.php", 200, 900)
            for i in range(4 * 144)]
    shell = [(FIRST_SHELL, INTRUDER, f"{SHELL}?c=id", 200, 40),
             (FIRST_SHELL + timedelta(seconds=20), INTRUDER, f"{SHELL}?c=uname%20-a", 200, 120),
             (THEFT_REQUEST, INTRUDER, f"{SHELL}?c={PSQL}", 200, ANSWER_BYTES)]
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text("".join(_access(*r) for r in sorted(site + shell)))
    (ev / "web01/var/log/vsftpd.log").write_text("".join([
        _vsftpd(FTP_LOG_START, 'CONNECT: Client "192.168.10.50"'),
        _vsftpd(FTP_LOG_START + timedelta(seconds=2), '[shop] OK LOGIN: Client "192.168.10.50"'),
        _vsftpd(UPLOAD, f'CONNECT: Client "{INTRUDER}"'),
        _vsftpd(UPLOAD + timedelta(seconds=2), f'[shop] OK LOGIN: Client "{INTRUDER}"'),
        _vsftpd(UPLOAD + timedelta(seconds=9),
                f'[shop] OK UPLOAD: Client "{INTRUDER}", "/htdocs{SHELL}", 4200 bytes, 98.00Kbyte/sec'),
    ]))
    records = [(START + timedelta(seconds=30 * i), "DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1(40000),"
                "LOG:  incomplete startup packet") for i in range(4 * 2880)]
    records += [(START + timedelta(days=d, hours=h, seconds=15),
                 "DATABASE=shop,USER=webapp,CLIENT=192.168.10.11(50000),LOG:  duration: 3200.5 ms  statement: "
                 f"SELECT name FROM customers WHERE customer_id = {d * 10 + h}")
                for d in range(4) for h in range(9, 15)]
    records.append((THEFT_LOGGED, "DATABASE=shop,USER=webapp,CLIENT=192.168.10.11(50999),"
                    f"LOG:  duration: 8000.0 ms  statement: {COPY}"))
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text("".join(
        _syslog(t, 3000 + i, body) for i, (t, body) in enumerate(sorted(records))))
    return ev


@pytest.fixture(scope="module")
def theft_case(tmp_path_factory):
    """(findings, model, the rendered report) of the small theft case."""
    root = tmp_path_factory.mktemp("first-screen")
    case = root / "case"
    ingest([_evidence(root)], case, config=CONFIG)
    with CaseStore(case) as store:
        findings = json.loads(json.dumps(run_detection(store, CONFIG), default=str))
        model = report_model.build(store, case, findings, figures_dir=case / "figures")
    html = write_report(model, case).read_text(encoding="utf-8")
    return findings, model, html


def _decision_html(html: str) -> str:
    start, end = html.index('<div id="decision">'), html.index('<div id="analysis">')
    assert start < end
    return html[start:end]


def _shown(t: datetime) -> str:
    return t.astimezone(JST).strftime("%Y-%m-%d %H:%M:%S")


# --- the case, detect to report ----------------------------------------------------------------------

def test_the_theft_is_found_with_its_facts_in_the_verdict(theft_case):
    findings, model, _ = theft_case
    verdict = findings["verdict"]
    assert verdict["exfiltration"] == "found"
    theft = verdict["theft"]  # carried by the verdict itself, not re-queried by the report
    assert theft["tables"] == ["customers"] and theft["db_users"] == ["webapp"]
    assert theft["clients"] == ["192.168.10.11"] and theft["client_hosts"] == {"192.168.10.11": "web01"}
    assert theft["web"]["scripts"] == [SHELL] and theft["web"]["sources"] == [INTRUDER]
    assert theft["web"]["hosts"] == ["web01"] and theft["web"]["requests"] == 1
    assert theft["web"]["bytes"] == ANSWER_BYTES and theft["rows"] is None
    rows = {r["label"]: r for r in model["decision"]["theft"]["rows"]}
    assert rows["When"]["start"]["text"] == _shown(THEFT_LOGGED)
    assert rows["When"]["start"]["utc"] == THEFT_LOGGED.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    assert rows["Which tables"]["text"] == "customers"
    assert "5.0 MB (5,000,000 bytes)" in rows["How much"]["text"]
    assert "does not record how many rows" in rows["How much"]["text"]
    assert "webapp" in rows["By whom"]["text"] and "client program is not in the log" in rows["By whom"]["text"]
    assert "192.168.10.11 (web01)" in rows["From where"]["text"] and INTRUDER in rows["From where"]["text"]
    assert f"the web shell {SHELL} on web01" in rows["Through"]["text"]
    # and on the page, in the verdict's frame, before anything else of the first screen
    decision = _decision_html(theft_case[2])
    facts = decision.index('<dl class="pairs theft">')
    assert decision.index('class="answer"') < facts < decision.index('class="story"')
    assert f"{SHELL} on web01" in decision[facts:] and "5.0 MB" in decision[facts:]


def test_the_story_names_the_gap_in_how_the_shell_got_there(theft_case):
    _, model, html = theft_case
    story = model["decision"]["story"]
    text = story["text"]
    assert text.startswith(f"Intruders had access to web01 and, through it, the database on db01 from "
                           f"{_shown(FIRST_SHELL)}, when a web shell first ran a command")
    assert f"How the web shell got onto web01 is not in the logs read: its first request ({SHELL}, " \
           f"{_shown(FIRST_SHELL)}) came" in text
    assert f"before the first FTP upload in the evidence ({_shown(UPLOAD)})" in text
    assert "most likely arrived earlier by FTP upload, as the later uploads show" in text
    assert f"the same file was uploaded again on {_shown(UPLOAD)} with the account shop" in text
    # which logs begin when, from the sources read
    assert f"FTP log (vsftpd.log) on {_shown(FTP_LOG_START)}" in text
    assert f"web access log (access_log) on {_shown(START)}" in text
    assert "The FTP log reaches back before the shell's first request" in text
    assert "Customer data left the database on db01 (confidence high)" in text
    assert story["access_gap"]["script"] == SHELL and story["access_gap"]["entry_kind"] == "ftp_upload_session"
    assert "not in the logs read" in _decision_html(html)


def test_no_identifier_of_the_tool_in_the_decision_part(theft_case):
    findings, _, html = theft_case
    text = _decision_html(html)  # what the decision maker reads
    rules = {f["rule"] for f in findings["findings"]} | {m["kind"] for m in findings["milestones"] if "_" in m["kind"]}
    assert rules and not [r for r in rules if r in text]
    assert not [f["id"] for f in findings["findings"] if f["id"] in text]
    ids = {i for f in findings["findings"] for i in f["event_ids"]} | set(findings["verdict"]["event_ids"])
    assert ids and not [i for i in ids if i in text]
    assert not re.search(r"\b(?:exfil|access|web|ftp|db|cron|errorlog|fs|host|sigma)\.[a-z_]+", text)
    assert "fingerprint" not in text
    # the analyst part keeps them
    analysis = html[html.index('<div id="analysis">'):]
    assert all(r in analysis for r in {f["rule"] for f in findings["findings"]})


def test_every_time_on_the_page_is_on_one_clock(theft_case):
    _, model, html = theft_case
    assert model["time_zone"] == "Asia/Tokyo (UTC+09:00)"
    assert "All times: Asia/Tokyo (UTC+09:00)" in html
    stamps = re.findall(r'<time datetime="([^"]+)" title="([^"]+)">([^<]+)</time>', html)
    assert len(stamps) > 50
    for iso, utc, text in stamps:
        assert ONE_FORMAT.fullmatch(text), text
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        assert _shown(t) == text and utc == t.strftime("%Y-%m-%d %H:%M:%S UTC")
    # outside the records (<pre>, shown as written) no other way of writing a time is left
    outside = re.sub(r"<pre>.*?</pre>", "", html, flags=re.S)
    outside = re.sub(r'<time datetime="[^"]+" title="[^"]+">', "<time>", outside)
    others = {m.group(0) for m in ANY_TIME.finditer(outside) if not ONE_FORMAT.fullmatch(m.group(0))}
    assert not others, others


def test_what_to_do_now_comes_from_the_findings(theft_case):
    _, model, html = theft_case
    steps = {s["kind"]: s for s in model["decision"]["next_steps"]}
    assert list(steps) == ["contain", "preserve", "rotate", "notify", "fix"]
    contain = " ".join(steps["contain"]["actions"])
    assert f"remove them: {SHELL}" in contain and f"/htdocs{SHELL}" in contain and INTRUDER in contain
    assert "192.168.10.11" not in contain  # the web server's own address is not the intruders'
    rotate = " ".join(steps["rotate"]["actions"])
    assert "database account webapp" in rotate and "every password stored on web01" in rotate
    assert "Notify the people whose data is in customers" in " ".join(steps["notify"]["actions"])
    assert "No readiness audit ran" in steps["fix"]["actions"][0]  # none ran for this case
    decision = _decision_html(html)
    assert decision.index('id="nextsteps"') > decision.index('class="story"')


# --- the pure parts ------------------------------------------------------------------------------------

CLOCK = CaseClock(ZoneInfo("Asia/Tokyo"))


def _m(kind: str, time: str, host: str = "web01", **detail) -> dict:
    return {"kind": kind, "time": time, "host": host, "detail": detail, "event_ids": []}


def test_a_way_in_in_the_evidence_is_told_and_no_gap_is_claimed():
    milestones = [_m("initial_access", "2017-07-01T10:00:00+09:00", account="maint", service="ftp",
                     source="203.0.113.9"),
                  _m("first_webshell_execution", "2017-07-02T11:00:00+09:00", url="/x.php?c=id")]
    story = narrative.paragraph(findings=[], milestones=milestones,
                                verdict={"exfiltration": "none-found", "confidence": "high", "db_host": "db01"},
                                exposure_window={"start": "2017-07-01T10:00:00+09:00",
                                                 "end": "2017-07-09T10:00:00+09:00"},
                                sources=[], clock=CLOCK)
    assert story["access_gap"] is None
    assert ("They got in by guessing the password of maint (ftp) on web01 from 203.0.113.9: the first login after "
            "the guessing was on 2017-07-01 10:00:00.") in story["text"]
    assert "not in the logs read" not in story["text"]
    assert story["text"].endswith("No sign was found that data left the database on db01 (confidence high).")


def test_a_shell_with_no_upload_at_all_says_where_the_logs_begin():
    sources = [{"host": "web01", "format": "apache-access", "path": "web01/var/log/httpd/access_log-20170709.gz",
                "first": "2017-07-02T00:00:00+00:00"},
               {"host": "web01", "format": "apache-access", "path": "web01/var/log/httpd/access_log",
                "first": "2017-07-09T00:00:00+00:00"},
               {"host": "db01", "format": "syslog", "path": "db01/var/log/messages",
                "first": "2017-01-01T00:00:00+00:00"}]
    story = narrative.paragraph(findings=[], milestones=[_m("first_webshell_execution", "2017-07-02T11:00:00+09:00",
                                                            url="/x.php?c=id")],
                                verdict={"exfiltration": "undetermined", "confidence": "low", "db_host": None},
                                exposure_window={"start": "2017-07-02T11:00:00+09:00",
                                                 "end": "2017-07-03T11:00:00+09:00"},
                                sources=sources, clock=CLOCK)
    assert ("How the web shell got onto web01 is not in the logs read: its first request (/x.php, 2017-07-02 "
            "11:00:00) comes before any upload or login in the evidence. No record of its arrival is in the logs "
            "read: web01's logs begin with the web access log (access_log) on 2017-07-02 09:00:00.") in story["text"]
    assert "FTP upload" not in story["text"]  # no upload in the evidence: no way in is suggested
    assert story["text"].endswith("Whether data left the database cannot be told (confidence low): the evidence "
                                  "holds no database log for that time.")


def test_without_an_exposure_window_nothing_is_claimed_and_nothing_to_contain():
    milestones = [_m("first_probe", "2017-01-20T05:39:01+09:00", source="203.0.113.5")]
    verdict = {"exfiltration": "undetermined", "confidence": "low", "db_host": None,
               "reasons": ["no evidence of code execution …"], "event_ids": []}
    story = narrative.paragraph(findings=[], milestones=milestones, verdict=verdict, exposure_window=None,
                                sources=[], clock=CLOCK)
    assert story["text"].startswith("The logs read show no sign that intruders got in")
    assert "(scanners probed web01 from 2017-01-20 05:39:01 on)" in story["text"]
    steps = next_steps.steps(findings=[], milestones=milestones, verdict=verdict, audit=None, clock=CLOCK)
    assert [s["kind"] for s in steps] == ["preserve", "notify", "fix"]
    reasons = plain_language.basis_sentences(plain_language.verdict_basis(verdict, has_window=False), {}, CLOCK)
    assert reasons == [plain_language.BASIS["no_exposure_window"]({}, CLOCK)]


def test_next_steps_take_the_audit_fixes_most_serious_first():
    audit = {"groups": [{"number": 1, "title": "t", "findings": [
        {"severity": "medium", "host": "web01", "title": "FTP writes the web root",
         "fix": "Give the web root to root."},
        {"severity": "high", "host": "web01", "title": "FTP open to all", "fix": "Stop vsftpd."}]}]}
    verdict = {"exfiltration": "none-found", "confidence": "high", "db_host": "db01"}
    steps = {s["kind"]: s for s in next_steps.steps(findings=[], milestones=[], verdict=verdict, audit=audit,
                                                     clock=CLOCK)}
    assert "notify" not in steps  # a certain "no sign" asks for no notification
    assert steps["fix"]["actions"] == ["Stop vsftpd. (web01: FTP open to all)",
                                       "Give the web root to root. (web01: FTP writes the web root)"]


def test_every_rule_the_detectors_emit_has_its_own_sentence():
    detect = Path(report_model.__file__).resolve().parents[1] / "detect"
    emitted = set()
    for source in detect.glob("*.py"):
        emitted |= set(re.findall(r'"((?:web|ftp|access|cron|errorlog|fs|db|exfil|host)\.[a-z_]+)"',
                                  source.read_text()))
    assert len(emitted) > 30
    assert sorted(emitted - set(plain_language.FINDINGS)) == []
    assert {name for name, _, _ in commands.CLASSES} <= set(plain_language.COMMAND_CLASSES)
    for rule in [*emitted, *(f"host.command.{n}" for n, _, _ in commands.CLASSES), "sigma.web_sql_injection",
                 "newfamily.new_rule", "host.command.new_class"]:
        sentence = plain_language.finding_sentence({"rule": rule, "host": "web01", "title": "T"})
        assert sentence[0].isupper() and sentence.endswith(": T).") and rule not in sentence
    assert plain_language.finding_sentence({"rule": "newfamily.new_rule", "host": "web01", "title": "T"}) == \
        "The analysis flagged activity on web01 worth a look (finding: T)."


def test_every_ground_the_verdict_records_has_a_sentence():
    source = (Path(report_model.__file__).resolve().parents[1] / "detect/exfiltration.py").read_text()
    codes = set(re.findall(r'"code": "([a-z_]+)"', source))
    assert len(codes) >= 10
    assert codes - {"evidence"} <= set(plain_language.BASIS)
    unknown = plain_language.basis_sentences([{"code": "something_new"}], {}, CLOCK)
    assert unknown == [plain_language.BASIS_FALLBACK]


def test_the_clock_shows_one_zone_and_one_format():
    assert CLOCK.show("2017-06-20T05:12:59+00:00") == "2017-06-20 14:12:59"
    assert CLOCK.stamp("2017-06-20T05:12:59+00:00") == {"text": "2017-06-20 14:12:59",
                                                         "utc": "2017-06-20 05:12:59 UTC",
                                                         "iso": "2017-06-20T05:12:59Z"}
    assert CLOCK.in_text("until: 2017-06-20T05:12:59+00:00; window 2017-07-15T08:58:21.5+09:00 → x") == \
        "until: 2017-06-20 14:12:59; window 2017-07-15 08:58:21 → x"
    assert CLOCK.show("not a time") == "not a time" and CLOCK.stamp(None) is None
    assert CaseClock(ZoneInfo("Europe/Berlin")).statement(2017) == \
        "Europe/Berlin (UTC+01:00, UTC+02:00 in summer time)"
