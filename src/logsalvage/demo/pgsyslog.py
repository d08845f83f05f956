"""How PostgreSQL (9.x, log_destination = 'syslog') turns one message into syslog lines.

Mirrors ``write_syslog`` in src/backend/utils/error/elog.c: the message (all its parts, each
starting with log_line_prefix, joined by newlines) is cut at every newline; a piece longer than
PG_SYSLOG_LIMIT (900) bytes is cut at the limit (on a UTF-8 character boundary) and then back to
the last whitespace, which stays at the start of the next chunk. Empty pieces are skipped. Each
chunk is sent as ``[seq-chunk] text``. rsyslog then escapes control characters on receipt
(a TAB becomes ``#011``).
"""

from __future__ import annotations

import re

PG_SYSLOG_LIMIT = 900
_SPACE = b" \t\n\r\x0b\x0c"


def _clip_utf8(data: bytes, limit: int) -> int:
    """Largest n <= limit that does not cut a UTF-8 sequence in data."""
    n = min(limit, len(data))
    if n < len(data):
        while n > 0 and (data[n] & 0xC0) == 0x80:
            n -= 1
    return n


def chunks(message: bytes) -> list[bytes]:
    """The chunk texts PostgreSQL sends for one message (without the ``[seq-chunk] `` tag)."""
    if len(message) <= PG_SYSLOG_LIMIT and b"\n" not in message:
        return [message]
    out = []
    line = message
    while line:
        if line[0] == 0x0A:
            line = line[1:]
            continue
        nl = line.find(b"\n")
        buflen = nl if nl >= 0 else len(line)
        buflen = min(buflen, PG_SYSLOG_LIMIT)
        buflen = _clip_utf8(line, buflen)
        if buflen <= 0:
            break
        if buflen < len(line) and line[buflen] not in _SPACE:
            i = buflen - 1
            while i > 0 and line[i] not in _SPACE:
                i -= 1
            if i > 0:
                buflen = i
        out.append(line[:buflen])
        line = line[buflen:]
    return out


_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")


def rsyslog_escape(text: bytes) -> bytes:
    """rsyslog's default escaping of control characters received in a message (#ooo)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: b"#%03o" % m.group()[0], text)


def message(prefix: str, parts: list[tuple[str, str]]) -> bytes:
    """Build a message: each (level, text) part on its own line, each with the prefix."""
    return "\n".join(f"{prefix}{level}:  {text}" for level, text in parts).encode("utf-8")
