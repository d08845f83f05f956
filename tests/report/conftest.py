"""The hostile case, built once per session for the report tests (static and in a browser), and the
headless Chromium the browser tests drive (``browser``)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from prerequisites import unavailable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # hostile_case.py, whatever pytest's import mode

import hostile_case


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """(case dir, findings, model, html) of the hostile case."""
    return hostile_case.build(tmp_path_factory.mktemp("hostile"))


_CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")


def _chromium() -> str | None:
    named = os.environ.get("LOGSALVAGE_CHROMIUM")
    if named:
        return named
    for candidate in _CANDIDATES:
        found = shutil.which(candidate) if not candidate.startswith("/") else (
            candidate if os.access(candidate, os.X_OK) else None)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's ``chromium``, or ``LOGSALVAGE_CHROMIUM``) driven by Playwright;
    skipped without them, failed under CI=true."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[test]')")
    binary = _chromium()
    if binary is None:
        unavailable("no Chromium found (apt-get install chromium, or set LOGSALVAGE_CHROMIUM)")
    with sync_playwright() as p:
        # root cannot use Chromium's sandbox; the page's own restrictions are what is tested
        b = p.chromium.launch(executable_path=binary, args=["--no-sandbox"])
        yield b
        b.close()
