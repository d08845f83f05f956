"""web01's logs for the LAMP variant (``logsalvage demo --stack lamp``): nginx with php-fpm.

The access log is the same combined line Apache writes (nginx's ``combined`` log_format), so
web.py's weeks are reused as they are; the error log is rewritten into nginx's layout
(``YYYY/MM/DD HH:MM:SS [level] pid#tid: *conn message, client: ..., server: ...``). The lines
the web shells' commands wrote to stderr are not in it: behind nginx, PHP runs in php-fpm,
whose workers' stderr does not reach nginx's error log.
"""

from __future__ import annotations

import re

from . import actors
from .logtext import LogText
from .stamps import local

NGINX_VERSION = "1.12.2"
MASTER_PID, WORKER_PID = 1187, 1189
SERVER = actors.DOMAIN
_APACHE = re.compile(r"^\[[^\]]+\] \[(\w+)\] (?:\[client ([^\]]+)\] )?(.*)$")
_MISSING = re.compile(r"^File does not exist: (.*)$")
_DENIED = re.compile(r"^client denied by server configuration: (.*)$")
_NO_SCRIPT = re.compile(r"^script not found or unable to stat: (.*)$")
_PHP = re.compile(r"^(PHP \w+:  .*?)(?:, referer: (.*))?$")


def stamp(t: int) -> str:
    lt = local(t)
    return (f"{lt.tm_year:04d}/{lt.tm_mon:02d}/{lt.tm_mday:02d} "
            f"{lt.tm_hour:02d}:{lt.tm_min:02d}:{lt.tm_sec:02d}")


def _message(level: str, client: str | None, text: str, conn: int) -> list[tuple[str, str]]:
    """(level, message after ``pid#tid: ``) for one Apache error_log record."""
    if client is None:
        if "SIGHUP" in text:
            return [("notice", "signal 1 (SIGHUP) received from 1, reconfiguring"),
                    ("notice", "reconfiguring")]
        if "SIGTERM" in text:
            return [("notice", "signal 15 (SIGTERM) received from 1, exiting")]
        if "resuming normal operations" in text:
            return [("notice", 'using the "epoll" event method'), ("notice", f"nginx/{NGINX_VERSION}"),
                    ("notice", "start worker processes")]
        return []     # Apache's Digest notices: nginx has no counterpart
    tail = f", client: {client}, server: {SERVER}"
    m = _MISSING.match(text)
    if m:
        return [("error", f'*{conn} open() "{m.group(1)}" failed (2: No such file or directory){tail}')]
    m = _DENIED.match(text)
    if m:
        return [("error", f"*{conn} access forbidden by rule{tail}")]
    m = _NO_SCRIPT.match(text)
    if m:
        return [("error", f'*{conn} open() "{m.group(1)}" failed (2: No such file or directory){tail}')]
    m = _PHP.match(text)
    if m:
        more = f', referrer: "{m.group(2)}"' if m.group(2) else ""
        return [("error", f'*{conn} FastCGI sent in stderr: "PHP message: {m.group(1)}" while reading '
                          f"response header from upstream{tail}{more}")]
    return [(level if level in ("error", "warn", "notice", "info", "crit") else "error", f"*{conn} {text}{tail}")]


def error_log(apache: LogText) -> LogText:
    """nginx's error.log holding what Apache's error_log of the same week records."""
    out = LogText("nginx-error")
    conn = 0
    for line, t, is_record in apache.entries():
        if not is_record or t is None:
            continue        # stderr of the shells' commands: php-fpm's, not nginx's
        m = _APACHE.match(line.decode("utf-8", "replace"))
        if m is None:
            continue
        conn += 1
        for level, text in _message(m.group(1), m.group(2), m.group(3), conn):
            pid = WORKER_PID if text.startswith("*") else MASTER_PID
            out.add(f"{stamp(t)} [{level}] {pid}#{pid}: {text}", t)
    return out


def access_name(i: int, n: int) -> tuple[str, str]:
    """The names of week ``i`` of ``n`` (logrotate without dateext: access.log, access.log.1, ...)."""
    k = n - 1 - i
    return ("access.log", "error.log") if k == 0 else (f"access.log.{k}", f"error.log.{k}")


NGINX_CONF = f"""\
user  nobody;
worker_processes  1;

error_log  /var/log/nginx/error.log notice;
pid        /run/nginx.pid;

events {{
    worker_connections  1024;
}}

http {{
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    access_log  /var/log/nginx/access.log  combined;

    sendfile        on;
    keepalive_timeout  65;
    server_tokens off;

    server {{
        listen       80;
        server_name  {SERVER};
        root         /var/www/html;
        index        index.php index.html;

        location ~ \\.php$ {{
            fastcgi_pass   127.0.0.1:9000;
            fastcgi_index  index.php;
            fastcgi_param  SCRIPT_FILENAME  $document_root$fastcgi_script_name;
            include        fastcgi_params;
        }}
    }}
}}
"""

LOGROTATE_NGINX = """\
/var/log/nginx/*.log {
    weekly
    rotate 52
    missingok
    notifempty
    compress
    delaycompress
    sharedscripts
    postrotate
        /bin/kill -USR1 `cat /run/nginx.pid 2>/dev/null` 2>/dev/null || true
    endscript
}
"""
