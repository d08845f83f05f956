"""What the report's filter bar offers (``filters.js`` runs it): the hosts, finding rules and
severities of the analyst's part, each under a key of the tool's own making (``h1``, ``k3``), which
is what the page's ``data-`` attributes carry — no attribute ever holds a value from the evidence
(a host name comes from the evidence's folders); the names themselves are shown as escaped text."""

from __future__ import annotations

from logsalvage.detect.model import SEVERITIES

_ORDER = tuple(reversed(SEVERITIES))  # critical first


def build(findings: list[dict], milestones: list[dict]) -> dict:
    """The filter options, and each finding's and milestone's keys (``host_key``, ``kind_key``)
    added to it in place."""
    hosts = sorted({str(x["host"]) for x in [*findings, *milestones] if x.get("host")})
    host_key = {h: f"h{i}" for i, h in enumerate(hosts, start=1)}
    rules = sorted({f["rule"] for f in findings if f.get("rule")})
    rule_key = {r: f"k{i}" for i, r in enumerate(rules, start=1)}
    for f in findings:
        f["host_key"] = host_key.get(str(f.get("host")), "")
        f["kind_key"] = rule_key.get(f.get("rule"), "")
    for m in milestones:
        m["host_key"] = host_key.get(str(m.get("host")), "")
    present = {f.get("severity") for f in findings}
    return {"hosts": [{"key": host_key[h], "name": h} for h in hosts],
            "kinds": [{"key": rule_key[r], "name": r} for r in rules],
            "severities": [s for s in _ORDER if s in present]}
