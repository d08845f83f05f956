"""What detectors know beyond the events: the case config's facts, checked once.

```yaml
application:
  db_clients: [192.168.10.11]        # addresses the application connects to the database from
  db_users: [webapp]
  customer_tables: [customers, reservations]
inventory:
  docroot: /var/www/html             # maps inventory paths to URL paths
  web: [/index.php, /search.php]     # legitimate scripts (else: the checksum inventory in the evidence)
iocs:
  sha256: [...]
  addresses: [...]
  domains: [...]
containment: 2018-01-05T19:50:00+09:00   # end of the exposure window
exposure:
  start: 2017-07-15T08:58:21+09:00       # override the first evidence of exploitation
detect:
  maintenance_addresses: [153.156.83.40] # known-good administrators
notes:                                   # what people saw, as milestones of the timeline
  - {time: 2018-01-05T17:00:00+09:00, host: web01, kind: site_slow, text: "site slow, p at 100 % CPU"}
```
Everything is optional: without it, detectors fall back on what the evidence says.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from logsalvage.config import CaseConfig
from logsalvage.errors import ConfigError
from logsalvage.store import CaseStore

_SECTIONS = {
    "application": {"db_clients", "db_users", "customer_tables"},
    "inventory": {"docroot", "web"},
    "iocs": {"sha256", "addresses", "domains"},
    "exposure": {"start"},
    "detect": {"maintenance_addresses", "rules"},
}


@dataclass(frozen=True)
class Settings:
    app_db_clients: tuple[str, ...] = ()
    app_db_users: tuple[str, ...] = ()
    customer_tables: tuple[str, ...] = ()
    docroot: str = "/var/www/html"
    web_inventory: tuple[str, ...] | None = None  # URL paths; None: from the evidence
    ioc_sha256: frozenset[str] = frozenset()
    ioc_addresses: frozenset[str] = frozenset()
    ioc_domains: frozenset[str] = frozenset()
    containment: datetime | None = None
    exposure_start: datetime | None = None
    maintenance_addresses: frozenset[str] = frozenset()
    rule_dirs: tuple[str, ...] = ()  # extra Sigma rule directories (detect.rules)
    notes: tuple[dict, ...] = ()  # {time, host, kind, text}: observations reported by people
    host_addresses: dict = field(default_factory=dict)  # host -> addresses
    host_roles: dict = field(default_factory=dict)  # host -> role


def _strings(value, where: str, *, addresses: bool = False) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list", where=where)
    out = tuple(str(v).strip() for v in value)
    if addresses:
        for v in out:
            try:
                ipaddress.ip_network(v, strict=False)
            except ValueError:
                raise ConfigError(f"{where}: {v!r} is not an IP address or network", where=where) from None
    return out


def _time(value, where: str) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        t = value
    else:
        try:
            t = datetime.fromisoformat(str(value))
        except ValueError:
            raise ConfigError(f"{where}: {value!r} is not an ISO 8601 time", where=where) from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _notes(value, where: str) -> tuple[dict, ...]:
    if value is None or isinstance(value, str):  # free text notes are for people only
        return ()
    if not isinstance(value, list):
        raise ConfigError("'notes' must be text or a list of {time, host, kind, text}", where=where)
    out = []
    for i, note in enumerate(value):
        if isinstance(note, str):
            continue
        if not isinstance(note, dict) or not {"time", "kind"} <= set(note) or set(note) - {"time", "host", "kind", "text"}:
            raise ConfigError(f"notes[{i}] must be a mapping with time and kind (and host, text)", where=where)
        out.append({"time": _time(note["time"], f"{where}: notes[{i}].time"), "host": str(note.get("host") or ""),
                    "kind": str(note["kind"]), "text": str(note.get("text") or "")})
    return tuple(out)


def settings_from(config: CaseConfig) -> Settings:
    raw = config.raw or {}
    where = config.path or "case config"
    for section, keys in _SECTIONS.items():
        value = raw.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"'{section}' must be a mapping", where=where)
        unknown = set(value) - keys
        if unknown:
            raise ConfigError(f"{section}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; known: "
                              f"{', '.join(sorted(keys))}", where=where)
    app, inv = raw.get("application") or {}, raw.get("inventory") or {}
    iocs, det = raw.get("iocs") or {}, raw.get("detect") or {}
    web = inv.get("web")
    return Settings(
        app_db_clients=_strings(app.get("db_clients"), f"{where}: application.db_clients", addresses=True),
        app_db_users=_strings(app.get("db_users"), f"{where}: application.db_users"),
        customer_tables=_strings(app.get("customer_tables"), f"{where}: application.customer_tables"),
        docroot=str(inv.get("docroot") or "/var/www/html").rstrip("/"),
        web_inventory=_strings(web, f"{where}: inventory.web") if web is not None else None,
        ioc_sha256=frozenset(s.lower() for s in _strings(iocs.get("sha256"), f"{where}: iocs.sha256")),
        ioc_addresses=frozenset(_strings(iocs.get("addresses"), f"{where}: iocs.addresses", addresses=True)),
        ioc_domains=frozenset(s.lower() for s in _strings(iocs.get("domains"), f"{where}: iocs.domains")),
        containment=_time(raw.get("containment"), f"{where}: containment"),
        exposure_start=_time((raw.get("exposure") or {}).get("start"), f"{where}: exposure.start"),
        maintenance_addresses=frozenset(_strings(det.get("maintenance_addresses"),
                                                 f"{where}: detect.maintenance_addresses", addresses=True)),
        rule_dirs=_strings(det.get("rules"), f"{where}: detect.rules"),
        notes=_notes(raw.get("notes"), where),
        host_addresses={h.name: h.addresses for h in config.hosts.values() if h.addresses},
        host_roles={h.name: h.role for h in config.hosts.values() if h.role},
    )


class Context:
    """The case, the settings, and the small lookups every detector needs."""

    def __init__(self, store: CaseStore, settings: Settings):
        self.store = store
        self.settings = settings
        self._zones: dict[str, ZoneInfo] = {}

    def zone(self, host: str) -> ZoneInfo:
        if host not in self._zones:
            from logsalvage.continuity.analysis import host_zone

            self._zones[host] = host_zone(self.store, host)
        return self._zones[host]

    def hosts_with(self, format_id: str) -> list[str]:
        return [r[0] for r in self.store.query(
            "SELECT DISTINCT host FROM events WHERE format_id = ? ORDER BY 1", [format_id])]

    def query(self, sql: str, params=()) -> list[tuple]:
        return self.store.query(sql, params)
