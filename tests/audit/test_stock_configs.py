"""The configuration files Debian's own packages install, audited as a stock web and database
server: what the real files say is what the audit must read (Apache's sites-enabled links and
IfModule/IfDefine sections, nginx's includes, sshd's Include, PHP's production ini, PostgreSQL's
sample file, logrotate's package files, MariaDB's includedir). The packages are installed by
.ci/install-config-samples.sh and .ci/install-daemons.sh."""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

from logsalvage.audit.run import run_audit
from prerequisites import unavailable

from audit_support import by_id, worst

PROVIDER = ".ci/install-config-samples.sh"
FILES = {  # path in the tree: the installed file (a glob)
    "etc/vsftpd.conf": "/etc/vsftpd.conf",
    "etc/ssh/sshd_config": "/etc/ssh/sshd_config",
    "etc/php/8/apache2/php.ini": "/etc/php/*/apache2/php.ini",
    "etc/postgresql/15/main/postgresql.conf": "/usr/share/postgresql/*/postgresql.conf.sample",
    "etc/rsyslog.conf": "/etc/rsyslog.conf",
    "etc/logrotate.conf": "/etc/logrotate.conf",
    "etc/audit/rules.d/audit.rules": "/etc/audit/rules.d/audit.rules",
}
TREES = ("etc/apache2", "etc/nginx", "etc/logrotate.d", "etc/ssh/sshd_config.d")


def _one(pattern: str) -> Path:
    found = sorted(glob.glob(pattern))
    if not found:
        unavailable(f"{pattern} is not installed", PROVIDER)
    return Path(found[-1])


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("stock") / "evidence" / "debian"
    for rel, pattern in FILES.items():
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_one(pattern), dst)
    for rel in TREES:
        src = Path("/") / rel
        if not src.is_dir():
            unavailable(f"{src} is not installed", PROVIDER)
        shutil.copytree(src, root / rel, symlinks=True)  # sites-enabled stays links, read inside the tree
    return run_audit([root.parent])


def test_vsftpd_as_debian_ships_it(stock):
    assert worst(stock, "vsftpd.open") == "high"  # listen_ipv6=YES, no address restriction
    assert not by_id(stock, "vsftpd.anonymous_enable")
    assert worst(stock, "vsftpd.chroot_local_user") == "medium" and worst(stock, "vsftpd.ssl_enable") == "medium"
    assert worst(stock, "vsftpd.log") == "strength"
    assert not by_id(stock, "vsftpd.local_write")  # write_enable is commented out


def test_sshd_as_debian_ships_it(stock):
    pw = by_id(stock, "ssh.password_authentication")
    assert pw and pw[0]["severity"] == "medium" and "not set" in pw[0]["title"]
    assert worst(stock, "ssh.permit_root_login") == "medium"


def test_apache_as_debian_ships_it(stock):
    durations = by_id(stock, "apache.log_duration")
    assert durations and {f["severity"] for f in durations} == {"medium"}
    assert any(f["file"].endswith("sites-enabled/000-default.conf") for f in durations)  # through the link
    indexes = by_id(stock, "apache.options_indexes")
    assert indexes and indexes[0]["file"] == "debian/etc/apache2/apache2.conf" and "Indexes" in indexes[0]["evidence"]
    assert worst(stock, "apache.server_tokens") == "low"  # conf-enabled/security.conf: ServerTokens OS
    assert not by_id(stock, "apache.options_execcgi")  # serve-cgi-bin.conf applies only with mod_cgi enabled
    assert not by_id(stock, "apache.access_log") and not by_id(stock, "apache.log_client")


def test_nginx_as_debian_ships_it(stock):
    assert worst(stock, "nginx.log_duration") == "medium"  # access_log with the default combined format
    assert worst(stock, "nginx.server_tokens") == "low"  # "# server_tokens off;" is a comment
    assert not by_id(stock, "nginx.access_log")


def test_php_production_ini(stock):
    assert worst(stock, "php.disable_functions") == "medium"
    assert worst(stock, "php.allow_url_fopen") == "low"
    assert not by_id(stock, "php.allow_url_include") and not by_id(stock, "php.display_errors")


def test_postgresql_sample_configuration(stock):
    for check in ("pg.log_connections", "pg.log_min_duration_statement", "pg.log_destination", "pg.heartbeat"):
        assert worst(stock, check) == "medium", check
    prefix = by_id(stock, "pg.log_line_prefix")  # the default '%m [%p] ' names no client
    assert prefix and prefix[0]["severity"] == "medium" and "client address" in prefix[0]["title"]


def test_logs_as_debian_keeps_them(stock):
    kept = {f["title"].split(" kept")[0]: f for f in by_id(stock, "logrotate.retention")}
    syslog = next(f for t, f in kept.items() if "/var/log/syslog" in t)
    assert syslog["severity"] == "high" and "28 days" in syslog["title"]
    assert syslog["file"].startswith("debian/etc/logrotate.d/")
    assert worst(stock, "syslog.remote_copy") == "medium"
    assert worst(stock, "auditd.execve") == "medium"


def test_mariadb_as_debian_ships_it(tmp_path):
    main = Path("/etc/mysql/my.cnf")
    if not (main.exists() and Path("/etc/mysql/mariadb.conf.d/50-server.cnf").exists()):
        unavailable("MariaDB's configuration is not installed", ".ci/install-daemons.sh")
    root = tmp_path / "evidence" / "debian"
    shutil.copytree("/etc/mysql", root / "etc/mysql", symlinks=True)  # my.cnf is an alternatives link
    (root / "etc/alternatives").mkdir(parents=True)
    link = Path("/etc/alternatives/my.cnf")
    if link.is_symlink():  # the system's own absolute link, resolved inside the tree
        os.symlink(os.readlink(link), root / "etc/alternatives/my.cnf")
    found = run_audit([root.parent])
    assert worst(found, "mysql.slow_query_log") == "medium"  # commented out in 50-server.cnf
    assert worst(found, "mysql.general_log") == "low"
