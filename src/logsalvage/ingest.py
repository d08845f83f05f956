"""Ingest: evidence paths in, a case database out.

Order of work: discover and classify everything; read the configuration files found (time zone,
``log_line_prefix``, ``LogFormat``) per host; then parse each log source into the case — dated
formats first, so year-less syslog files can be anchored by the dated records of the same host.
Each source is hashed before it is parsed; a source already in the case is recorded as another
copy, not parsed twice. A source is committed whole or not at all — small ones together, a batch
in one transaction (see ``BATCH_SOURCES``) — so an interrupted ingest is resumed by running it again.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone as dt_timezone, tzinfo
from pathlib import Path
from typing import Callable

from logsalvage.config import CaseConfig
from logsalvage.errors import UsageError
from logsalvage.ingest_binary import parse_binary
from logsalvage.parsing.apache_logformat import NICKNAMES, read_httpd_conf
from logsalvage.parsing.binary import BINARY_FORMATS
from logsalvage.parsing.columnar import ColumnarParser, Unsupported, not_covered
from logsalvage.parsing.engine import Assembler, ParseContext
from logsalvage.parsing.formats import log_formats, shipped_formats
from logsalvage.parsing.listings import InventoryEntry, ListingParser, Problem, parse_inventory_line
from logsalvage.parsing.pg_prefix import read_postgresql_conf
from logsalvage.parsing.pg_prefix_choice import choose_for as choose_prefix_for
from logsalvage.parsing.years import Anchor, describe_guesses, fit_leap_days, resolve_base_year
from logsalvage.sources import (CR_LINE_ENDS, Candidate, Reading, ReadProblem, acquisition_change, discover,
                                hash_input, open_text_stream, read_small, release_spools, sha256_of, stream_lines,
                                with_declared_logformats)
from logsalvage.sources.histories import history_fields
from logsalvage.cluster import map_ordered
from logsalvage.staging import StagedSource, StageSink, StageWriter, YearState
from logsalvage.model import Source
from logsalvage.store import CaseStore, YearDecision, check_case_outside
from logsalvage.timezones import sql_zone_name, zone_from_text, zone_from_tzif, zone_or_none

YEARFUL_FIRST = {"apache-access": 0, "apache-error": 0, "vsftpd": 0, "xferlog": 0, "postgresql-stderr": 0,
                 "postgresql-csvlog": 0, "nginx-error": 0, "apt-history": 0, "apt-term": 0, "auditd": 0,
                 "bash-history": 0, "zsh-history": 0}

Progress = Callable[[str, int, int], None]


@dataclass
class HostSettings:
    """What the evidence and the config say about one host."""

    tz: str = "UTC"
    tz_basis: str = "default: no time zone in the case config or the evidence"
    pg_log_line_prefix: str | None = None
    pg_prefix_basis: str | None = None
    # every log_line_prefix the host's configuration files name (several postgresql.conf copies,
    # older and newer): candidates when a log's own records decide its prefix (``pg_prefix_choice``)
    pg_prefix_candidates: list[str] = field(default_factory=list)
    apache_logformats: list[str] = field(default_factory=list)
    # LogFormat nicknames declared in the host's Apache configuration files, and the CustomLog
    # formats that name one: a CustomLog in one file (sites-enabled/*.conf) may name a format
    # another declares (apache2.conf), so they are resolved once every file is read
    apache_declared: dict[str, str] = field(default_factory=dict)
    apache_custom: list[str] = field(default_factory=list)


@dataclass
class IngestResult:
    sources_new: int = 0
    sources_known: int = 0
    events: int = 0
    issues: int = 0
    inputs: dict[str, int] = field(default_factory=dict)
    sources: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"sources_new": self.sources_new, "sources_already_in_case": self.sources_known,
                "events": self.events, "issues": self.issues, "inputs_by_role": self.inputs,
                "sources": self.sources}


def _read_configs(cands: list[Candidate], config: CaseConfig, store: CaseStore) -> dict[str, HostSettings]:
    settings: dict[str, HostSettings] = {}
    for name, hc in config.hosts.items():
        s = settings.setdefault(name, HostSettings())
        if hc.timezone:
            s.tz, s.tz_basis = hc.timezone, "case config"
    for cand in cands:
        # every host of the evidence, not only those with config files or a config entry: the case
        # config's log_line_prefix and LogFormats below apply to all of them
        settings.setdefault(cand.host or "unknown", HostSettings())
    for cand in cands:
        if cand.role != "config":
            continue
        host = cand.host or "unknown"
        s = settings.setdefault(host, HostSettings())
        try:
            data = read_small(cand)
            sha = sha256_of(cand)
        except (OSError, ReadProblem) as exc:
            store.record_input(cand.display, None, None, cand.size, "config", host, f"unreadable: {exc}")
            store.add_issue(None, cand.display, None, None, None, f"configuration file unreadable: {exc}")
            continue
        detail = cand.config_kind
        if cand.config_kind == "postgresql.conf":
            prefix = read_postgresql_conf(data.decode("utf-8", "replace")).get("log_line_prefix")
            if prefix is not None and prefix not in s.pg_prefix_candidates:
                s.pg_prefix_candidates.append(prefix)
            if prefix is not None and s.pg_prefix_basis != "case config":
                s.pg_log_line_prefix, s.pg_prefix_basis = prefix, cand.display
                detail = f"postgresql.conf: log_line_prefix = {prefix!r}"
        elif cand.config_kind == "httpd.conf":
            conf = read_httpd_conf(data.decode("utf-8", "replace"))
            s.apache_declared.update(conf["formats"])
            s.apache_custom += [fmt for _, fmt in conf["custom_named"]]
            detail = f"httpd.conf: {len(conf['custom_logs'])} CustomLog format(s)"
        elif cand.config_kind in ("localtime", "timezone", "clock"):
            if cand.config_kind == "localtime":
                zone, how = zone_from_tzif(data)
            else:
                zone = zone_from_text(data.decode("utf-8", "replace"))
                how = f"{cand.rel} names it"
            if zone and s.tz_basis != "case config":
                s.tz, s.tz_basis = zone, f"{how} ({cand.display})"
            detail = f"time zone {zone or 'not recognised'}: {how}"
        store.record_input(cand.rel, cand.member, sha, cand.size, "config", host, detail)
    if config.pg_log_line_prefix is not None:
        for s in settings.values():
            s.pg_log_line_prefix, s.pg_prefix_basis = config.pg_log_line_prefix, "case config"
    for host, s in settings.items():
        for name in s.apache_custom:
            fmt = s.apache_declared.get(name, NICKNAMES.get(name, name))
            if fmt not in s.apache_logformats:
                s.apache_logformats.append(fmt)
        for fmt in config.apache_logformats:
            if fmt not in s.apache_logformats:
                s.apache_logformats.insert(0, fmt)
        # what later stages (carving) need to read this host's records as ingest did
        store.set_host_setting(host, "timezone", s.tz, s.tz_basis)
        if s.pg_log_line_prefix is not None:
            store.set_host_setting(host, "pg_log_line_prefix", s.pg_log_line_prefix, s.pg_prefix_basis)
    return settings


def choose_anchor(cand: Candidate, config: CaseConfig, store: CaseStore, host: str, tz: str = "UTC") -> Anchor:
    """The date a year-less file cannot be later than, strongest evidence first.

    The records carry the host's local date, so an instant (the file's mtime, a tar header's time,
    the acquisition time) is taken as a date on the host's clock, in its zone ``tz``: a Tokyo
    file last written at 00:20 on Jan 1 local time was written on Jan 1, not on Dec 31 (UTC)."""
    rotated = cand.rotation_date
    if rotated:
        return Anchor(rotated, f"rotation date in the file name {cand.name!r}")
    zone = _tzinfo(tz)
    acquired = config.acquired
    # the container's own time of the content (gzip header, zip member) before the file's mtime, which a
    # copy changes; a wall-clock time without zone (zip) is read on the host's clock
    # (a time after the acquisition, or before 1995, is a wrong clock or a zeroed field: the next one)
    for stamp, basis in ((cand.content_time, cand.content_time_basis),
                         (cand.mtime, "tar header" if cand.member else None)):
        instant = stamp.replace(tzinfo=zone) if stamp is not None and stamp.tzinfo is None else stamp
        if instant and instant.year >= 1995 and (acquired is None or instant <= acquired + timedelta(days=1)):
            local = instant.astimezone(zone)
            return Anchor(local.date(), f"modification time {local.isoformat()} in {tz}"
                          + (f" ({basis})" if basis else ""))
    if acquired:
        local = acquired.astimezone(zone)
        return Anchor(local.date(), f"acquisition time {local.isoformat()} in {tz} from the case config")
    span = store.host_dated_span(host)
    if span:
        return Anchor(span[1], f"latest dated record of host {host} ({span[1]})")
    today = datetime.now(zone).date()
    return Anchor(today, f"no anchor in the evidence or config: today's date {today} in {tz} (weak)")


def decide_years(ys: YearState, cand: Candidate, config: CaseConfig, store: CaseStore, host: str,
                 tz: str = "UTC") -> YearDecision:
    """The year decision of a staged source (``store``: what answers ``host_dated_span``, the case or
    the batch of sources waiting for it)."""
    if ys.yearless == 0:
        return YearDecision(None, 0, "year in record")
    anchor = choose_anchor(cand, config, store, host, tz)
    base = resolve_base_year(ys.max_ordinal_in_last_epoch, anchor)
    base, moved = fit_leap_days(base, ys.last_epoch, ys.feb29_epochs)
    basis = f"year inferred: last record not after {anchor.latest} ({anchor.basis})"
    if ys.rollovers:
        basis += f"; {ys.rollovers} year roll-over(s) in the file"
    basis += describe_guesses(ys.guesses, ys.guessed)
    if moved > 0:
        basis += f"; moved back {moved} year(s) so Feb 29 falls in a leap year"
    elif moved < 0:
        basis += "; Feb 29 record(s) fit no nearby leap year"
    return YearDecision(base, ys.last_epoch, basis)


ENGINES = ("auto", "columnar", "reference")
# Below this size (stored, uncompressed) a source is read line by line: the columnar engine's fixed
# cost per source (a database connection, query planning: about 0.1 s) is more than the per-line
# engine spends on it, and an archive of thousands of small logs would pay it thousands of times.
SMALL_SOURCE = 64 << 10
# a source of at most this many records goes from the parse to the commit in memory, not through a
# staging file (a Parquet writer costs ~2 ms, as much as parsing a one-line log); a batch of them
# holds at most BATCH_EVENTS records
MEMORY_ROWS = 2_000
SMALL_REASON = f"a small source (under {SMALL_SOURCE >> 10} KiB): quicker line by line than in the columnar engine"


@dataclass(frozen=True)
class ParseTask:
    """Everything a worker needs to parse one source (picklable: it may travel to a Dask worker)."""

    cand: Candidate
    ctx: ParseContext
    stage_dir: Path
    known_ids: frozenset[str]
    engine: str = "auto"  # "columnar" where it covers the source, else the reference; or one of them
    # the candidate's place in the run: its staging files are named by source and place, so a copy of
    # the same bytes parsed later never writes over those of a source still waiting in a batch
    index: int = 0
    # the host's other configured log_line_prefixes: candidates when the source's records decide
    # its own (``pg_prefix_choice``), after ``ctx.pg_log_line_prefix``
    pg_prefix_candidates: tuple[str, ...] = ()
    # what, besides its bytes, makes the source one of its own: ``watch`` gives the log's path and
    # byte range, so the same bytes read again further on in the log (the same request twice in a
    # second, a round between them) are a new piece of it, not a copy of the earlier one
    identity: str | None = None

    def source_id(self, sha: str) -> str:
        """The source's id: its bytes' sha256 (the same bytes found twice are one source and a copy),
        with the ``identity`` when there is one."""
        if self.identity is None:
            return sha[:16]
        return hashlib.sha256(f"{self.identity}\0{sha}".encode("utf-8", "surrogatepass")).hexdigest()[:16]


def parse_source(task: ParseTask) -> StagedSource:
    """Hash a candidate and, if it is new, parse it into staging files. Runs on any worker."""
    cand = task.cand
    if cand.format_id in BINARY_FORMATS:  # wtmp, lastlog, journal: read by their own readers
        return parse_binary(task, MEMORY_ROWS)
    try:
        sha = sha256_of(cand)
    except (OSError, ReadProblem, KeyError) as exc:
        return StagedSource("", "", error=str(exc))
    source_id = task.source_id(sha)
    if source_id in task.known_ids:
        return StagedSource(source_id, sha, known=True)
    spec = shipped_formats()[cand.format_id]
    task, prefix_note = _with_own_prefix(task, spec)
    staged = _parse(task, spec, source_id, sha)
    if prefix_note:
        staged.parser += f"; log_line_prefix {prefix_note}"
    return staged


def _with_own_prefix(task: ParseTask, spec) -> tuple[ParseTask, str | None]:
    """The task with the log_line_prefix(es) the source's own records were written with, when they
    are not the host's configured one (and how they were found); the task as it is otherwise."""
    through_syslog = any(r.special == "pg-syslog" for r in spec.refinements)
    if not through_syslog and spec.id != "postgresql-stderr":
        return task, None
    ctx = task.ctx
    configured = tuple(p for p in (ctx.pg_log_line_prefix, *task.pg_prefix_candidates) if p is not None)
    choice = choose_prefix_for(task.cand, through_syslog, configured)
    if not choice.changed:
        return task, None
    first, *rest = choice.prefixes
    return replace(task, ctx=replace(ctx, pg_log_line_prefix=first, pg_other_prefixes=tuple(rest))), choice.basis


def _parse(task: ParseTask, spec, source_id: str, sha: str) -> StagedSource:
    """A new source through the columnar engine where it covers it, else the reference."""
    cand = task.cand
    if task.engine == "reference":
        why = "the reference engine was asked for"
    elif task.engine == "auto" and cand.compression is None and cand.size < SMALL_SOURCE:
        why = SMALL_REASON
    else:
        why = not_covered(spec)
    if why is None:
        staged = _parse_columnar(task, spec, source_id, sha)
        if isinstance(staged, StagedSource):
            return staged
        why = staged
    staged = _parse_reference(task, spec, source_id, sha)
    staged.parser = f"reference: {why}"
    return staged


def _parse_columnar(task: ParseTask, spec, source_id: str, sha: str) -> StagedSource | str:
    """The columnar engine's staging of a source, or why it could not read it (the reference will)."""
    writer = StageWriter(task.stage_dir, f"{source_id}-{task.index:05d}", memory_rows=MEMORY_ROWS)
    counts = {"events": 0, "issues": 0, "lines": 0}

    def write(result) -> None:
        writer.event_table(result.events)
        writer.issues([(source_id, task.cand.display, *i) for i in result.issues])
        counts["events"] += result.events.num_rows
        counts["issues"] += len(result.issues)
        counts["lines"] += result.lines

    try:
        with open_text_stream(task.cand) as fh:
            if fh.cr_line_ends:
                writer.issues([(source_id, task.cand.display, 0, None, None, CR_LINE_ENDS, "", None)])
                counts["issues"] += 1
            years = ColumnarParser(spec, task.ctx).parse_stream(fh, write)
    except (ReadProblem, Unsupported) as exc:
        writer.close()
        StagedSource(source_id, sha, writer.events_path, writer.issues_path).discard()
        return f"the stream ends early ({exc})" if isinstance(exc, ReadProblem) else str(exc)
    writer.close()
    return StagedSource(source_id, sha, writer.events_path, writer.issues_path, counts["events"], counts["issues"],
                        counts["lines"], years, parser="columnar", events_table=writer.events_table)


def _parse_reference(task: ParseTask, spec, source_id: str, sha: str) -> StagedSource:
    cand = task.cand
    writer = StageWriter(task.stage_dir, f"{source_id}-{task.index:05d}", memory_rows=MEMORY_ROWS)
    sink = StageSink(writer, source_id, cand.display)
    asm = Assembler(spec, task.ctx, sink)
    lines = end = 0
    try:
        for line in stream_lines(cand, lambda: sink.issue(0, None, None, CR_LINE_ENDS, "")):
            lines += 1
            end = line.offset + line.length
            asm.feed(line)
    except ReadProblem as exc:
        # the lines before the problem are kept; the partial line read before it is this issue
        sink.issue(end, max(0, (exc.offset or end) - end), lines + 1, f"stream ends early: {exc}", "")
    finally:
        asm.close()
        sink.flush()
        writer.close()
    return StagedSource(source_id, sha, writer.events_path, writer.issues_path, sink.events, sink.issues, lines,
                        sink.year_state(), events_table=writer.events_table)


# Small sources are committed together: the set-oriented statements that turn staged sources into
# events cost about as much for a batch as for one source (~20 ms, mostly planning), so a thousand
# one-line archive members are a few transactions, not a thousand. A batch is committed when it
# holds BATCH_SOURCES sources or BATCH_EVENTS events (a big source fills it at once), before a
# year-less source's anchor needs the dated records of a host the batch may add to, and at the end.
# It is all-or-nothing, as a source is: an interrupted run parses the batch's sources again.
# BATCH_SOURCES = 1 commits every source on its own. A transaction of more than a row group (122,880
# rows) has DuckDB write its rows straight into the database file, compressed; smaller ones go
# through the WAL and are compressed again at the next checkpoint: db01's thirteen ~50 k-record
# messages files committed one by one spent 4.7 s in COMMIT, in batches of 300 k records 0.3 s (the
# default demo's whole ingest 11 % faster, peak memory +90 MiB).
BATCH_SOURCES = 200
BATCH_EVENTS = 300_000


class _Batch:
    """Staged sources waiting for one transaction, with the rows about the inputs read with them
    (``inputs``, ``copies`` and source-less ``issues`` rows, as ``CaseStore.commit_sources`` takes
    them)."""

    def __init__(self, store: CaseStore, known: frozenset[str], result: IngestResult):
        self.store, self.result = store, result
        self.in_case = set(known)  # sources in the case: before this run, committed in it or waiting here
        self.spans: dict[str, tuple | None] = {}  # store.host_dated_span per host, until the next commit
        self._clear()

    def _clear(self) -> None:
        self.sources: list[tuple[Source, YearDecision, StagedSource, bool]] = []
        self.entries: list[dict] = []  # their result.sources entries, counts filled in at the commit
        self.inputs: list[tuple] = []
        self.copies: list[tuple] = []
        self.issues: list[tuple] = []
        self.events = 0
        self.dated_hosts: set[str] = set()  # hosts some waiting source may add records with a year to

    def host_dated_span(self, host: str) -> tuple | None:
        """``CaseStore.host_dated_span`` as if every source before this one were committed (an anchor
        sees the dated records of the same run): the batch is committed first when it may hold some."""
        if host in self.dated_hosts:
            self.flush()
        if host not in self.spans:
            self.spans[host] = self.store.host_dated_span(host)
        return self.spans[host]

    def add(self, src: Source, years: YearDecision, staged: StagedSource, entry: dict) -> None:
        self.sources.append((src, years, staged, src.kind == "salvage"))
        self.entries.append(entry)
        self.in_case.add(src.source_id)
        self.events += staged.events
        if staged.events > staged.years.yearless:  # records with no year of their own are counted there
            self.dated_hosts.add(src.host)
        if len(self.sources) >= BATCH_SOURCES or self.events >= BATCH_EVENTS:
            self.flush()

    def flush(self) -> None:
        if not (self.sources or self.inputs or self.copies or self.issues):
            return
        try:
            stats = self.store.commit_sources(self.sources, inputs=self.inputs, copies=self.copies,
                                              issues=self.issues)
        except BaseException:
            self.store.abort()
            raise
        for entry, st in zip(self.entries, stats):
            self.result.sources_new += 1
            self.result.events += st["events"]
            self.result.issues += st["issues"]
            entry.update(events=st["events"], issues=st["issues"])
            self.result.sources.append(entry)
        self.spans.clear()
        self._clear()


def _commit(cand: Candidate, staged: StagedSource, batch: _Batch, settings: HostSettings,
            config: CaseConfig, host: str, result: IngestResult) -> None:
    """Queue a parsed candidate's rows for the case (``batch``): the input, its issues, and the
    source or, when its bytes are in the case already or earlier in this run, a copy of it."""
    if staged.error is not None:
        batch.inputs.append((cand.rel, cand.member, None, cand.size, "unreadable", host, staged.error))
        batch.issues.append((None, cand.display, None, None, None, f"source unreadable: {staged.error}", ""))
        result.issues += 1
        return
    batch.inputs.append((cand.rel, cand.member, staged.sha256, cand.size, "log", host, cand.detail))
    changed = acquisition_change(cand)  # after the worker read it: what was hashed and read is what was found
    if changed:
        batch.issues.append((None, cand.display, None, None, None, changed, ""))
        result.issues += 1
    if staged.known or staged.source_id in batch.in_case:  # known before, or a copy within this run
        staged.discard()
        batch.copies.append((staged.source_id, cand.rel, cand.member, host, cand.kind))
        result.sources_known += 1
        return
    years = decide_years(staged.years, cand, config, batch, host, settings.tz)
    src = Source(staged.source_id, staged.sha256, cand.rel, cand.member, host, cand.kind, cand.format_id,
                 cand.size, cand.compression, cand.mtime, cand.rotation_date, sql_zone_name(settings.tz),
                 settings.tz_basis)
    batch.add(src, years, staged, {"path": cand.display, "host": host, "kind": cand.kind, "format": cand.format_id,
                                   "events": None, "issues": None, "lines": staged.lines, "year_basis": years.basis,
                                   "parser": staged.parser})


FS_BATCH = 50_000
_FS_ISSUE_PREFIX = {"inventory": "checksum inventory: ", "listing": "file listing: "}


def _tzinfo(name: str) -> tzinfo:
    zone = zone_or_none(name)
    if zone is not None:
        return zone
    m = re.fullmatch(r"UTC([+-])(\d\d):(\d\d)", name)  # the fixed offsets of timezones.zone_from_tzif
    if m:
        return dt_timezone((1 if m.group(1) == "+" else -1) * timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    return dt_timezone.utc


def _store_file_evidence(cand: Candidate, store: CaseStore, config: CaseConfig,
                         settings: dict[str, HostSettings]) -> int:
    """Parse a checksum inventory or a listing into ``file_inventory``/``file_listing`` rows; lines
    that do not parse become issues. The input's earlier rows are replaced, so ingesting it again
    does not double them. Returns the number of issues."""
    host = cand.host or "unknown"
    prefix = _FS_ISSUE_PREFIX[cand.role]
    s = settings.get(host) or HostSettings()
    if cand.role == "listing":
        parser = ListingParser(_tzinfo(s.tz), f"{s.tz} ({s.tz_basis})", choose_anchor(cand, config, store, host, s.tz))
        feed, table = parser.feed, "file_listing"
        cols = ["host", "input_path", "member", "directory", "name", "path", "type", "mode", "links", "owner", "grp",
                "size", "time_kind", "time", "time_raw", "target", "line_no", "time_basis", "time_precision"]
    else:
        feed, table = parse_inventory_line, "file_inventory"
        cols = ["host", "input_path", "member", "hash_type", "hash", "path", "line_no", "input_mtime"]
    issue_cols = ["source_id", "path", "offset", "length", "line_no", "reason", "excerpt", "event_id"]
    rows: list[tuple] = []
    issues: list[tuple] = []
    n_issues = 0
    with store.transaction():
        store.execute(f"DELETE FROM {table} WHERE input_path = ? AND member IS NOT DISTINCT FROM ?",
                      [cand.rel, cand.member])
        store.execute("DELETE FROM issues WHERE source_id IS NULL AND path = ? AND starts_with(reason, ?)",
                      [cand.display, prefix])
        try:
            for line in stream_lines(cand):
                if line.too_long:
                    out = Problem(line.line_no, "line too long to be a listing or checksum line", "")
                else:
                    out = feed(line.line_no, line.data.decode("utf-8", "backslashreplace"))
                if isinstance(out, Problem):
                    issues.append((None, cand.display, line.offset, line.length, line.line_no, prefix + out.reason,
                                   out.text[:200], None))
                elif isinstance(out, InventoryEntry):
                    rows.append((host, cand.rel, cand.member, out.hash_type, out.hash, out.path, out.line_no,
                                 cand.mtime))
                elif out is not None:
                    for t in out.times:
                        rows.append((host, cand.rel, cand.member, out.directory, out.name, out.path, out.type,
                                     out.mode, out.links, out.owner, out.grp, out.size, t.kind, t.time, t.raw,
                                     out.target, out.line_no, t.basis, t.precision))
                if len(rows) >= FS_BATCH:
                    store.insert_rows(table, cols, rows)
                    rows = []
        except ReadProblem as exc:
            issues.append((None, cand.display, exc.offset, None, None, f"{prefix}stream ends early: {exc}", "", None))
        store.insert_rows(table, cols, rows)
        n_issues = store.insert_rows("issues", issue_cols, issues)
    return n_issues


def _clear_staging(stage_dir: Path) -> None:
    """Staged files not committed (an interrupted or failed run) are parsed again next time."""
    if stage_dir.is_dir():
        for p in stage_dir.glob("*.parquet"):
            p.unlink(missing_ok=True)


def ingest(paths: list[Path], case_dir: Path, *, host: str | None = None, kind: str | None = None,
           format_id: str | None = None, config: CaseConfig | None = None,
           progress: Progress | None = None, workers: int = 1, scheduler: str | None = None,
           engine: str = "auto") -> IngestResult:
    config = config or CaseConfig()
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; one of {', '.join(ENGINES)}")
    for p in paths:
        if not Path(p).exists():
            raise UsageError(f"evidence path does not exist: {p}")
    known_formats = {s.id for s in log_formats()} | set(BINARY_FORMATS)
    if format_id is not None and format_id not in known_formats:
        raise UsageError(f"unknown format {format_id!r}; known: {', '.join(sorted(known_formats))}")
    check_case_outside(case_dir, paths)
    cands = discover(list(map(Path, paths)), host=host, kind=kind, format_id=format_id,
                     host_for_path=config.host_for, reading=Reading(config.decompression, str(case_dir)))
    result = IngestResult()
    with CaseStore(case_dir) as store:
        settings = _read_configs(cands, config, store)
        # an input of unknown content written with a LogFormat its host declares is its access log
        cands = [with_declared_logformats(c, settings[c.host or "unknown"].apache_logformats) for c in cands]
        logs = []
        for cand in cands:
            result.inputs[cand.role] = result.inputs.get(cand.role, 0) + 1
            if cand.role == "log":
                logs.append(cand)
                continue
            notes: list[tuple[str, str, int | None]] = []  # issues about this input: reason, excerpt, offset
            if cand.role in ("image", "unknown", "unreadable", "archive", "inventory", "listing", "system",
                             "skipped"):
                what = {"image": "raw image: not parsed line by line (carve it)"}.get(cand.role, cand.detail)
                sha = None
                if cand.role not in ("unreadable", "skipped"):  # a skipped entry is never opened
                    try:
                        sha, problem = hash_input(cand)
                    except (OSError, ReadProblem) as exc:
                        sha, problem = None, None
                        notes.append((f"input not read: {exc}", "", None))
                    if problem is not None:  # the hash covers the bytes before it
                        notes.append((f"input read in part: {problem}", "", problem.offset))
                if cand.role == "image" and sha and store.carved_formats(sha):
                    what = "raw image, carved"  # ingested again after its carve: it stays carved
                store.record_input(cand.rel, cand.member, sha, cand.size, cand.role, cand.host, what)
                if cand.role in ("inventory", "listing") and sha is not None:
                    result.issues += _store_file_evidence(cand, store, config, settings)
                if cand.role in ("unknown", "unreadable"):
                    notes.append((f"{cand.role} input: {what}", "", None))
            if cand.issue:  # a skipped entry (link, FIFO, device), an archive listed in part
                notes.append((cand.issue, cand.detail or "", None))
            if cand.role not in ("unreadable", "skipped"):
                changed = acquisition_change(cand)
                if changed:
                    notes.append((changed, "", None))
            for reason, excerpt, offset in notes:
                # the same input ingested again is not reported twice
                store.execute("DELETE FROM issues WHERE source_id IS NULL AND path = ? AND reason = ?",
                              [cand.display, reason])
                store.add_issue(None, cand.display, offset, None, None, reason, excerpt)
                result.issues += 1
        logs.sort(key=lambda c: (YEARFUL_FIRST.get(c.format_id, 0 if c.format_id in BINARY_FORMATS else 1), c.rel,
                                 c.member or ""))
        known = frozenset(r[0] for r in store.query("SELECT source_id FROM sources"))
        tasks = []
        for i, cand in enumerate(logs):
            s = settings[cand.host or "unknown"]
            ctx = ParseContext(pg_log_line_prefix=s.pg_log_line_prefix, apache_logformats=tuple(s.apache_logformats),
                               source_fields=history_fields(cand.format_id, cand.loc.name if cand.loc else cand.rel))
            others = tuple(p for p in s.pg_prefix_candidates if p != s.pg_log_line_prefix)
            tasks.append(ParseTask(cand, ctx, store.stage_dir, known, engine, i, others))
        total = sum(c.size for c in logs)
        done = 0
        outcomes = map_ordered(parse_source, tasks, workers=workers, scheduler=scheduler)
        batch = _Batch(store, known, result)
        try:
            for cand, staged in zip(logs, outcomes):
                h = cand.host or "unknown"
                _commit(cand, staged, batch, settings[h], config, h, result)
                done += cand.size
                if progress:
                    progress(cand.display, done, total)
            batch.flush()
        finally:
            _clear_staging(store.stage_dir)
            release_spools()
    return result
