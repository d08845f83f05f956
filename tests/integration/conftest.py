"""Session fixtures that run real daemons: a private rsyslogd on /dev/log and a throw-away
PostgreSQL cluster logging to it with the incident's settings, then a scripted workload.

Prerequisites come from ``.ci/install-daemons.sh`` (Debian packages postgresql, rsyslog). Without
them, or without root, the tests skip; with ``CI=true`` they fail instead, because CI promises to
install them. A /dev/log served by another logger always skips: it is not ours to take over.
``LOGSALVAGE_KEEP_DAEMON_DIR=1`` keeps the daemons' directory (data dir, rsyslog config) for a look.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # daemons.py, whatever pytest's import mode

import daemons  # noqa: E402
from prerequisites import unavailable  # noqa: E402

WEBAPP_PASSWORD = "Kyush0-ferry"


@pytest.fixture(scope="session")
def daemon_root():
    """A directory for the daemons' files, traversable by user postgres (pytest's tmp is 0700)."""
    missing = daemons.missing_prerequisites()
    if missing:
        unavailable("real-daemon tests need: " + "; ".join(missing)
                    + " (install with: sudo bash .ci/install-daemons.sh)", ".ci/install-daemons.sh")
    root = Path(tempfile.mkdtemp(prefix="logsalvage-daemons-"))
    os.chmod(root, 0o755)
    yield root
    if os.environ.get("LOGSALVAGE_KEEP_DAEMON_DIR"):
        print(f"\nkept daemon directory {root}")
    else:
        daemons.remove_tree(root)


@pytest.fixture(scope="session")
def rsyslog_daemon(daemon_root):
    """rsyslogd serving /dev/log, writing ``*.info`` (so LOCAL7) in the traditional file format."""
    lock = daemons.DevLogLock()
    if not lock.acquire():
        pytest.skip(f"another test session holds {daemons.DEV_LOG_LOCK}: /dev/log is in use by it")
    try:
        busy = daemons.dev_log_busy()
        if busy:
            pytest.skip(f"cannot run a private syslog daemon: {busy}; PostgreSQL's syslog() always "
                        "writes to /dev/log, so this test needs it free")
        rs = daemons.start_rsyslog(daemon_root / "rsyslog")
        try:
            yield rs
        finally:
            rs.stop()
    finally:
        lock.release()


@pytest.fixture(scope="session")
def postgres_daemon(daemon_root, rsyslog_daemon):
    """A fresh cluster with the incident's logging settings, started after rsyslog, stopped before it."""
    pg = daemons.start_postgres(daemon_root / "pg")
    try:
        yield pg
    finally:
        pg.stop()


# -- the workload ---------------------------------------------------------------------------------

def long_multiline_statement() -> str:
    """A > 1000-byte statement that fails, shaped to hit every way PostgreSQL cuts syslog lines.

    A blank line and indented lines (each continuation line gets a tab from PostgreSQL); a line of
    short words longer than 900 bytes (cut at the last space before byte 900, the next chunk starts
    with that space); a line of long words (cut well before byte 890); a run of 3-byte UTF-8
    characters without whitespace (cut at a character boundary just under 900 bytes); a run of
    ASCII without whitespace (cut at exactly 900 bytes).
    """
    ids = ", ".join(str(i) for i in range(1, 241))
    long_words = " ".join(f"voyage_manifest_{i:03d}_" + "k" * 40 for i in range(24))
    multibyte = "九州フェリー" * 60
    no_space = "".join(f"{i:04x}" for i in range(300))
    return (
        "SELECT r.id,\n"
        "       r.passenger,\n"
        "\n"
        f"       CASE WHEN r.id IN ({ids}) THEN 'listed' END AS listed,\n"
        f"       '{long_words}' AS long_words,\n"
        f"        '{multibyte}' AS multibyte_run,\n"
        f"       md5('{no_space}') AS no_whitespace,\n"
        "       1 / 0 AS boom\n"
        "  FROM reservations r\n"
        " WHERE r.id = 1"
    )


INJECTION = "SELECT * FROM reservations WHERE id = '1);SELECT PG_SLEEP(5)--'"
MISSING_TABLE = "SELECT * FROM users"
SLOW = "SELECT pg_sleep(3.2)"


@dataclass(frozen=True)
class PgSyslogCapture:
    """What the daemons wrote for the workload, copied out as evidence (the live file keeps growing)."""

    log_file: Path  # snapshot of rsyslog's output
    conf_file: Path  # snapshot of the cluster's postgresql.conf
    live_conf_file: Path  # the cluster's own postgresql.conf (gone after the session)
    sha256: str  # of log_file
    lines: tuple[str, ...]  # log_file decoded, without line ends
    long_statement: str  # exactly what was sent
    statements: dict[str, str]  # the other statements sent, by name: slow, missing_table, injection
    window: tuple[float, float]  # epoch seconds: rsyslog started .. snapshot taken
    pg_version: int
    port: int


@pytest.fixture(scope="session")
def pg_syslog_capture(rsyslog_daemon, postgres_daemon, tmp_path_factory) -> PgSyslogCapture:
    """Drive the incident's kinds of database activity and capture what rsyslog wrote for it."""
    pg, rs = postgres_daemon, rsyslog_daemon
    # ordinary use: a role, its database, a table, queries that log nothing at these settings
    pg.psql(f"CREATE ROLE webapp LOGIN PASSWORD '{WEBAPP_PASSWORD}'")
    pg.psql("CREATE DATABASE ferry OWNER webapp")

    def app(sql: str, check: bool = True):
        return pg.psql(sql, user="webapp", password=WEBAPP_PASSWORD, db="ferry", check=check)

    app("CREATE TABLE reservations (id integer PRIMARY KEY, passenger text NOT NULL, voyage date NOT NULL)")
    app("INSERT INTO reservations SELECT g, 'passenger ' || g, DATE '2017-07-15' + g FROM generate_series(1, 50) g")
    assert app("SELECT count(*) FROM reservations").stdout.strip() == "50"
    app(SLOW)  # over log_min_duration_statement: a duration line
    # a failed login: wrong password over TCP
    cp = pg.psql("SELECT 1", user="webapp", password="wrong-password", db="ferry", check=False)
    assert cp.returncode != 0 and "password authentication failed" in cp.stderr, cp.stderr
    cp = app(MISSING_TABLE, check=False)
    assert 'relation "users" does not exist' in cp.stderr, cp.stderr
    cp = app(INJECTION, check=False)
    assert "invalid input syntax" in cp.stderr, cp.stderr
    long_sql = long_multiline_statement()
    cp = app(long_sql, check=False)
    assert "division by zero" in cp.stderr, cp.stderr
    # a health check that hangs up inside the startup packet (see daemons.incomplete_startup_packet)
    daemons.incomplete_startup_packet(pg.port)

    needles = [
        'FATAL:  password authentication failed for user "webapp"',
        'ERROR:  relation "users" does not exist',
        'STATEMENT:  ' + INJECTION,
        "ms  statement: " + SLOW,
        "ERROR:  division by zero",
        " WHERE r.id = 1",
        "LOG:  incomplete startup packet",
    ]

    def flushed() -> bool:
        text = rs.log_file.read_text(errors="replace") if rs.log_file.exists() else ""
        return all(n in text for n in needles)

    try:
        daemons.wait_until(flushed, 20, "rsyslog to write the workload's messages")
    except daemons.DaemonError as e:
        text = rs.log_file.read_text(errors="replace") if rs.log_file.exists() else "<no file>"
        missing = [n for n in needles if n not in text]
        pytest.fail(f"{e}; missing {missing}; {rs.log_file} holds:\n{text[-6000:]}", pytrace=False)

    evidence = tmp_path_factory.mktemp("pg-syslog-evidence")
    log_copy, conf_copy = evidence / "messages", evidence / "postgresql.conf"
    shutil.copyfile(rs.log_file, log_copy)
    shutil.copyfile(pg.conf_path, conf_copy)
    data = log_copy.read_bytes()
    return PgSyslogCapture(
        log_file=log_copy, conf_file=conf_copy, live_conf_file=pg.conf_path,
        sha256=hashlib.sha256(data).hexdigest(),
        lines=tuple(data.decode("utf-8").removesuffix("\n").split("\n")),
        long_statement=long_sql,
        statements={"slow": SLOW, "missing_table": MISSING_TABLE, "injection": INJECTION},
        window=(int(rs.started_at), time.time() + 1), pg_version=pg.version, port=pg.port,
    )


@pytest.fixture(scope="module")
def con(case_dir):
    """The test module's case (its own ``case_dir`` fixture), opened read-only."""
    import duckdb

    c = duckdb.connect(str(case_dir / "case.duckdb"), read_only=True)
    yield c
    c.close()
