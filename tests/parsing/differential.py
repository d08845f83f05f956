"""Both engines on the same bytes: the staged events (every column), issues and year state must agree."""

from __future__ import annotations

import io
import math
from pathlib import Path

import pyarrow.parquet as pq

from logsalvage.parsing.columnar import ColumnarParser
from logsalvage.parsing.columnar_lines import read_line_table
from logsalvage.parsing.engine import Assembler, ParseContext
from logsalvage.parsing.formats import FormatSpec
from logsalvage.parsing.lines import iter_lines
from logsalvage.staging import StageSink, StageWriter


def reference(spec: FormatSpec, ctx: ParseContext, data: bytes, stage: Path):
    writer = StageWriter(stage, "ref")
    sink = StageSink(writer, "src", "path")
    asm = Assembler(spec, ctx, sink)
    for line in iter_lines(io.BytesIO(data)):
        asm.feed(line)
    asm.close()
    sink.flush()
    writer.close()
    # a file is made by its first batch: none when there was nothing to stage
    events = pq.read_table(writer.events_path).to_pylist() if writer.events_path else []
    issues = ([tuple(r.values())[2:] for r in pq.read_table(writer.issues_path).to_pylist()]
              if writer.issues_path else [])
    return events, issues, sink.year_state()


def columnar(spec: FormatSpec, ctx: ParseContext, data: bytes, block: int | None = None):
    """The columnar engine on the whole text at once, or (``block``) streamed in slices."""
    if block is None:
        odd: dict[int, bytes] = {}
        lines = read_line_table(io.BytesIO(data), odd_bytes=odd)
        result = ColumnarParser(spec, ctx).parse(lines, odd)
        return result.events.to_pylist(), [tuple(i) for i in result.issues], result.years
    events, issues = [], []

    def write(result):
        events.extend(result.events.to_pylist())
        issues.extend(tuple(i) for i in result.issues)

    years = ColumnarParser(spec, ctx).parse_stream(io.BytesIO(data), write, block=block)
    return events, issues, years


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def differences(spec: FormatSpec, ctx: ParseContext, data: bytes, stage: Path, limit: int = 5,
                block: int | None = None) -> list[str]:
    """What differs between the engines (empty when they agree)."""
    ev1, is1, y1 = reference(spec, ctx, data, stage)
    ev2, is2, y2 = columnar(spec, ctx, data, block)
    out: list[str] = []
    ev1.sort(key=lambda r: r["offset"])
    ev2.sort(key=lambda r: r["offset"])
    if [r["offset"] for r in ev1] != [r["offset"] for r in ev2]:
        o1, o2 = {r["offset"] for r in ev1}, {r["offset"] for r in ev2}
        out.append(f"events at offsets only in the reference {sorted(o1 - o2)[:limit]}, "
                   f"only in the columnar {sorted(o2 - o1)[:limit]}")
    else:
        for a, b in zip(ev1, ev2):
            diff = {k: (a[k], b.get(k)) for k in a if not _same(a[k], b.get(k))}
            if diff:
                out.append(f"event at {a['offset']} ({a['raw'][:120]!r}): {diff}")
            if len(out) >= limit:
                break
    if sorted(is1, key=repr) != sorted(is2, key=repr):
        out.append(f"issues: reference only {[i for i in is1 if i not in is2][:limit]}, "
                   f"columnar only {[i for i in is2 if i not in is1][:limit]}")
    years = lambda y: (y.yearless, y.last_epoch, y.rollovers, y.max_ordinal_in_last_epoch, y.feb29_epochs,
                       y.guesses, y.guessed)
    if years(y1) != years(y2):
        out.append(f"year state: {y1} vs {y2}")
    return out
