"""The configuration and file-system evidence: httpd.conf, postgresql.conf, logrotate.conf,
/etc/localtime, the docroot inventory and the listing of the hidden directory."""

from __future__ import annotations

import importlib.resources
import random

from . import docroot
from .stamps import full_iso_ls
from .timeline import HIDDEN_DIR, UNPACKED, jst


def localtime() -> bytes:
    """The Asia/Tokyo TZif file from the tzdata package (what /etc/localtime points to)."""
    return importlib.resources.files("tzdata.zoneinfo").joinpath("Asia/Tokyo").read_bytes()


HTTPD_CONF = """\
#
# httpd.conf -- Apache HTTP Server 2.2.21 (built from source, installed with the RHEL layout)
#
ServerTokens OS
ServerRoot "/etc/httpd"
PidFile run/httpd.pid
Timeout 60
KeepAlive Off
MaxKeepAliveRequests 100
KeepAliveTimeout 15

<IfModule prefork.c>
StartServers       8
MinSpareServers    5
MaxSpareServers   20
ServerLimit      256
MaxClients       256
MaxRequestsPerChild  4000
</IfModule>

Listen 80

LoadModule authz_host_module modules/mod_authz_host.so
LoadModule log_config_module modules/mod_log_config.so
LoadModule mime_module modules/mod_mime.so
LoadModule dir_module modules/mod_dir.so
LoadModule alias_module modules/mod_alias.so
LoadModule rewrite_module modules/mod_rewrite.so
LoadModule cgi_module modules/mod_cgi.so
LoadModule php5_module modules/libphp5.so

# the server runs as nobody: the web shells, and the crontab they installed, ran as nobody
User nobody
Group nobody

ServerAdmin root@localhost
ServerName www.kyushoferry.example:80
UseCanonicalName Off
DocumentRoot "/var/www/html"

<Directory />
    Options FollowSymLinks
    AllowOverride None
</Directory>

<Directory "/var/www/html">
    Options Indexes FollowSymLinks
    AllowOverride None
    Order allow,deny
    Allow from all
</Directory>

DirectoryIndex index.php index.html
AccessFileName .htaccess
<Files ~ "^\\.ht">
    Order allow,deny
    Deny from all
</Files>

AddType application/x-httpd-php .php
TypesConfig /etc/mime.types
HostnameLookups Off

ErrorLog logs/error_log
LogLevel warn

LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\"" combined
LogFormat "%h %l %u %t \\"%r\\" %>s %b" common
LogFormat "%{Referer}i -> %U" referer
LogFormat "%{User-agent}i" agent

CustomLog logs/access_log combined

ServerSignature On
ScriptAlias /cgi-bin/ "/var/www/cgi-bin/"
<Directory "/var/www/cgi-bin">
    AllowOverride None
    Options None
    Order allow,deny
    Allow from all
</Directory>
"""

POSTGRESQL_CONF = """\
# -----------------------------
# PostgreSQL configuration file
# -----------------------------
#
# This file consists of lines of the form:
#
#   name = value
#
# (The "=" is optional.)  Whitespace may be used.  Comments are introduced with
# "#" anywhere on a line.  The complete list of parameter names and allowed
# values can be found in the PostgreSQL documentation.

#------------------------------------------------------------------------------
# FILE LOCATIONS
#------------------------------------------------------------------------------

#data_directory = 'ConfigDir'		# use data in another directory
#hba_file = 'ConfigDir/pg_hba.conf'	# host-based authentication file

#------------------------------------------------------------------------------
# CONNECTIONS AND AUTHENTICATION
#------------------------------------------------------------------------------

listen_addresses = '*'			# what IP address(es) to listen on;
port = 5432				# (change requires restart)
max_connections = 100			# (change requires restart)
#superuser_reserved_connections = 3	# (change requires restart)
#unix_socket_directories = '/var/run/postgresql, /tmp'
#authentication_timeout = 1min		# 1s-600s
#ssl = off				# (change requires restart)
#password_encryption = on

#------------------------------------------------------------------------------
# RESOURCE USAGE (except WAL)
#------------------------------------------------------------------------------

shared_buffers = 512MB			# min 128kB
#temp_buffers = 8MB			# min 800kB
work_mem = 8MB				# min 64kB
maintenance_work_mem = 128MB		# min 1MB

#------------------------------------------------------------------------------
# WRITE AHEAD LOG
#------------------------------------------------------------------------------

#wal_level = minimal			# minimal, archive, or hot_standby
#fsync = on				# turns forced synchronization on or off
#synchronous_commit = on		# synchronization level;
checkpoint_segments = 16		# in logfile segments, min 1, 16MB each
#checkpoint_timeout = 5min		# range 30s-1h

#------------------------------------------------------------------------------
# QUERY TUNING
#------------------------------------------------------------------------------

effective_cache_size = 2GB
#default_statistics_target = 100	# range 1-10000

#------------------------------------------------------------------------------
# ERROR REPORTING AND LOGGING
#------------------------------------------------------------------------------

# - Where to Log -

log_destination = 'syslog'		# Valid values are combinations of
					# stderr, csvlog, syslog, and eventlog,
					# depending on platform.  csvlog
					# requires logging_collector to be on.

# This is used when logging to stderr:
logging_collector = off			# Enable capturing of stderr and csvlog
					# into log files. Required to be on for
					# csvlogs.
					# (change requires restart)

# These are only used if logging_collector is on:
#log_directory = 'pg_log'		# directory where log files are written,
#log_filename = 'postgresql-%a.log'	# log file name pattern,
#log_truncate_on_rotation = on		# If on, an existing log file with the
#log_rotation_age = 1d			# Automatic rotation of logfiles will
#log_rotation_size = 0			# Automatic rotation of logfiles will

# These are relevant when logging to syslog:
syslog_facility = 'LOCAL7'
syslog_ident = 'postgres'

# - When to Log -

#client_min_messages = notice		# values in order of decreasing detail:
log_min_messages = info			# values in order of decreasing detail:
					#   debug5
					#   debug4
					#   debug3
					#   debug2
					#   debug1
					#   info
					#   notice
					#   warning
					#   error
					#   log
					#   fatal
					#   panic

log_min_error_statement = error		# values in order of decreasing detail:
					#   debug5 ... error ... panic (effectively off)

log_min_duration_statement = 3000	# -1 is disabled, 0 logs all statements
					# and their durations, > 0 logs only
					# statements running at least this number
					# of milliseconds

# - What to Log -

#debug_print_parse = off
#debug_print_rewritten = off
#debug_print_plan = off
#debug_pretty_print = on
#log_checkpoints = off
#log_connections = off
#log_disconnections = off
#log_duration = off
#log_error_verbosity = default		# terse, default, or verbose messages
#log_hostname = off
log_line_prefix = 'DATABASE=%d,USER=%u,CLIENT=%r,'	# special values:
					#   %a = application name
					#   %u = user name
					#   %d = database name
					#   %r = remote host and port
					#   %h = remote host
					#   %p = process ID
					#   %t = timestamp without milliseconds
					#   %m = timestamp with milliseconds
					#   %i = command tag
					#   %e = SQL state
					#   %c = session ID
					#   %l = session line number
					#   %s = session start timestamp
					#   %v = virtual transaction ID
					#   %x = transaction ID (0 if none)
					#   %q = stop here in non-session
					#        processes
					#   %% = '%'
					# e.g. '<%u%%%d> '
#log_lock_waits = off			# log lock waits >= deadlock_timeout
#log_statement = 'none'			# none, ddl, mod, all
#log_temp_files = -1			# log temporary files equal or larger
log_timezone = 'Asia/Tokyo'

#------------------------------------------------------------------------------
# CLIENT CONNECTION DEFAULTS
#------------------------------------------------------------------------------

datestyle = 'iso, ymd'
timezone = 'Asia/Tokyo'
lc_messages = 'C'			# locale for system error message
lc_monetary = 'ja_JP.UTF-8'		# locale for monetary formatting
lc_numeric = 'ja_JP.UTF-8'		# locale for number formatting
lc_time = 'ja_JP.UTF-8'			# locale for time formatting
default_text_search_config = 'pg_catalog.simple'
#statement_timeout = 0			# in milliseconds, 0 is disabled
statement_timeout = 60000
"""

LOGROTATE_CONF = """\
# see "man logrotate" for details
# rotate log files weekly
weekly

# keep 4 weeks worth of backlogs
rotate 4

# create new (empty) log files after rotating old ones
create

# use date as a suffix of the rotated file
dateext

# uncomment this if you want your log files compressed
#compress

# RPM packages drop log rotation information into this directory
include /etc/logrotate.d

# no packages own wtmp and btmp -- we'll rotate them here
/var/log/wtmp {
    monthly
    create 0664 root utmp
	minsize 1M
    rotate 1
}

/var/log/btmp {
    missingok
    monthly
    create 0600 root utmp
    rotate 1
}

# system-specific logs may be also be configured here.
"""

# name, mode, owner, size: the contents of v.tgz unpacked at 2017-12-25 15:29:01
HIDDEN_FILES = (
    ("a", "-rwxr-xr-x", 517), ("cron.d", "-rw-r--r--", 67), ("dir.dir", "-rw-r--r--", 45),
    ("f", "-rwxr-xr-x", 8792), ("g", "-rwxr-xr-x", 8744), ("m", "-rwxr-xr-x", 1203136),
    ("p", "-rwxr-xr-x", 2342848), ("r", "-rwxr-xr-x", 303), ("s", "-rwxr-xr-x", 1083208),
    ("t", "-rwxr-xr-x", 31422), ("upd", "-rwxr-xr-x", 233), ("x", "-rwxr-xr-x", 451),
)


def hidden_dir_listing(seed: int) -> bytes:
    """``ls -la``/``ls -lac`` (full-iso) of the hidden directory and ``ls -lad`` of its parents."""
    rng = random.Random(f"{seed}:ls")
    nanos = sorted(rng.randrange(300_000_000, 420_000_000) for _ in range(len(HIDDEN_FILES) + 1))
    dir_ns = nanos[-1]
    parent_ns = rng.randrange(100_000_000, 300_000_000)
    old = jst(2016, 3, 3, 11, 14, 52)
    total = sum(-(-size // 4096) * 4 for _, _, size in HIDDEN_FILES) + 8
    out = []
    for flag, label in (("-la", "modification"), ("-lac", "status change (ctime)")):
        out.append(f"# ls {flag} --time-style=full-iso {HIDDEN_DIR}/    ({label} times)")
        out.append(f"total {total}")
        out.append(f"drwxr-xr-x. 2 nobody nobody    4096 {full_iso_ls(UNPACKED, dir_ns)} .")
        out.append(f"drwxrwxrwx. 3 root   root      4096 {full_iso_ls(UNPACKED, parent_ns)} ..")
        for (name, mode, size), ns in zip(HIDDEN_FILES, nanos):
            out.append(f"{mode}. 1 nobody nobody {size:>7} {full_iso_ls(UNPACKED, ns)} {name}")
        out.append("")
    out.append("# ls -lad --time-style=full-iso (the parents, world-writable)")
    parts = HIDDEN_DIR.split("/")
    for i in range(5, len(parts)):
        path = "/".join(parts[:i])
        t, ns = (UNPACKED, parent_ns) if i == len(parts) - 1 else (old, rng.randrange(10**9))
        out.append(f"drwxrwxrwx. 3 root   root      4096 {full_iso_ls(t, ns)} {path}")
    out.append("")
    return "\n".join(out).encode()


def inventory() -> bytes:
    return docroot.inventory()
