#!/usr/bin/env bash
# The programs that are the source of truth for the binary logs (tests/ingest/test_binary_logins.py,
# tests/ingest/test_journal.py): util-linux's utmpdump, last and lastb (wtmp, btmp); login's
# lastlog; systemd's journalctl, which reads journal files for the ingest itself; and
# systemd-journal-remote, which writes journal files from the export format.
exec "$(dirname "$0")/apt-install.sh" install-log-tools.sh util-linux login systemd systemd-journal-remote
