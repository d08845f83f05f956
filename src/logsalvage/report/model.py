"""The report's data: everything ``report.html`` shows, gathered from the case into one plain dict.

Reads the case (the findings of ``detect``, continuity, agreement, the events behind each finding,
the sources and issues) and draws the figures; it renders nothing. Every value is a string, a
number, a bool, None, or a list/dict of those, already in the order the report shows it, so the
same case gives the same dict (and ``report.html`` the same bytes). Times are shown on one clock
(``times.CaseClock``): the zone the hosts share, else UTC, stated once at the top; a standalone time
is a *stamp* (its text in that zone, its UTC for the tooltip), a time inside a sentence its text.

The model has two parts, as the report does: ``decision`` — the first screen for the decision maker
(the theft's facts, the verdict's grounds in plain words, the story, what to do now) — and the rest,
for the analyst, with the detectors' own terms and identifiers.

Text from the evidence stays as it is here: escaping is the renderer's job, and it escapes all of it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np

from logsalvage import __version__
from logsalvage.continuity.agreement import compare_in_case
from logsalvage.continuity.analysis import case_continuity
from logsalvage.detect.model import SEVERITIES
from logsalvage.errors import UsageError
from logsalvage.report import audit_section, filters, narrative, next_steps, plain_language, theft
from logsalvage.report.figures import write_continuity_figures
from logsalvage.report.durations import duration_label
from logsalvage.report.plots import address_time_figure
from logsalvage.report.times import CaseClock
from logsalvage.store import CaseStore
from logsalvage.summary import case_summary

EVIDENCE_LINES = 20  # per finding
MILESTONE_LINES = 5  # per milestone
RAW_CHARS = 4000  # of one evidence line; the rest is counted, not shown
EXCERPT_CHARS = 400  # of an issue's excerpt
ISSUE_EXAMPLES = 3  # per reason
LIST_ITEMS = 30  # of a list in a finding's detail
DETAIL_CHARS = 2000  # of a structured value in a finding's detail

SEVERITY_ORDER = tuple(reversed(SEVERITIES))  # critical first

VERDICT_LABELS = {
    "found": "Customer data left the database",
    "suspected": "Data may have left the database (suspected)",
    "none-found": "No sign that data left the database",
    "undetermined": "Cannot tell whether data left the database",
}

MILESTONE_LABELS = {
    "first_probe": "First probe of the web site",
    "initial_access": "Login after password guessing",
    "sqli_scan": "SQL-injection scan",
    "sqli_injectable": "Injectable parameter confirmed",
    "sqli_extraction": "Data extracted through SQL injection",
    "first_webshell_execution": "First web-shell execution",
    "webshell_first_use_from_network": "Web shell first used from a new network",
    "download": "Download run by the web server",
    "ftp_upload_session": "FTP upload session",
    "crontab_list": "crontab listed by a service account",
    "crontab_replace": "crontab replaced by a service account",
    "crontab_reload": "crontab reloaded by cron",
    "crontab_delete": "crontab deleted by a service account",
    "crontab_list_by_admin": "crontab listed by an administrator",
    "crontab_delete_by_admin": "crontab deleted by an administrator",
    "cron_first_run": "Planted cron job first ran",
    "find_scan": "Search for writable directories (find)",
    "hidden_dir_unpacked": "Hidden directory unpacked",
    "reboot": "Server rebooted",
    "web_server_restart": "Web server restarted",
    "server_stopped": "Web server stopped",
    "first_db_anomaly": "First database anomaly",
    "sqli_db_errors": "SQL errors from injection reached the database",
    "exfiltration": "Data left the database",
    "suspected_exfiltration": "Suspected exfiltration",
    "site_slow": "Site reported slow",
}

FIGURE_CAPTIONS = {
    "addresses": "Requests by source address (IPv4 as a 32-bit number) and time, coloured by HTTP status "
                 "class; FTP upload sessions as bands",
    "time-of-day": "Records of the heartbeat's log by local time of day and record number: steady logging "
                   "draws diagonal bands, a hole a jump, a rotation seam a break",
    "time-of-week": "The same by local time of week",
    "coverage": "Time covered by each source, by kind and merged (heartbeat-proven); holes in red",
    "gaps": "How often each gap between consecutive records occurs",
}
_FIGURE_ORDER = ("addresses", "time-of-day", "time-of-week", "coverage", "gaps")
_FIGURE_NUMBER = {"addresses": 4, "time-of-day": 5, "time-of-week": 6, "coverage": 7}  # as in the incident report


def build(store: CaseStore, case_dir: Path, findings: Mapping, *, figures_dir: Path,
          parameters: Mapping | None = None, evidence_lines: int = EVIDENCE_LINES) -> dict:
    """The report of the case in ``store``: ``findings`` is what ``run_detection`` returned (or
    ``findings.json`` read back); the figures are written into ``figures_dir``. ``parameters`` (shown
    in the case facts) are whatever the caller wants on record, e.g. the case config used."""
    case_dir, figures_dir = Path(case_dir), Path(figures_dir)
    continuity = case_continuity(store)  # builds the merged timeline when it is not current
    clock = CaseClock.for_case(store)
    raw_findings = list(findings.get("findings") or [])
    raw_milestones = list(findings.get("milestones") or [])
    verdict = dict(findings.get("verdict") or {})

    # every event the report quotes, fetched in one pass over the events table
    wanted: set[str] = set()
    for f in raw_findings:
        wanted.update(_first(f.get("event_ids"), evidence_lines))
    for m in raw_milestones:
        wanted.update(_first(m.get("event_ids"), MILESTONE_LINES))
        if m.get("kind") == "ftp_upload_session":
            wanted.update(m.get("event_ids") or [])
    wanted.update(_first(verdict.get("event_ids"), evidence_lines))
    events = _events(store, sorted(wanted), clock)

    attribution = findings.get("attribution") or {}
    finding_models = [_finding(i, f, events, attribution, evidence_lines, clock) for i, f in enumerate(raw_findings)]
    milestones = [_milestone(i, m, events, clock) for i, m in enumerate(raw_milestones)]
    hosts = [_host(store, h, clock) for h in continuity["hosts"]]
    figures = _figures(store, figures_dir, hosts, raw_milestones, events, clock)
    for h in hosts:
        h["figures"] = figures.get(h["name"], [])
        for x in h["ftp_sessions"]:
            del x["epoch_start"], x["epoch_end"]

    filter_options = filters.build(finding_models, milestones)  # (adds each one's filter keys)
    summary = case_summary(store)
    audit = audit_section.build(case_dir)  # "What to change" (None without an audit)
    return {
        "title": "logsalvage incident report",
        "case_dir": str(case_dir),
        "tool": _tool(findings),
        "report_version": __version__,
        "generated": clock.stamp(findings.get("generated")),
        "time_zone": clock.statement(_year(summary.get("first"))),
        "decision": _decision(findings, raw_findings, raw_milestones, verdict, summary, audit, clock),
        "verdict": _verdict(verdict, events, evidence_lines, clock),
        "exposure_window": _window(findings.get("exposure_window"), clock),
        "key_steps": _key_steps(milestones),
        "milestones": milestones,
        "milestone_kinds": sorted({m["kind"] for m in milestones}),
        "coverage": {"hosts": hosts, "not_covered": _not_covered(hosts, summary)},
        "severity_counts": _severity_counts(finding_models),
        "findings_by_severity": _by_severity(finding_models),
        "findings_total": len(finding_models),
        "evidence_lines": evidence_lines,
        "attribution": _attribution(attribution, finding_models),
        "facts": _facts(store, summary, findings, parameters, evidence_lines, clock),
        "audit": audit,
        "filters": filter_options,
    }


def _decision(findings: Mapping, raw_findings: list, raw_milestones: list, verdict: Mapping, summary: Mapping,
              audit: dict | None, clock: CaseClock) -> dict:
    """The first screen, in words for the decision maker: no rule, finding or event identifier."""
    facts = theft.facts(verdict, raw_findings, raw_milestones, clock)
    by_id = {f.get("id"): f for f in raw_findings if f.get("id")}
    critical = [f for f in raw_findings if f.get("severity") == "critical"]
    return {
        "theft": facts,
        "reasons": plain_language.basis_sentences(
            plain_language.verdict_basis(verdict, bool(findings.get("exposure_window"))), by_id, clock),
        "story": narrative.paragraph(findings=raw_findings, milestones=raw_milestones, verdict=verdict,
                                     exposure_window=findings.get("exposure_window"),
                                     sources=list(summary.get("sources") or []), clock=clock, theft=facts),
        "next_steps": next_steps.steps(findings=raw_findings, milestones=raw_milestones, verdict=verdict,
                                       audit=audit, clock=clock, theft=facts),
        "critical": [{"sentence": plain_language.finding_sentence(f), "host": f.get("host"),
                      "first_seen": clock.stamp(f.get("first_seen"))} for f in critical],
    }


def _year(iso: str | None) -> int | None:
    try:
        return datetime.fromisoformat(iso).year if iso else None
    except ValueError:
        return None


# -- values ------------------------------------------------------------------------------------

def percent(ratio: float | None) -> str | None:
    return None if ratio is None else f"{ratio * 100:.2f} %"


def as_text(value) -> str:
    """A detail value as one line of text (lists cut to ``LIST_ITEMS``, structures as JSON)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (str, int, float)):
        text = str(value)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) or v is None for v in value):
        text = ", ".join("—" if v is None else str(v) for v in value[:LIST_ITEMS])
        text += f" … ({len(value) - LIST_ITEMS:,} more)" if len(value) > LIST_ITEMS else ""
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= DETAIL_CHARS else text[:DETAIL_CHARS] + f" … ({len(text) - DETAIL_CHARS:,} more characters)"


def _pairs(detail: Mapping | None, clock: CaseClock) -> list[list[str]]:
    """A detail's keys and values as text, the times in it on the report's clock."""
    return [[str(k), clock.in_text(as_text(v))] for k, v in (detail or {}).items()]


def _seconds_between(start_iso: str, end_iso: str) -> int:
    return int((datetime.fromisoformat(end_iso) - datetime.fromisoformat(start_iso)).total_seconds())


def _text(stamp: dict | None) -> str:
    """A stamp's text, for a sentence."""
    return stamp["text"] if stamp else "—"


# -- evidence lines ----------------------------------------------------------------------------

def _events(store: CaseStore, ids: list[str], clock: CaseClock) -> dict[str, dict]:
    if not ids:
        return {}
    rows = store.query("""
        SELECT e.event_id, e.ts_utc, e.host, s.path, s.member, e.kind, e."offset", e.line_no, e.recovered, e.raw,
               e.source_id
        FROM events e JOIN sources s USING (source_id)
        WHERE e.event_id IN (SELECT unnest(?::VARCHAR[]))""", [ids])
    out = {}
    for event_id, ts, host, path, member, kind, offset, line_no, recovered, raw, source_id in rows:
        raw = raw or ""
        out[event_id] = {
            "event_id": event_id, "missing": False,
            "epoch": int(ts.timestamp()) if ts is not None else None,
            "time": clock.stamp(ts),
            "host": host, "source": path + (f"!{member}" if member else ""), "source_id": source_id, "kind": kind,
            "offset": offset, "line_no": line_no, "recovered": bool(recovered),
            "raw": raw if len(raw) <= RAW_CHARS else raw[:RAW_CHARS],
            "raw_cut": max(0, len(raw) - RAW_CHARS),
        }
    return out


def _first(ids, limit: int) -> list[str]:
    """The first ``limit`` distinct event ids, in their given order."""
    return list(dict.fromkeys(ids or ()))[:limit]


def _lines(ids: list[str], events: dict[str, dict], limit: int) -> tuple[list[dict], int]:
    """The first ``limit`` of ``ids`` as evidence lines in the case's total order, and how many ids
    were left out. An id the case does not hold is shown as missing, not skipped."""
    chosen = _first(ids, limit)
    lines = [events.get(i) or {"event_id": i, "missing": True, "epoch": None, "time": None, "host": None,
                               "source": None, "source_id": None, "kind": None, "offset": None, "line_no": None,
                               "recovered": None, "raw": "", "raw_cut": 0}
             for i in chosen]
    lines.sort(key=lambda e: (e["epoch"] is None, e["epoch"] or 0, e["source"] or "", e["offset"] or 0,
                              e["event_id"]))
    return [{k: v for k, v in e.items() if k != "epoch"} for e in lines], len(set(ids)) - len(chosen)


# -- verdict, window, milestones ----------------------------------------------------------------

def _verdict(v: dict, events: dict, limit: int, clock: CaseClock = CaseClock()) -> dict:
    ratio = v.get("coverage_of_exposure_window")
    holes = [{"start": clock.stamp(h.get("start")), "end": clock.stamp(h.get("end")),
              "seconds": h.get("seconds"), "duration": duration_label(h.get("seconds") or 0)}
             for h in v.get("holes_in_window") or []]
    db_host = v.get("db_host")
    if ratio is None:
        sentence = "How much of the exposure window the database log covers could not be measured."
    else:
        sentence = (f"The database log{f' of {db_host}' if db_host else ''} covers {percent(ratio)} of the "
                    "exposure window")
        if holes:
            longest = _longest(holes)
            sentence += (f"; {len(holes)} stretch{'es' * (len(holes) != 1)} inside it "
                         f"{'are' if len(holes) != 1 else 'is'} not covered, the longest {longest['duration']} "
                         f"from {_text(longest['start'])}.")
        else:
            sentence += "; no stretch of it is missing."
    lines, more = _lines(list(v.get("event_ids") or []), events, limit)
    verdict = v.get("exfiltration") or "undetermined"
    confidence = v.get("confidence") or "low"
    return {"exfiltration": verdict, "label": VERDICT_LABELS.get(verdict, verdict),
            "frame": verdict_frame(verdict, confidence), "caveat": _caveat(verdict, confidence, ratio, holes),
            "confidence": confidence, "coverage": ratio, "coverage_pct": percent(ratio),
            "coverage_sentence": sentence, "holes": holes, "db_host": db_host,
            "reasons": [clock.in_text(str(r)) for r in v.get("reasons") or []], "evidence": lines,
            "evidence_more": more}


def _longest(holes: list[dict]) -> dict:
    return max(holes, key=lambda h: (h["seconds"] or 0, h["start"]["iso"] if h["start"] else ""))


def verdict_frame(verdict: str, confidence: str) -> str:
    """The colour of the verdict's frame: a "no sign" is green only when the confidence is high — a
    reader takes a green frame for "safe", which a partly covered window does not show."""
    if verdict == "found":
        return "bad"
    if verdict == "suspected":
        return "warn"
    if verdict == "none-found":
        return {"high": "ok", "medium": "warn"}.get(confidence, "unknown")
    return "unknown"


def _caveat(verdict: str, confidence: str, ratio: float | None, holes: list[dict]) -> str | None:
    """For a "no sign" that is not certain, the first sentence says what the evidence does not cover."""
    if verdict != "none-found" or confidence == "high":
        return None
    if ratio is None:
        return ("Not established: how much of the exposure window the database log covers could not be "
                "measured, so data may have left unseen.")
    text = (f"Not established: the database log covers only {percent(ratio)} of the exposure window; "
            "nothing can be said about the rest")
    if holes:
        longest = _longest(holes)
        text += f" (the longest stretch without records: {longest['duration']} from {_text(longest['start'])})"
    return text + "."


def _window(w: Mapping | None, clock: CaseClock) -> dict | None:
    if not w:
        return None
    seconds = _seconds_between(w["start"], w["end"])
    return {"start": clock.stamp(w["start"]), "end": clock.stamp(w["end"]), "seconds": seconds,
            "duration": duration_label(seconds)}


def milestone_label(kind: str) -> str:
    return MILESTONE_LABELS.get(kind) or (kind.replace("_", " ").capitalize() if kind else "milestone")


def _milestone(index: int, m: Mapping, events: dict, clock: CaseClock) -> dict:
    lines, more = _lines(list(m.get("event_ids") or []), events, MILESTONE_LINES)
    detail = _pairs(m.get("detail"), clock)
    kind = str(m.get("kind") or "")
    return {"index": index, "kind": kind, "label": milestone_label(kind), "time": clock.stamp(m.get("time")),
            "iso": m.get("time"), "host": m.get("host"), "detail": detail,
            "summary": plain_language.step_summary(m.get("detail"), clock, as_text),
            "evidence": lines, "evidence_more": more}


def _key_steps(milestones: list[dict]) -> list[dict]:
    """The first milestone of each kind, in time order, with how many more followed and until when."""
    by_kind: dict[str, list[dict]] = {}
    for m in milestones:
        by_kind.setdefault(m["kind"], []).append(m)
    steps = []
    for kind, ms in by_kind.items():
        first, last = ms[0], ms[-1]
        steps.append({"kind": kind, "label": first["label"], "time": first["time"], "iso": first["iso"],
                      "host": first["host"], "summary": first["summary"], "count": len(ms),
                      "last_time": last["time"] if len(ms) > 1 else None, "index": first["index"]})
    steps.sort(key=lambda s: (_epoch(s["iso"]), s["index"]))
    return steps


def _epoch(iso: str | None) -> float:
    if not iso:
        return float("inf")
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return float("inf")


# -- findings and attribution ------------------------------------------------------------------

def _where(info: Mapping | None) -> str:
    """An address's attribution in a few words."""
    if not info:
        return "not attributed"
    if info.get("private") or info.get("range"):
        return str(info.get("range") or "private range")
    parts = [p for p in (info.get("country"), info.get("organisation"), info.get("network")) if p]
    return " · ".join(map(str, parts)) or "unknown"


def _finding(index: int, f: Mapping, events: dict, attribution: Mapping, limit: int, clock: CaseClock) -> dict:
    ids = list(f.get("event_ids") or [])
    lines, more = _lines(ids, events, limit)
    rule = str(f.get("rule") or "")
    return {
        "index": index, "id": f.get("id"), "rule": rule, "family": rule.split(".", 1)[0],
        "title": f.get("title"), "severity": f.get("severity") or "info", "host": f.get("host"),
        "first_seen": clock.stamp(f.get("first_seen")), "last_seen": clock.stamp(f.get("last_seen")),
        "count": f.get("count"),
        "sources": [{"address": a, "where": _where(attribution.get(a))} for a in f.get("sources") or []],
        "detail": _pairs(f.get("detail"), clock),
        "evidence": lines, "evidence_more": more, "event_ids_listed": len(ids),
        "event_ids_truncated": bool(f.get("event_ids_truncated")),
    }


def _severity_counts(findings: list[dict]) -> list[dict]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f["severity"]] = counts.get(f["severity"], 0) + 1
    return [{"severity": s, "count": counts[s]} for s in _severity_order(counts)]


def _severity_order(severities) -> list[str]:
    known = [s for s in SEVERITY_ORDER if s in severities]
    return known + sorted(s for s in severities if s not in SEVERITY_ORDER)


def _by_severity(findings: list[dict]) -> list[dict]:
    groups: dict[str, list[dict]] = {}
    for f in findings:
        groups.setdefault(f["severity"], []).append(f)
    return [{"severity": s, "findings": groups[s]} for s in _severity_order(groups)]


def _ip_key(address: str):
    try:
        ip = ipaddress.ip_address(address)
        return (0, ip.version, int(ip), address)
    except ValueError:
        return (1, 0, 0, address)


def _attribution(attribution: Mapping, findings: list[dict]) -> list[dict]:
    used: dict[str, list[dict]] = {}
    for f in findings:
        for s in f["sources"]:
            used.setdefault(s["address"], []).append(f)
    out = []
    for address in sorted(set(attribution) | set(used), key=_ip_key):
        info = attribution.get(address) or {}
        fs = used.get(address, [])
        worst = _severity_order({f["severity"] for f in fs})
        out.append({"address": address, "country": info.get("country"), "country_name": info.get("country_name"),
                    "organisation": info.get("organisation"), "network": info.get("network"),
                    "range": info.get("range"), "private": bool(info.get("private")), "where": _where(info),
                    "findings": len(fs), "worst": worst[0] if worst else None,
                    "finding_refs": [{"index": f["index"], "id": f["id"]} for f in fs][:LIST_ITEMS]})
    return out


# -- continuity --------------------------------------------------------------------------------

def _span(span: Mapping, clock: CaseClock) -> dict:
    return {"start": clock.stamp(span.get("start")), "end": clock.stamp(span.get("end")),
            "seconds": span.get("seconds"), "duration": duration_label(span.get("seconds") or 0)}


def _host(store: CaseStore, h: Mapping, clock: CaseClock) -> dict:
    name = h["name"]
    heartbeat = h.get("heartbeat")
    span = _span(h["span"], clock)
    holes = [{"start": clock.stamp(x["start"]), "end": clock.stamp(x["end"]), "seconds": x["seconds"],
              "duration": duration_label(x["seconds"]), "missing_heartbeats": x.get("missing_heartbeats")}
             for x in h.get("holes") or []]
    cov = h.get("coverage")
    ratio = cov.get("ratio") if cov else None
    stream = ", ".join(h.get("formats") or []) or "all records"
    if heartbeat:
        how = (f"its {stream} log carries a record every {duration_label(heartbeat['period_s'])} "
               f"(heartbeat), so a silence longer than {h.get('k', 2)} periods is a hole")
        longest = _longest(holes) if holes else None
        sentence = (f"{name}: {percent(ratio)} of {_text(span['start'])} → {_text(span['end'])} "
                    f"({span['duration']}) is covered; "
                    + (f"{len(holes)} hole{'s' * (len(holes) != 1)}, the longest {longest['duration']} from "
                       f"{_text(longest['start'])}." if longest else "no holes."))
    else:
        how = "no periodic record was found in its logs: their completeness cannot be proven"
        sentence = (f"{name}: records from {_text(span['start'])} to {_text(span['end'])}; "
                    "continuity not proven (no heartbeat).")
    kinds = [{"kind": k, "ratio": c.get("ratio"), "pct": percent(c.get("ratio")),
              "covered": duration_label(c.get("covered_s") or 0)}
             for k, c in (h.get("coverage_by_kind") or {}).items()]
    others = [{"format": f, "records": o["records"], "start": clock.stamp(o["start"]), "end": clock.stamp(o["end"])}
              for f, o in sorted((h.get("other_records") or {}).items())]
    seams = [{**{k: s.get(k) for k in ("chain", "format", "from", "to", "from_kind", "to_kind", "gap_s", "ok",
                                       "overlap", "rotation_mark", "gap_covered_by_other_sources",
                                       "last_record", "first_record")},
              "last": clock.stamp(s.get("last")), "first": clock.stamp(s.get("first")),
              "gap": duration_label(s.get("gap_s") or 0),
              "gap_covered_pct": percent(s.get("gap_covered_by_other_sources"))}
             for s in h.get("seams") or []]
    sources = [{"kind": s["kind"], "path": s["path"], "format": s["format"], "source_id": s["source_id"],
                "start": clock.stamp(s["start"]), "end": clock.stamp(s["end"]), "events": s["events"],
                "coverage_of_own_span": percent(s.get("coverage_of_own_span")), "heartbeats": s.get("heartbeats")}
               for s in h.get("sources") or []]
    periods = [{"kind": p["kind"], "start": clock.stamp(p["start"]), "end": clock.stamp(p["end"]),
                "duration": duration_label(_seconds_between(p["start"], p["end"])),
                "events": p["events"], "interleaved": p["interleaved"], "sources": list(p["sources"])}
               for p in h.get("periods") or []]
    return {
        "name": name, "time_zone": h.get("time_zone"), "span": span, "stream": stream,
        "records": h.get("records"), "how": how, "sentence": sentence, "note": h.get("note"),
        "heartbeat": ({"pattern": heartbeat.get("pattern"), "period": duration_label(heartbeat["period_s"]),
                       "period_s": heartbeat["period_s"], "records": heartbeat.get("records"),
                       "regularity": heartbeat.get("regularity"), "how": heartbeat.get("how"),
                       "example": heartbeat.get("example")} if heartbeat else None),
        "coverage": ratio, "coverage_pct": percent(ratio), "holes": holes, "coverage_by_kind": kinds,
        "other_records": others, "periods": periods, "seams": seams,
        "seams_not_ok": sum(1 for s in seams if s["ok"] is False), "sources": sources,
        "agreement": _agreement(store, name, clock),
    }


_CAUSE_LABELS = {"line_end_lost": "line end lost", "header_lost": "header lost",
                 "same_second_reorder": "reordered within a second", "period_absent": "absent for a whole period",
                 "other": "other"}


def _agreement(store: CaseStore, host: str, clock: CaseClock) -> list[dict]:
    """Preserved files (live, backup) against salvaged records, for each side the host has."""
    kinds = {r[0] for r in store.query("SELECT DISTINCT kind FROM sources WHERE host = ?", [host])}
    if "salvage" not in kinds:
        return []
    out = []
    for side in ("live", "backup"):
        if side not in kinds:
            continue
        try:
            r = compare_in_case(store, host, side, "salvage")
        except UsageError as exc:  # a side without records the comparison can use
            out.append({"a": side, "b": "salvage", "unavailable": str(exc)})
            continue
        out.append({
            "a": side, "b": "salvage", "unavailable": None,
            "overlap": ({"start": clock.stamp(r["overlap"]["start"]), "end": clock.stamp(r["overlap"]["end"])}
                        if r.get("overlap") else None),
            "a_events": r.get("a_events"), "b_events": r.get("b_events"), "matched": r.get("matched"),
            "ratio": r.get("agreement_ratio"), "pct": percent(r.get("agreement_ratio")),
            "mismatches": [{"cause": c, "label": _CAUSE_LABELS.get(c, c), "count": n}
                           for c, n in (r.get("mismatches") or {}).items()],
            "missing_in_a": r.get("missing_in_a"), "missing_in_b": r.get("missing_in_b"),
            "note": clock.in_text(r.get("note")),
            "examples": [{"cause": _CAUSE_LABELS.get(e["cause"], e["cause"]), "time": clock.stamp(e.get("time")),
                          "a_event": e.get("a_event"), "b_event": e.get("b_event"), "a": e.get("a"), "b": e.get("b")}
                         for e in r.get("examples") or []],
        })
    return out


# -- figures -----------------------------------------------------------------------------------

def _safe(host: str) -> str:
    """The host's part of a figure file name (as ``report.figures`` writes it)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in host)


def web_hosts(store: CaseStore) -> list[str]:
    """Hosts whose access log was preserved (a live or backup source), or that hold mostly access-log
    records: a few stray access-log records carved from a database server's disk do not make it one."""
    rows = store.query("""
        SELECT host FROM events GROUP BY host
        HAVING count(*) FILTER (WHERE format_id = 'apache-access' AND kind <> 'salvage') > 0
            OR count(*) FILTER (WHERE format_id = 'apache-access') * 2 > count(*)
        ORDER BY host""")
    return [r[0] for r in rows]


def _ipv4_numbers(addresses: np.ndarray) -> np.ndarray:
    """Each address as an unsigned 32-bit number (an IPv4-mapped IPv6 address as its IPv4), -1 when it
    is not IPv4; each distinct text parsed once."""
    values, inverse = np.unique(np.asarray(addresses, dtype=object).astype(str), return_inverse=True)
    numbers = np.full(len(values), -1, dtype=np.int64)
    for i, text in enumerate(values):
        try:
            ip = ipaddress.ip_address(text.strip().strip("[]"))
        except ValueError:
            continue
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip.version == 4:
            numbers[i] = int(ip)
    return numbers[inverse.ravel()]


def _figures(store: CaseStore, figures_dir: Path, hosts: list[dict], milestones: list, events: dict,
             clock: CaseClock) -> dict[str, list[dict]]:
    """Draw every figure; each host's (in report order), and the FTP sessions marked on its figure 4."""
    written = write_continuity_figures(store, figures_dir)
    webs = set(web_hosts(store))
    by_host: dict[str, list[dict]] = {}
    for h in hosts:
        h["ftp_sessions"] = []
    for h in hosts:
        host = h["name"]
        stem = _safe(host)
        found = {}
        for name in _FIGURE_ORDER:
            png = figures_dir / f"{stem}-{name}.png"
            if name == "addresses":
                if host not in webs:
                    continue
                h["ftp_sessions"] = ftp_sessions(host, milestones, events, clock)
                _address_figure(store, host, figures_dir / f"{stem}-addresses", h["ftp_sessions"], clock)
            elif png not in written:
                continue
            found[name] = {"name": name, "number": _FIGURE_NUMBER.get(name), "caption": FIGURE_CAPTIONS[name],
                           "png": str(png), "svg": str(png.with_suffix(".svg"))}
        by_host[host] = [found[n] for n in _FIGURE_ORDER if n in found]
    return by_host


def ftp_sessions(host: str, milestones: list, events: dict, clock: CaseClock) -> list[dict]:
    """The host's FTP upload sessions, numbered in time order: first to last record of each."""
    out = []
    for m in milestones:
        if m.get("kind") != "ftp_upload_session" or m.get("host") != host:
            continue
        times = [events[i]["epoch"] for i in m.get("event_ids") or [] if i in events and events[i]["epoch"] is not None]
        if not times:
            try:
                times = [int(datetime.fromisoformat(m["time"]).timestamp())]
            except (KeyError, TypeError, ValueError):
                continue
        detail = m.get("detail") or {}
        number = len(out) + 1
        source = detail.get("source")
        out.append({"number": number, "epoch_start": min(times), "epoch_end": max(times),
                    "start": clock.stamp(min(times)), "end": clock.stamp(max(times)),
                    "source": source, "user": detail.get("user"), "uploads": as_text(detail.get("uploads") or []),
                    "label": f"#{number} {source}" if source else f"#{number}"})
    return out


def _address_figure(store: CaseStore, host: str, stem: Path, sessions: list[dict], clock: CaseClock) -> list[Path]:
    # each record once (the merged timeline's key), whichever sources hold copies of it
    cols = store.columns("""
        SELECT sec, any_value(source_ip ORDER BY rank, source_id, "offset") AS ip,
               any_value(http_status ORDER BY rank, source_id, "offset") AS status
        FROM (SELECT epoch(ts_utc)::BIGINT AS sec, record_key, source_ip, http_status, source_id, "offset",
                     CASE kind WHEN 'live' THEN 0 WHEN 'backup' THEN 1 ELSE 2 END AS rank
              FROM events WHERE host = ? AND format_id = 'apache-access' AND ts_utc IS NOT NULL)
        GROUP BY sec, record_key
        ORDER BY sec, record_key""", [host])
    numbers = _ipv4_numbers(cols["ip"]) if len(cols["sec"]) else np.zeros(0, dtype=np.int64)
    keep = numbers >= 0
    statuses = np.asarray(cols["status"], dtype=np.float64) if len(cols["sec"]) else np.zeros(0)
    tz = clock.name  # the report's one zone
    not_shown = int((~keep).sum())
    title = f"{host}: web requests by source address and time ({tz})"
    if not_shown:
        title += f"; {not_shown:,} from non-IPv4 addresses not shown"
    return address_time_figure(np.asarray(cols["sec"])[keep], numbers[keep], statuses[keep], stem, tz=tz,
                               sessions=[(x["epoch_start"], x["epoch_end"], x["label"]) for x in sessions],
                               title=title)


# -- what is not covered; case facts ------------------------------------------------------------

def _not_covered(hosts: list[dict], summary: Mapping) -> list[str]:
    out = []
    for h in hosts:
        if h["heartbeat"] is None:
            out.append(f"{h['name']}: no heartbeat, so no stretch of its logs can be proven complete.")
        for hole in sorted(h["holes"], key=lambda x: (-x["seconds"], _text(x["start"])))[:5]:
            out.append(f"{h['name']}: nothing from {_text(hole['start'])} to {_text(hole['end'])} "
                       f"({hole['duration']}).")
        if len(h["holes"]) > 5:
            out.append(f"{h['name']}: {len(h['holes']) - 5} shorter hole(s), listed under continuity below.")
        if h["heartbeat"] is not None and h["other_records"]:
            out.append(f"{h['name']}: the heartbeat proves the continuity of its {h['stream']} log only; "
                       f"{', '.join(o['format'] for o in h['other_records'])} may have gaps that nothing shows.")
        for seam in [s for s in h["seams"] if s["ok"] is False][:5]:
            covered = (f"; other sources cover {seam['gap_covered_pct']} of it" if seam["gap_covered_pct"]
                       else "; no other source covers it")
            out.append(f"{h['name']}: {seam['gap']} between {seam['from']} and {seam['to']} (a rotation seam "
                       f"longer than the heartbeat allows){covered}.")
        if h["seams_not_ok"] > 5:
            out.append(f"{h['name']}: {h['seams_not_ok'] - 5} more such seam(s), listed under continuity below.")
    if summary.get("issues"):
        out.append(f"{summary['issues']:,} piece(s) of input could not be read as log records (listed under "
                   "case facts).")
    return out


def _issues(store: CaseStore) -> list[dict]:
    norm = "regexp_replace(reason, '\\[\\d+-\\d+\\]', '[N-M]')"
    counts = store.query(f"SELECT {norm} AS r, count(*) FROM issues GROUP BY 1 ORDER BY 2 DESC, 1")
    examples: dict[str, list[dict]] = {}
    for r, path, offset, length, line_no, excerpt in store.query(f"""
            SELECT r, path, "offset", length, line_no, excerpt FROM (
              SELECT {norm} AS r, i.*, row_number() OVER (PARTITION BY {norm}
                                                          ORDER BY path NULLS LAST, "offset" NULLS LAST,
                                                                   line_no NULLS LAST, excerpt, length, reason,
                                                                   source_id) AS n
              FROM issues i)
            WHERE n <= ? ORDER BY r, n""", [ISSUE_EXAMPLES]):
        excerpt = excerpt or ""
        examples.setdefault(r, []).append({
            "path": path, "offset": offset, "length": length, "line_no": line_no,
            "excerpt": excerpt if len(excerpt) <= EXCERPT_CHARS else excerpt[:EXCERPT_CHARS] + "…"})
    return [{"reason": r, "count": n, "examples": examples.get(r, [])} for r, n in counts]


def _facts(store: CaseStore, summary: Mapping, findings: Mapping, parameters: Mapping | None,
           evidence_lines: int, clock: CaseClock) -> dict:
    sigma = findings.get("sigma") or {}
    params = [["evidence lines per finding", str(evidence_lines)],
              ["continuity", "heartbeat found automatically; a hole is more than 2 heartbeat periods"]]
    params += [[str(k), clock.in_text(as_text(v))] for k, v in (parameters or {}).items()]
    try:
        from logsalvage.detect.attribution import database

        geo = database()
    except Exception:  # noqa: BLE001 - the data's name is a nicety; its absence must not stop the report
        geo = None
    copies = [{"source_id": r[0], "path": r[1] + (f"!{r[2]}" if r[2] else ""), "host": r[3], "kind": r[4]}
              for r in store.query("SELECT source_id, path, member, host, kind FROM source_copies "
                                   "ORDER BY path, member, source_id")]
    decisions: dict[tuple, int] = {}
    for s in summary["sources"]:
        key = (s["host"], s["time_zone"] or "—", clock.in_text(_year_rule(s["year_basis"])))
        decisions[key] = decisions.get(key, 0) + 1
    return {
        "tool": _tool(findings), "report_version": __version__,
        "generated": clock.stamp(findings.get("generated")), "parameters": params,
        "sigma": {"rules_loaded": sigma.get("rules_loaded"),
                  "rules_skipped": (_pairs(sigma.get("rules_skipped"), clock)
                                    if isinstance(sigma.get("rules_skipped"), Mapping) else []),
                  "hits": [[k, n] for k, n in sorted((sigma.get("hits") or {}).items())]},
        "attribution_data": geo,
        "events": summary["events"], "first": clock.stamp(summary["first"]), "last": clock.stamp(summary["last"]),
        "host_settings": [{"host": h, "key": k, "value": v, "basis": b} for h, k, v, b in store.query(
            "SELECT host, key, value, basis FROM host_settings ORDER BY host, key")],
        "sources": [{**s, "first": clock.stamp(s["first"]), "last": clock.stamp(s["last"]),
                     "year_basis": clock.in_text(s["year_basis"])} for s in summary["sources"]],
        "other_inputs": list(summary["other_inputs"]),
        "copies": copies,
        "decisions": [{"host": h, "time_zone": tz, "year": y, "sources": n}
                      for (h, tz, y), n in sorted(decisions.items())],
        "issues_total": summary["issues"],
        "issues": _issues(store),
    }


def _tool(findings: Mapping) -> dict:
    tool = findings.get("tool") or {}
    return {"name": tool.get("name") or "logsalvage", "version": tool.get("version")}


def _year_rule(basis: str | None) -> str:
    """A source's year decision without its specifics (which date, which file), to group sources by rule."""
    if not basis:
        return "—"
    return basis.split(":", 1)[0] if basis.startswith("year inferred") else basis
