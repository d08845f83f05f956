"""Plain-text renderings of ``continuity`` and ``compare`` results for the terminal."""

from __future__ import annotations

from logsalvage.report.durations import duration_label
from logsalvage.textsafe import printable


def _pct(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio * 100:.4f} %"


def render_text(result: dict) -> str:
    lines: list[str] = []
    for h in result["hosts"]:
        lines.append(f"{h['name']}: {h['records']} records ({', '.join(h['formats'] or ['all formats'])}), "
                     f"{h['span']['start']} → {h['span']['end']}")
        hb = h["heartbeat"]
        if hb is None:
            lines.append(f"  heartbeat: none found — {h.get('note', '')}")
        else:
            lines.append(f"  heartbeat ({hb['how']}): every {hb['period_s']} s, {hb['records']} records, "
                         f"{hb['regularity'] * 100:.2f} % regular: {printable(hb['pattern'])}")
            cov = h["coverage"]
            lines.append(f"  coverage {h['window']['start']} → {h['window']['end']}: {_pct(cov['ratio'])} "
                         f"({cov['covered_s']} of {cov['total_s']} s)")
            for kind, c in h["coverage_by_kind"].items():
                lines.append(f"    {kind:<8} alone: {_pct(c['ratio'])}")
            lines.append(f"  holes (> {h['k']} periods without a heartbeat): {len(h['holes'])}")
            for hole in h["holes"][:20]:
                lines.append(f"    {hole['start']} → {hole['end']}  {duration_label(hole['seconds'])}")
            if len(h["holes"]) > 20:
                lines.append(f"    … {len(h['holes']) - 20} more (--json lists all)")
        lines.append("  periods of the merged timeline:")
        for p in h["periods"]:
            lines.append(f"    {p['kind']:<8} {p['start']} → {p['end']}  {p['events']} records")
        bad = [s for s in h["seams"] if s["ok"] is False]
        if h["seams"]:
            lines.append(f"  rotation seams: {len(h['seams'])}, {len(bad)} wider than the cadence")
            for s in bad:
                filled = s["gap_covered_by_other_sources"]
                lines.append(f"    {s['from']} → {s['to']}: {duration_label(s['gap_s'])}"
                             + (f", {_pct(filled)} covered by other sources" if filled is not None else ""))
        others = h.get("other_records") or {}
        if others:
            lines.append("  other logs (not proven by this heartbeat): "
                         + ", ".join(f"{f} {o['records']}" for f, o in others.items()))
        big = sorted((int(g), n) for g, n in h["gap_histogram"].items())[-3:]
        if big:
            lines.append("  largest gaps between records: " + ", ".join(duration_label(g) for g, _ in reversed(big)))
        lines.append("")
    return "\n".join(lines).rstrip()


def render_compare(result: dict) -> str:
    if result["overlap"] is None:
        return f"{result['a']} and {result['b']}: {result.get('note', 'no overlap')}"
    lines = [f"{result['a']} vs {result['b']}, overlap {result['overlap']['start']} → {result['overlap']['end']}",
             f"  records: {result['a_events']} vs {result['b_events']}; matched {result['matched']}; "
             f"agreement {_pct(result['agreement_ratio'])}",
             f"  missing in {result['a']}: {result['missing_in_a']}; missing in {result['b']}: {result['missing_in_b']}",
             "  mismatches by cause:"]
    for cause, n in result["mismatches"].items():
        lines.append(f"    {cause:<20} {n}")
    for e in result["examples"]:
        lines.append(f"  [{e['cause']}] {e['time']}")
        lines.append(f"    a: {printable(e['a']) if e['a'] is not None else '(absent)'}")
        lines.append(f"    b: {printable(e['b']) if e['b'] is not None else '(absent)'}")
    return "\n".join(lines)
