"""What detection produces: findings (a detection with its evidence) and milestones (one dated
step of the attack chain). Pure values, serialised to ``findings.json``."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

SEVERITIES = ("info", "low", "medium", "high", "critical")
MAX_EVENT_IDS = 10_000  # per finding in findings.json; the count is always the full one


def _utc(t: datetime) -> datetime:
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Finding:
    rule: str  # e.g. "web.webshell_execution"; the detector family before the dot
    title: str
    severity: str
    host: str
    first_seen: datetime
    last_seen: datetime
    count: int
    sources: tuple[str, ...] = ()  # source (client) addresses involved
    event_ids: tuple[str, ...] = ()
    detail: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def id(self) -> str:
        """Stable across runs: rule, host, first time and the detail that names the thing found."""
        key = json.dumps([self.rule, self.host, _utc(self.first_seen).isoformat(), self.detail.get("key")],
                         default=str)
        return "F-" + hashlib.sha256(key.encode()).hexdigest()[:12]

    def as_dict(self, zone=None) -> dict:
        when = (lambda t: _utc(t).astimezone(zone).isoformat()) if zone else (lambda t: _utc(t).isoformat())
        return {"id": self.id, "rule": self.rule, "title": self.title, "severity": self.severity,
                "host": self.host, "first_seen": when(self.first_seen), "last_seen": when(self.last_seen),
                "count": self.count, "sources": list(self.sources),
                "event_ids": list(self.event_ids[:MAX_EVENT_IDS]),
                **({"event_ids_truncated": True} if len(self.event_ids) > MAX_EVENT_IDS else {}),
                "detail": {k: v for k, v in self.detail.items() if k != "key"}}


@dataclass(frozen=True)
class Milestone:
    kind: str  # first_probe, first_webshell_execution, ftp_upload_session, crontab_replace, download, …
    time: datetime
    host: str
    detail: dict = field(default_factory=dict)
    event_ids: tuple[str, ...] = ()

    def as_dict(self, zone=None) -> dict:
        t = _utc(self.time)
        return {"kind": self.kind, "time": (t.astimezone(zone) if zone else t).isoformat(), "host": self.host,
                "detail": self.detail, "event_ids": list(self.event_ids)}


def severity_rank(severity: str) -> int:
    return SEVERITIES.index(severity)
