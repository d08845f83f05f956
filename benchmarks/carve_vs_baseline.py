"""End-to-end carving against the incident's own method, in one run on the same image.

    python benchmarks/carve_vs_baseline.py IMAGE [--workers 1,2] [--json]

Times, on the same image file:
  * ``logsalvage carve IMAGE -o OUT`` (scan, validate, reassemble, parse, dedupe, time order) for
    each worker count, and on the first half of the image to show how cost grows with size;
  * the investigators' ``LC_ALL=C grep -a -E '<syslog header>' IMAGE | iconv -c -f utf-8 -t utf-8``;
  * the same followed by ``sort -s -k1,1M -k2,2n -k3,3 | perl timestamp_uniq.pl`` (../shared/baselines).
Prints seconds, GB/s of image and ratios. Page cache is warmed by one read first, for every contender.
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
HEADER = r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9] [a-z0-9]+ postgres\["


def timed(cmd: str | list[str], env=None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, shell=isinstance(cmd, str), check=True, env=env, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def ours(image: Path, work: Path, workers: int) -> float:
    out = work / f"carved-{image.stem}-{workers}.txt"
    for stale in (out, out.with_name(out.name + ".carve-case")):
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return timed([sys.executable, "-m", "logsalvage", "carve", str(image), "-o", str(out), "--workers",
                  str(workers), "--acquired", "2018-01-06"], env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("image", type=Path)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    size = args.image.stat().st_size
    work = Path(tempfile.mkdtemp(prefix="logsalvage-carve-bench-"))
    try:
        half = work / "half.dd"
        with open(args.image, "rb") as src, open(half, "wb") as dst:  # first half, sparse where the image is zeros
            remaining = size // 2
            while remaining:
                block = src.read(min(8 << 20, remaining))
                if block.count(0) == len(block):
                    dst.seek(len(block), 1)
                else:
                    dst.write(block)
                remaining -= len(block)
            dst.truncate(size // 2)
        timed(f"cat '{args.image}' > /dev/null")
        grep = f"LC_ALL=C grep -a -E '{HEADER}' '{args.image}' | iconv -c -f utf-8 -t utf-8"
        grep_s = timed(f"{grep} > '{work / 'raw.txt'}'")
        full_s = timed(f"{grep} | LC_ALL=C sort -s -k 1,1M -k 2,2n -k 3,3 | perl '{BASELINES / 'timestamp_uniq.pl'}' "
                       f"> '{work / 'sorted.txt'}' 2>/dev/null")
        result = {"image_bytes": size, "incident_grep_iconv_s": round(grep_s, 2),
                  "incident_grep_iconv_sort_uniq_s": round(full_s, 2), "logsalvage": {}}
        for w in [int(x) for x in args.workers.split(",")]:
            s = ours(args.image, work, w)
            result["logsalvage"][f"workers_{w}"] = {
                "seconds": round(s, 2), "GB_per_s": round(size / s / 1e9, 3),
                "vs_grep_iconv": round(grep_s / s, 3), "vs_grep_iconv_sort_uniq": round(full_s / s, 3)}
        half_s = ours(half, work, 1)
        result["logsalvage"]["half_image_workers_1_s"] = round(half_s, 2)
        whole_1 = result["logsalvage"].get("workers_1", {}).get("seconds")
        if whole_1:
            result["logsalvage"]["cost_ratio_whole_over_half"] = round(whole_1 / half_s, 2)
        print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
