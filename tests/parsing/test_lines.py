"""The bounded line splitter accounts for every byte, including over-long lines it never holds."""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from logsalvage.parsing.lines import iter_lines, with_line_ends


def _cover(lines):
    pos = 0
    for ln in lines:
        assert ln.offset == pos
        pos += ln.length
    return pos


@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64), st.integers(min_value=4, max_value=100))
def test_every_byte_is_in_exactly_one_line(data, chunk, max_line):
    lines = list(iter_lines(io.BytesIO(data), chunk_size=chunk, max_line=max_line))
    assert _cover(lines) == len(data)
    for ln in lines:
        if not ln.too_long:
            assert data[ln.offset:ln.offset + len(ln.data)] == ln.data


def test_over_long_line_is_reported_not_kept():
    data = b"short\n" + b"x" * 5000 + b"\nafter\n"
    lines = list(iter_lines(io.BytesIO(data), chunk_size=256, max_line=1000))
    assert [ln.too_long for ln in lines] == [False, True, False]
    assert lines[1].length == 5001 and lines[1].data == b""
    assert lines[2].data == b"after"


def test_last_line_without_newline():
    lines = list(iter_lines(io.BytesIO(b"a\nb")))
    assert lines[-1].no_newline and lines[-1].data == b"b"


def test_cr_only_line_ends_are_cut_at_each_cr_with_offsets_kept():
    stream, cr = with_line_ends(io.BytesIO(b"one\rtwo\rthree"))
    assert cr
    assert [(ln.offset, ln.data, ln.length) for ln in iter_lines(stream)] == [(0, b"one", 4), (4, b"two", 4),
                                                                              (8, b"three", 5)]
    # a CR inside a line of an LF file stays in the line: splitting there would let a record forge one
    stream, cr = with_line_ends(io.BytesIO(b"a\rb\nc\r\n"))
    assert not cr
    assert [ln.data for ln in iter_lines(stream)] == [b"a\rb", b"c\r"]


def test_a_column_with_some_invalid_utf8_is_decoded_value_by_value():
    """Values that are not UTF-8 (alone — two halves of one character in neighbouring lines are
    two odd lines) are backslash-escaped and their bytes kept, wherever they fall among the runs
    Arrow casts whole; every other value is its text."""
    import random

    import pyarrow as pa

    from logsalvage.parsing.columnar_lines import DECODE_RUN, decode_column
    rnd = random.Random(7)
    values = [f"line {i} \u00e9\u4e2d".encode() for i in range(3 * DECODE_RUN + 17)]
    bad = {0, 5, DECODE_RUN - 1, DECODE_RUN, 2 * DECODE_RUN + 3, len(values) - 1}
    for i in bad:
        values[i] = rnd.choice([b"\xff", b"x\xc3", b"\xa9y", b"\xed\xa0\x80"]) + values[i]
    odd_bytes: dict[int, bytes] = {}
    text, odd = decode_column(pa.array(values, pa.large_binary()), 10, odd_bytes)
    assert text.to_pylist() == [v.decode("utf-8", "backslashreplace") for v in values]
    assert set(odd.nonzero()[0].tolist()) == bad
    assert odd_bytes == {10 + i: values[i] for i in bad}
