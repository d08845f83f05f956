"""The merged timeline: copies in live, backup and salvaged sources become one record whose
canonical copy is the most trustworthy; the result does not depend on ingest order and merging
is idempotent."""

from __future__ import annotations

import itertools
import shutil

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logsalvage.continuity.timeline import build_timeline, ensure_timeline, periods
from logsalvage.store import CaseStore
from synthetic import between, epoch, ingest_files, records, write

DAY = 86400


def _rows(case) -> list[tuple]:
    with CaseStore(case) as store:
        ensure_timeline(store)
        return store.query("""
            SELECT t.host, t.sec, t.key, ts.source_id || ':' || (t.priority & ((1::BIGINT << 40) - 1)), t.kinds, t.copies
            FROM timeline t JOIN timeline_sources ts ON ts.ord = t.priority >> 40 ORDER BY ALL""")


def _evidence(tmp, seed: int, cut_backup: int, cut_live: int):
    recs = records(DAY // 8, seed=seed)
    span = DAY // 8
    backup = write(tmp / "ev/backup/messages-20171201", between(recs, 0, cut_live + 600))   # overlaps live
    live = write(tmp / "ev/live/messages", between(recs, cut_live, span))
    salvage = write(tmp / "ev/image/carved.txt", between(recs, 0, cut_backup) + between(recs, cut_live - 900, span))
    return recs, [(backup, "backup"), (live, "live"), (salvage, "salvage")]


def test_each_record_once_with_every_copy_and_the_most_trustworthy_text(tmp_path):
    recs, files = _evidence(tmp_path, seed=3, cut_backup=3600, cut_live=7200)
    ingest_files(tmp_path / "case", files)
    rows = _rows(tmp_path / "case")
    n_records = sum(1 for r in recs)  # one record per Record (duplicated lines are two records)
    n_records += sum(1 for r in recs if len(r.lines) == 2 and r.lines[0] == r.lines[1])
    assert len(rows) == n_records
    with CaseStore(tmp_path / "case") as store:
        kinds = dict(store.query("SELECT source_id, kind FROM sources"))
        by_kind = {k: n for k, n in store.query("""
            SELECT CASE WHEN kinds & 1 = 1 THEN 'live' WHEN kinds & 2 = 2 THEN 'backup' ELSE 'salvage' END, count(*)
            FROM timeline GROUP BY 1""")}
        copies = store.query("SELECT max(copies), min(copies) FROM timeline")[0]
        spans = periods(store, "db01")
    # the canonical copy is live where a live copy exists, else backup, else salvage
    for host, sec, key, event_id, mask, n in rows:
        kind = kinds[event_id.split(":")[0]]
        expected = "live" if mask & 1 else "backup" if mask & 2 else "salvage"
        assert kind == expected
    assert set(by_kind) == {"live", "backup"}  # the salvage adds nothing the preserved files lack here
    assert copies == (3, 1)  # a record in backup, live and salvage (the overlap) has three copies
    assert [p.kind for p in spans] == ["backup", "live"]
    assert spans[1].start == epoch(7200) or spans[1].start <= epoch(7200 + 30)


def test_the_same_line_twice_in_a_second_stays_two_records(tmp_path):
    recs = records(3600, seed=5)
    doubled = [r for r in recs if len(r.lines) == 2 and r.lines[0] == r.lines[1]]
    assert doubled  # the fixture writes such a pair every 30 min
    live = write(tmp_path / "ev/live/messages", recs)
    salvage = write(tmp_path / "ev/image/carved.txt", recs[1:])  # not a byte copy (that is one source)
    ingest_files(tmp_path / "case", [(live, "live"), (salvage, "salvage")])
    with CaseStore(tmp_path / "case") as store:
        ensure_timeline(store)
        sec = epoch(doubled[0].t)
        assert store.query("SELECT count(*), sum(copies) FROM timeline WHERE sec = ? AND type_hash = "
                           "hash('syslog')", [sec]) == [(2, 4)]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), order=st.permutations([0, 1, 2]),
       cut_backup=st.integers(600, 5000), cut_live=st.integers(5400, 9000))
def test_merge_does_not_depend_on_ingest_order(tmp_path_factory, seed, order, cut_backup, cut_live):
    tmp = tmp_path_factory.mktemp("order")
    _, files = _evidence(tmp, seed, cut_backup, cut_live)
    ingest_files(tmp / "a", files)
    ingest_files(tmp / "b", [files[i] for i in order])
    assert _rows(tmp / "a") == _rows(tmp / "b")


def test_merging_is_idempotent(tmp_path):
    recs, files = _evidence(tmp_path, seed=9, cut_backup=3000, cut_live=6000)
    ingest_files(tmp_path / "case", files)
    first = _rows(tmp_path / "case")
    with CaseStore(tmp_path / "case") as store:
        build_timeline(store)  # rebuilding gives the same table
    assert _rows(tmp_path / "case") == first
    # a second copy of a file, and a file holding only records already in the case, add copies
    # to existing records but never a record
    shutil.copy(files[1][0], tmp_path / "ev/copy-of-messages")
    subset = write(tmp_path / "ev/backup2/messages-partial", between(recs, 6000, 7000))
    ingest_files(tmp_path / "case", [(tmp_path / "ev/copy-of-messages", "backup"), (subset, "backup")])
    again = _rows(tmp_path / "case")
    assert [r[:3] for r in again] == [r[:3] for r in first]
    assert sum(r[5] for r in again) > sum(r[5] for r in first)
    assert [r[3] for r in again] == [r[3] for r in first]  # live copies stay canonical


def test_the_timeline_is_rebuilt_only_when_sources_change(tmp_path):
    recs, files = _evidence(tmp_path, seed=2, cut_backup=3000, cut_live=6000)
    ingest_files(tmp_path / "case", files[:2])
    with CaseStore(tmp_path / "case") as store:
        assert ensure_timeline(store) is True
        assert ensure_timeline(store) is False
    ingest_files(tmp_path / "case", files[2:])
    with CaseStore(tmp_path / "case") as store:
        assert ensure_timeline(store) is True


def test_all_orders_of_three_sources_agree(tmp_path):
    _, files = _evidence(tmp_path, seed=11, cut_backup=2000, cut_live=8000)
    results = []
    for i, order in enumerate(itertools.permutations(range(3))):
        ingest_files(tmp_path / f"case{i}", [files[j] for j in order])
        results.append(_rows(tmp_path / f"case{i}"))
    assert all(r == results[0] for r in results)
