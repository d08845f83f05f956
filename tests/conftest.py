import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:  # running from a checkout without installing
    sys.path.insert(0, str(SRC))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # prerequisites.py, for every test directory
os.environ.setdefault("PYTHONPATH", str(SRC))


@pytest.fixture
def interrupt_nth_call(monkeypatch):
    """Make ``module.name`` raise KeyboardInterrupt on its nth call (a Ctrl-C mid-run); returns a
    function that puts the real one back."""
    def install(module, name: str, nth: int):
        real = getattr(module, name)
        calls = {"n": 0}

        def interrupting(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == nth:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, interrupting)
        return lambda: monkeypatch.setattr(module, name, real)

    return install
