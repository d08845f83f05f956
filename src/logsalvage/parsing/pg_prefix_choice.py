"""Which ``log_line_prefix`` a PostgreSQL log was written with, decided from its own records.

The prefix in ``postgresql.conf`` (or the case config) is what the server uses *now*; a log from
before a change, a copy from another server, or a file written under two settings (plaso's
``postgresql.log``: ``%m [%p] %q%u@%d`` and later ``%t [%p-%l] %q%u@%d``) were not written with it,
and read with it they lose pid, user, database and client. So each file's prefix is chosen from a
sample of its lines: the prefix text before each ``LEVEL:  `` is matched against the candidates —
the host's configured prefix(es) first, then the defaults packagers and guides ship — and the one
that explains most of them is the file's; when some lines remain unexplained, the candidate that
explains most of those is added (a server whose prefix changed), up to ``MAX_PREFIXES``. The
configured prefix wins any tie, so a file it explains entirely is read exactly as before.

The sample is three windows of the file (start, middle, end: a change of setting lands anywhere);
a compressed file or an archive member is sampled from its start only (no seeking in a stream).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from logsalvage.errors import ConfigError
from logsalvage.parsing.dialect import compile_shared
from logsalvage.parsing.pg_prefix import PG_LEVELS, compile_prefix
from logsalvage.sources.model import Candidate
from logsalvage.sources.reading import ReadProblem, open_text_stream

# (prefix, where it comes from); on a tie the configured prefix is taken, then the one reading more
# fields, then the earlier one
WELL_KNOWN = (
    ("%t [%p]: [%l-1] user=%u,db=%d,app=%a,client=%h ", "pgBadger's recommended prefix"),
    ("%t [%p]: user=%u,db=%d,app=%a,client=%h ", "pgBadger's recommended prefix (without %l)"),
    ("%m [%p] %h %u@%d ", "a common hand-written prefix (client host before user)"),
    ("%m [%p] %q%u@%d ", "Debian's and Ubuntu's default (PostgreSQL 10 and later)"),
    ("%t [%p-%l] %q%u@%d ", "Debian's and Ubuntu's default (PostgreSQL 9.x)"),
    ("%m:%h(%p):%u@%d:[%p]:", "a common hand-written prefix"),
    ("< %m >", "Red Hat's default (PostgreSQL 9.x)"),
    ("%m [%p] ", "PostgreSQL's default (10 and later)"),
    ("%t [%p] ", "a common hand-written prefix"),
    ("%m ", "timestamp only"),
    ("%t ", "Debian's default before 9.0"),
)
MAX_PREFIXES = 3
SAMPLE_WINDOW = 256 * 1024  # bytes per window
SAMPLE_LINES = 3000  # prefixed lines considered at most

_LEVELS = "|".join(PG_LEVELS)
# the prefix text of a line: in a stderr log, what comes before the level; through syslog, what
# comes after PostgreSQL's program name (as syslog.yaml's refinement names it), its '[pid]: ' and
# the '[seq-chunk] ' PostgreSQL adds
_STDERR = compile_shared(r"^(?P<p>.*?)(?:" + _LEVELS + r"):  ")
_SYSLOG = compile_shared(r"^.*? (?:postgres|postmaster|postgresql)(?:-\d+)?\[\d+\]: (?:\[\d+-\d+\] )?"
                         r"(?P<p>.*?)(?:" + _LEVELS + r"):  ")


@dataclass(frozen=True)
class PrefixChoice:
    prefixes: tuple[str | None, ...]  # in the order to try them; (None,) when nothing is known
    basis: str  # how they were chosen, for the responder
    changed: bool  # whether the choice differs from the configured prefix alone


def renderings(lines: list[str], through_syslog: bool, limit: int = SAMPLE_LINES) -> list[str]:
    """The prefix text of each PostgreSQL line of ``lines`` (lines that are not are skipped), the
    first ``limit`` of them."""
    rx = _SYSLOG if through_syslog else _STDERR
    out = []
    for line in lines:
        m = rx.match(line)
        if m is not None:
            out.append(m.group("p"))
            if len(out) >= limit:
                break
    return out


def choose(texts: list[str], configured: tuple[str, ...]) -> PrefixChoice:
    """The prefixes explaining ``texts`` (prefix renderings), configured ones preferred."""
    primary = configured[0] if configured else None
    if not texts:
        return PrefixChoice((primary,), "configured" if primary is not None else "none known", False)
    primary_rx = _compiled(primary) if primary is not None else None
    if len(set(configured)) == 1 and primary_rx is not None and all(primary_rx.match(t) is not None for t in texts):
        # what the trial gives then (no candidate explains more, the configured one wins ties),
        # without trying a dozen patterns on every line
        return PrefixChoice((primary,), f"from its records: {primary!r} (configured) fit {len(texts)} of "
                                        f"{len(texts)} sampled lines", False)
    return choose_by_trial(texts, configured)


def choose_by_trial(texts: list[str], configured: tuple[str, ...]) -> PrefixChoice:
    """``choose`` by trying every candidate on every text (the reference its shortcut is tested
    against)."""
    primary = configured[0] if configured else None
    if not texts:
        return PrefixChoice((primary,), "configured" if primary is not None else "none known", False)
    names = {p: "configured" for p in configured}
    for p, why in WELL_KNOWN:
        names.setdefault(p, why)
    patterns = {p: rx for p in names if (rx := _compiled(p)) is not None}
    fields = {p: rx.groups for p, rx in patterns.items()}
    configured_set = set(configured)
    left = list(range(len(texts)))
    chosen: list[str] = []
    explained = 0
    while left and len(chosen) < MAX_PREFIXES:
        hits = {p: [i for i in left if rx.match(texts[i]) is not None]
                for p, rx in patterns.items() if p not in chosen}
        ranked = sorted((p for p in hits if hits[p]),
                        key=lambda p: (-len(hits[p]), p not in configured_set, -fields[p]))  # (stable: list order)
        if not ranked:
            break
        best = ranked[0]
        chosen.append(best)
        explained += len(hits[best])
        taken = set(hits[best])
        left = [i for i in left if i not in taken]
    if not chosen:
        return PrefixChoice((primary,), f"configured; none of {len(texts)} sampled lines fits a known prefix"
                            if primary is not None else "none known", False)
    changed = tuple(chosen) != ((primary,) if primary is not None else ())
    parts = [f"{p!r} ({names[p]})" for p in chosen]
    basis = (f"from its records: {', then '.join(parts)} fit {explained} of {len(texts)} sampled lines")
    if primary is not None and primary not in chosen and primary in patterns:
        fit = sum(patterns[primary].match(t) is not None for t in texts)
        basis += f"; the configured {primary!r} fits {fit or 'none'} of them"
    return PrefixChoice(tuple(chosen), basis, changed)


@lru_cache(maxsize=256)
def _compiled(prefix: str):
    """The whole-text pattern of a prefix rendering; None for a prefix with an escape we cannot
    read (a configured one: a ConfigError elsewhere)."""
    try:
        return compile_shared("^(?s:" + compile_prefix(prefix) + ")$")
    except (ConfigError, ValueError, re.error):  # (DialectError is a ValueError)
        return None


def sample_lines(cand: Candidate) -> list[list[str]]:
    """Lines from the start, middle and end of a plain file, or the start of a stream: a list per
    window."""
    chunks: list[bytes] = []
    try:
        if cand.compression is None and cand.member is None and cand.size > 3 * SAMPLE_WINDOW:
            with open(Path(cand.path), "rb") as fh:
                for at in (0, cand.size // 2, cand.size - SAMPLE_WINDOW):
                    fh.seek(at)
                    data = fh.read(SAMPLE_WINDOW)
                    # a window after the start begins inside a line: drop up to its first newline
                    chunks.append(data if at == 0 else data.partition(b"\n")[2])
        else:
            with open_text_stream(cand) as fh:
                chunks.append(fh.read(3 * SAMPLE_WINDOW))
    except (OSError, ReadProblem):
        return []
    # (a window's last line may be cut: left out unless the window is the whole file)
    return [data.decode("utf-8", "replace").split("\n")[:-1 if len(data) >= SAMPLE_WINDOW else None]
            for data in chunks]


def choose_for(cand: Candidate, through_syslog: bool, configured: tuple[str, ...]) -> PrefixChoice:
    windows = sample_lines(cand)
    texts = [t for lines in windows for t in renderings(lines, through_syslog, SAMPLE_LINES // max(1, len(windows)))]
    return choose(texts, configured)
