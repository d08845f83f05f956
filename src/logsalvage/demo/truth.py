"""The answer key: heartbeat coverage, the per-line records table, and truth.json itself."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from .db import HB
from .stamps import IsoStamper

COVERAGE_DEFINITION = (
    "A heartbeat (the 30-s health check, 'incomplete startup packet' from 127.0.0.1) is "
    "recoverable when every byte of its line exists in at least one source: a live file, a "
    "backup archive member, or the image (in the primary layout, possibly split across two "
    "extents, or contiguously in an older duplicate copy). Let h1 < ... < hn be the times of the "
    "recoverable heartbeats. Each interval (hi, hi+1) longer than 2 periods (60 s) is a hole "
    "and entirely uncovered; so are the stretches from the DB period's start to h1 and from hn "
    "to its end when longer than 60 s. Every other second of the DB period is covered; time "
    "outside the DB period is uncovered. coverage(window) = covered seconds in the window / "
    "seconds in the window.")


class Coverage:
    """Streams recoverable heartbeat times (non-decreasing) and keeps the holes."""

    def __init__(self, start: int, end: int, threshold: int = 60):
        self.start, self.end, self.threshold = start, end, threshold
        self.first: int | None = None
        self.last: int | None = None
        self.holes: list[tuple[int, int]] = []
        self.count = 0

    def feed(self, t: int) -> None:
        if self.last is None:
            self.first = t
        elif t - self.last > self.threshold:
            self.holes.append((self.last, t))
        self.last = t
        self.count += 1

    def finish(self) -> list[tuple[int, int]]:
        if self.first is None:
            self.holes = [(self.start, self.end)]
            return self.holes
        if self.first - self.start > self.threshold:
            self.holes.insert(0, (self.start, self.first))
        if self.end - self.last > self.threshold:
            self.holes.append((self.last, self.end))
        return self.holes

    def ratio(self, lo: int, hi: int) -> float:
        if hi <= lo:
            return 0.0
        uncovered = max(0, min(hi, self.start) - lo) + max(0, hi - max(lo, self.end))
        for a, b in self.holes:
            uncovered += max(0, min(b, hi) - max(a, lo))
        return round((hi - lo - uncovered) / (hi - lo), 6)


class RecordsTable:
    """truth-db-records.tsv.gz: one row per physical line of db01's logical messages files."""

    HEADER = b"file\tfile_offset\tlength\tline_no\ttime\tpresent_in_image\timage_offsets\tsplit\ttext\n"

    def __init__(self, path: Path):
        self._raw = open(path, "wb")
        self._gz = gzip.GzipFile(filename="truth-db-records.tsv", mode="wb", fileobj=self._raw,
                                 mtime=0, compresslevel=1)
        self._gz.write(self.HEADER)
        self._iso = IsoStamper()

    def write_file(self, name: str, f, img_off, img_split, dup_off) -> dict:
        """Write the rows of one logical file; return its presence counts and heartbeats.

        ``img_off[i]``/``dup_off[i]``: image offset of line i in the primary layout / the
        duplicate copy, -1 when not whole there; ``img_split[i]``: the line crosses extents.
        """
        nb = name.encode()
        data = f.data
        stamp = self._iso
        offs = f.line_off
        n_lines = len(offs)
        firsts = list(f.rec_first) + [n_lines]
        times, kinds = f.rec_time, f.rec_kind
        size = len(data)
        out = []
        rec_present = rec_split = lines_present = lines_split = 0
        heartbeats = []       # (time, whole in the image)
        for r in range(len(times)):
            t = times[r]
            ts = stamp(t).encode()
            all_present = True
            any_split = False
            for i in range(firsts[r], firsts[r + 1]):
                off = offs[i]
                end = offs[i + 1] if i + 1 < n_lines else size
                io = img_off[i]
                do = dup_off[i] if dup_off is not None else -1
                if io >= 0:
                    sp = img_split[i]
                    ob = b"%d,%d" % (io, do) if do >= 0 else b"%d" % io
                elif do >= 0:
                    sp = False
                    ob = b"%d" % do
                else:
                    sp = False
                    ob = b""
                present = io >= 0 or do >= 0
                lines_present += present
                lines_split += sp
                all_present = all_present and present
                any_split = any_split or sp
                out.append(b"%s\t%d\t%d\t%d\t%s\t%d\t%s\t%d\t%s\n" % (
                    nb, off, end - off, i + 1, ts, present, ob, sp, data[off:end - 1]))
            rec_present += all_present
            rec_split += any_split
            if kinds[r] == HB:
                heartbeats.append((t, all_present))
            if len(out) >= 20000:
                self._gz.write(b"".join(out))
                out.clear()
        self._gz.write(b"".join(out))
        return {"records_present": rec_present, "records_split": rec_split,
                "lines_present": lines_present, "lines_split": lines_split, "heartbeats": heartbeats}

    def close(self) -> None:
        self._gz.close()
        self._raw.close()


def dump(truth: dict, path: Path) -> None:
    path.write_text(json.dumps(truth, sort_keys=True, indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


# truth's name for a milestone -> the detector's, where they differ
MILESTONE_KINDS = {"block_c_first_access": "webshell_first_use_from_network"}
# find's "Permission denied" lines carry no time of their own: the detected milestone is the
# web-shell request that ran find, which the generator stamps one second before find's first output
MILESTONE_EARLIER_BY = {"find_scan": 1}


def missed_milestones(truth: dict, milestones: list[dict]) -> list[tuple[str, str]]:
    """(kind, time) of every planted milestone that ``milestones`` (findings.json's) lacks at its time."""
    from datetime import datetime

    def sec(iso: str) -> int:
        return int(datetime.fromisoformat(iso).timestamp())

    found = {(m["kind"], sec(m["time"])) for m in milestones}
    return [(m["kind"], m["time"]) for m in truth["milestones"]
            if (MILESTONE_KINDS.get(m["kind"], m["kind"]),
                sec(m["time"]) - MILESTONE_EARLIER_BY.get(m["kind"], 0)) not in found]
