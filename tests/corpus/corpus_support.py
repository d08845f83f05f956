"""Reading corpus files and checking what the line engine made of them.

Every test here parses the bytes as they are (compressed files decompressed in memory) and checks
that events and issues together account for every line exactly once; coverage is then the share of
non-blank lines that ended up in events.
"""

from __future__ import annotations

import bisect
import bz2
import csv
import gzip
import io
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Callable

from logsalvage.parsing.engine import Assembler, ParseContext
from logsalvage.parsing.formats import shipped_formats
from logsalvage.parsing.lines import iter_lines

CORPUS_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@lru_cache(maxsize=1)
def manifest() -> dict[str, dict[str, str]]:
    with open(CORPUS_ROOT / "MANIFEST.tsv", newline="", encoding="utf-8") as fh:
        return {row["local_path"]: row for row in csv.DictReader(fh, delimiter="\t")}


def read_bytes(rel: str) -> bytes:
    data = (CORPUS_ROOT / rel).read_bytes()
    if rel.endswith(".gz"):
        return gzip.decompress(data)
    if rel.endswith(".bz2"):
        return bz2.decompress(data)
    return data


_LINE = re.compile(rb"[^\n]*\n|[^\n]+$")


def physical_lines(data: bytes) -> list[bytes]:
    """Lines as the engine cuts them (at '\\n' only), each with its line end."""
    return _LINE.findall(data)


def without_comments(data: bytes, prefix: bytes = b"#") -> bytes:
    """fail2ban's annotated logs: the '# failJSON: ...' lines are the test's, not the log's."""
    return b"".join(ln for ln in physical_lines(data) if not ln.startswith(prefix))


def split_lines(data: bytes, pred: Callable[[bytes], bool]) -> tuple[bytes, bytes]:
    """A file mixing two formats, cut by line into (lines for which pred holds, the others)."""
    yes, no = [], []
    for ln in physical_lines(data):
        (yes if pred(ln) else no).append(ln)
    return b"".join(yes), b"".join(no)


@dataclass
class Result:
    data: bytes
    events: list[dict]
    issues: list[tuple]  # (offset, length, line_no, reason, excerpt)
    line_starts: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        starts, pos = [], 0
        for ln in physical_lines(self.data):
            starts.append(pos)
            pos += len(ln)
        self.line_starts = starts

    def _lines(self, offset: int, length: int) -> range:
        first = bisect.bisect_left(self.line_starts, offset)
        last = bisect.bisect_left(self.line_starts, offset + length)
        return range(first, last)

    def event_lines(self, rec: dict) -> list[int]:
        spans = rec["_spans"] or [(rec["_offset"], rec["_length"])]
        return [i for off, ln in spans for i in self._lines(off, ln)]

    @cached_property
    def lines(self) -> list[bytes]:
        return [ln.rstrip(b"\n") for ln in physical_lines(self.data)]

    def blank(self, i: int) -> bool:
        return not self.lines[i].strip()

    @cached_property
    def nonblank(self) -> int:
        return sum(1 for ln in self.lines if ln.strip())

    def issue_line_numbers(self) -> list[int]:
        return [i for off, length, *_ in self.issues for i in self._lines(off, length)]

    def problems(self) -> list[tuple]:
        """Issues about lines that hold something (blank lines are issues too, but not lost data)."""
        return [iss for iss in self.issues if any(not self.blank(i) for i in self._lines(iss[0], iss[1]))]

    @property
    def coverage(self) -> float:
        bad = sum(1 for i in set(self.issue_line_numbers()) if not self.blank(i))
        return 1.0 - bad / max(1, self.nonblank)

    def check_accounting(self) -> None:
        """Every line is in exactly one event or one issue; every issue says why."""
        seen: dict[int, str] = {}
        for rec in self.events:
            for i in self.event_lines(rec):
                assert i not in seen, f"line {i + 1} in two records ({seen[i]} and line {rec['_line_no']})"
                seen[i] = f"event at line {rec['_line_no']}"
        for off, length, line_no, reason, _ in self.issues:
            assert reason, f"issue at line {line_no} without a reason"
            for i in self._lines(off, length):
                assert i not in seen, f"line {i + 1} both in {seen[i]} and an issue"
                seen[i] = f"issue at line {line_no}"
        missing = [i + 1 for i in range(len(self.line_starts)) if i not in seen]
        assert not missing, f"lines accounted for by nothing: {missing[:20]}"

    def describe(self) -> str:
        return "\n".join(f"  line {ln}: {reason}: {text[:120]!r}" for _, _, ln, reason, text in self.problems()[:15])


def parse(format_id: str, data: bytes, **context) -> Result:
    """Run the line engine over raw bytes (no decoding round trip: invalid UTF-8 stays as it is)."""
    events: list[dict] = []
    issues: list[tuple] = []

    class Collect:
        def event(self, rec: dict) -> None:
            events.append(rec)

        def issue(self, offset, length, line_no, reason, excerpt, event_offset=None) -> None:
            if event_offset is None:  # a problem inside an event (invalid UTF-8) is not an unparsed range
                issues.append((offset, length, line_no, reason, excerpt))

    asm = Assembler(shipped_formats()[format_id], ParseContext(**context), Collect())
    for line in iter_lines(io.BytesIO(data)):
        asm.feed(line)
    asm.close()
    events.sort(key=lambda r: r["_offset"])
    result = Result(data, events, issues)
    result.check_accounting()
    return result


def assert_coverage(result: Result, where: str, minimum: float = 0.99) -> None:
    assert result.coverage >= minimum, (
        f"{where}: {result.coverage:.1%} of {result.nonblank} non-blank lines in events "
        f"({len(result.problems())} issues):\n{result.describe()}")


def wall(rec: dict) -> tuple:
    """Local wall-clock parts of a record's timestamp: (year, month, day, 'HH:MM:SS', microseconds)."""
    st = rec["_stamp"]
    s = st.sod_us // 1_000_000
    return st.year, st.month, st.day, f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}", st.sod_us % 1_000_000


def offset(rec: dict) -> int | None:
    return rec["_stamp"].utc_offset_s


def by_raw(result: Result) -> dict[str, dict]:
    """Records keyed by their first line of text (the line other tools' expected results quote)."""
    return {rec["raw"].split("\n", 1)[0]: rec for rec in result.events}
