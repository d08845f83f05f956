"""Rotation seams: does each preserved file pick up where the previous one of its chain stopped?

A chain is one logical log file of a host (``messages``, ``access_log``) through its rotated,
compressed and backed-up generations. At each seam the previous file's last record and the next
file's first record should be within the host's cadence (``k`` heartbeat periods); syslog
rotation also leaves ``rsyslogd was HUPed`` as a file's last words. A seam wider than that is
missing time in the preserved files — which other sources (the salvage) may or may not fill.
Pure: takes the sources' spans, returns the seams.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_COMPRESSION = re.compile(r"\.(gz|bz2|xz|zst|Z)$")
_ROTATION = re.compile(r"(?:[-_.]\d{8}(?:\d{2})?|[-_.]\d{4}-\d{2}-\d{2})?(?:\.\d{1,3})?$")
_ROTATION_MARK = re.compile(r"rsyslogd was HUPed|rsyslogd.*\bstart\b|syslogd .*restart|logrotate", re.IGNORECASE)


@dataclass(frozen=True)
class SourceSpan:
    source_id: str
    display: str  # path or path!member
    name: str  # file name (of the member for archive members)
    kind: str
    format_id: str
    first: int  # epoch seconds
    last: int
    events: int
    first_record: str | None = None
    last_record: str | None = None


def chain_name(file_name: str) -> str:
    """``messages-20171210`` -> ``messages``; ``access_log.1.gz`` -> ``access_log``."""
    base = _COMPRESSION.sub("", file_name)
    return _ROTATION.sub("", base) or base


def seams(spans: list[SourceSpan], *, threshold: int | None, coverage=None) -> list[dict]:
    """Consecutive preserved files of each chain and the time between them.

    ``threshold``: the largest acceptable gap (k heartbeat periods) — None when the chain's
    cadence is unknown, so no verdict is given. ``coverage``: the merged timeline's ``Coverage``;
    how much of a wide seam's gap other sources (the salvage) fill.
    """
    chains: dict[tuple[str, str], list[SourceSpan]] = {}
    for s in spans:
        if s.kind == "salvage" or s.events == 0:
            continue
        chains.setdefault((s.format_id, chain_name(s.name)), []).append(s)
    out = []
    for (format_id, name), members in sorted(chains.items()):
        members.sort(key=lambda s: (s.first, s.last, s.source_id))
        for prev, nxt in zip(members, members[1:]):
            gap = nxt.first - prev.last
            ok = None if threshold is None else gap <= threshold
            filled = None
            if ok is False and coverage is not None:
                filled = coverage.ratio(prev.last, nxt.first)
            out.append({
                "chain": name, "format": format_id, "from": prev.display, "to": nxt.display,
                "from_kind": prev.kind, "to_kind": nxt.kind,
                "last": prev.last, "first": nxt.first, "gap_s": gap, "ok": ok,
                "overlap": gap < 0,
                "rotation_mark": bool(prev.last_record and _ROTATION_MARK.search(prev.last_record)),
                "last_record": prev.last_record, "first_record": nxt.first_record,
                "gap_covered_by_other_sources": filled,
            })
    return out
