"""Bytes a live log gained, committed to the case as a source of their own, by the ingest's
machinery (format identification, the parsers, year and time-zone decisions, the batch commit).

The bytes are written to a scratch file in the case directory (never in the watched tree) under
the log's own name, so identification sees the name the log has; the source is recorded with the
path of the log and the byte range (``/var/log/apache2/access.log@1024-2048``). A round that died
between the commit and the state update leaves bytes in the case past the stored offset; the next
read starts at that offset again and, the log having grown meanwhile, is longer: the bytes of it
that a piece of the same file at the same offset already holds (same range, same sha256) are
skipped, and only the rest is committed. A piece's source id is its bytes' hash with its path and
range: the same bytes read further on in the log are a piece of their own, not a copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from logsalvage.config import CaseConfig
from logsalvage.ingest import HostSettings, IngestResult, ParseTask, _Batch, _clear_staging, _commit, parse_source
from logsalvage.parsing.engine import ParseContext
from logsalvage.sources import Reading, discover, release_spools
from logsalvage.sources.histories import history_fields
from logsalvage.store import CaseStore
from logsalvage.watch.tailing import Piece

SCRATCH = "watch"

log = logging.getLogger("logsalvage.watch")


@dataclass(frozen=True)
class Committed:
    format_id: str | None
    events: int
    issues: int
    new: bool  # False: the bytes were in the case already (a copy) or in no known format


def host_settings(store: CaseStore, config: CaseConfig, host: str) -> HostSettings:
    s = HostSettings()
    hc = config.hosts.get(host)
    stored_tz = store.host_setting(host, "timezone")
    if hc is not None and hc.timezone:
        s.tz, s.tz_basis = hc.timezone, "case config"
    elif stored_tz and stored_tz[0]:
        s.tz, s.tz_basis = stored_tz[0], stored_tz[1] or "case"
    if config.pg_log_line_prefix is not None:
        s.pg_log_line_prefix, s.pg_prefix_basis = config.pg_log_line_prefix, "case config"
    else:
        stored = store.host_setting(host, "pg_log_line_prefix")
        if stored and stored[0] is not None:
            s.pg_log_line_prefix, s.pg_prefix_basis = stored
    s.apache_logformats = list(config.apache_logformats)
    return s


def _committed_prefix(store: CaseStore, piece: Piece) -> tuple[int, str | None]:
    """How many of the piece's first bytes are in the case already, and their format: committed
    pieces of the same file, the first starting at the piece's offset, each the next one's start,
    whose bytes are the piece's (sha256)."""
    done, fmt = 0, None
    while done < len(piece.data):
        at = f"{piece.origin}@{piece.start + done}-"
        rows = store.query("""
            SELECT path, sha256, format_id FROM sources WHERE starts_with(path, ?)
            UNION ALL
            SELECT c.path, s.sha256, s.format_id FROM source_copies c JOIN sources s USING (source_id)
            WHERE starts_with(c.path, ?)""", [at, at])
        for path, sha, format_id in rows:
            end = path[len(at):]
            n = int(end) - piece.start - done if end.isdigit() else 0
            if 0 < n <= len(piece.data) - done and hashlib.sha256(piece.data[done:done + n]).hexdigest() == sha:
                done, fmt = done + n, format_id
                break
        else:
            break
    return done, fmt


def commit_piece(store: CaseStore, config: CaseConfig, piece: Piece, host: str, format_id: str | None,
                 index: int) -> Committed:
    done, done_format = _committed_prefix(store, piece)
    if done:
        log.info("%s: bytes %d-%d were in the case already (a watch stopped before recording how far it read)",
                 piece.origin, piece.start, piece.start + done)
        if done == len(piece.data):
            return Committed(done_format, 0, 0, False)
        piece = replace(piece, start=piece.start + done, data=piece.data[done:])
        format_id = format_id or done_format
    scratch = store.case_dir / SCRATCH / f"{index:06d}"
    scratch.mkdir(parents=True, exist_ok=True)
    chunk = scratch / Path(piece.origin).name
    try:
        chunk.write_bytes(piece.data)
        os.utime(chunk, (piece.mtime, piece.mtime))  # the log's mtime anchors year-less records
        cands = discover([chunk], host=host, kind="live", format_id=format_id,
                         reading=Reading(config.decompression, str(store.case_dir)))
        logs = [c for c in cands if c.role == "log"]
        end = piece.start + len(piece.data)
        where = f"{piece.origin}@{piece.start}-{end}"
        if not logs:
            store.add_issue(None, where, None, len(piece.data), None,
                            "watch: bytes in no known log format (give the format in watch.paths)")
            return Committed(None, 0, 1, False)
        cand = replace(logs[0], rel=where)
        settings = host_settings(store, config, host)
        ctx = ParseContext(pg_log_line_prefix=settings.pg_log_line_prefix,
                           apache_logformats=tuple(settings.apache_logformats),
                           source_fields=history_fields(cand.format_id, Path(piece.origin).name))
        known = frozenset(r[0] for r in store.query("SELECT source_id FROM sources"))
        staged = parse_source(ParseTask(cand, ctx, store.stage_dir, known, "auto", index, identity=where))
        result = IngestResult()
        batch = _Batch(store, known, result)
        try:
            _commit(cand, staged, batch, settings, config, host, result)
            batch.flush()
        finally:
            _clear_staging(store.stage_dir)
            release_spools()
        return Committed(cand.format_id, result.events, result.issues, result.sources_new > 0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
