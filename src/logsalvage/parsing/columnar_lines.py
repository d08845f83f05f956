"""A byte stream as Arrow columns of lines: number, offset, length, text, and what is unusual.

The columnar engine's input. Lines are cut with numpy on large blocks; their text (without the
line end and one CR before it) becomes an Arrow string column. A line that is not valid UTF-8
or holds a NUL keeps its text backslash-escaped (as the reference engine decodes it) and is
flagged, so the engine hands it to the per-line reference path; an over-long line is flagged with
an empty text, never held whole.
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from logsalvage.parsing.lines import MAX_LINE

BLOCK = 64 << 20
DECODE_RUN = 4096  # values cast together when a column holds some that are not UTF-8

LINE_SCHEMA = pa.schema([("line_no", pa.int64()), ("offset", pa.int64()), ("length", pa.int64()),
                         ("text", pa.string()), ("no_newline", pa.bool_()), ("odd", pa.bool_()),
                         ("too_long", pa.bool_())])


def _block_table(buf: bytes, first_line: int, base: int, final: bool, odd_bytes: dict[int, bytes]) -> pa.Table:
    """Lines of ``buf`` (every line ends with a newline unless ``final``)."""
    raw = np.frombuffer(buf, np.uint8)
    nl = np.flatnonzero(raw == 10)
    ends = nl
    no_newline = np.zeros(len(nl), bool)
    if final and (len(nl) == 0 or nl[-1] != len(buf) - 1) and len(buf):
        ends = np.append(nl, len(buf))
        no_newline = np.append(no_newline, True)
    starts = np.empty(len(ends), np.int64)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    ends = ends.astype(np.int64)
    lengths = ends - starts + (~no_newline)
    text_end = ends.copy()
    cr = (text_end > starts) & (raw[np.maximum(text_end - 1, 0)] == 13)
    text_end[cr] -= 1
    too_long = lengths > MAX_LINE
    text_end[too_long] = starts[too_long]
    # the data buffer without line ends, CRs before them and over-long lines
    mask = np.ones(len(raw), bool)
    mask[nl] = False
    mask[text_end[cr]] = False
    for i in np.flatnonzero(too_long):
        mask[starts[i]:ends[i]] = False
    data = raw[mask]
    offsets = np.zeros(len(ends) + 1, np.int64)
    np.cumsum(text_end - starts, out=offsets[1:])
    binary = pa.Array.from_buffers(pa.large_binary(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    text, odd = decode_column(binary, first_line, odd_bytes, maybe_nul=bool(np.any(raw == 0)))
    return pa.table({"line_no": np.arange(first_line, first_line + len(ends), dtype=np.int64),
                     "offset": starts + base, "length": lengths, "text": text,
                     "no_newline": no_newline, "odd": odd, "too_long": too_long}, schema=LINE_SCHEMA)


def decode_column(binary: pa.Array, first_line: int, odd_bytes: dict[int, bytes],
                  maybe_nul: bool = True) -> tuple[pa.Array, np.ndarray]:
    """Texts of byte strings as the reference engine decodes them, and which are odd (not valid
    UTF-8 — their bytes go to ``odd_bytes`` by line number — or holding a NUL)."""
    odd = np.zeros(len(binary), bool)
    try:
        text = binary.cast(pa.large_string())
    except pa.ArrowInvalid:
        # in runs of DECODE_RUN values: a run that Arrow validates is cast whole, only the values of
        # a run that fails are decoded one by one in Python
        pieces = []
        for start in range(0, len(binary), DECODE_RUN):
            run = binary.slice(start, DECODE_RUN)
            try:
                pieces.append(run.cast(pa.large_string()))
                continue
            except pa.ArrowInvalid:
                pass
            fixed = []
            for i, v in enumerate(run.to_pylist(), start=start):
                try:
                    fixed.append(v.decode("utf-8"))
                except UnicodeDecodeError:
                    fixed.append(v.decode("utf-8", "backslashreplace"))
                    odd[i] = True
                    odd_bytes[first_line + i] = v
            pieces.append(pa.array(fixed, pa.large_string()))
        text = pa.concat_arrays(pieces) if pieces else pa.array([], pa.large_string())
    if maybe_nul:
        odd |= pc.fill_null(pc.match_substring(text, "\x00"), False).to_numpy(zero_copy_only=False)
    return text.cast(pa.string()), odd


def read_line_table(stream: BinaryIO, block: int = BLOCK, odd_bytes: dict[int, bytes] | None = None) -> pa.Table:
    """Every line of ``stream`` (each byte range exactly once, as ``parsing.lines.iter_lines``);
    ``odd_bytes`` receives the bytes of lines that are not valid UTF-8, by line number."""
    tables = list(iter_line_tables(stream, block, odd_bytes))
    return pa.concat_tables(tables) if tables else LINE_SCHEMA.empty_table()


def iter_line_tables(stream: BinaryIO, block: int = BLOCK, odd_bytes: dict[int, bytes] | None = None):
    """The lines of ``stream`` as consecutive tables of about ``block`` bytes each."""
    odd_bytes = {} if odd_bytes is None else odd_bytes
    held: list[pa.Table] = []  # tables not yet given out: the last may end inside an over-long line
    pending = b""
    base = 0
    line_no = 1

    def ready():
        t = _merge_long(pa.concat_tables(held))
        held.clear()
        return t

    while True:
        chunk = stream.read(block)
        buf = pending + chunk if pending else chunk
        if not chunk:
            if buf:
                held.append(_block_table(buf, line_no, base, final=True, odd_bytes=odd_bytes))
            break
        cut = buf.rfind(b"\n") + 1
        if cut == 0 and len(buf) <= MAX_LINE * 4:
            pending = buf
            continue
        if cut == 0:  # one enormous line: keep only a bounded tail until its end is found
            held.append(_long_line(buf, line_no, base))
            base += len(buf)
            pending = b""
            continue
        t = _block_table(buf[:cut], line_no, base, final=False, odd_bytes=odd_bytes)
        if held and held[-1].num_rows and held[-1].column("too_long")[-1].as_py() \
                and held[-1].column("no_newline")[-1].as_py():
            held.append(t)  # the end of an over-long line: one row with its pieces
            yield ready()
        else:
            if held:
                yield ready()
            held.append(t)
        line_no += t.num_rows
        base += cut
        pending = buf[cut:]
    if held:
        yield ready()


def _long_line(buf: bytes, line_no: int, base: int) -> pa.Table:
    """A piece of a line with no newline in a whole block: a too-long line continued by the next block."""
    return pa.table({"line_no": [line_no], "offset": [base], "length": [len(buf)], "text": [""],
                     "no_newline": [True], "odd": [False], "too_long": [True]}, schema=LINE_SCHEMA)


def _merge_long(table: pa.Table) -> pa.Table:
    """Join the pieces of an over-long line cut across blocks into one row (rare: checked in Python)."""
    nn = table.column("no_newline").to_numpy(zero_copy_only=False)
    if nn[:-1].sum() == 0:
        return table
    rows = table.to_pylist()
    out = []
    for r in rows:
        if out and out[-1]["no_newline"] and out[-1]["too_long"]:
            prev = out[-1]
            prev["length"] += r["length"]
            prev["no_newline"] = r["no_newline"]
            prev["text"] = ""
            prev["too_long"] = True
            continue
        out.append(r)
    for i, r in enumerate(out):
        r["line_no"] = rows[0]["line_no"] + i
    return pa.Table.from_pylist(out, schema=LINE_SCHEMA)
