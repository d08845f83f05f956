"""The story in one paragraph, for the first screen: which hosts the intruders had, since when and
until when, how they got in, what they ran, and whether data left.

Written from the findings, the dated steps and the sources read — never from knowledge of a
particular case. How they got in is told by the first dated step that explains it (a login after
password guessing, an FTP upload, a confirmed SQL injection). When a web shell answered before
anything in the evidence explains how it got there, the paragraph says so: the shell most likely
arrived earlier (by FTP when later uploads show that way in), the evidence of its arrival is not
in the logs read, and where each of the shell's host's logs begins — the reader learns what is
missing, not just what is there.

Pure: the same inputs give the same text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import PurePosixPath

from logsalvage.report.durations import duration_label
from logsalvage.report.plain_language import joined as _list
from logsalvage.report.times import CaseClock

# what began the exposure window, as the first sentence says it
EXPLOITATION = {
    "first_webshell_execution": "a web shell first ran a command",
    "initial_access": "an account was taken over after password guessing",
    "sqli_injectable": "a SQL injection into the web site was confirmed",
    "sqli_extraction": "a SQL injection first asked for data",
    "cron_first_run": "a planted scheduled job first ran",
    "crontab_replace": "a service account replaced its scheduled jobs",
    "download": "the web server first downloaded a program",
}
# what the web server's way in shows in the evidence
ENTRY = ("initial_access", "ftp_upload_session")
# hosts an intruder ran something on, by the dated steps that show it
FOOTHOLD = ("first_webshell_execution", "initial_access", "cron_first_run", "crontab_replace", "download",
            "hidden_dir_unpacked", "find_scan")
FTP_FORMATS = ("vsftpd", "xferlog")
LOG_NAMES = {"vsftpd": "FTP log", "xferlog": "FTP transfer log", "apache-access": "web access log",
             "apache-error": "web error log", "nginx-error": "web error log", "syslog": "system log",
             "auditd": "audit log", "bash-history": "shell history", "zsh-history": "shell history"}
_ROTATION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst")


def paragraph(*, findings: list[Mapping], milestones: list[Mapping], verdict: Mapping,
              exposure_window: Mapping | None, sources: list[Mapping], clock: CaseClock,
              theft: Mapping | None = None) -> dict:
    """``{"text": the paragraph, "access_gap": the unexplained first web-shell request or None}``."""
    by_kind: dict[str, list[Mapping]] = {}
    for m in sorted(milestones, key=lambda m: (_epoch(m.get("time")), str(m.get("kind")))):
        by_kind.setdefault(str(m.get("kind")), []).append(m)
    sentences = [_opening(by_kind, verdict, exposure_window, clock)]
    entry, gap = _way_in(by_kind, sources, clock)
    if entry:
        sentences.append(entry)
    ran = _what_they_ran(findings, by_kind, clock)
    if ran:
        sentences.append(ran)
    sentences.append(_data(verdict, theft, clock))
    return {"text": " ".join(s for s in sentences if s), "access_gap": gap}


# -- sentences --------------------------------------------------------------------------------------

def _opening(by_kind, verdict, window, clock) -> str:
    if not window:
        probe = (by_kind.get("first_probe") or [None])[0]
        text = ("The logs read show no sign that intruders got in: no code was run, no account was taken over and "
                "no SQL injection reached data")
        if probe:
            text += f" (scanners probed {probe.get('host')} from {clock.show(probe.get('time'))} on)"
        return text + "."
    hosts = _hosts(by_kind)
    db_host = verdict.get("db_host") if verdict.get("exfiltration") in ("found", "suspected") else None
    where = _list(hosts) or "the servers"
    if db_host and db_host not in hosts:
        where += f" and, through {'it' if len(hosts) == 1 else 'them'}, the database on {db_host}"
    first = _first_exploitation(by_kind, window)
    how = f", when {EXPLOITATION[first['kind']]}" if first else ""
    seconds = int((_moment(window.get("end")) - _moment(window.get("start"))).total_seconds())
    return (f"Intruders had access to {where} from {clock.show(window.get('start'))}{how}, until "
            f"{clock.show(window.get('end'))} ({duration_label(seconds)}).")


def _way_in(by_kind, sources, clock) -> tuple[str | None, dict | None]:
    shell = (by_kind.get("first_webshell_execution") or [None])[0]
    entries = sorted((m for k in ENTRY for m in by_kind.get(k, [])), key=lambda m: _epoch(m.get("time")))
    entry = entries[0] if entries else None
    if shell is None or (entry is not None and _epoch(entry.get("time")) <= _epoch(shell.get("time"))):
        if entry is not None:
            return _entry_sentence(entry, clock), None
        sqli = (by_kind.get("sqli_injectable") or by_kind.get("sqli_extraction") or [None])[0]
        if sqli is not None:
            d = sqli.get("detail") or {}
            return (f"They reached the database through SQL injection into {d.get('script') or 'the web site'}"
                    f"{' (parameter ' + str(d['parameter']) + ')' if d.get('parameter') else ''}"
                    f"{' from ' + str(d['source']) if d.get('source') else ''}, first on "
                    f"{clock.show(sqli.get('time'))}.",
                    None)
        return None, None
    # a web shell answered before anything in the evidence explains how it got there
    host = shell.get("host")
    detail = shell.get("detail") or {}
    script = str(detail.get("url") or "").split("?", 1)[0] or None
    uploads = by_kind.get("ftp_upload_session", [])
    first_upload = uploads[0] if uploads else None
    text = f"How the web shell got onto {host} is not in the logs read: its first request"
    text += f" ({script}, {clock.show(shell.get('time'))})" if script else f" ({clock.show(shell.get('time'))})"
    if entry is not None:
        what = "FTP upload" if entry.get("kind") == "ftp_upload_session" else "login after password guessing"
        text += (f" came {_human_gap(_epoch(entry.get('time')) - _epoch(shell.get('time')))} before the first "
                 f"{what} in the evidence ({clock.show(entry.get('time'))}).")
    else:
        text += " comes before any upload or login in the evidence."
    same = _same_file_uploaded(uploads, script)
    if first_upload is not None:
        user = (first_upload.get("detail") or {}).get("user")
        text += " It most likely arrived earlier by FTP upload, as the later uploads show"
        if same is not None:
            text += f" (the same file was uploaded again on {clock.show(same.get('time'))}"
            text += f" with the account {user})" if user else ")"
        elif user:
            text += f" (with the account {user})"
        text += ", but no record of that is in the logs read"
    else:
        text += " No record of its arrival is in the logs read"
    starts = log_starts(sources, host)
    if starts:
        text += f": {host}'s logs begin with the " + _list([f"{s['log']} on {clock.show(s['first'])}" for s in starts])
    text += "."
    ftp_before = [s for s in starts if s["format"] in FTP_FORMATS and _epoch(s["first"]) < _epoch(shell.get("time"))]
    if first_upload is not None and ftp_before:
        text += (" The FTP log reaches back before the shell's first request: either it lost the upload's records "
                 "or the shell came another way.")
    gap = {"host": host, "script": script, "first_request": shell.get("time"),
           "first_entry": entry.get("time") if entry else None, "entry_kind": entry.get("kind") if entry else None,
           "log_starts": starts}
    return text, gap


def _same_file_uploaded(uploads: list[Mapping], script: str | None) -> Mapping | None:
    """The first upload session that put a file of the shell's name on the server (the FTP path is the
    file system's, the shell's the URL's: their names are compared)."""
    name = PurePosixPath(script).name if script else None
    for m in uploads:
        if name and any(PurePosixPath(str(u)).name == name for u in (m.get("detail") or {}).get("uploads") or []):
            return m
    return None


def _entry_sentence(m: Mapping, clock: CaseClock) -> str:
    d = m.get("detail") or {}
    when = clock.show(m.get("time"))
    if m.get("kind") == "initial_access":
        return (f"They got in by guessing the password of {d.get('account') or 'an account'}"
                f"{' (' + str(d['service']) + ')' if d.get('service') else ''} on {m.get('host')}"
                f"{' from ' + str(d['source']) if d.get('source') else ''}: the first login after the guessing was "
                f"on {when}.")
    files = d.get("uploads") or []
    return (f"They got in by uploading {_list(files[:3]) or 'files'}{' and more' if len(files) > 3 else ''} to "
            f"{m.get('host')} by FTP{' with the account ' + str(d['user']) if d.get('user') else ''}"
            f"{' from ' + str(d['source']) if d.get('source') else ''}, first on {when}.")


def _what_they_ran(findings, by_kind, clock) -> str | None:
    parts = []
    shells = [f for f in findings if f.get("rule") == "web.webshell_execution"]
    if shells:
        scripts = [str((f.get("detail") or {}).get("script")) for f in shells if (f.get("detail") or {}).get("script")]
        requests = sum(int(f.get("count") or 0) for f in shells)
        addresses = {a for f in shells for a in f.get("sources") or []}
        networks = len(by_kind.get("webshell_first_use_from_network", []))
        hosts = sorted({str(f.get("host")) for f in shells})
        parts.append(f"through {'web shells' if len(scripts) > 1 else 'a web shell'} ({_list(scripts)}: "
                     f"{requests:,} requests from {len(addresses):,} address{'es' * (len(addresses) != 1)}"
                     f"{f' in {networks} networks' if networks > 1 else ''}) they ran commands on {_list(hosts)}")
    downloads = by_kind.get("download", [])
    if downloads:
        saved = sum(1 for m in downloads if (m.get("detail") or {}).get("outcome") == "saved")
        parts.append(f"had the web server download programs {len(downloads):,} time{'s' * (len(downloads) != 1)}"
                     f"{f' ({saved:,} saved)' if saved else ''}")
    if by_kind.get("find_scan"):
        parts.append("searched the server for folders they could write to")
    for m in by_kind.get("hidden_dir_unpacked", [])[:2]:
        parts.append(f"unpacked programs into the hidden folder {(m.get('detail') or {}).get('path')}")
    runs = by_kind.get("cron_first_run", [])
    if runs:
        commands = list(dict.fromkeys(str((m.get("detail") or {}).get("command")) for m in runs))
        parts.append(f"planted scheduled jobs (cron) that ran {_list(commands[:3])}"
                     f"{' and more' if len(commands) > 3 else ''}, first on {clock.show(runs[0].get('time'))}")
    for cls, words in (("miner", "ran cryptocurrency-mining software"),
                       ("reverse_shell", "opened remote-control connections to outside machines"),
                       ("anti_forensics", "erased traces of what they did")):
        if any(f.get("rule") == f"host.command.{cls}" for f in findings):
            parts.append(words)
    if not parts:
        return None
    text = _list(parts)
    return text[0].upper() + text[1:] + "."


def _data(verdict: Mapping, theft: Mapping | None, clock: CaseClock) -> str:
    v = verdict.get("exfiltration") or "undetermined"
    confidence = verdict.get("confidence") or "low"
    db = verdict.get("db_host")
    on = f" on {db}" if db else ""
    facts = verdict.get("theft") or {}
    if v in ("found", "suspected"):
        text = ("Customer data left the database" if v == "found" else "Data may have left the database") + on
        text += f" (confidence {confidence})"
        when = facts.get("first")
        if when:
            last = facts.get("last")
            text += (f": from {clock.show(when)} to {clock.show(last)}" if last and last != when else
                     f": on {clock.show(when)}")
            tables = facts.get("tables") or []
            if tables:
                text += f", {_list(tables)} {'were' if v == 'found' else 'may have been'} read or copied out"
            web = (theft or {}).get("web")
            if web and web.get("scripts"):
                text += (f", through the web shell {_list(web['scripts'])}"
                         f"{' from ' + _list(web['sources']) if web.get('sources') else ''}")
            for i in facts.get("injection") or []:
                text += f", through SQL injection into {i.get('script')}"
        return text + "."
    if v == "none-found":
        ratio = verdict.get("coverage_of_exposure_window")
        text = f"No sign was found that data left the database{on} (confidence {confidence})"
        if confidence != "high" and ratio is not None:
            text += f", but its log covers only {ratio * 100:.2f} % of the time the intruders had access"
        return text + "."
    return (f"Whether data left the database{on} cannot be told (confidence {confidence}): "
            f"{_undetermined_why(verdict)}.")


def _undetermined_why(verdict: Mapping) -> str:
    codes = {b.get("code") for b in verdict.get("basis") or []}
    if "no_database_log" in codes or not verdict.get("db_host"):
        return "the evidence holds no database log for that time"
    if "no_records_in_window" in codes:
        return "the database log has no record from the time the intruders had access"
    if "coverage_unknown" in codes:
        return "how much of that time its log covers could not be measured"
    return "its log covers too little of the time the intruders had access"


# -- the logs read --------------------------------------------------------------------------------

def log_starts(sources: list[Mapping], host: str | None) -> list[dict]:
    """Where each of ``host``'s logs begins (its earliest record, rotated files and copies together),
    earliest first: ``{"log": "FTP log (vsftpd.log)", "format": "vsftpd", "first": ISO}``."""
    first: dict[tuple[str, str], str] = {}
    for s in sources:
        if s.get("host") != host or not s.get("first"):
            continue
        key = (str(s.get("format") or ""), _log_name(str(s.get("path") or "")))
        if key not in first or _epoch(s["first"]) < _epoch(first[key]):
            first[key] = s["first"]
    out = [{"log": f"{LOG_NAMES.get(fmt, fmt + ' log')} ({name})" if name else LOG_NAMES.get(fmt, fmt),
            "format": fmt, "first": t} for (fmt, name), t in first.items()]
    return sorted(out, key=lambda x: (_epoch(x["first"]), x["log"]))


def _log_name(path: str) -> str:
    """A log's name without its rotation: '…/access_log-20170122.gz' -> 'access_log'."""
    name = PurePosixPath(path.rsplit("!", 1)[-1]).name
    for suffix in _ROTATION_SUFFIXES:
        name = name.removesuffix(suffix)
    head, sep, tail = name.rpartition("-")
    if sep and tail.isdigit() and len(tail) == 8:
        name = head
    head, sep, tail = name.rpartition(".")
    if sep and tail.isdigit():
        name = head
    return name


# -- values -----------------------------------------------------------------------------------------

def _hosts(by_kind) -> list[str]:
    return sorted({str(m.get("host")) for k in FOOTHOLD for m in by_kind.get(k, []) if m.get("host")})


def _first_exploitation(by_kind, window) -> Mapping | None:
    start = _epoch(window.get("start"))
    candidates = [m for k in EXPLOITATION for m in by_kind.get(k, [])]
    at_start = [m for m in candidates if _epoch(m.get("time")) == start]
    pool = at_start or candidates
    return min(pool, key=lambda m: (_epoch(m.get("time")), list(EXPLOITATION).index(m["kind"])), default=None)


def _human_gap(seconds: float) -> str:
    days = seconds / 86400
    if days >= 45:
        months = round(days / 30.44)
        return "about a month" if months == 1 else f"about {months} months"
    if days >= 14:
        return f"about {round(days / 7)} weeks"
    return duration_label(int(seconds))


def _moment(iso) -> datetime:
    t = datetime.fromisoformat(str(iso))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)  # the case stores UTC


def _epoch(iso) -> float:
    if not iso:
        return float("inf")
    try:
        return _moment(iso).timestamp()
    except ValueError:
        return float("inf")
