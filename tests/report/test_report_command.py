"""``logsalvage report``: the report drawn again from a case is byte for byte the one
``investigate`` wrote; ``--pdf`` prints it through headless Chromium; ``--json`` prints the two
paths only; a missing case, findings file, directory or browser is one line and exit code 2, a
browser that fails exit code 1, with no PDF left behind.

The PDF test needs Chromium (``.ci/install-browser.sh``; ``LOGSALVAGE_CHROMIUM`` names another
binary): without it, it skips; with ``CI=true`` it fails."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prerequisites import unavailable

from logsalvage.cli import main
from logsalvage.config import parse_config
from logsalvage.errors import UsageError
from logsalvage.investigate import investigate
from logsalvage.report.pdf import find_chromium

JST = timezone(timedelta(hours=9))
CONFIG = parse_config({"acquired": "2017-12-31T00:00:00+09:00",
                       "hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"]},
                                 "db01": {"timezone": "Asia/Tokyo", "paths": ["db01/**"]}},
                       "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
                       "inventory": {"web": ["/index.php"]}}, "test")


def _evidence(root: Path) -> Path:
    """A web server's site traffic with web-shell requests, and its database's health check."""
    ev = root / "evidence"
    start = datetime(2017, 12, 1, tzinfo=JST)
    access = [(start + timedelta(minutes=7 * i), f"203.0.113.{i % 50}", "/index.php") for i in range(120)]
    access += [(start + timedelta(hours=5, seconds=9 * k), "79.172.212.37", f"/x.php?c={cmd}")
               for k, cmd in enumerate(("id", "uname%20-a", "ls%20-la"))]
    (ev / "web01/var/log/httpd").mkdir(parents=True)
    (ev / "web01/var/log/httpd/access_log").write_text("".join(
        f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0900] "GET {url} HTTP/1.1" 200 900 "-" "M"\n'
        for t, ip, url in sorted(access)))
    (ev / "db01/var/log").mkdir(parents=True)
    (ev / "db01/var/log/messages").write_text("".join(
        f"{t:%b} {t.day:2d} {t:%H:%M:%S} db01 postgres[{3000 + i}]: [3-1] DATABASE=[unknown],USER=[unknown],"
        f"CLIENT=127.0.0.1({40000 + i}),LOG:  incomplete startup packet\n"
        for i, t in ((i, start + timedelta(seconds=30 * i)) for i in range(24 * 40))))
    return ev


@pytest.fixture(scope="module")
def investigated(tmp_path_factory) -> tuple[Path, bytes]:
    """(case dir, the bytes of the report investigate wrote)."""
    root = tmp_path_factory.mktemp("report-command")
    case = root / "case"
    result = investigate(_evidence(root), case, config=CONFIG, timeline=False)
    assert result.steps["report"] == "done"
    return case, result.report.read_bytes()


def _report(capsys, *args) -> tuple[int, str, str]:
    code = main(["report", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_redrawn_report_is_the_one_investigate_wrote(investigated, capsys):
    case, written = investigated
    (case / "report.html").unlink()
    shutil.rmtree(case / "figures")
    code, out, err = _report(capsys, "--case", str(case))
    assert code == 0, err
    assert (case / "report.html").read_bytes() == written
    assert any((case / "figures").iterdir())
    assert out == f"report: {case / 'report.html'}\n"


def test_json_prints_only_the_written_paths(investigated, capsys):
    case, written = investigated
    code, out, _ = _report(capsys, "--case", str(case), "--json")
    assert code == 0 and json.loads(out) == {"report": str(case / "report.html"), "pdf": None}
    assert (case / "report.html").read_bytes() == written


def test_the_report_is_printed_to_pdf_through_chromium(investigated, tmp_path, capsys):
    try:
        find_chromium()
    except UsageError as exc:
        unavailable(str(exc))
    case, written = investigated
    pdf = tmp_path / "board" / "incident report.pdf"  # (a space: the path stays one argument)
    pdf.parent.mkdir()
    code, out, err = _report(capsys, "--case", str(case), "--pdf", str(pdf), "--json")
    assert code == 0, err
    assert json.loads(out) == {"report": str(case / "report.html"), "pdf": str(pdf)}
    assert pdf.read_bytes()[:5] == b"%PDF-" and pdf.stat().st_size > 10_000
    assert [p.name for p in pdf.parent.iterdir()] == [pdf.name]  # nothing half-written left beside it
    assert (case / "report.html").read_bytes() == written


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and err.startswith("logsalvage: error: ") and "Traceback" not in err


def test_a_missing_case_or_findings_file_is_one_line_and_exit_2(investigated, tmp_path, capsys):
    code, out, err = _report(capsys, "--case", str(tmp_path / "nowhere"))
    assert code == 2 and out == "" and _one_line(err) and "no case database" in err
    assert not (tmp_path / "nowhere").exists()
    undetected = tmp_path / "case"  # a case database, and no findings.json
    undetected.mkdir()
    shutil.copyfile(investigated[0] / "case.duckdb", undetected / "case.duckdb")
    code, out, err = _report(capsys, "--case", str(undetected), "--json")
    assert code == 2 and out == "" and _one_line(err) and "findings.json" in err and "detect" in err
    assert not (undetected / "report.html").exists()


def test_no_chromium_or_no_pdf_directory_is_exit_2_before_any_redraw(investigated, tmp_path, capsys, monkeypatch):
    case, written = investigated
    (case / "report.html").unlink()
    try:
        code, out, err = _report(capsys, "--case", str(case), "--pdf", str(tmp_path / "missing" / "r.pdf"))
        assert code == 2 and out == "" and _one_line(err) and "directory does not exist" in err
        monkeypatch.setenv("LOGSALVAGE_CHROMIUM", str(tmp_path / "no-such-browser"))
        code, out, err = _report(capsys, "--case", str(case), "--pdf", str(tmp_path / "r.pdf"))
        assert code == 2 and out == "" and _one_line(err) and "LOGSALVAGE_CHROMIUM" in err
        assert not (case / "report.html").exists() and not (tmp_path / "r.pdf").exists()
    finally:
        (case / "report.html").write_bytes(written)


def test_a_browser_that_fails_is_exit_1_and_leaves_no_pdf(investigated, tmp_path, capsys, monkeypatch):
    case, _ = investigated
    monkeypatch.setenv("LOGSALVAGE_CHROMIUM", shutil.which("false"))
    code, out, err = _report(capsys, "--case", str(case), "--pdf", str(tmp_path / "r.pdf"))
    assert code == 1 and out == "" and _one_line(err) and "did not print the report" in err
    assert list(tmp_path.iterdir()) == []
