"""A private vsftpd for the integration tests: anonymous upload into a web server's document root.

Debian's ``vsftpd`` (``.ci/install-daemons.sh``) runs in the foreground from a config of its own
(nothing from /etc/vsftpd.conf, no init system), on 127.0.0.1 at a free port, and is stopped by the
process id we started. Local accounts would need a PAM service file in /etc/pam.d, so the FTP
account is vsftpd's own anonymous one (system user ``ftp``, created by the package): it may upload
(never download) below ``anon_root`` — vsftpd refuses a chroot root the account can write to, so
the root is a directory above the document root (Apache's ServerRoot) and the document root the
one place ``ftp`` may write. Uploads are world-readable (``anon_umask=022``), so Apache serves them.

vsftpd logs in both of its formats, as the incident's server did (``dual_log_enable``): the native
log (``CONNECT``, ``OK LOGIN``, ``OK UPLOAD``) and xferlog, in UTC (``use_localtime=NO``).
"""

from __future__ import annotations

import ftplib
import io
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path

import daemons

VSFTPD = "/usr/sbin/vsftpd"
FTP_USER = "ftp"  # vsftpd's anonymous account (Debian package vsftpd)

VSFTPD_CONF = """\
# logsalvage integration test: a private vsftpd, nothing from /etc/vsftpd.conf
listen=YES
listen_ipv6=NO
listen_address=127.0.0.1
listen_port={port}
background=NO
seccomp_sandbox=NO
secure_chroot_dir={empty}
anonymous_enable=YES
no_anon_password=YES
ftp_username={ftp_user}
anon_root={anon_root}
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=NO
anon_other_write_enable=NO
anon_umask=022
download_enable=NO
local_enable=NO
pasv_enable=YES
pasv_address=127.0.0.1
pasv_min_port={pasv_min}
pasv_max_port={pasv_max}
connect_from_port_20=NO
xferlog_enable=YES
dual_log_enable=YES
xferlog_std_format=NO
vsftpd_log_file={native_log}
xferlog_file={xferlog}
syslog_enable=NO
use_localtime=NO
"""


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the private vsftpd (empty when everything is there)."""
    missing = []
    if not os.access(VSFTPD, os.X_OK):
        missing.append(f"{VSFTPD} not installed (Debian package vsftpd)")
    try:
        pwd.getpwnam(FTP_USER)
    except KeyError:
        missing.append(f"no system user {FTP_USER!r} (created by the Debian vsftpd package)")
    return missing


@dataclass
class Vsftpd:
    root: Path  # config, empty chroot dir, logs, vsftpd's own output
    port: int
    conf: Path
    native_log: Path  # vsftpd.log
    xferlog: Path
    output: Path
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.proc is None:
            return
        # SIGTERM: the listener exits; its finished sessions were logged when they ended
        daemons.terminate(self.proc, timeout=15, whole_group=True)
        self.proc = None

    def upload(self, remote: str, data: bytes, *, source: str = "127.0.0.1", timeout: float = 30) -> None:
        """Log in anonymously from the local address ``source`` (any 127.x.y.z) and store ``data``."""
        ftp = ftplib.FTP(timeout=timeout)
        ftp.connect("127.0.0.1", self.port, source_address=(source, 0))
        try:
            ftp.login()
            ftp.storbinary(f"STOR {remote}", io.BytesIO(data))
        finally:
            try:
                ftp.quit()
            except (ftplib.Error, OSError):
                ftp.close()


def start_vsftpd(root: Path, anon_root: Path, *, timeout: float = 15) -> Vsftpd:
    """Run ``vsftpd CONF`` from ``root`` with anonymous upload below ``anon_root``.

    ``anon_root`` must be owned by root and not writable by ``ftp``; the directories below it that
    uploads go to must be writable by ``ftp`` (the caller chowns them).
    """
    root.mkdir(parents=True, exist_ok=True)
    empty = root / "empty"  # vsftpd's secure_chroot_dir: empty, root's, not writable by others
    empty.mkdir(exist_ok=True)
    os.chmod(root, 0o755)
    os.chmod(empty, 0o755)
    pasv = daemons.free_tcp_port()
    ftpd = Vsftpd(root=root, port=daemons.free_tcp_port(), conf=root / "vsftpd.conf",
                  native_log=root / "vsftpd.log", xferlog=root / "xferlog", output=root / "vsftpd.out")
    # one passive port range of its own, near a port that was free a moment ago
    ftpd.conf.write_text(VSFTPD_CONF.format(port=ftpd.port, empty=empty, ftp_user=FTP_USER, anon_root=anon_root,
                                            pasv_min=pasv, pasv_max=min(pasv + 20, 65535),
                                            native_log=ftpd.native_log, xferlog=ftpd.xferlog))
    os.chmod(ftpd.conf, 0o600)  # vsftpd refuses a config file others may write
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(TZ="UTC", LANG="C.UTF-8")
    with open(ftpd.output, "wb") as out:
        ftpd.proc = subprocess.Popen([VSFTPD, str(ftpd.conf)], stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def ready() -> bool:
        if ftpd.proc.poll() is not None:
            raise daemons.DaemonError(f"vsftpd exited with {ftpd.proc.returncode}:\n{daemons._tail(ftpd.output)}")
        try:
            ftp = ftplib.FTP()
            ftp.connect("127.0.0.1", ftpd.port, timeout=2)
        except OSError:
            return False
        ftp.close()  # a CONNECT line in vsftpd.log, before the test's watch starts
        return True

    try:
        daemons.wait_until(ready, timeout, "vsftpd to listen on 127.0.0.1")
    except BaseException:
        ftpd.stop()
        raise
    return ftpd
