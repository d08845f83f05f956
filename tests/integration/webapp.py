"""A private Apache httpd with mod_php serving a deliberately SQL-injectable page, for sqlmap to scan.

Debian's ``apache2`` (``.ci/install-daemons.sh``: apache2, libapache2-mod-php, php-pgsql) runs with
a config of its own under a throw-away ServerRoot: nothing from /etc/apache2 is read and no system
service is touched. It listens on 127.0.0.1 only, logs in the combined format with TZ=UTC, and is
stopped by the process id we started. Started as root, its children serve as www-data (Debian's
httpd refuses to serve as root), so the document root must be readable by that user.

``item.php`` is vulnerable on purpose: its ``id`` parameter goes into the SQL text unquoted and
unescaped, and the database's error is shown in the page, as in the incident's web application.
``safe.php`` reads the same ``items`` table the safe way, a parameterized query
(``pg_query_params``): a scan of it finds nothing, although PostgreSQL still logs an
``invalid input syntax for type integer`` error (statement ``… WHERE id = $1``) for each probe that
is not a number. ``shop_tables_sql`` creates the shop's tables: ``items`` and, for an attacker to
dump, ``customer`` (made-up people).
"""

from __future__ import annotations

import glob
import grp
import http.client
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import daemons

APACHE2 = "/usr/sbin/apache2"
MODULES = Path("/usr/lib/apache2/modules")
RUN_AS = "www-data"  # Debian's unprivileged web server user (base-passwd)
USER_AGENT = "logsalvage-test/1.0 (ordinary visitor)"

HTTPD_CONF = """\
# logsalvage integration test: a private httpd, nothing from /etc/apache2
ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{root}/run/httpd.pid"
DefaultRuntimeDir "{root}/run"
Mutex file:{root}/run default
User {user}
Group {group}

LoadModule mpm_prefork_module {modules}/mod_mpm_prefork.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule dir_module {modules}/mod_dir.so
LoadModule mime_module {modules}/mod_mime.so
LoadModule php_module {php_module}

StartServers 2
MinSpareServers 2
MaxSpareServers 4
MaxRequestWorkers 8
KeepAlive On
Timeout 30

ErrorLog "{root}/logs/error_log"
LogLevel warn
LogFormat "%h %l %u %t \\"%r\\" %>s %O \\"%{{Referer}}i\\" \\"%{{User-Agent}}i\\"" combined
CustomLog "{root}/logs/access_log" combined

TypesConfig /etc/mime.types
DocumentRoot "{root}/htdocs"
DirectoryIndex index.php
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{root}/htdocs">
    Require all granted
</Directory>
<FilesMatch "\\.php$">
    SetHandler application/x-httpd-php
</FilesMatch>
php_admin_flag display_errors off
php_admin_flag log_errors on
"""

# Deliberately vulnerable: string concatenation of the request parameter into the SQL text.
ITEM_PHP = """\
<?php
// logsalvage integration test: DELIBERATELY SQL-INJECTABLE. Serves 127.0.0.1 only, for sqlmap.
$db = pg_connect("host=127.0.0.1 port={pg_port} dbname={db} user={db_user} password={db_password} connect_timeout=10");
if ($db === false) {{
    http_response_code(503);
    exit("database unavailable\\n");
}}
$id = isset($_GET['id']) ? $_GET['id'] : '1';
$result = @pg_query($db, "SELECT name FROM items WHERE id = " . $id);
header('Content-Type: text/html; charset=utf-8');
echo "<html><head><title>Item</title></head><body>\\n";
if ($result === false) {{
    echo "<p>Warning: pg_query(): Query failed: " . htmlspecialchars(pg_last_error($db)) . "</p>\\n";
}} else {{
    while ($row = pg_fetch_row($result)) {{
        echo "<p>" . htmlspecialchars($row[0]) . "</p>\\n";
    }}
}}
echo "</body></html>\\n";
"""

# The same lookup done safely: the parameter is bound, never part of the SQL text; errors are not shown.
SAFE_PHP = """\
<?php
// logsalvage integration test: a parameterized query, NOT injectable. Serves 127.0.0.1 only.
$db = pg_connect("host=127.0.0.1 port={pg_port} dbname={db} user={db_user} password={db_password} connect_timeout=10");
if ($db === false) {{
    http_response_code(503);
    exit("database unavailable\\n");
}}
$id = isset($_GET['id']) ? $_GET['id'] : '1';
$result = @pg_query_params($db, 'SELECT name FROM items WHERE id = $1', array($id));
$row = $result === false ? false : pg_fetch_row($result);
header('Content-Type: text/html; charset=utf-8');
if ($row === false) {{
    http_response_code(404);
    exit("<html><head><title>Item</title></head><body><p>No such item.</p></body></html>\\n");
}}
echo "<html><head><title>Item</title></head><body>\\n";
echo "<p>" . htmlspecialchars($row[0]) . "</p>\\n";
echo "</body></html>\\n";
"""

INDEX_PHP = """\
<?php
echo "<html><body><a href=\\"item.php?id=1\\">first item</a></body></html>\\n";
"""


# The shop's customers, all made up: first and last names, example.com addresses, 555-01xx numbers
# (reserved for fiction), the last four digits of a card.
FIRST_NAMES = ("Ada", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Goran", "Hana", "Ines", "Jonas")
LAST_NAMES = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Varga", "Castillo", "Novak", "Brennan")


def customer_rows(n: int = 80) -> list[tuple[int, str, str, str, str]]:
    """``n`` (at most 80) made-up customers: (id, name, email, phone, card_last4), the same every time."""
    if not 0 <= n <= len(FIRST_NAMES) * len(LAST_NAMES):
        raise ValueError(f"{n} customers: at most {len(FIRST_NAMES) * len(LAST_NAMES)}")
    out = []
    for i in range(n):
        first, last = FIRST_NAMES[i % len(FIRST_NAMES)], LAST_NAMES[i // len(FIRST_NAMES)]
        out.append((i + 1, f"{first} {last}", f"{first.lower()}.{last.lower()}@example.com",
                    f"+1-202-555-01{i:02d}", f"{(i * 7919 + 4271) % 10000:04d}"))
    return out


def shop_tables_sql(*, items: int = 5, customers: int = 0) -> list[str]:
    """The shop's tables and rows, as SQL for its owner to run; safe to run again on the same database.

    ``items`` (what item.php and safe.php read: ``item 1`` … ``item N``) and, with ``customers``, the
    application's ``customer`` table (id, name, email, phone, card_last4).
    """
    sql = ["CREATE TABLE IF NOT EXISTS items (id integer PRIMARY KEY, name text NOT NULL)",
           f"INSERT INTO items SELECT g, 'item ' || g FROM generate_series(1, {int(items)}) g ON CONFLICT DO NOTHING"]
    if customers:
        rows = ",\n".join(f"({i}, '{name}', '{email}', '{phone}', '{last4}')"
                          for i, name, email, phone, last4 in customer_rows(customers))
        sql += ["CREATE TABLE IF NOT EXISTS customer (id integer PRIMARY KEY, name text NOT NULL, email text NOT NULL, "
                "phone text NOT NULL, card_last4 char(4) NOT NULL)",
                f"INSERT INTO customer (id, name, email, phone, card_last4) VALUES\n{rows}\nON CONFLICT DO NOTHING"]
    return sql


def php_module() -> Path | None:
    found = sorted(glob.glob(str(MODULES / "libphp*.so")))
    return Path(found[-1]) if found else None


def missing_prerequisites() -> list[str]:
    """What this machine lacks to serve the page (empty when everything is there)."""
    missing = []
    if not os.access(APACHE2, os.X_OK):
        missing.append(f"{APACHE2} not installed (Debian package apache2)")
    for mod in ("mod_mpm_prefork.so", "mod_authz_core.so", "mod_dir.so", "mod_mime.so"):
        if not (MODULES / mod).is_file():
            missing.append(f"{MODULES / mod} not installed (Debian package apache2)")
            break
    if php_module() is None:
        missing.append(f"no {MODULES}/libphp*.so (Debian package libapache2-mod-php)")
    if not glob.glob("/etc/php/*/apache2/conf.d/*pgsql.ini"):
        missing.append("PHP's pgsql extension is not enabled for Apache (Debian package php-pgsql)")
    try:
        pwd.getpwnam(RUN_AS)
    except KeyError:
        missing.append(f"no system user {RUN_AS!r}")
    return missing


def http_get(port: int, target: str, user_agent: str = USER_AGENT, timeout: float = 30) -> tuple[int, str]:
    """One GET to 127.0.0.1:port, without any proxy the environment names."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", target, headers={"User-Agent": user_agent, "Connection": "close"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


@dataclass
class Apache:
    root: Path  # ServerRoot: httpd.conf, htdocs/, logs/, run/
    port: int
    conf: Path
    access_log: Path
    error_log: Path
    output: Path  # httpd's own stdout/stderr
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc is None:
            return
        # SIGTERM: the parent stops its children and exits; each request was logged when served
        daemons.terminate(self.proc, timeout=20, whole_group=True)
        self.proc = None


def start_apache(root: Path, *, pg_port: int, db: str, db_user: str, db_password: str,
                 timeout: float = 30) -> Apache:
    """Write a private ServerRoot under ``root`` and run ``apache2 -DFOREGROUND`` from it."""
    module = php_module()
    if module is None:
        raise daemons.DaemonError(f"no {MODULES}/libphp*.so")
    pw = pwd.getpwnam(RUN_AS)
    for sub in ("htdocs", "logs", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    os.chmod(root / "htdocs", 0o755)
    for parent in root.parents:  # www-data must reach the document root
        if parent == Path("/"):
            break
        if not parent.stat().st_mode & 0o001:
            raise daemons.DaemonError(f"{parent} is not traversable by user {RUN_AS}")
    ap = Apache(root=root, port=daemons.free_tcp_port(), conf=root / "httpd.conf",
                access_log=root / "logs" / "access_log", error_log=root / "logs" / "error_log",
                output=root / "httpd.out")
    ap.conf.write_text(HTTPD_CONF.format(root=root, port=ap.port, user=RUN_AS, group=grp.getgrgid(pw.pw_gid).gr_name,
                                         modules=MODULES, php_module=module))
    for name, page in (("item.php", ITEM_PHP), ("safe.php", SAFE_PHP)):
        (root / "htdocs" / name).write_text(page.format(pg_port=pg_port, db=db, db_user=db_user,
                                                        db_password=db_password))
    (root / "htdocs" / "index.php").write_text(INDEX_PHP)
    for page in (root / "htdocs").iterdir():
        os.chmod(page, 0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APACHE", "PG"))}
    env.update(TZ="UTC", LANG="C.UTF-8")
    cp = subprocess.run([APACHE2, "-f", str(ap.conf), "-d", str(root), "-t"], check=False, env=env,
                        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if cp.returncode != 0:
        raise daemons.DaemonError(f"apache2 -t rejected {ap.conf}:\n{cp.stdout}{cp.stderr}")
    with open(ap.output, "wb") as out:
        ap.proc = subprocess.Popen([APACHE2, "-f", str(ap.conf), "-d", str(root), "-DFOREGROUND"],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                   env=env, start_new_session=True)

    def ready() -> bool:
        if ap.proc.poll() is not None:
            raise daemons.DaemonError(f"apache2 exited with {ap.proc.returncode}:\n"
                                      f"{daemons._tail(ap.output)}\n{daemons._tail(ap.error_log)}")
        try:
            with socket.create_connection(("127.0.0.1", ap.port), timeout=2):
                return True
        except OSError:
            return False

    try:
        daemons.wait_until(ready, timeout, "apache2 to listen on 127.0.0.1")
    except BaseException:
        ap.stop()
        raise
    return ap


# -- sqlmap ---------------------------------------------------------------------------------------

def sqlmap_command() -> list[str] | None:
    """How to run sqlmap (PyPI package ``sqlmap``, in the test extra), or None when it is missing."""
    beside = Path(sys.executable).parent / "sqlmap"  # installed into the environment running the tests
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("sqlmap")
    return [found] if found else None


@dataclass(frozen=True)
class SqlmapRun:
    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    started: float  # epoch seconds
    ended: float


def run_sqlmap(url: str, workdir: Path, *, technique: str | None = "BEUST", extra: Sequence[str] = (),
               timeout: float = 240) -> SqlmapRun:
    """``sqlmap --batch`` against ``url`` with a fresh session, its files and HOME under ``workdir``.

    All five techniques by default: against item.php ``BEU`` alone needs only about 30 requests
    (the page shows the database's error and the rows, so sqlmap is done quickly), while stacked
    queries and time-based blind add the incident's own trace, ``PG_SLEEP(5)`` statements that
    ``log_min_duration_statement = 3000`` logs, for about 20 s more. ``technique=None`` leaves
    sqlmap's own default (all six); ``extra`` arguments follow the others (``--dump -T customer``).
    """
    cmd = sqlmap_command()
    if cmd is None:
        raise daemons.DaemonError("sqlmap not found (PyPI package sqlmap)")
    out_dir, home = workdir / "output", workdir / "home"
    out_dir.mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    cmd += ["-u", url, "--batch", "--level", "1", "--risk", "1",
            *([f"--technique={technique}"] if technique else []), "--flush-session",
            "--disable-coloring", "--output-dir", str(out_dir), *extra]
    # only 127.0.0.1 is ever a target; no proxy named by the environment may see the traffic
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HOME=str(home), no_proxy="*", NO_PROXY="*")
    started = time.time()
    t0 = time.monotonic()
    try:
        cp = subprocess.run(cmd, check=False, env=env, cwd=workdir, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise daemons.DaemonError(f"sqlmap did not finish within {timeout:.0f} s; its output so far:\n"
                                  f"{(e.stdout or b'')[-4000:]!r}") from None
    return SqlmapRun(tuple(cmd), cp.returncode, cp.stdout, cp.stderr, time.monotonic() - t0, started, time.time())
