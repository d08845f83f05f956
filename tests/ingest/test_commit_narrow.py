"""The commit's narrow aggregations give what the reference windows give: the record key stored
(``raw_repeats_sql``) is ``record_key_sql``'s for every row — repeated lines, PostgreSQL lines keyed
by pid and sequence, several sources, and through a real ingest; the copies of carved records
(``CaseStore._dedupe_view``) are ``DEDUPE_WINDOW_SQL``'s, also where two records share an offset."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb

from logsalvage.ingest import ingest
from logsalvage.store import DEDUPE_WINDOW_SQL, CaseStore, raw_repeats_sql, record_key_joined_sql, record_key_sql


def _rows(seed: int, n: int) -> list[tuple]:
    rnd = random.Random(seed)
    texts = [f"line {i}" for i in range(n // 4)] + ["", "same", "same again"]
    rows, seen = [], set()
    while len(rows) < n:
        src = rnd.choice(["a", "b", "c"])
        off = rnd.randrange(10 * n)
        if (src, off) in seen:
            continue
        seen.add((src, off))
        pg = rnd.random() < 0.3
        rows.append((src, off, rnd.choice(texts), rnd.randrange(5) if pg else None,
                     rnd.randrange(3) if pg and rnd.random() < 0.8 else None))
    return rows


def test_narrow_key_is_the_window_key():
    con = duckdb.connect()
    con.execute('CREATE TABLE e (source_id VARCHAR, "offset" BIGINT, raw VARCHAR, process_pid BIGINT, pg_seq BIGINT)')
    for seed in range(5):
        con.execute("DELETE FROM e")
        con.executemany("INSERT INTO e VALUES (?, ?, ?, ?, ?)", _rows(seed, 3000))
        diff = con.execute(f"""
            WITH ref AS (SELECT source_id, "offset", {record_key_sql()} AS key FROM e),
                 k AS ({raw_repeats_sql("e")}),
                 new AS (SELECT e.source_id, e."offset", {record_key_joined_sql("k.rn")} AS key
                         FROM e LEFT JOIN k USING (source_id, "offset"))
            SELECT count(*) FILTER (WHERE ref.key IS DISTINCT FROM new.key), count(*), count(DISTINCT ref.key)
            FROM ref JOIN new USING (source_id, "offset")""").fetchone()
        assert diff[0] == 0 and diff[1] == 3000
        assert diff[2] < 3000  # repeated texts and pg keys did occur


def test_ingested_keys_are_the_window_keys(tmp_path: Path):
    ev = tmp_path / "ev" / "db01" / "var" / "log"
    ev.mkdir(parents=True)
    lines = []
    for i in range(400):
        lines.append(f"Dec  3 03:45:{i % 60:02d} db01 postgres[{100 + i % 7}]: [{i % 5 + 1}-1] LOG:  checkpoint starting\n")
        lines.append(f"Dec  3 03:45:{i % 60:02d} db01 CROND[42]: (root) CMD (run-parts /etc/cron.hourly)\n")
    (ev / "messages").write_text("".join(lines))
    (ev / "messages.1").write_text("".join(lines[:200]))
    ingest([tmp_path / "ev"], tmp_path / "case", host="db01")
    with CaseStore(tmp_path / "case", read_only=True) as store:
        bad, total, repeated = store.con.execute(f"""
            SELECT count(*) FILTER (WHERE e.record_key IS DISTINCT FROM r.key), count(*),
                   count(*) - count(DISTINCT e.record_key)
            FROM events e JOIN (SELECT event_id, {record_key_sql()} AS key FROM events) r USING (event_id)""").fetchone()
    assert total == 1000 and bad == 0 and repeated > 0


class _Con:
    def __init__(self, con):
        self.con = con


def _deduped(con) -> list[tuple]:
    return sorted(con.execute('SELECT _idx, "offset", raw, copies, other FROM deduped').fetchall(),
                  key=lambda r: (r[0], r[1], r[2], str(r[3])))


def test_narrow_copies_are_the_window_copies():
    con = duckdb.connect()
    for seed in range(4):
        rnd = random.Random(seed)
        rows = [(rnd.randrange(3), off, rnd.choice(["a", "b", "c", "d", "e"] + [f"u{off}"]),
                 rnd.choice([None, "7,9"]), f"x{off}") for off in rnd.sample(range(5000), 800)]
        if seed == 3:  # two records at one offset of one source: the windows decide
            rows.append((rows[0][0], rows[0][1], rows[0][2], None, "twin"))
        con.execute('CREATE OR REPLACE TABLE staged (_idx INTEGER, "offset" BIGINT, raw VARCHAR, copies VARCHAR, other VARCHAR)')
        con.executemany("INSERT INTO staged VALUES (?, ?, ?, ?, ?)", rows)
        con.execute(f"CREATE OR REPLACE TEMP VIEW deduped AS {DEDUPE_WINDOW_SQL}")
        want = _deduped(con)
        CaseStore._dedupe_view(_Con(con))
        got = _deduped(con)
        assert len(want) < len(rows)
        if seed == 3:
            assert [r[4] for r in got if (r[0], r[1]) == rows[0][:2]] == [r[4] for r in want if (r[0], r[1]) == rows[0][:2]]
            assert len(got) == len(want)
        else:
            assert got == want
