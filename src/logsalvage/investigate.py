"""The whole investigation from an evidence folder: discover → ingest → carve the images →
continuity → detect and assess → report (and a Timesketch timeline).

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
from typing import Callable

from logsalvage.config import CaseConfig
from logsalvage.errors import UsageError
from logsalvage.store import CaseStore

Progress = Callable[..., None]
STEPS = ("ingest", "carve", "continuity", "detect", "report", "timeline")


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


def investigate(evidence: Path, case_dir: Path, *, config: CaseConfig | None = None, workers: int = 1,
                scheduler: str | None = None, progress: Progress | None = None,
                timeline: bool = True) -> InvestigationResult:
    from logsalvage.carve.pipeline import carvable_formats, carve_into_case
    from logsalvage.continuity.analysis import case_continuity
    from logsalvage.detect.run import run_detection, write_findings
    from logsalvage.export import export
    from logsalvage.ingest import ingest

    config = config or CaseConfig()
    evidence = Path(evidence)
    if not evidence.is_dir():
        raise UsageError(f"evidence must be a directory: {evidence}")
    say = progress or (lambda *a, **k: None)
    result = InvestigationResult(Path(case_dir))

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

        def current(step: str, output: Path) -> bool:
            return store.meta(f"investigate.{step}") == state and output.exists()

        def run(step: str, output: Path, work: Callable[[], None]) -> None:
            """``work`` writes ``output``; skipped when the output is current for these sources and config."""
            if current(step, output):
                result.steps[step] = "reused"
                return
            say(step, 0, None)
            with result.timed(step):
                work()
            store.set_meta(f"investigate.{step}", state)
            result.steps[step] = "done"

        continuity_file = Path(case_dir) / "continuity.json"
        run("continuity", continuity_file, lambda: _write_json(continuity_file, case_continuity(store)))

        findings_file = Path(case_dir) / "findings.json"
        run("detect", findings_file, lambda: write_findings(Path(case_dir), run_detection(store, config)))
        findings = json.loads(findings_file.read_text(encoding="utf-8"))
        result.findings, result.verdict = findings_file, findings["verdict"]

        report_file = Path(case_dir) / "report.html"
        run("report", report_file, lambda: _write_report(store, Path(case_dir), findings))
        result.report = report_file

        timeline_file = Path(case_dir) / "timeline.jsonl"
        if timeline or current("timeline", timeline_file):
            run("timeline", timeline_file, lambda: export(store, "timesketch-jsonl", timeline_file))
            result.timeline = timeline_file
        else:
            timeline_file.unlink(missing_ok=True)  # an older export would no longer match the case
            result.steps["timeline"] = "skipped: not asked for"
    result.peak_rss_mib = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


def _write_report(store: CaseStore, case_dir: Path, findings: dict) -> Path:
    from logsalvage.report import html, model

    data = model.build(store, case_dir, findings, figures_dir=case_dir / "figures")
    return html.write_report(data, case_dir)


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)
