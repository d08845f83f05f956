"""The terminal rendering of a detection result (``logsalvage detect`` without ``--json``)."""

from __future__ import annotations

from logsalvage.textsafe import printable


def render_text(result: dict, *, findings_limit: int = 40) -> str:
    v = result["verdict"]
    cov = v.get("coverage_of_exposure_window")
    lines = [f"exfiltration: {v['exfiltration']} (confidence {v['confidence']}; database log covers "
             f"{'n/a' if cov is None else f'{cov * 100:.2f} %'} of the exposure window)"]
    lines += [f"  {printable(reason)}" for reason in v.get("reasons", [])]
    window = result.get("exposure_window")
    lines.append(f"exposure window: {window['start']} → {window['end']}" if window else "exposure window: none found")
    lines.append("")
    lines.append(f"milestones ({len(result['milestones'])}):")
    for m in result["milestones"]:
        detail = ", ".join(f"{k}={v}" for k, v in m["detail"].items() if not isinstance(v, (list, dict)))
        lines.append(f"  {m['time']}  {m['host']:<8} {m['kind']:<34} {printable(detail)[:100]}")
    lines.append("")
    counts = ", ".join(f"{n} {s}" for s, n in result["summary"]["by_severity"].items())
    lines.append(f"findings ({len(result['findings'])}: {counts}):")
    for f in result["findings"][:findings_limit]:
        lines.append(f"  [{f['severity']:<8}] {f['first_seen']}  {f['host']:<8} {f['rule']:<30} "
                     f"{f['count']:>7}  {printable(f['title'])[:90]}")
    if len(result["findings"]) > findings_limit:
        lines.append(f"  … {len(result['findings']) - findings_limit} more in findings.json")
    return "\n".join(lines)
