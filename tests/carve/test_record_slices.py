"""The carved records' path to the parser in Arrow batches gives what the record-by-record
reference gives: the same slices cut at the same records (``_write_parts``), the same records
kept with the same copies (``_unique_records``)."""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from logsalvage.carve import pipeline
from logsalvage.carve.pipeline import _PART_SCHEMA, _unique_lines, _unique_records, _write_parts, _write_parts_reference


def _records(seed: int, n: int) -> list[tuple[int, bytes, str | None]]:
    """Syslog records in time order: several per second, PostgreSQL messages of several chunks,
    runs of identical copies (some rejoined, with spans), other formats' lines."""
    rnd = random.Random(seed)
    out, second, offset = [], 0, 0
    while len(out) < n:
        if rnd.random() < 0.3:
            second += 1
        stamp = f"Mar  {1 + second // 86400} {second // 3600 % 24:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
        kind = rnd.random()
        if kind < 0.4:
            chunks = rnd.randint(1, 3)
            pid = rnd.randint(100, 110)
            lines = [f"{stamp} db01 postgres[{pid}]: [{rnd.randint(1, 9)}-{c}] part {c}".encode()
                     for c in range(1, chunks + 1)]
        elif kind < 0.5:
            lines = [f"{stamp} db01 CROND[4{rnd.randint(0, 9)}]: (root) CMD (run-parts)".encode()] * rnd.randint(2, 4)
        else:
            lines = [f"{stamp} db01 kernel: x {rnd.randint(0, 3)}".encode()]
        for data in lines:
            offset += rnd.randint(50, 5000)
            spans = rnd.choice([None, None, None, "", f"{offset}+10,{offset + 9000}+20"])
            out.append((offset, data, spans))
    return out[:n]


def _batches(records, size: int):
    for i in range(0, len(records), size):
        part = records[i:i + size]
        yield pa.record_batch([pa.array([r[0] for r in part], pa.int64()), pa.array([r[1] for r in part], pa.binary()),
                               pa.array([r[2] for r in part], pa.large_string())], names=["offset", "data", "spans"])


def _read(parts) -> list[tuple[int, list]]:
    return [(first, pq.read_table(path).to_pylist()) for path, first in parts]


@pytest.mark.parametrize("seed", range(4))
def test_batched_slices_are_the_reference_slices(seed, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(pipeline, "PART_ROWS", 97)
    records = _records(seed, 2000)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    want = _read(_write_parts_reference(iter(records), tmp_path / "a", "syslog"))
    for size in (1, 50, 97, 333, 5000):
        got = _read(_write_parts(_batches(records, size), tmp_path / "b", "syslog"))
        assert got == want, size
    assert len(want) > 5 and sum(len(rows) for _, rows in want) == len(records)


@pytest.mark.parametrize("seed", range(4))
def test_unique_records_are_the_reference_unique_lines(seed):
    records = _records(seed, 3000)
    table = pa.Table.from_pylist([dict(zip(("offset", "data", "spans"), r)) for r in records], schema=_PART_SCHEMA)
    want = list(_unique_lines(iter(records)))
    got = _unique_records(table).rows()
    assert [tuple(r) for r in got] == [tuple(r) for r in want]
    assert any(r[3] for r in want) and len(want) < len(records)


def test_no_records():
    table = _PART_SCHEMA.empty_table()
    assert _unique_records(table).rows() == []
