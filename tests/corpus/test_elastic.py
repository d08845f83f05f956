"""Elastic's pipeline-test fixtures, parsed, and compared field by field with the expected documents.

Sources:
- elastic/elastic-package @ 6371beeef0558dca8fe3ac2a1267677aafa79688 (Elastic License; the test
  packages copy elastic/integrations fixtures): test/packages/parallel/{apache/data_stream/access,
  apache/data_stream/error, nginx/data_stream/access, system/data_stream/auth,
  system/data_stream/syslog}/_dev/test/pipeline/*.log with their *-expected.json and *-config.yml.
- elastic/beats (Apache-2.0, non-x-pack path) filebeat/module/postgresql/log/test/:
  postgresql-11-connection-disconnection.csv.log and postgresql-13.csv.log @ fa308d6966e3ad2f598866a58ba7039a9ddf96db,
  postgresql-11-ipv6.csv.log @ c95556f8b6a84f4c6682f328668cd60fd43b23a3,
  postgresql-11-multi-line.csv.log(+ -expected.json) @ 0b086b325505f5fe888626f66340ca8dfe5fd67f,
  postgresql-13-error-code.csv.log(+ -expected.json) @ 3dcb695f23005fb53713828baecbc5607782f1e6,
  postgresql-ubuntu-9.5.log @ 818dfd28a1e8401e0f5bad7d4fff69524151a0e7.

Timestamps: Elastic writes @timestamp either in UTC ('Z', access logs and the auth fixtures, whose
config sets the zone to +0000) or as local time with the configured zone (error logs, syslog): the
test compares our wall-clock parts, plus the offset where the line states one. Year-less syslog lines
get the ingest year from Elastic (2023), so only month, day and time are compared for them.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import unquote

import pytest

from corpus_support import assert_coverage, parse, read_bytes, wall

ACCESS = [
    "elastic-package/apache-access/test-access-basic.log",
    "elastic-package/apache-access/test-access-darwin.log",
    "elastic-package/apache-access/test-access-ssl-request.log",
    "elastic-package/apache-access/test-access-ubuntu.log",
    "elastic-package/apache-access/test-access-vhost.log",
    "elastic-package/nginx-access/test-access.log",
    "elastic-package/nginx-access/test-nginx.log",
    "elastic-package/nginx-access/test-test-with-host.log",
]
ERROR = [
    "elastic-package/apache-error/test-error-basic.log",
    "elastic-package/apache-error/test-error-darwin.log",
    "elastic-package/apache-error/test-error-trace.log",
    "elastic-package/apache-error/test-error-ubuntu.log",
]
SYSLOG = [
    "elastic-package/system-auth/test-auth.log",
    "elastic-package/system-auth/test-timestamp.log",
    "elastic-package/system-syslog/test-darwin-syslog-sample.log",
    "elastic-package/system-syslog/test-darwin-syslog.log",
    "elastic-package/system-syslog/test-suse-syslog.log",
    "elastic-package/system-syslog/test-tz-offset.log",
]
CSVLOG = [
    "elastic-beats-postgresql/postgresql-11-connection-disconnection.csv.log",
    "elastic-beats-postgresql/postgresql-11-ipv6.csv.log",
    "elastic-beats-postgresql/postgresql-11-multi-line.csv.log",
    "elastic-beats-postgresql/postgresql-13-error-code.csv.log",
    "elastic-beats-postgresql/postgresql-13.csv.log",
]
FORMAT = {**{p: "apache-access" for p in ACCESS}, **{p: "apache-error" for p in ERROR},
          **{p: "syslog" for p in SYSLOG}, **{p: "postgresql-csvlog" for p in CSVLOG}}


def expected_docs(rel: str) -> list[dict]:
    data = json.loads(read_bytes(rel + "-expected.json"))
    return data["expected"] if isinstance(data, dict) else data


def flat(doc: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in doc.items():
        if isinstance(v, dict):
            out.update(flat(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def elastic_time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def parts(t: dt.datetime) -> tuple:
    return t.year, t.month, t.day, t.strftime("%H:%M:%S"), t.microsecond // 1000


def our_utc(rec: dict) -> dt.datetime:
    st = rec["_stamp"]
    local = dt.datetime(st.year, st.month, st.day, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=st.sod_us)
    return local - dt.timedelta(seconds=st.utc_offset_s)


def check_time(rec: dict, expected: str, where: str) -> None:
    """Same instant when the line states its offset; same wall clock when it does not."""
    want = elastic_time(expected)
    st = rec["_stamp"]
    if st.utc_offset_s is not None:
        got = parts(our_utc(rec))
        assert got == parts(want.astimezone(dt.timezone.utc)), f"{where}: UTC {got} != {expected}"
        return
    ours = wall(rec)
    ours = ours[:4] + (ours[4] // 1000,)
    if st.year is None:  # year-less syslog: Elastic used the year it ran in
        assert ours[1:] == parts(want)[1:], f"{where}: {ours} != {expected}"
    else:
        assert ours == parts(want), f"{where}: {ours} != {expected}"


def same_address(ours: dict, want: str) -> bool:
    return want in (ours.get("source_ip"), ours.get("source_host"), ours.get("vhost"))


# ECS key -> how to read it from one of our records
def _http_version(rec):
    v = rec.get("http_version")
    return v[5:] if v and v.startswith("HTTP/") else v


ECS = {
    "source.ip": lambda r: r.get("source_ip"),
    "source.port": lambda r: r.get("source_port"),
    "http.response.status_code": lambda r: r.get("http_status"),
    "http.response.body.bytes": lambda r: r.get("bytes"),  # %b, or %O where the format has no %b (vhost_combined)
    "http.request.method": lambda r: (r.get("http_method") or "").lower() or None,
    "http.version": _http_version,
    "url.original": lambda r: r.get("url_full"),
    "url.path": lambda r: unquote(r["url_path"]) if r.get("url_path") else None,  # Elastic decodes both
    "url.query": lambda r: unquote(r["url_query"]) if r.get("url_query") else None,
    "user_agent.original": lambda r: r.get("user_agent"),
    "http.request.referrer": lambda r: r.get("referrer"),
    "destination.domain": lambda r: r.get("vhost"),
    "log.level": lambda r: r.get("log_level"),
    "process.pid": lambda r: r.get("process_pid"),
    "process.thread.id": lambda r: int(r["thread_id"]) if r.get("thread_id") else None,
    "apache.error.module": lambda r: r.get("module"),
    "process.name": lambda r: r.get("program"),
    "host.hostname": lambda r: r.get("log_host"),
    "system.auth.ssh.method": lambda r: r.get("auth_method"),
    "system.auth.ssh.signature": lambda r: r.get("ssh_key"),
    "system.auth.sudo.tty": lambda r: r.get("tty"),
    "system.auth.sudo.pwd": lambda r: r.get("cwd"),
    "system.auth.sudo.command": lambda r: r.get("command"),
    "system.auth.sudo.error": lambda r: r.get("sudo_error"),
    "system.auth.sudo.user": lambda r: r.get("target_user"),
    "user.effective.name": lambda r: r.get("target_user"),
    "group.name": lambda r: r.get("group_name"),
    "group.id": lambda r: r.get("group_id"),
    "tls.version_protocol": lambda r: (r.get("var_ssl_protocol") or "")[:3].lower() or None,
    "apache.access.ssl.protocol": lambda r: r.get("var_ssl_protocol"),
    "apache.access.ssl.cipher": lambda r: r.get("var_ssl_cipher"),
}
# values Elastic writes for an absent field
ABSENT = {"-", None}


def compare(rec: dict, doc: dict, where: str) -> int:
    """Compare what maps; returns how many fields were compared."""
    n = 0
    for key, want in doc.items():
        if key == "@timestamp":
            check_time(rec, want, where)
        elif key in ("source.address", "source.ip") and rec.get("forwarded_for"):
            # Elastic picks the first public address of a proxy's list; source_ip here is the peer
            # that connected (the last of the list, the only one not client-supplied)
            listed = [a.strip() for a in rec["forwarded_for"].split(",")] + [rec["source_ip"]]
            assert want in listed, f"{where}: {key} {want!r} not in {listed}"
        elif key in ("source.address", "source.domain"):
            assert same_address(rec, want), f"{where}: {key} {want!r} not in {rec.get('source_ip')!r}/{rec.get('source_host')!r}"
        elif key == "user.name":
            ours = rec.get("target_user") if rec.get("event_type") == "iam.user_created" else rec.get("user_name")
            assert ours == (None if want in ABSENT else want), f"{where}: user.name {ours!r} != {want!r}"
        elif key == "user.id":
            ours = rec.get("target_uid") if rec.get("event_type") == "iam.user_created" else rec.get("user_uid")
            assert ours == want, f"{where}: user.id {ours!r} != {want!r}"
        elif key == "nginx.access.remote_ip_list":
            listed = [a.strip() for a in rec.get("forwarded_for", "").split(",") if a.strip()] + [rec["source_ip"]]
            assert listed == want, f"{where}: {listed} != {want}"
        elif key in ECS:
            ours = ECS[key](rec)
            if key == "process.pid" and isinstance(want, str):
                want = int(want)
            if key == "http.request.method":
                want = want.lower()
            if want == "-":  # Elastic keeps the placeholder, it is an absent value here
                want = None
            if key == "process.name" and ours != want and want.startswith(f"{ours}["):
                # macOS launchd: 'com.apple.xpc.launchd[1] (com.apple.quicklook[21498])' is one name there;
                # here program, pid and the service in brackets
                assert rec.get("subsystem") and want.endswith(f"({rec['subsystem']})"), where
                ours = want
            assert ours == want, f"{where}: {key} is {ours!r}, Elastic says {want!r}"
        else:
            continue
        n += 1
    return n


@pytest.mark.parametrize("rel", ACCESS + ERROR + SYSLOG + CSVLOG)
def test_file_parses(corpus, rel):
    result = parse(FORMAT[rel], read_bytes(rel))
    assert_coverage(result, rel)


@pytest.mark.parametrize("rel", ACCESS + ERROR + SYSLOG)
def test_fields_match_elastic(corpus, rel):
    result = parse(FORMAT[rel], read_bytes(rel))
    docs = [flat(d) for d in expected_docs(rel)]
    compared = 0
    for i, doc in enumerate(docs):
        original = doc.get("event.original")
        if original is not None and "\n" in original.rstrip("\n"):
            # Elastic's test joined several lines into one document (its multiline setting for
            # this fixture); the lines are separate records here
            continue
        if original is not None:
            matches = [r for r in result.events if r["raw"] == original]
        else:  # the syslog fixtures keep only the message: the records come in file order
            matches = [result.events[i]]
        assert len(matches) >= 1, f"{rel}: no record for {original!r}"
        compared += compare(matches[0], doc, f"{rel} doc {i}")
    assert compared >= len(docs), f"{rel}: only {compared} fields compared"


def test_syslog_messages_match_elastic(corpus):
    rel = "elastic-package/system-syslog/test-darwin-syslog.log"
    result = parse("syslog", read_bytes(rel))
    docs = [flat(d) for d in expected_docs(rel)]
    assert len(result.events) == len(docs)
    for i, (rec, doc) in enumerate(zip(result.events, docs)):
        if "message" in doc:
            assert rec["message"] == doc["message"], f"{rel} record {i}"


def test_tz_offsets_match_elastic(corpus):
    rel = "elastic-package/system-syslog/test-tz-offset.log"
    result = parse("syslog", read_bytes(rel))
    stated = [r["_stamp"].utc_offset_s for r in result.events]
    assert stated == [4 * 3600, 4 * 3600, None]  # '+0400', '+04:00', none (Elastic applies its configured zone)
    assert [r["message"] for r in result.events] == [d["message"] for d in expected_docs(rel)]


def test_csvlog_matches_filebeat(corpus):
    rel = "elastic-beats-postgresql/postgresql-13-error-code.csv.log"
    result = parse("postgresql-csvlog", read_bytes(rel))
    docs = [flat(d) for d in expected_docs(rel)]
    assert len(result.events) == len(docs)
    for i, (rec, doc) in enumerate(zip(result.events, docs)):
        where = f"{rel} record {i}"
        check_time(rec, doc["@timestamp"], where)
        assert rec["ts_raw"] == doc["postgresql.log.timestamp"], where
        assert rec["pg_level"] == doc["log.level"], where
        assert rec["process_pid"] == int(doc["process.pid"]), where
        assert rec.get("db_user") == doc.get("user.name"), where
        assert rec.get("db_name") == doc.get("postgresql.log.database"), where
        assert rec.get("sql_state") == doc.get("postgresql.log.sql_state_code"), where
        assert rec.get("db_session") == doc.get("postgresql.log.session_id"), where
        assert rec.get("pg_command_tag") == doc.get("postgresql.log.command_tag"), where
        assert rec.get("db_application") == doc.get("postgresql.log.application_name"), where
        assert rec.get("pg_backend_type") == doc.get("postgresql.log.backend_type"), where
        assert rec.get("pg_vxid") == doc.get("postgresql.log.virtual_transaction_id"), where
        assert rec.get("source_ip") == doc.get("postgresql.log.client_addr"), where
        assert rec.get("source_port") == doc.get("postgresql.log.client_port"), where
        # Filebeat splits 'statement: …' into query_step + message
        step = doc.get("postgresql.log.query_step")
        text = f"{step}: {doc['message']}" if step else doc["message"]
        assert rec["pg_message"] == text, where


def test_csvlog_multiline_matches_filebeat(corpus):
    rel = "elastic-beats-postgresql/postgresql-11-multi-line.csv.log"
    result = parse("postgresql-csvlog", read_bytes(rel))
    (doc,) = [flat(d) for d in expected_docs(rel)]
    (rec,) = result.events
    assert rec["_line_count"] == 2
    check_time(rec, doc["@timestamp"], rel)
    assert rec["duration_ms"] * 1_000_000 == pytest.approx(doc["event.duration"])
    assert rec["statement"] == doc["message"] == "SELECT 'multi',\n'line';"
    assert (rec["db_user"], rec["db_name"], rec["source_ip"], rec["source_port"]) == (
        doc["user.name"], doc["postgresql.log.database"], doc["postgresql.log.client_addr"],
        doc["postgresql.log.client_port"])


def test_csvlog_ipv6_client(corpus):
    result = parse("postgresql-csvlog", read_bytes("elastic-beats-postgresql/postgresql-11-ipv6.csv.log"))
    (rec,) = result.events
    # connection_from '::1:16790': for IPv6 csvlog writes host and port joined by a colon
    assert (rec["source_ip"], rec["source_port"]) == ("::1", 16790)
    assert (rec["pg_level"], rec["sql_state"]) == ("FATAL", "28000")


def test_csvlog_brute_force_details(corpus):
    result = parse("postgresql-csvlog",
                   read_bytes("elastic-beats-postgresql/postgresql-11-connection-disconnection.csv.log"))
    failures = [r for r in result.events if r.get("sql_state") == "28P01"]
    assert len(failures) == 4
    assert all(r["target_user"] == "azlev" and r["outcome"] == "failure" for r in failures)
    assert all("\n" in r["pg_detail"] for r in failures)  # the DETAIL field spans two lines


def test_postgresql_stderr_ubuntu(corpus):
    rel = "elastic-beats-postgresql/postgresql-ubuntu-9.5.log"
    result = parse("postgresql-stderr", read_bytes(rel), pg_log_line_prefix="%m [%p] %q%u@%d ")
    assert_coverage(result, rel)
    assert not result.issues
    zones = {r["_stamp"].utc_offset_s for r in result.events}
    assert zones == {0, 7200}  # the file switches CEST -> UTC -> CEST
    missing_db = [r for r in result.events if r.get("event_type") == "postgresql.unknown_database"]
    assert missing_db and all(r["pg_level"] == "FATAL" for r in missing_db)
