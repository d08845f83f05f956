"""Real daemons for the watch tests: a private rsyslogd on /dev/log and a throw-away PostgreSQL
cluster logging to it with the incident's settings (tests/integration/daemons.py).

rsyslogd writes the incident's /var/log/messages selector to ``messages`` and, for the crontab
program's messages (facility cron), ``cron``. Skipped without the daemons or root, failing under
``CI=true`` (tests/prerequisites.py); a /dev/log served by another logger always skips.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # daemons.py and the other helpers

import daemons  # noqa: E402
from prerequisites import unavailable  # noqa: E402


@pytest.fixture(scope="module")
def daemon_dir():
    """A directory for the daemons' files, traversable by postgres and www-data (pytest's tmp is 0700)."""
    root = Path(tempfile.mkdtemp(prefix="logsalvage-watch-daemons-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        daemons.remove_tree(root)


@pytest.fixture(scope="module")
def syslog_and_postgres(daemon_dir):
    """(rsyslog, postgres): rsyslogd serving /dev/log, then PostgreSQL logging to it (LOCAL7)."""
    missing = daemons.missing_prerequisites()
    if missing:
        unavailable("real-daemon tests need: " + "; ".join(missing), ".ci/install-daemons.sh")
    if datetime.now().astimezone().utcoffset() != timedelta(0):
        pytest.skip("rsyslog writes local time: this test assumes the machine runs on UTC")
    lock = daemons.DevLogLock()
    if not lock.acquire():
        pytest.skip(f"another test session holds {daemons.DEV_LOG_LOCK}")
    try:
        busy = daemons.dev_log_busy()
        if busy:
            pytest.skip(f"cannot run a private syslog daemon: {busy}")
        workdir = daemon_dir / "rsyslog"
        rs = daemons.start_rsyslog(workdir, extra_rules=f"cron.* {workdir / 'cron'}\n")
        try:
            pg = daemons.start_postgres(daemon_dir / "pg")
            try:
                yield rs, pg
            finally:
                pg.stop()
        finally:
            rs.stop()
    finally:
        lock.release()
