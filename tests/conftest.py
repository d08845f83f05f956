import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:  # running from a checkout without installing
    sys.path.insert(0, str(SRC))
os.environ.setdefault("PYTHONPATH", str(SRC))
