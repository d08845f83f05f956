"""wtmp, btmp and utmp: glibc's ``struct utmp`` on Linux x86-64 (``<bits/utmp.h>``), 384 bytes.

====== ==== ===========================================================
offset size field
====== ==== ===========================================================
0      2    ut_type (int16), then 2 bytes of padding
4      4    ut_pid
8      32   ut_line (tty: 'pts/0', 'ssh:notty', '~' for boot and run level)
40     4    ut_id
44     32   ut_user ('reboot', 'runlevel', 'shutdown' for system records)
76     256  ut_host (the client; the kernel release for system records)
332    4    ut_exit: e_termination, e_exit (int16 each)
336    4    ut_session
340    8    ut_tv: tv_sec, tv_usec (int32 each: the time in UTC)
348    16   ut_addr_v6 (an IPv4 address in the first 4 bytes when the rest are zero)
364    20   unused
====== ==== ===========================================================

The flavour says what a file records: wtmp every login, logout, boot and run level change;
btmp failed logins (each record one failure: sshd and login write them); utmp the sessions open
when it was taken. A record is shown (``raw``) as ``utmpdump`` prints it. All-zero records are
not records: a run of them is an issue, since overwriting an entry with zeros is how log cleaners
(zap2, wzap) remove a login from wtmp.
"""

from __future__ import annotations

import re
import socket
import struct
from typing import NamedTuple

from logsalvage.parsing.binary.fields import PLAUSIBLE_FROM, address, c_string, iso_utc, record, shown, stamp_from_epoch
from logsalvage.parsing.engine import Sink

SIZE = 384
_STRUCT = struct.Struct("<hHi32s4s32s256shhiii16s20s")
TYPES = ("EMPTY", "RUN_LVL", "BOOT_TIME", "NEW_TIME", "OLD_TIME", "INIT_PROCESS", "LOGIN_PROCESS",
         "USER_PROCESS", "DEAD_PROCESS", "ACCOUNTING")
EMPTY, RUN_LVL, BOOT_TIME, NEW_TIME, OLD_TIME, INIT_PROCESS, LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS = range(9)
FLAVOURS = ("wtmp", "btmp", "utmp")
_NAME = re.compile(r"(?:^|[^a-z])([wbu])tmpx?(?:$|[^a-z])")


class Utmp(NamedTuple):
    type: int
    pad: int
    pid: int
    line: bytes
    id: bytes
    user: bytes
    host: bytes
    e_termination: int
    e_exit: int
    session: int
    tv_sec: int
    tv_usec: int
    addr: bytes
    unused: bytes


def unpack(data: bytes) -> Utmp:
    return Utmp(*_STRUCT.unpack(data))


def strings(u: Utmp) -> tuple[str | None, ...]:
    """ut_line, ut_id, ut_user, ut_host as text (None where a field is not)."""
    return c_string(u.line), c_string(u.id), c_string(u.user), c_string(u.host)


def problem(u: Utmp, texts: tuple[str | None, ...] | None = None) -> str | None:
    """Why a (non-zero) record is not a utmp record, or None (``texts``: its ``strings``)."""
    if not 0 <= u.type < len(TYPES):
        return f"ut_type {u.type} is not a utmp record type (0-9)"
    for name, text in zip(("line", "id", "user", "host"), texts or strings(u)):
        if text is None:
            return f"ut_{name} is not NUL-padded text"
    if u.tv_sec < 0 or not 0 <= u.tv_usec < 1_000_000:
        return f"time {u.tv_sec}.{u.tv_usec} is not a time (seconds since 1970, microseconds)"
    if u.pid < 0:
        return f"ut_pid {u.pid} is negative"
    return None


def plausible(u: Utmp) -> bool:
    """A record real software writes: valid, no padding bytes set, a time after 1980 (or none)."""
    return problem(u) is None and u.pad == 0 and (u.tv_sec == 0 or u.tv_sec >= PLAUSIBLE_FROM)


def address_of(raw: bytes) -> str:
    """ut_addr_v6 as utmpdump shows it: IPv6 when any of its last 12 bytes is set, else IPv4."""
    if raw[4:].strip(b"\x00"):
        return socket.inet_ntop(socket.AF_INET6, raw)
    return socket.inet_ntop(socket.AF_INET, raw[:4])


def utmpdump_line(u: Utmp, when: str | None = None) -> str:
    """The record as ``utmpdump`` (util-linux) prints it, in UTC (``when``: its time as printed)."""
    when = when or iso_utc(u.tv_sec, u.tv_usec, ",")
    return (f"[{u.type}] [{u.pid:05d}] [{shown(u.id)[:4]:<4}] [{shown(u.user):<8}] [{shown(u.line):<12}] "
            f"[{shown(u.host):<20}] [{address_of(u.addr):<15}] [{when}]")


def flavour_from_name(name: str) -> str | None:
    m = _NAME.search(name.lower())
    return f"{m.group(1)}tmp" if m else None


def flavour_from_content(records: list[Utmp]) -> str:
    """btmp when every record is a login attempt and some is sshd's or login's failure record (a
    LOGIN_PROCESS naming a user, not getty's 'LOGIN'); wtmp otherwise."""
    types = {u.type for u in records}
    if records and types <= {LOGIN_PROCESS, USER_PROCESS} and any(
            u.type == LOGIN_PROCESS and c_string(u.user) not in ("", "LOGIN", None) for u in records):
        return "btmp"
    return "wtmp"


def identify(head: bytes, name: str, size: int | None) -> tuple[str, str] | None:
    """(format id, why) when ``head`` — the first bytes of a file, ``size`` its length when known —
    holds utmp records."""
    whole = len(head) - len(head) % SIZE
    records = [unpack(head[i:i + SIZE]) for i in range(0, whole, SIZE) if head[i:i + SIZE].strip(b"\x00")]
    by_name = flavour_from_name(name)
    if not records:  # nothing but zeros (a wiped or unused file), or empty: only its name says
        if by_name and (size is None or size % SIZE == 0) and not head.strip(b"\x00"):
            return by_name, f"named {by_name}, {'empty' if not head else 'only zero bytes at its start'}"
        return None
    good = [u for u in records if plausible(u)]
    ratio = len(good) / len(records)
    aligned = size is None or size % SIZE == 0
    # the name tips a damaged file (some records overwritten) that its content alone leaves in doubt
    if ratio < (0.5 if by_name else 0.9) or not any(u.type != EMPTY for u in good) \
            or (not aligned and not by_name and len(good) < 2):
        return None
    flavour = by_name or flavour_from_content(good)
    how = "its name" if by_name else "its records"
    size_note = "" if aligned else f"; its size is not a multiple of {SIZE} (a record cut short at the end)"
    return flavour, (f"{ratio:.0%} of the first {len(records)} records are plausible {SIZE}-byte utmp records; "
                     f"{flavour} by {how}{size_note}")


class UtmpFormat:
    """Events of a utmp-family file (``flavour``: wtmp, btmp or utmp) for ``FixedRecords``."""

    size = SIZE

    def __init__(self, flavour: str):
        self.flavour = flavour

    def zeros(self, sink: Sink, offset: int, count: int) -> None:
        sink.issue(offset, count * SIZE, offset // SIZE + 1,
                   f"{count} all-zero record(s) ({count * SIZE} bytes) where {self.flavour} records belong: "
                   "an entry overwritten with zeros is how log cleaners (zap2, wzap) remove a login", "")

    def record(self, sink: Sink, offset: int, index: int, data: bytes) -> None:
        u = unpack(data)
        texts = strings(u)
        why = problem(u, texts)
        if why is not None:
            sink.issue(offset, SIZE, index + 1, f"not a {self.flavour} record: {why}", utmpdump_line(u)[:200])
            return
        sink.event(self.event(u, offset, index, texts))

    def event(self, u: Utmp, offset: int, index: int, texts: tuple[str, ...]) -> dict:
        line, ut_id, user, host = texts
        addr = address_of(u.addr)
        addr = None if addr in ("0.0.0.0", "::") else addr
        host_ip = address(host)
        fields = {"terminal": line, "utmp_id": ut_id, "utmp_type": TYPES[u.type],
                  "session": u.session or None}
        system = u.type in (BOOT_TIME, RUN_LVL, NEW_TIME, OLD_TIME)
        if system:
            fields["kernel"] = host
        else:
            # getty's LOGIN_PROCESS names no user: 'LOGIN' holds the place (in btmp a LOGIN_PROCESS is a failure)
            placeholder = u.type == LOGIN_PROCESS and user == "LOGIN" and self.flavour != "btmp"
            fields.update(user_name=None if placeholder else user, process_pid=u.pid or None,
                          source_ip=addr or host_ip, client_host=None if host_ip else host)
        if u.e_termination or u.e_exit:
            fields.update(exit_termination=u.e_termination, exit_status=u.e_exit)
        event_type, message = self._meaning(u, user, line, host, fields)
        stamp = stamp_from_epoch(u.tv_sec, u.tv_usec) if u.tv_sec else None
        when = iso_utc(u.tv_sec, u.tv_usec, ",")
        return record(offset, SIZE, index + 1, event_type, stamp, when.replace(",", "."), utmpdump_line(u, when),
                      message, fields)

    def _meaning(self, u: Utmp, user: str, line: str, host: str, fields: dict) -> tuple[str, str]:
        where = f" on {line}" if line else ""
        origin = f" from {host or fields.get('source_ip')}" if host or fields.get("source_ip") else ""
        if self.flavour == "btmp" and u.type in (INIT_PROCESS, LOGIN_PROCESS, USER_PROCESS, DEAD_PROCESS):
            fields["outcome"] = "failure"
            return "login.failed", f"failed login for {user or '(no user)'}{where}{origin}"
        if u.type == USER_PROCESS:
            fields["outcome"] = "success"
            return "login.session", f"{user or '(no user)'} logged in{where}{origin}"
        if u.type == DEAD_PROCESS:
            return "login.logout", f"logout{where}" + (f" of {user}" if user else "")
        if u.type == BOOT_TIME:
            return "system.boot", "system boot" + (f" (kernel {host})" if host else "")
        if u.type == RUN_LVL:
            if user == "shutdown":
                return "system.shutdown", "system shutdown" + (f" (kernel {host})" if host else "")
            level, before = chr(u.pid & 0xFF), chr((u.pid >> 8) & 0xFF)
            if level.isprintable() and level.strip():
                fields["runlevel"] = level
                if before.isprintable() and before.strip():
                    fields["previous_runlevel"] = before
            return "system.runlevel", f"run level {fields.get('runlevel', '?')}" + (
                f" (was {fields['previous_runlevel']})" if "previous_runlevel" in fields else "")
        if u.type == LOGIN_PROCESS:
            return "login.process", f"login prompt{where} (pid {u.pid})"
        if u.type == INIT_PROCESS:
            return "login.process", f"process started by init{where} (pid {u.pid})"
        if u.type in (NEW_TIME, OLD_TIME):
            fields["clock"] = "after" if u.type == NEW_TIME else "before"
            return "system.clock_change", f"system clock set: time {fields['clock']} the change"
        if u.type == EMPTY:
            return "login.empty", f"empty entry{where}" + (f" of {user}" if user else "")
        return "login.accounting", f"accounting entry{where}"
