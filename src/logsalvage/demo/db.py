"""db01's /var/log/messages over the DB period, streamed one weekly file at a time.

The files are produced in time order; each is complete (its bytes and a table of its physical
lines) before the next one starts, so memory stays bounded by one week of records.

Record kinds in the table: ``HB`` the 30-s health check (``incomplete startup packet``),
``PG`` any other PostgreSQL message (one record, one or more chunk lines), ``SYS`` any other
syslog line (systemd, chronyd, kernel, the rsyslogd HUP at each rotation).
"""

from __future__ import annotations

import random
from array import array
from dataclasses import dataclass, field
from typing import Iterator

from . import actors, pgsyslog, sqli
from .stamps import SyslogStamper, local
from .timeline import APP_RECORDS_PER_DAY, DbFile, Plan

HB, PG, SYS = 1, 2, 3
HOST = "db01"
PG_SEQ_BASE = 2          # messages the postmaster logged before forking (children inherit seq)
HUP = ('rsyslogd: [origin software="rsyslogd" swVersion="8.24.0" x-pid="1020" '
       'x-info="http://www.rsyslog.com"] rsyslogd was HUPed')
HB_TEXT = "LOG:  incomplete startup packet"
PID_MIN, PID_MAX = 300, 32768                # RHEL 7 default pid_max
PORT_MIN, PORT_MAX = 32768, 60999            # net.ipv4.ip_local_port_range

# relative app load per local hour (reservations happen in the daytime)
_HOURLY = (0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.40, 0.80, 1.20, 1.50, 1.60, 1.60,
           1.70, 1.60, 1.50, 1.50, 1.40, 1.40, 1.50, 1.60, 1.60, 1.40, 1.00, 0.60)
_HOURLY_SUM = sum(_HOURLY)
_MSGS_PER_SESSION = 1.18

ROUTES = ("KGS-AMM", "AMM-KGS", "KGS-NAZ", "NAZ-KGS", "FKO-KGS", "KGS-FKO", "AMM-NAZ")
KANA = ("ヤマダ", "タナカ", "サトウ", "スズキ", "タカハシ", "イトウ", "ワタナベ", "ナカムラ", "コバヤシ", "カトウ")
CLASSES = ("2nd", "2nd-B", "1st", "special")

# the application's query shapes (literals replaced by placeholders), for the assessor's tests
APP_TEMPLATES = (
    "SELECT r.reservation_id, r.voyage_id, r.seat_class, r.passengers, r.status, r.created_at "
    "FROM reservations r WHERE r.customer_id = {cid} ORDER BY r.created_at DESC",
    "SELECT v.voyage_id, v.route_code, v.departs_at, v.arrives_at, v.seats_left FROM voyages v "
    "WHERE v.route_code = '{route}' AND v.departs_at >= '{date}' ORDER BY v.departs_at LIMIT 20",
    "SELECT count(*) FROM reservations WHERE voyage_id = {vid} AND status <> 'cancelled'",
    "SELECT c.customer_id, c.name, c.name_kana, c.tel FROM customers c WHERE c.email = '{email}'",
    "UPDATE voyages SET seats_left = seats_left - {n} WHERE voyage_id = {vid}",
    "INSERT INTO reservations (customer_id, voyage_id, seat_class, passengers, status, created_at) "
    "VALUES ({cid}, {vid}, '{cls}', {n}, 'confirmed', now())",
    "SELECT v.voyage_id, v.departs_at, f.seat_class, f.fare FROM voyages v JOIN fares f ON "
    "f.route_code = v.route_code WHERE v.voyage_id = {vid}",
    "SELECT customer_id, name, tel FROM customers WHERE name_kana LIKE '{kana}%' ORDER BY name_kana LIMIT 50",
)
MULTILINE_TEMPLATE = ("SELECT r.reservation_id, r.passengers, r.status,\n\tc.name, c.tel\n"
                      " FROM reservations r\n JOIN customers c ON c.customer_id = r.customer_id\n"
                      " WHERE r.voyage_id = {vid}\n\tAND r.status = 'confirmed'\n ORDER BY c.name_kana")
PREPARED = (
    ("SELECT v.voyage_id, v.departs_at, v.route_code FROM voyages v WHERE v.voyage_id = $1", 1),
    ("SELECT r.reservation_id, r.status FROM reservations r WHERE r.customer_id = $1 AND r.status = $2", 2),
)
LONG_TEMPLATE = ("SELECT r.reservation_id, r.voyage_id, r.status FROM reservations r "
                 "WHERE r.reservation_id IN ({ids}) ORDER BY r.reservation_id")
DUMP_TABLES = (
    ("customers", "customer_id, name, name_kana, email, tel, address, created_at"),
    ("reservations", "reservation_id, customer_id, voyage_id, seat_class, passengers, status, created_at"),
)


@dataclass
class DbFileData:
    """One logical file: its bytes, where each physical line starts, and its records.

    A record's lines are consecutive: record i spans lines rec_first[i] .. rec_first[i+1]-1.
    """

    spec: DbFile
    first_record: int = 0                 # global number of this file's first record
    data: bytearray = field(default_factory=bytearray)
    line_off: array = field(default_factory=lambda: array("q"))
    rec_first: array = field(default_factory=lambda: array("q"))
    rec_time: array = field(default_factory=lambda: array("q"))
    rec_kind: array = field(default_factory=lambda: array("b"))

    def add(self, t: int, kind: int, line: bytes) -> None:
        self.rec_first.append(len(self.line_off))
        self.rec_time.append(t)
        self.rec_kind.append(kind)
        self.line_off.append(len(self.data))
        self.data += line

    def add_lines(self, t: int, kind: int, lines: list[bytes]) -> None:
        self.rec_first.append(len(self.line_off))
        self.rec_time.append(t)
        self.rec_kind.append(kind)
        for line in lines:
            self.line_off.append(len(self.data))
            self.data += line

    @property
    def n_lines(self) -> int:
        return len(self.line_off)

    @property
    def n_records(self) -> int:
        return len(self.rec_first)

    def lines(self):
        """(line_no from 1, offset, length, time, kind, record index) for every line."""
        offs = self.line_off
        ends = list(offs[1:]) + [len(self.data)]
        firsts = list(self.rec_first) + [len(offs)]
        times, kinds = self.rec_time, self.rec_kind
        for r in range(len(self.rec_first)):
            t, k = times[r], kinds[r]
            for i in range(firsts[r], firsts[r + 1]):
                yield i + 1, offs[i], ends[i] - offs[i], t, k, r


class _Backend:
    __slots__ = ("pid", "seq", "port")

    def __init__(self, pid: int, port: int):
        self.pid = pid
        self.seq = PG_SEQ_BASE
        self.port = port


class DbLogWriter:
    """Formats events into syslog lines, assigning pids, ports and sequence numbers in order."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.u = rng.random
        self.stamp = SyslogStamper()
        self.pid = 11324 - 7
        self.port = 46118 - 3
        self.session_no = 1917
        self.file: DbFileData | None = None

    def next_pid(self, extra: int = 0) -> int:
        self.pid += 1 + extra + (self.u() < 0.35)
        if self.pid >= PID_MAX:
            self.pid = PID_MIN + (self.pid - PID_MAX)
        return self.pid

    def next_port(self) -> int:
        self.port += 1 + int(self.u() * 6)
        if self.port > PORT_MAX:
            self.port = PORT_MIN + (self.port - PORT_MAX)
        return self.port

    def heartbeat(self, t: int) -> None:
        pid = self.next_pid()
        port = self.next_port()
        self.file.add(t, HB, (f"{self.stamp(t)} {HOST} postgres[{pid}]: [{PG_SEQ_BASE + 1}-1] DATABASE=[unknown],"
                              f"USER=[unknown],CLIENT=127.0.0.1({port}),{HB_TEXT}\n").encode())

    def system(self, t: int, text: str) -> None:
        self.file.add(t, SYS, f"{self.stamp(t)} {HOST} {text}\n".encode("utf-8"))

    def postgres(self, t: int, backend: _Backend, db: str, user: str, client: str,
                 parts: list[tuple[str, str]]) -> None:
        backend.seq += 1
        prefix = f"DATABASE={db},USER={user},CLIENT={client},"
        head = f"{self.stamp(t)} {HOST} postgres[{backend.pid}]: [{backend.seq}-"
        head = head.encode()
        esc = pgsyslog.rsyslog_escape
        if len(parts) == 1:    # the common case: one part that fits one syslog line
            level, text = parts[0]
            msg = f"{prefix}{level}:  {text}".encode()
            if len(msg) <= pgsyslog.PG_SYSLOG_LIMIT and b"\n" not in msg:
                self.file.add(t, PG, head + b"1] " + esc(msg) + b"\n")
                return
        self.file.add_lines(t, PG, [head + b"%d] " % i + esc(chunk) + b"\n" for i, chunk in
                                    enumerate(pgsyslog.chunks(pgsyslog.message(prefix, parts)), 1)])


def _app_parts(rng: random.Random, date: str) -> list[tuple[str, str]]:
    """One slow statement (or, rarely, an ordinary application error)."""
    u = rng.random
    vid = 800 + int(u() * 1600)
    cid = 1 + int(u() * 48000)
    ms = 3000 + rng.expovariate(1 / 2200)
    dur = f"duration: {ms:.3f} ms  "
    r = u()
    if r < 0.0045:
        return _app_error(rng, vid, cid)
    if r < 0.80:
        tpl = APP_TEMPLATES[int(u() * len(APP_TEMPLATES))]
        sql = tpl.format(cid=cid, vid=vid, n=1 + int(u() * 6), route=ROUTES[cid % len(ROUTES)],
                         date=date,
                         email=f"user{cid}@mail{cid % 7}.example.jp", cls=CLASSES[vid % len(CLASSES)],
                         kana=KANA[cid % len(KANA)])
        return [("LOG", dur + "statement: " + sql)]
    if r < 0.84:
        return [("LOG", dur + "statement: " + MULTILINE_TEMPLATE.format(vid=vid))]
    if r < 0.985:
        sql, n = PREPARED[cid & 1]
        name = "<unnamed>" if vid & 1 else f"pdo_stmt_{1 + cid % 40:08x}"
        params = f"$1 = '{vid}'" if n == 1 else f"$1 = '{cid}', $2 = 'confirmed'"
        return [("LOG", dur + f"execute {name}: " + sql), ("DETAIL", "parameters: " + params)]
    first = 100000 + int(u() * 800000)
    ids = ", ".join(map(str, range(first, first + 7 * (120 + int(u() * 210)), 7)))
    return [("LOG", dur + "statement: " + LONG_TEMPLATE.format(ids=ids))]


def _app_error(rng: random.Random, vid: int, cid: int) -> list[tuple[str, str]]:
    k = rng.randrange(4)
    if k == 0:
        seat = rng.randint(1, 400)
        return [("ERROR", 'duplicate key value violates unique constraint "reservations_voyage_seat_key"'),
                ("DETAIL", f"Key (voyage_id, seat_no)=({vid}, {seat}) already exists."),
                ("STATEMENT", "INSERT INTO reservations (customer_id, voyage_id, seat_no, status, created_at) "
                              f"VALUES ({cid}, {vid}, {seat}, 'confirmed', now())")]
    if k == 1:
        return [("ERROR", "canceling statement due to statement timeout"),
                ("STATEMENT", MULTILINE_TEMPLATE.format(vid=vid))]
    if k == 2:
        p1, p2 = rng.randint(2000, 32000), rng.randint(2000, 32000)
        x1 = rng.randint(5_000_000, 9_000_000)
        return [("ERROR", "deadlock detected"),
                ("DETAIL", f"Process {p1} waits for ShareLock on transaction {x1}; blocked by process {p2}.\n"
                           f"Process {p2} waits for ShareLock on transaction {x1 - 3}; blocked by process {p1}."),
                ("HINT", "See server log for query details."),
                ("STATEMENT", f"UPDATE voyages SET seats_left = seats_left - 1 WHERE voyage_id = {vid}")]
    return [("ERROR", "value too long for type character varying(20)"),
            ("STATEMENT", "UPDATE customers SET tel = $1 WHERE customer_id = $2")]


def _admin_parts(rng: random.Random) -> tuple[str, str, list[tuple[str, str]]]:
    """The DBA's ordinary mistakes and reports from the internal workstation."""
    k = rng.randrange(5)
    if k == 0:
        return "ferry", "postgres", [
            ("FATAL", 'password authentication failed for user "postgres"'),
            ("DETAIL", 'Connection matched pg_hba.conf line 92: "host    all    all    192.168.10.0/24    md5"')]
    if k == 1:
        return "ferry", "postgres", [("ERROR", 'relation "users" does not exist at character 15'),
                                     ("STATEMENT", "SELECT * FROM users;")]
    if k == 2:
        return "ferry", "postgres", [("ERROR", 'relation "voyage" does not exist at character 15'),
                                     ("STATEMENT", "SELECT * FROM voyage LIMIT 10;")]
    if k == 3:
        return "ferry", "report", [("ERROR", "permission denied for relation customers"),
                                   ("STATEMENT", "SELECT count(*) FROM customers;")]
    ms = 3000 + rng.expovariate(1 / 4000)
    return "ferry", "report", [("LOG", f"duration: {ms:.3f} ms  statement: SELECT route_code, "
                                       "date_trunc('month', created_at) AS m, count(*) FROM reservations "
                                       "GROUP BY 1, 2 ORDER BY 1, 2;")]


class DbLog:
    """Iterating yields db01's messages files of the period, oldest first, each complete.

    After the iteration ``sqli_payloads`` lists the injection payloads that reached the log.
    """

    def __init__(self, plan: Plan, exfil=None):
        self.plan = plan
        self.exfil = exfil                     # an exfil.ExfilPlan, or None
        self.sqli_payloads: list[str] = []
        self.exfil_written: list[dict] = []

    def __iter__(self) -> Iterator[DbFileData]:
        return _generate(self.plan, self.sqli_payloads, self.exfil, self.exfil_written)


def _generate(plan: Plan, sqli_payloads: list[str], exfil=None, exfil_written=None) -> Iterator[DbFileData]:
    rng = random.Random(f"{plan.seed}:db")
    w = DbLogWriter(rng)
    hb = plan.heartbeats()
    start, end = plan.period
    hole_start = plan.hole[0]
    files = list(plan.db_files)
    rotations = {f.rotation: i for i, f in enumerate(files) if f.rotation is not None}
    # between a rotation and the next file's first health check nothing else is logged, so
    # each file starts with a heartbeat (exactly at the anchored starts of preserved files)
    quiet = [(f.rotation, hb.time(hb.first_after(f.rotation))) for f in files if f.rotation is not None]
    quiet.append((end + 1, end + 2))
    qi = 0
    fi = 0
    w.file = DbFileData(files[0])
    sqli_by_hour: dict[int, list] = {}
    for p in sqli.requests(plan.seed):
        if p.payload is not None and start <= p.time <= end:
            sqli_by_hour.setdefault(p.time - p.time % 3600, []).append(p)
    exfil_by_hour: dict[int, list] = {}
    for st in (exfil.statements if exfil is not None else ()):
        exfil_by_hour.setdefault(st.t - st.t % 3600, []).append(st)
    k = 0
    n = 0
    hour = start - start % 3600
    backends: dict[int, _Backend] = {}
    chrony_next = start + rng.randint(3600, 30 * 3600)
    admin_next = start + rng.randint(6 * 3600, 4 * 86400)
    while hour <= end:
        h_end = hour + 3600
        events: list[tuple] = []
        while k <= hb.last_index:
            t = hb.time(k)
            if t >= h_end:
                break
            events.append((t, 0, n, HB, None))
            n += 1
            k += 1
        lt = local(hour)
        date = f"{lt.tm_year:04d}-{lt.tm_mon:02d}-{lt.tm_mday:02d}"
        # cron-started root sessions: sysstat every 10 min, hourly run-parts, daily sa2
        minutes = [1, 10, 20, 30, 40, 50] + ([53] if lt.tm_hour == 23 else [])
        for m in minutes:
            events.append((hour + m * 60 + 1, 1, n, SYS, "session"))
            n += 1
        if chrony_next < h_end:
            events.append((chrony_next, 1, n, SYS, "chrony"))
            n += 1
            chrony_next += rng.randint(8 * 3600, 40 * 3600)
        # application sessions from web01
        weekend = 1.15 if lt.tm_wday >= 5 else 0.94
        lam = APP_RECORDS_PER_DAY * _HOURLY[lt.tm_hour] / _HOURLY_SUM * weekend / _MSGS_PER_SESSION
        n_sessions = int(lam) + (rng.random() < lam - int(lam))
        u = rng.random
        for _ in range(n_sessions):
            t0 = hour + int(u() * 3600)
            sid = n
            x = u()
            count = 1 if x < 0.85 else (2 if x < 0.97 else 3)
            for j in range(count):
                events.append((min(t0, h_end - 1), 1, n, PG, ("app", sid, j == count - 1)))
                n += 1
                t0 += 3 + int(u() * 10)
        if lt.tm_hour == 2:   # nightly pg_dump over the Unix socket
            t0 = hour + 30 * 60 + rng.randint(0, 40)
            for j, (table, cols) in enumerate(DUMP_TABLES):
                events.append((t0 + 4 + j * 9 + rng.randint(0, 3), 1, n, PG,
                               ("dump", -1, j == len(DUMP_TABLES) - 1, table, cols)))
                n += 1
        if admin_next < h_end and 9 <= lt.tm_hour <= 19:
            events.append((admin_next, 1, n, PG, ("admin", n, True)))
            n += 1
            admin_next += rng.randint(2 * 86400, 6 * 86400)
        elif admin_next < h_end:
            admin_next += 12 * 3600
        for p in sqli_by_hour.get(hour, ()):
            events.append((p.time, 1, n, PG, ("sqli", n, True, p.payload)))
            n += 1
        for st in exfil_by_hour.get(hour, ()):
            events.append((st.t, 1, n, PG, ("exfil", n, True, st)))
            n += 1
        for r in rotations:
            if hour <= r < h_end:
                events.append((r, 9, n, SYS, "hup"))
                n += 1
        events.sort()

        for t, _prio, _n, kind, payload in events:
            if t < start or t > end:
                continue
            if kind == HB:
                w.heartbeat(t)
                continue
            while quiet[qi][1] <= t:
                qi += 1
            if payload != "hup" and (t == hole_start or quiet[qi][0] < t):
                if kind == PG and payload[2]:
                    backends.pop(payload[1], None)
                continue
            if kind == SYS:
                if payload == "session":
                    w.session_no += 1
                    w.next_pid(extra=6)
                    w.system(t, f"systemd: Started Session {w.session_no} of user root.")
                    w.system(t, f"systemd: Starting Session {w.session_no} of user root.")
                elif payload == "chrony":
                    x = rng.random()
                    if x < 0.7:
                        w.system(t, f"chronyd[645]: Selected source 192.168.10.{1 + (x < 0.35)}")
                    elif x < 0.9:
                        w.system(t, f"kernel: perf: interrupt took too long ({2501 + int(x * 90)} > 2500), "
                                    f"lowering kernel.perf_event_max_sample_rate to {79000 - int(x * 9) * 1000}")
                    else:
                        w.system(t, "kernel: TCP: request_sock_TCP: Possible SYN flooding on port 5432. "
                                    "Sending cookies.  Check SNMP counters.")
                else:   # rotation: the last line of the old file; the new file starts
                    w.system(t, HUP)
                    yield w.file
                    fi += 1
                    w.file = DbFileData(files[fi], w.file.first_record + w.file.n_records)
                continue
            what = payload[0]
            if what == "app":
                sid, last = payload[1], payload[2]
                be = backends.get(sid)
                if be is None:
                    be = backends[sid] = _Backend(w.next_pid(), 40000 + int(rng.random() * 21000))
                if last:
                    del backends[sid]
                w.postgres(t, be, "ferry", "webapp", f"{actors.WEB01}({be.port})", _app_parts(rng, date))
            elif what == "dump":
                be = backends.get(-1)
                if be is None:
                    be = backends[-1] = _Backend(w.next_pid(), 0)
                if payload[2]:
                    del backends[-1]
                table, cols = payload[3], payload[4]
                ms = 3200 + rng.random() * 9000
                w.postgres(t, be, "ferry", "postgres", "[local]",
                           [("LOG", f"duration: {ms:.3f} ms  statement: COPY public.{table} ({cols}) TO stdout;")])
            elif what == "admin":
                db, user, parts = _admin_parts(rng)
                be = _Backend(w.next_pid(), rng.randint(49152, 65535))
                w.postgres(t, be, db, user, f"{actors.DBA_HOST}({be.port})", parts)
            elif what == "sqli":
                payload = payload[3]
                be = _Backend(w.next_pid(), rng.randint(40000, 60999))
                sqli_payloads.append(payload)
                w.postgres(t, be, "ferry", "webapp", f"{actors.WEB01}({be.port})",
                           [("ERROR", f'invalid input syntax for integer: "{payload}"'),
                            ("STATEMENT", sqli.STATEMENT)])
            elif what == "exfil":
                # psql from web01: a new backend; its pid is taken without drawing from the
                # stream, so the rest of the log is as without the theft, only its later pids
                # are one higher per psql run
                st = payload[3]
                w.pid = w.pid + 1 if w.pid + 1 < PID_MAX else PID_MIN
                be = _Backend(w.pid, st.port)
                first_line = w.file.n_lines
                w.postgres(t, be, "ferry", "webapp", f"{actors.WEB01}({be.port})", list(st.parts))
                lines = bytes(w.file.data[w.file.line_off[first_line]:]).decode("utf-8").splitlines()
                exfil_written.append({"t": t, "pid": be.pid, "file": w.file.spec.name, "lines": lines})
        hour = h_end
    yield w.file
