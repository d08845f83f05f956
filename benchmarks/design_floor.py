"""How fast logsalvage could be at best in its present design, against the incident's pipelines.

    python benchmarks/design_floor.py [LOGFILE ...] [--from-demo DIR] [--lines N]
        [--image IMAGE | --image-mib N] [--json]

Issues 11 and 12 ask for speed ratios against the investigators' scripts. This measures, in one
run and on the same bytes, the two things every design that keeps the non-negotiables must do
whatever its parser costs:

  * hash the input (SHA-256, streamed; "hash every input");
  * write the records it found into the case database (DuckDB: an INSERT of the events, already
    parsed, as an Arrow table, into a fresh case with the case's own settings, then a checkpoint;
    the best of two runs, and of two cheaper storage settings too, so that the floor is not an
    artefact of one setting).

The events written are the ones logsalvage itself produced from the same input in this run, so
the floor counts exactly the rows and columns a case holds. ``floor = hash + insert``; the best
ratio any parser could reach is ``baseline / floor`` (a parser that costs nothing). A parser has
to find the fields at least once, so it also times the cheapest such steps there are, in the form
the columnar engine runs them, by DuckDB's RE2 (the fastest engine of benchmarks/regex_engines.py):
the syslog header's groups of every line, and for part 1 also PostgreSQL's '[seq-chunk] ' and the
``--pg-prefix`` groups of its message in the same extraction; and gives the ratios of ``floor +
those`` (a parser that does nothing else).

Part 1, lines (issue 12): db01's PostgreSQL-syslog lines (``--from-demo``), the given files, or
N synthesised ones. Baseline: ``LC_ALL=C sort -s -k1,1M -k2,2n -k3,3 | perl timestamp_uniq.pl``.

Part 2, an image (issue 11, with ``--image`` or ``--image-mib``; a scattered PostgreSQL-syslog
image of that size is built when no image is given; read once first, so that every contender
reads it from the page cache). Baselines: ``LC_ALL=C grep -a -E '<header>'
IMAGE | iconv -c -f utf-8 -t utf-8`` (the ratio ≥ 1 criterion), and the seed pipeline from image to
coverage — that, then ``sort | timestamp_uniq.pl`` and ``gap_find.pl`` (the ≥ 5× criterion).
Ours: ``logsalvage carve IMAGE --case C`` then ``logsalvage continuity --case C``.

Figures are measured on this machine in this run, never absolute claims.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from carve_scaling import HEADER  # noqa: E402
from ingest_vs_baseline import BASELINES, baseline_once, gather_lines, ingest_once  # noqa: E402

from logsalvage.store import CaseStore  # noqa: E402

# storage settings tried for the floor besides the case's own (the cheapest one counts)
CHEAPER_SETTINGS = {
    "case settings": (),
    "uncompressed": ("SET force_compression = 'uncompressed'",),
    "zstd": ("SET force_compression = 'zstd'",),
}


def sha256_seconds(path: Path) -> float:
    t = time.perf_counter()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(8 << 20), b""):
            h.update(block)
    return time.perf_counter() - t


def case_events(case: Path):
    """Every column of the case's events, as Arrow."""
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        return con.sql("SELECT * FROM events").to_arrow_table()
    finally:
        con.close()


def insert_seconds(events, work: Path) -> dict[str, float]:
    """Seconds to write ``events`` into a fresh case, per storage setting, best of two."""
    out = {}
    columns = ", ".join(f'"{c}"' for c in events.column_names)
    for name, settings in CHEAPER_SETTINGS.items():
        best = float("inf")
        for _ in range(2):
            case = work / "floor-case"
            shutil.rmtree(case, ignore_errors=True)
            store = CaseStore(case)
            con = store.con.cursor()  # the case's database and its (database-wide) settings
            for sql in settings:
                con.execute(sql)
            t = time.perf_counter()
            con.register("events_arrow", events)
            con.execute("BEGIN TRANSACTION")
            con.execute(f"INSERT INTO events ({columns}) SELECT * FROM events_arrow")
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
            con.close()
            store.close()
            best = min(best, time.perf_counter() - t)
        out[name] = round(best, 3)
    shutil.rmtree(work / "floor-case", ignore_errors=True)
    return out


def parse_floor_seconds(text, pg_prefix: str | None) -> dict[str, float]:
    """The cheapest parse steps there are, on ``text`` (an Arrow string array) already in memory,
    by DuckDB's RE2 (the fastest of the engines benchmarks/regex_engines.py compares), each in the
    form the columnar engine runs it, best of two: the RFC 3164 header's groups (the pattern without
    its '(?P<message>.*)$' tail, the message the rest of the line); and, with ``pg_prefix``, that plus
    PostgreSQL's '[seq-chunk] ' and the prefix's groups on the message, in one extraction."""
    import pyarrow as pa

    from logsalvage.parsing.columnar import _PG_TAIL, _head_source, _names_sql
    from logsalvage.parsing.columnar_sql import group_names, lit
    from logsalvage.parsing.formats import shipped_formats
    from logsalvage.parsing.pg_prefix import line_source

    head = _head_source(shipped_formats()["syslog"].patterns[0].source)[0]
    names = ["_m"] + group_names(head)
    header = (f"SELECT s, substr(t, length(s._m) + 1) AS message FROM (SELECT t, regexp_extract(t, "
              f"{lit('^(?P<_m>' + head + ')')}, {_names_sql(names)}) AS s FROM lines)")
    steps = {"header_s": header}
    if pg_prefix is not None:
        own = r"\[(?P<pg_seq>\d+)-(?P<pg_chunk>\d+)\] " + line_source(pg_prefix)[4:-len(_PG_TAIL)]
        own_names = ["_m"] + group_names(own)
        steps["header_and_pg_prefix_s"] = (
            f"SELECT s, p, substr(message, length(p._m) + 1) AS pg_message FROM (SELECT *, regexp_extract(message, "
            f"{lit('^(?s:(?P<_m>' + own + '))')}, {_names_sql(own_names)}) AS p FROM ({header}))")
    con = duckdb.connect()
    con.register("lines", pa.table({"t": text}))
    out = {}
    for name, sql in steps.items():
        best = float("inf")
        for _ in range(2):
            t = time.perf_counter()
            con.sql(sql).to_arrow_table()
            best = min(best, time.perf_counter() - t)
        out[name] = round(best, 3)
    con.close()
    return out


def floor(path: Path, case: Path, work: Path, lines_file: Path | None, pg_prefix: str | None = None) -> dict:
    """Hash and insert, and the cheapest parse steps over the lines of ``lines_file`` (a log) or,
    without one, over the case's records (an image: what its carver hands the parser)."""
    import pyarrow as pa

    events = case_events(case)
    hash_s = min(sha256_seconds(path) for _ in range(2))
    inserts = insert_seconds(events, work)
    floor_s = hash_s + min(inserts.values())
    text = events.column("raw").combine_chunks() if lines_file is None else \
        pa.array(lines_file.read_text("utf-8", "backslashreplace").splitlines(), pa.string())
    parse = parse_floor_seconds(text, pg_prefix)
    return {"events": events.num_rows, "sha256_s": round(hash_s, 3), "insert_s": inserts,
            "floor_s": round(floor_s, 3), **parse,
            **{f"floor_and_{k.removesuffix('_s')}_s": round(floor_s + v, 3) for k, v in parse.items()}}


def timed(cmd: list[str] | str, **kw) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, shell=isinstance(cmd, str), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   **kw)
    return time.perf_counter() - t


def lines_part(args, work: Path) -> dict:
    full = gather_lines(args.logs, args.from_demo, args.lines, work)
    base_s = baseline_once(full, work)
    ours_s, _ = ingest_once(full, work)
    fl = floor(full, work / f"case-{full.stem}", work, full, args.pg_prefix)
    return {"bytes": full.stat().st_size, "baseline_sort_timestamp_uniq_s": round(base_s, 3),
            "ingest_s": round(ours_s, 3), "ratio_now": round(base_s / ours_s, 3), **fl,
            "ratio_free_parser": round(base_s / fl["floor_s"], 3),
            "ratio_header_only_parser": round(base_s / fl["floor_and_header_s"], 3),
            "ratio_header_and_pg_prefix_parser": round(base_s / fl["floor_and_header_and_pg_prefix_s"], 3),
            "ratio_asked": 1}


def image_part(args, work: Path) -> dict:
    image = args.image
    if image is None:
        from logsalvage.demo.scattered import build_scattered_image

        image = work / "scattered.dd"
        build_scattered_image(image, args.image_mib << 20, formats=("syslog",), seed=1)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), LC_ALL="C", TZ="UTC")
    sha256_seconds(image)  # every contender reads the image from the page cache
    grepped, uniq = work / "grep.txt", work / "uniq.txt"
    grep_s = timed(f"LC_ALL=C grep -a -E '{HEADER}' '{image}' | iconv -c -f utf-8 -t utf-8 > '{grepped}'", env=env)
    sort_s = timed(f"LC_ALL=C sort -s -k1,1M -k2,2n -k3,3 '{grepped}' | perl '{BASELINES / 'timestamp_uniq.pl'}'"
                   f" > '{uniq}' 2>/dev/null", env=env)
    gap_s = timed(["perl", str(BASELINES / "gap_find.pl"), str(uniq), str(work / "gaps.txt"),
                   str(work / "plot.txt")], env=env)
    case = work / "image-case"
    lsv = [sys.executable, "-m", "logsalvage"]
    carve_s = timed(lsv + ["carve", str(image), "--case", str(case), "--acquired", "2018-01-06"], env=env)
    cont_s = timed(lsv + ["continuity", "--case", str(case)], env=env)
    fl = floor(image, case, work, None)
    seed = grep_s + sort_s + gap_s
    return {"image_bytes": image.stat().st_size, "grep_iconv_s": round(grep_s, 3),
            "seed_pipeline_s": round(seed, 3), "carve_s": round(carve_s, 3), "continuity_s": round(cont_s, 3),
            **fl,
            "grep_ratio_now": round(grep_s / carve_s, 3), "grep_ratio_free_carver": round(grep_s / fl["floor_s"], 3),
            "grep_ratio_header_only_carver": round(grep_s / fl["floor_and_header_s"], 3), "grep_ratio_asked": 1,
            "coverage_ratio_now": round(seed / (carve_s + cont_s), 3),
            "coverage_ratio_free_carver": round(seed / fl["floor_s"], 3),
            "coverage_ratio_header_only_carver": round(seed / fl["floor_and_header_s"], 3), "coverage_ratio_asked": 5}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="*", type=Path)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--from-demo", type=Path, metavar="DIR")
    ap.add_argument("--image", type=Path)
    ap.add_argument("--image-mib", type=int, default=0, metavar="N")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--image-only", action="store_true", help="skip part 1")
    ap.add_argument("--pg-prefix", default="DATABASE=%d,USER=%u,CLIENT=%r,",
                    help="log_line_prefix of the lines of part 1 (default: the incident's, the demo's)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="logsalvage-floor-"))
    try:
        result = {"cores": os.cpu_count(), "duckdb": duckdb.__version__}
        if not args.image_only:
            result["lines"] = lines_part(args, work)
        if args.image or args.image_mib:
            result["image"] = image_part(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for part in ("lines", "image"):
            for k, v in result.get(part, {}).items():
                print(f"{part}.{k}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
