"""The whole audit: find the system trees under the given paths, run every check family on each
host, and give the findings in a total order (severity, countermeasure, host, check, file, line),
with a summary; store them in a case; render them as text."""

from __future__ import annotations

from pathlib import Path

from logsalvage.audit import access, apache, logging, mysql, nginx, packages, php, postgresql, schema, vsftpd, webroot
from logsalvage.audit.host import AuditOptions, Host
from logsalvage.audit.model import CATEGORIES, SEVERITIES, SEVERITY_RANK, Finding, where
from logsalvage.audit.tree import find_systems

# each family: (name, check function); the order only decides the order of notes
FAMILIES = (("postgresql", postgresql.check), ("mysql", mysql.check), ("apache", apache.check),
            ("nginx", nginx.check), ("vsftpd", vsftpd.check), ("access", access.check), ("logging", logging.check),
            ("php", php.check), ("webroot", webroot.check), ("packages", packages.check), ("schema", schema.check))
AUDIT_FILE = "audit.json"
TABLE = "audit_findings"
COLUMNS = ("host", "finding_id", "severity", "category", "file", "line", "absent", "title", "why", "fix", "evidence")


def audit_host(host: Host) -> tuple[list[Finding], list[str]]:
    """The findings of one host and notes on what could not be checked."""
    findings: list[Finding] = []
    notes: list[str] = []
    if not host.collected:
        findings.append(host.finding("audit.no_configuration", "info", "log_audit", "etc",
                                     "No configuration was collected for this host (no etc/ in its tree)",
                                     "The audit can say nothing about how this host logs or who can get in.",
                                     "Collect /etc, /var/spool/cron and the web and database configuration with "
                                     "the logs.", absent=True))
    for name, check in FAMILIES:
        try:
            findings += check(host)
        except Exception as exc:  # one family's failure on odd input must not hide the others' findings
            notes.append(f"{name} checks stopped: {type(exc).__name__}: {exc}")
    return findings, notes


def run_audit(paths: list[Path], options: AuditOptions | None = None, *, host_for=None) -> dict:
    """Audit every system tree under ``paths`` (``UsageError`` for a path that cannot be audited)."""
    options = options or AuditOptions()
    trees = find_systems([Path(p) for p in paths], host_for=host_for)
    findings: list[Finding] = []
    hosts = []
    for tree in trees:
        host = Host(tree, options)
        found, notes = audit_host(host)
        findings += found
        hosts.append({"name": tree.host, "root": tree.shown_prefix, "live": tree.live,
                      "configuration_collected": host.collected, "files_read": sorted(set(tree.read_files)),
                      "notes": sorted(set(tree.notes)) + notes})
    findings = sorted(set(findings), key=Finding.sort_key)
    return {"paths": [str(p) for p in paths], "dwell_days": options.dwell_days, "hosts": hosts,
            "summary": summary(findings, [h["name"] for h in hosts]),
            "findings": [f.as_dict() for f in findings]}


def summary(findings: list[Finding], hosts: list[str]) -> dict:
    by_severity = {s: 0 for s in SEVERITIES}
    by_category: dict[str, dict[str, int]] = {}
    for f in findings:
        by_severity[f.severity] += 1
        by_category.setdefault(f.category, {s: 0 for s in SEVERITIES})[f.severity] += 1
    return {"hosts": hosts, "findings": len(findings), "by_severity": by_severity,
            "by_category": {c: by_category[c] for c in CATEGORIES if c in by_category},
            "weaknesses": sum(n for s, n in by_severity.items() if s != "strength")}


def by_countermeasure(findings: list[dict]) -> list[dict]:
    """Findings grouped by countermeasure: the group with the worst finding first (then the
    incident's order), and in each group the worst first."""
    groups: dict[str, list[dict]] = {}
    for f in findings:
        groups.setdefault(f["category"], []).append(f)
    order = sorted(groups, key=lambda c: (min(SEVERITY_RANK[f["severity"]] for f in groups[c]), CATEGORIES[c][0]))
    return [{"category": c, "number": CATEGORIES[c][0], "title": CATEGORIES[c][1],
             "findings": sorted(groups[c], key=lambda f: (SEVERITY_RANK[f["severity"]], f["host"], f["id"],
                                                         f["file"] or "", f["line"] or 0))}
            for c in order]


def render_text(result: dict) -> str:
    """The findings for a terminal, grouped by countermeasure (the caller makes evidence text printable)."""
    s = result["summary"]
    counts = ", ".join(f"{n} {sev if sev != 'strength' else 'strengths'}" for sev, n in s["by_severity"].items() if n)
    out = [f"audit of {', '.join(s['hosts']) or 'nothing'}: {counts or 'no findings'} "
           f"(retention measured against a {result['dwell_days']}-day dwell time)"]
    for group in by_countermeasure(result["findings"]):
        out += ["", f"({group['number']}) {group['title']}"]
        for f in group["findings"]:
            out.append(f"  {f['severity'].upper():<9}{f['host']}: {f['title']}")
            out.append(f"           at   {where(f)}")
            if f.get("evidence"):
                out.append(f"           line {f['evidence']}")
            out.append(f"           why  {f['why']}")
            out.append(f"           fix  {f['fix']}")
    for h in result["hosts"]:
        for note in h["notes"]:
            out.append(f"note: {h['name']}: {note}")
    return "\n".join(out)


def store_findings(store, result: dict) -> int:
    """Replace the case's audit findings with ``result``'s (one transaction)."""
    rows = [(f["host"], f["id"], f["severity"], f["category"], f["file"], f["line"], f["absent"], f["title"],
             f["why"], f["fix"], f["evidence"]) for f in result["findings"]]
    with store.transaction():
        store.execute(f"DELETE FROM {TABLE}")
        store.insert_rows(TABLE, list(COLUMNS), rows)
    return len(rows)


def write_audit(case_dir: Path, result: dict) -> Path:
    """``CASE_DIR/audit.json``, replaced whole."""
    import json

    path = Path(case_dir) / AUDIT_FILE
    tmp = path.with_name(AUDIT_FILE + ".tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def check_case_location(case_dir: Path, paths: list[Path]) -> None:
    """Outputs never go into the audited tree — except that a live system's ``/`` holds every
    directory: there the case may not lie in what the audit reads (``/etc``, ``/var/spool``,
    ``/var/log``, ``/var/lib``)."""
    from logsalvage.errors import UsageError
    from logsalvage.store import check_case_outside

    case = Path(case_dir).resolve()
    for p in paths:
        if Path(p).resolve() == Path("/"):
            for inside in ("/etc", "/var/spool", "/var/log", "/var/lib"):
                if case == Path(inside) or Path(inside) in case.parents:
                    raise UsageError(f"the case directory {case_dir} is inside {inside}, which the audit of / reads: "
                                     "put it elsewhere")
        else:
            check_case_outside(case_dir, [Path(p)])


def skipped_audit(paths: list[Path], options: AuditOptions, why: str) -> dict:
    """The result of an audit that found nothing to read (``why``)."""
    return {"paths": [str(p) for p in paths], "dwell_days": options.dwell_days, "hosts": [],
            "summary": summary([], []), "findings": [], "skipped": why}


def audit_summary(result: dict) -> dict:
    """What findings.json carries of the audit: counts, and each high finding in one line."""
    s = result["summary"]
    out = {"file": AUDIT_FILE, "hosts": s["hosts"], "by_severity": s["by_severity"],
           "by_category": s["by_category"], "weaknesses": s["weaknesses"],
           "high": [{"host": f["host"], "id": f["id"], "title": f["title"], "at": where(f)}
                    for f in result["findings"] if f["severity"] == "high"]}
    if result.get("skipped"):
        out["skipped"] = result["skipped"]
    return out


def case_audit_summary(case_dir: Path) -> dict | None:
    """The ``audit`` summary of the audit stored in a case (``audit.json``), or None."""
    import json

    try:
        return audit_summary(json.loads((Path(case_dir) / AUDIT_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError):
        return None


def update_findings_file(case_dir: Path, result: dict) -> None:
    """Put the audit's summary into the case's findings.json, when there is one."""
    import json

    from logsalvage.detect.run import FINDINGS_FILE, write_findings

    try:
        findings = json.loads((Path(case_dir) / FINDINGS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if findings.get("audit") != audit_summary(result):
        findings["audit"] = audit_summary(result)
        write_findings(Path(case_dir), findings)
