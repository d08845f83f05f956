"""report.html: one self-contained file in which attacker text stays text.

A small case whose every log field carries markup, script, template syntax and control
characters is ingested, detected and reported; an HTML parser then checks that nothing in the
report can run, load or link anything. The demo case (when its prepared copy exists) checks the
report's content, its figures, its size and that it is the same bytes every time.
"""

from __future__ import annotations

import base64
import json
import re
import struct
import time
from html.parser import HTMLParser

import pytest
from hostile_case import ESC, LS, PAYLOADS, RLO, SCRIPT, SVG, TEMPLATE

from logsalvage.detect.run import run_detection
from logsalvage.ingest import ingest
from logsalvage.report import html as report_html
from logsalvage.report import model as report_model
from logsalvage.report.html import CSP, render, visible, write_report
from logsalvage.store import CaseStore


class _Collect(HTMLParser):
    """Every start tag with its attributes, in order, and the text between tags."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)


def _parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    parser.close()
    return parser


def _assert_inert(html: str) -> _Collect:
    parsed = _parse(html)
    tags = [t for t, _ in parsed.tags]
    # one script: the report's own filters, as the module holds them (the policy allows its hash only)
    assert tags.count("script") == 1 and html.count(f"<script>{report_html.SCRIPT}</script>") == 1
    assert not {"iframe", "object", "embed", "svg", "math", "link", "base", "form", "frame",
                "template", "audio", "video", "source", "area"} & set(tags)
    # the one input is the filter bar's search box (no form: nothing is ever sent)
    assert [dict(a).get("id") for t, a in parsed.tags if t == "input"] == ["filter-text"]
    for tag, attrs in parsed.tags:  # no refresh or other http-equiv but the policy
        if tag == "meta" and "http-equiv" in dict(attrs):
            assert dict(attrs)["http-equiv"] == "Content-Security-Policy", attrs
    ids = {value for _, attrs in parsed.tags for name, value in attrs if name == "id"}
    images = 0
    for tag, attrs in parsed.tags:
        if tag == "a":  # only the contents' links to the report's own sections
            names = dict(attrs)
            assert set(names) <= {"href", "class"}, attrs
            assert re.fullmatch(r"#[a-z][a-z0-9]*", names["href"]) and names["href"][1:] in ids, attrs
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, value)
            assert "javascript:" not in (value or "").lower(), (tag, name, value)
            assert name not in ("action", "formaction", "xlink:href", "srcset", "background", "poster")
            assert name != "href" or tag == "a", (tag, name, value)
            if name == "src":
                assert tag == "img" and value.startswith("data:image/png;base64,"), (tag, value[:80])
                images += 1
            if name == "style":
                raise AssertionError(f"style attribute on <{tag}>")
    # the CSP is the first element of <head>
    head = tags.index("head")
    first_tag, first_attrs = parsed.tags[head + 1]
    assert first_tag == "meta" and dict(first_attrs) == {"http-equiv": "Content-Security-Policy", "content": CSP}
    # scripts: the one whose hash the policy names, nothing inline else, no eval (no 'unsafe-*')
    assert "default-src 'none'" in CSP and f"script-src '{report_html.SCRIPT_HASH}';" in CSP
    assert "unsafe-inline" not in CSP.split("script-src")[1].split(";")[0] and "unsafe-eval" not in CSP
    assert CSP.count("script-src") == 1
    # no external reference of any kind in the CSS either
    assert "url(" not in html and "@import" not in html
    return parsed


def test_hostile_case_reports_attacker_text_as_text(hostile):
    _, findings, model, html = hostile
    parsed = _assert_inert(html)
    text = "".join(parsed.text)
    # the payloads did reach the report, as text (escaped in the source, decoded by the parser)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;svg onload=alert(1)&gt;" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;/script&gt;&lt;script&gt;" in html
    for payload in PAYLOADS:
        assert payload in text, payload
    # template syntax is shown, never evaluated
    assert TEMPLATE in text and "alert(1)</script>" in text
    assert "{{" not in html.replace(TEMPLATE, "")  # no other template output leaked
    # control, line-separator and bidi characters are shown as escapes
    for raw, shown in ((ESC[0], "\\x1b"), (LS, "\\u2028"), (RLO, "\\u202e")):
        assert raw not in html
        assert shown in text
    assert "\r" not in html
    # the evidence reached every part that shows it
    assert findings["findings"] and findings["milestones"]
    assert any(SCRIPT in f["title"] or SCRIPT in json.dumps(f["detail"]) for f in findings["findings"])
    shown = [e for f in model["findings_by_severity"] for x in f["findings"] for e in x["evidence"]]
    assert any(SCRIPT in e["raw"] for e in shown)
    assert model["facts"]["issues"] and any(SCRIPT in x["excerpt"] for i in model["facts"]["issues"]
                                            for x in i["examples"])


def test_hostile_report_is_deterministic_and_self_contained(hostile):
    case, findings, model, html = hostile
    assert render(model) == html
    with CaseStore(case) as store:  # figures drawn again, the model gathered again
        again = report_model.build(store, case, findings, figures_dir=case / "figures")
    assert again == model
    assert render(again) == html
    assert html.startswith("<!DOCTYPE html>")
    assert (case / "report.html").read_text(encoding="utf-8") == html
    json.dumps(model)  # plain data only


def test_every_figure_is_an_embedded_png(hostile):
    _, _, model, html = hostile
    srcs = [dict(a)["src"] for t, a in _parse(html).tags if t == "img"]
    web = next(h for h in model["coverage"]["hosts"] if h["name"] == "web01")
    assert web["figures"][0]["name"] == "addresses"
    assert web["ftp_sessions"] and SVG in web["ftp_sessions"][0]["uploads"]
    assert len(srcs) == sum(len(h["figures"]) for h in model["coverage"]["hosts"]) >= 5
    for src in srcs:
        assert png_size(base64.b64decode(src.split(",", 1)[1], validate=True)) == (1600, 900)


def test_a_figure_that_is_not_a_png_is_not_embedded(hostile, tmp_path):
    _, _, model, html = hostile
    fake = tmp_path / "fake.png"
    fake.write_text('<svg onload="alert(1)"></svg>')
    changed = json.loads(json.dumps(model))
    changed["coverage"]["hosts"][0]["figures"][0]["png"] = str(fake)
    out = render(changed)
    _assert_inert(out)
    assert out.count("<img ") == html.count("<img ") - 1


def test_evidence_lines_carry_provenance_and_say_how_many_are_left_out(hostile):
    case, findings, _, _ = hostile
    with CaseStore(case) as store:
        model = report_model.build(store, case, findings, figures_dir=case / "figures-1", evidence_lines=1)
        bare = report_model.build(store, case, {}, figures_dir=case / "figures-2")
    shell = next(f for g in model["findings_by_severity"] for f in g["findings"] if f["rule"] == "web.webshell_execution")
    (line,) = shell["evidence"]
    assert line["source"] == "web01/var/log/httpd/access_log" and line["recovered"] is False
    assert isinstance(line["offset"], int) and isinstance(line["line_no"], int) and line["kind"] == "live"
    # shown on the case's clock (both hosts are in Asia/Tokyo), its UTC for the tooltip
    assert line["time"] == {"text": "2017-07-15 08:58:21", "utc": "2017-07-14 23:58:21 UTC",
                            "iso": "2017-07-14T23:58:21Z"} and SCRIPT in line["raw"]
    assert shell["evidence_more"] == shell["event_ids_listed"] - 1 == 2
    html = render(model)
    _assert_inert(html)
    assert "2 more events not shown (of 3 listed in findings.json)" in html
    # findings.json without anything in it (an older or failed detection run) still gives a report
    _assert_inert(render(bare))
    assert bare["verdict"]["label"] == report_model.VERDICT_LABELS["undetermined"] and bare["findings_total"] == 0


def test_visible_escapes_invisible_characters():
    assert visible("plain <text> & 'quotes'") == "plain <text> & 'quotes'"
    assert visible("a\tb\nc") == "a\tb\nc"
    assert visible("\x00\x1b[31m\x7f\x85\r") == "\\x00\\x1b[31m\\x7f\\x85\\x0d"
    assert visible("x\u2028y\u2029z\u202ew\u200bv\ufeff") == "x\\u2028y\\u2029z\\u202ew\\u200bv\\ufeff"
    assert visible("bad \udcff byte") == "bad \\udcff byte"  # a lone surrogate cannot be written as UTF-8
    assert visible("日本語 ✓") == "日本語 ✓"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# --- the demo case ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 40-day demo read with its case config and its image carved, then detection."""
    from logsalvage.carve.pipeline import carve_into_case, parse_acquired
    from logsalvage.config import load_config
    from logsalvage.demo import generate
    from logsalvage.detect.run import write_findings

    out = tmp_path_factory.mktemp("demo") / "demo"
    truth = generate(out, days=40, seed=9)
    config = load_config(out / "case.yaml")
    case = out.parent / "case"
    ingest([out / "evidence"], case, config=config)
    carve_into_case([out / "evidence/db01/image/sdb1.dd"], case, host="db01",
                    acquired=parse_acquired(truth["acquired"]), config=config)
    with CaseStore(case) as store:
        write_findings(case, run_detection(store, config))
    findings = json.loads((case / "findings.json").read_text(encoding="utf-8"))
    started = time.perf_counter()
    with CaseStore(case) as store:
        model = report_model.build(store, case, findings, figures_dir=case / "figures")
    built = time.perf_counter()
    path = write_report(model, case)
    done = time.perf_counter()
    print(f"\ndemo report: {path.stat().st_size:,} bytes; model {built - started:.1f} s, "
          f"render {done - built:.2f} s")
    return case, findings, model, path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_demo_report_shows_verdict_milestones_and_figures(demo):
    case, findings, model, html = demo
    parsed = _assert_inert(html)
    text = "".join(parsed.text)
    assert report_model.VERDICT_LABELS[findings["verdict"]["exfiltration"]] in text
    assert f"Confidence: {findings['verdict']['confidence']}" in " ".join(text.split())
    coverage = findings["verdict"]["coverage_of_exposure_window"]
    assert f"{coverage * 100:.2f} %" in text  # the coverage of the exposure window
    for kind in {m["kind"] for m in findings["milestones"]}:
        assert report_model.milestone_label(kind) in text, kind
        assert kind in text
    assert len(model["milestones"]) == len(findings["milestones"])
    for f in findings["findings"]:
        assert f["id"] in text
    srcs = [dict(a)["src"] for t, a in parsed.tags if t == "img"]
    assert len(srcs) == 9  # db01: 4 continuity figures; web01: the address figure and 4
    for src in srcs:
        assert png_size(base64.b64decode(src.split(",", 1)[1], validate=True)) == (1600, 900)
    hosts = {h["name"]: h for h in model["coverage"]["hosts"]}
    with CaseStore(case, read_only=True) as store:
        preserved = [k for k in ("live", "backup")
                     if store.query("SELECT count(*) FROM sources WHERE host = 'db01' AND kind = ?", [k])[0][0]]
    assert [a["a"] for a in hosts["db01"]["agreement"]] == preserved
    assert hosts["web01"]["agreement"] == [] and len(hosts["web01"]["ftp_sessions"]) == 14
    assert len(html.encode("utf-8")) < 15_000_000


@pytest.mark.slow
def test_demo_report_is_the_same_bytes_every_time(demo):
    case, findings, model, html = demo
    assert render(model) == html
    with CaseStore(case) as store:
        again = report_model.build(store, case, findings, figures_dir=case / "figures")
    assert render(again) == html


def test_templates_are_autoescaped_and_never_mark_text_safe():
    env = report_html._environment()
    assert env.autoescape is True
    for template in report_html.TEMPLATES.iterdir():
        source = template.read_text(encoding="utf-8")
        assert "|safe" not in source.replace(" ", "") and "autoescape false" not in source
        assert source.count("<script") == 1 and "<script>{{ script }}</script>" in source
        # every link is a literal in-page one: nothing from the data ever becomes a link target
        assert re.findall(r'href="([^"]*)"', source) and all(
            re.fullmatch(r"#[a-z]+(\{\{ loop\.index \}\})?", h) for h in re.findall(r'href="([^"]*)"', source))
        assert source.count("href") == len(re.findall(r'href="([^"]*)"', source))


# --- figure 4: address against time ---------------------------------------------------------------

def test_address_time_figure_rasterises_dense_data_and_marks_sessions(tmp_path):
    import numpy as np

    from logsalvage.report.plots import address_time_figure

    rng = np.random.default_rng(4)
    n = 200_000
    times = np.sort(rng.integers(1_484_000_000, 1_515_000_000, n))
    addresses = rng.integers(0, 2**32, n)
    statuses = rng.choice([200, 302, 404, 500, 0], n).astype(float)
    statuses[:10] = np.nan
    sessions = [(1_500_000_000, 1_500_000_030, f"#1 {SCRIPT} $\\frac{{$"), (1_505_000_000, 1_505_000_000, "#2\x1b")]
    paths = address_time_figure(times, addresses, statuses, tmp_path / "web01-addresses", tz="Asia/Tokyo",
                                sessions=sessions, title=f"web01 {SVG}")
    png, svg = paths
    assert (png.name, svg.name) == ("web01-addresses.png", "web01-addresses.svg")
    assert png_size(png.read_bytes()) == (1600, 900)
    text = svg.read_text()
    assert "<image" in text and text.count("<path") < 500  # the dots are one image, not 200 000 paths
    assert svg.stat().st_size < 5_000_000
    again = address_time_figure(times, addresses, statuses, tmp_path / "again", tz="Asia/Tokyo",
                                sessions=sessions, title=f"web01 {SVG}")
    assert again[0].read_bytes() == png.read_bytes() and again[1].read_bytes() == svg.read_bytes()
    empty = address_time_figure([], [], [], tmp_path / "empty", tz="UTC")
    assert "no requests" in empty[1].read_text()
    with pytest.raises(ValueError, match="length"):
        address_time_figure([1, 2], [1], [200, 200], tmp_path / "bad", tz="UTC")


def test_a_no_sign_verdict_is_green_only_when_certain():
    """A low-confidence "no sign" in a green frame reads as "safe": the frame follows the confidence,
    and the first sentence says what the log does not cover."""
    from zoneinfo import ZoneInfo

    from logsalvage.report.model import _verdict
    from logsalvage.report.times import CaseClock

    base = {"exfiltration": "none-found", "db_host": "db01", "reasons": [], "event_ids": [],
            "holes_in_window": [{"start": "2017-10-01T00:00:00+09:00", "end": "2017-11-25T00:00:00+09:00",
                                 "seconds": 55 * 86400}]}
    low = _verdict({**base, "confidence": "low", "coverage_of_exposure_window": 0.6486}, {}, 5,
                   CaseClock(ZoneInfo("Asia/Tokyo")))
    assert low["frame"] == "unknown"
    assert low["caveat"].startswith("Not established: the database log covers only 64.86 % of the exposure window")
    assert "(the longest stretch without records: 55 d from 2017-10-01 00:00:00)" in low["caveat"]
    high = _verdict({**base, "confidence": "high", "coverage_of_exposure_window": 1.0, "holes_in_window": []}, {}, 5)
    assert (high["frame"], high["caveat"]) == ("ok", None)
    assert _verdict({**base, "confidence": "medium", "coverage_of_exposure_window": 0.95}, {}, 5)["frame"] == "warn"
    assert _verdict({**base, "exfiltration": "found", "confidence": "high",
                     "coverage_of_exposure_window": 0.5}, {}, 5)["frame"] == "bad"
