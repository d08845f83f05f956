"""The hostile corpus (tests/hostile/corpus.py) ingests with no traceback, every line an event or
an issue, every path accounted for, and no single file taking more than 5 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from logsalvage.ingest import ingest
from logsalvage.store import CaseStore

from tests.hostile.corpus import build

ROOT = Path(__file__).resolve().parents[2]

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile") / "evidence"
    manifest = build(root)
    case = root.parent / "case"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    started = time.monotonic()
    cp = subprocess.run([sys.executable, "-m", "logsalvage", "ingest", str(root), "--case", str(case), "--json"],
                        capture_output=True, text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)
    return root, manifest, case, cp, time.monotonic() - started

def test_it_ingests_without_a_traceback(corpus):
    _, _, _, cp, seconds = corpus
    assert cp.returncode == 0, cp.stderr[-3000:]
    assert "Traceback" not in cp.stderr
    assert json.loads(cp.stdout)["events"] > 2000
    assert seconds < 120

def test_every_line_is_an_event_or_an_issue(corpus):
    _, _, case, _, _ = corpus
    with CaseStore(case, read_only=True) as store:
        sources = store.query("SELECT source_id, path, member, lines FROM sources")
        uncovered = {}
        for source_id, path, member, lines in sources:
            covered = set()
            for line_no, count in store.query("SELECT line_no, line_count FROM events WHERE source_id = ? "
                                              "AND line_no IS NOT NULL", [source_id]):
                covered.update(range(line_no, line_no + count))
            covered.update(n for (n,) in store.query("SELECT line_no FROM issues WHERE source_id = ? "
                                                     "AND line_no IS NOT NULL", [source_id]))
            missing = set(range(1, lines + 1)) - covered
            if missing:
                uncovered[f"{path}:{member}"] = sorted(missing)[:5]
    assert uncovered == {}

def test_every_path_is_accounted_for(corpus):
    root, manifest, case, _, _ = corpus
    with CaseStore(case, read_only=True) as store:
        inputs = {p for (p,) in store.query("SELECT path FROM inputs")}
        issues = {p for (p,) in store.query("SELECT DISTINCT path FROM issues")}
        for rel, why in manifest.items():
            assert rel in inputs, f"{rel!r} ({why}) has no inputs row"
            if why.startswith(("symlink", "a FIFO")):
                assert rel in issues, f"{rel!r} ({why}) skipped without an issue"

def test_the_tricks_lose_nothing(corpus):
    _, _, case, _, _ = corpus
    with CaseStore(case, read_only=True) as store:
        def events(path: str, member_like: str = "%") -> int:
            return store.query("SELECT count(*) FROM events e JOIN sources s USING (source_id) "
                               "WHERE s.path = ? AND COALESCE(s.member, '') LIKE ?", [path, member_like])[0][0]

        assert events("web01/var/log/messages-cr") == 1000  # CR-only line ends
        assert store.query("SELECT count(*) FROM issues WHERE path = 'web01/var/log/messages-cr' "
                           "AND reason LIKE '%CR%'")[0][0] == 1
        assert events("web01/backup/logs.zip") == 101  # two members of one name: both read
        assert events("web01/backup/shadowed.tar") == 50  # the symlink member shadows nothing
        assert events("web01/backup/many.tar.gz") == 1000
        bomb = "db01/var/log/messages-20170716.gz"
        assert events(bomb) == 1
        assert store.query("SELECT count(*) FROM issues WHERE path LIKE ? AND reason LIKE '%decompress%'",
                           [bomb + "%"])[0][0] >= 1
        # the access log's pathological lines: read (as records or issues), not lost
        assert events("web01/var/log/httpd/access_log") >= 4

@pytest.mark.slow
def test_no_single_file_takes_more_than_5_seconds(corpus, tmp_path):
    """Every file under 5 s, the tar.gz of 1000 one-line members too (~1.5 s: small sources are
    committed together, from memory; it took 35 s when each member was a transaction of its own)."""
    root, manifest, _, _, _ = corpus
    slow = {}
    for rel, why in manifest.items():
        path = root / rel
        if path.is_symlink() or not path.is_file():
            continue
        started = time.monotonic()
        ingest([path], tmp_path / rel.replace("/", "_").replace("\x1b", "E").replace("\x07", "B"), host="web01")
        seconds = time.monotonic() - started
        if seconds >= 5:
            slow[rel] = round(seconds, 1)
    assert slow == {}
