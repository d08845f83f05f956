#!/usr/bin/env bash
# The real daemons the integration tests (pytest -m daemon) drive: PostgreSQL and rsyslog from
# Debian's own archive, and Apache httpd with PHP and its PostgreSQL driver for the deliberately
# vulnerable page that tests/integration/test_sqlmap_scan.py scans; MariaDB (with mysqld_safe and
# its client) and pgBouncer whose logs tests/integration/test_database_logs_daemon.py reads; nginx
# with php-fpm (and curl to ask them) whose error log tests/integration/test_nginx_error_daemon.py
# reads; vsftpd (anonymous upload into the web root, its native log and xferlog) and cron (the real
# crontab program, run by nobody in a private spool) for tests/watch/test_watch_acceptance.py.
# The test fixtures start private instances themselves.
exec "$(dirname "$0")/apt-install.sh" install-daemons.sh postgresql postgresql-client rsyslog \
    apache2 libapache2-mod-php php-pgsql mariadb-server mariadb-client pgbouncer nginx-light php-fpm curl \
    vsftpd cron
