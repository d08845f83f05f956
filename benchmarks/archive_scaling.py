"""How ingest grows with the number of archive members: tar, tar.gz and zip of small log files.

    python benchmarks/archive_scaling.py [--members 250,1000,4000] [--kinds tar,tar.gz,zip] [--lines 8] [--json]

For each kind and member count an archive of that many small syslog files (``--lines`` lines each)
is written, then timed in this process: ``discover`` (listing and classifying every member) and a
whole ``ingest`` into a fresh case (discover, hash, parse and commit every member). Prints the
seconds per member of each: a flat column means member access is linear (each member read at its
offset, a compressed tar decompressed once), a column that grows with the count means every member
costs a pass over the archive again (quadratic).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from logsalvage.ingest import ingest  # noqa: E402
from logsalvage.sources import discover  # noqa: E402

LINE = "Dec  3 {h:02d}:{m:02d}:{s:02d} web01 sshd[{pid}]: Failed password for root from 203.0.113.{o} port {p} ssh2\n"


def member_text(i: int, lines: int) -> bytes:
    return "".join(LINE.format(h=(j // 3600) % 24, m=(j // 60) % 60, s=j % 60, pid=1000 + i, o=i % 250, p=40000 + j)
                   for j in range(i * lines, (i + 1) * lines)).encode()


def write_archive(path: Path, kind: str, n: int, lines: int) -> None:
    members = [(f"var/log/app/{i:06d}.log", member_text(i, lines)) for i in range(n)]
    if kind == "zip":
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members:
                zf.writestr(name, data)
        return
    with tarfile.open(path, "w:gz" if kind == "tar.gz" else "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1512270000
            tf.addfile(info, io.BytesIO(data))


def measure(kind: str, n: int, lines: int, work: Path) -> dict:
    ev = work / f"ev-{kind}-{n}"
    ev.mkdir(parents=True)
    write_archive(ev / f"logs.{kind}", kind, n, lines)
    t0 = time.perf_counter()
    cands = discover([ev])
    t_discover = time.perf_counter() - t0
    logs = sum(1 for c in cands if c.role == "log")
    case = work / f"case-{kind}-{n}"
    t0 = time.perf_counter()
    result = ingest([ev], case)
    t_ingest = time.perf_counter() - t0
    shutil.rmtree(case)
    shutil.rmtree(ev)
    return {"kind": kind, "members": n, "logs_found": logs, "sources": result.sources_new,
            "discover_s": round(t_discover, 3), "ingest_s": round(t_ingest, 3),
            "discover_ms_per_member": round(1000 * t_discover / n, 3),
            "ingest_ms_per_member": round(1000 * t_ingest / n, 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="250,1000,4000", help="member counts")
    ap.add_argument("--kinds", default="tar,tar.gz,zip")
    ap.add_argument("--lines", type=int, default=8, help="lines per member")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    counts = [int(x) for x in args.members.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="archive-scaling-") as tmp:
        for kind in args.kinds.split(","):
            for n in counts:
                row = measure(kind, n, args.lines, Path(tmp))
                rows.append(row)
                if not args.json:
                    print(f"{kind:7} {n:6d} members: discover {row['discover_s']:8.2f} s "
                          f"({row['discover_ms_per_member']:7.3f} ms/member), ingest {row['ingest_s']:8.2f} s "
                          f"({row['ingest_ms_per_member']:7.3f} ms/member), {row['sources']} sources", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
