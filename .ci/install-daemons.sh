#!/usr/bin/env bash
# The real daemons the integration tests (pytest -m daemon) drive: PostgreSQL and rsyslog from
# Debian's own archive. The test fixtures start private instances themselves.
exec "$(dirname "$0")/apt-install.sh" install-daemons.sh postgresql postgresql-client rsyslog
