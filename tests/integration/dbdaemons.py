"""Private instances of MariaDB, pgBouncer and a PostgreSQL cluster logging in jsonlog, driven
through a small workload, for the database-log tests (test_database_logs_daemon.py) and the
checked-in capture tests/data/dblogs/.

MariaDB and pgBouncer come from Debian's packages (``.ci/install-daemons.sh``: mariadb-server,
mariadb-client, pgbouncer), PostgreSQL as for the other daemon tests (``daemons.start_postgres``).
Nothing relies on an init system: each daemon runs from a throw-away directory with its own
configuration, on 127.0.0.1 and a free port, and is stopped through its own admin command or by the
process id we started. mysqld_safe starts MariaDB (as root, ``--user=root``), so its own lines are in
the error log too; pgBouncer refuses to run as root and runs as user postgres.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import daemons

MARIADBD = "/usr/sbin/mariadbd"
MYSQLD_SAFE = "/usr/bin/mysqld_safe"
INSTALL_DB = "/usr/bin/mariadb-install-db"
MARIADB = "/usr/bin/mariadb"
MARIADB_ADMIN = "/usr/bin/mariadb-admin"
PGBOUNCER = "/usr/sbin/pgbouncer"

SHOP_USER, SHOP_PASSWORD, SHOP_DB = "shopapp", "Sh0p-app-pw", "shop"
WRONG_PASSWORD = "letmein"
MULTILINE = "SELECT c.id,\n       c.email\n  FROM customers c\n WHERE c.id IN (1, 2, 3)\n ORDER BY c.id"
CUSTOMERS = 200
# PostgreSQL's jsonlog, with every connection and statement logged; csvlog beside it, the same
# records, so that the two parses can be compared record by record
JSONLOG_SETTINGS = {
    "log_destination": "'jsonlog,csvlog'",
    "logging_collector": "on",
    "log_directory": "'log'",
    "log_filename": "'postgresql'",  # PostgreSQL adds '.json' and '.csv'
    "log_connections": "on",
    "log_disconnections": "on",
    "log_min_duration_statement": "0",
    "log_timezone": "'UTC'",
}


def missing_prerequisites() -> list[str]:
    """What this machine lacks to run MariaDB, pgBouncer and PostgreSQL here (empty: nothing)."""
    missing = [m for m in daemons.missing_prerequisites() if "rsyslog" not in m]  # no syslog needed
    for path, package in ((MARIADBD, "mariadb-server"), (MYSQLD_SAFE, "mariadb-server"),
                          (INSTALL_DB, "mariadb-server"), (MARIADB, "mariadb-client"),
                          (MARIADB_ADMIN, "mariadb-client"), (PGBOUNCER, "pgbouncer")):
        if not os.access(path, os.X_OK):
            missing.append(f"{path} not installed (Debian package {package})")
    return missing


def _run(args: list[str], *, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess:
    cp = subprocess.run(args, stdin=kw.pop("stdin", subprocess.DEVNULL), capture_output=True, text=True,
                        timeout=timeout, **kw)
    if check and cp.returncode != 0:
        raise daemons.DaemonError(f"{args[0]} failed ({cp.returncode}): {cp.stderr.strip()[:2000]}")
    return cp


def version(args: list[str]) -> str:
    try:
        return _run(args, timeout=30).stdout.strip().splitlines()[0]
    except (OSError, daemons.DaemonError, IndexError, subprocess.TimeoutExpired) as e:
        return f"unknown ({e})"


# -- MariaDB ---------------------------------------------------------------------------------------

@dataclass
class MariaDB:
    root: Path
    port: int
    socket: Path
    general_log: Path
    slow_log: Path
    error_log: Path
    proc: subprocess.Popen | None = None

    def client(self, sql: str, *, user: str = "root", password: str | None = None, db: str | None = None,
               tcp: bool = True, check: bool = True) -> subprocess.CompletedProcess:
        """``sql`` sent by the mariadb client, over TCP (the server sees 127.0.0.1) or its socket."""
        args = [MARIADB, "--no-defaults", "--batch", f"--user={user}"]
        args += ["--host=127.0.0.1", f"--port={self.port}"] if tcp else [f"--socket={self.socket}"]
        if password is not None:
            args.append(f"--password={password}")
        if db:
            args.append(db)
        return _run(args, input=sql, check=check, stdin=None, env=_env())

    def admin(self, *commands: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run([MARIADB_ADMIN, "--no-defaults", "--user=root", f"--socket={self.socket}", *commands],
                    check=check, env=_env())

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.admin("shutdown", check=False)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # mysqld_safe's group: the server with it
                self.proc.wait(timeout=30)
        self.proc = None


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL", "MARIADB", "PG"))}
    env.update(TZ="UTC", LC_ALL="C.UTF-8", **extra)
    return env


MY_CNF = """\
[mysqld]
datadir={root}/data
socket={root}/run/mysqld.sock
pid-file={root}/run/mysqld.pid
port={port}
bind-address=127.0.0.1
skip-name-resolve
user=root
general_log=1
general_log_file={root}/log/general.log
slow_query_log=1
slow_query_log_file={root}/log/slow.log
long_query_time=0
log_error={root}/log/error.log
secure_file_priv={root}/out
skip-log-bin
[mysqld_safe]
log_error={root}/log/error.log
"""


def start_mariadb(root: Path, *, timeout: float = 60) -> MariaDB:
    """A fresh data directory (``mariadb-install-db``) and ``mysqld_safe`` starting the server on it."""
    for d in ("run", "log", "out"):
        (root / d).mkdir(parents=True, exist_ok=True)
    m = MariaDB(root=root, port=daemons.free_tcp_port(), socket=root / "run/mysqld.sock",
                general_log=root / "log/general.log", slow_log=root / "log/slow.log",
                error_log=root / "log/error.log")
    cnf = root / "my.cnf"
    cnf.write_text(MY_CNF.format(root=root, port=m.port))
    _run([INSTALL_DB, f"--defaults-file={cnf}", "--user=root", "--auth-root-authentication-method=normal",
          "--skip-test-db"], timeout=120, env=_env())
    with open(root / "mysqld_safe.out", "wb") as out:
        m.proc = subprocess.Popen([MYSQLD_SAFE, f"--defaults-file={cnf}"], stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, env=_env(), start_new_session=True)

    def ready() -> bool:
        if m.proc.poll() is not None:
            raise daemons.DaemonError(f"mysqld_safe exited with {m.proc.returncode}: "
                                      f"{m.error_log.read_text(errors='replace')[-3000:] if m.error_log.exists() else ''}")
        return m.admin("ping", check=False).returncode == 0

    try:
        daemons.wait_until(ready, timeout, "MariaDB to answer on its socket", interval=0.2)
    except BaseException:
        m.stop()
        raise
    return m


def mariadb_workload(m: MariaDB) -> None:
    """An application's and an intruder's kinds of use: logins good and bad, a statement spanning
    lines, a table written to a file on the server, a slow statement, admin commands, a stop."""
    m.client(f"CREATE DATABASE {SHOP_DB};\n"
             f"CREATE USER '{SHOP_USER}'@'%' IDENTIFIED BY '{SHOP_PASSWORD}';\n"
             f"CREATE USER '{SHOP_USER}'@'localhost' IDENTIFIED BY '{SHOP_PASSWORD}';\n"
             f"GRANT ALL ON {SHOP_DB}.* TO '{SHOP_USER}'@'%';\n"
             f"GRANT ALL ON {SHOP_DB}.* TO '{SHOP_USER}'@'localhost';\n"
             f"GRANT FILE ON *.* TO '{SHOP_USER}'@'%';\n", tcp=False)
    app = dict(user=SHOP_USER, password=SHOP_PASSWORD, db=SHOP_DB)
    m.client("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64), email VARCHAR(128), card VARCHAR(19));\n"
             "INSERT INTO customers SELECT seq, CONCAT('customer ', seq), CONCAT('c', seq, '@example.com'), "
             f"'4111-1111-1111-1111' FROM seq_1_to_{CUSTOMERS};\n", **app)
    m.client("SELECT id, name FROM customers WHERE id = 7;\n", **app)
    for user in (SHOP_USER, "root"):  # wrong passwords over TCP
        cp = m.client("SELECT 1;\n", user=user, password=WRONG_PASSWORD, check=False)
        assert cp.returncode != 0 and "Access denied" in cp.stderr, cp.stderr
    m.client(MULTILINE + ";\n", **app)
    m.client(f"SELECT * FROM customers INTO OUTFILE '{m.root}/out/customers.csv';\n", **app)
    m.client("SELECT SLEEP(1.2);\n", **app)  # past a second: a new '# Time:', a new time in the general log
    m.client(f"use {SHOP_DB}\nSELECT COUNT(*) FROM customers;\n", user=SHOP_USER, password=SHOP_PASSWORD, tcp=False)
    m.admin("status")
    m.admin("refresh")
    m.stop()


# -- pgBouncer --------------------------------------------------------------------------------------

PGBOUNCER_INI = """\
[databases]
{db} = host=127.0.0.1 port={pg_port} dbname={db}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {root}/userlist.txt
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
stats_period = 1
"""


@dataclass
class PgBouncer:
    root: Path
    port: int
    log_file: Path
    proc: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.proc is None:
            return
        daemons.terminate(self.proc, timeout=15)  # SIGTERM: 'got SIGTERM, fast exit'
        self.proc = None


def start_pgbouncer(root: Path, pg: daemons.Postgres, *, timeout: float = 30) -> PgBouncer:
    """pgBouncer as user postgres, in front of ``pg``'s database shop, SCRAM logins from a userlist."""
    pw = pwd.getpwnam(daemons.PG_USER)
    root.mkdir(parents=True, exist_ok=True)
    b = PgBouncer(root=root, port=daemons.free_tcp_port(), log_file=root / "pgbouncer.log")
    (root / "userlist.txt").write_text(f'"{SHOP_USER}" "{SHOP_PASSWORD}"\n')
    (root / "pgbouncer.ini").write_text(PGBOUNCER_INI.format(db=SHOP_DB, pg_port=pg.port, port=b.port, root=root))
    for p in (root, root / "userlist.txt", root / "pgbouncer.ini"):
        os.chown(p, pw.pw_uid, pw.pw_gid)
    os.chmod(root / "userlist.txt", 0o600)
    with open(root / "pgbouncer.out", "wb") as out:
        b.proc = subprocess.Popen([PGBOUNCER, str(root / "pgbouncer.ini")], user=daemons.PG_USER, group=daemons.PG_USER,
                                  extra_groups=[], cwd=root, stdin=subprocess.DEVNULL, stdout=out,
                                  stderr=subprocess.STDOUT, env=_env(HOME=str(root)), start_new_session=True)

    def ready() -> bool:
        if b.proc.poll() is not None:
            raise daemons.DaemonError(f"pgbouncer exited with {b.proc.returncode}: "
                                      f"{(root / 'pgbouncer.out').read_text(errors='replace')[-3000:]}")
        return b.log_file.exists() and "process up" in b.log_file.read_text(errors="replace")

    try:
        daemons.wait_until(ready, timeout, "pgbouncer to start", interval=0.1)
    except BaseException:
        b.stop()
        raise
    return b


def psql_through(pg: daemons.Postgres, port: int, sql: str, *, password: str, check: bool = True):
    env = daemons._clean_env(PGPASSWORD=password, PGCONNECT_TIMEOUT="10", LC_ALL="C.UTF-8")
    return _run([str(pg.bindir / "psql"), "-X", "-w", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(port),
                 "-U", SHOP_USER, "-d", SHOP_DB, "-c", sql], env=env, check=check)


# -- PostgreSQL (jsonlog) and pgBouncer's workload ---------------------------------------------------

def postgres_workload(pg: daemons.Postgres, bouncer_root: Path) -> PgBouncer:
    """The application's database, a login through pgBouncer good and bad, direct statements (one
    spanning lines, a failing one, a copy of the customer table) and a wrong password."""
    pg.psql(f"CREATE ROLE {SHOP_USER} LOGIN PASSWORD '{SHOP_PASSWORD}'")
    pg.psql(f"CREATE DATABASE {SHOP_DB} OWNER {SHOP_USER}")

    def app(sql: str, check: bool = True):
        return pg.psql(sql, user=SHOP_USER, password=SHOP_PASSWORD, db=SHOP_DB, check=check)

    app("CREATE TABLE customers (id integer PRIMARY KEY, name text, email text); "
        f"INSERT INTO customers SELECT g, 'customer ' || g, 'c' || g || '@example.com' "
        f"FROM generate_series(1, {CUSTOMERS}) g")
    bouncer = start_pgbouncer(bouncer_root, pg)
    assert psql_through(pg, bouncer.port, "SELECT count(*) FROM customers", password=SHOP_PASSWORD).stdout.strip() \
        == str(CUSTOMERS)
    cp = psql_through(pg, bouncer.port, "SELECT 1", password=WRONG_PASSWORD, check=False)
    assert cp.returncode != 0 and "authentication failed" in cp.stderr, cp.stderr
    time.sleep(1.5)  # a stats line (stats_period = 1)
    app(MULTILINE)
    cp = app("SELECT * FROM users", check=False)
    assert 'relation "users" does not exist' in cp.stderr, cp.stderr
    app("COPY (SELECT * FROM customers) TO STDOUT WITH CSV")
    cp = pg.psql("SELECT 1", user=SHOP_USER, password=WRONG_PASSWORD, db=SHOP_DB, check=False)
    assert cp.returncode != 0 and "password authentication failed" in cp.stderr, cp.stderr
    return bouncer


# -- a whole capture ---------------------------------------------------------------------------------

# the logs a capture keeps, with the format each is
FILES = {"mariadb-general.log": "mysql-general", "mariadb-slow.log": "mysql-slow", "mariadb-error.log": "mysql-error",
         "pgbouncer.log": "pgbouncer", "postgresql.json": "postgresql-jsonlog", "postgresql.csv": "postgresql-csvlog"}


def capture(root: Path, out: Path) -> dict[str, str]:
    """Run every daemon's workload under ``root`` and copy the logs they wrote into ``out`` (names
    of ``FILES``); returns the programs' versions."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    out.mkdir(parents=True, exist_ok=True)
    versions = {"mariadb": version([MARIADBD, "--version"]), "pgbouncer": version([PGBOUNCER, "--version"])}
    m = start_mariadb(root / "mariadb")
    try:
        mariadb_workload(m)
    finally:
        m.stop()
    pg = daemons.start_postgres(root / "pg", settings=JSONLOG_SETTINGS)
    versions["postgresql"] = version([str(pg.bindir / "postgres"), "--version"])
    bouncer = None
    try:
        bouncer = postgres_workload(pg, root / "pgbouncer")
    finally:
        if bouncer is not None:
            bouncer.stop()
        pg.stop()
    shutil.copyfile(m.general_log, out / "mariadb-general.log")
    shutil.copyfile(m.slow_log, out / "mariadb-slow.log")
    shutil.copyfile(m.error_log, out / "mariadb-error.log")
    shutil.copyfile(root / "pgbouncer" / "pgbouncer.log", out / "pgbouncer.log")
    shutil.copyfile(pg.datadir / "log" / "postgresql.json", out / "postgresql.json")
    shutil.copyfile(pg.datadir / "log" / "postgresql.csv", out / "postgresql.csv")
    return versions
