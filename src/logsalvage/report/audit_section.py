"""The report's "What to change" section: the readiness audit's findings (``CASE_DIR/audit.json``)
grouped by the incident's countermeasures, the group with the worst finding first, each finding
with its host, file:line, why and fix. Strengths are listed apart, as what to keep."""

from __future__ import annotations

import json
from pathlib import Path

from logsalvage.audit.model import SEVERITIES, where
from logsalvage.audit.run import AUDIT_FILE, by_countermeasure


def build(case_dir: Path) -> dict | None:
    """The section's model, or None when the case has no audit."""
    try:
        audit = json.loads((Path(case_dir) / AUDIT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    weaknesses = [f for f in audit.get("findings", []) if f["severity"] != "strength"]
    strengths = [f for f in audit.get("findings", []) if f["severity"] == "strength"]

    def item(f: dict) -> dict:
        return {"severity": f["severity"], "host": f["host"], "id": f["id"], "title": f["title"], "at": where(f),
                "evidence": f.get("evidence"), "why": f["why"], "fix": f["fix"]}

    by_severity = audit["summary"]["by_severity"]
    return {"summary": audit["summary"], "dwell_days": audit.get("dwell_days"), "skipped": audit.get("skipped"),
            "counts": [{"severity": s, "count": by_severity.get(s, 0)} for s in SEVERITIES if by_severity.get(s)],
            "groups": [{"number": g["number"], "title": g["title"], "findings": [item(f) for f in g["findings"]]}
                       for g in by_countermeasure(weaknesses)],
            "strengths": [item(f) for f in strengths],
            "notes": [f"{h['name']}: {n}" for h in audit.get("hosts", []) for n in h.get("notes", [])]}
