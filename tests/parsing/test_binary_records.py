"""The binary readers' pure parts: identification never claims a text log, fixed-size records cut
the same whatever the chunks, the export stream read field by field — and none of them raises on
bytes that are not what they expect."""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from logsalvage.parsing.binary import identify_binary
from logsalvage.parsing.binary.fixed import FixedRecords
from logsalvage.parsing.binary.journal import ExportError, entries
from logsalvage.parsing.binary.lastlog import LastlogFormat
from logsalvage.parsing.binary.utmp import USER_PROCESS, UtmpFormat

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
EXPORT = Path(__file__).resolve().parents[1] / "data" / "journal" / "entries.export"


class Collect:
    def __init__(self):
        self.events, self.issues = [], []

    def event(self, rec):
        self.events.append(rec)

    def issue(self, offset, length, line_no, reason, excerpt, event_offset=None):
        self.issues.append((offset, length, reason))


def utmp_record(kind: int, user: bytes, line: bytes, host: bytes, when: int, addr: bytes = bytes(16)) -> bytes:
    return struct.pack("<hHi32s4s32s256shhiii16s20s", kind, 0, 4211, line, line[-4:], user, host, 0, 0, 0, when, 0,
                       addr, bytes(20))


WTMP = b"".join(utmp_record(USER_PROCESS, b"user%d" % i, b"pts/%d" % i, b"203.0.113.%d" % i, 1513063507 + i,
                            bytes([203, 0, 113, i]) + bytes(12)) for i in range(40))


def test_no_log_of_the_corpus_is_taken_for_a_binary_format():
    if not CORPUS.is_dir():
        pytest.skip("corpus not present")
    seen = 0
    for root, _, files in os.walk(CORPUS):
        for name in files:
            path = Path(root) / name
            head = path.read_bytes()[:65536]
            seen += 1
            assert identify_binary(head, name, path.stat().st_size) is None, path
            # the name alone never decides: the same text named like a binary log is still not one
            for alias in ("wtmp", "btmp.1", "lastlog"):
                if head.strip(b"\x00"):
                    assert identify_binary(head, alias, path.stat().st_size) is None, (path, alias)
    assert seen > 100


@pytest.mark.parametrize("chunk", [384, 384 * 3, 384 * 7, len(WTMP)])
def test_records_are_cut_the_same_whatever_the_chunks(chunk):
    sink = Collect()
    reader = FixedRecords(UtmpFormat("wtmp"), sink)
    data = WTMP + b"tail"
    for pos in range(0, len(data), chunk):
        reader.feed(pos, data[pos:pos + chunk])
    reader.close()
    assert [r["_offset"] for r in sink.events] == [384 * i for i in range(40)]
    assert [r["source_ip"] for r in sink.events] == [f"203.0.113.{i}" for i in range(40)]
    assert sink.issues == [(len(WTMP), 4, sink.issues[0][2])] and "truncated record" in sink.issues[0][2]


def test_zero_records_and_holes_are_one_run():
    sink = Collect()
    reader = FixedRecords(UtmpFormat("wtmp"), sink)
    reader.feed(0, WTMP[:384])
    reader.feed(384, bytes(384 * 2))
    reader.hole(384 * 3, 384 * 10)
    reader.feed(384 * 13, WTMP[384:768])
    reader.close()
    assert [r["_offset"] for r in sink.events] == [0, 384 * 13]
    assert [(o, n) for o, n, _ in sink.issues] == [(384, 384 * 12)]


def test_export_stream_fields_text_and_binary():
    got = list(entries(io.BytesIO(EXPORT.read_bytes())))
    assert len(got) == 13
    assert got[1]["MESSAGE"] == b"Failed password for invalid user oracle from 203.0.113.9 port 40022 ssh2"
    assert got[11]["MESSAGE"] == b"rsync failed:\nconnection refused"  # written binary-safe
    assert got[12]["MESSAGE"] == b"bad byte \xff in a name"
    with pytest.raises(ExportError):
        list(entries(io.BytesIO(EXPORT.read_bytes()[:-30])))  # ends inside an entry
    with pytest.raises(ExportError):
        list(entries(io.BytesIO(b"MESSAGE\n" + (1 << 62).to_bytes(8, "little") + b"x\n\n")))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=4000), st.sampled_from(["wtmp", "btmp", "lastlog"]))
def test_any_bytes_give_records_or_issues_never_an_exception(blob, what):
    sink = Collect()
    reader = FixedRecords(LastlogFormat() if what == "lastlog" else UtmpFormat(what), sink)
    reader.feed(0, blob)
    reader.close()
    identify_binary(blob, what, len(blob))
    try:
        list(entries(io.BytesIO(blob)))
    except ExportError:
        pass
