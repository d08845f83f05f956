"""PostgreSQL: would its log answer "did data leave?" next time?

Reads each cluster's ``postgresql.conf`` with its ``include``/``include_if_exists``/``include_dir``
files and ``ALTER SYSTEM``'s ``postgresql.auto.conf`` (read last, as the server does); the last
setting of a parameter is the one in force.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from logsalvage.audit.conf import Setting, key_values, parent, relative_to_root, truth
from logsalvage.audit.heartbeat import heartbeats, period_text
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

MAIN_CONFS = ("etc/postgresql/*/*/postgresql.conf", "var/lib/pgsql/data/postgresql.conf",
              "var/lib/pgsql/*/data/postgresql.conf", "var/lib/postgresql/data/postgresql.conf",
              "var/lib/postgresql/*/main/postgresql.conf", "var/lib/postgres/data/postgresql.conf",
              "usr/local/pgsql/data/postgresql.conf", "var/db/postgres/*/postgresql.conf")
MAX_INCLUDE_DEPTH = 10
SLOW_ENOUGH_MS = 10_000  # a threshold above this misses reads that take a few seconds


@dataclass
class Cluster:
    main: ConfigFile
    settings: dict[str, Setting] = field(default_factory=dict)  # the one in force, per parameter
    files: list[str] = field(default_factory=list)

    def value(self, key: str) -> str | None:
        s = self.settings.get(key)
        return s.value if s else None


def _load(host: Host, cluster: Cluster, cf: ConfigFile, depth: int, seen: set[str]) -> None:
    if cf.rel in seen or depth > MAX_INCLUDE_DEPTH:
        return
    seen.add(cf.rel)
    cluster.files.append(cf.shown)
    for s in key_values(cf):
        if s.key in ("include", "include_if_exists"):
            inc = host.tree.read(relative_to_root(s.value, parent(cf.rel)))
            if inc:
                _load(host, cluster, inc, depth + 1, seen)
        elif s.key == "include_dir":
            d = relative_to_root(s.value, parent(cf.rel))
            for name in host.tree.listdir(d):
                if name.endswith(".conf") and not name.startswith("."):
                    inc = host.tree.read(f"{d}/{name}")
                    if inc:
                        _load(host, cluster, inc, depth + 1, seen)
        else:
            cluster.settings[s.key] = s


def clusters(host: Host) -> list[Cluster]:
    def make(h: Host) -> list[Cluster]:
        out = []
        seen_auto: set[str] = set()
        for pattern in MAIN_CONFS:
            for rel in h.tree.files(pattern):
                cf = h.tree.read(rel)
                if cf is None:
                    continue
                cluster = Cluster(cf)
                _load(h, cluster, cf, 0, set())
                data_dir = cluster.value("data_directory")
                auto_dir = relative_to_root(data_dir, parent(rel)) if data_dir else parent(rel)
                auto_rel = f"{auto_dir}/postgresql.auto.conf"
                auto = h.tree.read(auto_rel) if auto_rel not in seen_auto else None
                if auto:
                    seen_auto.add(auto_rel)
                    _load(h, cluster, auto, 0, set())
                out.append(cluster)
        return out
    return host.fact("pg_clusters", make)


def _prefix_fields(prefix: str) -> set[str]:
    """The escapes of a log_line_prefix (``%t``, ``%r`` …; ``%%`` is a literal percent)."""
    out, i = set(), 0
    while i < len(prefix) - 1:
        if prefix[i] == "%":
            j = i + 1
            while j < len(prefix) and (prefix[j].isdigit() or prefix[j] == "-"):
                j += 1  # padding, as in %-10u
            if j < len(prefix):
                out.add(prefix[j])
            i = j + 1
        else:
            i += 1
    return out - {"%"}


def check(host: Host) -> list[Finding]:
    out: list[Finding] = []
    for c in clusters(host):
        out += _check_cluster(host, c)
    return out


def _check_cluster(host: Host, c: Cluster) -> list[Finding]:
    out: list[Finding] = []
    f = host.finding
    main = c.main

    def at(key: str):
        return c.settings.get(key) or main

    dest = {d.strip().lower() for d in (c.value("log_destination") or "stderr").split(",") if d.strip()}
    collector = truth(c.value("logging_collector")) or False
    self_describing = bool(dest & {"csvlog", "jsonlog"})  # every field in its own column

    if truth(c.value("log_connections")):
        out.append(f("pg.log_connections", "strength", "log_audit", at("log_connections"),
                     "Every connection is logged (log_connections = on)",
                     "A connection record says who reached the database from where, even when no statement "
                     "of theirs is logged.", "Keep it."))
    else:
        out.append(f("pg.log_connections", "medium", "log_audit", at("log_connections"),
                     "Connections are not logged (log_connections is off)",
                     "Without connection records a client that read data with fast, error-free statements "
                     "leaves no trace of having been there at all.",
                     "Set log_connections = on (and log_disconnections = on for session lengths)."))
    if truth(c.value("log_disconnections")):
        out.append(f("pg.log_disconnections", "strength", "log_audit", at("log_disconnections"),
                     "Session ends and lengths are logged (log_disconnections = on)",
                     "A session's length and end bound what it could have read.", "Keep it."))
    else:
        out.append(f("pg.log_disconnections", "low", "log_audit", at("log_disconnections"),
                     "Session ends are not logged (log_disconnections is off)",
                     "Without them a session's length, and so how much it could have read, is unknown.",
                     "Set log_disconnections = on."))

    prefix = c.value("log_line_prefix")
    if prefix is None:
        prefix = "%m [%p] "  # the default since PostgreSQL 10 (empty before)
    fields = _prefix_fields(prefix)
    has_client, has_user, has_db = bool(fields & {"h", "r"}), "u" in fields, "d" in fields
    timed = bool(fields & {"t", "m", "n"}) or bool(dest & {"syslog", "eventlog", "csvlog", "jsonlog"})
    has_pid = "p" in fields or bool(dest & {"syslog", "csvlog", "jsonlog"})
    if self_describing or (has_client and has_user and has_db):
        how = "csvlog/jsonlog columns" if self_describing and not (has_client and has_user and has_db) else \
            f"log_line_prefix '{prefix}'"
        out.append(f("pg.connection_attribution", "strength", "log_audit", at("log_line_prefix"),
                     f"Every record names its client address, user and database ({how})",
                     "Each statement, error and connection can be tied to the client that caused it — how the "
                     "incident's investigators told the application's queries from anyone else's.",
                     "Keep it."))
    else:
        missing = [name for name, ok in (("client address (%h or %r)", has_client), ("user (%u)", has_user),
                                         ("database (%d)", has_db)) if not ok]
        out.append(f("pg.log_line_prefix", "medium" if not has_client else "low", "log_audit", at("log_line_prefix"),
                     f"Log records do not name the {', '.join(missing)} (log_line_prefix '{prefix}')",
                     "A record that does not say which client, user and database it belongs to cannot be "
                     "attributed: the application's statements cannot be told from an intruder's.",
                     "Add them, e.g. log_line_prefix = '%m [%p] user=%u db=%d client=%h ' "
                     "(with time %m and pid %p when logging to stderr)."))
    if not timed or not has_pid:
        missing = [n for n, ok in (("time (%m or %t)", timed), ("process id (%p)", has_pid)) if not ok]
        out.append(f("pg.log_line_prefix_time", "medium" if not timed else "low", "log_audit", at("log_line_prefix"),
                     f"Log records carry no {' and no '.join(missing)}",
                     "Without a time a record cannot be placed on the timeline; without the pid the lines of "
                     "one session cannot be put together.", "Add %m and %p to log_line_prefix."))

    stmt = (c.value("log_statement") or "none").lower()
    if stmt in ("ddl", "mod"):
        out.append(f("pg.log_statement", "strength", "log_audit", at("log_statement"),
                     f"Schema changes{' and data changes' if stmt == 'mod' else ''} are logged "
                     f"(log_statement = {stmt})",
                     "A table created, dropped or altered by an intruder is on record.", "Keep it."))
    elif stmt == "all":
        out.append(f("pg.log_statement", "info", "log_audit", at("log_statement"),
                     "Every statement is logged (log_statement = all)",
                     "Complete, but the volume shortens how long the log is kept and buries what matters.",
                     "Consider 'ddl' with log_min_duration_statement for slow reads."))
    else:
        out.append(f("pg.log_statement", "low", "log_audit", at("log_statement"),
                     "Statements are logged only when slow or failing (log_statement = none)",
                     "A schema change or a new role made by an intruder leaves no record.",
                     "Set log_statement = 'ddl'."))

    dur = c.value("log_min_duration_statement")
    ms = _milliseconds(dur)
    if ms is None or ms < 0:
        out.append(f("pg.log_min_duration_statement", "medium", "log_audit", at("log_min_duration_statement"),
                     "Slow statements are not logged (log_min_duration_statement is off)",
                     "A dump of a large table is a slow statement: logging them is what would show data being "
                     "read out in bulk.", "Set log_min_duration_statement to a few seconds, e.g. 3000 (ms)."))
    elif ms > SLOW_ENOUGH_MS:
        out.append(f("pg.log_min_duration_statement", "low", "log_audit", at("log_min_duration_statement"),
                     f"Only statements slower than {ms / 1000:g} s are logged",
                     "A bulk read of a mid-sized table finishes faster than that and is not logged.",
                     "Lower log_min_duration_statement to about 3000 ms."))
    else:
        out.append(f("pg.log_min_duration_statement", "strength", "log_audit", at("log_min_duration_statement"),
                     f"Statements running {ms / 1000:g} s or longer are logged (log_min_duration_statement = {dur})",
                     "A whole-table read or dump is slow: it leaves a record with its text, client and duration "
                     "— what made the incident's 'no data left' verdict possible.", "Keep it."))

    level = (c.value("log_min_messages") or "warning").lower()
    if level in ("fatal", "panic", "log"):
        out.append(f("pg.log_min_messages", "medium", "log_audit", at("log_min_messages"),
                     f"Errors are not logged (log_min_messages = {level})",
                     "SQL-injection attempts show up as syntax and type errors; this level hides them.",
                     "Set log_min_messages = warning (the default) or info."))
    err_stmt = (c.value("log_min_error_statement") or "error").lower()
    if err_stmt in ("fatal", "panic", "log"):
        out.append(f("pg.log_min_error_statement", "low", "log_audit", at("log_min_error_statement"),
                     f"Failing statements are logged without their text (log_min_error_statement = {err_stmt})",
                     "The injected payload is in the statement text; without it an error says little.",
                     "Set log_min_error_statement = error."))

    if "syslog" in dest:
        facility = c.value("syslog_facility") or "LOCAL0"
        out.append(f("pg.log_destination", "info", "log_audit", at("log_destination"),
                     f"The database log goes to syslog (facility {facility.upper()})",
                     "It is kept as long as the syslog file it lands in: that file's rotation decides how far "
                     "back the database's history reaches.",
                     "Check the retention of that file (see the logrotate findings) and forward it off the host."))
    elif "stderr" in dest and not collector:
        out.append(f("pg.log_destination", "medium", "log_audit", at("log_destination"),
                     "The database logs to stderr without its logging collector",
                     "The log then lives wherever the service manager puts stderr, often a volatile journal.",
                     "Set logging_collector = on (with log_directory and log rotation) or log to syslog."))

    port = c.value("port") or "5432"
    beats = heartbeats(host, "postgresql", port)
    if beats:
        b = beats[0]
        out.append(f("pg.heartbeat", "strength", "log_audit", b.file,
                     f"A health check connects to the database {period_text(b.period_s)}",
                     "Its records are a heartbeat: a stretch without them is missing time, so the log's "
                     "continuity can be proven — as the incident's 30-second check proved it.",
                     "Keep it, and keep its records in the log.", line=b.line))
    else:
        out.append(f("pg.heartbeat", "medium", "log_audit", main,
                     "No periodic check connects to the database (none in the host's crontabs or timers)",
                     "Without a record every N seconds a hole in the log looks like a quiet night: nobody can "
                     "prove the log is complete for the time that matters.",
                     "Run a health check that connects every 30-60 s (pg_isready, or a TCP connect to the port) "
                     "from cron or a systemd timer, and keep its log records."))
    return out


def _milliseconds(value: str | None) -> int | None:
    if value is None:
        return None
    v = value.strip().lower().replace(" ", "")
    for unit, factor in (("ms", 1), ("min", 60_000), ("s", 1000), ("h", 3_600_000), ("d", 86_400_000)):
        if v.endswith(unit) and v[:-len(unit)].lstrip("-").isdigit():
            return int(v[:-len(unit)]) * factor
    return int(v) if v.lstrip("-").isdigit() else None
