"""Files of fixed-size records (utmp, lastlog): bytes in, each record to its format, runs of
all-zero records (and holes of a sparse file) handed over as runs, a cut-off last record as an
issue. The caller feeds the file's content in order, in chunks that begin on a record boundary."""

from __future__ import annotations

from typing import Protocol

from logsalvage.parsing.engine import Sink


class RecordFormat(Protocol):
    size: int

    def record(self, sink: Sink, offset: int, index: int, data: bytes) -> None: ...

    def zeros(self, sink: Sink, offset: int, count: int) -> None:
        """``count`` all-zero records (or a hole) from ``offset``."""


class FixedRecords:
    """Cuts a stream of chunks into records of ``fmt.size`` bytes."""

    def __init__(self, fmt: RecordFormat, sink: Sink):
        self.fmt = fmt
        self.sink = sink
        self.records = 0  # records read that hold something (zero records and holes not counted)
        self._zero_from: int | None = None  # offset where the current run of zero records began
        self._zero_count = 0
        self._zero = bytes(fmt.size)

    def feed(self, offset: int, data: bytes) -> None:
        size = self.fmt.size
        if offset % size:
            raise ValueError("chunks must begin on a record boundary")
        whole = len(data) - len(data) % size
        if data.count(0) == len(data):  # a block of zeros (a sparse file's allocated zeros, a wiped region)
            self._zeros(offset, whole // size)
        else:
            zero = self._zero
            for pos in range(0, whole, size):
                rec = data[pos:pos + size]
                if rec == zero:
                    self._zeros(offset + pos, 1)
                    continue
                self._flush_zeros()
                self.records += 1
                self.fmt.record(self.sink, offset + pos, (offset + pos) // size, rec)
        if whole < len(data):
            self._flush_zeros()
            tail = len(data) - whole
            self.sink.issue(offset + whole, tail, (offset + whole) // size + 1,
                            f"truncated record: the last {tail} bytes are less than a whole {size}-byte record",
                            data[whole:whole + 64].hex())

    def hole(self, offset: int, length: int) -> None:
        """A hole of a sparse file (zeros never stored), from a record boundary."""
        size = self.fmt.size
        self._zeros(offset, length // size)
        if length % size:
            self._flush_zeros()
            tail = length % size
            self.sink.issue(offset + length - tail, tail, (offset + length) // size + 1,
                            f"truncated record: the last {tail} bytes (a hole) are less than a whole {size}-byte "
                            "record", "")

    def close(self) -> None:
        self._flush_zeros()

    def _zeros(self, offset: int, count: int) -> None:
        if count <= 0:
            return
        if self._zero_from is None:
            self._zero_from = offset
        self._zero_count += count

    def _flush_zeros(self) -> None:
        if self._zero_from is not None:
            self.fmt.zeros(self.sink, self._zero_from, self._zero_count)
        self._zero_from, self._zero_count = None, 0
