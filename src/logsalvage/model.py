"""The evidence model: sources, events, issues. Plain values shared by every layer.

Events travel in bulk as columns (see ``EVENT_COLUMNS``); the dataclasses here describe single
values for code that handles a few at a time (reports, tests, findings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

KINDS = ("live", "backup", "salvage")

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

    source_id: str
    sha256: str
    path: str
    member: str | None
    host: str
    kind: str
    format_id: str
    size: int
    mtime: datetime | None = None
    rotation_date: date | None = None
    tz: str = "UTC"
    tz_basis: str = "default"
    year_basis: str | None = None

    @property
    def display(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path


@dataclass(frozen=True)
class Issue:
    """A byte range that did not become an event, and why."""

    source_id: str
    offset: int
    length: int
    line_no: int
    reason: str
    excerpt: str = ""


@dataclass(frozen=True)
class Provenance:
    source_id: str
    offset: int
    length: int
    line_no: int
    recovered: bool = False
    year_basis: str | None = None


@dataclass(frozen=True)
class Event:
    event_id: str
    ts_utc: datetime | None
    ts_raw: str
    host: str
    format_id: str
    event_type: str
    message: str
    provenance: Provenance
    fields: dict = field(default_factory=dict)
