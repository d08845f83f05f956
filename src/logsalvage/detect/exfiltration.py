"""Did customer data leave the database during the exposure window, and how sure can we be?

The window (first evidence of code execution or of SQL injection → containment or last
evidence) comes from the caller. The database host is the host with PostgreSQL records (the one
with the most statements when there are several). Steps:

1. Baseline: the libpg_query fingerprints of the statements the application's clients issue over
   the whole database log and that are established (at least 5 times on at least 3 days; see
   ``database``) — an attacker who borrows the web server's address for a few queries inside the
   window does not make them part of the baseline.
2. Inside the window, from any client: statements whose fingerprint is outside the baseline
   (``exfil.new_fingerprint``); reads of customer tables by clients or users other than the
   application's (``exfil.customer_read``); reads of a whole customer table, or customer reads
   slower than a minute (``exfil.full_read``); COPY … TO (``exfil.copy_to``) except the runs of a
   recognised local maintenance dump (Unix socket or loopback, to stdout, on a regular daily
   schedule, also seen outside the window when the log reaches outside it); errors of schema
   exploration: missing tables, columns or functions, permission denied, SQL payload in values
   (``exfil.schema_probe``).
   A group (client, user, fingerprint — or, for errors, client and user) also seen *outside* the
   window is routine: reported at low severity, never counted for the verdict. Maintenance
   addresses (``detect.maintenance_addresses``) and an internal client's statements recurring on
   3 days or more that return no customer rows in bulk are rated low too.
3. Coverage: the database log's heartbeat coverage of the window (``continuity``), and its holes.

Verdict rules:

* ``found``: clear data-leaving evidence not routine — COPY … TO of customer tables to a client
  (or TO PROGRAM), or rows of a whole customer table read by a client outside the application's
  set, or through the application's address with a fingerprint outside the baseline, or rows of a
  customer table answered through SQL injection (``injection``: payloads naming the table answered
  2xx with larger bodies; ``suspected`` when only the requests show it). Without any database log,
  an injection's extraction still decides (``found`` at medium confidence: the database's side is
  not seen). The same on
  the database host itself (Unix socket, loopback) or from a maintenance address writes nowhere
  the log can follow: high severity, but ``suspected``;
* ``suspected``: other non-routine anomalies of medium severity or more;
* ``undetermined``: neither, and the log covers less than 50 % of the window (or there is no
  database log for it, or no heartbeat to measure its coverage);
* ``none-found``: neither, with the coverage stated.

Confidence: ``none-found`` is ``high`` only when coverage ≥ 0.99 and no hole longer than one hour
lies in the window, ``medium`` when coverage ≥ 0.9, else ``low``; ``found`` is ``high`` when the
evidence is a COPY … TO or names a non-application client (``medium`` for whole-table reads through
the application's address alone);
``suspected`` is ``medium`` with coverage ≥ 0.9, else ``low``; ``undetermined`` is ``low``.

Besides the ``reasons`` (sentences for the analyst), the verdict carries the same grounds as data,
for a reader who does not know the terms (the report words them): ``basis``, one item per reason
with a ``code`` (``evidence``, ``coverage``, ``coverage_unknown``, ``no_database_log``,
``no_records_in_window``, ``coverage_too_low``, ``nothing_found``, ``baseline``,
``maintenance_dump``, ``slow_only``, ``damaged``) and its numbers; and ``theft``, the facts of the
data that left or may have (None otherwise): when, which tables, by which database user, client
address and client program, how many statements, through which SQL injection, and — when the
statements' text is in the URLs of web requests (a web shell running psql) — which web requests
carried them, on which host, from which address and with how many bytes in their answers. The
database log does not count rows; ``rows`` is only set when an injection walked them one by one.
"""

from __future__ import annotations

import contextlib
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote_plus

from logsalvage.continuity.analysis import Options, coverage_model, iso
from logsalvage.continuity.timeline import ensure_timeline
from logsalvage.detect import database as db
from logsalvage.detect import injection
from logsalvage.detect.context import Context
from logsalvage.detect.model import MAX_EVENT_IDS, Finding, severity_rank
from logsalvage.errors import UsageError
from logsalvage.report.durations import duration_label

HIGH_COVERAGE = 0.99  # none-found with high confidence needs at least this coverage …
MAX_HOLE_S = 3600  # … and no hole in the window longer than this
MEDIUM_COVERAGE = 0.90
UNDETERMINED_BELOW = 0.50  # coverage under which absence of evidence says nothing
SLOW_READ_MS = 60_000  # a customer read this slow moves a lot of rows
# a web request carrying a statement is logged when it arrived, the statement when it ended (its duration)
CARRIER_LEAD = timedelta(minutes=15)
CARRIER_SLACK = timedelta(minutes=1)  # clocks of two hosts
MIN_STATEMENT_CHARS = 12  # shorter statement texts are too common to tie a request to

T = db.T


def assess(ctx: Context, window: tuple[datetime, datetime]) -> tuple[dict, list[Finding]]:
    lo_t, hi_t = (_utc(t) for t in window)
    lo, hi = int(lo_t.timestamp()), int(hi_t.timestamp())
    # reads of customer tables through SQL injection, seen from the web server's side
    injected = injection.extraction_findings(ctx, (lo_t, hi_t), ctx.settings.customer_tables)
    hosts = db.prepare(ctx)
    if not hosts:
        no_db = "the case holds no PostgreSQL records: nothing shows what the database did"
        if not injected:
            return _verdict("undetermined", "low", None, [], None, [no_db], [],
                            [{"code": "no_database_log"}]), []
        leaving = [f for f in injected if f.detail.get("data_leaving")]
        evidence = leaving or injected
        verdict = "found" if leaving else "suspected"
        reasons = [_lead(bool(leaving), evidence, lambda f: ctx.zone(f.host)), no_db]
        basis = [_evidence_basis(bool(leaving), evidence), {"code": "no_database_log"}]
        ids = [i for f in evidence for i in f.event_ids][:MAX_EVENT_IDS]
        zone = ctx.zone(evidence[0].host)
        return _verdict(verdict, "medium" if leaving else "low", None, [], None, reasons, ids, basis,
                        _theft(ctx, evidence, zone)), injected
    h = max(hosts, key=lambda x: (x.statements, x.records, x.host))
    zone = h.zone
    ratio, holes, cov_note = _coverage(ctx, h.host, lo, hi)
    holes_out = [{"start": iso(a, zone), "end": iso(b, zone), "seconds": b - a} for a, b in holes]
    in_window = ctx.query(f"""SELECT count(*), count(*) FILTER (WHERE {db._RAN}) FROM {T}
                              WHERE host = ? AND ts_utc BETWEEN ? AND ?""", [h.host, lo_t, hi_t])[0]
    w = _Window(ctx, h, lo_t, hi_t)
    findings = w.copy_to() + w.full_reads() + w.customer_reads() + w.new_fingerprints() + w.schema_probes() + injected
    findings.sort(key=lambda f: (f.first_seen, f.rule, f.detail.get("key", "")))

    counted = [f for f in findings if not f.detail.get("routine")
               and severity_rank(f.severity) >= severity_rank("medium")]
    leaving = [f for f in counted if f.detail.get("data_leaving")]
    reasons = [_coverage_reason(h.host, ratio, holes, cov_note, lo, hi, zone)]
    basis = [_coverage_basis(h.host, ratio, holes, cov_note, lo, hi, zone)]
    for text, item in w.context(in_window):
        reasons.append(text)
        basis.append(item)
    if leaving:
        verdict = "found"
        # a COPY … TO or another client is unambiguous; a new whole-table read by the application's own
        # address could still be a feature deployed during the window
        confidence = ("high" if any(f.rule == "exfil.copy_to" or f.detail.get("client_class") != "app"
                                    for f in leaving) else "medium")
        reasons.insert(0, _lead(True, leaving, lambda f: zone))
        basis.insert(0, _evidence_basis(True, leaving))
        evidence = leaving
    elif counted:
        verdict = "suspected"
        confidence = "medium" if ratio is not None and ratio >= MEDIUM_COVERAGE else "low"
        reasons.insert(0, _lead(False, counted, lambda f: zone))
        basis.insert(0, _evidence_basis(False, counted))
        evidence = counted
    elif in_window[0] == 0 or ratio is None or ratio < UNDETERMINED_BELOW:
        verdict, confidence, evidence = "undetermined", "low", []
        if in_window[0] == 0:
            reasons.insert(0, "no database record falls inside the exposure window")
            basis.insert(0, {"code": "no_records_in_window"})
        else:
            reasons.insert(0, "no trace of data leaving, but the log covers too little of the window to say so")
            basis.insert(0, {"code": "coverage_too_low", "below": UNDETERMINED_BELOW})
    else:
        verdict, evidence = "none-found", []
        long_hole = any(b - a > MAX_HOLE_S for a, b in holes)
        confidence = ("high" if ratio >= HIGH_COVERAGE and not long_hole else
                      "medium" if ratio >= MEDIUM_COVERAGE else "low")
        reasons.insert(0, "no COPY … TO, whole-table read or customer read by another client than the "
                          "application, and no statement outside the application's baseline, inside the window"
                          + (f" ({len(findings)} low-severity or routine finding{'s' * (len(findings) != 1)}: "
                             f"{', '.join(sorted({f.rule for f in findings}))})" if findings else ""))
        basis.insert(0, {"code": "nothing_found", "set_aside": len(findings)})
    ids = [i for f in evidence for i in f.event_ids][:MAX_EVENT_IDS]
    theft = _theft(ctx, evidence, zone) if evidence else None
    return _verdict(verdict, confidence, ratio, holes_out, h.host, reasons, ids, basis, theft), findings


def _verdict(verdict, confidence, ratio, holes, host, reasons, ids, basis, theft=None) -> dict:
    return {"exfiltration": verdict, "confidence": confidence,
            "coverage_of_exposure_window": None if ratio is None else round(ratio, 6),
            "holes_in_window": holes, "db_host": host, "reasons": reasons, "event_ids": list(ids),
            "basis": basis, "theft": theft}


def _utc(t: datetime) -> datetime:
    return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


def _coverage(ctx: Context, host: str, lo: int, hi: int) -> tuple[float | None, list[tuple[int, int]], str | None]:
    """Coverage of [lo, hi] by the host's heartbeat, and the uncovered stretches inside it (holes
    clipped to the window, and the parts of the window before or after the log)."""
    # a read-only case cannot rebuild the merged timeline: use it as it was left
    with contextlib.suppress(Exception):
        ensure_timeline(ctx.store)
    try:
        model = coverage_model(ctx.store, host, Options())
    except UsageError as exc:
        return None, [], str(exc)
    except Exception as exc:  # noqa: BLE001 - no merged timeline in a read-only case
        return None, [], f"the merged timeline is not available ({type(exc).__name__}); run continuity first"
    if model.merged is None:
        return None, [], "no periodic record (heartbeat) was found, so the log's completeness cannot be measured"
    cov = model.merged
    start, end = cov.span
    gaps = [(max(a, lo), min(b, hi)) for a, b in cov.holes if b > lo and a < hi]
    if lo < start:
        gaps.append((lo, min(hi, start)))
    if hi > end:
        gaps.append((max(lo, end), hi))
    gaps = sorted((a, b) for a, b in gaps if b > a)
    return cov.ratio(lo, hi), gaps, None


def _coverage_reason(host, ratio, holes, note, lo, hi, zone) -> str:
    window = f"{iso(lo, zone)} → {iso(hi, zone)}"
    if ratio is None:
        return f"the coverage of the exposure window ({window}) by {host}'s log is unknown: {note}"
    text = f"the database log ({host}) covers {ratio * 100:.2f} % of the exposure window ({window})"
    if holes:
        longest = max(holes, key=lambda ab: ab[1] - ab[0])
        text += (f"; {len(holes)} uncovered stretch{'es' if len(holes) > 1 else ''} inside it, the longest "
                 f"{duration_label(longest[1] - longest[0])} from {iso(longest[0], zone)}")
    else:
        text += "; no hole inside it"
    return text


def _coverage_basis(host, ratio, holes, note, lo, hi, zone) -> dict:
    if ratio is None:
        return {"code": "coverage_unknown", "db_host": host, "note": note,
                "window": [iso(lo, zone), iso(hi, zone)]}
    longest = max(holes, key=lambda ab: ab[1] - ab[0]) if holes else None
    return {"code": "coverage", "db_host": host, "ratio": round(ratio, 6), "window": [iso(lo, zone), iso(hi, zone)],
            "holes": len(holes), "longest_hole_s": longest[1] - longest[0] if longest else None,
            "longest_hole_start": iso(longest[0], zone) if longest else None}


def _evidence_basis(leaving: bool, evidence: list[Finding]) -> dict:
    """The verdict's evidence as data: the findings (by id, up to five as in ``_lead``) and how many in all."""
    return {"code": "evidence", "leaving": leaving, "findings": [f.id for f in evidence[:5]],
            "total": len(evidence)}


def _theft(ctx: Context, evidence: list[Finding], zone) -> dict:
    """The facts of the data that left (or may have), from the findings the verdict rests on."""
    tables: set[str] = set()
    for f in evidence:  # (a new fingerprint's customer_tables is a flag, not a list)
        named = [v for v in (f.detail.get(k) for k in ("customer_tables", "tables", "relations"))
                 if isinstance(v, list)]
        tables.update(named[0] if named else ())
    on_db = [f for f in evidence if f.rule != "exfil.sqli_extraction"]
    injected = [f for f in evidence if f.rule == "exfil.sqli_extraction"]
    ids = sorted({i for f in on_db for i in f.event_ids})
    programs = [r[0] for r in ctx.query(
        "SELECT DISTINCT db_application FROM events WHERE event_id IN (SELECT unnest(?::VARCHAR[])) "
        "AND db_application IS NOT NULL AND db_application NOT IN ('', '[unknown]') ORDER BY 1", [ids])] if ids else []
    clients = sorted({c for f in on_db for c in f.sources})
    walked = [f.detail["rows_walked"] for f in injected if f.detail.get("rows_walked")]
    return {
        "first": min(f.first_seen for f in evidence).astimezone(zone).isoformat(),
        "last": max(f.last_seen for f in evidence).astimezone(zone).isoformat(),
        "db_host": on_db[0].host if on_db else None,
        "tables": sorted(tables),
        "db_users": sorted({f.detail["user"] for f in on_db if f.detail.get("user")}),
        "clients": clients,
        "client_hosts": {c: h for c in clients for h, addresses in sorted(ctx.settings.host_addresses.items())
                         if c in addresses},
        "client_programs": programs,
        "statements": sum(f.count for f in on_db),
        "copy_to": sorted({f.detail["target"] for f in on_db
                           if f.rule == "exfil.copy_to" and f.detail.get("target")}),
        "injection": [{"host": f.host, "script": f.detail.get("script"), "parameter": f.detail.get("parameter"),
                       "sources": list(f.sources), "requests": f.count, "answered": f.detail.get("answered"),
                       "bytes": f.detail.get("bytes")} for f in injected],
        "rows": sum(w["distinct"] for w in walked) if walked else None,
        "web": _carriers(ctx, on_db, zone),
    }


def _carriers(ctx: Context, evidence: list[Finding], zone) -> dict | None:
    """The web requests whose URL carries the text of an evidence statement (psql run through a web
    shell: ``?c=psql … -c "COPY …"``), logged up to ``CARRIER_LEAD`` before the statement ended."""
    found: dict[str, tuple] = {}
    for f in evidence:
        statement = " ".join(str(f.detail.get("example") or "").split()).rstrip("…").strip()
        words = re.findall(r"[A-Za-z0-9_]{4,}", statement)
        if len(statement) < MIN_STATEMENT_CHARS or not words:
            continue
        # letters and digits pass URL encoding unchanged: the statement's longest word filters in SQL
        rows = ctx.query("""
            SELECT event_id, ts_utc, host, url_path, url_query, source_ip, bytes FROM events
            WHERE url_query IS NOT NULL AND ts_utc BETWEEN ? AND ?
              AND contains(lower(url_query), ?)
            ORDER BY ts_utc, event_id""", [f.first_seen - CARRIER_LEAD, f.last_seen + CARRIER_SLACK,
                                           max(words, key=len).lower()])
        for row in rows:
            if statement in " ".join(unquote_plus(row[4]).split()):
                found[row[0]] = row
    if not found:
        return None
    rows = sorted(found.values(), key=lambda r: (r[1], r[0]))
    return {"hosts": sorted({r[2] for r in rows}), "scripts": sorted({r[3] for r in rows if r[3]}),
            "sources": sorted({r[5] for r in rows if r[5]}), "requests": len(rows),
            "bytes": sum(r[6] or 0 for r in rows) if any(r[6] is not None for r in rows) else None,
            "first": rows[0][1].astimezone(zone).isoformat(), "last": rows[-1][1].astimezone(zone).isoformat(),
            "event_ids": [r[0] for r in rows]}


def _lead(leaving: bool, evidence: list[Finding], zone_of) -> str:
    """The verdict's first reason: the evidence, up to five findings, times in ``zone_of(finding)``."""
    head = "customer data left the database: " if leaving else "anomalies that could be exfiltration: "
    return head + "; ".join(_describe(f, zone_of(f)) for f in evidence[:5])


def _describe(f: Finding, zone=timezone.utc) -> str:
    if f.rule == "exfil.sqli_extraction":
        return injection.extraction_sentence(f, zone)
    return f"{f.title} ({f.count:,} record{'s' * (f.count != 1)})"


class _Window:
    """The exfiltration checks of one database host over one window."""

    def __init__(self, ctx: Context, h: db.DbHost, lo: datetime, hi: datetime):
        self.ctx, self.h, self.lo, self.hi = ctx, h, lo, hi
        self.in_w = "ts_utc BETWEEN ? AND ?"
        self.p = [lo, hi]
        self.maint_ids, self.maint_patterns = self._maintenance()
        self.ctx.store.execute("CREATE OR REPLACE TEMP TABLE dbdet_maint (event_id VARCHAR)")
        if self.maint_ids:
            self.ctx.store.execute("INSERT INTO dbdet_maint SELECT unnest(?::VARCHAR[])", [sorted(self.maint_ids)])
        self.not_maint = "event_id NOT IN (SELECT event_id FROM dbdet_maint)"
        self.baseline = sorted(h.established) or [""]

    # -- the maintenance dump ---------------------------------------------------------------------
    def _maintenance(self) -> tuple[set[str], list]:
        """Event ids of the in-schedule runs of recognised local maintenance dumps."""
        ids: set[str] = set()
        patterns = []
        span = self.ctx.query(f"SELECT min(ts_utc), max(ts_utc) FROM {T} WHERE host = ?", [self.h.host])[0]
        outside_log = (span[0] is not None and ((self.lo - span[0]).total_seconds() >= 86400
                                                or (span[1] - self.hi).total_seconds() >= 86400))
        for p in db.copy_sessions(self.ctx, self.h):
            if not (db._is_local(p.client) and p.target == "stdout" and p.regular):
                continue
            usual = [s for s in p.sessions if s not in p.off_schedule]
            outside = [s for s in usual if s["start"] < self.lo or s["start"] > self.hi]
            if outside or not outside_log:
                ids.update(i for s in usual for i in s["ids"])
                patterns.append((p, len(usual) - len(outside), len(outside)))
        return ids, patterns

    # -- checks -----------------------------------------------------------------------------------

    def copy_to(self) -> list[Finding]:
        rows = self._grouped("stmt_kind = 'copy_to' AND NOT damaged", "fp",
                             extra="bool_or(customer_full OR customer), min(copy_target), "
                                   "list(DISTINCT relations), bool_or(NOT " + db._ERROR + ")")
        out = []
        for g, (customer, target, rels, ran) in rows:
            local = g["client_class"] == "local"
            # a local COPY writes on the database host itself: leaving it takes a step the log cannot show
            leaving = bool(customer and ran) and not g["routine"] and (not local or target == "program")
            sev = ("low" if g["routine"] else "critical" if target == "program" else
                   "high" if customer and ran else "medium")
            tables = sorted({t for r in rels if r for t in r.split(",") if t})
            g.update(target=target, tables=tables, succeeded=bool(ran),
                     data_leaving=leaving,
                     assessment=("local COPY … TO outside the maintenance dump's schedule" if local else
                                 "COPY … TO a client: table contents leave the server"))
            out.append(self._finding("exfil.copy_to", f"COPY … TO {target} of {', '.join(tables[:4]) or 'a query'} "
                                     f"by {g['user'] or 'unknown user'} from {g['client'] or 'unknown client'}",
                                     sev, g))
        return out

    def full_reads(self) -> list[Finding]:
        rows = self._grouped(f"{db._RAN} AND stmt_kind = 'select' AND (customer_full OR customer_grouped "
                             f"OR (customer AND duration_ms >= {SLOW_READ_MS}))", "fp",
                             extra="bool_or(customer_full), max(duration_ms), min(relations)")
        out = []
        for g, (rows_out, max_ms, rels) in rows:
            outside_baseline = g["fingerprint"] not in self.h.established
            app = g["client_class"] == "app" and g["user"] in self.h.app_users
            trusted = g["client_class"] in ("local", "maintenance")  # on the host / known administrators
            leaving = bool(rows_out) and (not app or outside_baseline) and not trusted
            if g["routine"]:
                sev = "low"
            elif leaving:
                sev = "high"
            elif rows_out or (max_ms or 0) >= SLOW_READ_MS:
                sev = "medium" if not app else "low"
            else:  # GROUP BY summaries over the whole table
                sev = "low" if app or g["recurring"] or trusted else "medium"
            g.update(relations=db._rels(rels), returns="rows" if rows_out else "aggregates or a filtered slow read",
                     max_ms=max_ms, outside_baseline=outside_baseline, data_leaving=leaving and not g["routine"])
            out.append(self._finding("exfil.full_read", f"Whole or large read of {', '.join(db._rels(rels)[:3])} by "
                                     f"{g['user'] or 'unknown user'} from {g['client'] or 'unknown client'}", sev, g))
        return out

    def customer_reads(self) -> list[Finding]:
        users = list(self.h.app_users) or [""]
        rows = self._grouped(f"{db._RAN} AND customer AND NOT coalesce(customer_full OR customer_grouped, false) "
                             f"AND NOT (class = 'app' AND list_contains(?::VARCHAR[], coalesce(db_user, '')))",
                             "fp", extra="min(relations)", params=[users])
        out = []
        for g, (rels,) in rows:
            sev = ("low" if g["routine"] or g["client_class"] == "maintenance"
                   or (g["recurring"] and not db.is_public(g["client"]))
                   else "high" if db.is_public(g["client"]) else "medium")
            g.update(relations=db._rels(rels), data_leaving=False)
            out.append(self._finding("exfil.customer_read", f"Customer data read by {g['user'] or 'unknown user'} "
                                     f"from {g['client'] or 'unknown client'}", sev, g))
        return out

    def new_fingerprints(self) -> list[Finding]:
        rows = self._grouped(f"{db._RAN} AND fp IS NOT NULL AND NOT list_contains(?::VARCHAR[], fp)", "fp",
                             extra="bool_or(customer), min(stmt_kind), min(relations), "
                                   "bool_or(customer_full)",
                             params=[self.baseline])
        out = []
        for g, (customer, kind, rels, rows_out) in rows:
            cls, internal = g["client_class"], not db.is_public(g["client"])
            if (g["routine"] or cls == "maintenance"
                    # an internal client's recurring statement that returns no customer rows in bulk
                    or (g["recurring"] and cls in ("local", "other") and internal and not rows_out)):
                sev = "low"
            elif customer and (g["client_class"] == "app" or db.is_public(g["client"])):
                sev = "high"
            else:
                sev = "medium"
            g.update(kind=kind, relations=db._rels(rels), customer_tables=bool(customer), data_leaving=False)
            out.append(self._finding("exfil.new_fingerprint", f"Statement outside the application's baseline from "
                                     f"{g['client'] or 'unknown client'}: {db._short(g.get('example'), 70)}", sev, g))
        return out

    def schema_probes(self) -> list[Finding]:
        payloads = db.payload_values(self.ctx, f"host = ? AND {self.in_w}", [self.h.host, *self.p])
        probe = (f"(event_type IN {db._UNDEFINED} OR event_type IN ('postgresql.permission_denied', "
                 f"'postgresql.syntax_error') OR ({db._ERROR} AND coalesce(stmt_payload, false)) OR "
                 f"({db._ERROR} AND list_contains(?::VARCHAR[], {db._QUOTED})))")
        obj = "coalesce(relation, object)"
        pay = f"(coalesce(stmt_payload, false) OR list_contains(?::VARCHAR[], {db._QUOTED}))"
        plist = sorted(payloads) or [""]
        per_day = {(c, u): m for c, u, m in self.ctx.query(f"""
            SELECT client, db_user, max(n) FROM (
              SELECT client, db_user, day, count(DISTINCT {obj}) AS n FROM {T}
              WHERE host = ? AND {self.in_w} AND {probe} GROUP BY ALL) GROUP BY ALL""",
            [self.h.host, *self.p, plist])}
        # routine: the same client and user made such errors outside the window too
        errors = (f"(event_type IN {db._UNDEFINED} OR event_type IN ('postgresql.permission_denied', "
                  f"'postgresql.syntax_error'))")
        rows = self._grouped(probe, "'errors'", params=[plist], example=False, scope=errors,
                             extra=f"list(DISTINCT {obj}) FILTER (WHERE {obj} IS NOT NULL), list(DISTINCT event_type), "
                                   f"count(*) FILTER (WHERE {db._ERROR} AND {pay}), {db._NOVEL}",
                             extra_params=[plist, self.baseline])
        out = []
        for g, (objects, types, n_payload, novel) in rows:
            cls, public = g["client_class"], db.is_public(g["client"])
            most = per_day.get((g["client"], g["user"]), 0)
            exploring = most >= db.EXPLORATION_OBJECTS
            if g["routine"]:
                sev = "low"
            elif n_payload:
                sev = "high"
            elif exploring:
                sev = "high" if cls == "app" or public else "medium"
            elif public or (cls == "app" and (g["user"] not in self.h.app_users or novel)):
                sev = "medium"
            else:
                sev = "low"
            g.update(objects=sorted(objects or [])[:50], kinds=sorted(t.split(".", 1)[1] for t in types),
                     payload_errors=n_payload, most_objects_in_a_day=most, unusual_application_statements=novel,
                     data_leaving=False,
                     assessment=("SQL payload in errors" if n_payload else "schema exploration" if exploring
                                 else "occasional errors"))
            out.append(self._finding("exfil.schema_probe", f"Schema-probing errors ({', '.join(g['kinds'])}) from "
                                     f"{g['client'] or 'unknown client'}", sev, g))
        return out

    # -- plumbing ---------------------------------------------------------------------------------
    def _grouped(self, where: str, key: str, *, extra: str, params=(), example: bool = True,
                 extra_params=(), scope: str = "true", scope_params=()) -> list:
        """In-window records matching ``where`` (maintenance dump runs excluded) grouped by client,
        user and ``key``, with whether the group (among the records matching ``scope``) also occurs
        outside the window, and on how many days."""
        # the example statement: the group's first, in the case's total order
        ex = f", {db.text('first(stmt_hash ORDER BY ts_utc, event_id)')}" if example else ", NULL"
        rows = self.ctx.query(f"""
            WITH outside AS (SELECT client, db_user, {key} AS k, count(*) AS n_out FROM {T}
                             WHERE host = ? AND NOT ({self.in_w}) AND {self.not_maint} AND ({scope})
                             GROUP BY ALL),
            days AS (SELECT client, db_user, {key} AS k, count(DISTINCT day) AS d FROM {T}
                     WHERE host = ? AND {self.not_maint} AND ({scope}) GROUP BY ALL)
            SELECT g.*, coalesce(o.n_out, 0), coalesce(d.d, 0) FROM (
              SELECT client, any_value(class) AS class, db_user, {key} AS k, count(*) AS n, min(ts_utc) AS first,
                     max(ts_utc) AS last, {db.ids_sql()} AS ids{ex} AS example, {extra}
              FROM {T} WHERE host = ? AND {self.in_w} AND {self.not_maint} AND ({where})
              GROUP BY client, db_user, {key}) g
            LEFT JOIN outside o ON o.client IS NOT DISTINCT FROM g.client AND o.db_user IS NOT DISTINCT FROM g.db_user
                                AND o.k IS NOT DISTINCT FROM g.k
            LEFT JOIN days d ON d.client IS NOT DISTINCT FROM g.client AND d.db_user IS NOT DISTINCT FROM g.db_user
                             AND d.k IS NOT DISTINCT FROM g.k
            ORDER BY g.first, g.k, g.client, g.db_user""", [self.h.host, *self.p, *scope_params, self.h.host, *scope_params, *extra_params,
                                       self.h.host, *self.p, *params])
        out = []
        for r in rows:
            client, cls, user, k, n, first, last, ids, text = r[:9]
            rest, n_out, days = r[9:-2], r[-2], r[-1]
            g = {"client": client, "client_class": cls, "user": user, "key_value": k, "count": n, "first": first,
                 "last": last, "ids": tuple(ids), "outside_window": n_out, "days": days,
                 "routine": n_out > 0, "recurring": days >= db.RECURRING_DAYS}
            if key == "fp":
                g["fingerprint"] = k
            if text is not None:
                g["example"] = text
            out.append((g, rest))
        return out

    def _finding(self, rule: str, title: str, severity: str, g: dict) -> Finding:
        detail = {k: v for k, v in g.items() if k not in ("ids", "first", "last", "count", "key_value")}
        detail["key"] = f"{rule}:{g['client']}:{g['user']}:{g['key_value']}"
        if "example" in detail:
            detail["example"] = db._short(detail["example"], 500)
        return Finding(rule, title, severity, self.h.host, g["first"], g["last"], g["count"],
                       (g["client"],) if g["client"] else (), g["ids"], detail)

    # -- reasons ----------------------------------------------------------------------------------
    def context(self, in_window) -> list[tuple[str, dict]]:
        """The verdict's context: each reason as a sentence for the analyst and as data (``basis``)."""
        h, out = self.h, []
        basis = "inferred" if h.app_clients_inferred else "from the case config"
        app = ", ".join(h.app_clients) or "none found"
        out.append((f"baseline: {len(h.established)} established statement fingerprints of the application "
                    f"({app}, {basis}; users {', '.join(h.app_users) or 'unknown'}); the window holds "
                    f"{in_window[0]:,} database records, {in_window[1]:,} of them logged statements",
                    {"code": "baseline", "statements": len(h.established), "app_clients": list(h.app_clients),
                     "app_clients_inferred": h.app_clients_inferred, "app_users": list(h.app_users),
                     "records_in_window": in_window[0], "statements_in_window": in_window[1]}))
        for p, inside, outside in self.maint_patterns:
            out.append((f"COPY … TO stdout by {p.user} from {p.client} is the {db.local_kind(p.client)} "
                        f"(daily around {db._hhmm(p.usual_minute)}, {inside} runs in the window, {outside} outside): "
                        "set aside",
                        {"code": "maintenance_dump", "user": p.user, "client": p.client,
                         "socket": p.client == "[local]", "time_of_day": db._hhmm(p.usual_minute),
                         "runs_in_window": inside, "runs_outside": outside}))
        row = self.ctx.query(f"""SELECT count(*) FILTER (WHERE event_type = 'postgresql.statement'),
                                        min(duration_ms) FILTER (WHERE event_type = 'postgresql.duration')
                                 FROM {T} WHERE host = ?""", [h.host])[0]
        if not row[0] and row[1] is not None:
            out.append((f"only statements slower than about {row[1]:.0f} ms (the shortest logged duration), errors "
                        "and connection problems are logged: a quick query returning few rows leaves no trace, a "
                        "dump of a large table does",
                        {"code": "slow_only", "threshold_ms": round(row[1])}))
        if h.damaged:
            out.append((f"{h.damaged:,} salvaged record(s) whose statement text recovery garbled (repeated, missing "
                        "or cut chunk lines of the application's statements) were set aside",
                        {"code": "damaged", "records": h.damaged}))
        return out

