"""systemd journal entries, as ``journalctl -o export`` serialises them, to records.

The journal file itself is read by journalctl (``sources.journalctl``): this module reads the
export format (systemd's "Journal Export Format": ``FIELD=value`` lines, a field holding a
newline or binary data as ``FIELD``, a little-endian 64-bit length, the bytes and a newline; a
blank line ends an entry) and maps an entry's fields to the canonical ones. Then the syslog
format's own refinements (``formats/syslog.yaml``: sshd, cron, sudo, FTP daemons, PostgreSQL …,
chosen by program) give the record the event type and fields the same message has when read
from a syslog file; PostgreSQL's ``[seq-chunk]`` messages are joined as there.

A journal entry has no byte offset that journalctl shows: a record's ``offset`` is the entry's
index in the file (0-based; ``line_no`` is the index + 1) and its ``extra`` keeps the entry's
``__CURSOR``, which ``journalctl --file F --cursor C`` finds again.
"""

from __future__ import annotations

from typing import BinaryIO, Iterator

from logsalvage.parsing.binary.fields import LATEST, iso_utc, record, stamp_from_epoch
from logsalvage.parsing.engine import LineParser, Sink, decode, excerpt, join_pg_chunks
from logsalvage.parsing.formats import FormatSpec

PRIORITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
# the fields asked of journalctl (``--output-fields``); the cursor and timestamps always come
FIELDS = ("MESSAGE", "SYSLOG_IDENTIFIER", "_COMM", "_PID", "SYSLOG_PID", "_HOSTNAME", "PRIORITY",
          "SYSLOG_FACILITY", "_SYSTEMD_UNIT", "_TRANSPORT", "_BOOT_ID", "_UID")
MAX_FIELD = 64 << 20  # a binary field longer than this is not journalctl's output


class ExportError(Exception):
    """The export stream is not in the export format (it ends inside an entry, a length is absurd)."""


def entries(stream: BinaryIO) -> Iterator[dict[str, bytes]]:
    """Entries of an export stream, each a mapping of field name to value (the first of a name
    that occurs twice: journalctl writes every value, the fields mapped here have one)."""
    fields: dict[str, bytes] = {}
    while True:
        line = stream.readline(MAX_FIELD)
        if not line:
            if fields:
                raise ExportError("the export stream ends inside an entry")
            return
        if line == b"\n":
            if fields:
                yield fields
                fields = {}
            continue
        if not line.endswith(b"\n"):
            raise ExportError(f"a field is cut short or longer than {MAX_FIELD} bytes")
        name, eq, value = line[:-1].partition(b"=")
        if not eq:  # binary-safe form: a length and the bytes follow
            size_b = stream.read(8)
            size = int.from_bytes(size_b, "little") if len(size_b) == 8 else -1
            if not 0 <= size <= MAX_FIELD:
                raise ExportError(f"field {name[:40]!r} has no valid length")
            value = stream.read(size)
            if len(value) != size or stream.read(1) != b"\n":
                raise ExportError(f"field {name[:40]!r} is cut short")
        fields.setdefault(name.decode("ascii", "replace"), value)


def _int(value: bytes | None) -> int | None:
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and -(1 << 63) <= number < (1 << 63) else None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("utf-8", "backslashreplace")


class JournalRecords:
    """Journal entries in, records out to ``sink``, refined with the syslog format ``syslog``."""

    def __init__(self, syslog: FormatSpec, sink: Sink):
        self.parser = LineParser(syslog)
        self.sink = sink
        self.entries = 0
        self.pg_open: dict[int, tuple[dict, list[str], object]] = {}  # pid -> a PostgreSQL message being joined

    def entry(self, index: int, fields: dict[str, bytes]) -> None:
        self.entries += 1
        rec = self.record(index, fields)
        self.parser.refine(rec)
        if "_pg" in rec:
            self._pg(rec)
        else:
            self.sink.event(rec)

    def record(self, index: int, fields: dict[str, bytes]) -> dict:
        realtime = _int(fields.get("__REALTIME_TIMESTAMP"))
        dated = realtime is not None and 0 < realtime < LATEST * 1_000_000
        stamp = stamp_from_epoch(*divmod(realtime, 1_000_000)) if dated else None
        text, valid = decode(fields.get("MESSAGE", b""))
        message = text.lstrip(" ")  # as the syslog format reads 'prog: msg' (sudo's message begins with spaces)
        program = _text(fields.get("SYSLOG_IDENTIFIER")) or _text(fields.get("_COMM"))
        pid = _int(fields.get("_PID")) or _int(fields.get("SYSLOG_PID"))
        host = _text(fields.get("_HOSTNAME"))
        priority = _int(fields.get("PRIORITY"))
        canon = {"program": program, "process_pid": pid, "log_host": host,
                 "log_level": PRIORITIES[priority] if priority is not None and 0 <= priority < 8 else None,
                 "journal_cursor": _text(fields.get("__CURSOR")), "journal_entry": index,
                 # named apart from what the refinements capture from the message (PAM's 'uid=')
                 "journal_boot_id": _text(fields.get("_BOOT_ID")), "systemd_unit": _text(fields.get("_SYSTEMD_UNIT")),
                 "journal_transport": _text(fields.get("_TRANSPORT")), "journal_uid": _int(fields.get("_UID")),
                 "syslog_facility": _int(fields.get("SYSLOG_FACILITY"))}
        if not valid:
            canon["encoding"] = "invalid-utf8 (backslash-escaped)"
        when = _time_text(realtime) if stamp is not None else "-"
        raw = f"{when} {host or '-'} {program or '-'}{f'[{pid}]' if pid else ''}: {text}"
        ts_raw = str(realtime) if realtime is not None else None
        return record(index, 0, index + 1, self.parser.spec.event_type, stamp, ts_raw, raw, message, canon)

    # -- PostgreSQL through syslog: [seq-chunk] messages joined as the syslog assembler joins them ----------
    def _pg(self, rec: dict) -> None:
        pid = rec.get("process_pid") or -1
        chunk, seq = rec.get("pg_chunk"), rec.get("pg_seq")
        ref = rec.pop("_pg")
        rest = rec.pop("_pg_rest", "")
        open_ = self.pg_open.get(pid)
        if chunk is not None and chunk > 1:
            if open_ is not None and open_[0].get("pg_seq") == seq and chunk == len(open_[1]) + 1:
                head = open_[0]
                head["_spans"] = (head["_spans"] or [(head["_offset"], 0)]) + [(rec["_offset"], 0)]
                head["_line_count"] += 1
                head["raw"] += "\n" + rec["raw"]
                open_[1].append(rest)
                return
            self.sink.issue(rec["_offset"], 0, rec["_line_no"],
                            f"PostgreSQL continuation chunk [{seq}-{chunk}] without its first chunk before it",
                            excerpt(rec["raw"]))
            return
        if open_ is not None:
            self._emit_pg(pid)
        self.pg_open[pid] = (rec, [rest], ref)
        if chunk is None:
            self._emit_pg(pid)

    def _emit_pg(self, pid: int) -> None:
        rec, texts, ref = self.pg_open.pop(pid)
        text = join_pg_chunks(texts, self.parser.pg_line)
        rec["message"] = text
        self.parser.finish_pg(rec, text, ref.patterns)
        self.sink.event(rec)

    def close(self) -> None:
        for pid in list(self.pg_open):
            self._emit_pg(pid)


def _time_text(realtime: int) -> str:
    seconds, micros = divmod(realtime, 1_000_000)
    return iso_utc(seconds, micros)
