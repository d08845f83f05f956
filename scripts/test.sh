#!/usr/bin/env bash
# The whole test suite: installs what the tests need (the package, test libraries, and as root the
# daemons the integration tests drive and a headless browser), then runs pytest. A run that finds
# no tests is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  .ci/install-daemons.sh       # PostgreSQL, rsyslog for the real-daemon tests
  .ci/install-image-tools.sh   # e2fsprogs, fdisk, ewf-tools, xfsprogs to build test images
  .ci/install-config-samples.sh  # vsftpd, sshd, nginx, logrotate, auditd: stock configs the audit tests read
  .ci/install-log-tools.sh     # utmpdump, last, lastlog, journalctl, systemd-journal-remote (binary logs)
  .ci/install-browser.sh       # chromium, to load the report in a real browser
fi
python3 -m pip install --quiet --disable-pip-version-check -e '.[test]' 2>&1 | grep -v "Running pip as the 'root' user" || true

set +e
python3 -m pytest -q -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" = "5" ]; then
  echo "no tests were collected: failing" >&2
  exit 1
fi
exit "$status"
