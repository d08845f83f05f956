"""PHP: what a script — or a web shell — may do (run commands, include remote code), and what it
tells a scanner (version, errors). ``php.ini`` of each server API with its scanned ``conf.d``
files (read after it, so they win); PHP's built-in defaults apply to what no file sets."""

from __future__ import annotations

from logsalvage.audit.conf import Setting, ini, parent, truth
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

MAIN_INIS = ("etc/php.ini", "etc/php5/apache2/php.ini", "etc/php5/fpm/php.ini", "etc/php5/cgi/php.ini",
             "etc/php/*/apache2/php.ini", "etc/php/*/fpm/php.ini", "etc/php/*/cgi/php.ini",
             "usr/local/lib/php.ini", "usr/local/etc/php.ini", "usr/local/etc/php/php.ini",
             "etc/opt/remi/*/php.ini")
SCANNED = {"etc/php.ini": "etc/php.d"}  # else the conf.d beside php.ini
DEFAULTS = {"allow_url_fopen": "1", "allow_url_include": "0", "expose_php": "1", "display_errors": "1",
            "disable_functions": ""}
COMMAND_FUNCTIONS = ("exec", "system", "passthru", "shell_exec", "proc_open", "popen")


def _settings(host: Host, main: ConfigFile) -> dict[str, Setting]:
    out = {s.key: s for s in ini(main)}
    extra = SCANNED.get(main.rel, f"{parent(main.rel)}/conf.d")
    for name in host.tree.listdir(extra):
        if name.endswith(".ini"):
            cf = host.tree.read(f"{extra}/{name}")
            if cf:
                out.update({s.key: s for s in ini(cf)})
    return out


def inis(host: Host) -> list[tuple[ConfigFile, dict[str, Setting]]]:
    def make(h: Host):
        out = []
        for pattern in MAIN_INIS:
            for rel in h.tree.files(pattern):
                cf = h.tree.read(rel)
                if cf:
                    out.append((cf, _settings(h, cf)))
        return out
    return host.fact("php", make)


def check(host: Host) -> list[Finding]:
    out: list[Finding] = []
    for main, s in inis(host):
        out += _check(host, main, s)
    return out


def _check(host: Host, main: ConfigFile, s: dict[str, Setting]) -> list[Finding]:
    f = host.finding
    out = []

    def value(key: str) -> str:
        return s[key].value if key in s else DEFAULTS[key]

    def at(key: str):
        return s.get(key) or main

    if truth(value("allow_url_include")):
        out.append(f("php.allow_url_include", "high", "hardening", at("allow_url_include"),
                     "Scripts may include code from URLs (allow_url_include = On)",
                     "One unchecked parameter in an include() runs code from the attacker's server.",
                     "Set allow_url_include = Off."))
    if truth(value("allow_url_fopen")) is not False:
        out.append(f("php.allow_url_fopen", "low", "hardening", at("allow_url_fopen"),
                     "Scripts may open URLs as files (allow_url_fopen = On)",
                     "A web shell or a flawed script fetches its next stage with plain file functions.",
                     "Set allow_url_fopen = Off unless the site needs it."))
    disabled = {x.strip().lower() for x in value("disable_functions").replace(" ", ",").split(",") if x.strip()}
    missing = [fn for fn in COMMAND_FUNCTIONS if fn not in disabled]
    if len(missing) == len(COMMAND_FUNCTIONS):
        out.append(f("php.disable_functions", "medium", "hardening", at("disable_functions"),
                     "PHP may run operating-system commands (disable_functions disables none of "
                     f"{', '.join(COMMAND_FUNCTIONS)})",
                     "A web shell is then a remote shell: the incident's shells ran id, wget, crontab and the miner.",
                     f"Set disable_functions = {','.join(COMMAND_FUNCTIONS)} (if the site uses none of them)."))
    elif missing:
        out.append(f("php.disable_functions", "low", "hardening", at("disable_functions"),
                     f"PHP may still run commands through {', '.join(missing)}",
                     "One function left open is enough for a web shell.",
                     f"Add {', '.join(missing)} to disable_functions."))
    else:
        out.append(f("php.disable_functions", "strength", "hardening", at("disable_functions"),
                     "PHP's command functions are disabled (disable_functions)",
                     "A web shell cannot run operating-system commands.", "Keep it."))
    if truth(value("expose_php")) is not False:
        out.append(f("php.expose_php", "low", "pentest", at("expose_php"),
                     "Every answer names the PHP version (expose_php = On)",
                     "Scanners pick targets by version; an end-of-life PHP invites them.", "Set expose_php = Off."))
    display = value("display_errors").lower()
    if truth(display) or display in ("stdout", "stderr"):
        out.append(f("php.display_errors", "medium", "pentest", at("display_errors"),
                     "Errors are shown to visitors (display_errors = On)",
                     "Error pages reveal paths, queries and database errors: SQL injection gets easier.",
                     "Set display_errors = Off and log_errors = On."))
    return out
