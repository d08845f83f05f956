"""lastlog: each user's last login, ``struct lastlog`` (``<lastlog.h>``) on Linux x86-64 — 292
bytes: ``int32 ll_time``, ``char ll_line[32]``, ``char ll_host[256]`` — at offset uid × 292.

The file is sparse: its size is set by the largest uid that ever logged in (nfsnobody's
4294967294 makes it 1.25 TB, an LDAP or SSSD uid of a billion 292 GB) while only a few blocks
hold data; a record of zeros is a uid that never logged in. Each record with a time is one
``login.last`` event.
"""

from __future__ import annotations

import re
import struct

from logsalvage.parsing.binary.fields import PLAUSIBLE_FROM, address, c_string, iso_utc, record, shown, stamp_from_epoch
from logsalvage.parsing.engine import Sink

SIZE = 292
_STRUCT = struct.Struct("<i32s256s")
_NAME = re.compile(r"lastlog")


def problem(time: int, line: bytes, host: bytes) -> str | None:
    if time < 0:
        return f"ll_time {time} is negative"
    for name, field in (("ll_line", line), ("ll_host", host)):
        if c_string(field) is None:
            return f"{name} is not NUL-padded text"
    if time == 0:
        return "a line or host without a time"
    return None


def identify(head: bytes, name: str, size: int | None) -> tuple[str, str] | None:
    """("lastlog", why) when ``head`` holds lastlog records: every non-zero record of the first
    bytes plausible (a time after 1980, text fields), the size a multiple of 292; a file of zeros
    at its start (a sparse lastlog whose low uids never logged in) only when it is named so."""
    if size is not None and size % SIZE:
        return None
    named = bool(_NAME.search(name.lower()))
    whole = len(head) - len(head) % SIZE
    records = [_STRUCT.unpack(head[i:i + SIZE]) for i in range(0, whole, SIZE) if head[i:i + SIZE].strip(b"\x00")]
    if not records:
        if named and not head.strip(b"\x00"):
            return "lastlog", "named lastlog, only zero bytes at its start (uids that never logged in)"
        return None
    if any(problem(*r) is not None or r[0] < PLAUSIBLE_FROM for r in records):
        return None
    if not named and len(records) < 2 and size is None:
        return None
    return "lastlog", (f"{len(records)} non-zero {SIZE}-byte lastlog records in the first {whole} bytes, all "
                       f"plausible{'; named lastlog' if named else ''}")


class LastlogFormat:
    """``login.last`` events of a lastlog file for ``FixedRecords``."""

    size = SIZE

    def zeros(self, sink: Sink, offset: int, count: int) -> None:
        """uids that never logged in: nothing to say."""

    def record(self, sink: Sink, offset: int, index: int, data: bytes) -> None:
        time, line_b, host_b = _STRUCT.unpack(data)
        shown_raw = f"[{index}] [{shown(line_b)}] [{shown(host_b)}] [{iso_utc(max(time, 0))}]"
        why = problem(time, line_b, host_b)
        if why is not None:
            sink.issue(offset, SIZE, index + 1, f"not a lastlog record (uid {index}): {why}", shown_raw[:200])
            return
        line, host = c_string(line_b), c_string(host_b)
        ip = address(host)
        fields = {"uid": index, "terminal": line, "source_ip": ip, "client_host": None if ip else host}
        message = f"last login of uid {index}" + (f" on {line}" if line else "") + (f" from {host}" if host else "")
        sink.event(record(offset, SIZE, index + 1, "login.last", stamp_from_epoch(time), iso_utc(time), shown_raw,
                          message, fields))
