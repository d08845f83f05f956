"""The system configuration the responders collected from web01 and db01 beside the logs: what
``logsalvage audit`` reads to say what made the incident possible and what made it answerable.

As the incident had it: vsftpd open to the internet with the maintenance account named after the
domain (``kyushoferry``), whose home holds the web root it owns; Apache running as ``nobody`` with
directory listings; PHP free to run commands; ssh taking passwords; logs rotated weekly and kept
four weeks on db01 (eight on web01, a year for Apache's), no copy elsewhere; PostgreSQL logging
client, user and database on every record and statements over 3 s, and a health check every 30 s
(``incomplete startup packet``). ``nobody``'s crontab as found on 2018-01-05, before it was removed,
is kept at its place in the spool; ``fs/ls-docroot.txt`` lists the web root with the files the FTP
sessions left.
"""

from __future__ import annotations

import random

from . import actors, docroot
from .attack import AttackPlan
from .stamps import full_iso_ls, jst
from .timeline import ACQUIRED, CRON_REPLACE_2, HIDDEN_DIR

INSTALLED = jst(2015, 12, 3, 10, 41, 27)  # RHEL 7.2 installed
SITE_BUILT = jst(2016, 3, 3, 14, 2, 51)  # Apache and PHP built, the site deployed (httpd.conf's time)
DB_BUILT = jst(2016, 11, 18, 16, 40, 3)  # db01 set up (postgresql.conf's time)

PASSWD_BASE = """\
root:x:0:0:root:/root:/bin/bash
bin:x:1:1:bin:/bin:/sbin/nologin
daemon:x:2:2:daemon:/sbin:/sbin/nologin
adm:x:3:4:adm:/var/adm:/sbin/nologin
lp:x:4:7:lp:/var/spool/lpd:/sbin/nologin
sync:x:5:0:sync:/sbin:/bin/sync
shutdown:x:6:0:shutdown:/sbin:/sbin/shutdown
halt:x:7:0:halt:/sbin:/sbin/halt
mail:x:8:12:mail:/var/spool/mail:/sbin/nologin
operator:x:11:0:operator:/root:/sbin/nologin
games:x:12:100:games:/usr/games:/sbin/nologin
ftp:x:14:50:FTP User:/var/ftp:/sbin/nologin
nobody:x:99:99:Nobody:/:/sbin/nologin
systemd-network:x:192:192:systemd Network Management:/:/sbin/nologin
dbus:x:81:81:System message bus:/:/sbin/nologin
polkitd:x:999:998:User for polkitd:/:/sbin/nologin
tss:x:59:59:Account used by the trousers package to sandbox the tcsd daemon:/dev/null:/sbin/nologin
sshd:x:74:74:Privilege-separated SSH:/var/empty/sshd:/sbin/nologin
postfix:x:89:89::/var/spool/postfix:/sbin/nologin
chrony:x:998:996::/var/lib/chrony:/sbin/nologin
admin:x:1000:1000:maintenance administrator:/home/admin:/bin/bash
"""
WEB01_PASSWD = PASSWD_BASE + f"{actors.FTP_USER}:x:1001:1001:web site maintenance (FTP):/var/www:/bin/bash\n"
DB01_PASSWD = PASSWD_BASE + "postgres:x:26:26:PostgreSQL Server:/var/lib/pgsql:/bin/bash\n"

VSFTPD_CONF = """\
# Example config file /etc/vsftpd/vsftpd.conf
#
# The default compiled in settings are fairly paranoid. This sample file
# loosens things up a bit, to make the ftp daemon more usable.
# Please see vsftpd.conf.5 for all compiled in defaults.
#
# Allow anonymous FTP? (Beware - allowed by default if you comment this out).
anonymous_enable=NO
#
# Uncomment this to allow local users to log in.
# When SELinux is enforcing check for SE bool ftp_home_dir
local_enable=YES
#
# Uncomment this to enable any form of FTP write command.
write_enable=YES
#
# Default umask for local users is 077. You may wish to change this to 022,
# if your users expect that (022 is used by most other ftpd's)
local_umask=022
#
# Activate directory messages - messages given to remote users when they
# go into a certain directory.
dirmessage_enable=YES
#
# Activate logging of uploads/downloads.
xferlog_enable=YES
#
# Make sure PORT transfer connections originate from port 20 (ftp-data).
connect_from_port_20=YES
#
# If you want, you can have your log file in standard ftpd xferlog format.
# Note that the default log file location is /var/log/xferlog in this case.
xferlog_std_format=YES
#
# Also write vsftpd's own log (logins, failed logins) to /var/log/vsftpd.log.
dual_log_enable=YES
#
# You may specify an explicit list of local users to chroot() to their home
# directory. If chroot_local_user is YES, then this list becomes a list of
# users to NOT chroot().
chroot_local_user=YES
#
# When "listen" directive is enabled, vsftpd runs in standalone mode and
# listens on IPv4 sockets.
listen=YES
#
# This directive enables listening on IPv6 sockets.
listen_ipv6=NO

pam_service_name=vsftpd
userlist_enable=YES
tcp_wrappers=YES
"""

# vsftpd's deny lists as the package installs them (user_list with userlist_deny's default YES)
VSFTPD_USER_LIST = """\
# vsftpd userlist
# If userlist_deny=NO, only allow users in this file
# If userlist_deny=YES (default), never allow users in this file, and
# do not even prompt for a password.
# Note that the default vsftpd pam config also checks /etc/vsftpd/ftpusers
# for users that are denied.
root
bin
daemon
adm
lp
sync
shutdown
halt
mail
news
uucp
operator
games
nobody
"""

SSHD_CONFIG = """\
#	$OpenBSD: sshd_config,v 1.93 2014/01/10 05:59:19 djm Exp $

# This is the sshd server system-wide configuration file.  See
# sshd_config(5) for more information.

#Port 22
#AddressFamily any
#ListenAddress 0.0.0.0

HostKey /etc/ssh/ssh_host_rsa_key
HostKey /etc/ssh/ssh_host_ecdsa_key

# Logging
SyslogFacility AUTHPRIV
#LogLevel INFO

# Authentication:

#LoginGraceTime 2m
#PermitRootLogin yes
#StrictModes yes
#MaxAuthTries 6

#PubkeyAuthentication yes

AuthorizedKeysFile	.ssh/authorized_keys

# To disable tunneled clear text passwords, change to no here!
#PasswordAuthentication yes
#PermitEmptyPasswords no
PasswordAuthentication yes

# Change to no to disable s/key passwords
ChallengeResponseAuthentication no

UsePAM yes

X11Forwarding yes
UsePrivilegeSeparation sandbox		# Default for new installations.

# Accept locale-related environment variables
AcceptEnv LANG LC_CTYPE LC_NUMERIC LC_TIME LC_COLLATE LC_MONETARY LC_MESSAGES

# override default of no subsystems
Subsystem	sftp	/usr/libexec/openssh/sftp-server
"""

PHP_INI = """\
[PHP]

;;;;;;;;;;;;;;;;;;;
; About php.ini   ;
;;;;;;;;;;;;;;;;;;;
; This is the php.ini-production file of PHP 5.3.29, as installed with the site.

engine = On
short_open_tag = Off
asp_tags = Off
precision = 14
output_buffering = 4096
safe_mode = Off
open_basedir =

; This directive allows you to disable certain functions for security reasons.
disable_functions =
disable_classes =

expose_php = On
max_execution_time = 30
max_input_time = 60
memory_limit = 128M

error_reporting = E_ALL & ~E_DEPRECATED
display_errors = Off
display_startup_errors = Off
log_errors = On
log_errors_max_len = 1024

register_globals = Off
post_max_size = 8M
magic_quotes_gpc = Off

file_uploads = On
upload_max_filesize = 2M

; Whether to allow the treatment of URLs (like http:// or ftp://) as files.
allow_url_fopen = On

; Whether to allow include/require to open URLs (like http:// or ftp://) as files.
allow_url_include = Off

default_socket_timeout = 60

[Date]
date.timezone = Asia/Tokyo

[Session]
session.save_handler = files
session.save_path = "/var/lib/php/session"
session.use_cookies = 1
"""

LOGROTATE_SYSLOG = """\
/var/log/cron
/var/log/maillog
/var/log/messages
/var/log/secure
/var/log/spooler
{
    missingok
    sharedscripts
{extra}    postrotate
	/bin/kill -HUP `cat /var/run/syslogd.pid 2> /dev/null` 2> /dev/null || true
    endscript
}
"""

LOGROTATE_HTTPD = """\
/var/log/httpd/*log {
    weekly
    rotate 52
    compress
    delaycompress
    missingok
    notifempty
    sharedscripts
    postrotate
        /bin/kill -USR1 `cat /etc/httpd/run/httpd.pid 2>/dev/null` 2> /dev/null || true
    endscript
}
"""

RSYSLOG_CONF = """\
# rsyslog configuration file

# For more information see /usr/share/doc/rsyslog-*/rsyslog_conf.html
# If you experience problems, see http://www.rsyslog.com/doc/troubleshoot.html

#### MODULES ####

$ModLoad imuxsock # provides support for local system logging (e.g. via logger command)
$ModLoad imjournal # provides access to the systemd journal

#### GLOBAL DIRECTIVES ####

# Where to place auxiliary files
$WorkDirectory /var/lib/rsyslog

# Use default timestamp format
$ActionFileDefaultTemplate RSYSLOG_TraditionalFileFormat

# Include all config files in /etc/rsyslog.d/
$IncludeConfig /etc/rsyslog.d/*.conf

# Turn off message reception via local log socket;
# local messages are retrieved through imjournal now.
$OmitLocalLogging on

# File to store the position in the journal
$IMJournalStateFile imjournal.state

#### RULES ####

# Log anything (except mail) of level info or higher.
# Don't log private authentication messages!
*.info;mail.none;authpriv.none;cron.none                /var/log/messages

# The authpriv file has restricted access.
authpriv.*                                              /var/log/secure

# Log all the mail messages in one place.
mail.*                                                  -/var/log/maillog

# Log cron stuff
cron.*                                                  /var/log/cron

# Everybody gets emergency messages
*.emerg                                                 :omusrmsg:*

# Save news errors of level crit and higher in a special file.
uucp,news.crit                                          /var/log/spooler

# Save boot messages also to boot.log
local7.*                                                /var/log/boot.log

# ### begin forwarding rule ###
# An on-disk queue is created for this action. If the remote host is
# down, messages are spooled to disk and sent when it is up again.
#$ActionQueueFileName fwdRule1 # unique name prefix for spool files
#$ActionQueueType LinkedList   # run asynchronously
#*.* @@remote-host:514
# ### end of the forwarding rule ###
"""

CHRONY_CONF = """\
# Use public servers from the pool.ntp.org project.
# Please consider joining the pool (http://www.pool.ntp.org/join.html).
server 0.rhel.pool.ntp.org iburst
server 1.rhel.pool.ntp.org iburst
server 2.rhel.pool.ntp.org iburst
server 3.rhel.pool.ntp.org iburst

# Record the rate at which the system clock gains/losses time.
driftfile /var/lib/chrony/drift

# Allow the system clock to be stepped in the first three updates
# if its offset is larger than 1 second.
makestep 1.0 3

# Enable kernel synchronization of the real-time clock (RTC).
rtcsync

# Specify directory for log files.
logdir /var/log/chrony
"""

# the monitoring's health check: a TCP connect to PostgreSQL's port and hang up, every 30 s
# (the server logs "incomplete startup packet" from 127.0.0.1 each time)
PG_HEALTHCHECK_CRON = """\
# PostgreSQL port check for the monitoring, every 30 seconds
SHELL=/bin/bash
PATH=/sbin:/bin:/usr/sbin:/usr/bin
* * * * * root /usr/local/bin/pg-portcheck
* * * * * root sleep 30; /usr/local/bin/pg-portcheck
"""
PG_PORTCHECK = """\
#!/bin/bash
# Is PostgreSQL accepting connections? Open a TCP connection to its port and close it again.
exec 3<>/dev/tcp/127.0.0.1/5432 || { logger -t pg-portcheck "PostgreSQL port closed"; exit 1; }
exec 3>&-
"""

RPM_LAST = (  # rpm -qa --last on web01 (newest first): nothing installed or upgraded after the site was built
    ("libmcrypt-2.5.8-13.el7.x86_64", SITE_BUILT - 3600),
    ("gd-2.0.35-26.el7.x86_64", SITE_BUILT - 3700),
    ("libxml2-devel-2.9.1-6.el7_2.2.x86_64", SITE_BUILT - 3800),
    ("openssl-devel-1.0.1e-42.el7_1.9.x86_64", SITE_BUILT - 3900),
    ("gcc-4.8.5-4.el7.x86_64", SITE_BUILT - 4000),
    ("vsftpd-3.0.2-10.el7.x86_64", INSTALLED + 86400),
    ("openssh-server-6.6.1p1-22.el7.x86_64", INSTALLED),
    ("chrony-2.1.1-1.el7.x86_64", INSTALLED),
    ("rsyslog-7.4.7-12.el7.x86_64", INSTALLED),
    ("logrotate-3.8.6-6.el7.x86_64", INSTALLED),
    ("cronie-1.4.11-14.el7.x86_64", INSTALLED),
    ("bash-4.2.46-19.el7.x86_64", INSTALLED - 120),
    ("glibc-2.17-105.el7.x86_64", INSTALLED - 300),
    ("kernel-3.10.0-327.el7.x86_64", INSTALLED - 400),
)


def rpm_last() -> bytes:
    """``rpm -qa --last`` as RHEL 7 prints it in the en_US locale (the host's zone: JST)."""
    import time

    lines = []
    for name, t in RPM_LAST:
        lt = time.gmtime(t + 9 * 3600)
        stamp = time.strftime("%a %d %b %Y %I:%M:%S %p", lt)
        lines.append(f"{name:<45} {stamp} JST")
    return ("\n".join(lines) + "\n").encode()


def nobody_crontab() -> bytes:
    """nobody's crontab as the responders found it (installed from the hidden directory's cron.d)."""
    return f"* * * * * {HIDDEN_DIR}/upd >/dev/null 2>&1\n".encode()


def docroot_listing(attack: AttackPlan, seed: int) -> bytes:
    """``ls -la`` of /var/www and of the web root at acquisition: the site's files as deployed and
    whatever the FTP sessions (maintenance and intruders) uploaded, renamed or created; all of it
    owned by the FTP account."""
    rng = random.Random(f"{seed}:ls-docroot")
    user = actors.FTP_USER
    files: dict[str, tuple[int, int]] = {}  # name -> (size, mtime)
    # (a person deploying: no two entries of a directory in the same second, which would read as an unpack)
    dirs = {"css": SITE_BUILT + 11, "img": SITE_BUILT + 17, "js": SITE_BUILT + 23, "lib": SITE_BUILT + 29}
    for i, (path, size) in enumerate(docroot.FILES):
        if "/" not in path:
            files[path] = (size, SITE_BUILT + 40 + i * 7)
    for session in sorted(attack.ftp, key=lambda s: s.t):
        for op in session.ops:
            if not op.ok or not op.path.startswith("/htdocs/"):
                continue
            name = op.path[len("/htdocs/"):]
            if op.op == "UPLOAD" and "/" not in name:
                files[name] = (op.size, op.t)
            elif op.op == "RENAME" and name in files and op.path2.startswith("/htdocs/"):
                files[op.path2[len("/htdocs/"):]] = (files.pop(name)[0], op.t)
            elif op.op == "MKDIR" and "/" not in name:
                dirs[name] = op.t
    root_time = max([t for _, t in files.values()] + list(dirs.values()))
    ns = lambda: rng.randrange(10**9)  # noqa: E731  (sub-second part of each time)
    out = ["# ls -la --time-style=full-iso /var/www/", "total 20",
           f"drwxr-xr-x.  5 root root        4096 {full_iso_ls(SITE_BUILT + 3, ns())} .",
           f"drwxr-xr-x. 20 root root        4096 {full_iso_ls(INSTALLED, ns())} ..",
           f"drwxr-xr-x.  2 root root        4096 {full_iso_ls(SITE_BUILT - 86, ns())} cgi-bin",
           f"lrwxrwxrwx.  1 root root           4 {full_iso_ls(SITE_BUILT + 3, ns())} htdocs -> html",
           f"drwxr-xr-x.  7 {user} {user}    4096 {full_iso_ls(root_time, ns())} html", "",
           "# ls -la --time-style=full-iso /var/www/html/",
           f"total {sum(-(-s // 4096) * 4 for s, _ in files.values()) + 4 * (len(dirs) + 2)}",
           f"drwxr-xr-x.  7 {user} {user}    4096 {full_iso_ls(root_time, ns())} .",
           f"drwxr-xr-x.  5 root root        4096 {full_iso_ls(SITE_BUILT + 3, ns())} .."]
    entries = [(name, f"drwxr-xr-x.  2 {user} {user} {4096:>7}", t) for name, t in dirs.items()]
    entries += [(name, f"-rw-r--r--.  1 {user} {user} {size:>7}", t) for name, (size, t) in files.items()]
    for name, head, t in sorted(entries):
        out.append(f"{head} {full_iso_ls(t, ns())} {name}")
    out.append("")
    return "\n".join(out).encode()


def files(plan, attack: AttackPlan) -> list[tuple[str, bytes, int, str]]:
    """(path in the evidence, bytes, mtime, what it configures) of every file this module adds."""
    web = "web01"
    db = "db01"
    return [
        (f"{web}/etc/hostname", b"web01\n", INSTALLED, "host"),
        (f"{web}/etc/passwd", WEB01_PASSWD.encode(), SITE_BUILT - 600, "accounts"),
        (f"{web}/etc/vsftpd/vsftpd.conf", VSFTPD_CONF.encode(), SITE_BUILT - 500, "vsftpd"),
        (f"{web}/etc/vsftpd/user_list", VSFTPD_USER_LIST.encode(), INSTALLED + 86400, "vsftpd"),
        (f"{web}/etc/ssh/sshd_config", SSHD_CONFIG.encode(), INSTALLED, "sshd"),
        (f"{web}/etc/php.ini", PHP_INI.encode(), SITE_BUILT - 300, "php"),
        (f"{web}/etc/logrotate.conf", _logrotate_conf(), INSTALLED, "logrotate"),
        (f"{web}/etc/logrotate.d/syslog", LOGROTATE_SYSLOG.replace("{extra}", "    rotate 8\n").encode(),
         SITE_BUILT, "logrotate"),
        (f"{web}/etc/logrotate.d/httpd", LOGROTATE_HTTPD.encode(), SITE_BUILT, "logrotate"),
        (f"{web}/etc/rsyslog.conf", RSYSLOG_CONF.encode(), INSTALLED, "rsyslog"),
        (f"{web}/etc/chrony.conf", CHRONY_CONF.encode(), INSTALLED, "chrony"),
        (f"{web}/var/spool/cron/nobody", nobody_crontab(), CRON_REPLACE_2, "cron"),
        (f"{web}/fs/ls-docroot.txt", docroot_listing(attack, plan.seed), ACQUIRED - 2900, "listing"),
        (f"{web}/fs/rpm-qa-last.txt", rpm_last(), ACQUIRED - 2800, "packages"),
        (f"{db}/etc/hostname", b"db01\n", DB_BUILT, "host"),
        (f"{db}/etc/passwd", DB01_PASSWD.encode(), DB_BUILT, "accounts"),
        (f"{db}/etc/logrotate.d/syslog", LOGROTATE_SYSLOG.replace("{extra}", "").encode(), DB_BUILT, "logrotate"),
        (f"{db}/etc/rsyslog.conf", RSYSLOG_CONF.encode(), DB_BUILT, "rsyslog"),
        (f"{db}/etc/chrony.conf", CHRONY_CONF.encode(), DB_BUILT, "chrony"),
        (f"{db}/etc/cron.d/pg-healthcheck", PG_HEALTHCHECK_CRON.encode(), DB_BUILT + 3600, "cron"),
        (f"{db}/usr/local/bin/pg-portcheck", PG_PORTCHECK.encode(), DB_BUILT + 3600, "cron"),
    ]


def _logrotate_conf() -> bytes:
    from .configs import LOGROTATE_CONF

    return LOGROTATE_CONF.encode()
