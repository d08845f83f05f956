"""``report.html`` printed to PDF by headless Chromium, for a ticket or the board.

Chromium's own ``--print-to-pdf`` (no driver library needed): the report is one self-contained
file whose Content-Security-Policy loads nothing, so the browser only lays it out and prints it.
It runs with a throw-away profile (a Chromium the analyst has open keeps its own, and is not asked
to do the printing), without its sandbox (which root cannot use; the page loads nothing and its one
script only shows and hides parts of it — the filter bar is not printed), and its output is
captured, never mixed into ours. The PDF is written next to its final
name and renamed once it is whole.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from logsalvage.errors import LogsalvageError, UsageError

CHROMIUM_ENV = "LOGSALVAGE_CHROMIUM"
# Debian's binary itself first (/usr/bin/chromium is a wrapper script), then whatever is on PATH
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 300  # a report at the incident's scale prints in seconds


def find_chromium() -> str:
    """The Chromium binary: ``LOGSALVAGE_CHROMIUM`` when set, else the first of CANDIDATES found."""
    named = os.environ.get(CHROMIUM_ENV)
    if named:
        found = shutil.which(named)
        if found is None:
            raise UsageError(f"{CHROMIUM_ENV}={named} is not an executable Chromium")
        return found
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise UsageError(f"printing a PDF needs Chromium, and none was found (apt-get install chromium, or set "
                     f"{CHROMIUM_ENV} to its binary)")


def print_pdf(html_path: Path, pdf_path: Path, chromium: str | None = None) -> Path:
    """``html_path`` printed to ``pdf_path`` (replaced whole) by headless Chromium."""
    chromium = chromium or find_chromium()
    pdf_path = Path(pdf_path)
    partial = pdf_path.with_name(pdf_path.name + ".partial")
    partial.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="logsalvage-chromium-") as profile:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                   "--no-first-run", "--no-pdf-header-footer", f"--print-to-pdf={partial.resolve()}",
                   Path(html_path).resolve().as_uri()]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  errors="replace", timeout=TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            partial.unlink(missing_ok=True)
            raise LogsalvageError(f"Chromium ({chromium}) did not print the report within {TIMEOUT_S} s") from None
        except OSError as exc:
            raise UsageError(f"cannot run Chromium ({chromium}): {exc.strerror or exc}") from None
    try:
        with open(partial, "rb") as fh:
            whole = fh.read(5) == b"%PDF-"
    except OSError:
        whole = False
    if done.returncode != 0 or not whole:
        partial.unlink(missing_ok=True)
        last = [line for line in (done.stderr or "").splitlines() if line.strip()][-1:]
        raise LogsalvageError(f"Chromium ({chromium}) did not print the report (exit code {done.returncode}"
                              f"{': ' + last[0] if last else ''})")
    partial.replace(pdf_path)
    return pdf_path
