"""Binary logs: the formats that are not lines of text, each read by its own reader behind the
record interface of the text formats (records and issues to a ``Sink``, with provenance).

* ``utmp``: wtmp, btmp and utmp — glibc's 384-byte ``struct utmp`` (x86-64), decoded here.
* ``lastlog``: each uid's last login, 292-byte records in a sparse file, decoded here.
* ``journal``: systemd journal files, read by journalctl (``journalctl --file F -o export``: the
  maintained reader, not a parser of our own) and refined with the syslog format's rules.

They are identified by content (``identify``), listed with the YAML formats by
``logsalvage formats`` and can be forced with ``--format``. The I/O — reading fixed-size records
past the holes of a sparse file, running journalctl — is in ``sources.binary`` and
``sources.journalctl``; ``ingest_binary`` stages what they read.
"""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.parsing.binary import lastlog, utmp

JOURNAL_MAGIC = b"LPKSHHRH"


@dataclass(frozen=True)
class BinaryFormat:
    id: str
    title: str
    reader: str  # utmp | lastlog | journal
    source_of_truth: str


_UTMP_TRUTH = ("util-linux's utmpdump (its text output, and files it writes with utmpdump -r) and last -f "
               "(tests/ingest/test_binary_logins.py)")
BINARY_FORMATS: dict[str, BinaryFormat] = {f.id: f for f in (
    BinaryFormat("wtmp", "wtmp: logins, logouts, boots, run levels (glibc struct utmp, Linux x86-64)", "utmp",
                 _UTMP_TRUTH),
    BinaryFormat("btmp", "btmp: failed logins (glibc struct utmp, Linux x86-64)", "utmp",
                 _UTMP_TRUTH + "; lastb -f"),
    BinaryFormat("utmp", "utmp: sessions open when it was taken (glibc struct utmp, Linux x86-64)", "utmp",
                 _UTMP_TRUTH),
    BinaryFormat("lastlog", "lastlog: each uid's last login (struct lastlog, Linux x86-64, sparse)", "lastlog",
                 "shadow's lastlog -R ROOT -S writing and lastlog -R ROOT reading a private root "
                 "(tests/ingest/test_binary_logins.py)"),
    BinaryFormat("systemd-journal", "systemd journal file (read by journalctl; syslog's refinements applied)",
                 "journal", "journalctl -o export of journal files written by systemd-journal-remote "
                 "(tests/data/journal, tests/ingest/test_journal.py)"),
)}


def identify_binary(head: bytes, name: str, size: int | None) -> tuple[str, str] | None:
    """(format id, why) when ``head`` — the first bytes of a file's content; ``size`` its length
    when known (not compressed) — is one of the binary formats."""
    if head.startswith(JOURNAL_MAGIC):
        return "systemd-journal", "systemd journal file (signature LPKSHHRH)"
    if not head or b"\x00" in head[:384]:
        return utmp.identify(head, name, size) or lastlog.identify(head, name, size)
    return None
