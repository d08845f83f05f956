"""MySQL and MariaDB: ``my.cnf`` with its ``!include``/``!includedir`` files; the server's sections
(``[mysqld]``, ``[server]``, ``[mariadb]``, ``[mariadbd]``, versioned ones). Option names are read
with ``-`` and ``_`` alike, as the server reads them."""

from __future__ import annotations

from logsalvage.audit.conf import Setting, ini, parent, relative_to_root, truth
from logsalvage.audit.heartbeat import heartbeats, period_text
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

MAIN_CONFS = ("etc/my.cnf", "etc/mysql/my.cnf", "etc/mysql/mariadb.cnf", "usr/local/etc/my.cnf")
MAX_INCLUDE_DEPTH = 10


def _server_section(section: str | None) -> bool:
    if section is None:
        return False
    return section in ("mysqld", "server", "mariadb", "mariadbd", "mysqld_safe") or \
        section.startswith(("mysqld-", "mariadb-", "mariadbd-"))


def _load(host: Host, cf: ConfigFile, depth: int, seen: set[str], out: list[Setting], files: list[str]) -> None:
    if cf.rel in seen or depth > MAX_INCLUDE_DEPTH:
        return
    seen.add(cf.rel)
    files.append(cf.shown)
    for s in ini(cf):
        if s.key == "!include":
            inc = host.tree.read(relative_to_root(s.value, parent(cf.rel)))
            if inc:
                _load(host, inc, depth + 1, seen, out, files)
        elif s.key == "!includedir":
            d = relative_to_root(s.value, parent(cf.rel))
            for name in host.tree.listdir(d):
                if name.endswith((".cnf", ".ini")) and not name.startswith("."):
                    inc = host.tree.read(f"{d}/{name}")
                    if inc:
                        _load(host, inc, depth + 1, seen, out, files)
        elif _server_section(s.section):
            out.append(Setting(s.key.replace("-", "_"), s.value, s.file, s.line, s.section))


def server_settings(host: Host) -> tuple[ConfigFile, dict[str, Setting]] | None:
    """The first main configuration found and the server options in force (the last of each)."""
    def make(h: Host):
        for rel in MAIN_CONFS:
            cf = h.tree.read(rel)
            if cf is None:
                continue
            settings: list[Setting] = []
            _load(h, cf, 0, set(), settings, [])
            return cf, {s.key: s for s in settings}
        return None
    return host.fact("mysql", make)


def check(host: Host) -> list[Finding]:
    found = server_settings(host)
    if found is None:
        return []
    main, s = found
    f = host.finding
    out: list[Finding] = []

    def on(key: str) -> bool:
        return key in s and (truth(s[key].value) is not False)

    if on("general_log"):
        out.append(f("mysql.general_log", "strength", "log_audit", s["general_log"],
                     "Every connection and statement is logged (general_log)",
                     "Who connected and what they ran is on record.", "Keep it, and rotate the file."))
    else:
        out.append(f("mysql.general_log", "low", "log_audit", s.get("general_log") or main,
                     "Connections and statements are not logged (general_log is off)",
                     "Only the error log and the slow log remain: a fast read of customer rows leaves no record.",
                     "Enable general_log, or an audit plugin (server_audit on MariaDB) logging CONNECT and QUERY."))
    if on("slow_query_log") or on("log_slow_queries"):
        key = "slow_query_log" if "slow_query_log" in s else "log_slow_queries"
        limit = s.get("long_query_time")
        out.append(f("mysql.slow_query_log", "strength", "log_audit", s[key],
                     f"Slow statements are logged{f' (over {limit.value} s)' if limit else ''}",
                     "A bulk read of a large table is slow: it leaves a record.", "Keep it."))
    else:
        out.append(f("mysql.slow_query_log", "medium", "log_audit", s.get("slow_query_log") or main,
                     "Slow statements are not logged (slow_query_log is off)",
                     "A dump of a large table would leave no record of its text, user or duration.",
                     "Set slow_query_log = 1 and long_query_time = 3."))
    if "log_error" not in s:
        out.append(f("mysql.log_error", "low", "log_audit", main,
                     "The error log's place is not set (log_error)",
                     "Failed logins and aborted connections then go wherever the service manager puts stderr.",
                     "Set log_error to a file that logrotate keeps."))
    verbosity = s.get("log_error_verbosity")
    warnings = s.get("log_warnings")
    if (verbosity and verbosity.value.isdigit() and int(verbosity.value) < 3) or \
            (warnings and warnings.value.isdigit() and int(warnings.value) < 2):
        at = verbosity or warnings
        out.append(f("mysql.log_warnings", "medium", "log_audit", at,
                     "Failed logins are not written to the error log",
                     "Password guessing against the database leaves no trace.",
                     "Set log_warnings = 2 (MariaDB) or log_error_verbosity = 3 (MySQL)."))
    port = (s.get("port").value if s.get("port") else "3306")
    beats = heartbeats(host, "mysql", port)
    if beats:
        b = beats[0]
        out.append(f("mysql.heartbeat", "strength", "log_audit", b.file,
                     f"A health check connects to the database {period_text(b.period_s)}",
                     "Its records are a heartbeat: a stretch without them is missing time.", "Keep it.", line=b.line))
    return out
