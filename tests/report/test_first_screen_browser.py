"""The first screen of the ``--exfil`` demo's report as a decision maker sees it, in headless
Chromium: the theft's facts in the verdict without opening anything, no identifier of the tool's
own in the decision part, every time on the page in one zone and one format, and a story that names
the gap in how the web shell got onto the server.

The demo (default scale, 40 days; the theft planted through the web shell) is investigated once for
the module; what the page must show is taken from its truth.json, not written here.
Prerequisites as for test_report_in_browser.py (``browser`` in conftest.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

VIEWPORT = {"width": 1400, "height": 1000}
ONE_FORMAT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
ANY_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d)?(?:\.\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d|UTC))?")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exfil_report(tmp_path_factory):
    """(truth, findings, report path) of the investigated --exfil demo."""
    from logsalvage.config import load_config
    from logsalvage.demo import generate
    from logsalvage.investigate import investigate

    out = tmp_path_factory.mktemp("exfil-report") / "demo"
    truth = generate(out, days=40, seed=2017, exfil=True)
    result = investigate(out / "evidence", out.parent / "case", config=load_config(out / "case.yaml"),
                         timeline=False)
    findings = json.loads(result.findings.read_text(encoding="utf-8"))
    return truth, findings, result.report


@pytest.fixture(scope="module")
def page(browser, exfil_report):
    _, _, report = exfil_report
    context = browser.new_context(viewport=VIEWPORT)
    p = context.new_page()
    p.goto(report.as_uri(), wait_until="load")
    yield p
    context.close()


def _shown(iso: str) -> str:
    """A truth time as the report shows it: the demo's hosts share its zone (Asia/Tokyo)."""
    return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")


def test_the_theft_facts_are_on_the_first_screen(exfil_report, page):
    truth, findings, _ = exfil_report
    theft = truth["exfiltration"]
    assert findings["verdict"]["exfiltration"] == "found"
    facts = page.locator("#decision dl.theft")
    assert facts.is_visible()
    box = facts.bounding_box()
    assert box["y"] + box["height"] <= VIEWPORT["height"], box  # seen without scrolling or opening anything
    rows = dict(zip(facts.locator("dt").all_inner_texts(), facts.locator("dd").all_inner_texts()))
    assert list(rows) == ["When", "Which tables", "How much", "By whom", "From where", "Through"]
    start, end = rows["When"].split(" → ")
    assert _shown(theft["time"]) <= start <= end == _shown(theft["until"])
    assert set(theft["tables"]) <= set(re.split(r", | and ", rows["Which tables"]))
    shown_bytes = int(re.search(r"\(([\d,]+) bytes\)", rows["How much"]).group(1).replace(",", ""))
    assert max(w["bytes"] for w in theft["web"]) <= shown_bytes <= theft["bytes_out"]
    assert theft["db_user"] in rows["By whom"]
    assert f"{theft['client']} (web01)" in rows["From where"] and theft["source"] in rows["From where"]
    assert f"the web shell {theft['shell']} on web01" in rows["Through"]


def test_no_identifier_of_the_tool_in_the_decision_part(exfil_report, page):
    _, findings, _ = exfil_report
    text = page.locator("#decision").text_content()  # what is folded away too
    assert not re.search(r"\b(?:exfil|access)\.[a-z_]+", text)
    assert not [f["rule"] for f in findings["findings"] if f["rule"] in text]
    assert not [f["id"] for f in findings["findings"] if f["id"] in text]
    # the analyst part still has them
    assert "exfil.copy_to" in page.locator("#analysis").text_content()


def test_every_time_on_the_page_is_in_one_zone_and_one_format(exfil_report, page):
    truth, _, _ = exfil_report
    zone = ZoneInfo(truth["timezone"])  # every host of the demo is in it
    header = page.locator("header.top").inner_text()
    assert f"All times: {truth['timezone']} (UTC+09:00)" in header
    stamps = page.evaluate("""() => [...document.querySelectorAll('time')].map(t => [t.textContent, t.title,
                                                                                   t.dateTime])""")
    assert len(stamps) > 500
    for text, utc, iso in stamps:
        assert ONE_FORMAT.fullmatch(text), text
        t = datetime.fromisoformat(iso.replace("Z", "+00:00"))
        assert utc == t.strftime("%Y-%m-%d %H:%M:%S UTC")
        assert text == t.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    # everything the reader sees but the records themselves (shown as they were written)
    text = page.evaluate("""() => { const c = document.body.cloneNode(true);
                                    c.querySelectorAll('pre').forEach(e => e.remove());
                                    return c.innerText || c.textContent; }""")
    others = sorted({m.group(0) for m in ANY_TIME.finditer(text) if not ONE_FORMAT.fullmatch(m.group(0))})
    assert not others, others[:10]
    assert page.content().count("All times:") == 1  # stated once


def test_the_story_names_the_initial_access_gap(exfil_report, page):
    truth, _, _ = exfil_report
    story = page.locator("#decision .story")
    assert story.is_visible()
    text = story.inner_text()
    first_shell = next(m for m in truth["milestones"] if m["kind"] == "first_webshell_execution")
    first_upload = min((m for m in truth["milestones"] if m["kind"] == "ftp_upload_session"),
                       key=lambda m: m["time"])
    assert "How the web shell got onto web01 is not in the logs read" in text
    assert f"its first request ({first_shell['detail']['url'].split('?')[0]}, {_shown(first_shell['time'])})" in text
    assert f"before the first FTP upload in the evidence ({_shown(first_upload['time'])})" in text
    assert "most likely arrived earlier by FTP upload" in text and "web01's logs begin with the FTP log" in text
    assert "Customer data left the database on db01" in text


def _border(page) -> str:
    return page.evaluate("getComputedStyle(document.querySelector('#decision .verdict')).borderLeftColor")


def _colour(page, name: str) -> str:
    """A CSS colour variable of the page as the browser computes it (rgb(…))."""
    return page.evaluate(f"""() => {{ const e = document.createElement('span');
        e.style.color = 'var({name})'; document.body.appendChild(e);
        const c = getComputedStyle(e).color; e.remove(); return c; }}""")


def test_the_verdict_frame_follows_the_confidence(browser, exfil_report, page, tmp_path):
    """The frame's colour as the reader sees it: a theft found with high confidence is red; the same
    case with a "no sign" at low confidence is grey (not green: not a reassurance), with the cover
    gap first."""
    from logsalvage.report import html, model
    from logsalvage.store import CaseStore

    _, findings, report = exfil_report
    assert findings["verdict"]["confidence"] == "high" and _border(page) == _colour(page, "--bad")
    low = json.loads(json.dumps(findings))
    low["verdict"].update(exfiltration="none-found", confidence="low", theft=None)
    case = report.parent
    with CaseStore(case) as store:
        data = model.build(store, case, low, figures_dir=tmp_path / "figures")
    other = tmp_path / "low.html"
    other.write_text(html.render(data), encoding="utf-8")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        p = context.new_page()
        p.goto(other.as_uri(), wait_until="load")
        assert _border(p) == _colour(p, "--muted") != _colour(p, "--ok")
        answer = p.locator("#decision .verdict").inner_text()
        assert "No sign that data left the database" in answer and "Not established:" in answer
    finally:
        context.close()
