#!/usr/bin/env bash
# The packages whose shipped configuration files tests/audit/test_stock_configs.py audits as a
# stock Debian web and database server: vsftpd, openssh-server (sshd_config), nginx-common,
# logrotate, auditd (its rules), rsyslog, systemd-timesyncd, MariaDB (its server .cnf); Apache,
# PHP and PostgreSQL come with install-daemons.sh. Nothing is started (apt-install.sh forbids it).
exec "$(dirname "$0")/apt-install.sh" install-config-samples.sh vsftpd openssh-server nginx-common logrotate \
    auditd rsyslog systemd-timesyncd mariadb-server
