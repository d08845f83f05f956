"""Each check with a minimal configuration that triggers it and one that does not.

A case is (check id, severity it reports on the triggering files, triggering files, clean files):
on the clean files the check reports nothing as serious (a strength, info, or nothing at all).
Paths are from the host's root.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from logsalvage.audit.host import AuditOptions
from logsalvage.audit.model import SEVERITY_RANK

from audit_support import audit_files, by_id, worst

PG = "etc/postgresql/15/main/postgresql.conf"
MY = "etc/mysql/my.cnf"
HTTPD = "etc/httpd/conf/httpd.conf"
NGINX = "etc/nginx/nginx.conf"
FTP = "etc/vsftpd.conf"
SSHD = "etc/ssh/sshd_config"
PHP = "etc/php.ini"
APACHE_BASE = 'ServerRoot "/etc/httpd"\nServerTokens Prod\nUser apache\n'
TIMED = 'LogFormat "%a %l %u %t \\"%r\\" %>s %b %D" timed\nCustomLog logs/access_log timed\n'
NGINX_OK = "http {\n  log_format t '$remote_addr [$time_local] \"$request\" $status $request_time';\n" \
           "  access_log /var/log/nginx/access.log t;\n  server_tokens off;\n}\n"
PASSWD = "root:x:0:0:root:/root:/bin/bash\nwebmaster:x:1001:1001::/home/webmaster:/bin/bash\n"
DOCROOT_HTTPD = APACHE_BASE + TIMED + 'DocumentRoot "/var/www/html"\n'
LISTING_HEAD = "# ls -la /var/www/html\ntotal 12\n"
FTP_LOCAL = "listen=YES\nanonymous_enable=NO\nlocal_enable=YES\nwrite_enable=YES\n"

CASES = [
    # PostgreSQL
    ("pg.log_connections", "medium", {PG: "port = 5432\n"}, {PG: "log_connections = on\n"}),
    ("pg.log_disconnections", "low", {PG: "port = 5432\n"}, {PG: "log_disconnections = on\n"}),
    ("pg.log_line_prefix", "medium", {PG: "log_line_prefix = '%m [%p] '\n"},
     {PG: "log_line_prefix = '%m [%p] %u@%d %h '\n"}),
    ("pg.log_line_prefix_time", "medium", {PG: "log_destination = 'stderr'\nlog_line_prefix = '%u %d %h '\n"},
     {PG: "log_destination = 'syslog'\nlog_line_prefix = '%u %d %h '\n"}),
    ("pg.log_statement", "low", {PG: "log_statement = 'none'\n"}, {PG: "log_statement = 'ddl'\n"}),
    ("pg.log_min_duration_statement", "medium", {PG: "log_min_duration_statement = -1\n"},
     {PG: "log_min_duration_statement = 3s\n"}),
    ("pg.log_min_messages", "medium", {PG: "log_min_messages = fatal\n"}, {PG: "log_min_messages = warning\n"}),
    ("pg.log_min_error_statement", "low", {PG: "log_min_error_statement = panic\n"},
     {PG: "log_min_error_statement = error\n"}),
    ("pg.log_destination", "medium", {PG: "log_destination = 'stderr'\nlogging_collector = off\n"},
     {PG: "log_destination = 'stderr'\nlogging_collector = on\n"}),
    ("pg.heartbeat", "medium", {PG: "port = 5432\n"},
     {PG: "port = 5432\n", "etc/cron.d/health": "* * * * * postgres /usr/bin/pg_isready -q -p 5432\n"}),
    # MySQL / MariaDB
    ("mysql.general_log", "low", {MY: "[mysqld]\nport = 3306\n"}, {MY: "[mysqld]\ngeneral_log = 1\n"}),
    ("mysql.slow_query_log", "medium", {MY: "[mysqld]\nport = 3306\n"},
     {MY: "[mysqld]\nslow_query_log = 1\nlong_query_time = 3\n"}),
    ("mysql.log_error", "low", {MY: "[mysqld]\n"}, {MY: "[mysqld]\nlog_error = /var/log/mysql/error.log\n"}),
    ("mysql.log_warnings", "medium", {MY: "[mysqld]\nlog_warnings = 1\n"}, {MY: "[mysqld]\nlog_warnings = 2\n"}),
    # Apache
    ("apache.access_log", "high", {HTTPD: APACHE_BASE}, {HTTPD: APACHE_BASE + TIMED}),
    ("apache.log_client", "high", {HTTPD: APACHE_BASE + 'LogFormat "%t \\"%r\\" %>s %D" x\nCustomLog logs/a x\n'},
     {HTTPD: APACHE_BASE + TIMED}),
    ("apache.log_duration", "medium",
     {HTTPD: APACHE_BASE + 'LogFormat "%h %l %u %t \\"%r\\" %>s %b" common\nCustomLog logs/access_log common\n'},
     {HTTPD: APACHE_BASE + TIMED}),
    ("apache.error_log", "high", {HTTPD: APACHE_BASE + TIMED + "ErrorLog /dev/null\n"},
     {HTTPD: APACHE_BASE + TIMED + "ErrorLog logs/error_log\n"}),
    ("apache.options_indexes", "medium",
     {HTTPD: APACHE_BASE + TIMED + '<Directory "/var/www/html">\n    Options Indexes FollowSymLinks\n</Directory>\n'},
     {HTTPD: APACHE_BASE + TIMED + '<Directory "/var/www/html">\n    Options -Indexes +FollowSymLinks\n'
                                    '</Directory>\n'}),
    ("apache.options_execcgi", "medium",
     {HTTPD: APACHE_BASE + TIMED + "<Directory /srv/cgi>\nOptions +ExecCGI\n</Directory>\n"},
     {HTTPD: APACHE_BASE + TIMED + "<Directory /srv/cgi>\nOptions None\n</Directory>\n"}),
    ("apache.script_alias", "low", {HTTPD: APACHE_BASE + TIMED + 'ScriptAlias /cgi-bin/ "/var/www/cgi-bin/"\n'},
     {HTTPD: APACHE_BASE + TIMED}),
    ("apache.server_tokens", "low", {HTTPD: TIMED + "ServerTokens OS\n"}, {HTTPD: TIMED + "ServerTokens Prod\n"}),
    ("apache.server_signature", "low", {HTTPD: APACHE_BASE + TIMED + "ServerSignature On\n"},
     {HTTPD: APACHE_BASE + TIMED + "ServerSignature Off\n"}),
    ("apache.user_nobody", "low", {HTTPD: TIMED + "ServerTokens Prod\nUser nobody\n"},
     {HTTPD: TIMED + "ServerTokens Prod\nUser apache\n"}),
    # nginx
    ("nginx.access_log", "high", {NGINX: "http {\n  server {\n    access_log off;\n  }\n}\n"}, {NGINX: NGINX_OK}),
    ("nginx.log_client", "high",
     {NGINX: "http {\n  log_format t '[$time_local] \"$request\" $request_time';\n  access_log /var/log/a t;\n}\n"},
     {NGINX: NGINX_OK}),
    ("nginx.log_duration", "medium", {NGINX: "http {\n  access_log /var/log/nginx/access.log;\n}\n"},
     {NGINX: NGINX_OK}),
    ("nginx.autoindex", "medium", {NGINX: NGINX_OK.replace("server_tokens off;", "server_tokens off; autoindex on;")},
     {NGINX: NGINX_OK.replace("server_tokens off;", "server_tokens off; autoindex off;")}),
    ("nginx.server_tokens", "low", {NGINX: NGINX_OK.replace("server_tokens off;", "")}, {NGINX: NGINX_OK}),
    # vsftpd
    ("vsftpd.open", "high", {FTP: "listen=YES\nanonymous_enable=NO\n"},
     {FTP: "listen=YES\nanonymous_enable=NO\ntcp_wrappers=YES\n", "etc/hosts.allow": "vsftpd: 153.156.83.40\n",
      "etc/hosts.deny": "ALL: ALL\n"}),
    ("vsftpd.anonymous_enable", "high", {FTP: "listen=YES\n"}, {FTP: "listen=YES\nanonymous_enable=NO\n"}),
    ("vsftpd.local_write", "medium", {FTP: FTP_LOCAL}, {FTP: FTP_LOCAL.replace("write_enable=YES", "write_enable=NO")}),
    ("vsftpd.chroot_local_user", "medium", {FTP: FTP_LOCAL}, {FTP: FTP_LOCAL + "chroot_local_user=YES\n"}),
    ("vsftpd.userlist", "low", {FTP: FTP_LOCAL}, {FTP: FTP_LOCAL + "userlist_enable=YES\nuserlist_deny=NO\n"}),
    ("vsftpd.ssl_enable", "medium", {FTP: "anonymous_enable=NO\n"}, {FTP: "anonymous_enable=NO\nssl_enable=YES\n"}),
    ("vsftpd.pasv_ports", "low", {FTP: "anonymous_enable=NO\n"},
     {FTP: "anonymous_enable=NO\npasv_min_port=40000\npasv_max_port=40100\n"}),
    ("vsftpd.log", "high", {FTP: "xferlog_enable=NO\n"}, {FTP: "xferlog_enable=YES\ndual_log_enable=YES\n"}),
    ("vsftpd.domain_account", "high",
     {FTP: FTP_LOCAL, "etc/hostname": "www.ferryco.example\n",
      "etc/passwd": "root:x:0:0::/root:/bin/bash\nferryco:x:1001:1001::/var/www:/bin/bash\n"},
     {FTP: FTP_LOCAL, "etc/hostname": "www.ferryco.example\n",
      "etc/passwd": "root:x:0:0::/root:/bin/bash\nmnt7q2x:x:1001:1001::/var/www:/bin/bash\n"}),
    # sshd
    ("ssh.password_authentication", "medium", {SSHD: "PermitRootLogin no\nPasswordAuthentication yes\n"},
     {SSHD: "PermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"}),
    ("ssh.pubkey_authentication", "medium", {SSHD: "PubkeyAuthentication no\n"}, {SSHD: "PubkeyAuthentication yes\n"}),
    ("ssh.permit_root_login", "high", {SSHD: "PermitRootLogin yes\n"}, {SSHD: "PermitRootLogin no\n"}),
    # accounts
    ("access.uid0", "high", {"etc/passwd": "root:x:0:0::/root:/bin/bash\ntoor:x:0:0::/root:/bin/bash\n"},
     {"etc/passwd": "root:x:0:0::/root:/bin/bash\ntoor:x:1002:1002::/home/toor:/bin/bash\n"}),
    ("access.service_shell", "medium", {"etc/passwd": "www-data:x:33:33:www-data:/var/www:/bin/bash\n"},
     {"etc/passwd": "www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\n"}),
    ("access.empty_password", "high", {"etc/shadow": "admin::19000:0:99999:7:::\n"},
     {"etc/shadow": "admin:$6$Xy$Zm0y8kqB:19000:0:99999:7:::\n"}),
    ("access.weak_hash", "medium", {"etc/shadow": "admin:$1$Xy$Zm0y8kqB:19000:0:99999:7:::\n"},
     {"etc/shadow": "admin:$6$Xy$Zm0y8kqB:19000:0:99999:7:::\n"}),
    # cron
    ("cron.service_account_crontab", "high", {"var/spool/cron/crontabs/www-data": "*/5 * * * * /usr/bin/true\n"},
     {"var/spool/cron/crontabs/alice": "*/5 * * * * /usr/bin/true\n",
      "etc/passwd": "alice:x:1000:1000::/home/alice:/bin/bash\n"}),
    ("cron.job_in_writable_place", "high", {"etc/crontab": "* * * * * root /tmp/.x/upd >/dev/null 2>&1\n"},
     {"etc/crontab": "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n"}),
    ("cron.allow", "medium", {"etc/crontab": "17 * * * * root run-parts /etc/cron.hourly\n"},
     {"etc/crontab": "17 * * * * root run-parts /etc/cron.hourly\n", "etc/cron.allow": "root\n"}),
    # logs
    ("logrotate.retention", "high", {"etc/logrotate.conf": "weekly\nrotate 4\n/var/log/messages {\n    missingok\n}\n"},
     {"etc/logrotate.conf": "weekly\nrotate 30\n/var/log/messages {\n    missingok\n}\n"}),
    ("syslog.remote_copy", "medium", {"etc/rsyslog.conf": "*.info;mail.none /var/log/messages\n"},
     {"etc/rsyslog.conf": "*.info;mail.none /var/log/messages\n*.* @@loghost.example:514\n"}),
    ("journald.storage", "medium", {"etc/systemd/journald.conf": "[Journal]\nStorage=volatile\n"},
     {"etc/systemd/journald.conf": "[Journal]\nStorage=persistent\n"}),
    ("time.sync", "medium", {"etc/hosts": "127.0.0.1 localhost\n"},
     {"etc/chrony.conf": "pool 2.debian.pool.ntp.org iburst\n"}),
    ("auditd.execve", "medium", {"etc/audit/rules.d/audit.rules": "-D\n-b 8192\n"},
     {"etc/audit/rules.d/audit.rules": "-D\n-a always,exit -F arch=b64 -S execve -k exec\n"}),
    # PHP
    ("php.allow_url_include", "high", {PHP: "[PHP]\nallow_url_include = On\n"},
     {PHP: "[PHP]\nallow_url_include = Off\n"}),
    ("php.allow_url_fopen", "low", {PHP: "[PHP]\nallow_url_fopen = On\n"}, {PHP: "[PHP]\nallow_url_fopen = Off\n"}),
    ("php.disable_functions", "medium", {PHP: "[PHP]\ndisable_functions =\n"},
     {PHP: "[PHP]\ndisable_functions = exec,system,passthru,shell_exec,proc_open,popen\n"}),
    ("php.expose_php", "low", {PHP: "[PHP]\nexpose_php = On\n"}, {PHP: "[PHP]\nexpose_php = Off\n"}),
    ("php.display_errors", "medium", {PHP: "[PHP]\ndisplay_errors = On\n"}, {PHP: "[PHP]\ndisplay_errors = Off\n"}),
    # web root
    ("webroot.ftp_writable", "high",
     {HTTPD: DOCROOT_HTTPD, FTP: FTP_LOCAL, "etc/passwd": PASSWD,
      "fs/ls.txt": LISTING_HEAD + "drwxr-xr-x 2 webmaster webmaster 4096 Jan  1  2017 .\n"},
     {HTTPD: DOCROOT_HTTPD, FTP: FTP_LOCAL, "etc/passwd": PASSWD,
      "fs/ls.txt": LISTING_HEAD + "drwxr-xr-x 2 root root 4096 Jan  1  2017 .\n"}),
    ("webroot.world_writable", "high",
     {HTTPD: DOCROOT_HTTPD, "fs/ls.txt": LISTING_HEAD + "drwxrwxrwx 2 root root 4096 Jan  1  2017 .\n"},
     {HTTPD: DOCROOT_HTTPD, "fs/ls.txt": LISTING_HEAD + "drwxr-xr-x 2 root root 4096 Jan  1  2017 .\n"}),
    ("webroot.unknown_scripts", "high",
     {HTTPD: DOCROOT_HTTPD, "fs/inventory.sha256": "a" * 64 + "  /var/www/html/index.php\n",
      "fs/ls.txt": LISTING_HEAD + "drwxr-xr-x 2 root root 4096 Jan  1  2017 .\n"
                   "-rw-r--r-- 1 root root 120 Jan  1  2017 index.php\n"
                   "-rw-r--r-- 1 root root 980 Dec 24  2017 wp-session.php\n"},
     {HTTPD: DOCROOT_HTTPD, "fs/inventory.sha256": "a" * 64 + "  /var/www/html/index.php\n",
      "fs/ls.txt": LISTING_HEAD + "drwxr-xr-x 2 root root 4096 Jan  1  2017 .\n"
                   "-rw-r--r-- 1 root root 120 Jan  1  2017 index.php\n"}),
    # packages, schema
    ("packages.age", "high", {"var/log/dpkg.log": "2016-03-01 10:00:00 upgrade bash:amd64 4.3-1 4.3-2\n"},
     {"var/log/dpkg.log": "2017-12-20 10:00:00 upgrade bash:amd64 4.4-1 4.4-2\n"}),
    ("schema.password_column", "medium",
     {"dumps/s.sql": "CREATE TABLE public.u (\n    id integer,\n    password text\n);\n"},
     {"dumps/s.sql": "CREATE TABLE public.u (\n    id integer,\n    password_hash text\n);\n"}),
]
OPTIONS = AuditOptions(acquired=datetime(2018, 1, 6, 6, 0, tzinfo=timezone.utc))


@pytest.mark.parametrize("check, severity, trigger, clean", CASES, ids=[c[0] for c in CASES])
def test_check_triggers_on_its_weakness(tmp_path, check, severity, trigger, clean):
    found = audit_files(tmp_path, trigger, OPTIONS)
    assert worst(found, check) == severity, by_id(found, check) or [f["id"] for f in found["findings"]]
    f = by_id(found, check)[0]
    assert f["file"] and f["why"] and f["fix"] and f["category"]
    assert f["host"] == "h1"


@pytest.mark.parametrize("check, severity, trigger, clean", CASES, ids=[c[0] for c in CASES])
def test_check_stays_quiet_on_the_fixed_configuration(tmp_path, check, severity, trigger, clean):
    found = audit_files(tmp_path, clean, OPTIONS)
    now = worst(found, check)
    assert now is None or SEVERITY_RANK[now] > SEVERITY_RANK[severity], by_id(found, check)


def test_every_check_has_a_case():
    """A check added without a trigger/clean case here fails this test."""
    import inspect
    import logsalvage.audit as pkg
    import pkgutil

    ids = set()
    for mod in pkgutil.iter_modules(pkg.__path__):
        source = inspect.getsource(__import__(f"logsalvage.audit.{mod.name}", fromlist=["x"]))
        for chunk in source.split('f("')[1:] + source.split('finding("')[1:]:
            ids.add(chunk.split('"', 1)[0])
    covered = {c[0] for c in CASES} | {"audit.no_configuration", "mysql.heartbeat", "pg.connection_attribution"}
    assert ids - covered == set(), ids - covered


def test_pointing_at_the_line_in_force(tmp_path):
    found = audit_files(tmp_path, {PG: "log_connections = off\n# later\nlog_connections = on\n"})
    f = by_id(found, "pg.log_connections")[0]
    assert f["severity"] == "strength" and f["line"] == 3 and f["evidence"] == "log_connections = on"
    assert f["file"] == "h1/" + PG


def test_client_user_and_database_in_every_record_is_a_strength(tmp_path):
    found = audit_files(tmp_path, {PG: "log_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'\n"})
    assert worst(found, "pg.connection_attribution") == "strength" and not by_id(found, "pg.log_line_prefix")
    found = audit_files(tmp_path / "b", {PG: "log_destination = 'csvlog'\nlogging_collector = on\n"})
    assert worst(found, "pg.connection_attribution") == "strength"  # csvlog has its own columns


def test_no_configuration_collected(tmp_path):
    ev = tmp_path / "evidence"
    (ev / "h1/var/log").mkdir(parents=True)
    (ev / "h1/var/log/messages").write_text("x\n")
    from logsalvage.audit.run import run_audit

    found = run_audit([ev])
    assert [f["id"] for f in found["findings"]] == ["audit.no_configuration"]
    assert found["findings"][0]["severity"] == "info" and found["findings"][0]["absent"]


def test_mysql_heartbeat_and_dashed_options_through_includedir(tmp_path):
    found = audit_files(tmp_path, {
        MY: "[client]\nport = 3306\n!includedir /etc/mysql/conf.d/\n",
        "etc/mysql/conf.d/slow.cnf": "[mysqld]\nslow-query-log = ON\nlong-query-time = 2\n",
        "etc/cron.d/dbcheck": "*/2 * * * * root /usr/bin/mysqladmin ping >/dev/null\n"})
    assert worst(found, "mysql.slow_query_log") == "strength"
    beat = by_id(found, "mysql.heartbeat")
    assert beat and beat[0]["title"].endswith("every 2 min")


def test_odd_but_valid_lines_do_not_stop_a_check(tmp_path):
    found = audit_files(tmp_path, {
        "etc/chrony.conf": "server\npool\n",  # a keyword without its value
        "dumps/p.sql": "CREATE TABLE p (id int, password text) PARTITION BY RANGE (id);\n"
                       "CREATE TABLE p1 PARTITION OF p (password DEFAULT 'x') FOR VALUES FROM (1) TO (10);\n",
        "dumps/m.sql": "-- MariaDB dump\nCREATE TABLE `t` (\n  `password` (\n) ENGINE=InnoDB;\n",
        "etc/ssh/sshd_config": "PasswordAuthentication\nMatch\n",
        "etc/logrotate.conf": "rotate\n{\n}\n/var/log/messages {\nrotate x\n}\n"})
    assert not found["hosts"][0]["notes"]
    assert [f["title"].split(" (")[0] for f in by_id(found, "schema.password_column")] == ["Column p.password"]
    assert worst(found, "time.sync") == "medium"
