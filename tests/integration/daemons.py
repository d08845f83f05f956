"""Start and stop private instances of real daemons for the integration tests.

rsyslogd and PostgreSQL come from Debian's own packages (``.ci/install-daemons.sh``). Nothing here
relies on an init system: every daemon runs from a throw-away directory with its own config and is
stopped by the process id we started. PostgreSQL logs through libc ``syslog()``, which always
writes to ``/dev/log``; so the private rsyslogd has to own ``/dev/log`` for the duration, and a
``/dev/log`` that another logger already serves is a reason to skip, never to take it over.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

DEV_LOG = "/dev/log"
# Serialises sessions that want /dev/log (two test runs at once would steal it from each other).
DEV_LOG_LOCK = "/run/lock/logsalvage-dev-log.lock"
RSYSLOGD = "/usr/sbin/rsyslogd"
PG_USER = "postgres"
HOST_NAME = "db01"  # what rsyslog writes as the host, like the incident's database server

# The incident's PostgreSQL logging settings (background.md), plus what a private cluster needs.
INCIDENT_PG_SETTINGS = {
    "log_destination": "'syslog'",
    "syslog_facility": "'LOCAL7'",
    "syslog_ident": "'postgres'",
    "log_line_prefix": "'DATABASE=%d,USER=%u,CLIENT=%r,'",
    "log_min_messages": "info",
    "log_min_error_statement": "error",
    "log_min_duration_statement": "3000",
}


class DaemonError(RuntimeError):
    """A daemon could not be started, or did not do what it should have; says which and why."""


# -- prerequisites ------------------------------------------------------------------------------

def pg_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<major>/bin`` holding the server binaries, if any."""
    found = []
    for d in glob.glob("/usr/lib/postgresql/*/bin"):
        major = Path(d).parent.name
        if major.isdigit() and all(os.access(Path(d) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres", "psql")):
            found.append((int(major), Path(d)))
    return max(found)[1] if found else None


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run the daemon tests (empty when everything is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("not running as root (needed to own /dev/log and to run PostgreSQL as 'postgres')")
    if not os.access(RSYSLOGD, os.X_OK):
        missing.append(f"{RSYSLOGD} not installed (Debian package rsyslog)")
    if pg_bindir() is None:
        missing.append("no /usr/lib/postgresql/*/bin with initdb, pg_ctl, postgres, psql (Debian package postgresql)")
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        missing.append(f"no system user {PG_USER!r} (created by the Debian postgresql package)")
    return missing


def dev_log_busy() -> str | None:
    """Why ``/dev/log`` cannot be ours, or None when it is absent or stale (a socket nobody serves)."""
    if not os.path.lexists(DEV_LOG):
        return None
    if os.path.islink(DEV_LOG):
        return f"{DEV_LOG} is a symlink to {os.readlink(DEV_LOG)} (another logger, e.g. journald, owns it)"
    if not stat.S_ISSOCK(os.lstat(DEV_LOG).st_mode):
        return f"{DEV_LOG} exists and is not a socket"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(DEV_LOG)
        except OSError as e:
            if e.errno == errno.ECONNREFUSED:
                return None  # stale: its daemon is gone
            return f"{DEV_LOG} is a socket served by another process ({e.strerror})"
    return f"{DEV_LOG} is served by another syslog daemon"


def _dev_log_served() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.connect(DEV_LOG)
            return True
        except OSError:
            return False


class DevLogLock:
    """An exclusive, non-blocking claim on /dev/log among our own test sessions."""

    def __init__(self) -> None:
        self.fd: int | None = None

    def acquire(self) -> bool:
        Path(DEV_LOG_LOCK).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(DEV_LOG_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# -- helpers --------------------------------------------------------------------------------------

def free_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; raise DaemonError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DaemonError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError as e:
        return f"<cannot read {path}: {e}>"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without any PG* settings of the caller, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(extra)
    return env


# -- rsyslog ----------------------------------------------------------------------------------------

@dataclass
class Rsyslog:
    workdir: Path
    conf: Path
    log_file: Path
    pidfile: Path
    output: Path  # rsyslogd's own stdout/stderr
    proc: subprocess.Popen | None = None
    started_at: float = 0.0  # epoch seconds, just before rsyslogd was started

    def stop(self) -> None:
        if self.proc is None:
            return
        terminate(self.proc, timeout=15)
        self.proc = None
        # rsyslogd unlinks the socket it created; make sure no stale one stays behind either way
        if os.path.lexists(DEV_LOG) and not os.path.islink(DEV_LOG) and not _dev_log_served():
            os.unlink(DEV_LOG)


def terminate(proc: subprocess.Popen, *, timeout: float, whole_group: bool = False) -> None:
    """SIGTERM a daemon we started and wait for it; SIGKILL it (its whole process group when
    ``whole_group``: a parent that forks workers) if it has not exited within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        if whole_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        proc.wait(timeout=timeout)


RSYSLOG_CONF = """\
# private rsyslogd for logsalvage's daemon tests: serves /dev/log, writes like CentOS' default
global(workDirectory="{workdir}" localHostname="{host}")
module(load="imuxsock" SysSock.Name="/dev/log" SysSock.RateLimit.Interval="0")
$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat
# the incident's /var/log/messages selector (PostgreSQL logs to LOCAL7 at info and above)
*.info;mail.none;authpriv.none;cron.none {log_file}
"""


def start_rsyslog(workdir: Path, *, host: str = HOST_NAME, timeout: float = 15, extra_rules: str = "") -> Rsyslog:
    """Start ``rsyslogd -n`` serving /dev/log and writing the traditional format to ``workdir/messages``.

    The caller must have checked ``dev_log_busy()`` (and hold the DevLogLock); a stale /dev/log is
    removed here. rsyslogd runs with TZ=UTC so the file's local times are UTC, the tool's default.
    ``extra_rules`` (rsyslog.conf lines, e.g. ``cron.* /path/cron``) follow the messages selector.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    rs = Rsyslog(workdir=workdir, conf=workdir / "rsyslog.conf", log_file=workdir / "messages",
                 pidfile=workdir / "rsyslogd.pid", output=workdir / "rsyslogd.out")
    rs.conf.write_text(RSYSLOG_CONF.format(workdir=workdir, host=host, log_file=rs.log_file) + extra_rules)
    if os.path.lexists(DEV_LOG):
        reason = dev_log_busy()
        if reason:
            raise DaemonError(reason)
        os.unlink(DEV_LOG)  # stale socket
    rs.started_at = time.time()
    with open(rs.output, "wb") as out:
        rs.proc = subprocess.Popen(
            [RSYSLOGD, "-n", "-f", str(rs.conf), "-i", str(rs.pidfile)],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            env=_clean_env(TZ="UTC"), start_new_session=True,
        )

    def ready() -> bool:
        if rs.proc.poll() is not None:
            raise DaemonError(f"rsyslogd exited with {rs.proc.returncode}:\n{_tail(rs.output)}")
        return _dev_log_served()

    try:
        wait_until(ready, timeout, "rsyslogd to serve /dev/log")
    except BaseException:
        rs.stop()
        raise
    return rs


# -- PostgreSQL -------------------------------------------------------------------------------------

@dataclass
class Postgres:
    bindir: Path
    root: Path  # owned by postgres: data/, run/ (unix socket), server.log (pg_ctl's stderr capture)
    datadir: Path
    conf_path: Path
    port: int
    superuser_password: str
    started: bool = False
    server_log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.server_log = self.root / "server.log"

    @property
    def version(self) -> int:
        return int(self.bindir.parent.name)

    def _as_postgres(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            args, user=PG_USER, group=PG_USER, extra_groups=[], cwd=self.root,
            env=_clean_env(LC_ALL="C.UTF-8", TZ="UTC", HOME=str(self.root)),
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )

    def psql(self, sql: str, *, user: str = PG_USER, password: str | None = None, db: str = "postgres",
             check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run ``sql`` over TCP (password auth) with ``psql -c``: the server gets the text unchanged."""
        env = _clean_env(PGPASSWORD=self.superuser_password if password is None else password,
                         PGCONNECT_TIMEOUT="10", LC_ALL="C.UTF-8")
        cp = subprocess.run(
            [str(self.bindir / "psql"), "-X", "-w", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", user, "-d", db, "-c", sql],
            env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
        )
        if check and cp.returncode != 0:
            raise DaemonError(f"psql as {user} on {db} failed ({cp.returncode}): {cp.stderr.strip()}\nSQL: {sql[:300]}")
        return cp

    def stop(self) -> None:
        if not self.started:
            return
        cp = self._as_postgres([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w",
                                "-t", "60", "stop"], timeout=90)
        if cp.returncode != 0:  # last resort: the postmaster's pid, from its own pid file
            try:
                pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)
            except (OSError, ValueError, IndexError):
                pass
        self.started = False


def start_postgres(root: Path, *, settings: dict[str, str] | None = None, password: str = "incident-response",
                   timeout: float = 60) -> Postgres:
    """``initdb`` a fresh cluster under ``root`` as user postgres and start it with ``pg_ctl``.

    Listens on 127.0.0.1 at a free port, scram-sha-256 for TCP (so a wrong password fails), trust
    for the private unix socket. ``settings`` are appended to the generated postgresql.conf, as an
    administrator's edits would be; the commented defaults initdb wrote stay above them.
    """
    bindir = pg_bindir()
    if bindir is None:
        raise DaemonError("PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin")
    pg_pw = pwd.getpwnam(PG_USER)
    root.mkdir(parents=True, exist_ok=True)
    os.chown(root, pg_pw.pw_uid, pg_pw.pw_gid)
    os.chmod(root, 0o700)
    # every directory above root must be traversable by postgres
    for parent in root.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            raise DaemonError(f"{parent} is not traversable by user {PG_USER} (mode {oct(mode & 0o777)})")
    datadir, rundir = root / "data", root / "run"
    pg = Postgres(bindir=bindir, root=root, datadir=datadir, conf_path=datadir / "postgresql.conf",
                  port=free_tcp_port(), superuser_password=password)
    pwfile = root / "pwfile"
    pwfile.write_text(password + "\n")
    rundir.mkdir()
    for p in (pwfile, rundir):
        os.chown(p, pg_pw.pw_uid, pg_pw.pw_gid)
    cp = pg._as_postgres([str(bindir / "initdb"), "-D", str(datadir), "-U", PG_USER, f"--pwfile={pwfile}",
                          "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
                          "--locale=C.UTF-8", "--no-sync"], timeout=120)
    pwfile.unlink()
    if cp.returncode != 0:
        raise DaemonError(f"initdb failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}")
    conf = {
        "listen_addresses": "'127.0.0.1'",
        "port": str(pg.port),
        "unix_socket_directories": f"'{rundir}'",
        "password_encryption": "'scram-sha-256'",
        **(settings if settings is not None else INCIDENT_PG_SETTINGS),
    }
    with open(pg.conf_path, "a") as f:
        f.write("\n# --- logsalvage daemon test: the incident's logging settings ---\n")
        for name, value in conf.items():
            f.write(f"{name} = {value}\n")
    cp = pg._as_postgres([str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(pg.server_log), "-w",
                          "-t", str(int(timeout)), "start"], timeout=timeout + 30)
    if cp.returncode != 0:
        raise DaemonError(f"pg_ctl start failed ({cp.returncode}):\n{cp.stdout}\n{cp.stderr}\n"
                          f"server log:\n{_tail(pg.server_log)}")
    pg.started = True
    return pg


def incomplete_startup_packet(port: int, payload: bytes = b"\x00\x00") -> None:
    """Connect and hang up after part of a startup packet's length word.

    PostgreSQL 12 and later say nothing about a connection closed before sending any byte (the
    health-check pattern of the incident, logged by 9.x as "incomplete startup packet"); a
    partial length word still gets that message.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        if payload:
            s.sendall(payload)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
