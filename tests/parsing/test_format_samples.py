"""Every shipped format definition's samples are tests: each line parses into the fields it names."""

from __future__ import annotations

import pytest

from logsalvage.parsing.engine import ParseContext, parse_text
from logsalvage.parsing.formats import log_formats, shipped_formats

CASES = [(spec.id, i, sample) for spec in log_formats() for i, sample in enumerate(spec.samples)]


def _check(rec: dict, expect: dict, where: str) -> None:
    for key, want in expect.items():
        got = rec.get(key)
        assert got == want, f"{where}: field {key!r} is {got!r}, expected {want!r}"


@pytest.mark.parametrize("format_id,index,sample", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_sample(format_id: str, index: int, sample: dict) -> None:
    spec = shipped_formats()[format_id]
    ctx = ParseContext(**(sample.get("context") or {}))
    lines = sample["lines"] if "lines" in sample else [sample["line"]]
    events, issues = parse_text(spec, "\n".join(lines) + "\n", ctx)
    where = f"{format_id} sample {index + 1}"
    if sample.get("expect_issue"):
        assert not events and len(issues) == 1, f"{where}: expected one issue, got {events} {issues}"
        return
    if "expect" in sample:
        assert len(events) == 1 and not issues, f"{where}: expected one event, got {len(events)} events {issues}"
        _check(events[0], sample["expect"], where)
    if "expect_events" in sample:
        assert len(events) == len(sample["expect_events"]), f"{where}: {len(events)} events: {events}"
        for i, (rec, expect) in enumerate(zip(events, sample["expect_events"])):
            _check(rec, expect, f"{where} event {i + 1}")
    if "expect_issues" in sample:
        assert len(issues) == sample["expect_issues"], f"{where}: issues {issues}"


def test_every_log_format_has_samples() -> None:
    for spec in log_formats():
        assert len(spec.samples) >= 2, f"{spec.id} needs samples"
