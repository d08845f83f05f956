"""``CASE_DIR/findings.json`` read back (``detect`` and ``investigate`` write it) by the commands
that work from it — the report's redraw, the scoped timeline export — with one readable error
when it is missing or cannot be read."""

from __future__ import annotations

import json
from pathlib import Path

from logsalvage.errors import UsageError


def read_findings(case_dir: Path, *, otherwise: str = "") -> dict:
    """The findings of the case in ``case_dir``; ``otherwise`` ends the error message of a case
    without them (another way to get what was asked)."""
    from logsalvage.detect.run import FINDINGS_FILE

    path = Path(case_dir) / FINDINGS_FILE
    try:
        findings = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"no {FINDINGS_FILE} in {case_dir}: run 'logsalvage detect --case {case_dir}' "
                         f"(or investigate) first{otherwise}") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} cannot be read as findings: {exc}") from None
    if not isinstance(findings, dict):
        raise UsageError(f"{path} cannot be read as findings: not a JSON object")
    return findings
