"""Continuity of one host's evidence: span, heartbeat, holes, coverage, sources, periods, seams, gaps.

Set work (dedupe, sort, lag) runs in the case database; interval arithmetic on the heartbeat
times runs here in numpy. The result is a plain dict (the ``continuity --json`` contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo


from logsalvage.continuity import gaps as gaps_mod
from logsalvage.continuity import heartbeat as hb
from logsalvage.continuity.coverage import Coverage, distinct_sorted, find_holes
from logsalvage.continuity.seams import SourceSpan, seams
from logsalvage.continuity.timeline import CANONICAL_JOIN, KIND_BIT, KIND_RANK, format_filter, periods
from logsalvage.errors import UsageError
from logsalvage.store import CaseStore

DEFAULT_K = 2


@dataclass(frozen=True)
class Options:
    heartbeat: str = "auto"  # "auto" or a regular expression over the raw record
    period: int | None = None  # seconds; None = the heartbeat's own median interval
    since: int | None = None  # epoch seconds bounding the coverage window
    until: int | None = None
    k: int = DEFAULT_K  # a hole is more than k periods without a heartbeat


def hosts(store: CaseStore) -> list[str]:
    return [r[0] for r in store.query("SELECT DISTINCT host FROM timeline ORDER BY host")]


def host_zone(store: CaseStore, host: str) -> ZoneInfo:
    """The host's time zone as decided at ingest (else the one most of its sources were read in)."""
    setting = store.host_setting(host, "timezone")
    name = setting[0] if setting and setting[0] else None
    if name is None:
        row = store.query("SELECT tz FROM sources WHERE host = ? AND tz IS NOT NULL "
                          "GROUP BY tz ORDER BY count(*) DESC, tz LIMIT 1", [host])
        name = row[0][0] if row else "UTC"
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def iso(sec: int | None, zone: ZoneInfo) -> str | None:
    if sec is None:
        return None
    return datetime.fromtimestamp(int(sec), tz=timezone.utc).astimezone(zone).isoformat()


def find_heartbeat(store: CaseStore, host: str, options: Options) -> hb.Heartbeat | None:
    if options.heartbeat == "auto":
        return hb.detect(store, host, period=options.period)
    return hb.given(store, host, options.heartbeat, period=options.period)


@dataclass(frozen=True)
class HostCoverage:
    """What the heartbeat proves about one host: the stream's span, its holes, and the coverage
    of the merged timeline, of each kind of source alone, and of each source over its own span."""

    host: str
    zone: ZoneInfo
    span: tuple[int, int]
    records: int
    formats: tuple[str, ...] | None  # the heartbeat's log stream (None: every format, no heartbeat)
    heartbeat: hb.Heartbeat | None
    threshold: int | None
    merged: Coverage | None
    by_kind: dict[str, Coverage]
    by_source: dict[str, tuple[Coverage, int]]  # source id -> (coverage of its own span, heartbeats)
    spans: list[SourceSpan]


def coverage_model(store: CaseStore, host: str, options: Options = Options()) -> HostCoverage:
    """Heartbeat, span and coverage of ``host`` (the merged timeline must be current)."""
    zone = host_zone(store, host)
    if store.query("SELECT count(*) FROM timeline WHERE host = ?", [host])[0][0] == 0:
        raise UsageError(f"host {host!r} has no dated events in the case")
    heartbeat = find_heartbeat(store, host, options)
    # the heartbeat proves the continuity of its own log stream (its formats); the span is that
    # stream's, so stray records of other logs (an old web log found on the database's disk) do
    # not stretch it
    formats = heartbeat.formats if heartbeat else None
    where, params = format_filter(formats)
    first, last, records = store.query(
        f"SELECT min(sec), max(sec), count(*) FROM timeline t WHERE host = ? {where}", [host, *params])[0]
    span = (int(first), int(last))
    spans = _source_spans(store, host)
    if heartbeat is None:
        return HostCoverage(host, zone, span, int(records), None, None, None, None, {}, {}, spans)
    threshold = options.k * heartbeat.period_s
    beats = hb.beat_seconds(store, host, heartbeat)
    secs, ords, bits = beats["sec"], beats["ord"], beats["bit"]
    merged = Coverage(span, tuple(find_holes(distinct_sorted(secs), span, threshold)))
    by_kind = {}
    for kind, bit in sorted(KIND_BIT.items(), key=lambda kv: KIND_RANK[kv[0]]):
        mine = secs[bits == bit]
        if mine.size:
            by_kind[kind] = Coverage(span, tuple(find_holes(distinct_sorted(mine), span, threshold)))
    ord_of = dict(store.query("SELECT source_id, ord FROM timeline_sources"))
    by_source = {}
    for s in spans:
        own = distinct_sorted(secs[ords == ord_of.get(s.source_id, -1)])
        if own.size:
            own_span = (s.first, s.last)
            by_source[s.source_id] = (Coverage(own_span, tuple(find_holes(own, own_span, threshold))), int(own.size))
    return HostCoverage(host, zone, span, int(records), formats, heartbeat, threshold, merged, by_kind, by_source,
                        spans)


def host_continuity(store: CaseStore, host: str, options: Options = Options()) -> dict:
    """Everything ``continuity`` reports for one host (the merged timeline must be current)."""
    model = coverage_model(store, host, options)
    zone, span, formats, heartbeat, cov = model.zone, model.span, model.formats, model.heartbeat, model.merged
    lo = options.since if options.since is not None else span[0]
    hi = options.until if options.until is not None else span[1]
    if hi <= lo:
        raise UsageError(f"empty window: --since {iso(lo, zone)} is not before --until {iso(hi, zone)}")
    where, params = format_filter(formats)
    result: dict = {
        "name": host, "time_zone": zone.key,
        "span": {"start": iso(span[0], zone), "end": iso(span[1], zone), "seconds": span[1] - span[0]},
        "window": {"start": iso(lo, zone), "end": iso(hi, zone)},
        "formats": list(formats) if formats else None,
        "records": model.records,
        "heartbeat": heartbeat.as_dict() if heartbeat else None,
        "other_records": {
            f: {"records": n, "start": iso(a, zone), "end": iso(b, zone)}
            for f, n, a, b in store.query(
                f"SELECT ts.format_id, count(*), min(sec), max(sec) FROM timeline t {CANONICAL_JOIN} "
                f"WHERE host = ? AND NOT (true {where}) GROUP BY 1 ORDER BY 1", [host, *params])} if formats else {},
    }
    if cov is None:
        result.update(coverage=None, holes=[], coverage_by_kind={},
                      note="no periodic record found: coverage cannot be proven; name one with --heartbeat "
                           "REGEX (and --period SECONDS)")
    else:
        result["coverage"] = cov.as_dict(lo, hi)
        result["holes"] = [{"start": iso(a, zone), "end": iso(b, zone), "seconds": b - a,
                            "missing_heartbeats": max(0, round((b - a) / heartbeat.period_s) - 1)}
                           for a, b in cov.holes if b > lo and a < hi]
        result["coverage_by_kind"] = {kind: c.as_dict(lo, hi) for kind, c in model.by_kind.items()}
        result["k"] = options.k
    result["gap_histogram"] = gaps_mod.gap_histogram(store, host, since=options.since, until=options.until,
                                                     formats=formats)
    result["gap_histograms_by_type"] = gaps_mod.gap_histograms_by_type(store, host, since=options.since,
                                                                      until=options.until, formats=formats)
    result["sources"] = []
    for s in model.spans:
        row = {"kind": s.kind, "path": s.display, "format": s.format_id, "source_id": s.source_id,
               "start": iso(s.first, zone), "end": iso(s.last, zone), "events": s.events}
        if s.source_id in model.by_source:
            own, beats = model.by_source[s.source_id]
            ratio = own.ratio(s.first, s.last)
            row.update(coverage_of_own_span=round(ratio, 8) if ratio is not None else None, heartbeats=beats)
        result["sources"].append(row)
    result["periods"] = [
        {"kind": p.kind, "start": iso(p.start, zone), "end": iso(p.end, zone),
         "events": p.events, "interleaved": p.interleaved, "sources": list(p.sources)}
        for p in periods(store, host, formats=formats)]
    result["seams"] = []
    for seam in seams(model.spans, threshold=model.threshold, coverage=cov):
        if formats is not None and seam["format"] not in formats:
            seam.update(ok=None, gap_covered_by_other_sources=None)  # the heartbeat says nothing of its cadence
        seam["last"], seam["first"] = iso(seam["last"], zone), iso(seam["first"], zone)
        result["seams"].append(seam)
    return result


def _source_spans(store: CaseStore, host: str) -> list[SourceSpan]:
    rows = store.query("""
        SELECT s.source_id, s.path || coalesce('!' || s.member, ''), coalesce(s.member, s.path), s.kind, s.format_id,
               e.first, e.last, e.n, f.raw, l.raw
        FROM sources s
        JOIN (SELECT source_id, epoch(min(ts_utc))::BIGINT AS first, epoch(max(ts_utc))::BIGINT AS last,
                     count(*) AS n, min("offset") AS o1, max("offset") AS o2
              FROM events WHERE host = ? AND ts_utc IS NOT NULL GROUP BY source_id) e USING (source_id)
        -- a preserved file's first and last records by position (what a rotation seam joins)
        LEFT JOIN events f ON f.source_id = s.source_id AND f."offset" = e.o1 AND s.kind <> 'salvage'
        LEFT JOIN events l ON l.source_id = s.source_id AND l."offset" = e.o2 AND s.kind <> 'salvage'
        WHERE s.host = ?
        ORDER BY e.first, s.source_id""", [host, host])
    return [SourceSpan(source_id=r[0], display=r[1], name=r[2].rsplit("/", 1)[-1], kind=r[3], format_id=r[4],
                       first=r[5], last=r[6], events=r[7], first_record=r[8], last_record=r[9]) for r in rows]


def parse_when(text: str | None, zone: ZoneInfo, what: str) -> int | None:
    """``--since``/``--until``: ISO 8601; a date or time without an offset is in the host's zone."""
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{what} must be an ISO 8601 date or time (e.g. 2017-07-15T08:58:21+09:00), "
                         f"not {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return int(when.timestamp())


def case_continuity(store: CaseStore, *, host: str | None = None, heartbeat: str = "auto",
                    period: int | None = None, since: str | None = None, until: str | None = None,
                    k: int = DEFAULT_K) -> dict:
    """``continuity`` for one host or every host of the case (builds the merged timeline if needed)."""
    from logsalvage.continuity.timeline import ensure_timeline

    if k < 1:
        raise UsageError(f"-k must be at least 1, not {k}")
    if period is not None and period < 1:
        raise UsageError(f"--period must be a positive number of seconds, not {period}")
    ensure_timeline(store)
    known = hosts(store)
    if host is not None and host not in known:
        raise UsageError(f"no host {host!r} in the case (hosts: {', '.join(known) or 'none'})")
    out = []
    for name in [host] if host else known:
        zone = host_zone(store, name)
        options = Options(heartbeat=heartbeat, period=period, since=parse_when(since, zone, "--since"),
                          until=parse_when(until, zone, "--until"), k=k)
        out.append(host_continuity(store, name, options))
    return {"hosts": out}
