"""The journal entries of tests/data/journal, each with the line rsyslog would have written for
it, and how the journal file was made: systemd-journal-remote (the package systemd-journal-remote)
writing the export format given on stdin into a journal file.

    python tests/ingest/journal_fixture.py tests/data/journal

writes ``entries.export`` and ``system.journal.xz`` (the journal file, 8 MiB of which 4 KiB are not
zeros, compressed) there.
"""

from __future__ import annotations

import lzma
import shutil
import subprocess
import sys
from pathlib import Path

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
HOST = "web01"
BOOT = "0f2c7a1e9b6d4c3a8e5f1d2c3b4a5968"
MACHINE = "4a2b1c3d5e6f47a8b9c0d1e2f3a4b5c6"
START = 1513063386  # 2017-12-12T07:23:06Z

# (seconds after START, fields, the syslog line of the same message or None)
ENTRIES: list[tuple[int, dict[str, object], str | None]] = [
    (0, {"PRIORITY": 5, "_TRANSPORT": "kernel", "SYSLOG_IDENTIFIER": "kernel", "SYSLOG_FACILITY": 0,
         "MESSAGE": "Linux version 4.9.0-4-amd64 (debian-kernel@lists.debian.org) #1 SMP Debian 4.9.65-3"},
     "Dec 12 07:23:06 web01 kernel: Linux version 4.9.0-4-amd64 (debian-kernel@lists.debian.org) #1 SMP "
     "Debian 4.9.65-3"),
    (60, {"PRIORITY": 6, "SYSLOG_FACILITY": 10, "SYSLOG_IDENTIFIER": "sshd", "_PID": 2201, "_COMM": "sshd",
          "_UID": 0, "_TRANSPORT": "syslog", "_SYSTEMD_UNIT": "ssh.service",
          "MESSAGE": "Failed password for invalid user oracle from 203.0.113.9 port 40022 ssh2"},
     "Dec 12 07:24:06 web01 sshd[2201]: Failed password for invalid user oracle from 203.0.113.9 port 40022 ssh2"),
    (61, {"PRIORITY": 6, "SYSLOG_FACILITY": 10, "SYSLOG_IDENTIFIER": "sshd", "_PID": 2201, "_COMM": "sshd",
          "_UID": 0, "_TRANSPORT": "syslog", "_SYSTEMD_UNIT": "ssh.service",
          "MESSAGE": "Failed password for root from 203.0.113.9 port 40031 ssh2"},
     "Dec 12 07:24:07 web01 sshd[2201]: Failed password for root from 203.0.113.9 port 40031 ssh2"),
    (120, {"PRIORITY": 6, "SYSLOG_FACILITY": 10, "SYSLOG_IDENTIFIER": "sshd", "_PID": 2203, "_COMM": "sshd",
           "_UID": 0, "_TRANSPORT": "syslog", "_SYSTEMD_UNIT": "ssh.service",
           "MESSAGE": "Accepted password for admin from 10.0.0.5 port 51514 ssh2"},
     "Dec 12 07:25:06 web01 sshd[2203]: Accepted password for admin from 10.0.0.5 port 51514 ssh2"),
    (121, {"PRIORITY": 6, "SYSLOG_FACILITY": 10, "SYSLOG_IDENTIFIER": "sshd", "_PID": 2203, "_COMM": "sshd",
           "_TRANSPORT": "syslog", "MESSAGE": "pam_unix(sshd:session): session opened for user admin by (uid=0)"},
     "Dec 12 07:25:07 web01 sshd[2203]: pam_unix(sshd:session): session opened for user admin by (uid=0)"),
    (175, {"PRIORITY": 6, "SYSLOG_FACILITY": 9, "SYSLOG_IDENTIFIER": "CRON", "_PID": 1920, "_COMM": "cron",
           "_TRANSPORT": "syslog", "_SYSTEMD_UNIT": "cron.service",
           "MESSAGE": "(nobody) CMD (/tmp/upd >/dev/null 2>&1)"},
     "Dec 12 07:26:01 web01 CRON[1920]: (nobody) CMD (/tmp/upd >/dev/null 2>&1)"),
    (190, {"PRIORITY": 5, "SYSLOG_FACILITY": 10, "SYSLOG_IDENTIFIER": "sudo", "_PID": 2290, "_COMM": "sudo",
           "_TRANSPORT": "syslog",
           "MESSAGE": "   admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/usr/bin/crontab -l"},
     "Dec 12 07:26:16 web01 sudo:    admin : TTY=pts/0 ; PWD=/home/admin ; USER=root ; COMMAND=/usr/bin/crontab -l"),
    (200, {"PRIORITY": 6, "SYSLOG_FACILITY": 16, "SYSLOG_IDENTIFIER": "postgres", "_PID": 2735,
           "_TRANSPORT": "syslog", "MESSAGE": "[7-1] LOG:  connection received: host=192.168.10.11 port=51234"},
     "Dec 12 07:26:26 web01 postgres[2735]: [7-1] LOG:  connection received: host=192.168.10.11 port=51234"),
    (201, {"PRIORITY": 6, "SYSLOG_FACILITY": 16, "SYSLOG_IDENTIFIER": "postgres", "_PID": 2735,
           "_TRANSPORT": "syslog", "MESSAGE": "[8-1] LOG:  duration: 39.219 ms  statement: select"},
     "Dec 12 07:26:27 web01 postgres[2735]: [8-1] LOG:  duration: 39.219 ms  statement: select"),
    (201, {"PRIORITY": 6, "SYSLOG_FACILITY": 16, "SYSLOG_IDENTIFIER": "postgres", "_PID": 2735,
           "_TRANSPORT": "syslog", "MESSAGE": "[8-2]  1 from customers"},
     "Dec 12 07:26:27 web01 postgres[2735]: [8-2]  1 from customers"),
    (230, {"PRIORITY": 3, "SYSLOG_FACILITY": 11, "SYSLOG_IDENTIFIER": "vsftpd", "_PID": 3011, "_UID": 0,
           "_TRANSPORT": "syslog",
           "MESSAGE": "pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=anonymous "
                      "rhost=203.0.113.50"},
     "Dec 12 07:26:56 web01 vsftpd[3011]: pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 "
     "tty=ftp ruser=anonymous rhost=203.0.113.50"),
    # a message of two lines and one not valid UTF-8: the export format's binary-safe fields
    (240, {"PRIORITY": 4, "SYSLOG_IDENTIFIER": "backup.sh", "_PID": 4100, "_TRANSPORT": "stdout",
           "_SYSTEMD_UNIT": "backup.service", "MESSAGE": "rsync failed:\nconnection refused"}, None),
    (241, {"PRIORITY": 4, "SYSLOG_IDENTIFIER": "backup.sh", "_PID": 4100, "_TRANSPORT": "stdout",
           "_SYSTEMD_UNIT": "backup.service", "MESSAGE": b"bad byte \xff in a name"}, None),
]


def export_bytes(entries=ENTRIES, start: int = START) -> bytes:
    """The entries in systemd's Journal Export Format (a value with a newline or not valid UTF-8
    written binary-safe: the name, a 64-bit little-endian length, the bytes)."""
    out = bytearray()
    for seconds, fields, _ in entries:
        usec = (start + seconds) * 1_000_000
        head = {"__REALTIME_TIMESTAMP": usec, "__MONOTONIC_TIMESTAMP": usec - start * 1_000_000 + 5_000_000,
                "_BOOT_ID": BOOT, "_MACHINE_ID": MACHINE, "_HOSTNAME": HOST}
        for name, value in {**head, **fields}.items():
            data = value if isinstance(value, bytes) else str(value).encode()
            if b"\n" in data or isinstance(value, bytes):
                out += name.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
            else:
                out += name.encode() + b"=" + data + b"\n"
        out += b"\n"
    return bytes(out)


def build_journal(export: bytes, path: Path) -> None:
    """systemd-journal-remote writing ``export`` into the journal file ``path``."""
    subprocess.run([JOURNAL_REMOTE, f"--output={path}", "-"], input=export, check=True, capture_output=True,
                   timeout=60)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    export = export_bytes()
    (out / "entries.export").write_bytes(export)
    tmp = out / "system.journal"
    tmp.unlink(missing_ok=True)
    build_journal(export, tmp)
    with open(tmp, "rb") as src, lzma.open(out / "system.journal.xz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    tmp.unlink()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
