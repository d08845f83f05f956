"""Detection over a whole case: every detector, the milestones in one ordered list, the exposure
window, the exfiltration assessment, attribution of the addresses involved; written to
``CASE_DIR/findings.json``.

The exposure window runs from the first evidence of exploitation — code execution (a web-shell
execution, a crontab planted by a service account, a job run from a writable place, a download by
the web server), an account taken over (a login from the address that had just guessed passwords)
or a SQL injection — a parameter the answers confirm injectable, or payloads
asking for a customer table (a way out for data without any code running) — to containment (case
config), else to the last evidence (the server stopped, or the last event of the case).
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from logsalvage import __version__
from logsalvage.continuity.timeline import ensure_timeline
from logsalvage.detect import access, commands, cron, database, errorlog, filesystem, ftp, packages, sigma, web
from logsalvage.detect.attribution import attribute
from logsalvage.detect.context import Context, settings_from
from logsalvage.detect.correlate import exfiltration_milestone
from logsalvage.detect.exfiltration import assess
from logsalvage.detect.model import Finding, Milestone, severity_rank
from logsalvage.config import CaseConfig
from logsalvage.store import CaseStore

FINDINGS_FILE = "findings.json"
CODE_EXECUTION = ("first_webshell_execution", "cron_first_run", "crontab_replace", "download")
# a parameter the answers confirm injectable; or payloads naming a customer table, answered or not
# (without response sizes nothing can confirm a UNION dump, and the theft is then suspected)
EXPLOITATION = (*CODE_EXECUTION, "initial_access", "sqli_injectable", "sqli_extraction")


def exposure_window(ctx: Context, milestones: list[Milestone]) -> tuple[datetime, datetime] | None:
    starts = [m.time for m in milestones if m.kind in EXPLOITATION]
    start = ctx.settings.exposure_start or (min(starts) if starts else None)
    if start is None:
        return None
    end = ctx.settings.containment
    if end is None:
        stops = [m.time for m in milestones if m.kind == "server_stopped"]
        end = max(stops) if stops else ctx.query("SELECT max(ts_utc) FROM events")[0][0]
    if end is not None and end == start:
        end = start + timedelta(seconds=1)  # the evidence ends in the second exploitation began: that second
    return (start, end) if end and end > start else None


def run_detection(store: CaseStore, config: CaseConfig | None = None, rule_dirs: list[Path] = ()) -> dict:
    ctx = Context(store, settings_from(config or CaseConfig()))
    ensure_timeline(store)
    items: list = []
    for module in (web, ftp, access, commands, cron, errorlog, filesystem, database):
        items += module.detect(ctx)
    configured = [Path(d) for d in ctx.settings.rule_dirs]
    sigma_run = sigma.run(ctx, [*configured, *rule_dirs])
    items += sigma_run.findings
    items += [Milestone(n["kind"], n["time"], n["host"], {"reported": n["text"], "source": "case config notes"})
              for n in ctx.settings.notes]
    findings = [i for i in items if isinstance(i, Finding)]
    milestones = sorted((i for i in items if isinstance(i, Milestone)), key=_milestone_order)
    window = exposure_window(ctx, milestones)
    if window is not None:
        verdict, anomalies = assess(ctx, window)
        findings += anomalies
        findings += packages.in_window(ctx, window)
        theft = exfiltration_milestone(ctx, verdict, findings)
        if theft is not None:
            milestones = sorted([*milestones, theft], key=_milestone_order)
    else:
        verdict = {"exfiltration": "undetermined", "confidence": "low", "coverage_of_exposure_window": None,
                   "holes_in_window": [], "db_host": None, "event_ids": [],
                   "reasons": ["no evidence of code execution, of an account taken over or of SQL injection "
                               "reaching data was found, so there is no exposure window to assess"]}
    findings.sort(key=lambda f: (-severity_rank(f.severity), f.first_seen, f.rule, f.id, f.event_ids))
    zone_host = _main_zone(ctx)
    addresses = sorted({a for f in findings for a in f.sources if _is_address(a)})
    return {
        "tool": {"name": "logsalvage", "version": __version__},
        "generated": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "verdict": verdict,
        "exposure_window": ({"start": window[0].astimezone(zone_host).isoformat(),
                             "end": window[1].astimezone(zone_host).isoformat()} if window else None),
        "milestones": [m.as_dict(ctx.zone(m.host)) for m in milestones],
        "findings": [f.as_dict(ctx.zone(f.host)) for f in findings],
        "attribution": attribute(addresses),
        "sigma": sigma_run.as_dict(),
        "summary": {"findings": len(findings), "by_severity": _by_severity(findings),
                    "milestones": len(milestones)},
    }


def _milestone_order(m: Milestone) -> tuple:
    """A total order: milestones of one kind on one host at one time (two jobs first run in the
    same minute) by what they are about, not by which detector query returned them first."""
    return (m.time, m.kind, m.host, json.dumps(m.detail, sort_keys=True, default=str), m.event_ids)


def write_findings(case_dir: Path, result: dict) -> Path:
    path = Path(case_dir) / FINDINGS_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def _is_address(text: str | None) -> bool:
    try:
        ipaddress.ip_address(text or "")
    except ValueError:
        return False
    return True


def _by_severity(findings: list[Finding]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -severity_rank(kv[0])))


def _main_zone(ctx: Context):
    hosts = [r[0] for r in ctx.query("SELECT host FROM events GROUP BY host ORDER BY count(*) DESC, host LIMIT 1")]
    return ctx.zone(hosts[0]) if hosts else timezone.utc
