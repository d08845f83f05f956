"""CrowdSec hub test logs, parsed, and compared with the hub's expected parser results.

Source: crowdsecurity/hub @ b03cb59b2131ebfc5300f5f14828e29967efd1a5 (MIT), files .tests/<name>/<name>.log
and .tests/<name>/parser.assert (apache2-malformed's log is .tests/apache2-malformed/apache2-logs.log).

``parser.assert`` is a list of expr lines such as
``results["s01-parse"]["crowdsecurity/apache2-logs"][0].Evt.Parsed["verb"] == "GET"``. A small reader
below turns them into one dict per (stage, parser, index); each successful s01-parse result is matched
to our record by its message text, and the keys that mean the same thing as one of our fields are
compared (the rest are CrowdSec's own bookkeeping: datasource, log_type, service …).

Not covered as data: the proftpd native lines of proftpd-logs.log (proftpd's own SystemLog format,
'2021-05-28 18:08:01,124 mantis proftpd[498625] …', is not a supported format; the file's syslog
lines are checked, and the native ones are counted as the issues they are).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pytest

from corpus_support import CORPUS_ROOT, assert_coverage, parse, read_bytes, split_lines

_LINE = re.compile(r'^results\["(?P<stage>[^"]+)"\]\["(?P<parser>[^"]+)"\]\[(?P<idx>\d+)\]\.'
                   r'(?:(?P<success>Success) == (?P<ok>true|false)|Evt\.(?P<kind>Parsed|Meta|Enriched)\["(?P<key>[^"]+)"\] == (?P<value>".*"))$')


def read_asserts(text: str) -> dict[tuple[str, str, int], dict]:
    """(stage, parser, index) -> {'Success': bool, 'Parsed': {...}, 'Meta': {...}}."""
    out: dict[tuple[str, str, int], dict] = defaultdict(lambda: {"Parsed": {}, "Meta": {}, "Enriched": {}})
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        entry = out[(m["stage"], m["parser"], int(m["idx"]))]
        if m["success"]:
            entry["Success"] = m["ok"] == "true"
        else:
            entry[m["kind"]][m["key"]] = json.loads(m["value"])  # Go string literals are JSON strings here
    return dict(out)


def ip(value):
    """CrowdSec strips the IPv4-mapped prefix; the records keep what the log says."""
    return value[7:] if isinstance(value, str) and value.startswith("::ffff:") else value


def ts_matches(ours: str, theirs: str, zone: str | None) -> bool:
    if ours == theirs or (zone and ours == f"{theirs} {zone}"):
        return True
    # pgsql-logs' grok keeps a two-digit year ('21-09-28 09:22:18.536' for '2021-09-28 …')
    return ours[2:] == theirs or (zone and ours[2:] == f"{theirs} {zone}")


def _int(v):
    return int(v) if v not in (None, "-", "") else None


def _version(v):
    return f"HTTP/{v}" if v else None


# CrowdSec key -> (our field, conversion of their value); by parser where the meaning differs
COMMON = {
    "Parsed.pid": ("process_pid", _int), "Parsed.PID": ("process_pid", _int),
    "Meta.machine": ("log_host", str),
    "Parsed.source_ip": ("source_ip", ip), "Meta.source_ip": ("source_ip", ip),
    "Parsed.clientip": ("source_ip", ip), "Parsed.client_ip": ("source_ip", ip),
    "Parsed.sshd_client_ip": ("source_ip", ip), "Parsed.client": ("source_ip", ip),
}
BY_PARSER = {
    "crowdsecurity/apache2-logs": {
        "Parsed.verb": ("http_method", str), "Meta.http_verb": ("http_method", str),
        "Parsed.request": ("url_full", str),
        "Parsed.httpversion": ("http_version", _version),
        "Parsed.response": ("http_status", _int), "Meta.http_status": ("http_status", _int),
        "Parsed.bytes": ("bytes", _int),  # vhost_combined logs %O (and no %b): our bytes
        "Parsed.auth": ("user_name", lambda v: None if v == "-" else v),
        "Parsed.ident": ("ident", lambda v: None if v == "-" else v),
        "Parsed.http_user_agent": ("user_agent", lambda v: None if v == "-" else v),
        "Meta.http_user_agent": ("user_agent", lambda v: None if v == "-" else v),
        "Parsed.referrer": ("referrer", lambda v: None if v == "-" else v),
        "Parsed.loglevel": ("log_level", str), "Parsed.module": ("module", str),
        "Parsed.tid": ("thread_id", str), "Parsed.clientport": ("source_port", _int),
        "Parsed.errorcode": ("error_code", str), "Parsed.proxy_errorcode": ("os_error", str),
        "Parsed.proxy_errormessage": ("os_error_text", str),
    },
    "crowdsecurity/sshd-logs": {
        "Parsed.sshd_invalid_user": ("user_name", str), "Parsed.sshd_auth_user": ("user_name", str),
        "Meta.target_user": ("user_name", str), "Parsed.sshd_client_port": ("source_port", _int),
        "Parsed.program": ("program", str),
    },
    "crowdsecurity/pgsql-logs": {
        "Parsed.pgsql_user": ("db_user", str), "Parsed.pgsql_dbname": ("db_name", str),
        "Parsed.pgsql_target_user": ("target_user", str), "Meta.user": ("db_user", str),
        "Meta.db": ("db_name", str),
    },
    "crowdsecurity/pureftpd-logs": {"Parsed.user": ("user_name", str), "Parsed.program": ("program", str)},
    "fulljackz/pureftpd-logs": {"Parsed.user": ("user_name", str), "Parsed.program": ("program", str)},
    "vsftpd-logs": {"Parsed.user": ("user_name", str), "Meta.user": ("user_name", str)},
    "proftpd-logs": {"Parsed.username": ("user_name", str), "Meta.target_user": ("user_name", str),
                     "Parsed.program": ("program", str)},
    "crowdsecurity/pkexec-logs": {"Parsed.user": ("user_name", str), "Parsed.program": ("program", str)},
    "crowdsecurity/pam-logs": {"Parsed.program": ("program", str)},
    "crowdsecurity/syslog-logs": {"Parsed.program": ("program", str)},
}
BY_PARSER["crowdsecurity/supabase-docker-pgsql"] = BY_PARSER["crowdsecurity/pgsql-logs"]


def compare(records: list[dict], asserts: dict, where: str) -> int:
    """Check every mapped key of every successful s01-parse result; returns how many were checked."""
    checked = 0
    used: dict[str, set] = defaultdict(set)  # per stage and parser: records already matched, in file order
    for (stage, parser, idx), entry in sorted(asserts.items()):
        if not entry.get("Success") or "message" not in entry["Parsed"]:
            continue
        message = entry["Parsed"]["message"]
        taken = used[stage + parser]
        candidates = [i for i, r in enumerate(records) if i not in taken and message in (r["raw"], r.get("message"))]
        assert candidates, f"{where}: no record for {stage} {parser}[{idx}] {message!r}"
        taken.add(candidates[0])
        rec = records[candidates[0]]
        mapping = {**COMMON, **BY_PARSER.get(parser, {})}
        zone = entry["Parsed"].get("zone")
        for kind in ("Parsed", "Meta"):
            for key, value in entry[kind].items():
                if kind == "Parsed" and key == "timestamp":
                    assert ts_matches(rec["ts_raw"], value, zone), f"{where} {parser}[{idx}]: time {rec['ts_raw']!r} vs {value!r}"
                    checked += 1
                    continue
                if f"{kind}.{key}" not in mapping:
                    continue
                field, conv = mapping[f"{kind}.{key}"]
                want, got = conv(value), rec.get(field)
                if field == "source_ip":
                    got = ip(got)
                assert got == want, f"{where} {parser}[{idx}]: {kind}[{key!r}]={value!r} but {field}={got!r}"
                checked += 1
    return checked


# (test dir, log file, format, context, how to split a mixed file)
ACCESS = ["CVE-2022-26134", "CVE-2022-46169", "apache-http-probing", "apache2-http-sensitive-files",
          "cve-2021-42013", "http-cve-probing", "http-wordpress-scan", "nginx-http-backdoor",
          "nginx-http-path-traversal", "nginx-http-sqli-probing", "nginx-http-xss-probing"]
SYSLOG = ["CVE-2021-4034", "pam-logs", "pureftpd-logs", "ssh-bf", "sshd-logs", "sshd-success-logs", "syslog-logs"]
PG_PREFIX = {"pgsql-logs": None, "pgsql-user-enum": "%h %m [%p] %u@%d "}
# pgsql-logs.log mixes two servers' prefixes; each line is read with its own
PGSQL_BRACKET_PID = re.compile(rb"^\S+ \S+ \S+ \[")
CASES = ([(d, f"{d}.log", "apache-access") for d in ACCESS]
         + [("apache2-malformed", "apache2-logs.log", "apache-access")]
         + [(d, f"{d}.log", "syslog") for d in SYSLOG]
         + [(d, f"{d}.log", "vsftpd") for d in ("vsftpd-bf", "vsftpd-logs")]
         + [(d, f"{d}.log", "postgresql-stderr") for d in PG_PREFIX])


def _parse(name: str, log: str, fmt: str):
    ctx = {"pg_log_line_prefix": PG_PREFIX[name]} if PG_PREFIX.get(name) else {}
    return parse(fmt, read_bytes(f"crowdsec-hub/{name}/{log}"), **ctx)


@pytest.mark.parametrize("name,log,fmt", CASES, ids=[c[0] for c in CASES])
def test_file_parses(corpus, name, log, fmt):
    result = _parse(name, log, fmt)
    assert_coverage(result, name)
    assert all(reason == "empty line" for *_, reason, _ in result.issues), result.describe()


def _has_parser_assert(name: str) -> bool:
    path = CORPUS_ROOT / "crowdsec-hub" / name / "parser.assert"
    return path.is_file() and path.stat().st_size > 0


# the others carry only scenario expectations (detections), nothing about parsed fields
ASSERTED = [c for c in CASES if _has_parser_assert(c[0])]


@pytest.mark.parametrize("name,log,fmt", ASSERTED, ids=[c[0] for c in ASSERTED])
def test_fields_match_parser_assert(corpus, name, log, fmt):
    path = corpus / "crowdsec-hub" / name / "parser.assert"
    asserts = read_asserts(path.read_text(encoding="utf-8"))
    if name == "pgsql-logs":
        data = read_bytes(f"crowdsec-hub/{name}/{log}")
        style1, style2 = split_lines(data, lambda ln: PGSQL_BRACKET_PID.match(ln) is not None)
        events = (parse(fmt, style1, pg_log_line_prefix="%m [%p] %h %u@%d ").events
                  + parse(fmt, style2, pg_log_line_prefix="%m:%r:%u@%d:[%p]:").events)
    else:
        events = _parse(name, log, fmt).events
    assert compare(events, asserts, name) >= len(events)


def _is_error_line(line: bytes) -> bool:
    return line.startswith(b"[")


@pytest.mark.parametrize("name", ["apache2-logs", "apache-cve-2021-41773"])
def test_mixed_access_and_error_log(corpus, name):
    """Access and error lines in one file: split by line ('[' starts an error-log line), two parses."""
    errors, access = split_lines(read_bytes(f"crowdsec-hub/{name}/{name}.log"), _is_error_line)
    acc = parse("apache-access", access)
    err = parse("apache-error", errors)
    assert_coverage(acc, f"{name} access lines")
    assert_coverage(err, f"{name} error lines")
    assert acc.events and err.events
    path = corpus / "crowdsec-hub" / name / "parser.assert"
    if path.is_file() and path.stat().st_size:
        assert compare(acc.events + err.events, read_asserts(path.read_text(encoding="utf-8")), name) > 50


def test_cve_2021_41773_traversal_in_both_logs(corpus):
    errors, access = split_lines(read_bytes("crowdsec-hub/apache-cve-2021-41773/apache-cve-2021-41773.log"),
                                 _is_error_line)
    (err,) = parse("apache-error", errors).events
    assert (err["error_code"], err["source_ip"], err["source_port"]) == ("AH00126", "88.168.206.87", 14532)
    assert "/cgi-bin/.%2e/%2e%2e/" in err["message"].lower()
    assert any("/cgi-bin/.%2e/" in (r.get("url_path") or "") for r in parse("apache-access", access).events)


def test_proftpd_syslog_lines(corpus):
    """proftpd-logs.log: syslog lines are events; proftpd's native SystemLog lines are not a supported format."""
    data = read_bytes("crowdsec-hub/proftpd-logs/proftpd-logs.log")
    native, syslog = split_lines(data, lambda ln: re.match(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", ln) is not None)
    result = parse("syslog", syslog)
    assert_coverage(result, "proftpd-logs syslog lines")
    asserts = read_asserts((corpus / "crowdsec-hub/proftpd-logs/parser.assert").read_text(encoding="utf-8"))
    syslog_asserts = {k: v for k, v in asserts.items() if v["Parsed"].get("message", "").encode() not in native}
    assert compare(result.events, syslog_asserts, "proftpd-logs") >= 2 * len(result.events)
    whole = parse("syslog", data)
    assert len(whole.issues) == len(native.splitlines()) == 3


def test_pgsql_user_enumeration(corpus):
    result = _parse("pgsql-user-enum", "pgsql-user-enum.log", "postgresql-stderr")
    assert len(result.events) == 6
    assert {r["source_ip"] for r in result.events} == {"65.2.129.7"}
    assert all(r["event_type"] == "postgresql.auth_failed" and r["target_user"] == r["db_user"] for r in result.events)


def test_vsftpd_unpadded_day(corpus):
    result = _parse("vsftpd-logs", "vsftpd-logs.log", "vsftpd")
    first = result.events[0]
    assert first["ts_raw"] == "Mon Jun 8 12:08:44 2020"
    st = first["_stamp"]
    assert (st.year, st.month, st.day) == (2020, 6, 8)
