"""One regular-expression dialect for both parsing engines.

Format patterns are written once (``formats/*.yaml``) and run on two engines: the per-line
reference engine (Python ``re``) and the columnar engine (RE2 inside DuckDB, linear in the input
whatever the text). They must mean the same thing on every input, an attacker's included, so a
pattern is restricted to what RE2 runs (no look-around, no back-reference: the loader rejects
those) and the Python copy is rewritten to RE2's meaning:

* ``\\d``, ``\\w``, ``\\b`` are ASCII-only (``re.ASCII``): a Unicode digit is not a digit in a pid;
* ``\\s`` is RE2's ``[\\t\\n\\f\\r ]`` (Python's ASCII ``\\s`` would also take ``\\v``);
* ``$`` is the end of the text (Python's would also match before a final newline).
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

_SPACE = r"\t\n\f\r "


class DialectError(ValueError):
    """A pattern outside the shared dialect (the message says which construct)."""


def to_python(src: str) -> str:
    """The Python ``re`` source (to compile with ``re.ASCII``) meaning what RE2 makes of ``src``."""
    out: list[str] = []
    i, n = 0, len(src)
    in_class = class_start = False
    while i < n:
        c = src[i]
        if c == "\\" and i + 1 < n:
            e = src[i + 1]
            if e == "s":
                out.append(_SPACE if in_class else f"[{_SPACE}]")
            elif e == "S":
                if in_class:
                    raise DialectError(r"'\S' inside a character class")
                out.append(f"[^{_SPACE}]")
            elif e in "AZzG" and not in_class:
                out.append(r"\A" if e == "A" else r"\Z")
            else:
                out.append(src[i:i + 2])
            class_start = False
            i += 2
            continue
        if in_class:
            if c == "]" and not class_start:
                in_class = False
            class_start = False
            if c == "[" and src.startswith("[:", i):  # a POSIX class is RE2-only
                raise DialectError("POSIX character classes ([:alpha:]) are not shared with Python")
            out.append(c)
        elif c == "[":
            in_class, class_start = True, True
            out.append(c)
            if src.startswith("^", i + 1):
                out.append("^")
                i += 1
        elif c == "$":
            out.append(r"\Z")
        else:
            out.append(c)
        i += 1
    return "".join(out)


def re2_error(src: str) -> str | None:
    """Why RE2 cannot run ``src`` (look-around, back-references …), or None when it can."""
    try:
        pc.match_substring_regex(pa.array([""], pa.string()), src)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        return str(exc).split(":", 1)[-1].strip() or str(exc)
    return None


def compile_shared(src: str, flags: int = 0) -> re.Pattern[str]:
    """The Python pattern for a shared-dialect source; raises ``DialectError`` or ``re.error``."""
    why = re2_error(src)
    if why is not None:
        raise DialectError(f"not runnable in linear time by RE2 ({why})")
    return re.compile(to_python(src), flags | re.ASCII)
