"""The case summary: what is in the case database, per host, format and source."""

from __future__ import annotations

from logsalvage.store import CaseStore
from logsalvage.textsafe import printable_data


def _iso(t) -> str | None:
    return t.isoformat() if t is not None else None


def case_summary(store: CaseStore) -> dict:
    sources = [
        {"source_id": r[0], "path": r[1] + (f"!{r[2]}" if r[2] else ""), "host": r[3], "kind": r[4],
         "format": r[5], "sha256": r[6], "size": r[7], "lines": r[8], "events": r[9], "issues": r[10],
         "first": _iso(r[11]), "last": _iso(r[12]), "time_zone": r[13], "year_basis": r[14], "parser": r[15]}
        for r in store.query("SELECT source_id, path, member, host, kind, format_id, sha256, size, lines, events, "
                             "issues, first_ts, last_ts, tz || ' (' || tz_basis || ')', year_basis, parser FROM sources "
                             # one image holds a source per carved format: same host, path and member
                             "ORDER BY host, path, member, format_id, source_id")]
    hosts = [
        {"host": r[0], "events": r[1], "first": _iso(r[2]), "last": _iso(r[3]),
         "formats": {f: n for f, n in store.query(
             "SELECT format_id, count(*) FROM events WHERE host = ? GROUP BY 1 ORDER BY 1", [r[0]])}}
        for r in store.query("SELECT host, count(*), min(ts_utc), max(ts_utc) FROM events GROUP BY 1 ORDER BY 1")]
    issues = {reason: n for reason, n in store.query(
        "SELECT regexp_replace(reason, '\\[\\d+-\\d+\\]', '[N-M]') AS r, count(*) FROM issues "
        "GROUP BY 1 ORDER BY 2 DESC, 1")}
    inputs = [
        {"path": r[0] + (f"!{r[1]}" if r[1] else ""), "role": r[2], "host": r[3], "sha256": r[4], "detail": r[5]}
        for r in store.query("SELECT path, member, role, host, sha256, detail FROM inputs "
                             "WHERE role <> 'log' ORDER BY path, member")]
    copies = store.query("SELECT count(*) FROM source_copies")[0][0]
    total = store.query("SELECT count(*), min(ts_utc), max(ts_utc) FROM events")[0]
    return {
        "events": total[0], "first": _iso(total[1]), "last": _iso(total[2]),
        "sources": sources, "duplicate_copies": copies, "hosts": hosts,
        "issues_by_reason": issues, "issues": sum(issues.values()), "other_inputs": inputs,
    }


def render_text(summary: dict) -> str:
    """The summary for the terminal. Host, file and member names and issue reasons are evidence
    text: every control or format character in them is shown as an escape (textsafe.printable)."""
    summary = printable_data(summary)
    lines = [f"{summary['events']} events from {len(summary['sources'])} sources, "
             f"{summary['first']} → {summary['last']}", ""]
    for h in summary["hosts"]:
        fmts = ", ".join(f"{f} {n}" for f, n in h["formats"].items())
        lines.append(f"  {h['host']}: {h['events']} events ({fmts}), {h['first']} → {h['last']}")
    lines.append("")
    lines.append(f"issues: {summary['issues']}")
    for reason, n in list(summary["issues_by_reason"].items())[:15]:
        lines.append(f"  {n:>8}  {reason}")
    others = [i for i in summary["other_inputs"] if i["role"] != "archive"]
    if others:
        lines.append("")
        lines.append("other inputs:")
        for i in others:
            lines.append(f"  {i['role']:<10} {i['path']}  {i['detail'] or ''}")
    slow: dict[str, list[str]] = {}
    for s in summary["sources"]:
        if s.get("parser") and s["parser"] != "columnar" and not s["parser"].startswith("binary:"):
            slow.setdefault(s["parser"].removeprefix("reference: "), []).append(s["path"])
    if slow:
        lines.append("")
        lines.append("read line by line by the reference engine:")
        for why, paths in slow.items():
            lines.append(f"  {len(paths):>4} source(s), e.g. {paths[0]}: {why}")
    if summary["duplicate_copies"]:
        lines.append(f"\n{summary['duplicate_copies']} input(s) were identical copies of a source already in the case")
    return "\n".join(lines)
