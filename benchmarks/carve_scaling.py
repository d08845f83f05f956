"""How carving grows with the image, on scattered images of the same log density, against grep.

    python benchmarks/carve_scaling.py [--sizes 64,256,1024] [--formats syslog] [--workers 1] [--json]

For each size (MiB) a scattered image is written by ``logsalvage.demo.scattered`` (4 KiB blocks of
daily-rotated logs in extents of 1-4 blocks, noise between them, a few blocks overwritten, an older
copy of some files), then, in the same run on the same image:

  * the investigators' ``LC_ALL=C grep -a -E '<header>' IMAGE | iconv -c -f utf-8 -t utf-8``;
  * ``logsalvage carve IMAGE -o OUT --json`` (scan and validate, block-chain reassembly, parse,
    dedupe and commit to a case, time-ordered output), with its seconds per step, its peak RSS, and
    the peak reached by the end of each step (the step that raises it is where memory goes);
  * recall (planted lines whose bytes are all in the image, found in the output), recall of the
    split ones, and precision (output lines byte-identical to a planted line), from the image's
    truth file.

Prints one row per size and the seconds per GiB of each, so a curve that is not flat shows.
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

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from logsalvage.demo.scattered import FORMATS, build_scattered_image  # noqa: E402

HEADER = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] [a-z0-9]+ postgres\["


def grep_seconds(image: Path, out: Path) -> float:
    t = time.perf_counter()
    subprocess.run(f"LC_ALL=C grep -a -E '{HEADER}' '{image}' | iconv -c -f utf-8 -t utf-8 > '{out}'",
                   shell=True, check=False)
    return time.perf_counter() - t


def carve(image: Path, out: Path, workers: int) -> tuple[float, dict, float]:
    """Seconds, carve's JSON, and carve's own peak RSS in MiB: the one it reports (the children's
    rusage here is the largest of every child so far — ``iconv`` holds all its input in memory; with
    ``--workers`` above 1 the Dask worker processes are not in it)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "logsalvage", "carve", str(image), "-o", str(out), "--json",
                           "--workers", str(workers), "--acquired", "2018-01-06"],
                          env=env, capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - t
    result = json.loads(proc.stdout)
    return seconds, result, max(result.get("peak_mib", {}).values(), default=0)


def accuracy(image: Path, out: Path) -> dict:
    truth = pq.read_table(str(image) + ".truth.parquet", columns=["data", "present", "split"]).to_pydict()
    planted = set(truth["data"])
    present = {d for d, p in zip(truth["data"], truth["present"]) if p}
    split = {d for d, p, s in zip(truth["data"], truth["present"], truth["split"]) if p and s}
    found = set(out.read_bytes().split(b"\n")) - {b""}
    return {"records": len(planted), "present": len(present),
            "recall": round(len(present & found) / max(1, len(present)), 6),
            "split": len(split), "split_recall": round(len(split & found) / max(1, len(split)), 6),
            "precision": round(sum(d in planted for d in found) / max(1, len(found)), 6)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,256,1024", help="image sizes in MiB")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logsalvage-carve-scaling-"))
    rows = []
    try:
        for mib in [int(x) for x in args.sizes.split(",")]:
            image = work / f"scattered-{mib}.dd"
            summary = build_scattered_image(image, mib << 20, formats=tuple(args.formats.split(",")), seed=args.seed)
            subprocess.run(f"cat '{image}' > /dev/null", shell=True, check=True)   # warm the page cache
            g = grep_seconds(image, work / "grep.txt")
            s, result, rss = carve(image, work / "carved.txt", args.workers)
            row = {"MiB": mib, "records": summary["records"], "grep_s": round(g, 2), "carve_s": round(s, 2),
                   "carve_s_per_GiB": round(s / (mib / 1024), 1), "grep_over_carve": round(g / s, 3),
                   "steps_s": result["seconds"], "steps_peak_MiB": result.get("peak_mib", {}),
                   "reassembly": result.get("reassembly", {}),
                   "peak_rss_MiB": round(rss), **accuracy(image, work / "carved.txt")}
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
            for f in (image, Path(str(image) + ".truth.parquet"), work / "carved.txt", work / "grep.txt"):
                f.unlink(missing_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ("MiB", "records", "grep_s", "carve_s", "carve_s_per_GiB", "recall", "split_recall", "precision",
            "peak_rss_MiB")
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols) + " | steps " + json.dumps(r["steps_s"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
