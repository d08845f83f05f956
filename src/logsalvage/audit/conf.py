"""Small tolerant readers for configuration text, each keeping the line every value came from.

Plain string operations only (no regular expressions, so nothing in a file can make them slow);
a line they cannot read is skipped, never an error: a configuration is evidence, not input to
validate.
"""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.audit.tree import ConfigFile

EVIDENCE_CHARS = 240  # of a configuration line quoted in a finding


@dataclass(frozen=True)
class Setting:
    key: str  # lower-cased where the format is case-insensitive
    value: str  # unquoted, comments removed
    file: ConfigFile
    line: int
    section: str | None = None  # [section] of an INI file

    @property
    def text(self) -> str:
        return quote_line(self.file.lines[self.line - 1])


def quote_line(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EVIDENCE_CHARS else text[:EVIDENCE_CHARS] + "…"


def strip_comment(text: str, markers: str = "#") -> str:
    """``text`` up to the first comment marker that is not inside quotes."""
    quote = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c in markers:
            return text[:i]
        i += 1
    return text


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def split_words(text: str) -> list[str]:
    """Whitespace-separated words; a quoted word ("a b" or 'a b', backslash escapes inside double
    quotes) is one word, without its quotes."""
    words: list[str] = []
    cur: list[str] = []
    quote = None
    started = False
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\" and quote == '"' and i + 1 < len(text):
                nxt = text[i + 1]
                cur.append(nxt if nxt in "\"\\" else c + nxt)
                i += 2
                continue
            if c == quote:
                quote = None
            else:
                cur.append(c)
        elif c in "\"'" and not cur:
            quote, started = c, True
        elif c.isspace():
            if cur or started:
                words.append("".join(cur))
                cur, started = [], False
        else:
            cur.append(c)
            started = True
        i += 1
    if cur or started:
        words.append("".join(cur))
    return words


def key_values(cf: ConfigFile, *, sep: str | None = "=", comments: str = "#", lower: bool = True) -> list[Setting]:
    """``key = value`` (``sep="="``) or ``Key value`` (``sep=None``) lines, in file order."""
    out = []
    for no, raw in cf.numbered():
        text = strip_comment(raw, comments).strip()
        if not text:
            continue
        if sep is None:
            parts = text.split(None, 1)
            key, value = parts[0], parts[1] if len(parts) > 1 else ""
        elif sep in text:
            key, value = text.split(sep, 1)
        else:  # PostgreSQL allows "name value" without "="
            parts = text.split(None, 1)
            if len(parts) < 2:
                continue
            key, value = parts
        key = key.strip()
        if not key:
            continue
        out.append(Setting(key.lower() if lower else key, unquote(value.strip()), cf, no))
    return out


def ini(cf: ConfigFile, *, comments: str = ";#", lower: bool = True) -> list[Setting]:
    """INI lines (``[section]``, ``key = value``, a bare ``key`` as "on") with their section."""
    out = []
    section = None
    for no, raw in cf.numbered():
        text = raw.strip()
        if not text or text[0] in comments:
            continue
        if text.startswith("[") and "]" in text:
            section = text[1:text.index("]")].strip().lower()
            continue
        if text.startswith("!"):  # my.cnf !include / !includedir: kept as a setting of its own
            parts = text.split(None, 1)
            out.append(Setting(parts[0].lower(), parts[1].strip() if len(parts) > 1 else "", cf, no, section))
            continue
        text = strip_comment(text, comments).strip()
        key, eq, value = text.partition("=")
        key = key.strip()
        if not key:
            continue
        out.append(Setting(key.lower() if lower else key, unquote(value.strip()) if eq else "on", cf, no, section))
    return out


def truth(value: str | None) -> bool | None:
    """on/yes/true/1 → True, off/no/false/0 → False, anything else None."""
    if value is None:
        return None
    v = value.strip().strip("\"'").lower()
    if v in ("on", "yes", "true", "1", "y"):
        return True
    if v in ("off", "no", "false", "0", "n"):
        return False
    return None


def last(settings: list[Setting], key: str) -> Setting | None:
    """The last setting of ``key`` (the one in force where later lines override earlier ones)."""
    found = None
    for s in settings:
        if s.key == key:
            found = s
    return found


def first(settings: list[Setting], key: str) -> Setting | None:
    """The first setting of ``key`` (where the first one wins, as in sshd_config)."""
    for s in settings:
        if s.key == key:
            return s
    return None


def relative_to_root(path: str, base_dir: str) -> str:
    """A path named in a configuration (absolute on that system, or relative to ``base_dir``) as a
    path from the system's root, normalised without leaving it."""
    joined = path if path.startswith("/") else f"{base_dir.strip('/')}/{path}"
    parts: list[str] = []
    for p in joined.split("/"):
        if p in ("", "."):
            continue
        if p == "..":
            if parts:
                parts.pop()
            continue
        parts.append(p)
    return "/".join(parts)


def parent(rel: str) -> str:
    return rel.rsplit("/", 1)[0] if "/" in rel else ""
