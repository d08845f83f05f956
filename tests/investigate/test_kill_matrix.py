"""Interrupted at a random moment — SIGKILL, SIGINT or SIGTERM — ``ingest``, ``carve`` and
``investigate`` leave a case that the next run completes to exactly what an uninterrupted run
gives: the same events, the same findings.json and the same report.html (apart from the
documented ``generated`` time and the case's own path).

Budget: 3 commands × 3 signals, one trial each at a moment drawn from a seeded generator over
the command's own uninterrupted duration; about 3 minutes on 2 cores."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from logsalvage.store import CaseStore

from tests.investigate.test_investigate import CONFIG, _evidence
from tests.investigate.test_resume_carve import _image

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
SIGNALS = {"SIGKILL": signal.SIGKILL, "SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    ev = _evidence(root)
    _image(ev / "db01" / "image" / "sdb1.dd")
    config = root / "case.yaml"
    config.write_text(json.dumps(CONFIG.raw))
    ref = root / "reference"
    started = time.monotonic()
    _run(_command("investigate", ev, ref, config))
    return ev, config, ref, time.monotonic() - started


def _command(step: str, ev: Path, case: Path, config: Path) -> list[str]:
    base = [sys.executable, "-m", "logsalvage"]
    if step == "carve":
        return [*base, "carve", str(ev / "db01" / "image" / "sdb1.dd"), "--case", str(case), "--host", "db01",
                "--config", str(config)]
    return [*base, step, str(ev), "--case", str(case), "--config", str(config)]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    cp = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=900, stdin=subprocess.DEVNULL)
    assert cp.returncode == 0, cp.stderr[-3000:]
    return cp


def _events(case: Path) -> list[tuple]:
    with CaseStore(case, read_only=True) as store:
        return store.query("SELECT event_id, ts_utc, raw, recovered FROM events ORDER BY event_id")


def _normal(text: str, case: Path) -> str:
    """The text with the case's path and the findings' ``generated`` time (wherever the report shows
    it: as written in findings.json, and as the report's time element in the case's zone with UTC
    on hover) taken out: the two things that may differ between runs."""
    generated = json.loads((case / "findings.json").read_text(encoding="utf-8"))["generated"]
    utc = datetime.fromisoformat(generated).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = re.sub(f'<time datetime="{re.escape(utc)}"[^>]*>[^<]*</time>', "GENERATED", text)
    return text.replace(str(case), "CASE").replace(generated, "GENERATED")


@pytest.mark.slow
@pytest.mark.parametrize("step", ["ingest", "carve", "investigate"])
@pytest.mark.parametrize("sig", list(SIGNALS))
def test_an_interrupted_run_completes_to_the_same_case(world, tmp_path, step, sig):
    ev, config, ref, duration = world
    case = tmp_path / "case"
    rng = random.Random(f"{step}-{sig}")
    if step == "carve":  # carving needs the host's settings from an ingest first
        _run(_command("ingest", ev, case, config))
    proc = subprocess.Popen(_command(step, ev, case, config), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=ENV, stdin=subprocess.DEVNULL)
    # ingest and carve of this evidence take 1-2 s, investigate about 10 s
    time.sleep(rng.uniform(0.3, 1.2) if step != "investigate" else rng.uniform(0.5, duration * 0.8))
    proc.send_signal(SIGNALS[sig])
    _, err = proc.communicate(timeout=300)
    assert "Traceback" not in err, err[-3000:]
    # the documented exit code; or killed by the signal itself when it came before the handler was
    # set or after the command had finished (or 0: it finished first)
    assert proc.returncode in {0, -SIGNALS[sig], {"SIGKILL": -9, "SIGINT": 130, "SIGTERM": 143}[sig]}, err[-2000:]
    _run(_command(step, ev, case, config))  # the same command again: resumes
    _run(_command("investigate", ev, case, config))
    assert _events(case) == _events(ref)
    for name in ("findings.json", "report.html"):
        assert _normal((case / name).read_text(encoding="utf-8"), case) == \
            _normal((ref / name).read_text(encoding="utf-8"), ref), name
