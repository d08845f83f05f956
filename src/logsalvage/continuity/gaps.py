"""Gap histograms: how many times each number of seconds separates consecutive records.

``gap_find.pl`` semantics over the merged timeline (one row per record, whatever the number of
copies): the gap of a record is its second minus the previous record's second. Records are
whole messages — a PostgreSQL message of five syslog chunk lines counts once — so the zero bin
is smaller than the script's on raw lines; every other bin is the same for the same records.
"""

from __future__ import annotations

from logsalvage.continuity.timeline import format_filter
from logsalvage.store import CaseStore


def gap_histogram(store: CaseStore, host: str, *, since: int | None = None, until: int | None = None,
                  formats: tuple[str, ...] | None = None) -> dict[int, int]:
    """{gap seconds: count} over the host's merged timeline (records of ``formats``, within
    [since, until] when given)."""
    where, params = _window(since, until, formats)
    return {int(g): int(n) for g, n in store.query(f"""
        SELECT gap, count(*) FROM (
          SELECT sec - lag(sec) OVER (ORDER BY sec) AS gap FROM timeline t WHERE host = ? {where})
        WHERE gap IS NOT NULL GROUP BY gap ORDER BY gap""", [host, *params])}


def gap_histograms_by_type(store: CaseStore, host: str, *, since: int | None = None, until: int | None = None,
                           formats: tuple[str, ...] | None = None) -> dict[str, dict[int, int]]:
    """{record type: {gap seconds: count}}: gaps between consecutive records of the same type."""
    where, params = _window(since, until, formats)
    names = {h: name for h, name in store.query(
        "SELECT DISTINCT hash(event_type), coalesce(event_type, 'unknown') FROM events WHERE host = ?", [host])}
    out: dict[str, dict[int, int]] = {}
    for type_hash, gap, n in store.query(f"""
            SELECT type_hash, gap, count(*) FROM (
              SELECT type_hash, sec - lag(sec) OVER (PARTITION BY type_hash ORDER BY sec) AS gap
              FROM timeline t WHERE host = ? {where})
            WHERE gap IS NOT NULL GROUP BY ALL""", [host, *params]):
        out.setdefault(names.get(type_hash, "unknown"), {})[int(gap)] = int(n)
    return {name: dict(sorted(h.items())) for name, h in sorted(out.items())}


def _window(since: int | None, until: int | None, formats: tuple[str, ...] | None) -> tuple[str, list]:
    where, params = format_filter(formats)
    if since is not None:
        where += " AND sec >= ?"
        params.append(since)
    if until is not None:
        where += " AND sec <= ?"
        params.append(until)
    return where, params
