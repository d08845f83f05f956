"""report.html in a real browser: headless Chromium (Debian package ``chromium``, driven by
Playwright) loads the hostile case's report and nothing in it runs (but the report's own filter
script), loads or navigates.

The report is loaded twice: as written (its Content-Security-Policy in force: the policy must
have had nothing to block, so not one violation is reported) and with the policy bypassed (the
escaping alone must hold). A control copy with one payload left unescaped proves the harness
sees execution when there is some. The page is screenshotted and every figure must have decoded
at its full size and show a picture, not a blank.

Prerequisites: ``.ci/install-browser.sh`` (chromium) and the ``test`` extra (playwright). Without
them the tests skip; with ``CI=true`` they fail, because CI promises to install them.
``LOGSALVAGE_CHROMIUM`` names another Chromium binary.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hostile_case import IMG, PAYLOADS, SCRIPT, SVG

from logsalvage.report.html import SCRIPT as SCRIPT_TEXT

# the ``browser`` fixture (headless Chromium through Playwright) is conftest.py's


@dataclass
class Visit:
    """What the browser did while the page loaded and was scrolled through."""

    dialogs: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    frames: int = 0
    page: object = None


def _visit(browser, path: Path, *, bypass_csp: bool, keep=None) -> Visit:
    context = browser.new_context(bypass_csp=bypass_csp, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    seen = Visit()

    def dialog(d):
        seen.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", dialog)
    page.on("console", lambda m: seen.console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))
    page.on("request", lambda r: seen.requests.append(r.url))
    page.goto(path.as_uri(), wait_until="load")
    # scroll to the end and back so lazily reached content is laid out and painted
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    page.wait_for_timeout(200)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(200)
    seen.frames = len(page.frames)
    if keep is not None:
        seen.page = page
        keep.append(context)
    else:
        context.close()
    return seen


def _loaded_elsewhere(visit: Visit, path: Path) -> list[str]:
    return [u for u in visit.requests if u != path.as_uri() and not u.startswith("data:image/png;base64,")]


def _control_copy(html: str, tmp_path: Path) -> Path:
    """The report with one payload written raw into its body: what a missed escape would look like."""
    raw = f'<p>{SCRIPT}{IMG.lstrip(chr(34) + ">")}{SVG}</p>'
    path = tmp_path / "control.html"
    path.write_text(html.replace("<body>", "<body>" + raw, 1), encoding="utf-8")
    return path


def test_the_harness_sees_a_payload_that_was_not_escaped(browser, hostile, tmp_path):
    _, _, _, html = hostile
    control = _control_copy(html, tmp_path)
    enforced = _visit(browser, control, bypass_csp=False)
    assert not enforced.dialogs  # the policy blocks it ...
    assert any("Content Security Policy" in m for m in enforced.console)  # ... and says so
    bypassed = _visit(browser, control, bypass_csp=True)
    assert len(bypassed.dialogs) >= 2  # without the policy, the raw payloads run
    assert _loaded_elsewhere(bypassed, control)  # and the broken image is fetched


@pytest.mark.parametrize("bypass_csp", [False, True], ids=["policy-enforced", "policy-bypassed"])
def test_nothing_in_the_hostile_report_runs_or_loads(browser, hostile, bypass_csp):
    case, _, _, _ = hostile
    report = case / "report.html"
    keep = []
    visit = _visit(browser, report, bypass_csp=bypass_csp, keep=keep)
    try:
        assert visit.dialogs == []
        assert visit.page_errors == []
        assert visit.console == []  # in particular no policy violation: there was nothing to block
        assert _loaded_elsewhere(visit, report) == []
        assert visit.frames == 1
        page = visit.page
        assert page.url == report.as_uri()  # nothing navigated away
        live = page.evaluate("""() => {
            const all = [...document.querySelectorAll('*')];
            return {
                scripts: document.scripts.length,
                script: document.scripts.length ? document.scripts[0].textContent : null,
                handlers: all.flatMap(e => [...e.attributes].filter(a => a.name.startsWith('on'))
                                                            .map(a => e.tagName + ' ' + a.name)),
                links: document.querySelectorAll('[action], [formaction], iframe, object, embed').length,
                hrefs: [...document.querySelectorAll('[href]')].map(e => e.tagName + ' ' + e.getAttribute('href')),
                svg: document.querySelectorAll('svg').length,
                text: document.body.textContent,
            };
        }""")
        # one script, the report's own (its filters): the one the policy's hash allows
        assert live["scripts"] == 1 and live["script"] == SCRIPT_TEXT
        assert live["handlers"] == [] and live["links"] == 0 and live["svg"] == 0
        # the only links are the contents' links to the report's own sections
        assert live["hrefs"] and all(re.fullmatch(r"A #[a-z][a-z0-9]*", h) for h in live["hrefs"]), live["hrefs"]
        for link in page.locator("nav.contents a").all():
            link.click()
            assert page.url.split("#")[0] == report.as_uri()
        assert visit.dialogs == [] and _loaded_elsewhere(visit, report) == [] and len(page.frames) == 1
        for payload in PAYLOADS:  # shown as text
            assert payload in live["text"], payload
    finally:
        for context in keep:
            context.close()


def _is_picture(png: bytes) -> bool:
    """A rendered figure: many colours, not one flat fill."""
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20)
    return colours is not None and len(colours) >= 8 and max(c for c, _ in colours) < 0.99 * image.width * image.height


def test_the_page_renders_with_every_figure(browser, hostile, tmp_path):
    case, _, model, _ = hostile
    report = case / "report.html"
    expected = sum(len(h["figures"]) for h in model["coverage"]["hosts"])
    keep = []
    visit = _visit(browser, report, bypass_csp=False, keep=keep)
    try:
        page = visit.page
        shot = page.screenshot(full_page=True)
        (tmp_path / "report.png").write_bytes(shot)
        assert _is_picture(shot)
        figures = page.evaluate("""() => [...document.images].map(i => ({
            complete: i.complete, width: i.naturalWidth, height: i.naturalHeight,
            shown: i.getBoundingClientRect().width, alt: i.alt}))""")
        assert len(figures) == expected >= 5
        for figure in figures:
            assert figure["complete"] and (figure["width"], figure["height"]) == (1600, 900), figure
            assert figure["shown"] > 300, figure  # laid out at a readable size
        for i, image in enumerate(page.locator("img").all()):
            image.scroll_into_view_if_needed()
            picture = image.screenshot()
            (tmp_path / f"figure-{i}.png").write_bytes(picture)
            assert _is_picture(picture), f"figure {i} ({figures[i]['alt']}) rendered blank"
        # the verdict is at the top, where a manager starts reading
        first_screen = page.evaluate("document.body.innerText.slice(0, 600)")
        assert "Exfiltration" in first_screen or "exfiltration" in first_screen
    finally:
        for context in keep:
            context.close()
