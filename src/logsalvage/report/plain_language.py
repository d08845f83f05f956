"""What the findings and the verdict's grounds mean, in sentences a manager reads without the
analyst's vocabulary — each followed by the technical term in brackets, so an analyst can still
find it in the second part of the report.

No internal identifier (a detector's rule id such as ``exfil.schema_probe``, a finding id, an event
id, a statement fingerprint) appears in these sentences: they name things by what they are. Every
rule the detectors emit has a sentence here (``FINDINGS``, and ``COMMAND_CLASSES`` for the command
detector's classes); a rule added later without one still reads as a sentence (``fallback``).

Pure functions of the findings.json values; times are shown by the report's clock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from logsalvage.report.durations import duration_label
from logsalvage.report.times import CaseClock

# rule -> (the sentence, with {host} for the finding's host; the technical term that follows it)
FINDINGS: dict[str, tuple[str, str]] = {
    "web.webshell_execution": ("Commands were run on {host} through a web shell, a script planted on the web site "
                               "that runs whatever it is sent", "web shell"),
    "web.command_parameter": ("Web requests to {host} carried operating-system commands, and the site ran them",
                              "command in a request parameter"),
    "web.scanner_probe": ("Automated scanners probed {host} for forgotten admin tools and leaked files, and were "
                          "turned away", "scanner probe"),
    "web.sqli_campaign": ("Someone tried to reach the database through the web site's forms", "SQL injection"),
    "web.sqli_probe": ("Web requests tested whether the site passes database commands through",
                       "SQL-injection probe"),
    "ftp.login_guessing": ("Someone tried to guess a password of the file-transfer service on {host}",
                           "FTP password guessing"),
    "ftp.login": ("Someone logged in to the file-transfer service on {host} from an address the maintainers do "
                  "not use", "FTP login"),
    "ftp.upload": ("Files were put on {host} through the file-transfer service from an unknown address",
                   "FTP upload"),
    "ftp.upload_then_request": ("Files uploaded through the file-transfer service were then opened over the web, "
                                "which is how a planted script is put to work", "FTP upload, then HTTP request"),
    "access.password_guessing": ("Someone tried to guess passwords to log in to {host}", "password guessing"),
    "access.guessing_then_login": ("A password was guessed: a login to {host} succeeded after repeated failures",
                                   "login after password guessing"),
    "access.login_new_network": ("An account logged in to {host} from a network it had not used before",
                                 "login from a new network"),
    "cron.crontab_change": ("The list of programs {host} runs by itself on a schedule was changed",
                            "crontab change"),
    "cron.suspicious_job": ("A program planted by the intruders ran by itself, on a schedule, on {host}",
                            "suspicious cron job"),
    "errorlog.download": ("The web server on {host} downloaded programs from the internet", "downloads by wget"),
    "errorlog.find_permission_denied": ("The intruders searched {host} for folders they could write to",
                                        "file-system search"),
    "errorlog.program_output": ("Programs run by the intruders left their messages in the web server's error log",
                                "program output in the error log"),
    "fs.executable_in_web_dir": ("Programs that do not belong there sit in a folder the web server can write to on "
                                 "{host}", "executables in a web-writable folder"),
    "fs.hidden_dir": ("A hidden folder holds programs on {host}", "hidden directory"),
    "fs.ioc_hash": ("A file known from other attacks is on {host}", "known-bad file hash"),
    "fs.same_second_unpack": ("An archive was unpacked on {host}: its files all appeared in the same second",
                              "files unpacked in one second"),
    "host.package_changes": ("Software was installed or changed on {host} while the intruders had access",
                             "package changes in the exposure window"),
    "db.auth_failed": ("Logins to the database on {host} failed", "database authentication failures"),
    "db.permission_denied": ("The database on {host} refused a user data it may not read",
                             "database permission denied"),
    "db.undefined_object": ("Someone asked the database on {host} for tables or columns that do not exist, the way "
                            "an intruder explores it", "queries for missing tables or columns"),
    "db.slow_statement": ("The database on {host} answered unusually slow requests, as large reads are",
                          "slow statements"),
    "db.full_table_read": ("A whole table of customer data was read from the database on {host}",
                           "whole-table read"),
    "db.copy_to": ("Tables were copied out of the database on {host}", "COPY … TO"),
    "db.dump_session": ("Several tables of the database on {host} were copied out in one go", "dump session"),
    "db.unexpected_client": ("A computer other than the application's talked to the database on {host}",
                             "unexpected database client"),
    "db.sqli_trace": ("The database's errors show attempts to slip commands into it through the web site",
                      "SQL-injection traces in database errors"),
    "exfil.copy_to": ("Tables were copied out of the database on {host}", "COPY … TO"),
    "exfil.full_read": ("A whole table of customer data was read from the database on {host}",
                        "whole-table read"),
    "exfil.customer_read": ("Customer data was read by a user or computer other than the application",
                            "customer read by another client"),
    "exfil.new_fingerprint": ("The database ran requests the application never makes",
                              "statement outside the application's baseline"),
    "exfil.schema_probe": ("Someone explored the database's tables and columns", "schema probe"),
    "exfil.sqli_extraction": ("Customer data was read through the web site's forms", "SQL injection"),
}

# the command detector's classes (``host.command.<class>``)
COMMAND_CLASSES: dict[str, tuple[str, str]] = {
    "reverse_shell": ("A command on {host} opened a remote-control connection to an outside machine",
                      "reverse shell"),
    "miner": ("Cryptocurrency-mining software was run on {host}", "miner"),
    "anti_forensics": ("Commands on {host} erased traces such as command histories or logs", "anti-forensics"),
    "download_execute": ("Programs were downloaded to {host} and run", "download and execute"),
    "persistence": ("Something was set up on {host} to keep the intruders' access or to restart by itself",
                    "persistence"),
    "credential_access": ("Password files or stored credentials on {host} were read", "credential access"),
    "data_staging": ("Data on {host} was gathered or packed up to be taken away", "data staging"),
    "recon": ("Commands on {host} looked around the system", "reconnaissance"),
}

SIGMA = ("A published detection rule matched on {host}", "Sigma rule")
FALLBACK = ("The analysis flagged activity on {host} worth a look", "finding")


def joined(items) -> str:
    """'a', 'a and b', 'a, b and c' (empty items left out)."""
    items = [str(i) for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def finding_parts(rule: str) -> tuple[str, str]:
    """The sentence and the technical term for a finding of ``rule``."""
    if rule in FINDINGS:
        return FINDINGS[rule]
    if rule.startswith("host.command."):
        return COMMAND_CLASSES.get(rule.rsplit(".", 1)[1], ("Commands of a suspicious kind were run on {host}",
                                                            "suspicious commands"))
    if rule.startswith("sigma."):
        return SIGMA
    return FALLBACK


def finding_sentence(f: Mapping) -> str:
    """One finding for the decision maker: what it means, then its technical name and title."""
    sentence, term = finding_parts(str(f.get("rule") or ""))
    host = f.get("host") or "a host"
    title = f.get("title")
    return f"{sentence.format(host=host)} ({term}{': ' + str(title) if title else ''})."


# -- the verdict's grounds ---------------------------------------------------------------------------

def _percent(ratio) -> str:
    return f"{ratio * 100:.2f} %"


def _coverage(b: Mapping, clock: CaseClock) -> str:
    text = (f"The database log{' of ' + str(b['db_host']) if b.get('db_host') else ''} covers "
            f"{_percent(b['ratio'])} of the time the intruders had access")
    if b.get("holes"):
        text += (f"; for the rest nothing can be said: the longest stretch without any database record is "
                 f"{duration_label(b.get('longest_hole_s') or 0)} from {clock.show(b.get('longest_hole_start'))}")
    else:
        text += ", without a gap"
    return text + " (heartbeat coverage of the exposure window)."


def _baseline(b: Mapping, clock: CaseClock) -> str:
    users = ", ".join(b.get("app_users") or []) or "its usual accounts"
    clients = ", ".join(b.get("app_clients") or []) or "its usual addresses"
    learnt = "inferred from the log" if b.get("app_clients_inferred") else "as the case configuration names them"
    return (f"What the application normally asks the database was learnt from the whole log "
            f"({b.get('statements', 0):,} kinds of request from {clients} as {users}, {learnt}), so that anything "
            "else stands out "
            f"(statement baseline; {b.get('records_in_window', 0):,} database records in the exposure window).")


def _maintenance(b: Mapping, clock: CaseClock) -> str:
    where = "over the database server's own socket" if b.get("socket") else "from the database server itself"
    when = f" around {b['time_of_day']}" if b.get("time_of_day") else ""
    return (f"The daily backup, which copies tables{when} {where}, was recognised and set aside "
            f"(local maintenance dump by {b.get('user') or 'an unknown user'}; {b.get('runs_in_window', 0):,} runs "
            f"in the exposure window, {b.get('runs_outside', 0):,} outside).")


def _slow_only(b: Mapping, clock: CaseClock) -> str:
    seconds = (b.get("threshold_ms") or 0) / 1000
    return (f"The database records only requests slower than about {seconds:g} s, and errors: a quick look at a few "
            "customers leaves no trace, copying out a large table does (only slow statements logged: the "
            f"shortest logged duration is about {b.get('threshold_ms')} ms).")


BASIS: dict[str, Callable[[Mapping, CaseClock], str]] = {
    "coverage": _coverage,
    "coverage_unknown": lambda b, clock: (
        "How much of the time the intruders had access the database log covers could not be measured, so data "
        f"may have left unseen (coverage unknown: {b.get('note') or 'no measure'})."),
    "no_exposure_window": lambda b, clock: (
        "No sign was found that intruders ran code, took over an account or reached data through SQL injection, "
        "so there is no time of access to examine for data leaving (no exposure window)."),
    "no_database_log": lambda b, clock: (
        "The evidence holds no database log, so nothing shows what the database itself did (no PostgreSQL "
        "records)."),
    "no_records_in_window": lambda b, clock: (
        "The database log has no record at all from the time the intruders had access (no record in the "
        "exposure window)."),
    "coverage_too_low": lambda b, clock: (
        "No trace of data leaving was found, but the database log covers too little of the time the intruders "
        f"had access to rule it out (coverage under {(b.get('below') or 0.5) * 100:.0f} %)."),
    "nothing_found": lambda b, clock: (
        "The database log shows no table copied out, no whole customer table read, no customer data read by "
        "anyone but the application and no request the application never makes (no COPY … TO, whole-table "
        "read or request outside the statement baseline"
        + (f"; {b['set_aside']:,} routine or minor finding{'s' * (b['set_aside'] != 1)} set aside"
           if b.get("set_aside") else "") + ")."),
    "baseline": _baseline,
    "maintenance_dump": _maintenance,
    "slow_only": _slow_only,
    "damaged": lambda b, clock: (
        f"{b.get('records', 0):,} record{'s' * (b.get('records') != 1)} recovered from the disk "
        f"{'were' if b.get('records') != 1 else 'was'} too damaged to read and set aside (salvaged records with "
        "garbled statement text)."),
}
BASIS_FALLBACK = "A further check weighed in this verdict; the analyst part lists it with the verdict's details."
# findings.json written before the verdict carried its grounds as data
LEGACY = ("The grounds of this verdict are listed in the detectors' words under Verdict in detail (the findings "
          "were written by a version that did not record them for this summary).")


def verdict_basis(verdict: Mapping, has_window: bool) -> list[Mapping]:
    """The verdict's grounds as data; for a verdict without them, what can be said from the rest."""
    if verdict.get("basis") is not None:
        return list(verdict["basis"])
    if not has_window:
        return [{"code": "no_exposure_window"}]
    return [{"code": "legacy"}] if verdict.get("reasons") else []


def basis_sentences(basis: list[Mapping], findings_by_id: Mapping[str, Mapping], clock: CaseClock) -> list[str]:
    """The verdict's grounds as sentences, in the verdict's order; its evidence as one sentence per
    finding it rests on."""
    out = []
    for b in basis or []:
        code = b.get("code")
        if code == "evidence":
            head = ("The database's records show customer data leaving it:" if b.get("leaving") else
                    "The database's records show activity that could be data leaving it:")
            listed = [findings_by_id[i] for i in b.get("findings") or [] if i in findings_by_id]
            out.append(head + (" " + " ".join(_grouped_sentences(listed)) if listed else
                               " see the findings in the analyst part."))
            more = (b.get("total") or 0) - len(listed)
            if more > 0:
                out.append(f"{more:,} more finding{'s' * (more != 1)} of the same kind are listed in the analyst part.")
        elif code in BASIS:
            out.append(BASIS[code](b, clock))
        elif code == "legacy":
            out.append(LEGACY)
        else:
            out.append(BASIS_FALLBACK)
    return out


def _grouped_sentences(findings: list[Mapping]) -> list[str]:
    """One sentence per kind of finding, its findings' titles after it (two COPYs read as one
    sentence naming both)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for f in findings:
        sentence, term = finding_parts(str(f.get("rule") or ""))
        titles = groups.setdefault((sentence.format(host=f.get("host") or "a host"), term), [])
        if f.get("title"):
            titles.append(str(f["title"]))
    return [f"{sentence} ({term}{': ' + '; '.join(titles) if titles else ''})."
            for (sentence, term), titles in groups.items()]


# -- dated steps ----------------------------------------------------------------------------------

# details of a dated step that are the tool's own references, not facts for a reader
_INTERNAL_DETAIL = frozenset({"rule", "finding", "request", "verdict", "severity", "title", "block"})
_DETAIL_LABELS = {"source": "from", "url": "request", "uploads": "files", "db_clients": "database clients",
                  "web_host": "web server", "with_sql": "with SQL", "back_at": "back at",
                  "first_failure": "first failed attempt", "planned_start": "planned start",
                  "reported": "reported"}


def step_summary(detail: Mapping | None, clock: CaseClock, as_text: Callable) -> str:
    """A dated step's detail without the tool's references, its times on the report's clock."""
    parts = []
    for key, value in (detail or {}).items():
        if key in _INTERNAL_DETAIL or value in (None, "", [], {}):
            continue
        shown = clock.in_text(as_text(value))
        parts.append(f"{_DETAIL_LABELS.get(key, key.replace('_', ' '))}: {shown}")
    return "; ".join(parts)
