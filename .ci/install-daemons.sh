#!/usr/bin/env bash
# The real daemons the integration tests (pytest -m daemon) drive: PostgreSQL and rsyslog from
# Debian's own archive, and Apache httpd with PHP and its PostgreSQL driver for the deliberately
# vulnerable page that tests/integration/test_sqlmap_scan.py scans. The test fixtures start
# private instances themselves.
exec "$(dirname "$0")/apt-install.sh" install-daemons.sh postgresql postgresql-client rsyslog \
    apache2 libapache2-mod-php php-pgsql
