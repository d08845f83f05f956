"""One regular-expression dialect, one linear-time engine, for both parsing engines.

Format patterns are written once (``formats/*.yaml``) and run on two engines: the per-line
reference engine and the columnar engine (RE2 inside DuckDB). Both run them on RE2 — the
reference engine through ``google-re2`` (``LinearPattern``) — so matching is linear in the text
whatever an attacker wrote into it, and a pattern means the same thing to both: RE2's ``\\d``,
``\\w``, ``\\b`` are ASCII, ``\\s`` is ``[\\t\\n\\f\\r ]``, ``$`` is the end of the text. A pattern
RE2 cannot run (look-around, back-references) is refused by the loader.

``to_python`` still gives the Python ``re`` spelling of a pattern with the same meaning, for the
tests that check the two agree.
"""

from __future__ import annotations

import functools
import re

import pyarrow as pa
import pyarrow.compute as pc
import re2

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


@functools.lru_cache(maxsize=4096)
def compile_shared(src: str, flags: int = 0) -> "LinearPattern":
    """The compiled pattern of a shared-dialect source; raises ``DialectError`` or ``re.error``.
    Cached: every source of a format compiles the same patterns (a thousand archive members would
    compile them a thousand times); a pattern is immutable, so sharing it is safe."""
    why = re2_error(src)
    if why is not None:
        raise DialectError(f"not runnable in linear time by RE2 ({why})")
    if flags:
        raise DialectError("flags are written inline in the pattern, as (?s:…) or (?i)")
    re.compile(to_python(src), re.ASCII)  # a pattern Python cannot read is refused too: the tests compare with it
    return LinearPattern(src)


_ANCHOR = re2._re2.RE2.Anchor


class LinearPattern:
    """A pattern run by RE2 (time linear in the text), with the part of ``re.Pattern``'s interface
    the engines use: ``match``, ``search``, ``fullmatch``, ``pattern``, ``groupindex``, ``groups``."""

    __slots__ = ("pattern", "groupindex", "groups", "flags", "_rx", "_names")

    def __init__(self, src: str):
        try:
            compiled = re2.compile(src)
        except re2.error as exc:
            raise DialectError(f"RE2 cannot compile it ({exc})") from None
        self.pattern = src
        self.groupindex = dict(compiled.groupindex)
        self.groups = compiled.groups
        self.flags = 0
        self._rx = compiled._regexp  # the RE2 object itself: one call per match, byte offsets back
        names = {i: n for n, i in self.groupindex.items()}
        self._names = tuple((names[i], i) for i in sorted(names))

    def __repr__(self) -> str:
        return f"LinearPattern({self.pattern!r})"

    def _run(self, anchor, text: str) -> "LinearMatch | None":
        data = text.encode("utf-8", "surrogatepass")
        spans = self._rx.Match(anchor, data, 0, len(data))
        return None if spans[0][0] < 0 else LinearMatch(self, text, data, spans)

    def match(self, text: str) -> "LinearMatch | None":
        return self._run(_ANCHOR.ANCHOR_START, text)

    def search(self, text: str) -> "LinearMatch | None":
        return self._run(_ANCHOR.UNANCHORED, text)

    def fullmatch(self, text: str) -> "LinearMatch | None":
        return self._run(_ANCHOR.ANCHOR_BOTH, text)


class LinearMatch:
    """A match of a ``LinearPattern``: ``group``, ``groupdict``, ``start``, ``end``, ``span``,
    ``re``, ``string``, as ``re.Match`` gives them (offsets in characters)."""

    __slots__ = ("re", "string", "_data", "_spans")

    def __init__(self, pattern: LinearPattern, text: str, data: bytes, spans: list[tuple[int, int]]):
        self.re, self.string, self._data, self._spans = pattern, text, data, spans

    def _index(self, group: int | str) -> int:
        return group if isinstance(group, int) else self.re.groupindex[group]

    def _text(self, i: int) -> str | None:
        a, b = self._spans[i]
        return None if a < 0 else self._data[a:b].decode("utf-8", "surrogatepass")

    def group(self, *groups: int | str):
        if len(groups) > 1:
            return tuple(self._text(self._index(g)) for g in groups)
        return self._text(self._index(groups[0] if groups else 0))

    def __getitem__(self, group: int | str) -> str | None:
        return self._text(self._index(group))

    def groupdict(self) -> dict[str, str | None]:
        return {name: self._text(i) for name, i in self.re._names}

    def _chars(self, offset: int) -> int:
        if offset < 0 or len(self._data) == len(self.string):  # ASCII: bytes are characters
            return offset
        return len(self._data[:offset].decode("utf-8", "surrogatepass"))

    def start(self, group: int | str = 0) -> int:
        return self._chars(self._spans[self._index(group)][0])

    def end(self, group: int | str = 0) -> int:
        return self._chars(self._spans[self._index(group)][1])

    def span(self, group: int | str = 0) -> tuple[int, int]:
        return self.start(group), self.end(group)
