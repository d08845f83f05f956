"""Apache httpd: does the access log say who asked what and how long it took; what would a
penetration test find (listings, CGI, version banners); which account runs it."""

from __future__ import annotations

from logsalvage.audit.apacheconf import Directive, load, logformat_fields
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding

DEFAULT_CLF = "%h %l %u %t \"%r\" %>s %b"  # TransferLog without a LogFormat
DURATION = ("D", "T")
CLIENT = ("h", "a", "{x-forwarded-for}i", "{x-real-ip}i")


def _access_logs(directives: list[Directive]) -> list[tuple[Directive, str]]:
    """Each CustomLog/TransferLog with the format string it writes. httpd looks nicknames up when it
    opens the logs, after reading the whole configuration: a LogFormat later in the files counts."""
    nicknames: dict[str, str] = {}
    default = DEFAULT_CLF
    for d in directives:
        if d.name == "logformat" and d.args:
            if len(d.args) >= 2:
                nicknames[d.args[1]] = d.args[0]
            else:
                default = d.args[0]
    out = []
    for d in directives:
        if d.name == "customlog" and len(d.args) >= 2:
            fmt = d.args[1]
            out.append((d, nicknames.get(fmt, fmt if "%" in fmt else DEFAULT_CLF)))
        elif d.name == "transferlog" and d.args:
            out.append((d, default))
    return out


def _fields_have(fields: set[str], wanted: tuple[str, ...]) -> bool:
    return any(w in fields or any(f.endswith(w) and f.startswith("{") and len(w) == 1 for f in fields)
               for w in wanted)


def check(host: Host) -> list[Finding]:
    conf = load(host)
    if conf is None:
        return []
    f = host.finding
    out: list[Finding] = []
    logs = _access_logs(conf.directives)
    remoteip = conf.named("remoteipheader")
    if not logs:
        out.append(f("apache.access_log", "high", "log_audit", conf.main,
                     "No access log is written (no CustomLog or TransferLog)",
                     "Without it nobody can tell which pages were requested, from where — the web shells' "
                     "1,409 executions were found there.", "Add CustomLog with a format carrying %a and %D."))
    timed = []
    for d, fmt in logs:
        fields = logformat_fields(fmt)
        if not _fields_have(fields, CLIENT):
            out.append(f("apache.log_client", "high", "log_audit", d,
                         "The access log does not record the client address (no %h or %a)",
                         "Requests cannot be traced to who made them: scans, shells and uploads cannot be tied "
                         "to an address.", "Add %a (the client address) to the LogFormat."))
        elif remoteip and "a" not in fields:
            out.append(f("apache.log_client", "low", "log_audit", d,
                         "Behind a proxy (RemoteIPHeader) the access log records %h, the proxy's address",
                         "Every request then seems to come from the proxy.",
                         "Log %a, which mod_remoteip sets to the real client."))
        if _fields_have(fields, DURATION):
            timed.append(d)
        else:
            out.append(f("apache.log_duration", "medium", "log_audit", d,
                         "The access log does not record how long each request took (no %D or %T)",
                         "Time-based SQL injection (a page answering 5 s later) and large downloads through a "
                         "web shell are told apart by their duration; without it they are not.",
                         "Add %D (microseconds) to the LogFormat, e.g. LogFormat \"%a %l %u %t \\\"%r\\\" %>s "
                         "%b \\\"%{Referer}i\\\" \\\"%{User-Agent}i\\\" %D\" combined_d."))
    if timed:
        out.append(f("apache.log_duration", "strength", "log_audit", timed[0],
                     "The access log records each request's duration (%D or %T)",
                     "Slow answers show time-based SQL injection and large downloads.", "Keep it."))
    for d in conf.named("errorlog"):
        if d.args and d.args[0] in ("/dev/null", "\"/dev/null\""):
            out.append(f("apache.error_log", "high", "log_audit", d, "The error log is discarded (ErrorLog /dev/null)",
                         "The error log caught the intruders' tools' output (wget, find) in the incident.",
                         "Write it to a file that logrotate keeps."))

    for d in conf.named("options"):
        opts = [a.lower() for a in d.args]
        where = d.in_section("directory") or d.in_section("location") or "the whole server"
        if where.strip("\"'") == "/" and not ("all" in opts or "+indexes" in opts or "indexes" in opts):
            continue
        if any(o in ("indexes", "+indexes", "all") for o in opts):
            out.append(f("apache.options_indexes", "medium", "pentest", d,
                         f"Directory listings are on for {where} (Options Indexes)",
                         "Anyone can list the files of a directory without an index page: uploaded scripts, "
                         "backups and configuration copies are one click away.", "Use Options -Indexes."))
        if any(o in ("execcgi", "+execcgi", "all") for o in opts):
            out.append(f("apache.options_execcgi", "medium", "hardening", d,
                         f"Scripts run as CGI in {where} (Options ExecCGI)",
                         "A file uploaded there runs as the web server's account.",
                         "Remove ExecCGI where no CGI program is meant to run."))
    for d in conf.named("scriptalias", "scriptaliasmatch"):
        out.append(f("apache.script_alias", "low", "hardening", d,
                     f"A CGI directory is mapped ({' '.join(d.args[:2])})",
                     "Any file that lands in it runs as the web server's account.",
                     "Remove it if no CGI program is used; else make sure no upload account can write there."))
    tokens = conf.named("servertokens")
    token = tokens[-1].args[0].lower() if tokens and tokens[-1].args else "full"
    if token not in ("prod", "productonly"):
        out.append(f("apache.server_tokens", "low", "pentest", tokens[-1] if tokens else conf.main,
                     f"The server announces its version and system (ServerTokens {token.capitalize()})",
                     "Scanners pick targets by version: an old Apache or PHP named in every answer invites them.",
                     "Set ServerTokens Prod and ServerSignature Off."))
    sig = conf.named("serversignature")
    if sig and sig[-1].args and sig[-1].args[0].lower() in ("on", "email"):
        out.append(f("apache.server_signature", "low", "pentest", sig[-1],
                     "Error pages show the server's version (ServerSignature On)",
                     "The same version disclosure, on every error page.", "Set ServerSignature Off."))
    for d in conf.named("user"):
        if d.args and d.args[0] == "nobody" and not d.sections:
            out.append(f("apache.user_nobody", "low", "access", d,
                         "The web server runs as 'nobody'",
                         "'nobody' is shared with other daemons: what a web shell does (a crontab, files in /tmp) "
                         "cannot be told from theirs, and it can touch their files.",
                         "Run it as a dedicated account (apache, www-data) that owns nothing it serves."))
    return out


def document_roots(host: Host) -> list[Directive]:
    conf = load(host)
    return conf.named("documentroot") if conf else []


def server_names(host: Host) -> list[Directive]:
    conf = load(host)
    return conf.named("servername", "serveralias") if conf else []


def run_as(host: Host) -> str | None:
    conf = load(host)
    if conf is None:
        return None
    users = [d for d in conf.named("user") if d.args and not d.sections]
    return users[-1].args[0] if users else None
