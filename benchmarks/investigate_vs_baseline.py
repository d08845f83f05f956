"""The whole investigation at the incident's scale, step by step, against the incident's own
pipeline for the steps it had.

    python benchmarks/investigate_vs_baseline.py --demo DIR [--workers N] [--keep-case DIR] [--json]

DIR is a demo evidence set (``logsalvage demo DIR --full`` is run first when DIR/truth.json is
missing). ``logsalvage investigate DIR/evidence --config DIR/case.yaml`` runs in a fresh case as
a child process; its own ``--json`` gives seconds per step, and the peak resident memory of its
whole process tree (Dask workers included) is sampled every 0.2 s. The outcome is checked against
truth.json: the verdict, the database log's coverage of the exposure window, and every planted
milestone found at its time.

The investigators had three of these steps, run by hand (../shared/background.md): salvage
(``grep -a`` for the record header over the image, ``iconv -c``), merge and dedupe (``sort`` and
``timestamp_uniq.pl``) and gaps (``gap_find.pl``). They are timed on the same evidence: the grep
on the image itself; sort, uniq and gap_find on every physical postgres line of db01 in the case
(live, backup and salvaged copies, one file per calendar year since syslog has no year: the
continuity benchmark's export). Their counterpart here is ingest + carve + continuity. Detection,
the exfiltration assessment, the report and the timeline export had no scripted counterpart.
Figures are measured on this machine in this run, never absolute claims.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from carve_vs_baseline import HEADER  # noqa: E402
from continuity_vs_baseline import BASELINES, baseline, export_lines, say  # noqa: E402

from logsalvage.continuity.analysis import host_zone  # noqa: E402
from logsalvage.demo.truth import missed_milestones  # noqa: E402
from logsalvage.store import CaseStore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class TreeMemory(threading.Thread):
    """Peak summed RSS of a process and all its descendants, sampled."""

    def __init__(self, pid: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.every, self.peak, self.done = psutil.Process(pid), every, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                total = 0
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                return
            self.done.wait(self.every)


def run_investigate(demo: Path, case: Path, workers: int) -> tuple[dict, float, int]:
    cmd = [sys.executable, "-m", "logsalvage", "investigate", str(demo / "evidence"), "--case", str(case),
           "--config", str(demo / "case.yaml"), "--workers", str(workers), "--json"]
    say(" ".join(cmd[2:]))
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True)
    memory = TreeMemory(proc.pid)
    memory.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - started
    memory.done.set()
    memory.join()
    if proc.returncode:
        raise SystemExit(f"investigate exited {proc.returncode}")
    return json.loads(out), wall, memory.peak


def grep_salvage(image: Path, work: Path) -> float:
    subprocess.run(["cat", str(image)], stdout=subprocess.DEVNULL, check=True)  # warm the page cache, as for ours
    started = time.perf_counter()
    subprocess.run(f"LC_ALL=C grep -a -E '{HEADER}' '{image}' | iconv -c -f utf-8 -t utf-8 > '{work / 'sal.txt'}'",
                   shell=True, check=True)
    return time.perf_counter() - started


def accuracy(demo: Path, case: Path) -> dict:
    truth = json.loads((demo / "truth.json").read_text(encoding="utf-8"))
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    verdict = findings["verdict"]
    truth_cov = truth["db"]["coverage"]["exposure_window"]
    missed = missed_milestones(truth, findings["milestones"])
    return {"verdict": verdict["exfiltration"], "confidence": verdict["confidence"],
            "truth_exfiltration": truth.get("exfiltration"),
            "coverage_of_exposure_window": verdict["coverage_of_exposure_window"], "truth_coverage": truth_cov,
            "milestones_planted": len(truth["milestones"]), "milestones_missed": missed}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", type=Path, required=True, metavar="DIR")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep-case", type=Path, metavar="DIR", help="investigate into DIR and keep it")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if subprocess.run(["perl", "-MDate::Parse", "-e", "1"], check=False, capture_output=True).returncode:
        raise SystemExit("the baseline needs perl with Date::Parse: apt-get install libtimedate-perl")
    if not (args.demo / "truth.json").exists():
        say(f"logsalvage demo {args.demo} --full")
        subprocess.run([sys.executable, "-m", "logsalvage", "demo", str(args.demo), "--full"], check=True,
                       stdout=sys.stderr, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    work = Path(tempfile.mkdtemp(prefix="logsalvage-investigate-bench-"))
    case = args.keep_case or work / "case"
    if case.exists():
        raise SystemExit(f"{case} exists: the benchmark needs a fresh case")
    try:
        out, wall, peak = run_investigate(args.demo, case, args.workers)
        seconds = out["seconds"]
        check = accuracy(args.demo, case)
        image = args.demo / "evidence" / "db01" / "image" / "sdb1.dd"
        say("baseline: grep -a | iconv -c over the image")
        grep_s = grep_salvage(image, work)
        with CaseStore(case, read_only=True) as store:
            say("baseline: exporting db01's physical postgres lines, one file per year")
            year_files, lines_in = export_lines(store, "db01", work / "export")
            zone = host_zone(store, "db01").key
        say("baseline: sort | timestamp_uniq.pl, gap_find.pl")
        base = baseline(year_files, work, zone)
        had = sum(seconds.get(s, 0) for s in ("ingest", "carve", "continuity"))
        base_total = grep_s + base["total_s"]
        result = {
            "cores": os.cpu_count(), "workers": args.workers, "image_bytes": image.stat().st_size,
            "investigate": {"wall_s": round(wall, 1), "seconds_by_step": seconds,
                            "peak_rss_mib_process_tree": round(peak / 2**20),
                            "peak_rss_mib_main_process": out.get("peak_rss_mib")},
            "outcome": check,
            "baseline": {"grep_iconv_s": round(grep_s, 1), "lines_sorted": lines_in, **base,
                         "total_s": round(base_total, 1), "scripts": str(BASELINES)},
            "steps_the_incident_had": {"ours_ingest_carve_continuity_s": round(had, 1),
                                       "baseline_s": round(base_total, 1),
                                       "ratio_baseline_over_ours": round(base_total / had, 2) if had else None},
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        inv = result["investigate"]
        print(f"investigate: {inv['wall_s']} s wall on {result['cores']} cores ({args.workers} workers); peak RSS "
              f"{inv['peak_rss_mib_process_tree']} MiB (process tree)")
        for step, sec in inv["seconds_by_step"].items():
            print(f"  {step:12} {sec:9.1f} s")
        o = result["outcome"]
        print(f"outcome: {o['verdict']} ({o['confidence']}); coverage {o['coverage_of_exposure_window']} "
              f"(truth {o['truth_coverage']}); milestones missed {len(o['milestones_missed'])} of "
              f"{o['milestones_planted']}")
        b, s = result["baseline"], result["steps_the_incident_had"]
        print(f"baseline: grep|iconv {b['grep_iconv_s']} s, sort|uniq {b['sort_uniq_s']} s, gap_find "
              f"{b['gap_find_s']} s = {b['total_s']} s")
        print(f"steps the incident had: ours {s['ours_ingest_carve_continuity_s']} s vs {s['baseline_s']} s "
              f"-> {s['ratio_baseline_over_ours']}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
