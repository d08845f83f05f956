"""What the readiness audit reports: findings, their severities and the incident's countermeasure
categories they serve."""

from __future__ import annotations

from dataclasses import asdict, dataclass

# worst first; "strength" is good practice worth keeping, reported so it is not undone
SEVERITIES = ("high", "medium", "low", "info", "strength")
SEVERITY_RANK = {s: i for i, s in enumerate(SEVERITIES)}

# the incident report's six countermeasures, in its order
CATEGORIES = {
    "ftp": (1, "No FTP, or FTP only from fixed addresses"),
    "access": (2, "Key-based maintenance access with random passwords"),
    "updates": (3, "Continuous updates"),
    "hardening": (4, "Passwords hashed, input distrusted"),
    "pentest": (5, "Penetration tests"),
    "log_audit": (6, "Regular, automated log audit: logs that can answer the next incident"),
}


@dataclass(frozen=True)
class Finding:
    """One weakness (or strength) of one host, with the file and line that show it."""

    id: str  # stable check id, e.g. "vsftpd.anonymous_enable"
    severity: str  # one of SEVERITIES
    category: str  # key of CATEGORIES
    host: str
    file: str | None  # the file that shows it, as the audit names it (or whose absence shows it)
    line: int | None  # 1-based line in ``file``; None for a whole file or an absent one
    title: str  # what was found, one line
    why: str  # why it matters for an investigation or an intrusion, one sentence
    fix: str  # what to change
    evidence: str | None = None  # the configuration text as found (the line), for the reader to check
    absent: bool = False  # ``file`` is not there, and that is what shows it

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")

    def sort_key(self) -> tuple:
        return (SEVERITY_RANK[self.severity], CATEGORIES[self.category][0], self.host, self.id, self.file or "",
                self.line or 0, self.title)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["category_title"] = CATEGORIES[self.category][1]
        d["countermeasure"] = CATEGORIES[self.category][0]
        return d


def where(f: Finding | dict) -> str:
    """``file:line``, ``file``, or ``file (absent)``: where a finding points."""
    get = f.get if isinstance(f, dict) else lambda k: getattr(f, k)
    if not get("file"):
        return "—"
    if get("absent"):
        return f"{get('file')} (absent)"
    return f"{get('file')}:{get('line')}" if get("line") else str(get("file"))
