"""The heartbeat: a record a host writes at a steady period, so its absence marks missing time.

Found automatically: records are grouped by template (format, event type, program, client
address, URL path, command, user — the PostgreSQL ``incomplete startup packet`` from 127.0.0.1,
one cron job, one monitoring URL), each template's period is the median interval between its
records, and the template whose regular intervals (within half a period of it) span most of the
host's time wins; shorter periods break ties. An analyst can name one instead (a regular
expression over the raw record) and fix the period.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from logsalvage.continuity.coverage import distinct_sorted
from logsalvage.errors import UsageError
from logsalvage.store import CaseStore

TEMPLATE_FIELDS = ("format_id", "event_type", "program", "source_ip", "url_path", "command", "user_name")
_TEMPLATE_SQL = f"hash({', '.join(TEMPLATE_FIELDS)})"
# a heartbeat proves continuity to within its period: a handful of records a month proves little
MIN_RECORDS = 100
# a template must explain at least this share of the host's span to count as a heartbeat
MIN_SCORE = 0.05


@dataclass(frozen=True)
class Heartbeat:
    pattern: str  # regular expression over the raw record selecting the heartbeat
    period_s: int
    how: str  # "auto" or "given"
    records: int  # distinct seconds with a heartbeat (all sources together)
    regularity: float  # share of intervals within half a period of the period
    formats: tuple[str, ...] = ()  # formats of the heartbeat's records: the log stream it proves
    template: dict = field(default_factory=dict)  # the template's field values (auto)
    template_hash: int | None = None
    example: str | None = None
    beats: dict | None = field(default=None, compare=False, repr=False)  # matches already found

    def filter_sql(self) -> tuple[str, list]:
        """A WHERE condition over ``events`` selecting the heartbeat's records, with parameters."""
        if self.template_hash is not None:
            return f"{_TEMPLATE_SQL} = ?", [self.template_hash]
        return "regexp_matches(raw, ?)", [self.pattern]

    def as_dict(self) -> dict:
        return {"pattern": self.pattern, "period_s": self.period_s, "how": self.how, "records": self.records,
                "formats": list(self.formats),
                "regularity": round(self.regularity, 6), "template": self.template or None,
                "example": self.example}


def _span_seconds(store: CaseStore, host: str) -> int:
    row = store.query("SELECT max(epoch(ts_utc)) - min(epoch(ts_utc)) FROM events WHERE host = ?", [host])[0]
    return int(row[0] or 0)


def detect(store: CaseStore, host: str, *, period: int | None = None) -> Heartbeat | None:
    """The best heartbeat template of ``host``, or None when nothing is periodic enough."""
    span = _span_seconds(store, host)
    if span <= 0:
        return None
    rows = store.query(f"""
        WITH beats AS (
          SELECT {_TEMPLATE_SQL} AS tmpl, epoch(ts_utc)::BIGINT AS sec
          FROM events WHERE host = ? AND ts_utc IS NOT NULL GROUP BY tmpl, sec),
        frequent AS (SELECT tmpl FROM beats GROUP BY tmpl HAVING count(*) >= {MIN_RECORDS}),
        gaps AS (
          SELECT tmpl, sec - lag(sec) OVER (PARTITION BY tmpl ORDER BY sec) AS gap
          FROM beats WHERE tmpl IN (SELECT tmpl FROM frequent)),
        periods AS (
          SELECT tmpl, count(*) + 1 AS n, {'?' if period else 'round(median(gap))'}::BIGINT AS p
          FROM gaps WHERE gap IS NOT NULL GROUP BY tmpl)
        SELECT g.tmpl, any_value(p.n), any_value(p.p),
               sum(CASE WHEN g.gap BETWEEN p.p / 2 AND p.p * 3 / 2 THEN g.gap ELSE 0 END) / ? AS score,
               avg(CASE WHEN g.gap BETWEEN p.p / 2 AND p.p * 3 / 2 THEN 1 ELSE 0 END) AS regularity
        FROM gaps g JOIN periods p USING (tmpl)
        WHERE g.gap IS NOT NULL AND p.p >= 1
        GROUP BY g.tmpl
        ORDER BY score DESC, any_value(p.p), g.tmpl
        LIMIT 1""", [host, *([period] if period else []), span])
    if not rows or rows[0][3] < MIN_SCORE:
        return None
    tmpl, n, p, _score, regularity = rows[0]
    values = store.query(f"""
        SELECT {', '.join(TEMPLATE_FIELDS)}, message, raw FROM events
        WHERE host = ? AND {_TEMPLATE_SQL} = ? ORDER BY ts_utc, source_id, "offset" LIMIT 1""", [host, tmpl])[0]
    template = {k: v for k, v in zip(TEMPLATE_FIELDS, values) if v is not None}
    message, raw = values[-2], values[-1]
    return Heartbeat(pattern=pattern_for(message or raw, keep=template.get("source_ip")), period_s=int(p),
                     how="auto", records=int(n), regularity=float(regularity), formats=(template["format_id"],),
                     template=template,
                     template_hash=int(tmpl), example=raw)


def given(store: CaseStore, host: str, pattern: str, *, period: int | None = None) -> Heartbeat | None:
    """The analyst's heartbeat: records of ``host`` whose raw text matches ``pattern``."""
    problem = store.regex_error(pattern)
    if problem:
        raise UsageError(f"--heartbeat is not a valid regular expression: {problem}")
    # one pass of the expression over the host's events; its matches serve every later step
    found = store.columns("""
        SELECT DISTINCT epoch(e.ts_utc)::BIGINT AS sec, s.ord, s.bit, e.format_id
        FROM (SELECT source_id, ts_utc, format_id FROM events
              WHERE host = ? AND ts_utc IS NOT NULL AND regexp_matches(raw, ?)) e
        JOIN timeline_sources s USING (source_id) ORDER BY sec""", [host, pattern])
    if found["sec"].size == 0:
        return None
    secs = distinct_sorted(found["sec"])
    gaps = np.diff(secs)
    p = period or (int(round(float(np.median(gaps)))) if gaps.size else None)
    if not p:
        raise UsageError(f"the heartbeat pattern matches a single second on {host}: give --period")
    regular = float(np.mean((gaps >= p / 2) & (gaps <= p * 3 / 2))) if gaps.size else 0.0
    example = store.query("""SELECT raw FROM events WHERE host = ? AND epoch(ts_utc)::BIGINT = ?
                             AND regexp_matches(raw, ?) ORDER BY source_id, "offset" LIMIT 1""",
                          [host, int(secs[0]), pattern])[0][0]
    beats = {k: found[k] for k in ("sec", "ord", "bit")}
    return Heartbeat(pattern=pattern, period_s=p, how="given", records=int(secs.size), regularity=regular,
                     formats=tuple(sorted(set(found["format_id"].tolist()))), example=example, beats=beats)


def pattern_for(message: str, keep: str | None = None) -> str:
    """A regular expression for records like ``message``: its text with digit runs generalised.

    ``keep`` (the client address) stays literal: it is part of what makes the record a heartbeat.
    """
    first_line = message.split("\n", 1)[0]
    if keep and keep in first_line:
        return re.escape(keep).join(_generalise(part) for part in first_line.split(keep))
    return _generalise(first_line)


def _generalise(text: str) -> str:
    return r"\d+".join(re.escape(segment) for segment in re.split(r"\d+", text))


def beat_seconds(store: CaseStore, host: str, heartbeat: Heartbeat):
    """The heartbeat's seconds, one row per source holding it, in time order: numpy columns ``sec``,
    ``ord`` (the source's number in ``timeline_sources``) and ``bit`` (its kind's bit)."""
    if heartbeat.beats is not None:
        return heartbeat.beats
    where, params = heartbeat.filter_sql()
    return store.columns(f"""
        SELECT DISTINCT epoch(e.ts_utc)::BIGINT AS sec, s.ord, s.bit
        FROM (SELECT source_id, ts_utc FROM events WHERE host = ? AND ts_utc IS NOT NULL AND {where}) e
        JOIN timeline_sources s USING (source_id) ORDER BY sec""", [host, *params])
