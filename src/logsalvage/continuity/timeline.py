"""The merged timeline: every record once per host, whatever the number of sources holding it.

The same record may sit in a live file, a backup archive member and the image (salvaged). Two
events are copies of one record when they belong to the same host and second and share a key:

* PostgreSQL messages: (process id, message sequence number) — ``[seq-chunk]`` in syslog,
  ``%l`` in the prefix or csvlog. The key survives a salvaged copy that lost chunks or its line
  end, where the text no longer matches.
* everything else: the raw text and its occurrence number within its source (the second
  identical line of a second in a live file is a record of its own, not a copy of the first).

The key is computed once per event when its source is committed (``store.record_key_sql``).
The canonical copy is the most trustworthy one (live > backup > salvage; then source id and
offset, so the choice never depends on ingest order). The ``timeline`` table keeps the canonical
copy's location, its kind, the kinds holding a copy (bit mask) and the number of copies; it is
rebuilt only when the case's sources change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from logsalvage.store import CaseStore

TIMELINE_VERSION = "1"
KIND_RANK = {"live": 0, "backup": 1, "salvage": 2}
KIND_BIT = {"live": 1, "backup": 2, "salvage": 4}
# room for the offset of any source: priority = source ordinal * 2^40 + offset
_OFFSET_BITS = 40

_BUILD_SQL = f"""
CREATE OR REPLACE TABLE timeline_sources AS
SELECT source_id, kind, path, member, format_id,
       (row_number() OVER (ORDER BY CASE kind WHEN 'live' THEN 0 WHEN 'backup' THEN 1 ELSE 2 END,
                                    source_id))::BIGINT AS ord,
       CASE kind WHEN 'live' THEN 1 WHEN 'backup' THEN 2 ELSE 4 END AS bit
FROM sources;

CREATE OR REPLACE TABLE timeline AS
SELECT e.host, epoch(e.ts_utc)::BIGINT AS sec, e.record_key AS key,
       min(s.ord * {1 << _OFFSET_BITS} + e."offset") AS priority,
       min(hash(e.event_type)) AS type_hash,
       bit_or(s.bit)::UTINYINT AS kinds,
       count(*)::INTEGER AS copies
FROM events e JOIN timeline_sources s USING (source_id)
WHERE e.ts_utc IS NOT NULL
GROUP BY e.host, sec, e.record_key;
"""


def keyed_events_sql(where: str = "true", columns: str = "") -> str:
    """Dated events (filtered by ``where``) with their record key: equal keys in the same host and
    second are copies of one record. ``columns``: extra event columns to carry (", a, b")."""
    return f"""
  SELECT host, source_id, "offset", ts_utc, event_type, format_id{columns}, record_key AS key
  FROM events WHERE ts_utc IS NOT NULL AND ({where})"""


def one_copy_sql(alias: str = "") -> str:
    """A QUALIFY clause keeping each record once over ``events`` (``alias``: its table alias): copies
    share host, second and record key, and the canonical one stands for them, chosen as the timeline
    chooses it (live > backup > salvage, then source id and offset)."""
    a = f"{alias}." if alias else ""
    return (f"QUALIFY row_number() OVER (PARTITION BY {a}host, epoch({a}ts_utc), {a}record_key "
            f"ORDER BY CASE {a}kind WHEN 'live' THEN 0 WHEN 'backup' THEN 1 ELSE 2 END, {a}source_id, "
            f'{a}"offset") = 1')


# the kind of a timeline row's canonical copy: the most trustworthy kind holding a copy
CANONICAL_KIND = "CASE WHEN t.kinds & 1 = 1 THEN 'live' WHEN t.kinds & 2 = 2 THEN 'backup' ELSE 'salvage' END"

# the canonical copy of a timeline row, as columns of ``timeline_sources``/``events``
CANONICAL_JOIN = f"JOIN timeline_sources ts ON ts.ord = t.priority >> {_OFFSET_BITS}"
CANONICAL_OFFSET = f"(t.priority & {(1 << _OFFSET_BITS) - 1})"


def _fingerprint(store: CaseStore) -> str:
    ids = [r[0] for r in store.query("SELECT source_id FROM sources ORDER BY source_id")]
    return hashlib.sha256("\n".join([TIMELINE_VERSION, *ids]).encode()).hexdigest()


def ensure_timeline(store: CaseStore) -> bool:
    """Build the merged timeline unless it is current for the case's sources; True if built."""
    fingerprint = _fingerprint(store)
    if store.meta("timeline_fingerprint") == fingerprint:
        return False
    build_timeline(store, fingerprint)
    return True


def build_timeline(store: CaseStore, fingerprint: str | None = None) -> None:
    with store.transaction():
        for statement in _BUILD_SQL.split(";"):
            if statement.strip():
                store.execute(statement)
        store.set_meta("timeline_fingerprint", fingerprint or _fingerprint(store))


@dataclass(frozen=True)
class Period:
    """A stretch of the merged timeline whose records come from one kind of source."""

    kind: str
    start: int  # epoch seconds
    end: int
    events: int
    sources: tuple[str, ...]  # display names of the sources giving its canonical copies
    interleaved: int = 0  # records of other kinds inside it (absorbed short runs)


def format_filter(formats: tuple[str, ...] | None) -> tuple[str, list]:
    """An ``AND`` clause keeping the timeline rows (alias ``t``) whose canonical copy is of one of
    ``formats`` (all rows when None)."""
    if not formats:
        return "", []
    marks = ", ".join("?" for _ in formats)
    return (f" AND t.priority >> {_OFFSET_BITS} IN (SELECT ord FROM timeline_sources WHERE format_id IN ({marks}))",
            list(formats))


def periods(store: CaseStore, host: str, *, formats: tuple[str, ...] | None = None,
            absorb: int = 10) -> list[Period]:
    """Runs of the merged timeline by the kind of the canonical copy, in time order.

    A run of fewer than ``absorb`` records between two runs of the same kind (a salvaged record
    whose preserved copy lost its text, say) is counted in the surrounding period instead of
    cutting it in three.
    """
    formats_sql, params = format_filter(formats)
    runs = store.query(f"""
        WITH ordered AS (
          SELECT t.sec, t.priority >> {_OFFSET_BITS} AS ord, {CANONICAL_KIND} AS kind,
                 CASE WHEN {CANONICAL_KIND} IS DISTINCT FROM lag({CANONICAL_KIND}) OVER w THEN 1 ELSE 0 END AS starts,
                 t.priority
          FROM timeline t WHERE t.host = ? {formats_sql}
          WINDOW w AS (ORDER BY t.sec, t.priority)),
        numbered AS (SELECT *, sum(starts) OVER (ORDER BY sec, priority ROWS UNBOUNDED PRECEDING) AS run
                     FROM ordered)
        SELECT run, any_value(kind), min(sec), max(sec), count(*), list(DISTINCT ord)
        FROM numbered GROUP BY run ORDER BY run""", [host, *params])
    names = {ord_: name for ord_, name in store.query(
        "SELECT ord, path || coalesce('!' || member, '') FROM timeline_sources")}
    merged: list[list] = []
    for _, kind, start, end, n, ords in runs:
        srcs = sorted(names[o] for o in ords)
        if (len(merged) >= 2 and merged[-2][0] == kind and merged[-1][3] < absorb):
            small = merged.pop()
            prev = merged[-1]
            prev[2] = end
            prev[3] += n + small[3]
            prev[4] = sorted(set(prev[4]) | set(srcs))
            prev[5] += small[3]
            continue
        merged.append([kind, start, end, n, list(srcs), 0])
    return [Period(kind=k, start=s, end=e, events=n, sources=tuple(src), interleaved=i)
            for k, s, e, n, src, i in merged]
