"""Who can get in and stay: sshd's authentication, service accounts that can log in, weak or
empty password hashes, crontabs of service accounts and jobs run from writable places, and who
may install a crontab at all."""

from __future__ import annotations

from logsalvage.audit.accounts import WEB_ACCOUNTS, accounts, is_service_account
from logsalvage.audit.conf import Setting, key_values, relative_to_root, truth
from logsalvage.audit.crontabs import command_words, cron_jobs, spool_crontabs
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

SSHD = "etc/ssh/sshd_config"
WRITABLE_PLACES = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/shm/", "/var/www/", "/var/lib/php/")
MAX_INCLUDE_DEPTH = 8


def _sshd_settings(host: Host, cf: ConfigFile, depth: int = 0, seen: set[str] | None = None) -> list[Setting]:
    """Global settings in file order (Include expanded in place, each file once; Match blocks left
    out, since they apply to some connections only). sshd takes the first value of each keyword."""
    seen = set() if seen is None else seen
    seen.add(cf.rel)
    out: list[Setting] = []
    in_match = False
    for s in key_values(cf, sep=None):
        if s.key == "match":
            in_match = s.value.strip().lower() != "all"
            continue
        if in_match:
            continue
        if s.key == "include" and depth < MAX_INCLUDE_DEPTH:
            for pattern in s.value.split():
                for rel in host.tree.files(relative_to_root(pattern, "etc/ssh")):
                    inc = host.tree.read(rel) if rel not in seen else None
                    if inc:
                        out += _sshd_settings(host, inc, depth + 1, seen)
            continue
        out.append(s)
    return out


def _first(settings: list[Setting], key: str) -> Setting | None:
    return next((s for s in settings if s.key == key), None)


def _sshd(host: Host) -> list[Finding]:
    cf = host.tree.read(SSHD)
    if cf is None:
        return []
    f = host.finding
    s = _sshd_settings(host, cf)
    out = []
    password = _first(s, "passwordauthentication")
    pubkey = _first(s, "pubkeyauthentication")
    kbd = _first(s, "kbdinteractiveauthentication") or _first(s, "challengeresponseauthentication")
    pam = _first(s, "usepam")
    if password is None or truth(password.value) is not False:
        out.append(f("ssh.password_authentication", "medium", "access", password or cf,
                     "ssh accepts passwords" + ("" if password else " (PasswordAuthentication not set: yes)"),
                     "Passwords can be guessed from anywhere sshd is reachable; keys cannot.",
                     "Set PasswordAuthentication no and log in with keys (a random passphrase on each)."))
    elif kbd is not None and truth(kbd.value) and pam is not None and truth(pam.value):
        out.append(f("ssh.password_authentication", "medium", "access", kbd,
                     "ssh still takes passwords through keyboard-interactive login (with UsePAM yes)",
                     "PasswordAuthentication no does not stop PAM asking for the same password.",
                     f"Set {kbd.key} no."))
    elif pubkey is None or truth(pubkey.value) is not False:
        out.append(f("ssh.password_authentication", "strength", "access", password,
                     "ssh takes keys only (PasswordAuthentication no)",
                     "Guessing a password over ssh is impossible.", "Keep it."))
    if pubkey is not None and truth(pubkey.value) is False:
        out.append(f("ssh.pubkey_authentication", "medium", "access", pubkey,
                     "ssh refuses keys (PubkeyAuthentication no)",
                     "Maintenance logins must then use passwords, which can be guessed.",
                     "Set PubkeyAuthentication yes."))
    root = _first(s, "permitrootlogin")
    value = (root.value.lower() if root else None)
    if value == "yes":
        out.append(f("ssh.permit_root_login", "high", "access", root, "root may log in over ssh with a password",
                     "The one account every attacker tries first, with full power once in.",
                     "Set PermitRootLogin no; log in as a person and use sudo."))
    elif value is None:
        out.append(f("ssh.permit_root_login", "medium", "access", cf,
                     "PermitRootLogin is not set: OpenSSH before 7.0 (RHEL 7, Debian 8) then lets root log in "
                     "with a password",
                     "The one account every attacker tries first, with full power once in.",
                     "Set PermitRootLogin no."))
    elif value in ("prohibit-password", "without-password", "forced-commands-only"):
        out.append(f("ssh.permit_root_login", "low", "access", root, f"root may log in over ssh with a key ({value})",
                     "Logins as root say nothing about which person it was.",
                     "Set PermitRootLogin no; log in as a person and use sudo."))
    return out


def _accounts(host: Host) -> list[Finding]:
    f = host.finding
    out = []
    for acc in accounts(host).values():
        if acc.uid == 0 and acc.name != "root":
            out.append(f("access.uid0", "high", "access", acc.file, f"Account '{acc.name}' has uid 0 (root's powers)",
                         "A second root account is a classic backdoor.", "Remove it or give it its own uid.",
                         line=acc.line, evidence=acc.text))
        elif is_service_account(host, acc) and acc.can_log_in and acc.name not in ("sync", "shutdown", "halt"):
            web = acc.name in WEB_ACCOUNTS or acc.name == "ftp"
            out.append(f("access.service_shell", "medium" if web else "low", "access", acc.file,
                         f"The service account '{acc.name}' has a login shell ({acc.shell})",
                         "A web shell or a daemon's exploit running as it can use the account interactively, "
                         "and an ssh key or password added to it becomes a way back in.",
                         f"usermod -s /sbin/nologin {acc.name}", line=acc.line, evidence=acc.text))
    shadow = host.tree.read("etc/shadow")
    if shadow:
        for no, raw in shadow.numbered():
            fields = raw.split(":")
            if len(fields) < 2 or not fields[0] or fields[0].startswith("#"):
                continue
            name, hashed = fields[0], fields[1]
            if hashed == "":
                out.append(f("access.empty_password", "high", "access", shadow,
                             f"Account '{name}' has an empty password",
                             "Anyone can log in as it wherever passwords are accepted.",
                             f"passwd -l {name}, or set a long random password.", line=no, evidence=f"{name}:(empty)"))
            elif hashed.startswith("$1$") or (len(hashed) == 13 and hashed[0] not in "!*"):
                scheme = "MD5-crypt" if hashed.startswith("$1$") else "DES crypt"
                out.append(f("access.weak_hash", "medium", "hardening", shadow,
                             f"Account '{name}' has a {scheme} password hash",
                             "A copy of /etc/shadow cracks quickly with such hashes.",
                             "Set ENCRYPT_METHOD SHA512 (or yescrypt) and change the password.", line=no,
                             evidence=f"{name}:{hashed[:3]}…"))
    return out


def _crontabs(host: Host) -> list[Finding]:
    f = host.finding
    out = []
    accs = accounts(host)
    for user, rel in spool_crontabs(host):
        acc = accs.get(user)
        if user in WEB_ACCOUNTS or (acc is not None and is_service_account(host, acc)):
            cf = host.tree.read(rel)
            jobs = [j for j in cron_jobs(host) if j.spool and j.file.rel == rel]
            line = jobs[0].line if jobs else None
            out.append(f("cron.service_account_crontab", "high", "access", cf or rel,
                         f"The service account '{user}' has a crontab",
                         "Daemons do not install crontabs; a web shell running as that account does — the "
                         "incident's miner was restarted every minute by nobody's crontab.",
                         f"Remove it (crontab -r -u {user}) after preserving it as evidence, and allow crontab "
                         "only to named accounts (/etc/cron.allow).", line=line))
    for job in cron_jobs(host):
        words = command_words(job)
        paths = [w for w in words if w.startswith("/")]
        bad = next((p for p in paths if p.startswith(WRITABLE_PLACES) or "/." in p), None)
        if bad:
            out.append(f("cron.job_in_writable_place", "high", "access", job.file,
                         f"A cron job of '{job.user}' runs a program from a writable or hidden place ({bad})",
                         "Legitimate jobs run installed programs; one in /tmp, the web root or a dot-directory "
                         "is how intruders keep a miner or a bot running.",
                         "Preserve it as evidence, then remove the job and the program.", line=job.line))
    if spool_crontabs(host) or host.tree.exists("etc/crontab") or host.tree.is_dir("var/spool/cron"):
        allow = host.tree.read("etc/cron.allow")
        if allow is None:
            deny = host.tree.read("etc/cron.deny")
            denied = {line.strip() for _, line in deny.numbered()} if deny else set()
            if not {"nobody", "apache", "www-data"} & denied or not deny:
                out.append(f("cron.allow", "medium", "access", "etc/cron.allow",
                             "Every account may install a crontab (no /etc/cron.allow)",
                             "A web shell running as the web server's account can schedule itself to run forever.",
                             "Create /etc/cron.allow listing only the accounts that need crontab (root).",
                             absent=True))
        else:
            allowed = {line.strip() for _, line in allow.numbered() if line.strip()}
            web = sorted(allowed & (WEB_ACCOUNTS | {"ftp"}))
            if web:
                out.append(f("cron.allow", "medium", "access", allow,
                             f"/etc/cron.allow lets the service account '{web[0]}' install a crontab",
                             "A web shell running as it can schedule itself.", f"Remove {web[0]} from it."))
    return out


def check(host: Host) -> list[Finding]:
    return _sshd(host) + _accounts(host) + _crontabs(host)
