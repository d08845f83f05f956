"""Carving throughput per core against the incident's ``grep -a | iconv -c``, in one run.

    python benchmarks/carve_scan.py [IMAGE] [--days N | --full] [--seed S] [--keep DIR]
                                    [--chunk MIB] [--block-size N] [--python] [--json]

Without IMAGE a demo evidence set is generated (``--days``, default 40, or ``--full``) and its
raw image of db01's log partition is used. On the same bytes, in this process (one core):

  * scan only, hyperscan backend: ``Scanner.find_arrays`` over every chunk;
  * scan only, literal-first Python fallback (``--python``, or always when hyperscan is missing);
  * the whole carve path: scan, validate, natural joins, heads and tails (``carve_chunk``), then
    ``reassemble`` on all heads and tails;
  * the incident's stage: ``LC_ALL=C grep -a -E '<syslog header>' IMAGE | iconv -c -f utf-8 -t utf-8``
    (wall time of the pipeline, output discarded).

Chunks are read with ``os.pread`` in each pass (page cache after the first), ``--chunk`` MiB with a
64 KiB margin. Figures are GB/s on this machine in this run and ratios to grep|iconv, never
absolute claims.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from logsalvage.carve.pieces import carve_chunk
from logsalvage.carve.reassemble import reassemble
from logsalvage.carve.scan import Scanner, hyperscan_available
from logsalvage.parsing.formats import log_formats

MARGIN = 64 << 10
GREP_RE = ("(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] "
           "[0-9][0-9]:[0-9][0-9]:[0-9][0-9] ")


def chunks(path: Path, chunk: int):
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        for base in range(0, size, chunk):
            yield base, min(size, base + chunk), os.pread(fd, chunk + MARGIN, base)
    finally:
        os.close(fd)


def time_scan(path: Path, chunk: int, scanner: Scanner) -> tuple[float, int]:
    t = time.perf_counter()
    hits = 0
    for base, end, buf in chunks(path, chunk):
        hits += len(scanner.find_arrays(buf, 0, end - base)[0])
    return time.perf_counter() - t, hits


def time_carve(path: Path, chunk: int, scanner: Scanner, block_size: int) -> tuple[float, dict]:
    t = time.perf_counter()
    n = {"records": 0, "heads": 0, "tails": 0, "rejects": 0}
    heads, tails = [], []
    for base, end, buf in chunks(path, chunk):
        got = carve_chunk(buf, base, end, block_size=block_size, scanner=scanner)
        n["records"] += len(got.records)
        n["rejects"] += len(got.rejects)
        heads += got.heads
        tails += got.tails
        del got
    joined, leftover = reassemble(heads, tails, block_size=block_size, scanner=scanner)
    n.update(heads=len(heads), tails=len(tails), joined=len(joined), leftover=len(leftover))
    return time.perf_counter() - t, n


def time_grep(path: Path) -> tuple[float, int]:
    cmd = f"LC_ALL=C grep -a -E '{GREP_RE}' '{path}' | iconv -c -f utf-8 -t utf-8 | wc -l"
    t = time.perf_counter()
    out = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t, int(out.strip() or 0)


def best(fn, repeat: int):
    runs = [fn() for _ in range(repeat)]
    return min(runs, key=lambda r: r[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("image", nargs="?", type=Path)
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--days", type=int, default=None)
    g.add_argument("--full", action="store_true")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="generate (or reuse) the demo in this directory")
    ap.add_argument("--chunk", type=int, default=16, help="chunk size in MiB (default 16)")
    ap.add_argument("--block-size", type=int, default=4096)
    ap.add_argument("--python", action="store_true", help="also time the whole carve with the fallback scanner")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    tmp = None
    path = args.image
    if path is None:
        from logsalvage.demo import generate
        out = args.keep or Path(tmp := tempfile.mkdtemp(prefix="carve-bench-"))
        if not (out / "truth.json").exists():
            kw = {"full": True} if args.full else {"days": args.days or 40}
            generate(out, seed=args.seed, **kw)
        path = out / "evidence/db01/image/sdb1.dd"
    size = path.stat().st_size
    chunk = args.chunk << 20
    specs = log_formats()
    res: dict = {"image": str(path), "bytes": size, "chunk": chunk, "block_size": args.block_size,
                 "hyperscan": hyperscan_available()}
    for _ in chunks(path, chunk):   # warm the page cache
        pass
    gt, glines = best(lambda: time_grep(path), args.repeat)
    res["grep_iconv"] = {"seconds": gt, "gbps": size / gt / 1e9, "lines": glines}
    backends = (["hyperscan"] if hyperscan_available() else []) + ["python"]
    for b in backends:
        sc = Scanner(specs, backend=b)
        st, hits = best(lambda sc=sc: time_scan(path, chunk, sc), args.repeat)
        res[f"scan_{b}"] = {"seconds": st, "gbps": size / st / 1e9, "headers": hits, "vs_grep_iconv": gt / st}
        if b == backends[0] or args.python:
            ct, counts = best(lambda sc=sc: time_carve(path, chunk, sc, args.block_size), args.repeat)
            res[f"carve_{b}"] = {"seconds": ct, "gbps": size / ct / 1e9, "vs_grep_iconv": gt / ct, **counts}
    if args.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"image {path} ({size / 1e9:.2f} GB), chunks of {args.chunk} MiB, one core")
        print(f"  grep -a | iconv -c      {res['grep_iconv']['gbps']:6.3f} GB/s   ({glines:,} lines)")
        for k, v in res.items():
            if k.startswith(("scan_", "carve_")):
                extra = f"{v.get('headers', v.get('records', 0)):,} {'headers' if 'headers' in v else 'records'}"
                print(f"  {k:<22}  {v['gbps']:6.3f} GB/s   x{v['vs_grep_iconv']:.2f} grep|iconv   ({extra})")
    if tmp:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
