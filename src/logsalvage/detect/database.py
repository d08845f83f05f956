"""Database server detectors over PostgreSQL's log: SQL-injection traces, authentication failures,
permission and missing-object errors (schema exploration), slow statements, full reads of customer
tables, COPY … TO and dump sessions, clients and users outside the application's.

Every record counts once: the same message kept in a live file, a backup and the salvaged image
is one record (host, second and (pid, message number) — the merged timeline's key), its most
trustworthy copy (live > backup > salvage) standing for it. Statements are grouped by their
libpg_query fingerprint (``sqltext``), computed once per distinct statement shape, so the work in
Python grows with the number of different statements, not with the number of records.

Who is who:

* the application's client addresses and users come from the case config
  (``application.db_clients``, ``application.db_users``); without them they are *inferred*: the
  non-local client addresses issuing together at least 90 % of the statements (each at least 5 %),
  and the users issuing 95 % of those clients' statements;
* local clients are the Unix socket (``[local]``) and loopback addresses, on the database host;
* maintenance addresses come from ``detect.maintenance_addresses``;
* customer tables from ``application.customer_tables``, else the names in
  ``sqltext.CUSTOMER_TABLE_NAMES`` (customers, users, members, accounts, orders, reservations,
  payments, …).

A statement shape is *established* for the application when its clients issued it at least 5
times on at least 3 days (or on every day of a shorter log). A client's behaviour is *recurring*
when seen on at least 3 days. A public address is any outside the internal networks (RFC 1918,
CGNAT, loopback, link-local, IPv6 unique-local).

Salvaged records whose statement text recovery garbled are set aside (counted, never reported as
statements): chunk lines repeated or skipped (``[3-3]`` twice), or a salvaged record of the
application's clients whose text is the beginning of one of its established statements (the image
lost its last chunk lines, and what is left reads like a whole-table read).

Severities follow who and how often: the application's own statements and the regular local dump
are info or low; internal addresses doing ordinary things on several days are low; new behaviour
from the application's address, public addresses, payloads in errors, dumps and whole-table reads
by other clients are medium to critical.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import weakref
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from logsalvage.detect import dbrecords, mysqltext, sqltext
from logsalvage.detect.context import Context
from logsalvage.detect.model import MAX_EVENT_IDS, Finding, Milestone, severity_rank

APP_SHARE = 0.90  # inferred application clients issue together this share of the statements …
APP_MIN_SHARE = 0.05  # … each at least this share
APP_USER_SHARE = 0.95
ESTABLISHED_COUNT, ESTABLISHED_DAYS = 5, 3
RECURRING_DAYS = 3
BURST_GAP_S = 600  # authentication failures further apart start a new burst
RELATED_S = 600  # errors of an injecting client this close to its payloads belong to the attempt
DUMP_SESSION_GAP_S = 600  # COPY … TO of one backend within this time belong to one dump session
SCHEDULE_TOLERANCE_MIN = 90  # a regular job's runs start within this many minutes of its usual time
SCHEDULE_SHARE = 0.8  # … for at least this share of its runs
EXPLORATION_OBJECTS = 5  # distinct missing objects in one day that read as schema exploration
LOCAL_DUMP = "local (Unix socket) maintenance dump"
LOOPBACK_DUMP = "local (loopback TCP) maintenance dump"

T = "dbdet_pg"  # the prepared table: one row per PostgreSQL record of the database hosts
_ERROR = "pg_level IN ('ERROR', 'FATAL', 'PANIC')"
# a statement that ran (logged for its duration or by log_statement) and whose text recovery kept whole
_RAN = f"(event_type IN ('postgresql.duration', 'postgresql.statement') AND NOT {_ERROR} AND NOT damaged)"
_QUOTED = """coalesce(input_value, nullif(regexp_extract(pg_message, ':\\s+"(.*)"\\s*$', 1), ''),
                      nullif(regexp_extract(pg_message, '^value "(.*)" is out of range', 1), ''))"""
_UNDEFINED = ("postgresql.undefined_table", "postgresql.undefined_column", "postgresql.undefined_function",
              "postgresql.unknown_database")
_AUTH = ("postgresql.auth_failed", "postgresql.hba_reject")
# statements of the application's addresses outside its established ones (parameter: the fingerprints)
_NOVEL = "count(*) FILTER (WHERE class = 'app' AND fp IS NOT NULL AND NOT list_contains(?::VARCHAR[], fp))"


@dataclass(frozen=True)
class DbHost:
    """What the preparation learnt about one database host."""

    host: str
    zone: ZoneInfo
    app_clients: tuple[str, ...]
    app_clients_inferred: bool
    app_users: tuple[str, ...]
    app_users_inferred: bool
    classes: dict = field(default_factory=dict)  # client -> app | local | maintenance | other
    established: frozenset[str] = frozenset()  # fingerprints established for the application
    records: int = 0
    statements: int = 0
    damaged: int = 0  # salvaged records whose statement recovery garbled (set aside)

    def who(self) -> dict:
        return {"app_clients": list(self.app_clients),
                "app_clients_basis": "inferred" if self.app_clients_inferred else "case config",
                "app_users": list(self.app_users),
                "app_users_basis": "inferred" if self.app_users_inferred else "case config"}


_PREPARED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def prepare(ctx: Context) -> list[DbHost]:
    """Build the temporary tables the database detectors and the exfiltration assessment share
    (once per case state and settings): ``dbdet_pg``, one row per PostgreSQL record, with its
    statement's fingerprint and reading facts, its client's class and whether recovery damaged it."""
    s = ctx.settings
    state = ctx.query("SELECT count(*), coalesce(max(source_id), ''), coalesce(sum(events), 0) FROM sources")[0]
    key = (state, s.app_db_clients, s.app_db_users, s.customer_tables, tuple(sorted(s.maintenance_addresses)))
    cached = _PREPARED.get(ctx.store)
    if cached and cached[0] == key:
        return cached[1]
    hosts = [r[0] for r in ctx.query(
        f"SELECT DISTINCT host FROM events WHERE event_type LIKE 'postgresql%' OR event_type IN {dbrecords.MYSQL_TYPES} "
        "ORDER BY 1")]
    out = [] if not hosts else _build(ctx, hosts)
    _PREPARED[ctx.store] = (key, out)
    return out


def _kind_rank(col: str = "kind") -> str:
    return f"CASE {col} WHEN 'live' THEN 0 WHEN 'backup' THEN 1 ELSE 2 END"


_PG = """e.event_type LIKE 'postgresql%' AND e.ts_utc IS NOT NULL
      -- the health check's connections from the host itself are the heartbeat, not clients
      AND NOT (e.event_type = 'postgresql.incomplete_startup'
               AND (e.source_ip LIKE '127.%' OR e.source_ip IN ('::1', '[local]')))"""
_OFFSET_BITS = 40


def _build(ctx: Context, hosts: list[str]) -> list[DbHost]:
    store, s = ctx.store, ctx.settings
    zones = {h: ctx.zone(h) for h in hosts}
    store.execute("CREATE OR REPLACE TEMP TABLE dbdet_zones (host VARCHAR, tz VARCHAR)")
    store.execute("INSERT INTO dbdet_zones SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[])",
                  [hosts, [zones[h].key for h in hosts]])
    dbrecords.prepare(ctx, _PG)  # dbdet_src: PostgreSQL's records and MySQL's, read alike
    # copies of one record (live file, backup, image) share host, second and record key; the most
    # trustworthy copy (live > backup > salvage, then source and offset) stands for them, chosen on
    # one number per event: source rank * 2^40 + offset
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE dbdet_rank AS
        SELECT source_id, (row_number() OVER (ORDER BY {_kind_rank()}, source_id))::BIGINT << {_OFFSET_BITS} AS base
        FROM sources""")
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE dbdet_keep AS
        SELECT min(r.base + e."offset") AS p FROM dbdet_src e JOIN dbdet_rank r USING (source_id)
        GROUP BY e.host, epoch(e.ts_utc)::BIGINT, e.record_key""")
    # statements: fingerprinted once per shape, mapped back by the text's hash
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE dbdet_text AS
        SELECT h AS text_hash, statement, dialect, {sqltext.shape_sql('statement')} AS shape
        FROM (SELECT e.stmt_hash AS h, any_value(e.statement) AS statement, any_value(e.dialect) AS dialect
              FROM dbdet_src e WHERE e.statement IS NOT NULL GROUP BY h)""")
    _fingerprint_shapes(ctx)
    store.execute("""
        CREATE OR REPLACE TEMP TABLE dbdet_sfp AS
        SELECT st.text_hash AS stmt_hash, f.* EXCLUDE (shape, dialect), st.shape
        FROM dbdet_text st JOIN dbdet_fp f USING (shape, dialect)""")
    # clients, classified in Python (the config may name networks); few distinct values. The counts
    # only rank clients by share, so copies need not be merged for them.
    clients = ctx.query("""
        SELECT host, source_ip, count(statement) FROM dbdet_src e
        WHERE source_ip IS NOT NULL AND source_ip NOT IN ('', '[unknown]')
        GROUP BY ALL ORDER BY 3 DESC, 2""")
    maint = _networks(s.maintenance_addresses)
    apps: dict[str, tuple[tuple[str, ...], bool]] = {}
    rows_c: list[tuple[str, str, str]] = []
    classes: dict[str, dict] = {h: {} for h in hosts}
    for host in hosts:
        mine = [(c, n) for h, c, n in clients if h == host]
        if s.app_db_clients:
            apps[host] = (tuple(s.app_db_clients), False)
        else:
            apps[host] = (_infer_app([(c, n) for c, n in mine if not _is_local(c)]), True)
        app_nets = _networks(apps[host][0])
        for c, _ in mine:
            cls = ("local" if _is_local(c) else "app" if _in(c, app_nets) else
                   "maintenance" if _in(c, maint) else "other")
            classes[host][c] = cls
            rows_c.append((host, c, cls))
    store.execute("CREATE OR REPLACE TEMP TABLE dbdet_clients (host VARCHAR, client VARCHAR, class VARCHAR)")
    if rows_c:
        store.execute("INSERT INTO dbdet_clients SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), "
                      "unnest(?::VARCHAR[])", [list(c) for c in zip(*rows_c)])
    # a salvaged PostgreSQL record whose chunk lines repeat or skip a number was put together wrong
    store.execute("""
        CREATE OR REPLACE TEMP TABLE dbdet_damaged AS
        SELECT event_id FROM (
          SELECT e.event_id, regexp_extract_all(e.raw, '\\]: \\[\\d+-(\\d+)\\] ', 1) AS ch FROM events e
          WHERE e.kind = 'salvage' AND e.line_count > 1 AND e.format_id = 'syslog' AND e.event_type LIKE 'postgresql%')
        WHERE len(list_distinct(ch)) <> len(ch) OR list_max(ch::INTEGER[]) <> len(ch)""")
    err = "e.extra IS NOT NULL AND upper(e.pg_level) IN ('ERROR', 'FATAL', 'PANIC')"
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE {T} AS
        SELECT e.event_id, e.host, e.ts_utc, timezone(z.tz, e.ts_utc) AS ts_local,
               timezone(z.tz, e.ts_utc)::DATE AS day, e.event_type, e.kind,
               CASE WHEN e.source_ip IN ('', '[unknown]') THEN NULL ELSE e.source_ip END AS client,
               coalesce(c.class, 'unknown') AS class,
               CASE WHEN e.db_user IN ('', '[unknown]') THEN NULL ELSE e.db_user END AS db_user,
               CASE WHEN e.db_name IN ('', '[unknown]') THEN NULL ELSE e.db_name END AS db_name,
               coalesce(e.db_session, e.process_pid::VARCHAR) AS session, upper(e.pg_level) AS pg_level,
               CASE WHEN e.event_type <> 'postgresql.duration' THEN e.pg_message END AS pg_message,
               e.stmt_hash,
               e.duration_ms, e.relation, e.target_user,
               -- (salvaged records carry their blocks in extra: parse it only where it matters)
               CASE WHEN {err} THEN json_extract_string(e.extra, '$.input_value') END AS input_value,
               CASE WHEN {err} THEN coalesce(json_extract_string(e.extra, '$.column'),
                    json_extract_string(e.extra, '$.function'),
                    json_extract_string(e.extra, '$.target_db')) END AS object,
               f.fp, f.stmt_kind, f.relations, f.customer, f.customer_full, f.customer_grouped, f.full_any,
               f.copy_target, f.stmt_payload, f.stmt_signals,
               e.event_id IN (SELECT event_id FROM dbdet_damaged) AS damaged
        FROM dbdet_src e JOIN dbdet_rank r USING (source_id) JOIN dbdet_zones z ON z.host = e.host
        LEFT JOIN dbdet_clients c ON c.host = e.host AND c.client = e.source_ip
        LEFT JOIN dbdet_sfp f ON f.stmt_hash = e.stmt_hash
        WHERE r.base + e."offset" IN (SELECT p FROM dbdet_keep)""")
    store.execute("DROP TABLE dbdet_keep")
    store.execute("DROP TABLE dbdet_damaged")
    out = []
    for host in hosts:
        app, inferred = apps[host]
        if s.app_db_users:
            users, u_inferred = tuple(s.app_db_users), False
        else:
            users, u_inferred = _infer_users(ctx, host), True
        days = ctx.query(f"SELECT count(DISTINCT day) FROM {T} WHERE host = ? AND class = 'app'", [host])[0][0]
        need_days = min(ESTABLISHED_DAYS, max(1, days))
        est = frozenset(r[0] for r in ctx.query(f"""
            SELECT fp FROM {T} WHERE host = ? AND class = 'app' AND fp IS NOT NULL AND NOT damaged
            GROUP BY fp HAVING count(*) >= ? AND count(DISTINCT day) >= ?""", [host, ESTABLISHED_COUNT, need_days]))
        _mark_truncated(ctx, host, est)
        n, n_stmt, n_damaged = ctx.query(
            f"SELECT count(*), count(stmt_hash), count(*) FILTER (WHERE damaged) FROM {T} WHERE host = ?", [host])[0]
        out.append(DbHost(host, zones[host], app, inferred, users, u_inferred, classes[host], est, n, n_stmt,
                          n_damaged))
    return out


def _mark_truncated(ctx: Context, host: str, established: frozenset[str]) -> None:
    """Salvaged application records whose statement is the beginning of an established statement
    (the image lost their last chunk lines) are damaged copies, not new statements. Only salvaged
    records of the application's clients qualify: a complete record never is."""
    if not established:
        return
    est_shapes = [_flat(r[0]) for r in ctx.query(
        "SELECT shape FROM dbdet_sfp WHERE fp IN (SELECT unnest(?::VARCHAR[]))", [sorted(established)])]
    novel = ctx.query(f"""
        SELECT DISTINCT p.fp, f.shape FROM {T} p JOIN dbdet_sfp f USING (stmt_hash)
        WHERE p.host = ? AND p.kind = 'salvage' AND p.class = 'app' AND NOT p.damaged
          AND NOT list_contains(?::VARCHAR[], p.fp)""", [host, sorted(established)])
    cut = sorted({fp for fp, shape in novel
                  if (flat := _flat(shape)) and any(e.startswith(flat) and len(e) > len(flat) for e in est_shapes)})
    if cut:
        ctx.store.execute(f"""UPDATE {T} SET damaged = true WHERE host = ? AND kind = 'salvage' AND class = 'app'
                              AND list_contains(?::VARCHAR[], fp)""", [host, cut])


def _flat(shape: str | None) -> str:
    """A shape with whitespace and IN-list lengths evened out, for prefix comparison."""
    text = " ".join((shape or "").split())
    return re.sub(r"0(?:\s*,\s*0)+", "0", text)


def _fingerprint_shapes(ctx: Context) -> None:
    """Fingerprint, kind, relations and payload signals of one statement of each shape."""
    custom = ctx.settings.customer_tables
    rows = ctx.query("SELECT shape, dialect, min(statement) FROM dbdet_text GROUP BY shape, dialect")
    cols: dict[str, list] = {k: [] for k in ("shape", "dialect", "fp", "kind", "relations", "customer",
                                             "customer_full", "customer_grouped", "full_any", "copy", "payload",
                                             "signals")}
    for shape, dialect, rep in rows:
        if dialect == "mysql":
            rep = mysqltext.to_postgres(rep).sql
        info = sqltext.analyse(rep)
        pay = sqltext.statement_payload(rep)
        cols["shape"].append(shape)
        cols["dialect"].append(dialect)
        # an unparsable statement is its own group, named by its shape
        cols["fp"].append(info.fingerprint or "~" + hashlib.sha256(shape.encode()).hexdigest()[:16])
        cols["kind"].append(info.kind)
        cols["relations"].append(",".join(info.relations + tuple(r for r in info.full_reads
                                                                  if r not in info.relations)))
        cols["customer"].append(any(sqltext.is_customer_table(r, custom) for r in info.relations + info.full_reads))
        cols["customer_full"].append(any(sqltext.is_customer_table(r, custom) for r in info.full_reads))
        cols["customer_grouped"].append(any(sqltext.is_customer_table(r, custom) for r in info.grouped_reads))
        cols["full_any"].append(bool(info.full_reads))
        cols["copy"].append(info.copy_target)
        cols["payload"].append(pay.is_payload)
        cols["signals"].append(", ".join(pay.strong + pay.weak) or None)
    ctx.store.execute("""CREATE OR REPLACE TEMP TABLE dbdet_fp (shape VARCHAR, dialect VARCHAR, fp VARCHAR, stmt_kind VARCHAR,
        relations VARCHAR, customer BOOLEAN, customer_full BOOLEAN, customer_grouped BOOLEAN, full_any BOOLEAN,
        copy_target VARCHAR, stmt_payload BOOLEAN, stmt_signals VARCHAR)""")
    if rows:
        ctx.store.execute("""INSERT INTO dbdet_fp SELECT unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
            unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::BOOLEAN[]), unnest(?::BOOLEAN[]),
            unnest(?::BOOLEAN[]), unnest(?::BOOLEAN[]), unnest(?::VARCHAR[]), unnest(?::BOOLEAN[]),
            unnest(?::VARCHAR[])""", list(cols.values()))


def _infer_app(counts: list[tuple[str, int]]) -> tuple[str, ...]:
    total = sum(n for _, n in counts)
    if not total:
        return ()
    out, acc = [], 0
    for client, n in sorted(counts, key=lambda cn: (-cn[1], cn[0])):
        if acc >= APP_SHARE * total or n < APP_MIN_SHARE * total:
            break
        out.append(client)
        acc += n
    return tuple(out)


def _infer_users(ctx: Context, host: str) -> tuple[str, ...]:
    rows = ctx.query(f"""SELECT db_user, count(*) FROM {T} WHERE host = ? AND class = 'app' AND db_user IS NOT NULL
                         AND stmt_hash IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1""", [host])
    total = sum(n for _, n in rows)
    out, acc = [], 0
    for user, n in rows:
        if acc >= APP_USER_SHARE * total:
            break
        out.append(user)
        acc += n
    return tuple(out)


def _networks(values) -> list:
    nets = []
    for v in values:
        try:
            nets.append(ipaddress.ip_network(v, strict=False))
        except ValueError:
            nets.append(v)  # a host name as log_hostname writes it
    return nets


def _in(client: str, nets: list) -> bool:
    try:
        ip = ipaddress.ip_address(client)
    except ValueError:
        return client in nets
    return any(not isinstance(n, str) and ip.version == n.version and ip in n for n in nets)


def _is_local(client: str | None) -> bool:
    if client == "[local]":
        return True
    try:
        return ipaddress.ip_address(client).is_loopback
    except (ValueError, TypeError):
        return False


# internal networks: RFC 1918, carrier-grade NAT, loopback, link-local, IPv6 unique-local (everything
# else, documentation ranges included, counts as a public address)
_INTERNAL = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "0.0.0.0/8", "::1/128", "fc00::/7", "fe80::/10"))


def is_public(client: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(client)
    except (ValueError, TypeError):
        return False
    return not any(ip.version == n.version and ip in n for n in _INTERNAL)


def local_kind(client: str | None) -> str:
    return LOCAL_DUMP if client == "[local]" else LOOPBACK_DUMP


def text(hash_expr: str) -> str:
    """The statement text of a hash (a scalar sub-query; use on grouped or few rows)."""
    return f"(SELECT statement FROM dbdet_text WHERE text_hash = {hash_expr})"


def ids_sql(order: str = "ts_utc, event_id") -> str:
    """The event ids of a group, in time order, one more than findings.json keeps (so the
    finding knows it was truncated) — never the whole list of a million-record group."""
    return f"list(event_id ORDER BY {order})[1:{MAX_EVENT_IDS + 1}]"


# --- detectors -----------------------------------------------------------------------------------

def detect(ctx: Context) -> list[Finding | Milestone]:
    out: list = []
    for h in prepare(ctx):
        found: list[Finding] = []
        sqli, first = _sqli(ctx, h)
        found += sqli
        found += _auth_failed(ctx, h)
        found += _permission_denied(ctx, h)
        found += _undefined(ctx, h)
        found += _slow(ctx, h)
        found += _full_reads(ctx, h)
        found += _copy_to(ctx, h)
        found += _dump_sessions(ctx, h)
        found += _unexpected(ctx, h)
        out += found
        if first is not None:
            out.append(first)
        serious = [f for f in found if severity_rank(f.severity) >= severity_rank("medium")]
        if serious:
            f = min(serious, key=lambda f: (f.first_seen, f.rule, f.id))
            out.append(Milestone("first_db_anomaly", f.first_seen, h.host,
                                 {"rule": f.rule, "finding": f.id, "title": f.title, "severity": f.severity},
                                 f.event_ids[:1]))
    return out


def payload_values(ctx: Context, where: str = "true", params=()) -> dict[str, sqltext.Payload]:
    """The quoted values of error messages (``invalid input syntax for integer: "…"``) that carry
    SQL, among the errors matching ``where``."""
    values = [r[0] for r in ctx.query(
        f"SELECT DISTINCT {_QUOTED} AS v FROM {T} WHERE {_ERROR} AND ({where}) AND v IS NOT NULL", params)]
    return {v: p for v in values if (p := sqltext.value_payload(v)).is_payload}


def _sqli(ctx: Context, h: DbHost) -> tuple[list[Finding], Milestone | None]:
    payloads = payload_values(ctx, "host = ?", [h.host])
    hit = (f"(list_contains(?::VARCHAR[], {_QUOTED}) "
           "OR (coalesce(stmt_payload, false) AND NOT list_contains(?::VARCHAR[], fp)))")
    params = [sorted(payloads) or [""], sorted(h.established) or [""]]
    cols = f"""event_id, ts_utc, day, client, session, db_user, db_name, {_QUOTED} AS v, {text('stmt_hash')},
               fp, stmt_payload, stmt_signals, pg_message"""
    hits = ctx.query(f"""SELECT {cols} FROM {T} WHERE host = ? AND {_ERROR} AND {hit}
                         ORDER BY ts_utc, event_id""", [h.host, *params])
    if not hits:
        return [], None
    groups: dict[tuple, list] = {}
    for r in hits:
        groups.setdefault((r[3], r[2]), []).append(r)
    # the other errors of the same client while its payloads arrived (within RELATED_S of them):
    # the scanner's quote and parenthesis probes ('1)', "1'") and the statements they broke
    related: dict[tuple, list] = {}
    for (client, day), rs in groups.items():
        related[(client, day)] = ctx.query(f"""
            SELECT {cols} FROM {T} WHERE host = ? AND {_ERROR} AND NOT coalesce({hit}, false)
              AND client IS NOT DISTINCT FROM ?
              AND ts_utc BETWEEN ?::TIMESTAMPTZ - INTERVAL {RELATED_S} SECOND
                             AND ?::TIMESTAMPTZ + INTERVAL {RELATED_S} SECOND
            ORDER BY ts_utc, event_id""", [h.host, *params, client, rs[0][1], rs[-1][1]])
    out = []
    for (client, day), rs in sorted(groups.items(), key=lambda kv: kv[1][0][1]):
        rel = related.get((client, day), [])
        everything = sorted(rs + rel, key=lambda r: (r[1], r[0]))
        in_value = [r for r in rs if r[7] in payloads]
        # the payload stayed data when the statement around it parsed and carries no SQL of its own
        # (a bound parameter, or a literal the type check rejected): nothing injected ran
        bound = all(r[7] in payloads and r[8] is not None and not r[9].startswith("~") and not r[10] for r in rs)
        signals = sorted({sig for r in rs for sig in ((payloads[r[7]].strong + payloads[r[7]].weak)
                                                       if r[7] in payloads else (r[11] or "").split(", ")) if sig})
        examples = list(dict.fromkeys(r[7] if r[7] in payloads else r[8] for r in rs))[:8]
        detail = {"key": f"sqli:{client}:{day}", "client": client, "day": str(day),
                  "sessions": len({r[4] for r in rs}), "users": sorted({r[5] for r in rs if r[5]}),
                  "databases": sorted({r[6] for r in rs if r[6]}), "payload_errors": len(rs),
                  "related_errors": len(rel), "signals": signals, "examples": examples,
                  "payload_in": "bound parameter value" if bound else "statement text"}
        if bound:
            detail["assessment"] = ("the payloads arrived as values of a statement that parsed without them and "
                                    "failed its type check: the attempt reached the database, nothing injected ran")
            severity = "medium"
        else:
            detail["assessment"] = "SQL payload inside statement text the database parsed: injection reached SQL"
            severity = "high"
        if len(in_value) != len(rs):
            detail["statements_with_payload"] = len(rs) - len(in_value)
        out.append(Finding("db.sqli_trace", f"SQL-injection payloads in database errors from {client or 'unknown'}",
                           severity, h.host, everything[0][1], everything[-1][1], len(everything),
                           (client,) if client else (), tuple(r[0] for r in everything), detail))
    first = min(out, key=lambda f: f.first_seen)
    hit = hits[0]
    return out, Milestone("sqli_db_errors", first.first_seen, h.host,
                          {"client": hit[3], "finding": first.id, "first_payload": hit[7] or hit[8],
                           "message": hit[12]}, first.event_ids[:1])


def _auth_failed(ctx: Context, h: DbHost) -> list[Finding]:
    bursts: dict = {}
    for client, start, end, n in ctx.query(f"""
        WITH a AS (
          SELECT client, ts_utc, event_id,
                 CASE WHEN epoch(ts_utc) - epoch(lag(ts_utc) OVER w) <= {BURST_GAP_S} THEN 0 ELSE 1 END AS starts
          FROM {T} WHERE host = ? AND event_type IN {_AUTH}
          WINDOW w AS (PARTITION BY client ORDER BY ts_utc, event_id)),
        b AS (SELECT *, sum(starts) OVER (PARTITION BY client ORDER BY ts_utc, event_id) AS burst FROM a)
        SELECT client, min(ts_utc), max(ts_utc), count(*) FROM b GROUP BY client, burst
        ORDER BY count(*) DESC, min(ts_utc)""", [h.host]):
        bursts.setdefault(client, []).append((start, end, n))
    rows = ctx.query(f"""
        SELECT client, any_value(class), count(*), min(ts_utc), max(ts_utc), {ids_sql()},
               list(DISTINCT coalesce(target_user, db_user)) FILTER (WHERE coalesce(target_user, db_user) IS NOT NULL),
               count(DISTINCT day)
        FROM {T} WHERE host = ? AND event_type IN {_AUTH} GROUP BY client ORDER BY min(ts_utc), client""", [h.host])
    out = []
    for client, cls, n, first, last, ids, users, days in rows:
        mine = bursts[client]
        biggest = mine[0][2]
        public = is_public(client)
        if biggest >= 20:
            severity = "high" if public or cls == "other" else "medium"
        elif biggest >= 5 or public:
            severity = "medium"
        else:
            severity = "low"
        detail = {"key": f"auth:{client}", "client": client, "client_class": cls, "users": sorted(users or []),
                  "days": days, "bursts": len(mine), "largest_burst": biggest,
                  "burst_list": [{"start": _iso(a, h.zone), "end": _iso(b, h.zone), "failures": k}
                                 for a, b, k in mine[:20]]}
        out.append(Finding("db.auth_failed", f"Database authentication failures from {client or 'unknown client'}",
                           severity, h.host, first, last, n, (client,) if client else (), tuple(ids), detail))
    return out


def _permission_denied(ctx: Context, h: DbHost) -> list[Finding]:
    rows = ctx.query(f"""
        SELECT client, any_value(class), db_user, count(*), min(ts_utc), max(ts_utc), {ids_sql()},
               list(DISTINCT relation) FILTER (WHERE relation IS NOT NULL), count(DISTINCT day), {_NOVEL}
        FROM {T} WHERE host = ? AND event_type = 'postgresql.permission_denied'
        GROUP BY client, db_user ORDER BY min(ts_utc), client, db_user""", [sorted(h.established) or [""], h.host])
    out = []
    for client, cls, user, n, first, last, ids, rels, days, novel in rows:
        rels = sorted(rels or [])
        severity = "medium" if (cls == "other" and is_public(client)) or len(rels) >= EXPLORATION_OBJECTS \
            or (cls == "app" and (user not in h.app_users or novel)) else "low"
        out.append(Finding("db.permission_denied", f"Permission denied to {user or 'unknown user'} "
                                                   f"from {client or 'unknown client'}",
                           severity, h.host, first, last, n, (client,) if client else (), tuple(ids),
                           {"key": f"perm:{client}:{user}", "client": client, "client_class": cls, "user": user,
                            "relations": rels, "days": days, "unusual_application_statements": novel,
                            "customer_tables": [r for r in rels
                                                if sqltext.is_customer_table(r, ctx.settings.customer_tables)]}))
    return out


def _undefined(ctx: Context, h: DbHost) -> list[Finding]:
    rows = ctx.query(f"""
        WITH u AS (SELECT *, coalesce(relation, object, regexp_extract(pg_message, '"([^"]*)"', 1)) AS obj,
                          count(DISTINCT obj) OVER (PARTITION BY client, db_user, day) AS objs_that_day
                   FROM {T} WHERE host = ? AND event_type IN {_UNDEFINED})
        SELECT client, any_value(class), db_user, count(*), min(ts_utc), max(ts_utc), {ids_sql()},
               list(DISTINCT obj), count(DISTINCT day), max(objs_that_day), list(DISTINCT event_type), {_NOVEL}
        FROM u GROUP BY client, db_user ORDER BY min(ts_utc), client, db_user""", [h.host, sorted(h.established) or [""]])
    out = []
    for client, cls, user, n, first, last, ids, objs, days, max_day, types, novel in rows:
        exploring = max_day >= EXPLORATION_OBJECTS
        # the application's address running a statement the application never runs is someone else
        severity = ("medium" if exploring or is_public(client) or (cls == "app" and (user not in h.app_users or novel))
                    else "low")
        out.append(Finding("db.undefined_object", f"Queries for tables or columns that do not exist, from "
                                                  f"{client or 'unknown client'}",
                           severity, h.host, first, last, n, (client,) if client else (), tuple(ids),
                           {"key": f"undef:{client}:{user}", "client": client, "client_class": cls, "user": user,
                            "objects": sorted(o for o in objs if o)[:50], "distinct_objects": len(objs),
                            "most_objects_in_a_day": max_day, "days": days,
                            "kinds": sorted(t.split(".", 1)[1] for t in types),
                            "unusual_application_statements": novel,
                            "assessment": "schema exploration" if exploring else "occasional mistakes"}))
    return out


def _slow(ctx: Context, h: DbHost) -> list[Finding]:
    rows = ctx.query(f"""
        SELECT fp, count(*), min(ts_utc), max(ts_utc), {ids_sql()}, max(duration_ms),
               quantile_cont(duration_ms, 0.5), quantile_cont(duration_ms, 0.95), sum(duration_ms), min(duration_ms),
               list(DISTINCT client) FILTER (WHERE client IS NOT NULL), list(DISTINCT class),
               list(DISTINCT db_user) FILTER (WHERE db_user IS NOT NULL),
               {text('first(stmt_hash ORDER BY duration_ms DESC, ts_utc, event_id)')},
               min(stmt_kind), min(relations), count(DISTINCT day)
        FROM {T} WHERE host = ? AND event_type = 'postgresql.duration' AND duration_ms IS NOT NULL
          AND stmt_hash IS NOT NULL AND NOT damaged
        GROUP BY fp ORDER BY count(*) DESC, fp""", [h.host])
    out = []
    for (fp, n, first, last, ids, mx, p50, p95, total, mn, clients, classes, users, example, kind, rels,
         days) in rows:
        usual = fp in h.established or set(classes) <= {"local", "maintenance"}
        out.append(Finding("db.slow_statement", f"Slow {kind} statements ({n:,}) — {_short(example, 60)}",
                           "info" if usual else "low", h.host, first, last, n, tuple(sorted(clients or [])),
                           tuple(ids),
                           {"key": f"slow:{fp}", "fingerprint": fp, "kind": kind, "relations": _rels(rels),
                            "max_ms": round(mx, 3), "p50_ms": round(p50, 3), "p95_ms": round(p95, 3),
                            "total_s": round(total / 1000, 1), "min_logged_ms": round(mn, 3),
                            "users": sorted(users or []), "client_classes": sorted(classes), "days": days,
                            "established_application_statement": fp in h.established,
                            "example": _short(example, 500)}))
    return out


def _full_reads(ctx: Context, h: DbHost) -> list[Finding]:
    rows = ctx.query(f"""
        SELECT fp, client, any_value(class), db_user, count(*), min(ts_utc), max(ts_utc), {ids_sql()},
               bool_or(customer_full), min(relations), count(DISTINCT day),
               {text('first(stmt_hash ORDER BY ts_utc, event_id)')}, max(duration_ms)
        FROM {T} WHERE host = ? AND {_RAN} AND (customer_full OR customer_grouped) AND stmt_kind = 'select'
        GROUP BY fp, client, db_user ORDER BY min(ts_utc), fp, client, db_user""", [h.host])
    out = []
    for fp, client, cls, user, n, first, last, ids, rows_out, rels, days, example, mx in rows:
        app = cls == "app" and user in h.app_users
        usual = app and fp in h.established  # the application's own statement
        recurring = days >= RECURRING_DAYS
        if rows_out:
            severity = ("low" if cls == "local" else "medium" if usual or recurring or cls == "maintenance"
                        else "high")
        else:
            severity = "low" if app or cls in ("local", "maintenance") or recurring else "medium"
        what = "Whole customer table read" if rows_out else "Customer table aggregated whole"
        out.append(Finding("db.full_table_read", f"{what} by {user or 'unknown user'} from "
                                                 f"{client or 'unknown client'}",
                           severity, h.host, first, last, n, (client,) if client else (), tuple(ids),
                           {"key": f"full:{fp}:{client}:{user}", "fingerprint": fp, "client": client,
                            "client_class": cls, "user": user, "relations": _rels(rels),
                            "returns": "rows" if rows_out else "GROUP BY values and aggregates",
                            "days": days, "recurring": recurring, "established_application_statement": usual,
                            "max_ms": mx, "example": _short(example, 500)}))
    return out


@dataclass
class DumpPattern:
    client: str | None
    user: str | None
    target: str
    sessions: list  # (start, end, tables, event_ids, copies)
    regular: bool
    usual_minute: int | None
    off_schedule: list


def copy_sessions(ctx: Context, h: DbHost, where: str = "true", params=()) -> list[DumpPattern]:
    """COPY … TO records grouped into backend sessions (one pid, gaps under 10 min), then into
    patterns per client, user and target, with how regular each pattern's schedule is."""
    rows = ctx.query(f"""
        WITH c AS (
          SELECT *, CASE WHEN epoch(ts_utc) - epoch(lag(ts_utc) OVER w) <= {DUMP_SESSION_GAP_S} THEN 0 ELSE 1 END
                 AS starts
          FROM {T} WHERE host = ? AND stmt_kind = 'copy_to' AND NOT damaged AND ({where})
          WINDOW w AS (PARTITION BY client, db_user, session ORDER BY ts_utc, event_id)),
        s AS (SELECT *, sum(starts) OVER (PARTITION BY client, db_user, session ORDER BY ts_utc, event_id) AS n FROM c)
        SELECT client, db_user, copy_target, min(ts_utc), max(ts_utc), min(ts_local),
               list(DISTINCT relations), list(event_id ORDER BY ts_utc, event_id), count(*),
               coalesce(bool_or({_ERROR}), false) AS failed, coalesce(bool_or(customer), false)
        FROM s GROUP BY client, db_user, copy_target, session, n
        ORDER BY min(ts_utc), client, db_user, copy_target, session, n""", [h.host, *params])
    by: dict[tuple, list] = {}
    for client, user, target, start, end, local_start, rels, ids, copies, failed, customer in rows:
        tables = sorted({t for r in rels if r for t in r.split(",") if t})
        by.setdefault((client, user, target), []).append(
            {"start": start, "end": end, "minute": local_start.hour * 60 + local_start.minute, "tables": tables,
             "ids": ids, "copies": copies, "failed": failed, "customer": customer, "day": local_start.date()})
    out = []
    for (client, user, target), sessions in by.items():
        minutes = [s["minute"] for s in sessions]
        usual = _circular_median(minutes)
        near = [s for s in sessions if _minute_distance(s["minute"], usual) <= SCHEDULE_TOLERANCE_MIN]
        regular = (len({s["day"] for s in sessions}) >= RECURRING_DAYS and len(near) >= SCHEDULE_SHARE * len(sessions))
        off = [s for s in sessions if s not in near] if regular else []
        out.append(DumpPattern(client, user, target, sessions, regular, usual, off))
    return out


def _copy_to(ctx: Context, h: DbHost) -> list[Finding]:
    out = []
    for p in copy_sessions(ctx, h):
        cls = h.classes.get(p.client, "unknown")
        for part, sessions in (("", [s for s in p.sessions if s not in p.off_schedule]),
                               (":off-schedule", p.off_schedule)):
            if not sessions:
                continue
            ids = [i for s in sessions for i in s["ids"]]
            tables = sorted({t for s in sessions for t in s["tables"]})
            customer = any(s["customer"] for s in sessions)
            detail = {"key": f"copy:{p.client}:{p.user}:{p.target}{part}", "client": p.client, "client_class": cls,
                      "user": p.user, "target": p.target, "tables": tables, "sessions": len(sessions),
                      "days": len({s["day"] for s in sessions}), "failed_sessions": sum(s["failed"] for s in sessions),
                      "regular_schedule": p.regular and not part,
                      "usual_local_time": _hhmm(p.usual_minute) if p.regular else None}
            severity, assessment = _copy_severity(cls, p, customer, off_schedule=bool(part))
            detail["assessment"] = assessment
            title = (f"COPY … TO {p.target} of {', '.join(tables[:4]) or 'a query'} by {p.user or 'unknown user'} "
                     f"from {p.client or 'unknown client'}" + (" outside its usual schedule" if part else ""))
            out.append(Finding("db.copy_to", title, severity, h.host, sessions[0]["start"], sessions[-1]["end"],
                               sum(s["copies"] for s in sessions), (p.client,) if p.client else (), tuple(ids),
                               detail))
    return out


def _copy_severity(cls: str, p: DumpPattern, customer: bool, *, off_schedule: bool) -> tuple[str, str]:
    if p.target == "program":
        return ("high" if cls == "local" else "critical",
                "COPY … TO PROGRAM runs a shell command on the database host")
    if p.target == "file":
        return "high", "COPY … TO a file on the database host"
    if cls == "local":
        if p.regular and not off_schedule:
            return "info", local_kind(p.client)
        if off_schedule:
            return "medium", "local dump outside the usual schedule of the maintenance dump"
        return ("medium" if customer else "low"), "local COPY … TO without a regular schedule"
    if cls == "maintenance":
        return "low", "COPY … TO from a maintenance address"
    return ("high" if customer else "medium"), "COPY … TO a remote client: table contents leave the server"


def _dump_sessions(ctx: Context, h: DbHost) -> list[Finding]:
    out = []
    for p in copy_sessions(ctx, h):
        cls = h.classes.get(p.client, "unknown")
        dumps = [s for s in p.sessions if len(s["tables"]) >= 2 or s["copies"] >= 2]
        if not dumps:
            continue
        off = [s for s in dumps if s in p.off_schedule]
        for part, sessions in (("", [s for s in dumps if s not in off]), (":off-schedule", off)):
            if not sessions:
                continue
            customer = any(s["customer"] for s in sessions)
            severity, assessment = _copy_severity(cls, p, customer, off_schedule=bool(part))
            if assessment.startswith("COPY … TO a remote"):
                assessment = "pg_dump-like session from a remote client: whole tables leave the server"
            out.append(Finding(
                "db.dump_session", f"Dump sessions (COPY … TO of several tables) by {p.user or 'unknown user'} from "
                                   f"{p.client or 'unknown client'}" + (" outside the usual schedule" if part else ""),
                severity, h.host, sessions[0]["start"], sessions[-1]["end"], len(sessions),
                (p.client,) if p.client else (), tuple(i for s in sessions for i in s["ids"]),
                {"key": f"dump:{p.client}:{p.user}:{p.target}{part}", "client": p.client, "client_class": cls,
                 "user": p.user, "target": p.target, "sessions": len(sessions),
                 "days": len({s["day"] for s in sessions}),
                 "tables": sorted({t for s in sessions for t in s["tables"]}),
                 "regular_schedule": p.regular and not part,
                 "usual_local_time": _hhmm(p.usual_minute) if p.regular else None,
                 "longest_session_s": max(int((s["end"] - s["start"]).total_seconds()) for s in sessions),
                 "assessment": assessment}))
    return out


def _unexpected(ctx: Context, h: DbHost) -> list[Finding]:
    out = []
    rows = ctx.query(f"""
        SELECT client, count(*), min(ts_utc), max(ts_utc), {ids_sql()}, count(DISTINCT day),
               list(DISTINCT db_user) FILTER (WHERE db_user IS NOT NULL),
               list(DISTINCT db_name) FILTER (WHERE db_name IS NOT NULL),
               count(*) FILTER (WHERE {_RAN}), count(*) FILTER (WHERE {_ERROR}),
               count(*) FILTER (WHERE event_type IN {_AUTH}), bool_or(customer AND {_RAN})
        FROM {T} WHERE host = ? AND class = 'other' GROUP BY client ORDER BY min(ts_utc), client""", [h.host])
    for client, n, first, last, ids, days, users, dbs, ran, errors, auth, customer in rows:
        public = is_public(client)
        if public:
            severity = "high" if ran else "medium"
        else:
            severity = "low" if days >= RECURRING_DAYS else "medium"
        out.append(Finding("db.unexpected_client", f"Database activity from {client}, not an application client",
                           severity, h.host, first, last, n, (client,), tuple(ids),
                           {"key": f"client:{client}", "client": client, "public_address": public,
                            "users": sorted(users or []), "databases": sorted(dbs or []), "days": days,
                            "statements_logged": ran, "errors": errors, "auth_failures": auth,
                            "read_customer_tables": bool(customer), **h.who()}))
    if h.app_users:
        rows = ctx.query(f"""
            SELECT client, db_user, count(*), min(ts_utc), max(ts_utc), {ids_sql()}, count(DISTINCT day),
                   count(*) FILTER (WHERE {_RAN}), bool_or(customer AND {_RAN})
            FROM {T} WHERE host = ? AND class = 'app' AND db_user IS NOT NULL
              AND NOT list_contains(?::VARCHAR[], db_user)
            GROUP BY client, db_user ORDER BY min(ts_utc), client, db_user""", [h.host, list(h.app_users)])
        for client, user, n, first, last, ids, days, ran, customer in rows:
            out.append(Finding("db.unexpected_client", f"Database user {user} from the application's address {client}",
                               "high" if ran else "medium", h.host, first, last, n, (client,), tuple(ids),
                               {"key": f"user:{client}:{user}", "client": client, "user": user, "days": days,
                                "statements_logged": ran, "read_customer_tables": bool(customer), **h.who()}))
    return out


# --- small helpers -------------------------------------------------------------------------------

def _circular_median(minutes: list[int]) -> int:
    """The minute of the day most runs start near (02:30 for a job at 23:55 … 00:40 too)."""
    best, best_cost = minutes[0], None
    for m in set(minutes):
        cost = sorted(_minute_distance(m, x) for x in minutes)[len(minutes) // 2]
        if best_cost is None or cost < best_cost or (cost == best_cost and m < best):
            best, best_cost = m, cost
    return best


def _minute_distance(a: int, b: int) -> int:
    d = abs(a - b) % 1440
    return min(d, 1440 - d)


def _hhmm(minute: int | None) -> str | None:
    return None if minute is None else f"{minute // 60:02d}:{minute % 60:02d}"


def _iso(t, zone: ZoneInfo) -> str:
    return t.astimezone(zone).isoformat()


def _short(text: str | None, n: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _rels(rels: str | None) -> list[str]:
    return [r for r in (rels or "").split(",") if r]

