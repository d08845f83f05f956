"""One host under audit: its tree, the audit's options, the facts several checks share (parsed
once, on first use), and the finding constructor that names where a finding points."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable, TypeVar

from logsalvage.audit.conf import Setting, quote_line
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile, SystemTree
from logsalvage.errors import ConfigError

T = TypeVar("T")
DWELL_DAYS = 183  # the incident's dwell time, about six months: code ran from July to January
PACKAGE_AGE_DAYS = 90  # newer than this is "kept up to date"


@dataclass(frozen=True)
class AuditOptions:
    dwell_days: int = DWELL_DAYS
    package_age_days: int = PACKAGE_AGE_DAYS
    acquired: datetime | None = None  # the case's acquisition time: how old is "old"
    inventory_web: tuple[str, ...] = ()  # URL paths of the site's own files (case config inventory.web)
    inventory_docroot: str | None = None

    @classmethod
    def from_case_config(cls, config) -> "AuditOptions":
        """From the case config's ``audit:`` section (``dwell_days``, ``package_age_days``), its
        ``acquired`` time and its ``inventory:``; unknown keys or bad values are errors."""
        raw = (getattr(config, "raw", None) or {})
        where = getattr(config, "path", None) or "case config"
        section = raw.get("audit") or {}
        if not isinstance(section, dict):
            raise ConfigError("audit must be a mapping (dwell_days, package_age_days)", where=where)
        bad = set(section) - {"dwell_days", "package_age_days"}
        if bad:
            raise ConfigError(f"audit: unknown key(s) {', '.join(sorted(map(str, bad)))}; known: dwell_days, "
                              "package_age_days", where=where)
        values = {}
        for key, default in (("dwell_days", DWELL_DAYS), ("package_age_days", PACKAGE_AGE_DAYS)):
            v = section.get(key, default)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"audit.{key}: {v!r} is not a positive number of days", where=where)
            values[key] = v
        inventory = raw.get("inventory") or {}
        web = inventory.get("web") if isinstance(inventory, dict) else None
        docroot = inventory.get("docroot") if isinstance(inventory, dict) else None
        return cls(values["dwell_days"], values["package_age_days"], getattr(config, "acquired", None),
                   tuple(map(str, web or ())), str(docroot) if docroot else None)


class Host:
    def __init__(self, tree: SystemTree, options: AuditOptions):
        self.tree = tree
        self.name = tree.host
        self.options = options
        self._facts: dict[str, object] = {}

    @property
    def collected(self) -> bool:
        """Configuration was collected for this host (its tree has ``etc/``): an absent file then says
        something; without it, absence says only that nobody copied it."""
        return self.tree.is_dir("etc")

    def fact(self, key: str, make: Callable[["Host"], T]) -> T:
        if key not in self._facts:
            self._facts[key] = make(self)
        return self._facts[key]  # type: ignore[return-value]

    def finding(self, id: str, severity: str, category: str, at: Setting | ConfigFile | str | object | None, title: str,
                why: str, fix: str, *, line: int | None = None, evidence: str | None = None,
                absent: bool = False) -> Finding:
        """A finding pointing at a setting or directive (anything with ``file`` and ``line``: that file
        and line), a whole file, or a path of the tree
        (``str``: shown as the tree names it; with ``absent`` its absence is the point)."""
        if isinstance(at, Setting) or hasattr(at, "file") and hasattr(at, "line"):  # a setting, a directive
            file, line, evidence = at.file.shown, at.line, evidence or quote_line(at.file.lines[at.line - 1])
        elif isinstance(at, ConfigFile):
            file = at.shown
            if line is not None and evidence is None and 0 < line <= len(at.lines):
                evidence = quote_line(at.lines[line - 1])
        elif isinstance(at, str):
            file = self.tree.shown(at)
        else:
            file = None
        return Finding(id, severity, category, self.name, file, line, title, why, fix, evidence, absent)
