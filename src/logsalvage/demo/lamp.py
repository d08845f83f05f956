"""The LAMP variant of the demo (``logsalvage demo --stack lamp``): web01 runs nginx and php-fpm,
db01 MariaDB with its general query log (demo/nginx.py, demo/mariadb.py). The plan, the attack
and web01's other logs are those of the default demo.

There is no raw image in this variant: the default demo's image holds PostgreSQL's syslog
records, and carving has no MariaDB general-log signature, so the weeks that exist only on the
image (``salvage``) are not written and the database log's coverage is that of the files.
"""

from __future__ import annotations

from . import actors, configs, sysconfigs
from .mariadb import BANNER, HEALTHCHECK, MYSQL_CLIENT_PROBE, MariaDbLog, to_mysql
from .nginx import LOGROTATE_NGINX, NGINX_CONF, access_name, error_log
from .stamps import iso, jst
from .timeline import ACQUIRED, EXPOSURE, HEARTBEAT_PERIOD, Plan
from .truth import COVERAGE_DEFINITION, Coverage
from .writer import gzip_bytes, tar_gz_bytes

LOG_DIR = "db01/var/log/mysql"
CONF_TIME = jst(2016, 11, 18, 16, 40, 3)
SITE_TIME = jst(2016, 3, 3, 14, 2, 51)
SERVER_CNF = """\
[mysqld]
datadir=/var/lib/mysql
socket=/var/lib/mysql/mysql.sock
bind-address=0.0.0.0
symbolic-links=0
general_log=1
general_log_file=/var/log/mysql/mariadb.log
log_error=/var/log/mariadb/mariadb.log

[mysqld_safe]
pid-file=/var/run/mariadb/mariadb.pid
"""
LOGROTATE_MARIADB = """\
/var/log/mysql/mariadb.log {
    weekly
    rotate 4
    missingok
    notifempty
    compress
    delaycompress
    create 640 mysql mysql
    postrotate
        /usr/bin/mysqladmin --defaults-extra-file=/root/.my.cnf flush-logs
    endscript
}
"""
HEALTHCHECK_CRON = ("# the load balancer's check of the database, every 30 s\n"
                    "* * * * * root /usr/bin/mysqladmin -u healthcheck ping >/dev/null 2>&1\n"
                    "* * * * * root sleep 30; /usr/bin/mysqladmin -u healthcheck ping >/dev/null 2>&1\n")


def static_files(plan: Plan, attack, ev, truth_files: dict, entry) -> None:
    """web01's and db01's configuration as in the default demo, with nginx and MariaDB's files
    in place of httpd.conf, postgresql.conf and the PostgreSQL health check."""
    tz = configs.localtime()
    for host in ("web01", "db01"):
        rel = f"{host}/etc/localtime"
        ev.write(rel, tz, jst(2016, 1, 12, 9, 30, 0))
        truth_files[rel] = entry(host, "live", "tzif", zone="Asia/Tokyo")
    for rel, data, mtime, host, of in (
            ("web01/etc/nginx/nginx.conf", NGINX_CONF.encode(), SITE_TIME, "web01", "nginx"),
            ("db01/etc/my.cnf.d/server.cnf", SERVER_CNF.encode(), CONF_TIME, "db01", "mysql"),
            ("db01/etc/logrotate.conf", configs.LOGROTATE_CONF.encode(), jst(2016, 11, 18, 10, 12, 44), "db01",
             "logrotate"),
            ("db01/etc/logrotate.d/mariadb", LOGROTATE_MARIADB.encode(), CONF_TIME, "db01", "logrotate"),
            ("db01/etc/cron.d/db-healthcheck", HEALTHCHECK_CRON.encode(), CONF_TIME, "db01", "cron")):
        ev.write(rel, data, mtime)
        truth_files[rel] = entry(host, "live", "config", config_of=of)
    inv = configs.inventory()
    ev.write("web01/var/www/inventory.sha256", inv, ACQUIRED - 3600)
    truth_files["web01/var/www/inventory.sha256"] = entry("web01", "live", "inventory",
                                                          entries=inv.count(b"\n"), hash="sha256")
    ls = configs.hidden_dir_listing(plan.seed)
    ev.write("web01/fs/ls-hidden-dir.txt", ls, ACQUIRED - 3000)
    truth_files["web01/fs/ls-hidden-dir.txt"] = entry("web01", "live", "listing", tool="ls --time-style=full-iso")
    for rel, data, mtime, of in sysconfigs.files(plan, attack):
        if rel.endswith("/logrotate.d/httpd"):
            rel, data = "web01/etc/logrotate.d/nginx", LOGROTATE_NGINX.encode()
        elif "pg-" in rel:
            continue    # PostgreSQL's health check; MariaDB's is db-healthcheck above
        ev.write(rel, data, mtime)
        fmt = "listing" if of == "listing" else "config"
        truth_files[rel] = entry(rel.split("/", 1)[0], "live", fmt, **({} if of == "listing" else {"config_of": of}))


def web_files(i: int, weeks: int, wk) -> tuple:
    """nginx's access.log and error.log of week ``i`` (numbered, delaycompress), with Apache's names
    (which say where the demo plants its malformed lines) and their texts."""
    names = access_name(i, weeks)
    return ((names[0], wk.access_name, wk.access), (names[1], wk.error_name, error_log(wk.error)))


def db01(plan: Plan, ev, truth_files: dict, say, theft, exfil_written: list, entry):
    """MariaDB's general log files that survive (live and in the backups), and db01's truth."""
    start, end = plan.period
    cov = Coverage(start, end, 2 * HEARTBEAT_PERIOD)
    log = MariaDbLog(plan, theft)
    files = [f for f in log]
    kept = [f for f in files if f.spec.kind in ("live", "backup") and f.records]
    live = [f for f in kept if f.spec.kind == "live"]
    archives = {name: (t, members, []) for name, t, members in plan.archives}
    spans, records, heartbeats = [], 0, 0
    for f in kept:
        for t in f.heartbeats:
            cov.feed(t)
        records += f.records
        heartbeats += len(f.heartbeats)
        mtime = f.spec.rotation if f.spec.rotation is not None else f.last
        base = {"host": "db01", "format": "mysql-general", "records": f.records,
                "lines": len(f.data().splitlines()), "malformed": 0, "first": iso(f.first), "last": iso(f.last),
                "logical_file": f.spec.name}
        if f.spec.kind == "live":
            k = len(live) - 1 - live.index(f)
            name = "mariadb.log" + (f".{k}" if k else "")
            compressed = k >= 2
            rel = f"{LOG_DIR}/{name}" + (".gz" if compressed else "")
            ev.write(rel, gzip_bytes(f.data()) if compressed else f.data(), mtime)
            truth_files[rel] = dict(base, kind="live", **({"compression": "gzip"} if compressed else {}))
        else:
            t_arch, members, got = archives[f.spec.archive]
            member = f"var/log/mysql/mariadb.log-{f.spec.name.rsplit('-', 1)[-1]}"
            got.append((member, f.data(), mtime))
            truth_files[f"db01/backup/{f.spec.archive}!{member}"] = dict(base, kind="backup")
            if len(got) == len(members):
                rel = f"db01/backup/{f.spec.archive}"
                ev.write(rel, tar_gz_bytes(got, f.spec.archive[:-3]), t_arch)
                truth_files[rel] = entry("db01", "backup", "tar.gz", members=[m[0] for m in got])
        spans.append({"name": f.spec.name, "kind": f.spec.kind, "first": iso(f.first), "last": iso(f.last)})
        say(f"  db01 {f.spec.name}: {f.records:,} general-log records ({f.spec.kind})")
    exfil_written.extend(log.exfil_written)
    cov.finish()
    db_truth = {
        "server": "MariaDB 10.1.20",
        "log": "general query log, /var/log/mysql/mariadb.log, weekly, rotate 4, delaycompress",
        "heartbeat": {"pattern": f"Connect\t{HEALTHCHECK} + Quit", "client": "localhost (socket)",
                      "period_s": HEARTBEAT_PERIOD, "jitter_s": [0, 1]},
        "period": {"start": iso(start), "end": iso(end)},
        "files": spans,
        "not_written": [{"name": f.spec.name, "kind": f.spec.kind} for f in files if f not in kept],
        "records_total": records,
        "heartbeats_total": heartbeats,
        "coverage_definition": COVERAGE_DEFINITION,
        "coverage": {"whole_period": cov.ratio(start, end), "exposure_window": cov.ratio(*EXPOSURE)},
        "gaps": [{"start": iso(a), "end": iso(b), "seconds": b - a} for a, b in cov.holes],
        "sqli_payloads": list(log.sqli_payloads),
        "app_client": actors.WEB01,
        "client_probe": MYSQL_CLIENT_PROBE,
        "banner": BANNER.splitlines()[0],
    }
    image_truth = {"skipped": True,
                   "reason": "the default demo's image holds PostgreSQL syslog records and carving has no "
                             "MariaDB general-log signature; the LAMP variant has no raw image, and the "
                             "weeks that only the image held are not written"}
    return db_truth, image_truth


def expected_verdict(theft, coverage: float) -> dict:
    """What ``investigate`` should conclude (detect/exfiltration.py's labels and coverage rule)."""
    if theft is not None:
        # a whole-table read from the application's own address: found, medium confidence
        return {"exfiltration": "found", "confidence": "medium", "tables": ["customers"],
                "coverage_of_exposure_window": coverage,
                "why": "SELECT * FROM customers by webapp from the application's address, outside its statements"}
    if coverage < 0.5:
        return {"exfiltration": "undetermined", "confidence": "low", "coverage_of_exposure_window": coverage,
                "why": "no trace of data leaving, but the general log covers too little of the exposure window"}
    return {"exfiltration": "none-found", "coverage_of_exposure_window": coverage,
            "confidence": "high" if coverage >= 0.99 else "medium" if coverage >= 0.9 else "low",
            "why": "no trace of data leaving in the general log's coverage of the exposure window"}


def adjust_truth(truth: dict, theft) -> None:
    truth["stack"] = {"name": "lamp", "web01": "nginx 1.12.2 + php-fpm", "db01": "MariaDB 10.1.20 (general log)"}
    truth["hosts"]["web01"].pop("apache", None)
    truth["hosts"]["web01"]["nginx"] = "1.12.2"
    truth["hosts"]["web01"]["httpd_rotation"] = "weekly, numbered, delaycompress"
    truth["hosts"]["db01"] = {"address": actors.DB01, "os": "RHEL 7.2", "mariadb": "10.1.20",
                              "log": truth["db"]["log"], "internet_access": False}
    truth["expected_verdict"] = expected_verdict(theft, truth["db"]["coverage"]["exposure_window"])
    truth.pop("records_file", None)
    if isinstance(truth.get("exfiltration"), dict):
        ex = truth["exfiltration"]
        ex["db_log"] = "mysql-general"
        for d, st in zip(ex["statements"], theft.statements):
            # the general log: the statement when it starts, in MySQL's dialect, by connection id
            d["statement"] = to_mysql(st.statement)
            d["connection"] = d.pop("pid")
            d.pop("duration_ms", None)
            d.pop("error", None)
