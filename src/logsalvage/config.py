"""The case config (``case.yaml``): what the analyst knows that the evidence may not say.

Everything is optional. Unknown keys and wrong types are errors naming the file and key, so a
typo never silently changes an investigation.

```yaml
acquired: 2018-01-06T15:00:00+09:00      # upper bound for year inference
hosts:
  db01:
    timezone: Asia/Tokyo
    paths: ["db01/**"]                     # globs relative to the evidence root
    addresses: [192.168.10.12]
    role: database
postgresql:
  log_line_prefix: 'DATABASE=%d,USER=%u,CLIENT=%r,'
apache:
  logformats: ['%h %l %u %t "%r" %>s %b']
```
Other sections (detection, inventory, …) belong to later stages and are kept as given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from logsalvage.errors import ConfigError

_TOP_KEYS = {"acquired", "hosts", "postgresql", "apache", "case", "detect", "inventory", "iocs", "containment",
             "application", "exposure", "notes"}
_HOST_KEYS = {"timezone", "paths", "addresses", "role", "aliases"}


@dataclass(frozen=True)
class HostConfig:
    name: str
    timezone: str | None = None
    paths: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    role: str | None = None


@dataclass(frozen=True)
class CaseConfig:
    path: str | None = None
    acquired: datetime | None = None
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    pg_log_line_prefix: str | None = None
    apache_logformats: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    def host_for(self, rel_path: str) -> str | None:
        for host in self.hosts.values():
            if any(fnmatch(rel_path, pattern) for pattern in host.paths):
                return host.name
        return None


def _parse_time(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    try:
        t = datetime.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"{value!r} is not an ISO 8601 time", where=where) from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_config(data: Any, where: str) -> CaseConfig:
    if data is None:
        return CaseConfig(path=where)
    if not isinstance(data, dict):
        raise ConfigError("the case config must be a mapping", where=where)
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: "
                          f"{', '.join(sorted(_TOP_KEYS))}", where=where)
    hosts: dict[str, HostConfig] = {}
    for name, h in (data.get("hosts") or {}).items():
        h = h or {}
        if not isinstance(h, dict):
            raise ConfigError(f"hosts.{name} must be a mapping", where=where)
        bad = set(h) - _HOST_KEYS
        if bad:
            raise ConfigError(f"hosts.{name}: unknown key(s) {', '.join(sorted(bad))}", where=where)
        tz = h.get("timezone")
        if tz is not None:
            from logsalvage.timezones import zone_or_none

            if zone_or_none(str(tz)) is None:
                raise ConfigError(f"hosts.{name}.timezone: unknown time zone {tz!r}", where=where)
        hosts[str(name)] = HostConfig(str(name), str(tz) if tz else None,
                                      tuple(map(str, h.get("paths") or ())),
                                      tuple(map(str, h.get("addresses") or ())), h.get("role"))
    pg = data.get("postgresql") or {}
    apache = data.get("apache") or {}
    if not isinstance(pg, dict) or not isinstance(apache, dict):
        raise ConfigError("'postgresql' and 'apache' must be mappings", where=where)
    logformats = apache.get("logformats") or ()
    if isinstance(logformats, str):
        logformats = (logformats,)
    return CaseConfig(
        path=where,
        acquired=_parse_time(data["acquired"], f"{where}: acquired") if data.get("acquired") else None,
        hosts=hosts,
        pg_log_line_prefix=pg.get("log_line_prefix"),
        apache_logformats=tuple(map(str, logformats)),
        raw=data,
    )


def load_config(path: Path | None) -> CaseConfig:
    if path is None:
        return CaseConfig()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read case config: {exc.strerror}", where=str(path)) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=loc) from None
    return parse_config(data, str(path))
