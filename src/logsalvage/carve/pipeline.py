"""Carving an image into a case: chunks as tasks, then reassembly, then the ordinary line engine.

1. The image is cut into chunks (32 MiB owned + a margin longer than the longest record; a record
   belongs to the chunk where its header starts). Each chunk is a task — in this process, on a
   local Dask cluster or an existing one — that scans, validates and cuts the chunk into pieces
   (whole records, heads cut at a block end, tails at a block start, rejects) and writes them to
   a Parquet file in the case. A chunk whose file exists is not carved again (resume).
2. Heads and tails from the whole image are reassembled along the log's block chains
   (``chains.reassemble_chains``: time-ordered, linear in the image, a join only where the chain
   order is unambiguous).
3. Records of each format are fed in image order through the same assembler as live files
   (PostgreSQL chunk joining, fields, timestamps), staged, and committed as one ``salvage``
   source per format: identical records found at several offsets become one event with
   ``copies``; fragments that could not be joined and rejects become issues.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from logsalvage.carve.images import open_image
from logsalvage.carve.pieces import Piece, carve_chunk
from logsalvage.carve.chains import ChainStats, reassemble_chains
from logsalvage.carve.scan import Scanner
from logsalvage.cluster import map_ordered, session
from logsalvage.config import CaseConfig
from logsalvage.errors import UsageError
from logsalvage.model import Source
from logsalvage.parsing.columnar import ColumnarParser, Unsupported, not_covered
from logsalvage.parsing.columnar_lines import decode_column
from logsalvage.parsing.engine import Assembler, ParseContext
from logsalvage.parsing.formats import log_formats, shipped_formats
from logsalvage.parsing.lines import Line
from logsalvage.parsing.years import Anchor
from logsalvage.staging import StagedSource, StageSink, StageWriter
from logsalvage.store import CaseStore, YearDecision, check_case_outside
from logsalvage.timezones import sql_zone_name

CHUNK = 32 << 20
MAX_RECORD = 64 << 10
# one row per piece of a chunk: records, heads and tails (with the context reassembly needs),
# rejects and unreadable ranges
PIECE_SCHEMA = pa.schema([("kind", pa.string()), ("offset", pa.int64()), ("data", pa.binary()),
                          ("format_id", pa.string()), ("reason", pa.string()), ("length", pa.int64()),
                          ("neighbour", pa.binary()), ("follow", pa.string())])
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ChunkTask:
    paths: tuple[str, ...]
    index: int
    base: int
    owned_end: int
    read_end: int
    block_size: int
    formats: tuple[str, ...]
    out: str


@dataclass
class CarveResult:
    image: str
    sha256: str
    size: int
    chunks: int
    chunks_reused: int
    records: int = 0
    joined: int = 0
    events: int = 0
    duplicates: int = 0
    issues: int = 0
    sources: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    output: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # wall time per step
    peak_mib: dict[str, int] = field(default_factory=dict)  # this process's peak RSS at the end of each step
    reassembly: dict = field(default_factory=dict)  # block-chain counts: joined, ambiguous, no candidate

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@lru_cache(maxsize=4)
def _image(paths: tuple[str, ...]):
    return open_image([Path(p) for p in paths])


@lru_cache(maxsize=4)
def _scanner(formats: tuple[str, ...]) -> Scanner:
    return Scanner([s for s in log_formats() if s.id in formats])


def _read_guarded(image, start: int, end: int, block_size: int) -> tuple[bytes, list[tuple[int, int, str]]]:
    """Bytes of [start, end); unreadable blocks come back as zeros and are listed."""
    pieces, errors = image.read_around_errors(start, end - start, granule=block_size)
    buf = bytearray(end - start)
    for offset, data in pieces:
        buf[offset - start:offset - start + len(data)] = data
    return bytes(buf), [(e.offset, e.length, f"unreadable: {e.reason}") for e in errors]


def carve_chunk_task(task: ChunkTask) -> dict:
    """Carve one chunk into its pieces file (runs on any worker; skipped if already done)."""
    out = Path(task.out)
    if out.exists():
        return {"index": task.index, "reused": True}
    image = _image(task.paths)
    buf, bad = _read_guarded(image, task.base, task.read_end, task.block_size)
    pieces = carve_chunk(buf, task.base, task.owned_end, block_size=task.block_size,
                         scanner=_scanner(task.formats), max_record=MAX_RECORD)
    recs = pieces.records
    n = len(recs.offsets)
    rows = {"kind": ["record"] * n, "offset": list(recs.offsets), "data": list(recs.data),
            "format_id": list(recs.formats), "reason": [None] * n, "length": [None] * n,
            "neighbour": [None] * n, "follow": [None] * n}

    def add(kind, offset, data, format_id=None, reason=None, length=None, neighbour=None, follow=None):
        for name, value in (("kind", kind), ("offset", offset), ("data", data), ("format_id", format_id),
                            ("reason", reason), ("length", length), ("neighbour", neighbour), ("follow", follow)):
            rows[name].append(value)

    for p in pieces.heads:
        add("head", p.offset, p.data, p.format_id, p.kind, neighbour=p.neighbour)
    for p in pieces.tails:
        add("tail", p.offset, p.data, p.format_id, neighbour=p.neighbour, follow=p.follow)
    for r in pieces.rejects:
        add("reject", r.offset, r.data, r.format_id, f"rejected header ({r.reason})", max(r.length, len(r.data)))
    for offset, length, reason in bad:
        add("unreadable", offset, b"", None, reason, length)
    tmp = out.with_suffix(".tmp")
    pq.write_table(pa.Table.from_pydict(rows, schema=PIECE_SCHEMA), tmp, compression="none")
    os.replace(tmp, out)  # a chunk file exists only when complete
    return {"index": task.index, "reused": False}


def _lap(result: CarveResult, step: str, since: float) -> float:
    now = time.perf_counter()
    result.seconds[step] = round(now - since, 2)
    # the process's peak resident memory so far: the step that raises it is where memory goes
    result.peak_mib[step] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    return now


def plan_chunks(regions, paths: tuple[str, ...], formats: tuple[str, ...], work: Path, size: int) -> list[ChunkTask]:
    tasks = []
    for region in regions:
        # chunks start on block boundaries (absolute: blocks are counted from the image start)
        for base in range(region.start - region.start % region.block_size, region.end, CHUNK):
            owned_end = min(base + CHUNK, region.end)
            read_end = min(owned_end + MAX_RECORD, region.end, size)
            tasks.append(ChunkTask(paths, len(tasks), base, owned_end, read_end, region.block_size, formats,
                                   str(work / f"chunk-{len(tasks):06d}.parquet")))
    return tasks


def _pieces(files: list[Path], kinds: tuple[str, ...]) -> Iterator[dict]:
    for f in files:
        table = pq.read_table(f, filters=[("kind", "in", list(kinds))])
        yield from table.to_pylist()


def _write_rejoined(joined: list, path: Path) -> Path:
    """Rejoined records as a Parquet file beside the chunk files, for the ordered read."""
    table = pa.Table.from_pydict({
        "offset": [p.offset for p in joined], "data": [p.data for p in joined],
        "format_id": [p.format_id for p in joined],
        "spans": [",".join(f"{o}+{n}" for o, n in p.spans) if p.joined else None for p in joined]},
        schema=pa.schema([("offset", pa.int64()), ("data", pa.binary()), ("format_id", pa.string()),
                          ("spans", pa.string())]))
    pq.write_table(table, path, compression="none")
    return path


def _unique_lines(rows):
    """Identical lines (an old copy of a file found again) sort next to each other: keep the first,
    with the offsets of the others, so a PostgreSQL message is never joined from two copies.
    (Record by record: the reference ``_unique_records`` is tested against.)"""
    current = None
    dup: list[int] = []
    for offset, data, spans in rows:
        if current is not None and data == current[1] and not spans and not current[2]:
            dup.append(offset)
            continue
        if current is not None:
            yield (*current, dup)
        current, dup = (offset, data, spans), []
    if current is not None:
        yield (*current, dup)


@dataclass
class _Unique:
    """A slice's records without the copies that follow them (``_unique_records``): offsets, bytes,
    spans and, per record, the offsets of its copies."""

    offsets: np.ndarray
    data: pa.Array
    spans: list
    dups: list[list[int]]

    def rows(self) -> list[tuple]:
        """As ``_unique_lines`` yields them."""
        return list(zip(self.offsets.tolist(), self.data.to_pylist(), self.spans, self.dups))


def _unique_records(table: pa.Table) -> _Unique:
    """``_unique_lines`` over a slice's columns: a record is a copy of the one before it when its
    bytes are the same and neither was rejoined (has spans)."""
    n = table.num_rows
    offsets = table.column("offset").to_numpy().astype(np.int64, copy=False)
    data = table.column("data").combine_chunks()
    plain = pc.fill_null(pc.equal(pc.binary_length(table.column("spans").combine_chunks()), 0), True)
    plain = plain.to_numpy(zero_copy_only=False)
    dup = np.zeros(n, bool)
    if n > 1:
        same = pc.fill_null(pc.equal(data.slice(1), data.slice(0, n - 1)), False).to_numpy(zero_copy_only=False)
        dup[1:] = same & plain[1:] & plain[:-1]
    keep = ~dup
    group = np.cumsum(keep) - 1
    dups: list[list[int]] = [[] for _ in range(int(keep.sum()))]
    for i in np.flatnonzero(dup).tolist():
        dups[group[i]].append(int(offsets[i]))
    kept = pa.array(keep)
    return _Unique(offsets[keep], data.filter(kept), table.column("spans").filter(kept).to_pylist(), dups)


def _spans(text: str | None) -> tuple[tuple[int, int], ...] | None:
    if not text:
        return None
    return tuple((int(o), int(n)) for o, n in (part.split("+") for part in text.split(",")))


def _host_settings(store: CaseStore, host: str, config: CaseConfig) -> tuple[str, str, str | None]:
    """(time zone, basis, log_line_prefix) as the case config or the ingest of ``host`` decided them."""
    hc = config.hosts.get(host)
    decided = store.host_setting(host, "timezone")
    if hc and hc.timezone:
        tz, basis = hc.timezone, "case config"
    elif decided and decided[0]:
        tz, basis = decided[0], f"as decided at ingest for {host}: {decided[1]}"
    else:
        tz, basis = "UTC", "default: no time zone known for this host"
    prefix = config.pg_log_line_prefix
    if prefix is None:
        found = store.host_setting(host, "pg_log_line_prefix")
        prefix = found[0] if found else None
    return sql_zone_name(tz), basis, prefix


def _anchor(acquired: datetime | None, config: CaseConfig, store: CaseStore, host: str, image_path: Path,
            tz: str = "UTC") -> Anchor:
    """The date carved records of ``host`` cannot be later than: instants (acquisition time, the
    image's mtime) are taken as dates on the host's clock, in its zone ``tz``, as its records are."""
    from logsalvage.ingest import _tzinfo

    zone = _tzinfo(tz)
    if acquired is not None:
        local = acquired.astimezone(zone)
        return Anchor(local.date(), f"acquisition time {local.isoformat()} in {tz} given on the command line")
    if config.acquired is not None:
        local = config.acquired.astimezone(zone)
        return Anchor(local.date(), f"acquisition time {local.isoformat()} in {tz} from the case config")
    span = store.host_dated_span(host)
    if span:
        return Anchor(span[1], f"latest dated record of host {host}")
    row = store.query("SELECT max(ts_local)::DATE FROM events WHERE host = ?", [host])
    if row and row[0][0]:
        return Anchor(row[0][0], f"latest record of host {host} in the case")
    mtime = datetime.fromtimestamp(image_path.stat().st_mtime, zone)
    return Anchor(mtime.date(), f"modification time of the image {mtime.isoformat()} in {tz} (weak)")


def carvable_formats() -> tuple[str, ...]:
    return tuple(sorted(s.id for s in log_formats() if s.carve.get("signature")))


def _source_id(image_sha: str, format_id: str) -> str:
    return hashlib.sha256(f"{image_sha}:{format_id}".encode()).hexdigest()[:16]


def carve_into_case(paths: list[Path], case_dir: Path, *, workers: int = 1, scheduler: str | None = None,
                    **kwargs) -> CarveResult:
    """Carve images into a case: every parallel step (the chunks, then each format's slices) on
    one Dask session."""
    with session(workers, scheduler):
        return _carve_into_case(paths, case_dir, workers=workers, scheduler=scheduler, **kwargs)


def _carve_into_case(paths: list[Path], case_dir: Path, *, host: str | None = None, formats: list[str] | None = None,
                     block_size: int | None = None, acquired: datetime | None = None, config: CaseConfig | None = None,
                     workers: int = 1, scheduler: str | None = None, progress: Progress | None = None,
                     engine: str = "auto") -> CarveResult:
    config = config or CaseConfig()
    known = set(carvable_formats())
    chosen = tuple(sorted(formats or known))
    unknown = set(chosen) - known
    if unknown:
        raise UsageError(f"no carve signature for format(s) {', '.join(sorted(unknown))}; "
                         f"carvable: {', '.join(sorted(known))}")
    check_case_outside(case_dir, paths)
    clock = time.perf_counter()
    image = open_image(paths)
    key = tuple(str(Path(p).resolve()) for p in image.paths)
    sha = image.sha256(progress=(lambda done: progress("hashing", done, image.size)) if progress else None)
    display = str(paths[0])
    with CaseStore(case_dir) as store:
        host = host or _host_from_path(paths[0], store) or "unknown"
        # an image already listed by ingest keeps the name it has there (relative to the evidence)
        known = store.query("SELECT path FROM inputs WHERE sha256 = ? AND role = 'image' ORDER BY path LIMIT 1", [sha])
        display = known[0][0] if known else display
        store.record_input(display, None, sha, image.size, "image", host, "raw image, carved")
        work = store.case_dir / "carve" / sha[:16]
        work.mkdir(parents=True, exist_ok=True)
        regions = image.regions(block_size)
        tasks = plan_chunks(regions, key, chosen, work, image.size)
        result = CarveResult(display, sha, image.size, len(tasks), 0, problems=list(image.problems))
        clock = _lap(result, "hash", clock)
        done = 0
        for info in map_ordered(carve_chunk_task, tasks, workers=workers, scheduler=scheduler):
            result.chunks_reused += info["reused"]
            t = tasks[info["index"]]
            done += t.owned_end - t.base
            if progress:
                progress("carving", done, image.size)
        files = [Path(t.out) for t in tasks]
        clock = _lap(result, "scan_validate", clock)
        heads = [Piece(r["offset"], r["data"], r["format_id"], r["reason"] or "head", neighbour=r["neighbour"])
                 for r in _pieces(files, ("head",))]
        tails = [Piece(r["offset"], r["data"], r["format_id"], "tail", neighbour=r["neighbour"], follow=r["follow"])
                 for r in _pieces(files, ("tail",))]
        chain_stats = ChainStats()
        joined, leftover = reassemble_chains(heads, tails, block_size=regions[0].block_size if regions else 4096,
                                             scanner=_scanner(chosen), stats=chain_stats)
        result.joined = chain_stats.joined
        result.reassembly = chain_stats.as_dict()
        rejoined = _write_rejoined(joined, work / "rejoined.parquet")
        clock = _lap(result, "reassemble", clock)
        tz, tz_basis, prefix = _host_settings(store, host, config)
        anchor = _anchor(acquired, config, store, host, Path(paths[0]), tz)
        allocation = {id(r): image.allocation(r) for r in regions}
        # pieces of no known format (tails, unreadable ranges) are issues of the syslog source
        fallback = "syslog" if "syslog" in chosen else chosen[0]
        for format_id in chosen:
            source_id = _source_id(sha, format_id)
            if store.has_source(source_id):
                continue

            def mine(fmt):
                return (fmt or fallback) == format_id

            problems = (r for r in _pieces(files, ("reject", "unreadable")) if mine(r["format_id"]))
            staged = _stage_format(store, format_id, source_id, sha, display, files, rejoined, joined,
                                   [p for p in leftover if mine(p.format_id)], problems, anchor, prefix, regions,
                                   allocation, work, workers, scheduler, chain_stats.reasons, engine)
            if staged.events == 0 and staged.issues == 0:
                staged.discard()
                continue
            src = Source(source_id, sha, display, None, host, "salvage", format_id, image.size, None,
                         datetime.fromtimestamp(Path(paths[0]).stat().st_mtime, timezone.utc), None, tz, tz_basis)
            try:
                stats = store.commit_source(src, YearDecision(None, 0, anchor.basis), staged, recovered=True,
                                            dedupe=True)
            except BaseException:
                store.abort()
                raise
            result.records += staged.events
            result.events += stats["events"]
            result.issues += stats["issues"]
            result.sources.append({"format": format_id, "events": stats["events"], "issues": stats["issues"],
                                   "first": stats["first"], "last": stats["last"]})
        result.duplicates = result.records - result.events
        # the image is carved for these formats only now: a run interrupted after some formats were
        # committed is not finished (``investigate`` resumes it rather than reusing it)
        store.set_carved(sha, chosen)
        _lap(result, "parse_dedupe_commit", clock)
        for f in [*files, rejoined]:
            f.unlink(missing_ok=True)
    return result


# records per parse task: the columnar parse of a slice holds several Arrow tables of it at once, so
# the slice bounds carve's peak memory (256 MiB scattered image: 1.6 GiB with 200,000, 0.75 GiB with
# 50,000, for ~1 s more of per-slice planning)
PART_ROWS = 50_000
_CHUNK_NO = re.compile(rb"\]: \[\d+-(\d+)\] ")
_CHUNK_NO_ARROW = rb"\]: \[\d+-(?P<chunk>\d+)\] "
_PART_SCHEMA = pa.schema([("offset", pa.int64()), ("data", pa.binary()), ("spans", pa.string())])


@dataclass(frozen=True)
class PartTask:
    """One slice of a format's records, in parse order, for a parse task on any worker."""

    part: str
    index: int
    first_line_no: int
    format_id: str
    source_id: str
    display: str
    prefix: str | None
    anchor: Anchor
    regions: tuple
    allocations: tuple  # one Allocation (or None) per region
    joined_offsets: frozenset
    stage_dir: str
    engine: str = "auto"  # "reference": the per-line engine even where the columnar one could read it


def _write_parts(batches, work: Path, format_id: str) -> list[tuple[Path, int]]:
    """Cut the ordered records (Arrow batches of offset, data, spans) into Parquet slices of about
    PART_ROWS, only where the next record starts a new second and is not a PostgreSQL continuation
    chunk, so no message and no group of identical copies is split. Returns (path, first line
    number) per slice. (``_write_parts_reference`` is the same cut, record by record.)"""
    parts: list[tuple[Path, int]] = []
    held: list[pa.RecordBatch] = []
    held_rows = 0
    line_no = 1
    prev_second = None

    def flush():
        nonlocal line_no, held_rows
        if held_rows:
            path = work / f"{format_id}-part-{len(parts):05d}.parquet"
            pq.write_table(pa.Table.from_batches(held, schema=_PART_SCHEMA), path, compression="none")
            parts.append((path, line_no))
            line_no += held_rows
            held.clear()
            held_rows = 0

    for batch in batches:
        batch = pa.record_batch([batch.column(n).cast(f.type) for n, f in zip(_PART_SCHEMA.names, _PART_SCHEMA)],
                                schema=_PART_SCHEMA)
        n = batch.num_rows
        if n == 0:
            continue
        data = batch.column("data")
        second = pc.binary_slice(data, 0, 15)
        # where a cut may go: a new second, and no continuation chunk of a PostgreSQL message
        before = pa.concat_arrays([pa.array([prev_second], pa.binary()), second.slice(0, n - 1)])
        new_second = pc.fill_null(pc.not_equal(second, before), True)  # (the very first record: True)
        chunk = pc.struct_field(pc.extract_regex(pc.binary_slice(data, 0, 300), _CHUNK_NO_ARROW), [0])
        first_chunk = pc.fill_null(pc.equal(chunk, pa.scalar(b"1", pa.binary())), True)
        candidates = np.flatnonzero(pc.and_(new_second, first_chunk).to_numpy(zero_copy_only=False))
        done = 0
        for i in candidates.tolist():
            if held_rows + (i - done) >= PART_ROWS:
                if i > done:
                    held.append(batch.slice(done, i - done))
                    held_rows += i - done
                    done = i
                flush()
        held.append(batch.slice(done))
        held_rows += n - done
        prev_second = second[n - 1].as_py()
    flush()
    return parts


def _write_parts_reference(rows, work: Path, format_id: str) -> list[tuple[Path, int]]:
    """``_write_parts`` record by record, over (offset, data, spans) tuples: the reference its
    batched form is tested against."""
    parts: list[tuple[Path, int]] = []
    buf: dict[str, list] = {"offset": [], "data": [], "spans": []}
    line_no = 1

    def flush():
        nonlocal line_no
        if buf["offset"]:
            path = work / f"{format_id}-part-{len(parts):05d}.parquet"
            pq.write_table(pa.Table.from_pydict(buf, schema=_PART_SCHEMA), path, compression="none")
            parts.append((path, line_no))
            line_no += len(buf["offset"])
            for col in buf.values():
                col.clear()

    prev_second = None
    for offset, data, spans in rows:
        second = data[:15]
        if len(buf["offset"]) >= PART_ROWS and second != prev_second:
            m = _CHUNK_NO.search(data, 0, 300)
            if m is None or m.group(1) == b"1":
                flush()
        buf["offset"].append(offset)
        buf["data"].append(data)
        buf["spans"].append(spans)
        prev_second = second
    flush()
    return parts


def _annotator(task: PartTask, copies: dict[int, str]) -> Callable[[dict], None]:
    """Provenance of a carved record: its blocks, whether it was rejoined, the live file (if any)
    that owns its bytes, and the offsets of its identical copies."""

    def annotate(rec: dict) -> None:
        spans = rec["_spans"]
        offsets = [o for o, _ in spans] if spans else [rec["_offset"]]
        i = next((k for k, r in enumerate(task.regions) if r.start <= offsets[0] < r.end), None)
        bs = task.regions[i].block_size if i is not None else 4096
        rec["blocks"] = ",".join(str(o // bs) for o in offsets)
        if rec["_offset"] in copies:
            rec["_copies"] = copies.pop(rec["_offset"])
        if any(o in task.joined_offsets for o in offsets):
            rec["rejoined"] = "yes"  # a line cut at a block boundary, joined with its tail from elsewhere
        alloc = task.allocations[i] if i is not None else None
        if alloc is not None:
            owner = alloc.owner(offsets[0])
            rec["allocated"] = "yes" if owner else "no"
            if owner:
                rec["owner_file"] = owner

    return annotate


def _carved_lines(task: PartTask, records: _Unique) -> tuple[pa.Table, dict[int, bytes]]:
    """The unique carved records of a slice as the columnar engine's line table, each with the
    provenance ``_annotator`` would give a record made of that line alone."""
    n = len(records.offsets)
    offsets = records.offsets
    binary = records.data.cast(pa.binary())
    spans_text = records.spans
    odd_bytes: dict[int, bytes] = {}
    text, odd = decode_column(binary, task.first_line_no, odd_bytes)
    lengths = pc.add(pc.binary_length(binary), 1).cast(pa.int64())
    # the region (block size, allocation) of each line's first byte
    starts = np.array([r.start for r in task.regions], np.int64)
    ends = np.array([r.end for r in task.regions], np.int64)
    first = offsets.copy()
    spanned = [i for i, sp in enumerate(spans_text) if sp]
    parsed = {i: _spans(spans_text[i]) for i in spanned}
    for i in spanned:
        first[i] = parsed[i][0][0]
    k = np.searchsorted(starts, first, side="right") - 1
    inside = (k >= 0) & (first < ends[np.maximum(k, 0)])
    bs = np.where(inside, np.array([r.block_size for r in task.regions] or [4096], np.int64)[np.maximum(k, 0)], 4096)
    blocks = (offsets // bs).astype(str).tolist()
    joined = np.isin(offsets, np.fromiter(task.joined_offsets, np.int64, len(task.joined_offsets)))
    rejoined = np.where(joined, "yes", None).tolist()
    for i in spanned:
        offs = [o for o, _ in parsed[i]]
        blocks[i] = ",".join(str(o // int(bs[i])) for o in offs)
        rejoined[i] = "yes" if any(o in task.joined_offsets for o in offs) else None
    allocated: list[str | None] = [None] * n
    owner_file: list[str | None] = [None] * n
    for region_index, alloc in enumerate(task.allocations):
        if alloc is None:
            continue
        idx = np.flatnonzero(inside & (k == region_index))
        for i, owner in zip(idx.tolist(), alloc.owners(first[idx])):
            allocated[i] = "yes" if owner else "no"
            owner_file[i] = owner
    table = pa.table({
        "line_no": np.arange(task.first_line_no, task.first_line_no + n, dtype=np.int64),
        "offset": offsets, "length": lengths, "text": text, "no_newline": np.zeros(n, bool), "odd": odd,
        "too_long": np.zeros(n, bool), "spans": pa.array(spans_text, pa.string()),
        "copies": pa.array([",".join(map(str, d)) if d else None for d in records.dups], pa.string()),
        "blocks": pa.array(blocks, pa.string()), "rejoined": pa.array(rejoined, pa.string()),
        "allocated": pa.array(allocated, pa.string()), "owner_file": pa.array(owner_file, pa.string())})
    return table, odd_bytes


def parse_carved_part(task: PartTask) -> StagedSource:
    """Parse one slice of carved records into staging files (runs on any worker): the columnar
    engine, or the per-line reference where the slice holds what the columnar steps do not model."""
    table = pq.read_table(task.part)
    records = _unique_records(table)
    copies = {int(offset): ",".join(map(str, dup)) for offset, dup in zip(records.offsets, records.dups) if dup}
    spec = shipped_formats()[task.format_id]
    ctx = ParseContext(pg_log_line_prefix=task.prefix)
    why = not_covered(spec) if task.engine != "reference" else "the reference engine was asked for"
    if why is None:
        try:
            lines, odd = _carved_lines(task, records)
            result = ColumnarParser(spec, ctx).parse(lines, odd, anchor=task.anchor,
                                                     annotate=_annotator(task, dict(copies)))
        except Unsupported as exc:
            why = str(exc)
        else:
            writer = StageWriter(Path(task.stage_dir), f"{task.source_id}-{task.index:05d}")
            writer.event_table(result.events)
            writer.issues([(task.source_id, task.display, *i) for i in result.issues])
            writer.close()
            Path(task.part).unlink(missing_ok=True)
            return StagedSource(task.source_id, "", writer.events_path, writer.issues_path, result.events.num_rows,
                                len(result.issues), len(table), result.years, parser="columnar")
    writer = StageWriter(Path(task.stage_dir), f"{task.source_id}-{task.index:05d}")
    sink = StageSink(writer, task.source_id, task.display, anchor=task.anchor, annotate=_annotator(task, copies))
    asm = Assembler(spec, ctx, sink)
    for n, (offset, data, spans, _dup) in enumerate(records.rows(), start=task.first_line_no):
        asm.feed(Line(n, offset, data, len(data) + 1, spans=_spans(spans)))
    asm.close()
    sink.flush()
    writer.close()
    Path(task.part).unlink(missing_ok=True)
    return StagedSource(task.source_id, "", writer.events_path, writer.issues_path, sink.events, sink.issues,
                        len(table), sink.year_state(), parser=f"reference: {why}")


def _stage_format(store, format_id, source_id, sha, display, files, rejoined, joined, leftover, rejects, anchor,
                  prefix, regions, allocation, work, workers, scheduler, why: dict, engine: str = "auto") -> StagedSource:
    """Parse a format's carved records as parallel slices; fragments and rejects become issues."""
    rows = store.carved_records(files, rejoined, format_id, anchor.latest)
    parts = _write_parts(rows, work, format_id)
    allocations = tuple(allocation.get(id(r)) for r in regions)
    tasks = [PartTask(str(path), i, first, format_id, source_id, display, prefix, anchor, tuple(regions),
                      allocations, frozenset(p.offset for p in joined if p.joined), str(store.stage_dir), engine)
             for i, (path, first) in enumerate(parts)]
    staged = list(map_ordered(parse_carved_part, tasks, workers=workers, scheduler=scheduler))
    writer = StageWriter(store.stage_dir, f"{source_id}-fragments")
    sink = StageSink(writer, source_id, display, anchor=anchor)
    for p in leftover:
        because = f": {why[p.offset]}" if p.offset in why else ""
        sink.issue(p.offset, len(p.data), None, f"fragment that could not be rejoined ({p.kind or 'piece'}{because})",
                   p.data[:200].decode("utf-8", "backslashreplace"))
    for r in rejects:
        sink.issue(r["offset"], r["length"], None, r["reason"], r["data"][:200].decode("utf-8", "backslashreplace"))
    sink.flush()
    writer.close()
    slow = [s.parser for s in staged if s.parser != "columnar"]
    parser = "columnar" if not slow else f"{slow[0]} ({len(slow)} of {len(staged)} slices)"
    return StagedSource(source_id, sha, [s.events_path for s in staged] + [writer.events_path],
                        [s.issues_path for s in staged] + [writer.issues_path],
                        sum(s.events for s in staged), sum(s.issues for s in staged) + sink.issues,
                        sum(s.lines for s in staged), parser=parser)


def _host_from_path(path: Path, store: CaseStore) -> str | None:
    hosts = {r[0] for r in store.query("SELECT DISTINCT host FROM sources")}
    for part in reversed(Path(path).resolve().parts):
        if part in hosts:
            return part
    return None


def parse_acquired(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        try:
            t = datetime.combine(date.fromisoformat(text), datetime.min.time())
        except ValueError:
            raise UsageError(f"--acquired {text!r} is not an ISO 8601 date or time") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def carve_to_file(paths: list[Path], output: Path, **kwargs) -> CarveResult:
    """Carve into a private case next to ``output``, then write the records' original text there,
    one record per line in time order (what a string search of the image would give, minus junk,
    duplicates and broken lines). The private case is kept until the output is complete (resume)."""
    import shutil

    output = Path(output)
    if not output.parent.is_dir():
        raise UsageError(f"output directory does not exist: {output.parent}")
    work = output.with_name(output.name + ".carve-case")
    result = carve_into_case(paths, work, **kwargs)
    with CaseStore(work, read_only=True) as store, open(output.with_suffix(output.suffix + ".tmp"), "w",
                                                          encoding="utf-8", newline="\n") as fh:
        for batch in store.arrow_batches("SELECT raw FROM events ORDER BY ts_utc NULLS LAST, \"offset\""):
            if batch.num_rows:
                fh.write("\n".join(batch.column(0).to_pylist()) + "\n")
    os.replace(output.with_suffix(output.suffix + ".tmp"), output)
    shutil.rmtree(work, ignore_errors=True)
    result.output = str(output)
    return result
