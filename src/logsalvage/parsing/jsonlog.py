"""PostgreSQL's jsonlog (``log_destination = 'jsonlog'``, PostgreSQL 15 and later): one JSON object
a line, read with the json module, into the fields the csvlog columns give
(``engine.Assembler.CSV_COLUMNS``) and through the same message patterns, so a record means the same
to the detectors whichever of stderr, csvlog or jsonlog the server wrote.

jsonlog leaves out what is empty or zero: a missing ``state_code`` is '00000' (csvlog writes it);
``func_name``, ``file_name`` and ``file_line_num`` make csvlog's location text. Keys PostgreSQL
does not write are not fields (the line stays whole in ``raw``). A line that is not a JSON object
with a valid ``timestamp`` is an issue.
"""

from __future__ import annotations

import json

from logsalvage.model import CANONICAL_FIELDS
from logsalvage.parsing.engine import _convert, excerpt
from logsalvage.parsing.hooks import LineHook
from logsalvage.parsing.lines import Line
from logsalvage.parsing.pg_prefix import split_remote
from logsalvage.parsing.timestamps import parse_iso

# jsonlog key -> the field csvlog's column of the same meaning fills
FIELDS = {
    "user": "db_user", "dbname": "db_name", "pid": "process_pid", "session_id": "db_session",
    "line_num": "pg_session_line", "ps": "pg_command_tag", "session_start": "pg_session_start",
    "vxid": "pg_vxid", "txid": "pg_xid", "error_severity": "pg_level", "state_code": "sql_state",
    "message": "pg_message", "detail": "pg_detail", "hint": "pg_hint", "internal_query": "pg_internal_query",
    "internal_position": "pg_internal_query_pos", "context": "pg_context", "statement": "statement",
    "cursor_position": "pg_query_pos", "application_name": "db_application", "backend_type": "pg_backend_type",
    "leader_pid": "pg_leader_pid", "query_id": "pg_query_id",
}


def _text(value) -> str | None:
    """A JSON value as csvlog would have written it: text, numbers in JSON's own spelling."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (ValueError, RecursionError):
        return None


def _loose_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


class JsonLog(LineHook):
    def line(self, line: Line, data: bytes, text: str, valid: bool) -> None:
        if not text.strip():
            self.unusable(line, data, text, valid)
            return
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = f"not a JSON object: {exc}" if isinstance(exc, ValueError) else "not a JSON object: nested too deeply"
            self.unusable(line, data, text, valid, reason + ("" if valid else " (invalid UTF-8)"))
            return
        if not isinstance(obj, dict):
            self.unusable(line, data, text, valid, f"not a JSON object: a JSON {type(obj).__name__}")
            return
        raw_ts = obj.get("timestamp")
        stamp = parse_iso(raw_ts) if isinstance(raw_ts, str) else None
        if stamp is None:
            self.unusable(line, data, text, valid, "jsonlog record without a valid timestamp")
            return
        rec = self._record(obj)
        rec["_stamp"], rec["ts_raw"] = stamp, raw_ts
        self.begin(rec, line, text, valid)
        if any(isinstance(v, str) and _loose_surrogates(v) for v in rec.values()):
            for key, value in rec.items():
                if isinstance(value, str) and _loose_surrogates(value):
                    rec[key] = value.encode("utf-8", "backslashreplace").decode("utf-8")
            self.sink.issue(line.offset, line.length, line.line_no,
                            "a JSON string holds a lone surrogate (\\uD800-\\uDFFF): kept as a \\uXXXX escape",
                            excerpt(text), event_offset=line.offset)
        self.emit(rec)

    def _record(self, obj: dict) -> dict:
        rec: dict = {}
        for key, name in FIELDS.items():
            value = _text(obj.get(key))
            if value is None or value == "":
                continue
            rec[name] = _convert(name, value) if name in CANONICAL_FIELDS else value
        rec.setdefault("sql_state", "00000")
        host, _ = split_remote(_text(obj.get("remote_host")))
        if host:
            rec["source_ip"] = host
            port = _convert("source_port", _text(obj.get("remote_port")))
            if port is not None:
                rec["source_port"] = port
        location = self._location(obj)
        if location:
            rec["pg_location"] = location
        rec["log_level"] = rec.get("pg_level")
        rec["message"] = rec.get("pg_message")
        self.parser.apply_patterns(rec, self.spec.message_patterns, rec.get("pg_message"), None)
        if not rec.get("event_type"):
            rec["event_type"] = f"postgresql.{(rec.get('pg_level') or 'log').lower()}"
        return rec

    @staticmethod
    def _location(obj: dict) -> str | None:
        """csvlog's location column: 'function, file:line' (log_error_verbosity = verbose)."""
        func, file, line = (_text(obj.get(k)) for k in ("func_name", "file_name", "file_line_num"))
        if file and func:
            return f"{func}, {file}:{line}"
        if file:
            return f"{file}:{line}"
        return None
