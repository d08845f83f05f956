"""Will the logs still be there, and can they be trusted: retention against the dwell time
(logrotate), a remote copy (rsyslog, syslog-ng, journal upload), the journal's persistence,
synchronised clocks, and a record of every program run (auditd execve rules)."""

from __future__ import annotations

from logsalvage.audit.conf import Setting, key_values, relative_to_root, strip_comment
from logsalvage.audit.host import Host
from logsalvage.audit.logrotate import blocks
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

# logs an investigation reads: system and authentication, cron, web, FTP, database
KEY_LOGS = ("messages", "syslog", "secure", "auth.log", "cron", "httpd/", "apache2/", "apache/", "nginx/",
            "vsftpd.log", "xferlog", "postgresql", "pgsql", "mysql", "mariadb", "maillog", "mail.log", "daemon.log",
            "audit/")
LOGIN_RECORDS = ("wtmp", "btmp", "lastlog")
RSYSLOG = ("etc/rsyslog.conf",)
SYSLOG_NG = ("etc/syslog-ng/syslog-ng.conf", "etc/syslog-ng.conf")
TIME_CONFS = (("chrony", ("etc/chrony.conf", "etc/chrony/chrony.conf"), ("server", "pool", "peer")),
              ("ntpd", ("etc/ntp.conf", "etc/ntpsec/ntp.conf", "etc/openntpd/ntpd.conf", "etc/ntpd.conf"),
               ("server", "pool", "peer", "servers")))
TIME_UNITS = ("chronyd.service", "chrony.service", "ntpd.service", "ntp.service", "ntpsec.service",
              "openntpd.service", "systemd-timesyncd.service")
AUDIT_RULES = ("etc/audit/rules.d/*.rules", "etc/audit/audit.rules")


def _key_kind(path: str) -> str | None:
    low = path.lower()
    name = low.rsplit("/", 1)[-1]
    if any(name.startswith(r) for r in LOGIN_RECORDS):
        return "login"
    if any(k in low for k in KEY_LOGS):
        return "key"
    return None


def _retention(host: Host) -> list[Finding]:
    f = host.finding
    out = []
    dwell = host.options.dwell_days
    for b in blocks(host):
        kinds = {_key_kind(p) for p in b.paths} - {None}
        if not kinds:
            continue
        days = b.retention_days()
        shown = ", ".join(b.paths[:4]) + (", …" if len(b.paths) > 4 else "")
        at = b.deciding() or b.file
        line = None if isinstance(at, Setting) else b.line
        if days is None:
            out.append(f("logrotate.retention", "info", "log_audit", at,
                         f"{shown}: rotated by size, so kept for an unknown time ({b.basis()})",
                         "How far back the log reaches depends on traffic: a busy week can erase months.",
                         f"Rotate by time and keep at least {dwell} days.", line=line))
        elif days < dwell:
            sev = "high" if "key" in kinds else "medium"
            out.append(f("logrotate.retention", sev, "log_audit", at,
                         f"{shown} kept about {_days(days)} ({b.basis()}), less than the {dwell}-day dwell time",
                         "Intruders are found months after they arrive: the incident's database logs were rotated "
                         "away after four weeks and had to be salvaged from the raw disk.",
                         f"Keep at least {dwell} days (e.g. weekly with rotate {-(-dwell // 7)}, compressed), and "
                         "keep a remote copy.", line=line))
        else:
            out.append(f("logrotate.retention", "strength", "log_audit", at,
                         f"{shown} kept about {_days(days)} ({b.basis()})",
                         f"Longer than the {dwell}-day dwell time: the start of an intrusion is still on disk "
                         "when it is found.", "Keep it.", line=line))
    return out


def _days(days: float) -> str:
    if days == float("inf"):
        return "forever"
    if days >= 14 and days % 7 == 0 and days < 120:
        return f"{int(days // 7)} weeks ({int(days)} days)"
    return f"{int(days)} days" if days >= 1 else f"{days * 24:.0f} hours"


def _rsyslog_files(host: Host) -> list[ConfigFile]:
    out: list[ConfigFile] = []
    seen: set[str] = set()

    def read(rel: str, depth: int) -> None:
        cf = host.tree.read(rel)
        if cf is None or rel in seen or depth > 8:
            return
        seen.add(rel)
        out.append(cf)
        for _, raw in cf.numbered():
            text = strip_comment(raw).strip()
            target = None
            if text.lower().startswith("$includeconfig"):
                target = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else None
            elif text.lower().startswith("include(") and "file=" in text:
                target = text.split("file=", 1)[1].split("\"")[1] if "\"" in text.split("file=", 1)[1] else None
            if target:
                pattern = relative_to_root(target, "etc")
                rels = [f"{pattern}/{n}" for n in host.tree.listdir(pattern)] if host.tree.is_dir(pattern) \
                    else host.tree.files(pattern)
                for r in rels:
                    read(r, depth + 1)
    for rel in RSYSLOG:
        read(rel, 0)
    return out


def _forwards(cf: ConfigFile) -> list[int]:
    """Lines of an rsyslog file that send records to another host."""
    hits = []
    for no, raw in cf.numbered():
        text = strip_comment(raw).strip()
        low = text.lower().replace(" ", "")
        if not text:
            continue
        words = text.split()
        legacy = len(words) >= 2 and (words[-1].startswith("@") or words[-1].startswith(":omrelp:")
                                      or words[-1].startswith(":omfwd:"))
        if legacy or "type=\"omfwd\"" in low or "type=\"omrelp\"" in low or "type=\"omelasticsearch\"" in low:
            hits.append(no)
    return hits


def _remote_copy(host: Host) -> list[Finding]:
    f = host.finding
    for cf in _rsyslog_files(host):
        hits = _forwards(cf)
        if hits:
            return [f("syslog.remote_copy", "strength", "log_audit", cf,
                      "Logs are forwarded to another host (rsyslog)",
                      "A copy the intruder cannot reach: it survives deletion and rotation on this host.",
                      "Keep it, and check the receiver keeps it long enough.", line=hits[0])]
    for rel in SYSLOG_NG:
        cf = host.tree.read(rel)
        if cf:
            for no, raw in cf.numbered():
                low = strip_comment(raw).lower()
                if "destination" in low and any(k in low for k in ("network(", "tcp(", "udp(", "syslog(")):
                    return [f("syslog.remote_copy", "strength", "log_audit", cf,
                              "Logs are forwarded to another host (syslog-ng)",
                              "A copy the intruder cannot reach.", "Keep it.", line=no)]
    upload = host.tree.read("etc/systemd/journal-upload.conf")
    if upload and any(s.key == "url" and s.value for s in key_values(upload)):
        return [f("syslog.remote_copy", "strength", "log_audit", upload, "The journal is uploaded to another host",
                  "A copy the intruder cannot reach.", "Keep it.")]
    rsyslog = host.tree.read(RSYSLOG[0])
    if rsyslog is None and not host.collected:
        return []
    return [f("syslog.remote_copy", "medium", "log_audit", rsyslog or RSYSLOG[0],
              "No log is copied to another host (no forwarding in the syslog configuration)",
              "Logs kept only on the server are lost to rotation, to a full disk, or to an intruder with root; "
              "the incident's database log had to be salvaged from a raw disk image.",
              "Forward everything to a log host (*.* @@loghost:514, or action(type=\"omfwd\" …)) that keeps it "
              "longer than the dwell time.", absent=rsyslog is None)]


def _journald(host: Host) -> list[Finding]:
    if not host.tree.is_dir("etc/systemd"):
        return []
    f = host.finding
    storage: Setting | None = None
    files = ["etc/systemd/journald.conf"] + [f"etc/systemd/journald.conf.d/{n}"
                                              for n in host.tree.listdir("etc/systemd/journald.conf.d")]
    main = None
    for rel in files:
        cf = host.tree.read(rel)
        if cf is None:
            continue
        main = main or cf
        for s in key_values(cf, lower=False):
            if s.key == "Storage":
                storage = s
    value = (storage.value.lower() if storage else "auto")
    persistent_dir = host.tree.is_dir("var/log/journal")
    if value == "persistent" or (value == "auto" and persistent_dir):
        return [f("journald.storage", "strength", "log_audit", storage or main or "etc/systemd/journald.conf",
                  "The systemd journal is kept on disk", "It survives a reboot (the incident's server was rebooted "
                  "before it was examined).", "Keep it.")]
    if value in ("volatile", "none"):
        return [f("journald.storage", "medium", "log_audit", storage,
                  f"The systemd journal is not kept on disk (Storage={storage.value})",
                  "Whatever only the journal holds is gone at the next reboot.", "Set Storage=persistent.")]
    return [f("journald.storage", "low", "log_audit", storage or main or "etc/systemd/journald.conf",
              "The systemd journal lives in memory (Storage=auto and no /var/log/journal)",
              "Whatever only the journal holds (service output, logins on some systems) is gone at the next reboot.",
              "Set Storage=persistent (or create /var/log/journal).")]


def _time_sync(host: Host) -> list[Finding]:
    f = host.finding
    wants = host.tree.listdir("etc/systemd/system/multi-user.target.wants") + \
        host.tree.listdir("etc/systemd/system/sysinit.target.wants")
    enabled = [u for u in TIME_UNITS if u in wants]
    systemd_visible = host.tree.is_dir("etc/systemd/system")
    for daemon, rels, keys in TIME_CONFS:
        for rel in rels:
            cf = host.tree.read(rel)
            if cf is None:
                continue
            servers = [s for s in key_values(cf, sep=None) if s.key in keys and s.value.strip()]
            if not servers:
                continue
            if systemd_visible and not enabled:
                return [f("time.sync", "low", "log_audit", servers[0],
                          f"{daemon} is configured but its service is not enabled",
                          "Unsynchronised clocks put one host's records minutes off another's.",
                          f"Enable it (systemctl enable {daemon})")]
            return [f("time.sync", "strength", "log_audit", servers[0],
                      f"The clock is synchronised ({daemon}: {servers[0].key} {servers[0].value.split()[0]})",
                      "Records of different hosts can be put on one timeline without guessing offsets.", "Keep it.")]
    timesyncd = host.tree.read("etc/systemd/timesyncd.conf")
    if "systemd-timesyncd.service" in enabled:
        return [f("time.sync", "strength", "log_audit", timesyncd or "etc/systemd/timesyncd.conf",
                  "The clock is synchronised (systemd-timesyncd)",
                  "Records of different hosts can be put on one timeline without guessing offsets.", "Keep it.")]
    if not host.collected:
        return []
    return [f("time.sync", "medium", "log_audit", "etc/chrony.conf",
              "No time synchronisation is configured (no chrony, ntpd or systemd-timesyncd)",
              "A drifting clock shifts this host's records against the others': joining web, FTP and database "
              "logs then needs a measured offset, and an alibi can hang on seconds.",
              "Install and enable chrony with the organisation's time servers.", absent=True)]


def _execve(host: Host) -> list[Finding]:
    f = host.finding
    files = [cf for pattern in AUDIT_RULES for rel in host.tree.files(pattern) if (cf := host.tree.read(rel))]
    for cf in files:
        for no, raw in cf.numbered():
            words = strip_comment(raw).split()
            if not words or words[0] != "-a":
                continue
            action = words[1].lower() if len(words) > 1 else ""
            syscalls = {c for i, w in enumerate(words) if w == "-S" and i + 1 < len(words)
                        for c in words[i + 1].split(",")}
            if "execve" in syscalls and "always" in action and "exit" in action:
                scope = " in " + ", ".join(w.split("=", 1)[1] for i, w in enumerate(words)
                                           if words[i - 1] == "-F" and w.startswith("dir=")) \
                    if "-F" in words and any(w.startswith("dir=") for w in words) else ""
                return [f("auditd.execve", "strength", "log_audit", cf,
                          f"Every program run{scope} is recorded (auditd execve rule)",
                          "What a web shell ran — downloads, miners, crontab — is on record with its user and "
                          "arguments.", "Keep it, and forward audit.log off the host.", line=no)]
    if not files and not host.collected:
        return []
    at = files[0] if files else "etc/audit/rules.d/audit.rules"
    return [f("auditd.execve", "medium", "log_audit", at,
              "Programs run are not recorded (no auditd execve rule)",
              "The commands a web shell ran are then known only where a program happened to print to a log "
              "(as wget did into Apache's error log in the incident).",
              "Add -a always,exit -F arch=b64 -S execve -k exec (and arch=b32) to /etc/audit/rules.d/, "
              "at least for the web server's account and writable directories.", absent=not files)]


def check(host: Host) -> list[Finding]:
    return _retention(host) + _remote_copy(host) + _journald(host) + _time_sync(host) + _execve(host)
