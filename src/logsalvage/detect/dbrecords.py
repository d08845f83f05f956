"""The database servers' records, PostgreSQL's and MySQL/MariaDB's, as one relation the database
detectors and the exfiltration assessment read (``dbdet_src``).

PostgreSQL's records carry their client, user, database and session themselves (the
``log_line_prefix``). MySQL's general query log writes them only on a connection's ``Connect``
line; its later ``Query`` lines carry the connection id alone. Each MySQL record therefore takes
client, user and database from the latest ``Connect`` of its connection id on the same host before
it (an as-of join: ids start again at 1 when the server restarts, and the latest connect before the
record is the one that opened its connection). The slow query log writes them on each entry.

MySQL's records are read with PostgreSQL's meanings, so every check applies to both:

| MySQL record | read as |
|---|---|
| ``Query``, ``Execute`` (general log) | a statement that ran (``postgresql.statement``) |
| slow-log entry | a statement with its duration (``postgresql.duration``) |
| ``Connect`` ``Access denied …``, the error log's ``Access denied`` | an authentication failure (``postgresql.auth_failed``) |
| ``Connect`` (the attempt, refused or not) | a connection (``postgresql.connection``) |

Statements keep their MySQL text, marked with their dialect: ``mysqltext`` translates them for
the analysis. A client ``localhost`` is the Unix socket (``[local]``, as PostgreSQL writes it).
A statement in both the general and the slow log (same connection, same text, within its
duration and a minute) is one execution: the general log's record stands for it, with the slow
log's duration. A refused login in both the error log and the general log is one refusal.
"""

from __future__ import annotations

from logsalvage.detect.context import Context

MYSQL_TYPES = ("mysql.connect", "mysql.query", "mysql.command", "mysql.slow_query", "mysql.auth_failed")

# the columns the detectors read, PostgreSQL's records as they are
_PG_COLUMNS = """e.event_id, e.host, e.source_id, e."offset", e.ts_utc, e.record_key, e.kind, e.event_type,
    e.statement, CASE WHEN e.statement IS NOT NULL THEN hash(e.statement) END AS stmt_hash,
    'postgresql' AS dialect, e.source_ip, e.db_user, e.db_name, e.db_session, e.process_pid, e.pg_level,
    e.pg_message, e.duration_ms, e.relation, e.target_user, e.extra"""


def prepare(ctx: Context, pg_filter: str) -> None:
    """``dbdet_my`` (MySQL's records, attributed and renamed) and the view ``dbdet_src``."""
    store = ctx.store
    types = ", ".join(f"'{t}'" for t in MYSQL_TYPES)
    store.execute(f"""
        CREATE OR REPLACE TEMP TABLE dbdet_my AS
        WITH r AS (
          SELECT e.*, json_extract_string(e.extra, '$.connection_id') AS conn,
                 coalesce(e.source_ip, json_extract_string(e.extra, '$.client_host')) AS client,
                 -- a refused login: the error log's line, or the general log's 'Access denied' line
                 -- (the attempt's own Connect line before it is the connection, as PostgreSQL's
                 -- 'connection received' before its FATAL)
                 (e.event_type = 'mysql.auth_failed' OR (e.event_type = 'mysql.connect' AND e.outcome = 'failure'
                  AND json_extract_string(e.extra, '$.using_password') IS NOT NULL)) AS denied
          FROM events e WHERE e.event_type IN ({types}) AND e.ts_utc IS NOT NULL),
        opened AS (
          SELECT host, conn, ts_utc, client, user_name, db_name FROM r
          WHERE event_type = 'mysql.connect' AND coalesce(outcome, '') <> 'failure' AND conn IS NOT NULL)
        SELECT r.event_id, r.host, r.source_id, r."offset", r.ts_utc, r.record_key, r.kind,
               CASE WHEN r.event_type = 'mysql.slow_query' THEN 'postgresql.duration'
                    WHEN r.denied THEN 'postgresql.auth_failed'
                    WHEN r.event_type = 'mysql.connect' THEN 'postgresql.connection'
                    ELSE 'postgresql.statement' END AS event_type,
               r.statement, CASE WHEN r.statement IS NOT NULL THEN hash('mysql:' || r.statement) END AS stmt_hash,
               'mysql' AS dialect,
               CASE WHEN coalesce(r.client, o.client) = 'localhost' THEN '[local]'
                    ELSE coalesce(r.client, o.client) END AS source_ip,
               coalesce(r.user_name, o.user_name) AS db_user, coalesce(r.db_name, o.db_name) AS db_name,
               r.conn AS db_session, r.process_pid,
               -- MySQL logs what ran (LOG) and refused logins (FATAL, as PostgreSQL's)
               CASE WHEN r.denied THEN 'FATAL' ELSE 'LOG' END
                 AS pg_level, NULL::VARCHAR AS pg_message,
               r.duration_ms, r.relation, r.target_user, NULL::VARCHAR AS extra, r.event_type AS mysql_type
        FROM r ASOF LEFT JOIN opened o ON o.host = r.host AND o.conn = r.conn AND r.ts_utc >= o.ts_utc
        -- of the prepared-statement commands, Execute carries what ran (Prepare has placeholders)
        WHERE r.event_type <> 'mysql.command'
           OR (r.statement IS NOT NULL AND json_extract_string(r.extra, '$.mysql_command') = 'Execute')""")
    # a statement in both the general and the slow log is one execution: the general log's record
    # stands for it, with the slow log's duration
    twin = """s.mysql_type = 'mysql.slow_query' AND g.mysql_type = 'mysql.query'
          AND s.host = g.host AND s.db_session = g.db_session AND s.stmt_hash = g.stmt_hash
          AND abs(epoch(s.ts_utc) - epoch(g.ts_utc)) <= 60 + coalesce(s.duration_ms, 0) / 1000"""
    store.execute(f"""UPDATE dbdet_my g SET duration_ms = (SELECT max(s.duration_ms) FROM dbdet_my s WHERE {twin}),
                                             event_type = 'postgresql.duration'
                     WHERE EXISTS (SELECT 1 FROM dbdet_my s WHERE {twin})""")
    store.execute(f"DELETE FROM dbdet_my s WHERE EXISTS (SELECT 1 FROM dbdet_my g WHERE {twin})")
    # a refused login in both the error and the general log is one refusal
    store.execute("""DELETE FROM dbdet_my s WHERE s.mysql_type = 'mysql.auth_failed' AND EXISTS (
                       SELECT 1 FROM dbdet_my g WHERE g.mysql_type = 'mysql.connect'
                         AND g.event_type = 'postgresql.auth_failed' AND s.host = g.host
                         AND s.db_user IS NOT DISTINCT FROM g.db_user AND s.source_ip IS NOT DISTINCT FROM g.source_ip
                         AND abs(epoch(s.ts_utc) - epoch(g.ts_utc)) <= 2)""")
    store.execute(f"""
        CREATE OR REPLACE TEMP VIEW dbdet_src AS
        SELECT {_PG_COLUMNS} FROM events e WHERE {pg_filter}
        UNION ALL
        SELECT * EXCLUDE (mysql_type) FROM dbdet_my""")
