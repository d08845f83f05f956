"""``report.html`` drawn from a case: the one function ``investigate``'s report step and
``logsalvage report`` both call, so a redrawn report is the report ``investigate`` wrote.

A redraw reads what the earlier steps left in the case (``findings.json``, ``audit.json`` when
there is one, the case database) and runs nothing again: after a template or model change, or to
print the report, there is no need to investigate again.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from logsalvage.errors import UsageError
from logsalvage.findings_file import read_findings
from logsalvage.store import DB_NAME, CaseStore


def write_case_report(store: CaseStore, case_dir: Path, findings: Mapping) -> Path:
    """``CASE_DIR/report.html`` (and its figures in ``CASE_DIR/figures``) for ``findings``."""
    from logsalvage.report import html, model

    data = model.build(store, case_dir, findings, figures_dir=Path(case_dir) / "figures")
    return html.write_report(data, case_dir)


def redraw(case_dir: Path) -> Path:
    """Write the report of the case in ``case_dir`` again from its database and ``findings.json``."""
    case_dir = Path(case_dir)
    if not (case_dir / DB_NAME).is_file():
        raise UsageError(f"no case database at {case_dir / DB_NAME} (run 'logsalvage investigate' first)")
    findings = read_findings(case_dir)
    # (writable: the report's continuity rebuilds the merged timeline when it is not current)
    with CaseStore(case_dir) as store:
        return write_case_report(store, case_dir, findings)
