"""Parallel parsing on a local Dask cluster gives the same case; an interrupted ingest resumes cleanly."""

from __future__ import annotations

import os

import duckdb
import pytest

import logsalvage.ingest as ingest_module
from logsalvage.ingest import ingest

LINE = ("{mon} {day:2d} 03:{m:02d}:{s:02d} db01 postgres[{pid}]: [1-1] DATABASE=[unknown],USER=[unknown],"
        "CLIENT=127.0.0.1(40000),LOG:  incomplete startup packet\n")


def _evidence(tmp_path):
    ev = tmp_path / "ev"
    log = ev / "db01" / "var" / "log"
    log.mkdir(parents=True)
    for week, (mon, day) in enumerate([("Nov", 5), ("Nov", 12), ("Nov", 19), ("Nov", 26), ("Dec", 3)]):
        text = "".join(LINE.format(mon=mon, day=day, m=i // 60, s=i % 60, pid=1000 + i) for i in range(600))
        (log / f"messages-2017{11 if mon == 'Nov' else 12:02d}{day + 1:02d}").write_text(text + "garbage\n")
    return ev


def _dump(case):
    con = duckdb.connect(str(case / "case.duckdb"), read_only=True)
    events = con.execute("SELECT event_id, ts_utc, raw, time_basis FROM events ORDER BY event_id").fetchall()
    issues = con.execute("SELECT source_id, \"offset\", reason FROM issues ORDER BY 1, 2").fetchall()
    sources = con.execute("SELECT source_id, events, issues FROM sources ORDER BY 1").fetchall()
    con.close()
    return events, issues, sources


@pytest.mark.slow
def test_two_workers_give_the_same_case(tmp_path):
    ev = _evidence(tmp_path)
    ingest([ev], tmp_path / "one", workers=1)
    ingest([ev], tmp_path / "two", workers=2)
    assert _dump(tmp_path / "one") == _dump(tmp_path / "two")
    assert len(_dump(tmp_path / "one")[0]) == 3000


# sources committed before the third parse is interrupted: each on its own, in full batches of two,
# and none when the first two still wait in a batch (a batch is all-or-nothing)
@pytest.mark.parametrize("batch, committed", [(1, 2), (2, 2), (200, 0)])
def test_interrupted_ingest_resumes_without_loss_or_doubles(tmp_path, interrupt_nth_call, monkeypatch, batch,
                                                            committed):
    ev = _evidence(tmp_path)
    ingest([ev], tmp_path / "whole")
    monkeypatch.setattr(ingest_module, "BATCH_SOURCES", batch)
    restore = interrupt_nth_call(ingest_module, "parse_source", 3)
    with pytest.raises(KeyboardInterrupt):
        ingest([ev], tmp_path / "resumed")
    restore()
    partial = _dump(tmp_path / "resumed")
    assert len(partial[2]) == committed
    assert not list((tmp_path / "resumed" / "staging").glob("*.parquet"))
    ingest([ev], tmp_path / "resumed")
    assert _dump(tmp_path / "resumed") == _dump(tmp_path / "whole")
    assert not list((tmp_path / "resumed" / "staging").glob("*.parquet"))


def _worker_pid(_item) -> int:
    return os.getpid()


@pytest.mark.slow
def test_a_session_keeps_one_cluster_for_every_parallel_step():
    from logsalvage import cluster

    with cluster.session(2):
        client = cluster._shared(2, None)
        workers = set(client.run(os.getpid).values())
        first = set(cluster.map_ordered(_worker_pid, range(6), workers=2))
        with cluster.session(2):  # a nested one (carving inside investigate) shares it
            assert cluster._shared(2, None) is client
            second = set(cluster.map_ordered(_worker_pid, range(6), workers=2))
        assert first | second <= workers and len(workers) == 2
    assert cluster._shared(2, None) is None
    alone = set(cluster.map_ordered(_worker_pid, range(6), workers=2))  # outside: a cluster of its own
    assert alone and not alone & workers
    assert list(cluster.map_ordered(abs, [-3, 2, -1])) == [3, 2, 1]  # one worker: in this process
