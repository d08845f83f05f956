"""The case config of the small two-host evidence the investigate and export tests build (web01's
access log with a web shell five hours in, db01's PostgreSQL records through syslog)."""

from __future__ import annotations

from datetime import timedelta, timezone

from logsalvage.config import parse_config

JST = timezone(timedelta(hours=9))
CONFIG = parse_config({"acquired": "2017-12-31T00:00:00+09:00",
                       "hosts": {"web01": {"timezone": "Asia/Tokyo", "paths": ["web01/**"]},
                                 "db01": {"timezone": "Asia/Tokyo", "paths": ["db01/**"]}},
                       "postgresql": {"log_line_prefix": "DATABASE=%d,USER=%u,CLIENT=%r,"},
                       "application": {"db_clients": ["192.168.10.11"]},
                       "inventory": {"web": ["/index.php"]}}, "test")
