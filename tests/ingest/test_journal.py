"""systemd journal files read through journalctl: each entry an event with the event type and
fields the same message has in a syslog file (the syslog format's refinements), the journal file
left as it was, a corrupt or cut-short journal read as far as it goes with issues saying where."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile

import pytest

import logsalvage.ingest_binary as ingest_binary
from binary_support import DATA, case_events, case_rows, tool, tree_state
from journal_fixture import ENTRIES, JOURNAL_REMOTE, MACHINE, build_journal, export_bytes
from logsalvage.ingest import ingest
from logsalvage.parsing.engine import parse_text
from logsalvage.parsing.formats import shipped_formats

JOURNAL = lzma.decompress((DATA / "journal/system.journal.xz").read_bytes())
# what the syslog format reads in the same messages, for every field but these (how it was written)
NOT_COMPARED = {"ts_raw", "raw", "log_level"}


@pytest.fixture(autouse=True)
def _journalctl():
    tool("journalctl")


def _evidence(tmp_path, data: bytes = JOURNAL, name: str = "system.journal"):
    path = tmp_path / f"ev/web01/var/log/journal/{MACHINE}/{name}"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    return path


def _issues(case):
    return case_rows(case, 'SELECT "offset", reason FROM issues ORDER BY "offset" NULLS FIRST, reason')


def test_journal_entries_mean_what_the_same_syslog_lines_mean(tmp_path):
    _evidence(tmp_path)
    before = tree_state(tmp_path / "ev")
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert (src["format"], src["events"], src["issues"], src["lines"]) == ("systemd-journal", 12, 0, 13)
    assert "read in place" in src["parser"]
    assert tree_state(tmp_path / "ev") == before  # journalctl read it where it lies and wrote nothing
    events = case_events(tmp_path / "case", "systemd-journal")

    syslog_lines = [line for _, _, line in ENTRIES if line]
    expected, issues = parse_text(shipped_formats()["syslog"], "\n".join(syslog_lines) + "\n")
    assert not issues and len(expected) == 10  # PostgreSQL's two chunks are one message
    for want, got in zip(expected, events):
        fields = {k: v for k, v in want.items() if k not in NOT_COMPARED and k[0] != "_" and v is not None}
        assert {k: got.get(k) for k in fields} == fields, want["raw"]

    failed = [e for e in events if e["event_type"] == "auth.ssh.failed"]
    assert [(e["user_name"], e["source_ip"], e["source_port"], e["outcome"]) for e in failed] == [
        ("oracle", "203.0.113.9", 40022, "failure"), ("root", "203.0.113.9", 40031, "failure")]
    first = failed[0]
    assert first["ts_utc"].isoformat() == "2017-12-12T07:24:06+00:00" and first["log_host"] == "web01"
    assert (first["program"], first["process_pid"], first["log_level"]) == ("sshd", 2201, "info")
    assert (first["systemd_unit"], first["journal_transport"], first["journal_uid"]) == ("ssh.service", "syslog", 0)
    assert first["journal_boot_id"] == "0f2c7a1e9b6d4c3a8e5f1d2c3b4a5968"
    assert first["journal_cursor"].startswith("s=") and ";i=2;" in first["journal_cursor"]
    assert (first["offset"], first["line_no"], first["journal_entry"]) == (1, 2, 1)  # the entry's index
    pg = next(e for e in events if e["event_type"] == "postgresql.duration")
    assert pg["statement"] == "select 1 from customers" and pg["line_count"] == 2
    two_lines = next(e for e in events if e["program"] == "backup.sh")
    assert two_lines["message"] == "rsync failed:\nconnection refused" and two_lines["log_level"] == "warning"
    assert events[-1]["message"] == "bad byte \\xff in a name" and events[-1]["encoding"].startswith("invalid")
    assert next(e for e in events if e["program"] == "kernel")["log_level"] == "notice"


def test_compressed_and_archived_journals_are_read_from_a_copy(tmp_path):
    _evidence(tmp_path, gzip.compress(JOURNAL), "system@0005601f85a52a80-5a1c3d2e1f0a9b8c.journal~.gz")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:xz") as tar:
        data = JOURNAL[:len(JOURNAL) - 4096] + bytes(4096)  # another copy: the same entries, other bytes
        info = tarfile.TarInfo(f"var/log/journal/{MACHINE}/system.journal")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (tmp_path / "ev/web01/backup").mkdir(parents=True)
    (tmp_path / "ev/web01/backup/journal.tar.xz").write_bytes(buf.getvalue())
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    assert [(s["format"], s["events"], s["issues"]) for s in result.sources] == [("systemd-journal", 12, 0)] * 2
    assert all("decompressed copy" in s["parser"] for s in result.sources)
    events = case_events(tmp_path / "case", "systemd-journal")
    halves = [[(e["event_type"], e["message"], e["ts_utc"]) for e in events if e["source_path"] == p]
              for p in sorted({e["source_path"] for e in events})]
    assert halves[0] == halves[1]
    assert not list((tmp_path / "case").rglob("journal-*"))  # the copies are gone


def test_a_corrupt_journal_keeps_its_entries_and_says_where(tmp_path):
    data = bytearray(JOURNAL)
    at = data.find(b"(nobody) CMD")  # the cron entry's message, inside its data object
    data[at - 48:at + 16] = b"\xff" * 64
    _evidence(tmp_path, bytes(data))
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert src["format"] == "systemd-journal" and src["issues"] >= 1
    events = case_events(tmp_path / "case", "systemd-journal")
    assert len(events) == 12 and {"sshd", "sudo", "postgres", "vsftpd"} <= {e["program"] for e in events}
    [cron] = [e for e in events if e["program"] == "CRON"]  # its other fields came out, its message did not
    assert not cron["message"] and cron["event_type"] == "cron"  # as a cron line with no message
    offsets = [o for o, reason in _issues(tmp_path / "case") if "journalctl --verify" in reason]
    assert offsets and all(at - 4096 < o < at + 4096 for o in offsets)  # where the damage is


def test_a_cut_short_journal_gives_the_entries_before_the_cut(tmp_path):
    cut = JOURNAL.find(b"(nobody) CMD") + 4
    _evidence(tmp_path, JOURNAL[:cut])
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert "padded with zeros" in src["parser"]
    programs = [e["program"] for e in case_events(tmp_path / "case", "systemd-journal")]
    assert programs[:5] == ["kernel", "sshd", "sshd", "sshd", "sshd"] and len(programs) < 12
    issues = _issues(tmp_path / "case")
    assert any(o == cut and reason.startswith("journal file cut short") for o, reason in issues)
    assert not list((tmp_path / "case").rglob("journal-*"))


def test_not_a_journal_after_its_signature(tmp_path):
    _evidence(tmp_path, b"LPKSHHRH" + bytes(200))
    result = ingest([tmp_path / "ev"], tmp_path / "case")
    [src] = result.sources
    assert (src["format"], src["events"]) == ("systemd-journal", 0)
    assert any("journalctl could not read" in r for _, r in _issues(tmp_path / "case"))


def test_without_journalctl_the_journal_is_recorded_unread_then_read(tmp_path, monkeypatch):
    _evidence(tmp_path)
    monkeypatch.setattr(ingest_binary, "journalctl", lambda: None)
    first = ingest([tmp_path / "ev"], tmp_path / "case")
    assert first.sources == [] and first.issues == 1
    [(role, detail)] = case_rows(tmp_path / "case", "SELECT role, detail FROM inputs")
    assert role == "unreadable" and "journalctl is not installed" in detail
    monkeypatch.undo()
    again = ingest([tmp_path / "ev"], tmp_path / "case")  # installed since: read now
    assert [(s["format"], s["events"]) for s in again.sources] == [("systemd-journal", 12)]


def test_the_fixture_is_what_systemd_journal_remote_writes(tmp_path):
    """tests/data/journal made again from its entries by systemd-journal-remote reads the same."""
    tool(JOURNAL_REMOTE)
    fresh = tmp_path / "fresh/system.journal"
    fresh.parent.mkdir()
    build_journal(export_bytes(), fresh)
    assert (DATA / "journal/entries.export").read_bytes() == export_bytes()
    _evidence(tmp_path, fresh.read_bytes())
    ingest([tmp_path / "ev"], tmp_path / "case")
    made = [(e["event_type"], e["message"], e["ts_utc"]) for e in case_events(tmp_path / "case", "systemd-journal")]
    _evidence(tmp_path / "b", JOURNAL)
    ingest([tmp_path / "b/ev"], tmp_path / "b/case")
    kept = [(e["event_type"], e["message"], e["ts_utc"]) for e in case_events(tmp_path / "b/case", "systemd-journal")]
    assert made == kept and len(made) == 12


def test_a_host_whose_system_log_is_only_its_journal(tmp_path):
    """Detectors that read "the syslog" read the journal too: Apache stopped and back, with the
    kernel's boot message in between only in the journal, is a reboot, not a restart."""
    from logsalvage.detect.run import run_detection
    from logsalvage.store import CaseStore

    _evidence(tmp_path)  # the kernel's 'Linux version …' at 2017-12-12 07:23:06 UTC
    error_log = tmp_path / "ev/web01/var/log/httpd/error_log"
    error_log.parent.mkdir(parents=True)
    error_log.write_text("[Tue Dec 12 07:22:00 2017] [notice] caught SIGTERM, shutting down\n"
                         "[Tue Dec 12 07:25:00 2017] [notice] Apache/2.2.15 (Unix) configured -- "
                         "resuming normal operations\n")
    ingest([tmp_path / "ev"], tmp_path / "case")
    with CaseStore(tmp_path / "case") as store:
        found = run_detection(store)
    kinds = {m["kind"] for m in found["milestones"]}
    assert "reboot" in kinds and "web_server_restart" not in kinds
