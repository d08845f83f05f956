"""The 2017-06-20 SQL-injection scan: sqlmap against reserve.php's ``voyage`` parameter.

Shared by the web01 access log (the requests) and db01's log (the errors they caused). The
application binds ``voyage`` as a parameter of a prepared statement, so every payload fails the
integer cast and nothing injected ever runs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from urllib.parse import quote

from .timeline import SQLI_START

SCANNER = "185.100.87.206"
STATEMENT = ("SELECT v.voyage_id, v.route_code, v.departs_at, v.seats_left FROM voyages v "
             "WHERE v.voyage_id = $1")
_CAST = ("(CHR(113)||CHR(118)||CHR(112)||CHR(106)||CHR(113))||(SELECT (CASE WHEN (3201=3201) "
         "THEN 1 ELSE 0 END))::text||(CHR(113)||CHR(122)||CHR(107)||CHR(118)||CHR(113))")
PAYLOADS = (
    "1)", "1'", "1 AND 5617=5617", "1 AND 5617=8310", "1) AND 5617=5617 AND (3720=3720",
    "1' AND 5617=5617 AND 'Xhrl'='Xhrl", "1);SELECT PG_SLEEP(5)--", "1;SELECT PG_SLEEP(5)--",
    "1 AND 7421=(SELECT 7421 FROM PG_SLEEP(5))",
    "1) AND 7421=(SELECT 7421 FROM PG_SLEEP(5)) AND (1022=1022",
    "1) UNION ALL SELECT NULL-- Sojx", "1) UNION ALL SELECT NULL,NULL-- Sojx",
    "1) UNION ALL SELECT NULL,NULL,NULL-- Sojx", "1) UNION ALL SELECT NULL,NULL,NULL,NULL-- Sojx",
    "1) UNION ALL SELECT NULL,NULL,NULL,NULL,NULL-- Sojx", "1 UNION ALL SELECT NULL-- Sojx",
    "1 UNION ALL SELECT NULL,NULL-- Sojx", "1 ORDER BY 1-- Wuxm", "1 ORDER BY 6861-- BdsZ",
    f"1 AND 3201=CAST({_CAST} AS NUMERIC)", f"1) AND 3201=CAST({_CAST} AS NUMERIC) AND (8447=8447",
    '1"',
)


@dataclass(frozen=True)
class Probe:
    time: int
    url: str
    payload: str | None   # None: a clean request (sqlmap's baseline), no database error


def requests(seed: int) -> list[Probe]:
    rng = random.Random(f"{seed}:sqli")
    t = SQLI_START
    out = [Probe(t, "/reserve.php?voyage=1", None)]
    t += 1
    out.append(Probe(t, "/reserve.php?voyage=1", None))
    for payload in PAYLOADS:
        t += rng.randint(1, 3)
        out.append(Probe(t, "/reserve.php?voyage=" + quote(payload, safe=""), payload))
    return out
