"""Run the real ``crontab`` program as a service account without touching the machine's crontabs.

Debian's ``crontab`` (package ``cron``, ``.ci/install-daemons.sh``) writes to the spool directory
compiled into it (/var/spool/cron/crontabs) and reports the change through syslog(3) — to
/dev/log, facility cron: ``crontab[PID]: (nobody) REPLACE (nobody)``, the line the incident's
server logged when its web shell installed ``nobody``'s crontab. Here the program runs in a mount
namespace of its own (``unshare --mount``) in which a private spool directory, with the spool's
owner and mode, is bind-mounted over the real one: the crontab lands in the test's directory, the
machine's spool stays as it was, and the syslog message goes to whichever syslogd serves /dev/log
(the tests' private rsyslogd). The account runs it itself (``setpriv``), as a web shell running
as ``nobody`` would, so the log names it as the one who changed the crontab.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

CRONTAB = "/usr/bin/crontab"
SPOOL = Path("/var/spool/cron/crontabs")
SPOOL_GROUP = "crontab"  # Debian: the spool is root:crontab 1730, crontab is setgid crontab


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run crontab in a private spool (empty when everything is there)."""
    missing = []
    if not os.access(CRONTAB, os.X_OK):
        missing.append(f"{CRONTAB} not installed (Debian package cron)")
    if not SPOOL.is_dir():
        missing.append(f"no {SPOOL} (Debian package cron)")
    try:
        grp.getgrnam(SPOOL_GROUP)
    except KeyError:
        missing.append(f"no group {SPOOL_GROUP!r} (Debian package cron)")
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} not installed (Debian packages util-linux, mount)")
    if not missing:
        probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True,
                               text=True, timeout=30)
        if probe.returncode != 0:
            missing.append(f"cannot make a mount namespace (unshare --mount: {probe.stderr.strip()})")
    return missing


def private_spool(directory: Path) -> Path:
    """An empty spool directory like the real one: root:crontab, mode 1730."""
    directory.mkdir(parents=True, exist_ok=True)
    os.chown(directory, 0, grp.getgrnam(SPOOL_GROUP).gr_gid)
    os.chmod(directory, 0o1730)
    return directory


def install_as(user: str, crontab_file: Path, spool: Path, *, timeout: float = 30) -> subprocess.CompletedProcess:
    """``crontab FILE`` run by ``user`` itself, with ``spool`` in place of the machine's spool.

    ``crontab_file`` must be readable by ``user``. Returns the finished process (check its
    returncode); the installed crontab is ``spool / user``.
    """
    pw = pwd.getpwnam(user)
    script = 'mount --bind "$1" "$2" && exec setpriv --reuid="$3" --regid="$4" --clear-groups "$5" "$6"'
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "TZ": "UTC", "LANG": "C.UTF-8"}
    return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "crontab-as",
                           str(spool), str(SPOOL), str(pw.pw_uid), str(pw.pw_gid), CRONTAB, str(crontab_file)],
                          env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
