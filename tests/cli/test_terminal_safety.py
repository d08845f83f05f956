"""Evidence names never act on the analyst's terminal (issue 13, item 14): a host directory, file
and archive member named with escape sequences (set the window title, clear the screen) and a
right-to-left override are shown as escapes by ingest, summary, continuity and detect, in their
messages, errors and progress bar; ``--json`` still carries the exact names."""

from __future__ import annotations

import io
import json
import os
import select
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from logsalvage.textsafe import json_text, printable, printable_data

ROOT = Path(__file__).resolve().parents[2]
TITLE, CLEAR, RLO = "\x1b]0;pwned\x07", "\x1b[2J", "\u202e"
HOST = f"web{TITLE}{CLEAR}{RLO}01"
NOTE = f"notes{TITLE}{RLO}txt.exe"  # not a log: listed among the other inputs
ARCHIVE = f"old{CLEAR}.tar"
MEMBER = f"member{TITLE}{RLO}.txt"
PG_LOG = f"postgresql-{TITLE}.log"  # read by the reference engine: named by ingest and summary
RAW = ("\x1b", "\x07", RLO)
ESCAPED = ("\\x1b]0;pwned\\x07", "\\x1b[2J", "\\u202e")


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT / "src"), PYTHONIOENCODING="utf-8", COLUMNS="200")


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True,
                          encoding="utf-8", env=_env(), timeout=300)


def _make_evidence(ev: Path) -> None:
    host = ev / HOST
    (host / "var/log/httpd").mkdir(parents=True)
    (host / "var/log/messages").write_text("".join(
        f"Jul 15 08:{m:02d}:01 web01 CROND[{100 + m}]: (root) CMD (run-parts /etc/cron.hourly)\n" for m in range(60)))
    (host / f"var/log/httpd/access{CLEAR}{RLO}gol.log").write_text(
        '79.172.212.37 - - [15/Jul/2017:08:58:21 +0900] "GET /wp-contacts.php?c=id HTTP/1.1" 200 54 "-" "Wget/1.17.1"\n'
        '79.172.212.37 - - [15/Jul/2017:08:58:40 +0900] "GET /wp-contacts.php?c=uname%20-a HTTP/1.1" 200 120 "-" '
        '"Wget/1.17.1"\n')
    (host / NOTE).write_text("hello, this is not a log at all\njust prose\n")
    pg = host / "var/lib/pgsql/data/pg_log"
    pg.mkdir(parents=True)
    (pg / PG_LOG).write_text("".join(f"2017-07-15 08:{m:02d}:00 JST LOG:  checkpoint starting: time\n"
                                     for m in range(20)))
    with tarfile.open(host / ARCHIVE, "w") as tf:
        data = b"more prose, not a log\n"
        info = tarfile.TarInfo(MEMBER)
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def case(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """(case dir, the text-mode ingest that made it)."""
    root = tmp_path_factory.mktemp("terminal")
    _make_evidence(root / "ev")
    r = run("ingest", str(root / "ev"), "--case", str(root / "case"))
    assert r.returncode == 0, r.stderr
    return root / "case", r


def _assert_safe(r: subprocess.CompletedProcess, *must_show: str) -> None:
    for stream in (r.stdout, r.stderr):
        assert not [c for c in RAW if c in stream], stream
    for text in must_show:
        assert text in r.stdout, (text, r.stdout)


def test_text_mode_shows_evidence_names_as_escapes(case):
    path, ingested = case
    _assert_safe(ingested, printable(PG_LOG))
    assert (path / "case.duckdb").exists()

    summary = run("summary", "--case", str(path))
    assert summary.returncode == 0, summary.stderr
    _assert_safe(summary, printable(HOST), printable(NOTE), printable(ARCHIVE) + "!" + printable(MEMBER),
                 printable(PG_LOG), *ESCAPED)

    continuity = run("continuity", "--case", str(path))
    assert continuity.returncode == 0, continuity.stderr
    _assert_safe(continuity, printable(HOST) + ":")

    detect = run("detect", "--case", str(path))
    assert detect.returncode == 0, detect.stderr
    _assert_safe(detect, printable(HOST), "web_webshell")


def test_json_mode_keeps_the_exact_names(case):
    path, _ = case
    outs = {}
    for command in ("summary", "continuity", "detect"):
        r = run(command, "--case", str(path), "--json")
        assert r.returncode == 0, r.stderr
        # the same JSON value, with what a terminal would act on written as \u escapes
        assert not [c for c in RAW if c in r.stdout]
        outs[command] = json.loads(r.stdout)
    summary = outs["summary"]
    assert [h["host"] for h in summary["hosts"]] == [HOST]
    others = {i["path"] for i in summary["other_inputs"]}
    assert {f"{HOST}/{NOTE}", f"{HOST}/{ARCHIVE}!{MEMBER}"} <= others
    assert any(s["path"].endswith(f"/{PG_LOG}") for s in summary["sources"])
    assert [h["name"] for h in outs["continuity"]["hosts"]] == [HOST]
    assert {f["host"] for f in outs["detect"]["findings"]} == {HOST}


def test_errors_show_names_as_escapes(tmp_path):
    r = run("ingest", str(tmp_path / f"gone{TITLE}{RLO}"), "--case", str(tmp_path / "c"))
    assert r.returncode == 2 and "does not exist" in r.stderr
    assert not [c for c in RAW if c in r.stderr + r.stdout]
    assert printable(f"gone{TITLE}{RLO}") in r.stderr and r.stderr.count("\n") == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a pseudo-terminal")
def test_progress_bar_on_a_terminal_shows_names_as_escapes(tmp_path):
    """With stderr a terminal, ingest draws a progress bar naming each file: the names are escaped
    (the bar's own colours and cursor moves are the only escape sequences)."""
    import pty

    _make_evidence(tmp_path / "ev")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "logsalvage", "ingest", str(tmp_path / "ev"), "--case",
                             str(tmp_path / "case")], stdout=subprocess.PIPE, stderr=slave, env=_env())
    os.close(slave)
    chunks, deadline = [], time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        stdout = proc.communicate(timeout=60)[0].decode("utf-8")
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    drawn = b"".join(chunks).decode("utf-8", errors="replace")
    assert proc.returncode == 0, drawn
    assert "ingest" in drawn and "\\x1b]0;pwned\\x07" in drawn  # the bar was drawn, with the names escaped
    for raw in (TITLE, "\x1b]0;", CLEAR, "\x07", RLO):
        assert raw not in drawn
    assert not [c for c in RAW if c in stdout]


def test_printable():
    assert printable("web01 /var/log/é ✓ 日本") == "web01 /var/log/é ✓ 日本"
    assert printable("a\nb\tc\rd") == "a\\nb\\tc\\rd"  # one name stays one line
    assert printable("\x00\x7f\x9b\u200b\u2066\u2069\u2028\u2029\ufeff") == (
        "\\x00\\x7f\\x9b\\u200b\\u2066\\u2069\\u2028\\u2029\\ufeff")
    assert printable("x\udcff\U000e0001") == "x\\udcff\\U000e0001"  # an undecodable byte; a tag character
    assert printable(3) == "3"
    data = {"host": HOST, "n": 2, "list": [RLO, None], f"k{CLEAR}": (1, "a\nb")}
    assert printable_data(data) == {"host": printable(HOST), "n": 2, "list": ["\\u202e", None],
                                    "k\\x1b[2J": (1, "a\\nb")}
    value = {"name": HOST + "\x85\U000e0001\udcff é", "n": [1, "a\nb"]}
    text = json_text(value, indent=2, ensure_ascii=False)
    assert json.loads(text) == value and "é" in text and text.isprintable() is False  # layout newlines only
    assert all(ch.isprintable() for ch in text.replace("\n", ""))
