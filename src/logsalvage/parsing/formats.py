"""Loading the declarative format definitions (``logsalvage/formats/*.yaml``).

A definition names its line patterns (regexes with named groups, or Apache ``LogFormat``
strings), its timestamp, how records are assembled from lines, refinements keyed on a field
(syslog's program: postgres, cron, sshd …), lines that carry no header of their own
(``unframed``), a carve signature, and samples that double as tests. See
``formats/README.md`` for the schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import yaml

from logsalvage.config import SAFE_LOADER
from logsalvage.errors import ConfigError
from logsalvage.parsing.apache_logformat import compile_logformat
from logsalvage.parsing.derived import DERIVATIONS
from logsalvage.parsing.dialect import DialectError, LinearPattern, compile_shared
from logsalvage.parsing.timestamps import Stamp, parser_for

ASSEMBLERS = ("lines", "syslog", "pg-stderr", "csvlog", "apache-error",
              # assemblers written in code of their own (``engine.HOOKED``)
              "mysql-general", "mysql-slow", "jsonlog", "stanza", "apt-history", "shell-history", "auditd")


@dataclass(frozen=True)
class LinePattern:
    id: str
    regex: LinearPattern
    event_type: str | None
    set: dict[str, str] = field(default_factory=dict)
    source: str = ""  # the pattern as written (RE2 runs it; ``regex`` is its Python copy)


@dataclass(frozen=True)
class Refinement:
    """Extra patterns applied to one field of records whose ``when`` field matches."""

    id: str
    when_field: str
    when: LinearPattern
    target: str
    patterns: tuple[LinePattern, ...]
    event_type: str
    special: str | None = None  # e.g. "pg-syslog": [seq-chunk] joining and log_line_prefix
    when_source: str = ""


@dataclass(frozen=True)
class UnframedRule:
    id: str
    regex: LinearPattern
    event_type: str
    own_timestamp: bool


@dataclass(frozen=True)
class FormatSpec:
    id: str
    title: str
    path: str
    detect: tuple[LinearPattern, ...]
    detect_min_ratio: float
    priority: int
    patterns: tuple[LinePattern, ...]
    timestamp_field: str | None
    parse_timestamp: Callable[[str], Stamp | None] | None
    timestamp_formats: tuple[str, ...]
    assembler: str
    event_type: str
    refinements: tuple[Refinement, ...]
    message_patterns: tuple[LinePattern, ...]
    unframed: tuple[UnframedRule, ...]
    carve: dict[str, Any]
    samples: tuple[dict[str, Any], ...]
    kind: str = "log"  # "log" or "messages" (a shared library of message patterns)
    # where the format's samples and patterns were checked against: a real program's output, a peer
    # tool's test data (``logsalvage formats`` shows it)
    source_of_truth: str = ""
    # fields computed from a captured one (``parsing.derived``), e.g. syslog's facility and severity
    derived: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


def _compile(rx: str, where: str, flags: int = 0) -> LinearPattern:
    """A pattern in the dialect both engines share (``parsing.dialect``); anything else is refused."""
    try:
        return compile_shared(rx, flags)
    except (re.error, DialectError) as exc:
        raise ConfigError(f"bad regex ({exc}): {rx!r}", where=where) from None


def _patterns(items: list[dict] | None, where: str, default_type: str | None) -> tuple[LinePattern, ...]:
    out = []
    for i, item in enumerate(items or []):
        if not isinstance(item, dict):
            raise ConfigError(f"pattern #{i + 1} must be a mapping", where=where)
        pid = str(item.get("id", f"p{i + 1}"))
        if "logformat" in item:
            rx = compile_logformat(str(item["logformat"]))
        elif "regex" in item:
            rx = str(item["regex"])
        else:
            raise ConfigError(f"pattern {pid!r} needs 'regex' or 'logformat'", where=where)
        out.append(LinePattern(pid, _compile(rx, f"{where} pattern {pid}"), item.get("event_type", default_type),
                               dict(item.get("set", {})), rx))
    return tuple(out)


def _load_one(text: str, where: str, library: dict[str, FormatSpec]) -> FormatSpec:
    try:
        data = yaml.load(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", where=where) from None
    if not isinstance(data, dict) or "id" not in data:
        raise ConfigError("a format definition is a mapping with an 'id'", where=where)
    fid = str(data["id"])
    kind = data.get("kind", "log")
    event_type = data.get("event_type", fid)
    ts = data.get("timestamp") or {}
    ts_formats = tuple(ts.get("formats", []))
    try:
        parse_ts = parser_for(list(ts_formats)) if ts_formats else None
    except KeyError as exc:
        raise ConfigError(f"unknown timestamp format {exc}", where=where) from None
    assembler = data.get("assembler", "lines")
    if assembler not in ASSEMBLERS:
        raise ConfigError(f"assembler must be one of {', '.join(ASSEMBLERS)}", where=where)
    message_patterns = _patterns(data.get("message_patterns"), where, None)
    if "message_patterns_from" in data:
        src = library.get(data["message_patterns_from"])
        if src is None:
            raise ConfigError(f"message_patterns_from: no definition {data['message_patterns_from']!r}", where=where)
        message_patterns = message_patterns + src.message_patterns
    refinements = []
    for r in data.get("refine", []) or []:
        rid = str(r.get("id"))
        when = r.get("when") or {}
        if len(when) != 1:
            raise ConfigError(f"refinement {rid!r}: 'when' names exactly one field", where=where)
        (wf, wrx), = when.items()
        pats = _patterns(r.get("patterns"), f"{where} refine {rid}", None)
        if "patterns_from" in r:
            src = library.get(r["patterns_from"])
            if src is None:
                raise ConfigError(f"refinement {rid!r}: no definition {r['patterns_from']!r}", where=where)
            pats = pats + src.message_patterns
        refinements.append(Refinement(rid, wf, _compile(wrx, where), r.get("target", "message"), pats,
                                      r.get("event_type", rid), r.get("special"), str(wrx)))
    unframed = tuple(
        UnframedRule(str(u["id"]), _compile(u["regex"], f"{where} unframed {u['id']}"),
                     u.get("event_type", f"{event_type}.unframed"), bool(u.get("own_timestamp", False)))
        for u in data.get("unframed", []) or [])
    detect = data.get("detect") or {}
    patterns = _patterns(data.get("patterns"), where, event_type)
    _check_pattern_roles(data, {p.id for p in patterns}, where)
    derived = tuple(str(d) for d in data.get("derive") or [])
    unknown = [d for d in derived if d not in DERIVATIONS]
    if unknown:
        raise ConfigError(f"derive: unknown derivation {unknown[0]!r} (known: {', '.join(DERIVATIONS)})", where=where)
    return FormatSpec(
        id=fid, title=str(data.get("title", fid)), path=where,
        detect=tuple(_compile(rx, f"{where} detect") for rx in detect.get("any", [])),
        detect_min_ratio=float(detect.get("min_ratio", 0.5)), priority=int(detect.get("priority", 0)),
        patterns=patterns,
        timestamp_field=ts.get("field"), parse_timestamp=parse_ts, timestamp_formats=ts_formats,
        assembler=assembler, event_type=event_type, refinements=tuple(refinements),
        message_patterns=message_patterns, unframed=unframed, carve=dict(data.get("carve") or {}),
        samples=tuple(data.get("samples") or []), kind=kind, source_of_truth=str(data.get("source", "")).strip(),
        derived=derived, raw=data)


# keys that give patterns a role by their id: (key, its entries that name a pattern, required ones)
_PATTERN_ROLES = (("stanza", ("start", "end"), ("start",)), ("shell_history", ("stamp_pattern",), ()))


def _check_pattern_roles(data: dict, ids: set[str], where: str) -> None:
    """A stanza's first and last line, a history's time line: each names one of the format's patterns."""
    for key, entries, required in _PATTERN_ROLES:
        conf = data.get(key)
        if conf is None:
            continue
        if not isinstance(conf, dict):
            raise ConfigError(f"{key!r} must be a mapping", where=where)
        for entry in entries:
            if conf.get(entry) is None and entry not in required:
                continue
            if conf.get(entry) not in ids:
                raise ConfigError(f"{key}.{entry}: no pattern with id {conf.get(entry)!r}", where=where)


def _definition_files() -> list[tuple[str, str]]:
    root = resources.files("logsalvage") / "formats"
    return sorted((entry.name, entry.read_text(encoding="utf-8"))
                  for entry in root.iterdir() if entry.name.endswith(".yaml"))


def load_definitions(extra_dirs: tuple[Path, ...] = ()) -> dict[str, FormatSpec]:
    """Every format definition, shipped ones first, then those in ``extra_dirs`` (which may override)."""
    texts = list(_definition_files())
    for d in extra_dirs:
        for p in sorted(Path(d).glob("*.yaml")):
            texts.append((str(p), p.read_text(encoding="utf-8")))
    # definitions that others borrow patterns from are loaded first
    pending = [(name, text, _references(text)) for name, text in texts]
    specs: dict[str, FormatSpec] = {}
    while pending:
        ready = [p for p in pending if p[2] <= set(specs)]
        if not ready:
            names = ", ".join(f"{n} (needs {', '.join(sorted(r - set(specs)))})" for n, _, r in pending)
            raise ConfigError(f"format definitions refer to missing or circular definitions: {names}")
        for item in ready:
            spec = _load_one(item[1], item[0], specs)
            specs[spec.id] = spec
            pending.remove(item)
    return specs


_REFERENCE = re.compile(r"^\s*-?\s*(?:message_patterns_from|patterns_from):\s*(\S+)", re.MULTILINE)


def _references(text: str) -> set[str]:
    return set(_REFERENCE.findall(text))


@lru_cache(maxsize=1)
def shipped_formats() -> dict[str, FormatSpec]:
    return load_definitions()


def log_formats(specs: dict[str, FormatSpec] | None = None) -> list[FormatSpec]:
    specs = specs or shipped_formats()
    return [s for s in specs.values() if s.kind == "log"]
