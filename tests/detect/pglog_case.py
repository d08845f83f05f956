"""Small database-server cases for the database detectors and the exfiltration assessment: db01's
/var/log/messages as PostgreSQL 9.x writes it through syslog (log_line_prefix
'DATABASE=%d,USER=%u,CLIENT=%r,', messages cut into ``[seq-chunk]`` lines the way elog.c does,
rsyslog's #011 for tabs), ingested into a case with ``logsalvage.ingest``."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from logsalvage.config import parse_config
from logsalvage.demo import pgsyslog
from logsalvage.detect.context import Context, Settings
from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

JST = timezone(timedelta(hours=9))
START = datetime(2017, 12, 1, 0, 0, 0, tzinfo=JST)
DAY = 86400
APP = "192.168.10.11"
DBA = "192.168.10.50"
CONFIG = parse_config({"acquired": "2018-01-06T15:00:00+09:00",
                       "hosts": {"db01": {"timezone": "Asia/Tokyo"}},
                       "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"}}, "test")

APP_STATEMENTS = (
    "SELECT r.reservation_id, r.status FROM reservations r WHERE r.customer_id = {n}",
    "UPDATE voyages SET seats_left = seats_left - 1 WHERE voyage_id = {n}",
    "SELECT c.customer_id, c.name, c.tel FROM customers c WHERE c.email = 'user{n}@example.jp'",
    # several chunk lines, a tab escaped by rsyslog
    ("SELECT r.reservation_id, r.passengers,\n\tc.name, c.tel\n FROM reservations r\n JOIN customers c ON "
     "c.customer_id = r.customer_id\n WHERE r.voyage_id = {n}"),
)
PREPARED = "SELECT v.voyage_id, v.route_code, v.departs_at, v.seats_left FROM voyages v WHERE v.voyage_id = $1"


def when(t: int) -> datetime:
    return START + timedelta(seconds=t)


def stamp(t: int) -> str:
    w = when(t)
    return f"{w:%b} {w.day:2d} {w:%H:%M:%S}"


@dataclass
class PgLog:
    """db01's syslog records; ``t`` is seconds after START (JST)."""

    records: list[tuple[int, int, bytes]] = field(default_factory=list)
    pid: int = 3000
    port: int = 40000

    def _next(self) -> tuple[int, int]:
        self.pid += 1
        self.port += 1
        return self.pid, self.port

    def heartbeat(self, t: int) -> None:
        pid, port = self._next()
        self.records.append((t, len(self.records), (
            f"{stamp(t)} db01 postgres[{pid}]: [3-1] DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1({port}),"
            f"LOG:  incomplete startup packet\n").encode()))

    def message(self, t: int, parts: list[tuple[str, str]], *, user: str = "webapp", client: str = APP,
                db: str = "ferry", pid: int | None = None, seq: int = 3) -> int:
        """One PostgreSQL message (its parts: ('LOG', 'duration: …'), ('STATEMENT', …)); the backend pid."""
        if pid is None:
            pid, port = self._next()
        else:
            port = 50000 + pid % 1000
        remote = client if client == "[local]" else f"{client}({port})"
        prefix = f"DATABASE={db},USER={user},CLIENT={remote},"
        lines = [f"{stamp(t)} db01 postgres[{pid}]: [{seq}-{i}] ".encode() + pgsyslog.rsyslog_escape(chunk) + b"\n"
                 for i, chunk in enumerate(pgsyslog.chunks(pgsyslog.message(prefix, parts)), 1)]
        self.records.append((t, len(self.records), b"".join(lines)))
        return pid

    def statement(self, t: int, sql: str, ms: float = 3200.5, **kw) -> int:
        return self.message(t, [("LOG", f"duration: {ms:.3f} ms  statement: {sql}")], **kw)

    def error(self, t: int, text: str, sql: str | None = None, level: str = "ERROR", **kw) -> int:
        parts = [(level, text)] + ([("STATEMENT", sql)] if sql else [])
        return self.message(t, parts, **kw)

    def system(self, t: int, text: str) -> None:
        self.records.append((t, len(self.records), f"{stamp(t)} db01 {text}\n".encode()))

    def write(self, path: Path, until: int | None = None) -> Path:
        """The records (those before ``until`` seconds), in time order."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(r for t, _, r in sorted(self.records) if until is None or t < until))
        return path


def normal_days(days: int, *, seed: int = 7, hole: tuple[int, int] | None = None, dump: bool = True,
                dba: bool = True, app_per_hour: int = 3) -> PgLog:
    """``days`` of ordinary life: the 30-s health check, the application's slow statements from
    web01, the nightly pg_dump over the Unix socket at 02:30, the DBA's occasional mistakes."""
    rng = random.Random(seed)
    log = PgLog()
    inside = (lambda t: hole is not None and hole[0] < t < hole[1])
    for t in range(0, days * DAY, 30):
        if not inside(t):
            log.heartbeat(t)
    for hour in range(days * 24):
        for _ in range(app_per_hour):
            t = hour * 3600 + rng.randint(1, 3599)
            if inside(t):
                continue
            n = rng.randint(1, 50000)
            if rng.random() < 0.25:
                log.message(t, [("LOG", f"duration: {rng.uniform(3000, 9000):.3f} ms  execute <unnamed>: {PREPARED}"),
                                ("DETAIL", f"parameters: $1 = '{n}'")])
            else:
                log.statement(t, rng.choice(APP_STATEMENTS).format(n=n), rng.uniform(3000, 9000))
    for day in range(days):
        t = day * DAY + 2 * 3600 + 30 * 60 + rng.randint(0, 40)
        if dump and not inside(t):
            pid = log.statement(t, "COPY public.customers (customer_id, name, email, tel) TO stdout;",
                                rng.uniform(4000, 9000), user="postgres", client="[local]")
            log.statement(t + 9, "COPY public.reservations (reservation_id, customer_id, status) TO stdout;",
                          rng.uniform(4000, 9000), user="postgres", client="[local]", pid=pid, seq=4)
        if dba and day % 2 == 1 and not inside(day * DAY + 11 * 3600):
            log.error(day * DAY + 11 * 3600, 'relation "voyage" does not exist at character 15',
                      "SELECT * FROM voyage LIMIT 10;", user="postgres", client=DBA)
        log.system(day * DAY + 600, "systemd: Started Session 1 of user root.")
    return log


def build(tmp: Path, log: PgLog, settings: Settings | None = None, *, name: str = "case",
          backup_until: int | None = None) -> Context:
    """Write the log as db01's messages file, ingest it into a new case, open it. With
    ``backup_until``, the records before that time are also in a backup copy (a second source)."""
    path = log.write(tmp / f"{name}-evidence" / "db01" / "var" / "log" / "messages")
    case = tmp / name
    ingest([path], case, host="db01", kind="live", config=CONFIG)
    if backup_until is not None:
        old = log.write(tmp / f"{name}-backup" / "db01" / "messages-20171203", until=backup_until)
        ingest([old], case, host="db01", kind="backup", config=CONFIG)
    return Context(CaseStore(case), settings or Settings())


def rules(found) -> dict:
    """rule -> list of findings (milestones under their kind)."""
    out: dict = {}
    for f in found:
        out.setdefault(getattr(f, "rule", None) or f"milestone:{f.kind}", []).append(f)
    return out
