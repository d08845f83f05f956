"""The report's search and filters (``report/filters.js``) in headless Chromium, on the hostile
case: choosing a severity, a host or a rule and typing text narrow the findings and the rows of the
analyst's part; every payload typed as a search stays text (nothing runs, nothing loads, the policy
reports nothing); with scripts off the filter bar stays hidden and every section and finding is
shown. Prerequisites as for test_report_in_browser.py (``browser`` in conftest.py)."""

from __future__ import annotations

import pytest
from hostile_case import PAYLOADS

SECTIONS = ("decision", "analysis", "findings", "milestones", "addresses", "continuity", "facts")
VISIBLE = """() => {
    const shown = e => !e.closest('[hidden]');
    const findings = [...document.querySelectorAll('#findings [data-severity]')];
    const rows = [...document.querySelectorAll('#milestones tbody tr, #addresses tbody tr, #analysis table.evidence tbody tr')];
    return {findings: findings.filter(shown).map(e => [e.dataset.severity, e.dataset.kind, e.dataset.hosts]),
            total: findings.length,
            rows: rows.filter(shown).map(e => e.textContent),
            all_rows: rows.length,
            count: document.getElementById('filter-count').textContent};
}"""


@pytest.fixture()
def page(browser, hostile):
    case = hostile[0]
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    seen = {"dialogs": [], "console": [], "errors": [], "requests": []}
    p.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    p.on("console", lambda m: seen["console"].append(m.text))
    p.on("pageerror", lambda e: seen["errors"].append(str(e)))
    p.on("request", lambda r: seen["requests"].append(r.url))
    p.goto((case / "report.html").as_uri(), wait_until="load")
    yield p, seen, (case / "report.html").as_uri()
    context.close()


def _options(p, select: str) -> list[str]:
    return [v for v in p.eval_on_selector_all(f"#{select} option", "os => os.map(o => o.value)") if v]


def test_filters_narrow_findings_and_rows(page):
    p, seen, url = page
    assert p.is_visible("#filters")
    start = p.evaluate(VISIBLE)
    assert start["total"] > 1 and len(start["findings"]) == start["total"]
    assert len(start["rows"]) == start["all_rows"] > 0
    assert start["count"].startswith(f"{start['total']} of {start['total']} findings")

    severities = _options(p, "filter-severity")
    assert len(severities) > 1  # the hostile case has findings of several severities
    for sev in severities:
        p.select_option("#filter-severity", sev)
        got = p.evaluate(VISIBLE)
        assert got["findings"] and {s for s, _, _ in got["findings"]} == {sev}
        assert len(got["findings"]) < start["total"]
    p.select_option("#filter-severity", "")

    kind = _options(p, "filter-kind")[0]
    p.select_option("#filter-kind", kind)
    assert {k for _, k, _ in p.evaluate(VISIBLE)["findings"]} == {kind}
    host = _options(p, "filter-host")[0]
    p.select_option("#filter-host", host)
    assert all(h == host for _, _, h in p.evaluate(VISIBLE)["findings"])
    p.click("#filter-clear")
    assert p.evaluate(VISIBLE)["findings"] == start["findings"]

    # typing: the rows left all hold the text; a text in nothing leaves nothing
    p.fill("#filter-text", "GET")
    got = p.evaluate(VISIBLE)
    assert 0 < len(got["rows"]) < start["all_rows"] and all("get" in r.lower() for r in got["rows"])
    p.fill("#filter-text", "no-such-text-anywhere-7f3a")
    got = p.evaluate(VISIBLE)
    assert got["findings"] == [] and got["rows"] == [] and got["count"].startswith(f"0 of {start['total']}")
    p.fill("#filter-text", "")
    assert len(p.evaluate(VISIBLE)["rows"]) == start["all_rows"]
    assert seen == {"dialogs": [], "console": [], "errors": [], "requests": [url]}


def test_payloads_typed_as_search_stay_text(page):
    p, seen, url = page
    found = 0
    for payload in PAYLOADS:
        p.fill("#filter-text", payload)
        got = p.evaluate(VISIBLE)
        # the payloads are in the evidence: searching for one finds the rows holding it, as text
        assert all(payload.lower() in r.lower() for r in got["rows"])
        found += len(got["rows"])
    assert found > 0
    p.fill("#filter-text", "")
    assert p.evaluate("document.scripts.length") == 1
    assert seen == {"dialogs": [], "console": [], "errors": [], "requests": [url]}


def test_without_scripts_the_page_is_whole(browser, hostile):
    case = hostile[0]
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1400, "height": 1000})
    try:
        p = context.new_page()
        p.goto((case / "report.html").as_uri(), wait_until="load")
        assert not p.is_visible("#filters")
        for section in SECTIONS:
            assert p.locator(f"#{section}").count() == 1, section
            assert p.is_visible(f"#{section}"), section
        hidden = p.eval_on_selector_all("#findings [data-severity]", "es => es.filter(e => e.closest('[hidden]')).length")
        assert hidden == 0 and p.locator("#findings [data-severity]").count() > 1
    finally:
        context.close()
