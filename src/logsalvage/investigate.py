"""The whole investigation from an evidence folder: discover → ingest → carve the images →
continuity → detect and assess → audit the configuration → report (and a Timesketch timeline: by
default the export's ``findings`` scope, the events behind the findings and milestones, tagged).

Each step is resumable: ingest and carving skip what the case already holds (an interrupted run
keeps its finished sources and carved chunks), and the later steps are redone only when the
case's sources or the config changed since they last ran (``meta``: ``investigate.<step>``).
"""

from __future__ import annotations

import hashlib
import json
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from logsalvage.config import CaseConfig
from logsalvage.errors import UsageError
from logsalvage.store import CaseStore

if TYPE_CHECKING:
    from logsalvage.audit.host import AuditOptions

Progress = Callable[..., None]
STEPS = ("ingest", "carve", "continuity", "detect", "audit", "report", "timeline")


@dataclass
class InvestigationResult:
    case_dir: Path
    verdict: dict = field(default_factory=dict)
    report: Path | None = None
    findings: Path | None = None
    timeline: Path | None = None
    steps: dict = field(default_factory=dict)  # step -> "done" | "reused" | "skipped: why"
    seconds: dict = field(default_factory=dict)  # step -> wall-clock seconds in this run
    peak_rss_mib: float | None = None  # this process's peak resident memory (not Dask workers')

    @contextmanager
    def timed(self, step: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[step] = round(time.perf_counter() - started, 2)

    def as_dict(self) -> dict:
        return {"case": str(self.case_dir), "verdict": self.verdict, "steps": self.steps,
                "seconds": self.seconds, "peak_rss_mib": self.peak_rss_mib,
                "report": str(self.report) if self.report else None,
                "findings": str(self.findings) if self.findings else None,
                "timeline": str(self.timeline) if self.timeline else None}


def _state(store: CaseStore, config: CaseConfig) -> str:
    """What the later steps depend on: the case's sources and the config's contents."""
    ids = [r[0] for r in store.query("SELECT source_id FROM sources ORDER BY source_id")]
    raw = json.dumps(config.raw or {}, sort_keys=True, default=str)
    return hashlib.sha256("\n".join([*ids, raw]).encode()).hexdigest()


def _audit_state(store: CaseStore, state: str) -> str:
    """What the audit depends on besides the sources: every input's bytes (configuration files are
    inputs, not sources)."""
    rows = store.query("SELECT path, coalesce(member, ''), coalesce(sha256, '') FROM inputs ORDER BY 1, 2, 3")
    return hashlib.sha256("\n".join([state, *("\t".join(r) for r in rows)]).encode()).hexdigest()


def investigate(evidence: Path, case_dir: Path, *, config: CaseConfig | None = None, workers: int = 1,
                scheduler: str | None = None, progress: Progress | None = None,
                timeline: bool = True, timeline_scope: str = "findings") -> InvestigationResult:
    from logsalvage.carve.pipeline import carvable_formats, carve_into_case
    from logsalvage.cluster import session
    from logsalvage.continuity.analysis import case_continuity
    from logsalvage.detect.run import run_detection, write_findings
    from logsalvage.audit.host import AuditOptions
    from logsalvage.audit.run import AUDIT_FILE, audit_summary
    from logsalvage.export import SCOPES, export
    from logsalvage.ingest import ingest
    from logsalvage.report.redraw import write_case_report

    if timeline_scope not in SCOPES:
        raise UsageError(f"unknown timeline scope {timeline_scope!r}; choose one of {', '.join(SCOPES)}")
    config = config or CaseConfig()
    audit_options = AuditOptions.from_case_config(config)  # a bad audit: section fails before any work
    evidence = Path(evidence)
    if not evidence.is_dir():
        raise UsageError(f"evidence must be a directory: {evidence}")
    say = progress or (lambda *a, **k: None)
    result = InvestigationResult(Path(case_dir))

    with session(workers, scheduler):  # one Dask cluster for ingest and carving
        say("ingest", 0, None)
        with result.timed("ingest"):
            ingest([evidence], case_dir, config=config, progress=progress, workers=workers, scheduler=scheduler)
        result.steps["ingest"] = "done"

        with CaseStore(case_dir) as store:
            # an image counts as carved once every format was committed (a carve interrupted between
            # two formats left some salvage sources but is not finished: carving again resumes it)
            wanted = set(carvable_formats())
            images = [(rel, host, sha, sha is not None and wanted <= store.carved_formats(sha))
                      for rel, host, sha in store.query(
                          "SELECT path, host, sha256 FROM inputs WHERE role = 'image' ORDER BY path")]
        carved = []
        with result.timed("carve"):
            for rel, host, _sha, done in images:
                if done:
                    continue
                say(f"carve {rel}", 0, None)
                carve_into_case([evidence / rel], case_dir, host=host, config=config, progress=progress,
                                workers=workers, scheduler=scheduler)
                carved.append(rel)
        result.steps["carve"] = (f"done: {', '.join(carved)}" if carved
                                 else "reused" if images else "skipped: no disk image in the evidence")

    with CaseStore(case_dir) as store:
        state = _state(store, config)

        def current(step: str, output: Path, key: str | None = None) -> bool:
            return store.meta(f"investigate.{step}") == (key or state) and output.exists()

        def run(step: str, output: Path, work: Callable[[], None], key: str | None = None) -> None:
            """``work`` writes ``output``; skipped when the output is current for these sources and config
            (``key``: what the step depends on, when that is more than ``state``)."""
            if current(step, output, key):
                result.steps[step] = "reused"
                return
            say(step, 0, None)
            with result.timed(step):
                work()
            store.set_meta(f"investigate.{step}", key or state)
            result.steps[step] = "done"

        continuity_file = Path(case_dir) / "continuity.json"
        run("continuity", continuity_file, lambda: _write_json(continuity_file, case_continuity(store)))

        findings_file = Path(case_dir) / "findings.json"
        run("detect", findings_file, lambda: write_findings(Path(case_dir), run_detection(store, config)))
        findings = json.loads(findings_file.read_text(encoding="utf-8"))
        result.findings, result.verdict = findings_file, findings["verdict"]

        audit_file = Path(case_dir) / AUDIT_FILE
        audit_key = _audit_state(store, state)
        run("audit", audit_file, lambda: _audit(store, evidence, Path(case_dir), config, audit_options), audit_key)
        audit = json.loads(audit_file.read_text(encoding="utf-8"))
        if findings.get("audit") != audit_summary(audit):  # (detect rewrites findings.json without it)
            findings["audit"] = audit_summary(audit)
            write_findings(Path(case_dir), findings)
        if audit.get("skipped"):
            result.steps["audit"] = f"skipped: {audit['skipped']}"

        report_file = Path(case_dir) / "report.html"
        run("report", report_file, lambda: write_case_report(store, Path(case_dir), findings), audit_key)
        result.report = report_file

        timeline_file = Path(case_dir) / "timeline.jsonl"
        timeline_key = f"{state} scope={timeline_scope}"  # (a full export is no scoped one, nor the reverse)
        if timeline or current("timeline", timeline_file, timeline_key):
            run("timeline", timeline_file, lambda: export(store, "timesketch-jsonl", timeline_file,
                                                          scope=timeline_scope, findings=findings), timeline_key)
            result.timeline = timeline_file
        else:
            timeline_file.unlink(missing_ok=True)  # an older export would no longer match the case
            result.steps["timeline"] = "skipped: not asked for"
    result.peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _audit(store: CaseStore, evidence: Path, case_dir: Path, config: CaseConfig, options: AuditOptions) -> None:
    """The readiness audit of the evidence's configuration: ``audit.json`` and the case's table. Evidence
    without any system tree (logs alone) gives an empty audit that says so."""
    from logsalvage.audit.run import run_audit, skipped_audit, store_findings, write_audit

    try:
        audit = run_audit([evidence], options, host_for=config.host_for if config.hosts else None)
    except UsageError:  # (its message names the evidence's own path, which no output should carry)
        audit = skipped_audit([evidence], options, "no system tree in the evidence (no directory holds etc/ or var/)")
    store_findings(store, audit)
    write_audit(case_dir, audit)


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
