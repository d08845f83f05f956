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
decompression:                             # how far one compressed file or archive member may expand
  max_ratio: 100                           # decompressed:compressed, enforced past ratio_after
  ratio_after: 64 MiB
  max_size: 8 GiB
```
Other sections (detection, inventory, …) belong to later stages and are kept as given.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

from logsalvage.errors import ConfigError

# libyaml's safe loader where PyYAML was built with it (ten times faster on the format files)
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TOP_KEYS = {"acquired", "hosts", "postgresql", "apache", "case", "detect", "inventory", "iocs", "containment",
             "application", "exposure", "notes", "decompression", "audit", "watch"}
_HOST_KEYS = {"timezone", "paths", "addresses", "role", "aliases"}


@dataclass(frozen=True)
class HostConfig:
    name: str
    timezone: str | None = None
    paths: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()
    role: str | None = None


@dataclass(frozen=True)
class DecompressionLimits:
    """How far one compressed input (a ``.gz``/``.bz2``/``.xz`` file, a zip member, a compressed
    tar read as a whole) may expand before reading it stops: past ``ratio_after`` bytes of output,
    more than ``max_ratio`` decompressed bytes per compressed byte read; and never more than
    ``max_size`` bytes. Real logs compress about 10-30:1 (syslog, Apache, PostgreSQL; a line
    repeated with only its time changing about 30:1), so 100:1 is three times the worst seen; a
    bomb (zeros, one line repeated) is 300-1000:1. What was read before the limit is kept and the
    stop is an issue; a case that needs more says so in ``decompression:``."""

    max_ratio: float = 100.0
    ratio_after: int = 64 << 20
    max_size: int = 8 << 30


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(i?)B?", re.IGNORECASE)


def _parse_size(value: Any, where: str) -> int:
    """A byte count: an integer, or a number with a unit (``64 MiB``, ``8GiB``, ``500 MB``)."""
    if isinstance(value, bool):
        raise ConfigError(f"{value!r} is not a size", where=where)
    if isinstance(value, int):
        n = value
    else:
        m = _SIZE.fullmatch(str(value).strip())
        if not m:
            raise ConfigError(f"{value!r} is not a size (bytes, or a number with KiB, MiB, GiB, TiB)", where=where)
        unit = "_KMGT".index(m.group(2).upper()) if m.group(2) else 0
        n = int(float(m.group(1)) * ((1024 if m.group(3) or not m.group(2) else 1000) ** unit))
    if n <= 0:
        raise ConfigError(f"{value!r}: a size must be positive", where=where)
    return n


def _parse_decompression(data: Any, where: str) -> DecompressionLimits:
    if data is None:
        return DecompressionLimits()
    if not isinstance(data, dict):
        raise ConfigError("decompression must be a mapping (max_ratio, ratio_after, max_size)", where=where)
    bad = set(data) - {"max_ratio", "ratio_after", "max_size"}
    if bad:
        raise ConfigError(f"decompression: unknown key(s) {', '.join(sorted(map(str, bad)))}; known: max_ratio, "
                          "ratio_after, max_size", where=where)
    d = DecompressionLimits()
    ratio = data.get("max_ratio", d.max_ratio)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio > 1:
        raise ConfigError(f"decompression.max_ratio: {ratio!r} is not a number above 1", where=where)
    return DecompressionLimits(
        float(ratio),
        _parse_size(data.get("ratio_after", d.ratio_after), f"{where}: decompression.ratio_after"),
        _parse_size(data.get("max_size", d.max_size), f"{where}: decompression.max_size"))


@dataclass(frozen=True)
class WatchConfig:
    """What ``logsalvage watch`` reads and where it alerts: live log ``paths`` (globs; a mapping
    ``{glob: PATTERN, host: NAME, format: ID}`` names the host or format), the round ``interval``
    (seconds), ``heartbeat_periods`` (k: a heartbeat silent for more than k periods is an alert),
    a ``webhook`` URL, and ``syslog`` (alerts to the local syslog too, at ``syslog_facility``)."""

    paths: tuple[dict, ...] = ()
    interval: float = 60.0
    heartbeat_periods: int = 3
    webhook: str | None = None
    syslog: bool = False
    syslog_facility: str = "local0"


_WATCH_KEYS = {"paths", "interval", "heartbeat_periods", "webhook", "syslog", "syslog_facility"}
_WATCH_PATH_KEYS = {"glob", "host", "format"}
_FACILITIES = {"user", "daemon", "auth", "authpriv", "security", "syslog", *(f"local{i}" for i in range(8))}


def _parse_watch(data: Any, where: str) -> WatchConfig:
    if data is None:
        return WatchConfig()
    if not isinstance(data, dict):
        raise ConfigError("watch must be a mapping (" + ", ".join(sorted(_WATCH_KEYS)) + ")", where=where)
    bad = set(data) - _WATCH_KEYS
    if bad:
        raise ConfigError(f"watch: unknown key(s) {', '.join(sorted(map(str, bad)))}; known: "
                          f"{', '.join(sorted(_WATCH_KEYS))}", where=where)
    paths = data.get("paths") or []
    if isinstance(paths, str):
        paths = [paths]
    if not isinstance(paths, list):
        raise ConfigError("watch.paths must be a list of globs", where=where)
    out = []
    for i, item in enumerate(paths):
        if isinstance(item, str):
            item = {"glob": item}
        if not isinstance(item, dict) or not isinstance(item.get("glob"), str):
            raise ConfigError(f"watch.paths[{i}]: a glob, or a mapping with 'glob' (and 'host', 'format')",
                              where=where)
        bad = set(item) - _WATCH_PATH_KEYS
        if bad:
            raise ConfigError(f"watch.paths[{i}]: unknown key(s) {', '.join(sorted(map(str, bad)))}", where=where)
        out.append({k: str(v) for k, v in item.items() if v is not None})
    w = WatchConfig()
    interval = data.get("interval", w.interval)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ConfigError(f"watch.interval: {interval!r} is not a positive number of seconds", where=where)
    k = data.get("heartbeat_periods", w.heartbeat_periods)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigError(f"watch.heartbeat_periods: {k!r} is not a whole number of periods >= 1", where=where)
    webhook = data.get("webhook")
    if webhook is not None and not (isinstance(webhook, str) and webhook.split("://", 1)[0] in ("http", "https")):
        raise ConfigError(f"watch.webhook: {webhook!r} is not an http(s) URL", where=where)
    syslog = data.get("syslog", False)
    if not isinstance(syslog, bool):
        raise ConfigError(f"watch.syslog: {syslog!r} is not true or false", where=where)
    facility = str(data.get("syslog_facility", w.syslog_facility))
    if facility not in _FACILITIES:
        raise ConfigError(f"watch.syslog_facility: unknown facility {facility!r}; one of "
                          f"{', '.join(sorted(_FACILITIES))}", where=where)
    return WatchConfig(tuple(out), float(interval), k, webhook, syslog, facility)


@dataclass(frozen=True)
class CaseConfig:
    path: str | None = None
    acquired: datetime | None = None
    hosts: dict[str, HostConfig] = field(default_factory=dict)
    pg_log_line_prefix: str | None = None
    apache_logformats: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)
    decompression: DecompressionLimits = DecompressionLimits()
    watch: "WatchConfig | None" = None  # the ``watch:`` section (continuous audit), when given

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
        decompression=_parse_decompression(data.get("decompression"), where),
        watch=_parse_watch(data.get("watch"), where) if "watch" in data else None,
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
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        loc = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"not valid YAML: {getattr(exc, 'problem', exc)}", where=loc) from None
    return parse_config(data, str(path))
