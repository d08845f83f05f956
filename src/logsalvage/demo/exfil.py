"""An optional exfiltration (``generate(..., exfil=True)``, ``logsalvage demo --exfil``).

On 2017-12-20, in the small hours, one of block C's addresses drives ``/wp-contacts.php`` to
read the application's database credentials from config.inc.php and then runs psql on web01
against db01 with them. On db01 the statements arrive from the web server's own address
(192.168.10.11) as user ``webapp`` -- the application's client -- but outside the
application's query templates. With ``log_min_duration_statement = 3000`` and
``log_min_error_statement = error`` only some of them leave a trace:

- ``SELECT * FROM users`` fails (no such table): an ERROR with its STATEMENT;
- ``\\dt`` is fast: no trace on db01 (it shows only in the access log);
- a row count of every table (query_to_xml over information_schema.tables): slow, logged;
- ``SELECT * FROM customers``, ``COPY customers TO STDOUT``, and a ``COPY (SELECT ... JOIN
  ...) TO STDOUT`` long enough to be cut into ``[seq-chunk]`` lines: slow, logged with their
  duration.

The responses are the tables themselves, so the access log shows megabytes going out; each
request is logged when psql returns, stamped with its start. psql's complaint about ``users``
goes to Apache's error_log (the shell did not redirect stderr).

The plan draws from its own random stream, so a run without it is unchanged. Its time lies in
the live files of every scale (they always cover 2017-12-03 .. 2018-01-06), never in the hole.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from urllib.parse import quote

from . import actors
from .attack import ShellAccess
from .stamps import iso, jst

SHELL = "/wp-contacts.php"
DAY_START = jst(2017, 12, 20, 1, 30, 0)     # Wednesday, in the messages-20171224 live file
PSQL = f"PGPASSWORD='Kf-2016#res' psql -h {actors.DB01} -U webapp -d ferry"
TABLES = ("customers", "reservations", "voyages")
ROWCOUNT_SQL = ("SELECT table_name, (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM ' "
                "|| quote_ident(table_name), false, true, '')))[1]::text::bigint AS row_count "
                "FROM information_schema.tables WHERE table_schema = 'public' ORDER BY row_count DESC")
DUMP_JOIN_SQL = (
    "COPY (SELECT c.customer_id, c.name, c.name_kana, c.email, c.tel, c.address, "
    "to_char(c.created_at, 'YYYY-MM-DD HH24:MI:SS') AS registered_at, r.reservation_id, "
    "r.seat_class, r.passengers, r.status, to_char(r.created_at, 'YYYY-MM-DD HH24:MI:SS') AS "
    "reserved_at, v.voyage_id, v.route_code, to_char(v.departs_at, 'YYYY-MM-DD HH24:MI') AS "
    "departs_at, to_char(v.arrives_at, 'YYYY-MM-DD HH24:MI') AS arrives_at, f.fare, "
    "CASE r.status WHEN 'confirmed' THEN 1 WHEN 'cancelled' THEN 0 ELSE 2 END AS status_code "
    "FROM customers c JOIN reservations r ON r.customer_id = c.customer_id "
    "JOIN voyages v ON v.voyage_id = r.voyage_id "
    "LEFT JOIN fares f ON f.route_code = v.route_code AND f.seat_class = r.seat_class "
    "WHERE r.created_at >= '2016-01-01' AND c.email IS NOT NULL AND c.email <> '' "
    "ORDER BY c.customer_id, r.created_at) TO STDOUT WITH CSV HEADER")


@dataclass(frozen=True)
class DbStatement:
    """One PostgreSQL message the theft leaves in db01's log."""

    t: int                                  # the record's syslog time (a duration line: when it ended)
    port: int                               # psql's source port on web01
    kind: str                               # "duration" or "error"
    statement: str
    parts: tuple[tuple[str, str], ...]      # (level, text) as DbLogWriter.postgres takes them
    duration_ms: float | None = None
    error: str | None = None


@dataclass
class ExfilAccess(ShellAccess):
    """A web-shell request of the theft: logged when psql returns, maybe with stderr."""

    command: str = ""
    duration: int = 0                       # seconds until the response ended (access_log write)
    stderr: tuple[str, ...] = ()            # psql's complaints, in Apache's error_log
    db: DbStatement | None = None           # what db01 logged for it (None: nothing)


@dataclass
class ExfilPlan:
    source: str
    accesses: list[ExfilAccess] = field(default_factory=list)

    @property
    def statements(self) -> list[DbStatement]:
        return [a.db for a in self.accesses if a.db is not None]

    @property
    def first(self) -> int:
        return self.accesses[0].t

    @property
    def last(self) -> int:
        return max([a.t + a.duration for a in self.accesses] + [s.t for s in self.statements])


def make_exfil(seed: int) -> ExfilPlan:
    rng = random.Random(f"{seed}:exfil")
    ip = actors.C_ADDRESSES[rng.randrange(len(actors.C_ADDRESSES))]
    agent = actors.SHELL_AGENTS[1 + rng.randrange(len(actors.SHELL_AGENTS) - 1)]   # not "-"
    plan = ExfilPlan(ip)
    t = DAY_START + rng.randrange(25 * 60)

    def port() -> int:
        return rng.randint(33000, 60900)

    def add(command: str, size: int, duration: int = 0, stderr=(), db=None):
        plan.accesses.append(ExfilAccess(t, ip, "C", "GET", f"{SHELL}?c={quote(command, safe='')}", size, agent,
                                         effect="exfil", note="exfiltration", command=command,
                                         duration=duration, stderr=tuple(stderr), db=db))

    def slow(sql: str, lo: float, hi: float) -> tuple[int, DbStatement]:
        ms = rng.uniform(lo, hi) * 1000 + rng.random()
        end = t + 1 + int(ms / 1000)        # connect, run, log at the end
        return end - t, DbStatement(end, port(), "duration", sql,
                                    (("LOG", f"duration: {ms:.3f} ms  statement: {sql}"),), round(ms, 3))

    # 1. the application's credentials
    add("cat /var/www/html/config.inc.php", 1310)
    # 2. a guessed table name: an ERROR on db01, psql's message in error_log
    t += rng.randint(60, 150)
    sql = "SELECT * FROM users"
    err = 'relation "users" does not exist'
    add(f'{PSQL} -c "{sql}"', 0,
        stderr=(f"ERROR:  {err}", f"LINE 1: {sql}", " " * len("LINE 1: SELECT * FROM ") + "^"),
        db=DbStatement(t, port(), "error", sql, (("ERROR", f"{err} at character 15"), ("STATEMENT", sql)),
                       error=err))
    # 3. list the tables: fast, so db01 logs nothing
    t += rng.randint(20, 60)
    add(f"{PSQL} -c '\\dt'", rng.randint(560, 640))
    # 4. how big is each table: query_to_xml counts every row, slow enough to be logged
    t += rng.randint(30, 90)
    d, st = slow(ROWCOUNT_SQL, 3.4, 6.5)
    add(f'{PSQL} -c "{ROWCOUNT_SQL}"', rng.randint(330, 380), d, db=st)
    # 5.-7. the data itself, returned as the response body
    for sql, lo, hi, mb in (("SELECT * FROM customers", 6.0, 11.0, (7.4, 8.6)),
                            ("COPY customers TO STDOUT WITH CSV HEADER", 4.0, 8.0, (5.6, 6.4)),
                            (DUMP_JOIN_SQL, 18.0, 42.0, (26.0, 34.0))):
        t += rng.randint(60, 200)
        d, st = slow(sql, lo, hi)
        add(f'{PSQL} -c "{sql}"', int(rng.uniform(*mb) * 2**20), d, db=st)
    return plan


def truth(plan: ExfilPlan, written: list[dict]) -> dict:
    """The ``exfiltration`` section of truth.json; ``written`` says where each statement landed."""
    assert len(written) == len(plan.statements), (len(written), len(plan.statements))
    statements = []
    for st, w in zip(plan.statements, written):
        d = {"time": iso(st.t), "kind": st.kind, "statement": st.statement, "database": "ferry",
             "user": "webapp", "client": f"{actors.WEB01}({st.port})", "pid": w["pid"], "file": w["file"],
             "lines": w["lines"]}
        if st.duration_ms is not None:
            d["duration_ms"] = st.duration_ms
        if st.error is not None:
            d["error"] = st.error
        statements.append(d)
    web = [{"time": iso(a.t), "logged": iso(a.t + a.duration), "source": a.ip, "method": a.method,
            "url": a.path, "status": 200, "bytes": a.size, "command": a.command,
            "db_logged": a.db is not None, "stderr_lines": len(a.stderr)} for a in plan.accesses]
    return {
        "planted": True,
        "time": iso(plan.first),
        "until": iso(plan.last),
        "client": actors.WEB01,
        "database": "ferry",
        "db_user": "webapp",
        "via": "web shell",
        "shell": SHELL,
        "source": plan.source,
        "source_block": "C",
        "statements": statements,
        "web_requests": len(plan.accesses),
        "web": web,
        "bytes_out": sum(a.size for a in plan.accesses),
        "tables": list(TABLES),
        "note": ("psql run through the web shell with the application's credentials: on db01 it comes "
                 "from web01's address as user webapp, like the application, but the statements match "
                 "none of its query templates; '\\dt' and reading config.inc.php left no trace on db01"),
    }


def milestone_detail(plan: ExfilPlan) -> dict:
    return {"source": plan.source, "client": actors.WEB01, "via": "web shell", "url": SHELL,
            "statements": len(plan.statements), "web_requests": len(plan.accesses), "until": iso(plan.last),
            "tables": list(TABLES)}


def check_placement(plan, ex: ExfilPlan) -> None:
    """The theft must lie in the exposure window, in a preserved (live or backup) DB file, outside
    the hole -- so every scale keeps it. ``plan`` is the run's timeline.Plan."""
    from .timeline import EXPOSURE

    lo, hi = ex.first, ex.last
    hs, he = plan.hole
    ok_window = EXPOSURE[0] < lo and hi < EXPOSURE[1]
    ok_hole = hi < hs or lo > he
    ok_file = False
    for f in plan.db_files:
        end = f.rotation if f.rotation is not None else plan.period[1]
        if f.begin < lo and hi < end - 60:
            ok_file = f.kind in ("live", "backup")
    if not (ok_window and ok_hole and ok_file):   # pragma: no cover - fixed by the timeline
        raise RuntimeError(f"exfiltration {iso(lo)} .. {iso(hi)} is not inside a preserved DB file of "
                           "this run's period (outside the hole, inside the exposure window)")
