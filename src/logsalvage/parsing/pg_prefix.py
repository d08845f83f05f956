"""PostgreSQL ``log_line_prefix`` compiled into a regular expression.

The prefix the server really used (from ``postgresql.conf`` in the evidence or the case config)
decides how every PostgreSQL line is read: ``'DATABASE=%d,USER=%u,CLIENT=%r,'`` gives
``DATABASE=(?P<db_name>.*?),USER=(?P<db_user>.*?),CLIENT=(?P<pg_remote>...),``.
"""

from __future__ import annotations

import re

from logsalvage.errors import ConfigError
from logsalvage.parsing.dialect import DialectError, LinearPattern, compile_shared

PG_LEVELS = ("DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG", "INFO", "NOTICE", "WARNING",
             "ERROR", "LOG", "FATAL", "PANIC", "STATEMENT", "DETAIL", "HINT", "CONTEXT", "LOCATION",
             "QUERY")
LEVEL_RE = r"(?P<pg_level>" + "|".join(PG_LEVELS) + r"):  "

_TS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: ?(?:[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?))?"
_TS_MS = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}(?: ?(?:[A-Za-z]{1,5}|[+-]\d\d(?::?\d\d)?))?"

# escape -> (group name, regex). Text values are matched lazily up to the next literal.
ESCAPES: dict[str, tuple[str, str]] = {
    "a": ("db_application", r".*?"),
    "u": ("db_user", r".*?"),
    "d": ("db_name", r".*?"),
    "r": ("pg_remote", r"\[local\]|\[unknown\]|[^\s(]+\(\d+\)|[^\s(,]*"),
    "h": ("pg_remote_host", r"\[local\]|\[unknown\]|[^\s(,]*"),
    "b": ("pg_backend_type", r".*?"),
    "p": ("process_pid", r"\d+"),
    "P": ("pg_leader_pid", r"\d*"),
    "t": ("pg_time", _TS),
    "m": ("pg_time", _TS_MS),
    "n": ("pg_epoch", r"\d+\.\d+"),
    "i": ("pg_command_tag", r".*?"),
    "e": ("sql_state", r"[0-9A-Z]{5}"),
    "c": ("db_session", r"[0-9a-f]+\.[0-9a-f]+"),
    "l": ("pg_session_line", r"\d+"),
    "s": ("pg_session_start", _TS),
    "v": ("pg_vxid", r"\d*/\d*|"),
    "x": ("pg_xid", r"\d+"),
    "Q": ("pg_query_id", r"-?\d+"),
}
_TOKEN = re.compile(r"%(-?\d*)([A-Za-z%])")


def compile_prefix(prefix: str) -> str:
    """Regex source (no anchors) matching one rendering of ``prefix``.

    ``%q`` makes the rest optional (non-session processes stop printing there). Padded escapes
    (``%-10u``) tolerate the padding spaces.
    """
    parts: list[str] = []
    optional_from: int | None = None
    used: dict[str, int] = {}
    pos = 0
    for m in _TOKEN.finditer(prefix):
        parts.append(re.escape(prefix[pos:m.start()]))
        pos = m.end()
        pad, esc = m.group(1), m.group(2)
        if esc == "%":
            parts.append("%")
            continue
        if esc == "q":
            optional_from = len(parts)
            continue
        if esc not in ESCAPES:
            raise ConfigError(f"log_line_prefix {prefix!r}: unsupported escape %{esc}")
        name, rx = ESCAPES[esc]
        used[name] = used.get(name, 0) + 1
        if used[name] > 1:
            name = f"{name}_{used[name]}"
        group = f"(?P<{name}>{rx})"
        if pad:
            group = rf" *{group} *"
        parts.append(group)
    parts.append(re.escape(prefix[pos:]))
    if optional_from is not None:
        head, tail = parts[:optional_from], parts[optional_from:]
        return "".join(head) + "(?:" + "".join(tail) + ")?"
    return "".join(parts)


def line_source(prefix: str | None) -> str:
    """The pattern for '<prefix><LEVEL>:  <message>' (the message may span lines); without a known
    prefix, any text before the level."""
    head = compile_prefix(prefix) if prefix is not None else r"(?P<pg_prefix>.*?)"
    return "(?s)" + head + LEVEL_RE + r"(?P<pg_message>.*)"


def compile_line(prefix: str | None) -> LinearPattern:
    try:
        return compile_shared(line_source(prefix))
    except (re.error, DialectError) as exc:
        raise ConfigError(f"log_line_prefix {prefix!r} gives no usable pattern: {exc}") from None


class PrefixLines:
    """The line patterns of the prefixes a source was written with (``pg_prefix_choice``), tried
    in order: the ``match`` of the first that matches."""

    __slots__ = ("patterns",)

    def __init__(self, prefixes: tuple[str | None, ...]):
        self.patterns = tuple(compile_line(p) for p in prefixes)

    def match(self, text: str):
        for pattern in self.patterns:
            m = pattern.match(text)
            if m is not None:
                return m
        return None


_CONF_LINE = re.compile(r"^\s*([A-Za-z_.]+)\s*=?\s*(?:'((?:[^'\\]|\\.|'')*)'|([^#\s]*))")


def read_postgresql_conf(text: str) -> dict[str, str]:
    """Settings from a postgresql.conf (comments ignored, later lines win, quotes removed)."""
    settings: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _CONF_LINE.match(line)
        if not m:
            continue
        value = m.group(2) if m.group(2) is not None else (m.group(3) or "")
        settings[m.group(1).lower()] = value.replace("''", "'")
    return settings


def _port(text: str) -> bool:
    """ASCII digits only, as RE2's [0-9] (``str.isdigit`` takes '٣' too)."""
    return text.isascii() and text.isdigit()


def split_remote(value: str | None) -> tuple[str | None, int | None]:
    """'127.0.0.1(46118)' -> ('127.0.0.1', 46118); '[local]' -> ('[local]', None)."""
    if not value or value == "[unknown]":
        return None, None
    if value.endswith(")") and "(" in value:
        host, _, port = value[:-1].rpartition("(")
        return host, int(port) if _port(port) else None
    if value.count(":") == 1:  # csvlog's connection_from: 'host:port'
        host, _, port = value.partition(":")
        if _port(port):
            return host, int(port)
    return value, None
