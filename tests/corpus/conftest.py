"""The shared corpus of real logs (``../shared/corpus`` beside the repository), when it is there."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus_support import CORPUS_ROOT


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (CORPUS_ROOT / "MANIFEST.tsv").is_file():
        pytest.skip(f"corpus not found at {CORPUS_ROOT}")
    return CORPUS_ROOT
