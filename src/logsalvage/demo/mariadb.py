"""db01's MariaDB general query log for the LAMP variant (``logsalvage demo --stack lamp``).

The same traffic as db.py's PostgreSQL log, as mariadbd writes it to ``general_log_file``
(layout of tests/data/dblogs/mariadb-general.log): a banner at the top of every file, the time
(``YYMMDD H:MM:SS``, local) only when it changes, ``\\t\\t    12 Query\\t...`` otherwise, and the
client and user of a connection only on its ``Connect`` line.

Differences from the PostgreSQL log, all of them what a general log means:
- every statement is logged, not only the slow ones or the errors (no durations, no errors);
- the application's PDO prepares are emulated, so its parameters appear in the statement text;
- the health check is a socket connection that connects and quits (``healthcheck@localhost``);
- the nightly dump is mysqldump over the socket (``SELECT /*!40001 SQL_NO_CACHE */ * FROM ...``).

Files rotate at the times of db.py's messages files (logrotate, weekly, ``mysqladmin
flush-logs``). Only the files that survive as files are written (live and backup): the
salvage-only weeks existed only on the raw image, which this variant does not have.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Iterator

from . import actors, db, sqli
from .stamps import local
from .timeline import APP_RECORDS_PER_DAY, DbFile, Plan

BANNER = ("/usr/sbin/mysqld, Version: 10.1.20-MariaDB-log (MariaDB Server). started with:\n"
          "Tcp port: 3306  Unix socket: /var/lib/mysql/mysql.sock\n"
          "Time\t\t    Id Command\tArgument\n")
HEALTHCHECK = "healthcheck@localhost on  using Socket"
APP_USER, APP_DB = "webapp", "ferry"
MYSQL_CLIENT_PROBE = "select @@version_comment limit 1"   # what the mysql client sends first

_DOLLAR = re.compile(r"\$(\d+)")
_TO_CHAR = re.compile(r"to_char\(([^,]+), '([^']*)'\)")
_PG_DATE = (("YYYY", "%Y"), ("MM", "%m"), ("DD", "%d"), ("HH24", "%H"), ("MI", "%i"), ("SS", "%s"))


def quote(value: str) -> str:
    """A string literal as PDO's emulated prepare writes it (mysql_real_escape_string)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def to_mysql(sql: str) -> str:
    """A PostgreSQL statement of the demo in MySQL's dialect (the few constructs it uses)."""
    def date_format(m):
        fmt = m.group(2)
        for pg, my in _PG_DATE:
            fmt = fmt.replace(pg, my)
        return f"DATE_FORMAT({m.group(1)}, '{fmt}')"
    sql = _TO_CHAR.sub(date_format, sql)
    m = re.fullmatch(r"COPY \((.*)\) TO STDOUT WITH CSV HEADER", sql, re.S)
    if m:
        return m.group(1)
    m = re.fullmatch(r"COPY (\w+) TO STDOUT WITH CSV HEADER", sql)
    if m:   # the mysql client's batch output of the whole table, its columns named
        cols = dict(db.DUMP_TABLES).get(m.group(1), "*")
        return f"SELECT {cols} FROM {m.group(1)}"
    if "query_to_xml" in sql:   # the row count of every table
        return ("SELECT table_name, table_rows FROM information_schema.tables "
                f"WHERE table_schema = '{APP_DB}' ORDER BY table_rows DESC")
    return sql.replace("now()", "NOW()")


def _bind(sql: str, params: list[str]) -> str:
    return _DOLLAR.sub(lambda m: quote(params[int(m.group(1)) - 1]), sql)


@dataclass
class GeneralLogFile:
    """One logical file: its spec (db.py's names), the records and the heartbeat times in it."""

    spec: DbFile
    lines: list[str] = field(default_factory=list)
    first: int | None = None
    last: int | None = None
    records: int = 0
    heartbeats: list[int] = field(default_factory=list)

    def data(self) -> bytes:
        return (BANNER + "".join(self.lines)).encode("utf-8")


class _Writer:
    def __init__(self):
        self.conn = 41          # connection ids since the server started
        self.last_stamp = None
        self.file: GeneralLogFile | None = None

    def record(self, t: int, conn: int, command: str, argument: str) -> None:
        f = self.file
        if t != self.last_stamp:
            lt = local(t)
            stamp = f"{lt.tm_year % 100:02d}{lt.tm_mon:02d}{lt.tm_mday:02d} {lt.tm_hour:2d}:{lt.tm_min:02d}:{lt.tm_sec:02d}"
            self.last_stamp = t
        else:
            stamp = "\t"
        f.lines.append(f"{stamp}\t{conn:6d} {command}\t{argument}\n")
        f.records += 1
        f.first = t if f.first is None else f.first
        f.last = t

    def session(self, t: int, who: str, statements: list[tuple[int, str]], denied: str | None = None) -> int:
        self.conn += 1
        c = self.conn
        self.record(t, c, "Connect", who)
        if denied is not None:
            self.record(t, c, "Connect", denied)
            return c
        end = t
        for ts, sql in statements:
            self.record(ts, c, "Query", sql)
            end = ts
        self.record(end, c, "Quit", "")
        return c


def _app_statements(rng: random.Random, date: str) -> list[str]:
    """The statements of one application request (db.py's shapes, parameters bound by PDO)."""
    u = rng.random
    vid = 800 + int(u() * 1600)
    cid = 1 + int(u() * 48000)
    r = u()
    if r < 0.80:
        tpl = db.APP_TEMPLATES[int(u() * len(db.APP_TEMPLATES))]
        return [to_mysql(tpl.format(cid=cid, vid=vid, n=1 + int(u() * 6), route=db.ROUTES[cid % len(db.ROUTES)],
                                    date=date, email=f"user{cid}@mail{cid % 7}.example.jp",
                                    cls=db.CLASSES[vid % len(db.CLASSES)], kana=db.KANA[cid % len(db.KANA)]))]
    if r < 0.84:
        return [db.MULTILINE_TEMPLATE.format(vid=vid)]
    if r < 0.985:
        sql, n = db.PREPARED[cid & 1]
        return [_bind(sql, [str(vid)] if n == 1 else [str(cid), "confirmed"])]
    first = 100000 + int(u() * 800000)
    ids = ", ".join(map(str, range(first, first + 7 * (120 + int(u() * 210)), 7)))
    return [db.LONG_TEMPLATE.format(ids=ids)]


_ADMIN = (
    ("root", None),
    ("root", ["SELECT * FROM users"]),
    ("root", ["SELECT * FROM voyage LIMIT 10"]),
    ("report", ["SELECT count(*) FROM customers"]),
    ("report", ["SELECT route_code, DATE_FORMAT(created_at, '%Y-%m') AS m, count(*) FROM reservations "
                "GROUP BY 1, 2 ORDER BY 1, 2"]),
)


class MariaDbLog:
    """Iterating yields db01's general log files of the period that survive, oldest first.

    After the iteration ``sqli_payloads`` lists the injection payloads that reached the log and
    ``exfil_written`` the theft's records.
    """

    def __init__(self, plan: Plan, exfil=None):
        self.plan = plan
        self.exfil = exfil
        self.sqli_payloads: list[str] = []
        self.exfil_written: list[dict] = []

    def __iter__(self) -> Iterator[GeneralLogFile]:
        plan = self.plan
        rng = random.Random(f"{plan.seed}:mariadb")
        w = _Writer()
        hb = plan.heartbeats()
        start, end = plan.period
        files = list(plan.db_files)
        fi = 0
        w.file = GeneralLogFile(files[0])
        sqli_by_hour: dict[int, list] = {}
        for p in sqli.requests(plan.seed):
            if p.payload is not None and start <= p.time <= end:
                sqli_by_hour.setdefault(p.time - p.time % 3600, []).append(p)
        exfil_by_hour: dict[int, list] = {}
        for st in (self.exfil.statements if self.exfil is not None else ()):
            exfil_by_hour.setdefault(st.t - st.t % 3600, []).append(st)
        admin_next = start + rng.randint(6 * 3600, 4 * 86400)
        k = 0
        hour = start - start % 3600
        while hour <= end:
            h_end = hour + 3600
            events: list[tuple] = []       # (time, order, kind, payload)
            while k <= hb.last_index and hb.time(k) < h_end:
                events.append((hb.time(k), len(events), "hb", None))
                k += 1
            lt = local(hour)
            date = f"{lt.tm_year:04d}-{lt.tm_mon:02d}-{lt.tm_mday:02d}"
            weekend = 1.15 if lt.tm_wday >= 5 else 0.94
            lam = (APP_RECORDS_PER_DAY * db._HOURLY[lt.tm_hour] / db._HOURLY_SUM * weekend
                   / db._MSGS_PER_SESSION)
            n_sessions = int(lam) + (rng.random() < lam - int(lam))
            for _ in range(n_sessions):
                t0 = hour + int(rng.random() * 3600)
                x = rng.random()
                count = 1 if x < 0.85 else (2 if x < 0.97 else 3)
                stmts = []
                for _j in range(count):
                    for sql in _app_statements(rng, date):
                        stmts.append((min(t0, h_end - 1), sql))
                    t0 += 3 + int(rng.random() * 10)
                events.append((stmts[0][0], len(events), "app", stmts))
            if lt.tm_hour == 2:    # nightly mysqldump over the Unix socket
                t0 = hour + 30 * 60 + rng.randint(0, 40)
                stmts = [(t0 + 4 + j * 9, f"SELECT /*!40001 SQL_NO_CACHE */ * FROM `{table}`")
                         for j, (table, _cols) in enumerate(db.DUMP_TABLES)]
                events.append((t0, len(events), "dump", stmts))
            if admin_next < h_end and 9 <= lt.tm_hour <= 19:
                events.append((admin_next, len(events), "admin", _ADMIN[rng.randrange(len(_ADMIN))]))
                admin_next += rng.randint(2 * 86400, 6 * 86400)
            elif admin_next < h_end:
                admin_next += 12 * 3600
            for p in sqli_by_hour.get(hour, ()):
                events.append((p.time, len(events), "sqli", p.payload))
            for st in exfil_by_hour.get(hour, ()):
                # logged when it starts: the duration PostgreSQL logged at the end, taken off
                t0 = st.t - int((st.duration_ms or 0) / 1000)
                events.append((t0, len(events), "exfil", st))
            events.sort(key=lambda e: (e[0], e[1]))
            for t, _o, kind, payload in events:
                if t < start or t > end:
                    continue
                while files[fi].rotation is not None and t > files[fi].rotation:
                    yield w.file
                    fi += 1
                    w.file = GeneralLogFile(files[fi])
                    w.last_stamp = None      # a reopened log writes the time on its first record
                if kind == "hb":
                    w.session(t, HEALTHCHECK, [])
                    w.file.heartbeats.append(t)
                elif kind in ("app", "dump"):
                    who = (f"{APP_USER}@{actors.WEB01} on {APP_DB} using TCP/IP" if kind == "app"
                           else "root@localhost on  using Socket")
                    w.session(t, who, [(max(ts, t), s) for ts, s in payload])
                elif kind == "admin":
                    user, stmts = payload
                    who = f"{user}@{actors.DBA_HOST} on {APP_DB} using TCP/IP"
                    if stmts is None:
                        w.session(t, who, [], denied=f"Access denied for user '{user}'@'{actors.DBA_HOST}' "
                                                     "(using password: YES)")
                    else:
                        w.session(t, who, [(t + 1 + i, s) for i, s in enumerate(stmts)])
                elif kind == "sqli":
                    self.sqli_payloads.append(payload)
                    w.session(t, f"{APP_USER}@{actors.WEB01} on {APP_DB} using TCP/IP",
                              [(t, _bind(sqli.STATEMENT, [payload]))])
                else:   # the theft: the mysql client run through the web shell
                    sql = to_mysql(payload.statement)
                    first = len(w.file.lines)
                    c = w.session(t, f"{APP_USER}@{actors.WEB01} on {APP_DB} using TCP/IP",
                                  [(t, MYSQL_CLIENT_PROBE), (t, sql)])
                    self.exfil_written.append({"t": t, "pid": c, "file": w.file.spec.name,
                                               "statement": sql,
                                               "lines": "".join(w.file.lines[first:]).splitlines()})
            hour = h_end
        yield w.file
