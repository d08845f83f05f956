"""Ingest throughput and peak memory against the incident's own pipeline, in one run.

    python benchmarks/ingest_vs_baseline.py [LOGFILE ...] [--from-demo DIR] [--lines N] [--workers N] [--json]

The input is the given log files, or the database server's messages files of a demo evidence set
(``--from-demo``: live files and backup-archive members, as separate files), or N synthesised
PostgreSQL-through-syslog lines in the incident's format. It then times, on the same bytes:

  * ``logsalvage ingest`` into a fresh case (lines/s, peak RSS of the process), with the columnar
    engine (the default) and with the per-line reference engine (``--engine reference``);
  * the investigators' ``LC_ALL=C sort -s -k1,1M -k2,2n -k3,3 | perl timestamp_uniq.pl``
    (../shared/baselines/), lines/s;

and does the ingest twice more on half and double the input to show whether peak memory depends
on input size. Figures are ratios measured on this machine in this run, never absolute claims.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT.parent / "shared" / "baselines"


def synthesise(path: Path, n: int) -> None:
    with open(path, "w") as fh:
        for i in range(n):
            s = i * 30 // 10
            day, h, m, sec = 1 + (s // 86400) % 28, (s // 3600) % 24, (s // 60) % 60, s % 60
            head = f"Nov {day:2d} {h:02d}:{m:02d}:{sec:02d} db01 postgres[{2000 + i % 30000}]: "
            if i % 5:
                fh.write(head + f"[1-1] DATABASE=[unknown],USER=[unknown],CLIENT=127.0.0.1({40000 + i % 20000}),"
                         "LOG:  incomplete startup packet\n")
            else:
                fh.write(head + f"[{i % 7 + 1}-1] DATABASE=ferry,USER=webapp,CLIENT=192.168.10.11({40000 + i % 20000}),"
                         f"LOG:  duration: 3120.512 ms  statement: SELECT * FROM reservations WHERE voyage_id = {i}\n")


def ingest_once(log: Path, work: Path, workers: int = 1, engine: str = "auto") -> tuple[float, int]:
    """Seconds and peak RSS (KiB, the largest of the main process and its workers)."""
    case = work / f"case-{log.stem}"
    shutil.rmtree(case, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    # a fresh interpreter per run so peak RSS is this run's own
    code = ("import resource,sys,time;from pathlib import Path;from logsalvage.ingest import ingest;"
            "t=time.perf_counter();ingest([Path(sys.argv[1])],Path(sys.argv[2]),host='db01',workers=int(sys.argv[3]),"
            "engine=sys.argv[4]);"
            "print(time.perf_counter()-t, max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
            "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))")
    out = subprocess.run([sys.executable, "-c", code, str(log), str(case), str(workers), engine], check=True, env=env,
                         capture_output=True, text=True).stdout.splitlines()[-1].split()
    return float(out[0]), int(out[1])


def demo_db_files(demo: Path, dest: Path) -> list[Path]:
    """db01's messages files of a demo evidence set as plain files (archive members included)."""
    import gzip
    import tarfile

    dest.mkdir(parents=True, exist_ok=True)
    out = []
    ev = demo / "evidence" / "db01"
    for p in sorted((ev / "var" / "log").glob("messages*")):
        target = dest / p.name.removesuffix(".gz")
        opener = gzip.open if p.suffix == ".gz" else open
        with opener(p, "rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
        out.append(target)
    for archive in sorted((ev / "backup").glob("*.tar.gz")):
        with tarfile.open(archive) as tf:
            for m in tf.getmembers():
                if m.isreg():
                    target = dest / Path(m.name).name
                    with tf.extractfile(m) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                    out.append(target)
    return sorted(out)


def baseline_once(log: Path, work: Path) -> float:
    perl = BASELINES / "timestamp_uniq.pl"
    cmd = (f"LC_ALL=C sort -s -k 1,1M -k 2,2n -k 3,3 < '{log}' | perl '{perl}' > '{work / 'sorted.txt'}' "
           f"2> '{work / 'format_errors.txt'}'")
    t = time.perf_counter()
    subprocess.run(cmd, shell=True, check=True)
    return time.perf_counter() - t


def gather_lines(logs: list[Path], demo: Path | None, lines: int, work: Path) -> Path:
    """WORK/db.log: the given logs, a demo's db01 messages files (also kept apart under WORK/db),
    or ``lines`` synthesised ones."""
    full = work / "db.log"
    files = demo_db_files(demo, work / "db") if demo else logs
    if files:
        with open(full, "wb") as out:
            for p in files:
                with open(p, "rb") as fh:
                    shutil.copyfileobj(fh, out)
    else:
        synthesise(full, lines)
    return full


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="*", type=Path)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--from-demo", type=Path, metavar="DIR")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logsalvage-bench-"))
    try:
        full = gather_lines(args.logs, args.from_demo, args.lines, work)
        n = count_lines(full)
        half = work / "half.log"
        double = work / "double.log"
        with open(full, "rb") as fh, open(half, "wb") as h:
            for i, line in enumerate(fh):
                if i >= n // 2:
                    break
                h.write(line)
        with open(double, "wb") as d:
            for _ in range(2):
                with open(full, "rb") as fh:
                    shutil.copyfileobj(fh, d)
        base_s = baseline_once(full, work)
        ours_s, ours_rss = ingest_once(work / "db" if args.from_demo else full, work, args.workers)
        ref_s, ref_rss = ingest_once(work / "db" if args.from_demo else full, work, args.workers, "reference")
        _, rss_half = ingest_once(half, work)
        _, rss_double = ingest_once(double, work)
        result = {
            "lines": n,
            "bytes": full.stat().st_size,
            "logsalvage_ingest": {"workers": args.workers, "seconds": round(ours_s, 2),
                                  "lines_per_s": round(n / ours_s),
                                  "peak_rss_mib": round(ours_rss / 1024)},
            "reference_engine_ingest": {"seconds": round(ref_s, 2), "lines_per_s": round(n / ref_s),
                                        "peak_rss_mib": round(ref_rss / 1024)},
            "columnar_over_reference": round(ref_s / ours_s, 2),
            "baseline_sort_timestamp_uniq": {"seconds": round(base_s, 2), "lines_per_s": round(n / base_s)},
            "speed_ratio_ours_over_baseline": round(base_s / ours_s, 3),
            "peak_rss_mib_by_input": {"0.5x": round(rss_half / 1024), "1x": round(ours_rss / 1024),
                                      "2x": round(rss_double / 1024)},
            "cores": os.cpu_count(),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for k, v in result.items():
                print(f"{k}: {v}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
