"""Interruptions and a full disk end in one line and a documented exit code, never a traceback:
SIGTERM is handled like Ctrl-C (130 / 143), the open transaction is rolled back, staged files are
removed, and running the command again completes the case with nothing missing or doubled."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from logsalvage import cli
from logsalvage.staging import StageWriter
from logsalvage.store import CaseStore

ROOT = Path(__file__).resolve().parents[2]
FILES, LINES = 6, 40_000


def _evidence(root: Path) -> Path:
    d = root / "ev" / "db01" / "var" / "log"
    d.mkdir(parents=True)
    for f in range(FILES):
        with open(d / f"messages-2017120{f + 1}", "w") as fh:
            for i in range(LINES):
                s = f * LINES + i
                fh.write(f"Dec {1 + s // 86400 % 28:2d} {s // 3600 % 24:02d}:{s // 60 % 60:02d}:{s % 60:02d} db01 "
                         f"sshd[{1000 + i}]: Accepted publickey for admin from 192.0.2.{i % 250} port {1024 + i}\n")
    return root / "ev"


def _cmd(ev: Path, case: Path) -> list[str]:
    return [sys.executable, "-m", "logsalvage", "ingest", str(ev), "--case", str(case), "--host", "db01",
            "--engine", "reference", "--json"]


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_ingest_exits_cleanly_and_a_rerun_completes(tmp_path, sig, code):
    ev = _evidence(tmp_path)
    case = tmp_path / "case"
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen(_cmd(ev, case), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    # once the first source is committed and the next one is being parsed (staging files are
    # named by source, and a source's are removed when it is committed)
    seen: set[str] = set()
    while proc.poll() is None and time.monotonic() < deadline:
        seen |= {p.name.split(".")[0] for p in (case / "staging").glob("*.events.parquet")}
        if len(seen) >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("the ingest finished before the signal arrived")
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err and err.strip().count("\n") == 0, err
    assert ("terminated" if sig == signal.SIGTERM else "interrupted") in err
    assert not list((case / "staging").glob("*.parquet"))
    r = subprocess.run(_cmd(ev, case), capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    with CaseStore(case, read_only=True) as store:
        assert store.query("SELECT count(*), count(DISTINCT event_id) FROM events")[0] == (FILES * LINES,) * 2
        assert store.query("SELECT count(*) FROM sources")[0][0] == FILES


def test_an_interrupt_inside_a_database_statement_is_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise duckdb.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(cli, "cmd_formats", interrupted)
    assert cli.main(["formats"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and err.count("\n") == 1


def test_an_interrupted_commit_is_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise RuntimeError("Query interrupted")  # what DuckDB's client raises when Ctrl-C lands in COMMIT

    monkeypatch.setattr(cli, "cmd_formats", interrupted)
    assert cli.main(["formats"]) == 130
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.parametrize("inner, code", [("KeyboardInterrupt", 130), ("Terminated", 143)])
def test_a_signal_wrapped_by_the_engine_keeps_its_exit_code(monkeypatch, capsys, inner, code):
    def wrapped(args):  # what DuckDB raises when the signal lands while it reads a registered Arrow table
        raise duckdb.InvalidInputException(
            f"Invalid Input Error: counting the rows of the object registered as 'c0_h' failed: {inner}")

    monkeypatch.setattr(cli, "cmd_formats", wrapped)
    assert cli.main(["formats"]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resume" in err


@pytest.mark.parametrize("becomes", [KeyboardInterrupt, duckdb.InterruptException, RuntimeError])
def test_sigterm_turned_into_another_exception_on_its_way_out_is_still_exit_143(monkeypatch, capsys, becomes):
    """A library that catches the exception SIGTERM's handler raised (Arrow's and DuckDB's signal
    checks) raises its own — KeyboardInterrupt, an interrupt error — which must not become 130."""
    def terminated_inside_a_library(args):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler runs here
        except cli.Terminated:
            raise (becomes("Query interrupted") if becomes is RuntimeError else becomes()) from None
        return 0

    monkeypatch.setattr(cli, "cmd_formats", terminated_inside_a_library)
    assert cli.main(["formats"]) == 143
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "terminated" in err
    # the next run starts without the mark: a plain Ctrl-C is 130 again
    monkeypatch.setattr(cli, "cmd_formats", lambda args: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert cli.main(["formats"]) == 130


def test_a_full_temporary_directory_is_one_line_not_a_traceback(monkeypatch, capsys, tmp_path):
    def fills_the_disk(args):
        con = duckdb.connect(str(tmp_path / "x.duckdb"))
        con.execute("SET memory_limit = '20MB'; SET max_temp_directory_size = '1MB'; SET threads = 1")
        con.execute("SELECT * FROM range(5000000) t(i) ORDER BY hash(i)").fetchall()

    monkeypatch.setattr(cli, "cmd_formats", fills_the_disk)
    assert cli.main(["formats"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk space" in err and "resume" in err


def test_a_full_disk_while_staging_names_the_staging_file(tmp_path):
    writer = StageWriter(tmp_path, "abc")
    writer._writers["events"] = _Full()
    with pytest.raises(OSError) as exc:
        writer.event_table(pa.table({"a": [1]}))
    assert exc.value.filename == str(tmp_path / "abc.events.parquet")
    assert "No space left" in str(exc.value) or "space" in exc.value.strerror


class _Full:
    def write_table(self, *a, **k):
        raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")
