"""nginx and php-fpm from Debian write an error log now, by the script that made the checked-in one
(tests/data/nginx_error/make.sh): it is recognised and read as that one is — the same errors of the
same requests, the PHP stack trace in its record, no issue.

Prerequisites: Debian's nginx-light, php-fpm and curl (``.ci/install-daemons.sh``), root."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from logsalvage.parsing.engine import ParseContext, parse_text
from logsalvage.parsing.formats import shipped_formats
from logsalvage.sources import detect_format

from prerequisites import unavailable

pytestmark = [pytest.mark.daemon]
DATA = Path(__file__).resolve().parents[1] / "data/nginx_error"


def _shape(text: str) -> tuple[Counter, list, list]:
    events, issues = parse_text(shipped_formats()["nginx-error"], text, ParseContext())
    errors = Counter((e["event_type"], e["log_level"], e.get("http_method"), e.get("url_path"), e.get("_line_count"))
                     for e in events if e["log_level"] != "notice")
    return errors, [e.get("action") for e in events if e.get("action")], issues


def test_a_fresh_nginx_error_log_reads_as_the_fixture():
    missing = [t for t in ("nginx", "curl") if shutil.which(t) is None] + (
        [] if glob.glob("/usr/sbin/php-fpm*") else ["php-fpm"])
    if missing or os.geteuid() != 0:
        unavailable(f"the nginx test needs root and {', '.join(missing) or 'nothing else'} "
                    "(install with: sudo bash .ci/install-daemons.sh)", ".ci/install-daemons.sh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = Path(tempfile.mkdtemp(prefix="logsalvage-nginx-"))
    try:
        os.chmod(root, 0o755)  # nginx's workers run as nobody, php-fpm's as www-data
        subprocess.run(["bash", str(DATA / "make.sh"), str(root / "run")], env={**os.environ, "PORT": str(port)},
                       check=True, timeout=60, capture_output=True)
        fresh = (root / "run/logs/error.log").read_text(encoding="utf-8")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert detect_format(fresh.encode())[0] == "nginx-error"
    errors, actions, issues = _shape(fresh)
    want_errors, want_actions, _ = _shape((DATA / "error.log").read_text(encoding="utf-8"))
    assert issues == [] and errors == want_errors and actions == want_actions
    assert ("web.error.php", "error", "GET", "/err.php", 4) in errors
