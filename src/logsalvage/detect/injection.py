"""SQL injection through the web server, reconstructed per target: the script and the parameter.

A *campaign* is a target's run of requests carrying SQL in that parameter (PostgreSQL's parser
decides, ``sqltext.value_payload``), no two more than ``CAMPAIGN_GAP_S`` apart. For each one:

* the techniques its payloads use (boolean, error, time, UNION, stacked; ``sqltext.payload_reads``);
* whether the parameter was **confirmed injectable**, from the answers alone — never from the
  payloads, which a scanner sends to safe pages too:
  - *UNION rows*: a UNION payload answered 2xx with a body larger than any answer the script gave
    to requests without SQL (the injected row is on the page);
  - *boolean*: payloads whose constant comparisons are true and false answered with two disjoint
    sets of body sizes (at least two of each);
  - *time*: sleep payloads answered no sooner than they asked the database to sleep, where the
    access log has the response time (``%D``/``%T``), at least twice;
  - *error*: a database error during the campaign showing a value the injected expression computed
    (``invalid input syntax for type numeric: "qvpjq1qzkvq"`` after ``CAST(CHR(113)||… AS NUMERIC)``),
    a text no request carried;
* what it read: the tables and columns named in its payloads, catalog enumeration
  (``information_schema``, ``pg_catalog``), the rows walked with ``LIMIT``/``OFFSET``, and the
  bytes of the answers that carried them. An extraction is *answered* when the payloads naming a
  table of data were answered 2xx with bodies larger than the script's answers without SQL (the
  rows are in the responses), else it is seen in the *requests only* (no sizes logged, or
  nothing came back that shows it).

Milestones: ``sqli_scan`` (the campaign's first request), ``sqli_injectable`` (the first answer
that confirms it), ``sqli_extraction`` (the first request reading a table of data, with the
campaign's tables, requests, bytes and last request). The exposure window opens at a confirmed
injection, or at payloads asking for a customer table, as at code execution (``run.EXPLOITATION``);
``exfiltration.assess`` weighs the extractions of customer tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, unquote_plus

from logsalvage.detect.context import Context
from logsalvage.detect.model import Finding, Milestone
from logsalvage.detect.sqltext import PayloadReads, is_customer_table, payload_reads, value_payload

CAMPAIGN_GAP_S = 3600  # a target's SQL-bearing requests further apart than this are separate campaigns
SESSION_GAP_S = 60  # a pause longer than this ends a client's run of requests
MIN_BOOLEAN = 2  # true and false variants each, answered with disjoint body sizes
MIN_SLEPT = 2  # sleep payloads answered no sooner than the sleep they asked for
SLEEP_TOLERANCE = 0.9  # of the sleep asked for
_SLACK = timedelta(seconds=30)  # a database error logged this long after the campaign's last request still counts
_LEAD = timedelta(seconds=5)  # … or this long before its first (clocks of two hosts)
_KEY = 40  # characters of a payload's end that identify it in a database error
# a cheap filter before the parser: characters and words without which no SQL can be injected
SQL_HINT = r"(select|union|sleep|%27|'|--|%2d%2d|\(|%28|[+ ]or[+ ]|%20or%20|[+ ]and[+ ]|%20and%20|order|cast|chr)"


@dataclass(frozen=True)
class Probe:
    """One request carrying SQL in the target's parameter."""

    event_id: str
    time: datetime
    source: str | None
    status: int | None
    bytes: int | None
    seconds: float | None  # the response time, where the access log has it
    value: str
    reads: PayloadReads

    @property
    def answered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Campaign:
    host: str
    script: str
    parameter: str
    probes: list[Probe]
    clean_max: int | None = None  # the largest 2xx body the script gave without SQL in the request
    errors: list[str] = field(default_factory=list)  # the database's errors during the campaign (raw text)
    confirmed: tuple[Probe, str, str] | None = None  # (first confirming answer, technique, why)
    reading: list[Probe] = field(default_factory=list)  # probes naming tables of data
    carried: list[Probe] = field(default_factory=list)  # … whose answers carry rows

    @property
    def first(self) -> Probe:
        return self.probes[0]

    @property
    def last(self) -> Probe:
        return self.probes[-1]

    @property
    def techniques(self) -> list[str]:
        return sorted({t for p in self.probes for t in p.reads.techniques})

    @property
    def sources(self) -> list[str]:
        return sorted({p.source for p in self.probes if p.source})

    @property
    def tables(self) -> list[str]:
        return sorted({t for p in self.reading for t in p.reads.data_tables})

    @property
    def catalog_tables(self) -> list[str]:
        return sorted({t for p in self.probes for t in p.reads.tables if t not in p.reads.data_tables})

    def customer_tables(self, configured: tuple[str, ...] = ()) -> list[str]:
        return [t for t in self.tables if is_customer_table(t, configured)]

    @property
    def key(self) -> str:
        return f"{self.script}?{self.parameter}@{self.first.time.isoformat()}"


def campaigns(ctx: Context, host: str) -> list[Campaign]:
    """The SQL-injection campaigns against ``host``'s scripts, in time order."""
    cache = getattr(ctx, "_sqli_campaigns", None)
    if cache is None:
        cache = ctx._sqli_campaigns = {}
    if host not in cache:
        cache[host] = _campaigns(ctx, host)
    return cache[host]


def _campaigns(ctx: Context, host: str) -> list[Campaign]:
    rows = ctx.query("""
        SELECT event_id, ts_utc, source_ip, url_path, url_query, http_status, bytes,
               coalesce(TRY_CAST(json_extract_string(extra, '$.duration_us') AS DOUBLE) / 1e6,
                        TRY_CAST(json_extract_string(extra, '$.duration_s') AS DOUBLE)) AS seconds
        FROM events
        WHERE host = ? AND format_id = 'apache-access' AND url_query IS NOT NULL
          AND regexp_matches(lower(url_query), ?)
        ORDER BY ts_utc, event_id""", [host, SQL_HINT])
    by_target: dict[tuple[str, str], list[Probe]] = {}
    for event_id, ts, source, path, query, status, size, seconds in rows:
        for name, value in _payloads(query):
            by_target.setdefault((path or "", name), []).append(
                Probe(event_id, ts, source, status, size, seconds, value, payload_reads(value)))
    out: list[Campaign] = []
    for (script, name), probes in by_target.items():
        run: list[Probe] = []
        for p in probes:
            if run and (p.time - run[-1].time).total_seconds() > CAMPAIGN_GAP_S:
                out.append(Campaign(host, script, name, run))
                run = []
            run.append(p)
        out.append(Campaign(host, script, name, run))
    clean = _clean_sizes(ctx, host, sorted({c.script for c in out}))
    for c in out:
        c.clean_max = clean.get(c.script)
        c.errors = _database_errors(ctx, c)
        _assess(c, _evaluated_errors(ctx, c), ctx.settings.customer_tables)
    out.sort(key=lambda c: (c.first.time, c.script, c.parameter))
    return out


def _payloads(query: str | None) -> list[tuple[str, str]]:
    """(parameter, value) of each parameter whose value carries SQL — its first such value when it is
    repeated (applications differ in which of the values they take)."""
    seen: dict[str, str] = {}
    for name, value in parse_qsl(query or "", keep_blank_values=True):
        if name not in seen and value_payload(value).is_payload:
            seen[name] = value
    return list(seen.items())


def _clean_sizes(ctx: Context, host: str, scripts: list[str]) -> dict[str, int]:
    """The largest 2xx body of each script to requests without any hint of SQL."""
    if not scripts:
        return {}
    rows = ctx.query("""
        SELECT url_path, max(bytes) FROM events
        WHERE host = ? AND format_id = 'apache-access' AND url_path IN (SELECT unnest(?::VARCHAR[]))
          AND http_status BETWEEN 200 AND 299 AND bytes IS NOT NULL
          AND NOT regexp_matches(lower(coalesce(url_query, '')), ?)
        GROUP BY url_path""", [host, scripts, SQL_HINT])
    return {path: size for path, size in rows if size is not None}


def _database_errors(ctx: Context, c: Campaign) -> list[str]:
    """The raw text of every PostgreSQL error (its STATEMENT chunk included) logged during the campaign."""
    rows = ctx.query("""
        SELECT raw FROM events
        WHERE pg_level IN ('ERROR', 'FATAL') AND ts_utc BETWEEN ? AND ? ORDER BY ts_utc, event_id""",
                     [c.first.time - _LEAD, c.last.time + _SLACK])
    return [r[0] for r in rows if r[0]]


def _quoted_in_errors(p: Probe, c: Campaign) -> bool:
    """Does a database error quote this payload (the statement it broke, or the input it could not
    cast)? Then its answer, however large, is an error page, not rows. The payload's end is what
    identifies it (scanners end each with a comment of random letters)."""
    key = p.value.strip()[-_KEY:]
    return len(key) >= 4 and any(key in text for text in c.errors)


def _answered_rows(p: Probe, c: Campaign) -> bool:
    """Answered 2xx with a body larger than any answer of the script without SQL (or, with no such
    answer in the log, than every answer to the campaign's payloads that name no table), and no
    database error quotes the payload: the page shows what the injected query returned."""
    if not p.answered or p.bytes is None or _quoted_in_errors(p, c):
        return False
    limit = c.clean_max
    if limit is None:
        plain = [q.bytes for q in c.probes if q.answered and q.bytes is not None and not q.reads.tables
                 and "union" not in q.reads.techniques]
        if not plain:
            return False
        limit = max(plain)
    return p.bytes > limit


def _quoted_input(message: str | None) -> str | None:
    """The input an 'invalid input syntax for type …: "…"' error quotes."""
    head, sep, rest = (message or "").partition(': "')
    if not sep or not head.startswith("invalid input syntax for ") or not rest.endswith('"'):
        return None
    return rest[:-1] or None


def _evaluated_errors(ctx: Context, c: Campaign) -> list[tuple[datetime, str]]:
    """PostgreSQL errors during the campaign that show a value computed from an injected expression:
    ``invalid input syntax for type numeric: "qvpjq1qzkvq"`` where no request carried that text (the
    error technique's cast of ``CHR(113)||…``). A value an application passed as a parameter comes
    back as it was sent, payload and all, and proves nothing."""
    if "error" not in {t for p in c.probes for t in p.reads.techniques}:
        return []
    rows = ctx.query("""
        SELECT ts_utc, pg_message FROM events
        WHERE pg_level = 'ERROR' AND pg_message LIKE 'invalid input syntax for %'
          AND ts_utc BETWEEN ? AND ? ORDER BY ts_utc, event_id""", [c.first.time, c.last.time + _SLACK])
    sent = [unquote_plus(q) for (q,) in ctx.query("""
        SELECT url_query FROM events WHERE format_id = 'apache-access' AND url_query IS NOT NULL
          AND ts_utc BETWEEN ? AND ?""", [c.first.time - _LEAD, c.last.time + _SLACK])]
    out = []
    for ts, message in rows:
        value = _quoted_input(message)
        if value and not any(value in v for v in sent):
            out.append((ts, value))
    return out


def _assess(c: Campaign, evaluated: list[tuple[datetime, str]] = (), configured: tuple[str, ...] = ()) -> None:
    evidence: list[tuple[Probe, str, str]] = []
    if evaluated:
        ts, value = evaluated[0]
        p = next((q for q in reversed(c.probes) if q.time <= ts and "error" in q.reads.techniques), None)
        if p is not None:
            evidence.append((p, "error", f"the database evaluated the injected expression: its error shows "
                                         f"the computed value {value[:60]!r}, which no request carried"))
    union = [p for p in c.probes if "union" in p.reads.techniques and _answered_rows(p, c)]
    if union:
        p = union[0]
        evidence.append((p, "union", f"a UNION payload answered {p.status} with {p.bytes:,} bytes, more than any "
                                     f"answer of {c.script} without SQL ({c.clean_max:,} bytes)"
                         if c.clean_max is not None else
                         f"a UNION payload answered {p.status} with {p.bytes:,} bytes, more than the other payloads"))
    true = [p for p in c.probes if p.reads.truth is True and "boolean" in p.reads.techniques and p.answered
            and p.bytes is not None]
    false = [p for p in c.probes if p.reads.truth is False and "boolean" in p.reads.techniques and p.answered
             and p.bytes is not None]
    disjoint = not {p.bytes for p in true} & {p.bytes for p in false}
    if len(true) >= MIN_BOOLEAN and len(false) >= MIN_BOOLEAN and disjoint:
        p = max(true[MIN_BOOLEAN - 1], false[MIN_BOOLEAN - 1], key=lambda q: (q.time, q.event_id))
        evidence.append((p, "boolean", f"payloads that are true and false were answered with different pages "
                                       f"({len(true)} true, {len(false)} false, no size in common)"))
    slept = [p for p in c.probes if p.reads.sleep_s and p.seconds is not None
             and p.seconds >= SLEEP_TOLERANCE * p.reads.sleep_s]
    if len(slept) >= MIN_SLEPT:
        p = slept[MIN_SLEPT - 1]
        evidence.append((p, "time", f"{len(slept)} sleep payloads were answered no sooner than the sleep they "
                                    f"asked for ({p.reads.sleep_s:g} s asked, {p.seconds:.1f} s taken)"))
    if evidence:
        c.confirmed = min(evidence, key=lambda e: (e[0].time, e[0].event_id))
    # what it read: any table of data once the answers confirm the injection; before that, only a
    # customer table's name makes a payload an attempt to read data (scanners name other tables
    # to tell one database system from another, on safe pages too)
    c.reading = [p for p in c.probes if p.reads.data_tables
                 and (c.confirmed is not None or any(is_customer_table(t, configured) for t in p.reads.data_tables))]
    c.carried = [p for p in c.reading if _answered_rows(p, c)]


def detect(ctx: Context, host: str) -> list:
    """Findings and milestones of ``host``'s SQL-injection campaigns."""
    out: list = []
    for c in campaigns(ctx, host):
        out += _report(ctx, c)
    return out


def _report(ctx: Context, c: Campaign) -> list:
    ids = tuple(p.event_id for p in c.probes)
    summary = {"script": c.script, "parameter": c.parameter, "techniques": c.techniques, "sources": c.sources,
               "requests": len(c.probes), "answered_2xx": sum(p.answered for p in c.probes)}
    if c.catalog_tables:
        summary["catalog_tables"] = c.catalog_tables
    state = "scanned"
    if c.confirmed is not None:
        state = "confirmed injectable"
        summary["confirmed_by"] = c.confirmed[2]
    if c.reading:
        state = "data extracted" if c.carried else ("data read" if c.confirmed else "data asked for")
        summary.update(_reading(c))
    summary["state"] = state
    severity = "critical" if c.carried or c.confirmed else "high"
    title = f"SQL injection into {c.script} ({c.parameter}): {state}"
    if c.reading:
        title += f", tables {', '.join(c.tables)}"
    out: list = [Finding("web.sqli_campaign", title, severity, c.host, c.first.time, c.last.time, len(c.probes),
                         tuple(c.sources), ids, {"key": c.key, **summary})]
    source = c.first.source or "unknown"
    start, end, session = _session(ctx, c.host, source, c.first.time, c.last.time)
    out.append(Milestone("sqli_scan", start[1], c.host,
                         {"source": source, "script": c.script, "parameter": c.parameter, "requests": session,
                          "with_sql": len(c.probes), "until": end[1].isoformat()}, (start[0],)))
    if c.confirmed is not None:
        p, technique, why = c.confirmed
        out.append(Milestone("sqli_injectable", p.time, c.host,
                             {"source": p.source, "script": c.script, "parameter": c.parameter,
                              "technique": technique, "why": why}, (p.event_id,)))
    if c.reading:
        shown = c.carried or c.reading
        out.append(Milestone("sqli_extraction", shown[0].time, c.host,
                             {"source": shown[0].source, **_reading(c), "until": shown[-1].time.isoformat()},
                             (shown[0].event_id, shown[-1].event_id)))
    return out


def _reading(c: Campaign) -> dict:
    shown = c.carried or c.reading
    offsets = sorted({p.reads.offset for p in shown if p.reads.offset is not None})
    detail = {"script": c.script, "parameter": c.parameter, "tables": c.tables,
              "columns": sorted({col for p in c.reading for col in p.reads.columns}),
              "requests": len(c.reading), "answered": "responses" if c.carried else "requests only",
              "answered_requests": len(c.carried),
              "bytes": sum(p.bytes or 0 for p in c.carried),
              "bytes_over_clean": (sum(p.bytes - c.clean_max for p in c.carried)
                                   if c.carried and c.clean_max is not None else None)}
    if offsets:
        detail["rows_walked"] = {"first_offset": offsets[0], "last_offset": offsets[-1], "distinct": len(offsets)}
    return detail


def _session(ctx: Context, host: str, source: str, first, last, gap: int = SESSION_GAP_S) -> tuple:
    """The first and last request, and the number of requests, of ``source``'s uninterrupted run
    (no pause over ``gap`` seconds) around its requests from ``first`` to ``last``: a scanner's
    baseline requests (``?id=1``) belong to the scan too."""
    rows = ctx.query("""
        SELECT event_id, ts_utc FROM events
        WHERE host = ? AND format_id = 'apache-access' AND source_ip IS NOT DISTINCT FROM ?
          AND ts_utc BETWEEN ? - INTERVAL 1 HOUR AND ? + INTERVAL 1 HOUR ORDER BY ts_utc, event_id""",
                     [host, None if source == "unknown" else source, first, last])
    i = next(k for k, r in enumerate(rows) if r[1] >= first)
    j = max(k for k, r in enumerate(rows) if r[1] <= last)
    while i > 0 and (rows[i][1] - rows[i - 1][1]).total_seconds() <= gap:
        i -= 1
    while j < len(rows) - 1 and (rows[j + 1][1] - rows[j][1]).total_seconds() <= gap:
        j += 1
    return rows[i], rows[j], j - i + 1


def extraction_findings(ctx: Context, window: tuple[datetime, datetime], configured: tuple[str, ...]) -> list[Finding]:
    """``exfil.sqli_extraction`` findings: campaigns that read customer tables inside the window,
    leaving data (``data_leaving``) when the answers carried the rows."""
    lo, hi = window
    out: list[Finding] = []
    for host in ctx.hosts_with("apache-access"):
        for c in campaigns(ctx, host):
            customer = c.customer_tables(configured)
            inside = [p for p in (c.carried or c.reading) if lo <= p.time <= hi
                      and any(is_customer_table(t, configured) for t in p.reads.data_tables)]
            if not customer or not inside:
                continue
            carried = bool(c.carried)
            tables = ", ".join(customer)
            title = (f"Rows of {tables} returned through SQL injection into {c.script} ({c.parameter})" if carried
                     else f"Payloads asking for {tables} through SQL injection into {c.script} ({c.parameter}), "
                          "answers not shown to carry them")
            out.append(Finding(
                "exfil.sqli_extraction", title, "critical" if carried else "high", c.host, inside[0].time,
                inside[-1].time, len(inside), tuple(c.sources), tuple(p.event_id for p in inside),
                {"key": c.key, "data_leaving": carried, "client_class": "web", "via": "sql injection",
                 "customer_tables": customer, **_reading(c)}))
    return out



def extraction_sentence(f: Finding, zone) -> str:
    """An extraction finding as the decision needs it: who, which page, which tables, when, how much."""
    d = f.detail
    who = ", ".join(f.sources) or "an unknown client"
    span = (f"{f.first_seen.astimezone(zone).isoformat()} to {f.last_seen.astimezone(zone).isoformat()}"
            if f.first_seen != f.last_seen else f.first_seen.astimezone(zone).isoformat())
    what = ", ".join(d.get("customer_tables") or d.get("tables") or [])
    text = f"{who} read {what} through SQL injection into {d.get('script')} (parameter {d.get('parameter')}), {span}"
    if d.get("data_leaving"):
        text += (f": {d.get('answered_requests', 0):,} payload{'s' * (d.get('answered_requests') != 1)} naming it "
                 f"answered with {d.get('bytes', 0):,} bytes, larger than the page without SQL")
    else:
        text += f": {f.count:,} request{'s' * (f.count != 1)} asked for it; the answers do not show what came back"
    walked = d.get("rows_walked")
    if walked:
        text += f" (rows {walked['first_offset']}–{walked['last_offset']} walked one by one)"
    return text
