"""Fixtures of the audit tests: the demo's evidence (built once per session) and private copies of
its configuration to edit. Helpers live in audit_support.py (a conftest is not importable by name
when several test directories have one)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from logsalvage.demo import generate

DEMO_DAYS = 40


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """The demo's evidence of the incident (small scale), generated once."""
    out = tmp_path_factory.mktemp("audit-demo")
    generate(out, days=DEMO_DAYS)
    return out


@pytest.fixture
def demo_copy(demo_dir, tmp_path) -> Path:
    """A private copy of the demo's configuration (logs and the disk image left out), to edit."""
    src = demo_dir / "evidence"
    dst = tmp_path / "evidence"

    def skip(directory, names):
        return [n for n in names if n in ("image", "backup") or n.startswith(("access_log", "error_log", "messages"))]
    shutil.copytree(src, dst, ignore=skip)
    return dst
