"""A server's binary logs in one evidence tree, through the command line: wtmp, a rotated and
compressed btmp, a sparse lastlog and a systemd journal — each read by its own format, none left
as unknown input; damaged copies give issues with offsets, never a traceback; the evidence tree is
left exactly as it was."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import struct
import subprocess
import sys

import pytest

import logsalvage.ingest_binary as ingest_binary
from binary_support import DATA, case_rows, tool, tree_state, undump
from logsalvage.ingest import ingest

MACHINE = "4a2b1c3d5e6f47a8b9c0d1e2f3a4b5c6"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "logsalvage", *args], capture_output=True, text=True, timeout=300)


def test_binary_logs_of_an_evidence_tree_through_the_cli(tmp_path):
    tool("journalctl")
    logs = tmp_path / "evidence/web01/var/log"
    wtmp = undump(DATA / "utmp/wtmp.txt", logs / "wtmp")
    btmp = undump(DATA / "utmp/btmp.txt", tmp_path / "plain/btmp")
    (logs / "btmp.1.gz").write_bytes(gzip.compress(btmp.read_bytes()))
    (logs / "wtmp.1").write_bytes(wtmp.read_bytes()[:5 * 384 + 100])  # copied while being written: cut short
    with open(logs / "lastlog", "wb") as fh:  # uids up to nobody's 65534, two of them logged in
        fh.truncate(65535 * 292)
        os.pwrite(fh.fileno(), struct.pack("<i32s256s", 1513063507, b"pts/0", b"203.0.113.9"), 1000 * 292)
        os.pwrite(fh.fileno(), struct.pack("<i32s256s", 1512900000, b"tty1", b""), 0)
    journal = lzma.decompress((DATA / "journal/system.journal.xz").read_bytes())
    jdir = logs / f"journal/{MACHINE}"
    jdir.mkdir(parents=True)
    (jdir / "system.journal").write_bytes(journal)
    cut = journal.find(b"Accepted password")
    (jdir / "system@0005601f85a52a80-5a1c3d2e1f0a9b8c.journal~").write_bytes(journal[:cut])
    before = tree_state(tmp_path / "evidence")

    ingested = run("ingest", str(tmp_path / "evidence"), "--case", str(tmp_path / "case"), "--json")
    assert ingested.returncode == 0 and "Traceback" not in ingested.stderr, ingested.stderr
    result = json.loads(ingested.stdout)
    assert result["inputs_by_role"] == {"log": 6}  # nothing unknown, unreadable or skipped
    got = {s["path"].split("/var/log/", 1)[1]: (s["format"], s["events"], s["issues"]) for s in result["sources"]}
    assert got == {
        "wtmp": ("wtmp", 15, 0),
        "wtmp.1": ("wtmp", 5, 1),
        "btmp.1.gz": ("btmp", 5, 0),
        "lastlog": ("lastlog", 2, 0),
        f"journal/{MACHINE}/system.journal": ("systemd-journal", 12, 0),
        f"journal/{MACHINE}/system@0005601f85a52a80-5a1c3d2e1f0a9b8c.journal~": ("systemd-journal", 3, 2),
    }
    assert tree_state(tmp_path / "evidence") == before

    summary = run("summary", "--case", str(tmp_path / "case"), "--json")
    assert summary.returncode == 0, summary.stderr
    data = json.loads(summary.stdout)
    assert {s["format"] for s in data["sources"]} == {"wtmp", "btmp", "lastlog", "systemd-journal"}
    assert data["hosts"][0]["formats"] == {"btmp": 5, "lastlog": 2, "systemd-journal": 15, "wtmp": 20}
    reasons = data["issues_by_reason"]
    assert any(r.startswith("truncated record: the last 100 bytes") for r in reasons)
    assert any(r.startswith("journal file cut short") for r in reasons)
    assert any(r.startswith("journalctl --verify") for r in reasons)


def test_binary_formats_are_listed_and_can_be_forced(tmp_path):
    listed = {f["id"]: f for f in json.loads(run("formats", "--json").stdout)}
    for fid in ("wtmp", "btmp", "utmp", "lastlog", "systemd-journal"):
        assert listed[fid]["assembler"].startswith("binary") and listed[fid]["source_of_truth"]
    # a wtmp whose first records were overwritten with text: forced, the records after them are read
    data = bytearray(undump(DATA / "utmp/wtmp.txt", tmp_path / "plain/wtmp").read_bytes())
    data[:3 * 384] = (b"overwritten\n" * 100)[:3 * 384]
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence/logins").write_bytes(bytes(data))
    forced = run("ingest", str(tmp_path / "evidence"), "--case", str(tmp_path / "case"), "--format", "wtmp",
                 "--json")
    assert forced.returncode == 0, forced.stderr
    [src] = json.loads(forced.stdout)["sources"]
    assert (src["format"], src["events"], src["issues"]) == ("wtmp", 12, 3)
    unknown = run("ingest", str(tmp_path / "evidence"), "--case", str(tmp_path / "case2"), "--format", "wtmpx")
    assert unknown.returncode == 2 and "systemd-journal" in unknown.stderr


def test_an_interrupted_ingest_of_binary_logs_resumes_without_doubling(tmp_path, interrupt_nth_call):
    logs = tmp_path / "evidence/web01/var/log"
    undump(DATA / "utmp/wtmp.txt", logs / "wtmp")
    undump(DATA / "utmp/btmp.txt", logs / "btmp")
    restore = interrupt_nth_call(ingest_binary, "record_chunks", 2)  # Ctrl-C while the second file is read
    with pytest.raises(KeyboardInterrupt):
        ingest([tmp_path / "evidence"], tmp_path / "case")
    restore()
    again = ingest([tmp_path / "evidence"], tmp_path / "case")
    assert again.sources_new == 2 and again.events == 20  # the batch was not committed: read again, whole
    once_more = ingest([tmp_path / "evidence"], tmp_path / "case")
    assert once_more.sources_known == 2 and once_more.events == 0
    counts = case_rows(tmp_path / "case", "SELECT format_id, count(*) FROM events GROUP BY 1 ORDER BY 1")
    assert counts == [("btmp", 5), ("wtmp", 15)]
