"""Which vectorised, linear-time regex engine the columnar parser runs on: measured, not assumed.

    python benchmarks/regex_engines.py [LOGFILE] [--lines N] [--repeat K] [--json]

On the same syslog lines (a file, or N synthesised PostgreSQL-through-syslog lines in the incident's
format) it times, per engine, the two operations the columnar engine is made of:

  * first match: the index of the first of syslog.yaml's line patterns that matches each line;
  * extract: the named groups of the RFC 3164 header pattern (the one almost every line matches).

Engines: DuckDB ``regexp_matches``/``regexp_extract`` (RE2, multi-threaded; the case database),
Polars ``str.contains``/``str.extract_groups`` (Rust regex; measured when polars is installed),
pyarrow.compute ``match_substring_regex``/``extract_regex`` (RE2, one thread), and Python ``re``
in a loop (backtracking; the reference engine's). Figures are lines per second on this machine in
this run, with the ratio to Python ``re``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest_vs_baseline import synthesise  # noqa: E402


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> int:
    import re

    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc

    from logsalvage.parsing.columnar_sql import first_match, group_names, lit
    from logsalvage.parsing.formats import shipped_formats

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", nargs="?", type=Path)
    ap.add_argument("--lines", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.log:
        text = args.log.read_text("utf-8", "backslashreplace").splitlines()
    else:
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "logsalvage-regex-bench.log"
        synthesise(tmp, args.lines)
        text = tmp.read_text().splitlines()
        tmp.unlink()
    spec = shipped_formats()["syslog"]
    sources = [p.source for p in spec.patterns]
    header = sources[0]
    names = group_names(header)
    arr = pa.array(text, pa.string())
    n = len(text)
    results: dict[str, dict[str, float]] = {}

    con = duckdb.connect()
    con.register("lines", pa.table({"t": arr}))
    fm = f"SELECT {first_match('t', sources, anchored=True)} AS k FROM lines"
    ex = f"SELECT regexp_extract(t, {lit('^(?:' + header + ')')}, [{', '.join(lit(x) for x in names)}]) AS s FROM lines"
    results["duckdb (RE2)"] = {"first_match": _best(lambda: con.sql(fm).to_arrow_table(), args.repeat),
                               "extract": _best(lambda: con.sql(ex).to_arrow_table(), args.repeat)}

    def arrow_first():
        pending = pa.array([True] * n)
        for s in sources:
            pc.and_(pending, pc.match_substring_regex(arr, "^(?:" + s + ")"))

    results["pyarrow.compute (RE2)"] = {"first_match": _best(arrow_first, args.repeat),
                                        "extract": _best(lambda: pc.extract_regex(arr, "^(?:" + header + ")"), args.repeat)}
    try:
        import polars as pl
    except ImportError:
        pl = None
    if pl is not None:
        series = pl.Series(text)

        def polars_first():
            out = pl.Series([0] * n)
            for k, s in enumerate(sources, start=1):
                hit = series.str.contains("^(?:" + s + ")")
                out = pl.select(pl.when((out == 0) & hit).then(k).otherwise(out)).to_series()

        results["polars (Rust regex)"] = {"first_match": _best(polars_first, args.repeat),
                                          "extract": _best(lambda: series.str.extract_groups("^(?:" + header + ")"),
                                                           args.repeat)}
    py = [re.compile(p.regex.pattern, re.ASCII) for p in spec.patterns]

    def python_first():
        for line in text:
            for k, rx in enumerate(py):
                if rx.match(line):
                    break

    results["python re (backtracking)"] = {"first_match": _best(python_first, 1),
                                           "extract": _best(lambda: [py[0].match(t) and py[0].match(t).groupdict()
                                                                     for t in text], 1)}
    base = results["python re (backtracking)"]
    out = {"lines": n, "cores": os.cpu_count(), "engines": {
        name: {op: {"seconds": round(sec, 3), "lines_per_s": round(n / sec), "x_python_re": round(base[op] / sec, 1)}
               for op, sec in ops.items()} for name, ops in results.items()}}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{n} lines, {out['cores']} cores")
        for name, ops in out["engines"].items():
            print(f"  {name:<26} " + "  ".join(f"{op}: {v['lines_per_s']:>9,} lines/s ({v['x_python_re']}x re)"
                                              for op, v in ops.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
