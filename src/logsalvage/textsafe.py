"""Evidence text made safe to print on a terminal.

Host, file and member names, log text and reasons that quote it are written partly by the
attacker. Printed as they are, an ESC or a C1 control starts a terminal escape sequence (set the
window title, clear the screen, rewrite what the analyst sees, on some terminals answer back as
typed input), a BEL rings, a CR or a direction override (U+202E) hides or reorders what was
printed, and a newline forges a line of our own output. ``printable`` shows every such character
as a visible escape instead; ``printable_data`` does it to every string of a result before a
renderer lays it out. ``--json`` output stays the exact data: ``json_text`` only writes what a
terminal would act on as JSON's own ``\\u`` escapes, which a parser reads back as the same text.
"""

from __future__ import annotations

import json
import re
import unicodedata

# controls (C0, DEL, C1), format characters (bidi embeddings, overrides and isolates, zero-width
# characters), lone surrogates (undecodable bytes of a file name), unassigned code points, and the
# line and paragraph separators
_UNPRINTABLE = frozenset(("Cc", "Cf", "Cs", "Cn", "Zl", "Zp"))
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
_NOT_ASCII_TEXT = re.compile(r"[^\x20-\x7e]")  # the only characters worth a look
_NOT_ASCII_JSON = re.compile(r"[^\x20-\x7e\n]")  # the same, a JSON layout's own newlines left out


def _escape(ch: str) -> str:
    if ch in _SHORT:
        return _SHORT[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text) -> str:
    """``text`` with every control, format, separator, surrogate or unassigned character as an
    escape (``\\x1b``, ``\\u202e``, ``\\U000e0001``; ``\\n``, ``\\t``, ``\\r`` too, so one name
    stays one line). Anything else prints as it is."""
    text = str(text)
    if text.isprintable():  # the common case: nothing but letters, marks, numbers, symbols, spaces
        return text
    return _NOT_ASCII_TEXT.sub(_visible, text)


def _visible(match: re.Match) -> str:
    ch = match[0]
    return _escape(ch) if unicodedata.category(ch) in _UNPRINTABLE else ch


def printable_data(value):
    """``value`` (a result of dicts, lists and scalars) with ``printable`` applied to every string in
    it, dictionary keys included; everything else is kept as it is."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable_data(k): printable_data(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(printable_data(v) for v in value)
    return value


def json_text(data, **kwargs) -> str:
    """``json.dumps(data, **kwargs)``, with the characters JSON allows raw in a string but a
    terminal would act on (C1 controls, DEL, format and bidi characters, separators) written as
    ``\\uXXXX`` escapes: the same JSON value, so a parser reads back the exact data. (json.dumps
    already escapes the C0 controls; the only raw ones left are the layout's own newlines.)"""
    return _NOT_ASCII_JSON.sub(_json_escape, json.dumps(data, **kwargs))


def _json_escape(match: re.Match) -> str:
    ch = match[0]
    if unicodedata.category(ch) not in _UNPRINTABLE:
        return ch
    if ord(ch) < 0x10000:
        return f"\\u{ord(ch):04x}"
    code = ord(ch) - 0x10000  # a JSON escape is UTF-16: a surrogate pair
    return f"\\u{0xd800 + (code >> 10):04x}\\u{0xdc00 + (code & 0x3ff):04x}"
