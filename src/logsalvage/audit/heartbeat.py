"""The periodic record that proves a log's continuity: a cron job or systemd timer on the host that
connects to the database every N seconds (a health check), so that gaps between its records reveal
missing time — as PostgreSQL's ``incomplete startup packet`` every 30 s did in the incident."""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.audit.conf import key_values
from logsalvage.audit.crontabs import CronJob, command_words, cron_jobs
from logsalvage.audit.host import Host
from logsalvage.audit.tree import ConfigFile

SCRIPT_MAX = 64 << 10  # a script a job runs is read to see what it does, up to this size
PG_CLIENTS = ("psql", "pg_isready", "check_postgres", "check_pgsql", "pg_ctl")
MYSQL_CLIENTS = ("mysqladmin", "mysql", "mariadb-admin", "mariadb", "check_mysql")
PORT_TOOLS = ("/dev/tcp/", "nc ", "ncat ", "netcat ", "nmap ", "check_tcp", "telnet ", "socat ", "curl ")
SYSTEMD_DIRS = ("etc/systemd/system", "usr/lib/systemd/system", "lib/systemd/system")


@dataclass(frozen=True)
class Heartbeat:
    file: ConfigFile
    line: int
    period_s: int | None
    what: str  # the command or unit, as written


def _script_text(host: Host, words: list[str]) -> str:
    """The text of the script a command runs, when it is a file of the tree (what a wrapper hides)."""
    for w in words:
        if w.startswith("/") and not w.startswith("/dev/"):
            st = host.tree.stat(w)
            if st is not None and st.st_size <= SCRIPT_MAX and host.tree.is_file(w):
                cf = host.tree.read(w, limit=SCRIPT_MAX)
                return "\n".join(cf.lines) if cf else ""
    return ""


def connects(text: str, kind: str, port: str) -> bool:
    """Whether a command (or script) opens a connection to the database of ``kind`` on ``port``."""
    low = text.lower()
    clients = PG_CLIENTS if kind == "postgresql" else MYSQL_CLIENTS
    for word in low.replace(";", " ").replace("|", " ").replace("&", " ").split():
        base = word.rsplit("/", 1)[-1]
        if base in clients:
            return True
    if port in low and any(tool in low for tool in PORT_TOOLS):
        return True
    return False


def _cron(host: Host, kind: str, port: str) -> list[Heartbeat]:
    hits: list[CronJob] = []
    for job in cron_jobs(host):
        words = command_words(job)
        if connects(job.command, kind, port) or connects(_script_text(host, words), kind, port):
            hits.append(job)
    out = []
    # jobs of the same command shifted by "sleep N" run it more often than cron's minute
    by_command: dict[tuple, list[CronJob]] = {}
    for job in hits:
        words = job.command.replace(";", " ; ").replace("&&", " && ").split()
        core = tuple(words[3:] if job.delay_s else words)
        by_command.setdefault((job.file.rel, job.schedule, core), []).append(job)
    for (_, _, _), jobs in sorted(by_command.items(), key=lambda kv: (kv[1][0].file.rel, kv[1][0].line)):
        period = jobs[0].period_s
        delays = sorted({j.delay_s for j in jobs})
        if period is not None and len(delays) > 1:
            spacing = {b - a for a, b in zip(delays, delays[1:])} | {delays[0] + period - delays[-1]}
            period = min(spacing)
        out.append(Heartbeat(jobs[0].file, jobs[0].line, period, jobs[0].command))
    return out


def _seconds(text: str) -> int | None:
    """A systemd time span (``30s``, ``1min``, ``5m 30s``, ``30``) in seconds."""
    units = {"s": 1, "sec": 1, "second": 1, "seconds": 1, "m": 60, "min": 60, "minute": 60, "minutes": 60,
             "h": 3600, "hr": 3600, "hour": 3600, "hours": 3600}
    text = text.replace(" ", "").lower()
    total, i = 0, 0
    while i < len(text):
        j = i
        while j < len(text) and text[j].isdigit():
            j += 1
        k = j
        while k < len(text) and text[k].isalpha():
            k += 1
        if j == i or text[j:k] not in units and text[j:k] != "":
            return None
        total += int(text[i:j]) * units.get(text[j:k], 1)
        i = k
    return total or None


def _timers(host: Host, kind: str, port: str) -> list[Heartbeat]:
    out = []
    for d in SYSTEMD_DIRS:
        for rel in host.tree.files(f"{d}/*.timer"):
            cf = host.tree.read(rel)
            if cf is None:
                continue
            settings = key_values(cf, lower=False)
            period = None
            line = None
            for s in settings:
                if s.key in ("OnUnitActiveSec", "OnUnitInactiveSec"):
                    period, line = _seconds(s.value), s.line
            unit_name = next((s.value for s in settings if s.key == "Unit"), rel.rsplit("/", 1)[-1][:-6] + ".service")
            service = host.tree.read(f"{d}/{unit_name}")
            if service is None or line is None:
                continue
            execs = " ".join(s.value for s in key_values(service, lower=False) if s.key == "ExecStart")
            if connects(execs, kind, port) or connects(_script_text(host, execs.split()), kind, port):
                out.append(Heartbeat(cf, line, period, f"{rel.rsplit('/', 1)[-1]}: {execs}"))
    return out


def heartbeats(host: Host, kind: str, port: str) -> list[Heartbeat]:
    return _cron(host, kind, port) + _timers(host, kind, port)


def period_text(seconds: int | None) -> str:
    if seconds is None:
        return "on a schedule"
    if seconds < 120:
        return f"every {seconds} s"
    if seconds < 7200:
        return f"every {seconds // 60} min"
    return f"every {seconds // 3600} h"
