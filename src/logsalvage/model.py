"""The evidence model shared by every layer: event fields and sources.

Events and issues travel in bulk as columns (``staging.STAGE_SCHEMA``, the case tables in
``store``); their canonical fields are defined here once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

KINDS = ("live", "backup", "salvage")
# the system log however it was kept: syslog files, or the systemd journal (whose reader gives its
# records syslog's programs and event types) — a detector reading "the syslog" reads both
SYSTEM_LOG_SQL = "format_id IN ('syslog', 'systemd-journal')"

# Canonical event fields (ECS-like names) with their DuckDB types. A format maps its named
# groups onto these; anything else it captures goes into the JSON column ``extra``.
CANONICAL_FIELDS: dict[str, str] = {
    "log_host": "VARCHAR",  # host name written in the record itself (syslog HOSTNAME)
    "program": "VARCHAR",
    "process_pid": "BIGINT",
    "log_level": "VARCHAR",
    "source_ip": "VARCHAR",
    "source_port": "INTEGER",
    "user_name": "VARCHAR",
    "http_method": "VARCHAR",
    "url_path": "VARCHAR",
    "url_query": "VARCHAR",
    "http_version": "VARCHAR",
    "http_status": "INTEGER",
    "bytes": "BIGINT",
    "referrer": "VARCHAR",
    "user_agent": "VARCHAR",
    "vhost": "VARCHAR",
    "db_name": "VARCHAR",
    "db_user": "VARCHAR",
    "db_application": "VARCHAR",
    "db_session": "VARCHAR",
    "pg_seq": "BIGINT",
    "pg_chunk": "INTEGER",
    "pg_level": "VARCHAR",
    "pg_message": "VARCHAR",
    "relation": "VARCHAR",
    "sql_state": "VARCHAR",
    "duration_ms": "DOUBLE",
    "statement": "VARCHAR",
    "file_path": "VARCHAR",
    "action": "VARCHAR",
    "outcome": "VARCHAR",
    "command": "VARCHAR",
    "target_user": "VARCHAR",
    "url_full": "VARCHAR",
}

INT_FIELDS = frozenset(k for k, v in CANONICAL_FIELDS.items() if v in ("BIGINT", "INTEGER"))
FLOAT_FIELDS = frozenset(k for k, v in CANONICAL_FIELDS.items() if v == "DOUBLE")


@dataclass(frozen=True)
class Source:
    """One piece of evidence: a file, an archive member or a byte range of an image."""

    source_id: str  # first 16 hex digits of the sha256
    sha256: str
    path: str  # relative to the evidence root
    member: str | None  # archive member, when the source is one
    host: str
    kind: str  # one of KINDS
    format_id: str
    size: int
    compression: str | None = None
    mtime: datetime | None = None
    rotation_date: date | None = None
    tz: str = "UTC"
    tz_basis: str = "default"

    @property
    def display(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path
