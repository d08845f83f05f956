"""The hostile case, built once per session for the report tests (static and in a browser)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # hostile_case.py, whatever pytest's import mode

import hostile_case


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """(case dir, findings, model, html) of the hostile case."""
    return hostile_case.build(tmp_path_factory.mktemp("hostile"))
