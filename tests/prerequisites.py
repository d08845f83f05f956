"""What a test needs from the machine (a daemon, a browser, a tool): without it the test skips,
except under ``CI=true``, where it fails, because CI promises to install everything."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str, provider: str = "scripts/test.sh") -> NoReturn:
    """Skip for ``reason``; under CI, fail naming the ``provider`` that should have installed it."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: {provider} should have provided it)", pytrace=False)
    pytest.skip(reason)
