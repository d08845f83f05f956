"""Small database-server logs for continuity tests: a PostgreSQL heartbeat every 30 s, slow
queries (some of two chunk lines), cron session lines, written as syslog files of any kind."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from logsalvage.config import parse_config
from logsalvage.ingest import ingest

JST = timezone(timedelta(hours=9))
START = datetime(2017, 12, 1, 0, 0, 0, tzinfo=JST)
CONFIG = parse_config({"acquired": "2018-01-06T15:00:00+09:00",
                       "hosts": {"db01": {"timezone": "Asia/Tokyo"}},
                       "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"}}, "test")


@dataclass(frozen=True)
class Record:
    t: int  # seconds after START
    lines: tuple[str, ...]
    heartbeat: bool = False

    @property
    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def stamp(t: int) -> str:
    when = START + timedelta(seconds=t)
    return f"{when:%b} {when.day:2d} {when:%H:%M:%S}"


def records(seconds: int, seed: int = 1, *, hole: tuple[int, int] | None = None) -> list[Record]:
    """Records over ``seconds`` seconds: a heartbeat every 30 s (none inside ``hole``), queries,
    and systemd session lines (twice the same text in one second now and then)."""
    rng = random.Random(seed)
    out: list[Record] = []
    pid = 2000
    for t in range(0, seconds, 30):
        if hole and hole[0] < t < hole[1]:
            continue
        pid += 1
        out.append(Record(t, (f"{stamp(t)} db01 postgres[{pid}]: [3-1] DATABASE=[unknown],USER=[unknown],"
                              f"CLIENT=127.0.0.1({40000 + pid % 20000}),LOG:  incomplete startup packet",), True))
        for _ in range(rng.randint(0, 3)):
            q = t + rng.randint(1, 29)
            if hole and hole[0] < q < hole[1]:
                continue
            pid += 1
            head = f"{stamp(q)} db01 postgres[{pid}]: "
            prefix = f"DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11({30000 + pid % 30000}),"
            if rng.random() < 0.3:
                out.append(Record(q, (f"{head}[3-1] {prefix}LOG:  duration: {rng.randint(3000, 9000)}.5 ms  "
                                      f"execute <unnamed>: SELECT * FROM voyages WHERE voyage_id = $1",
                                      f"{head}[3-2] {prefix}DETAIL:  parameters: $1 = '{rng.randint(1, 999)}'")))
            else:
                out.append(Record(q, (f"{head}[3-1] {prefix}LOG:  duration: {rng.randint(3000, 9000)}.25 ms  "
                                      f"statement: SELECT count(*) FROM reservations WHERE voyage_id = "
                                      f"{rng.randint(1, 999)}",)))
        if t % 600 == 0:
            line = f"{stamp(t + 1)} db01 systemd: Started Session {t // 600} of user root."
            out.append(Record(t + 1, (line,) * (2 if t % 1800 == 0 else 1)))
    out.sort(key=lambda r: r.t)
    return out


def write(path: Path, recs: list[Record]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.text for r in recs))
    return path


def between(recs: list[Record], lo: int, hi: int) -> list[Record]:
    return [r for r in recs if lo <= r.t < hi]


def ingest_files(case: Path, files: list[tuple[Path, str]]) -> None:
    """Ingest (file, kind) pairs in the given order, as host db01."""
    for path, kind in files:
        ingest([path], case, host="db01", kind=kind, config=CONFIG)


def epoch(t: int) -> int:
    return int((START + timedelta(seconds=t)).timestamp())
