"""How the case database's compression weighs on the commit and on later reads, in one run.

    python benchmarks/case_compression.py [CASE_DIR | LOGFILE] [--repeat N] [--json]

Takes the events of an existing case (or ingests LOGFILE, or N synthesised PostgreSQL-through-syslog
lines, into a scratch case first) and writes them again into fresh databases, once with DuckDB's own
choice of codec per segment (what ``CaseStore`` keeps) and once with every column forced to zstd:
seconds to insert and checkpoint, file size, and seconds of the queries the later steps run most
(per-hour counts, a time range, a client-address ranking, the record-key dedupe, a point lookup,
a regular expression over the message text). Best of ``--repeat`` runs each.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

QUERIES = {
    "per_hour": "SELECT host, date_trunc('hour', ts_utc) h, count(*) FROM e GROUP BY ALL",
    "time_range": "SELECT count(*) FROM e WHERE ts_utc BETWEEN (SELECT min(ts_utc) FROM e) "
                  "AND (SELECT min(ts_utc) FROM e) + INTERVAL 1 DAY",
    "clients": "SELECT source_ip, count(*) FROM e GROUP BY ALL ORDER BY 2 DESC LIMIT 5",
    "record_keys": "SELECT count(DISTINCT (host, epoch(ts_utc)::BIGINT, record_key)) FROM e",
    "point": "SELECT * FROM e WHERE \"offset\" = (SELECT median(\"offset\")::BIGINT FROM e)",
    "message_regex": "SELECT count(*) FROM e WHERE regexp_matches(message, 'SELECT .* FROM (customers|reservations)')",
}


def events_of(arg: Path | None, work: Path):
    """The events table (Arrow) of a case, of a log ingested into a scratch case, or synthesised."""
    from logsalvage.ingest import ingest
    if arg is not None and (arg / "case.duckdb").exists():
        case = arg
    else:
        log = arg
        if log is None:
            from ingest_vs_baseline import synthesise
            log = work / "messages"
            synthesise(log, 300_000)
        case = work / "case"
        ingest([log], case, host="db01")
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    try:
        return con.sql("SELECT * FROM events").to_arrow_table()
    finally:
        con.close()


def measure(events, path: Path, codec: str | None, repeat: int) -> dict:
    best_insert, size, reads = float("inf"), 0, {}
    for i in range(repeat):
        db = path.with_name(f"{path.stem}-{i}.duckdb")
        con = duckdb.connect(str(db))
        if codec:
            con.execute(f"SET force_compression = '{codec}'")
        con.execute("CREATE TABLE e AS SELECT * FROM events LIMIT 0")
        t = time.perf_counter()
        con.execute("INSERT INTO e SELECT * FROM events")
        con.execute("CHECKPOINT")
        best_insert = min(best_insert, time.perf_counter() - t)
        con.close()
        size = db.stat().st_size
        con = duckdb.connect(str(db), read_only=True)
        for name, sql in QUERIES.items():
            t = time.perf_counter()
            con.sql(sql).fetchall()
            reads[name] = min(reads.get(name, float("inf")), time.perf_counter() - t)
        con.close()
    return {"insert_s": round(best_insert, 3), "size_mib": round(size / 2**20, 1),
            "reads_s": {k: round(v, 4) for k, v in reads.items()}}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", nargs="?", type=Path, help="a case directory or a log file")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="case-compression-") as tmp:
        work = Path(tmp)
        events = events_of(args.source, work)
        out = {"rows": events.num_rows, "arrow_mib": round(events.nbytes / 2**20, 1),
               "auto": measure(events, work / "auto.duckdb", None, args.repeat),
               "zstd": measure(events, work / "zstd.duckdb", "zstd", args.repeat)}
    out["insert_ratio_auto_over_zstd"] = round(out["auto"]["insert_s"] / max(out["zstd"]["insert_s"], 1e-9), 2)
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{out['rows']:,} events ({out['arrow_mib']} MiB in Arrow)")
        for codec in ("auto", "zstd"):
            r = out[codec]
            reads = ", ".join(f"{k} {v:.3f}" for k, v in r["reads_s"].items())
            print(f"{codec:5s} insert {r['insert_s']:.2f} s  {r['size_mib']} MiB  reads (s): {reads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
