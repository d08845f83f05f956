"""vsftpd: is FTP running, to whom is it open, who can log in and write, and would its log show
the uploads. Defaults are vsftpd 3's compiled-in ones, which apply when a line is missing."""

from __future__ import annotations

from logsalvage.audit import apache, nginx
from logsalvage.audit.accounts import Account, people
from logsalvage.audit.conf import Setting, key_values, truth
from logsalvage.audit.host import Host
from logsalvage.audit.model import Finding
from logsalvage.audit.tree import ConfigFile

CONFS = ("etc/vsftpd/vsftpd.conf", "etc/vsftpd.conf")
DEFAULTS = {"anonymous_enable": "YES", "local_enable": "NO", "write_enable": "NO", "chroot_local_user": "NO",
            "listen": "NO", "listen_ipv6": "NO", "tcp_wrappers": "NO", "ssl_enable": "NO", "userlist_enable": "NO",
            "userlist_deny": "YES", "xferlog_enable": "NO", "dual_log_enable": "NO", "anon_upload_enable": "NO"}
ENABLED_LINKS = ("etc/systemd/system/multi-user.target.wants/vsftpd.service", "etc/rc.d/rc3.d", "etc/rc3.d",
                 "etc/rc2.d")
# labels of a host or domain name that say nothing about the site
GENERIC_LABELS = frozenset({"www", "www1", "www2", "ftp", "mail", "smtp", "web", "localhost", "localdomain", "local",
                            "com", "net", "org", "co", "jp", "ne", "or", "ac", "go", "example", "info", "biz", "us",
                            "uk", "de", "io", "eu", "lan", "intra", "internal", "corp", "home"})
MIN_TOKEN = 4  # shorter labels and account names match too much by chance


class Vsftpd:
    def __init__(self, cf: ConfigFile, settings: dict[str, Setting]):
        self.cf = cf
        self.settings = settings

    def value(self, key: str) -> str:
        s = self.settings.get(key)
        return s.value if s else DEFAULTS.get(key, "")

    def on(self, key: str) -> bool:
        return bool(truth(self.value(key)))

    def at(self, key: str) -> Setting | ConfigFile:
        return self.settings.get(key) or self.cf


def load(host: Host) -> Vsftpd | None:
    def make(h: Host):
        for rel in CONFS:
            cf = h.tree.read(rel)
            if cf is not None:
                return Vsftpd(cf, {s.key: s for s in key_values(cf)})
        return None
    return host.fact("vsftpd", make)


def _listed(host: Host, rels: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for rel in rels:
        cf = host.tree.read(rel)
        if cf:
            out |= {line.strip() for _, line in cf.numbered() if line.strip() and not line.strip().startswith("#")}
    return out


def ftp_accounts(host: Host) -> list[Account]:
    """People's accounts vsftpd lets log in (local_enable; ftpusers and the user list applied)."""
    conf = load(host)
    if conf is None or not conf.on("local_enable"):
        return []
    denied = _listed(host, ("etc/vsftpd/ftpusers", "etc/ftpusers"))
    listed = _listed(host, (conf.value("userlist_file") or "", "etc/vsftpd/user_list", "etc/vsftpd.user_list"))
    out = []
    for acc in people(host):
        if acc.name in denied:
            continue
        # PAM's pam_shells refuses a shell /etc/shells does not list (RHEL lists nologin for FTP-only accounts)
        if not acc.can_log_in and host.tree.exists("etc/shells") and acc.shell not in _listed(host, ("etc/shells",)):
            continue
        if conf.on("userlist_enable"):
            if conf.on("userlist_deny") and acc.name in listed:
                continue
            if not conf.on("userlist_deny") and acc.name not in listed:
                continue
        out.append(acc)
    return out


def _running(host: Host, conf: Vsftpd) -> tuple[bool, str]:
    """Whether vsftpd runs, and what shows it."""
    if conf.on("listen") or conf.on("listen_ipv6"):
        return True, "it listens on its own (listen=YES)"
    xinetd = host.tree.read("etc/xinetd.d/vsftpd")
    if xinetd:
        for s in key_values(xinetd):
            if s.key == "disable" and truth(s.value) is False:
                return True, "xinetd starts it"
    if host.tree.exists(ENABLED_LINKS[0]):
        return True, "its service is enabled"
    for d in ENABLED_LINKS[1:]:
        if any(n.startswith("S") and n.endswith("vsftpd") for n in host.tree.listdir(d)):
            return True, "its init script is enabled"
    for log in ("var/log/vsftpd.log", "var/log/xferlog"):
        st = host.tree.stat(log)
        if st is not None and st.st_size > 0:
            return True, f"its log /{log} has records"
    return False, ""


def _restriction(host: Host, conf: Vsftpd) -> str | None:
    """What limits who can connect, or None: tcp_wrappers with an address list, a private
    listen_address, a firewall rule for port 21 with a source."""
    addr = conf.settings.get("listen_address")
    if addr and (addr.value.startswith(("10.", "192.168.", "127.")) or
                 addr.value.startswith("172.") and addr.value.split(".")[1:2] and
                 addr.value.split(".")[1].isdigit() and 16 <= int(addr.value.split(".")[1]) <= 31):
        return f"it listens on {addr.value} only"
    if conf.on("tcp_wrappers"):
        allow = host.tree.read("etc/hosts.allow")
        deny = host.tree.read("etc/hosts.deny")
        allowed = [line for _, line in (allow.numbered() if allow else []) if line.strip().lower().startswith("vsftpd")]
        denies_all = any(line.replace(" ", "").lower().startswith(("all:all", "vsftpd:all"))
                         for _, line in (deny.numbered() if deny else []))
        if allowed and denies_all:
            return f"tcp_wrappers admit only {allowed[0].split(':', 1)[1].strip()}"
    rules = host.tree.read("etc/sysconfig/iptables")
    if rules:
        ftp = [line for _, line in rules.numbered() if "--dport 21" in line and "ACCEPT" in line]
        if ftp and all(" -s " in line for line in ftp):
            return "the firewall admits port 21 from listed addresses only"
    return None


def site_names(host: Host) -> list[str]:
    """Names the host and its sites go by: its host name, Apache's ServerName/ServerAlias, nginx's server_name."""
    names = [host.name]
    for rel in ("etc/hostname", "etc/HOSTNAME", "etc/mailname"):
        cf = host.tree.read(rel)
        if cf:
            names += [line.strip() for _, line in cf.numbered() if line.strip() and not line.startswith("#")]
    network = host.tree.read("etc/sysconfig/network")
    if network:
        names += [s.value for s in key_values(network) if s.key == "hostname"]
    for d in apache.server_names(host):
        names += [a.split("://")[-1].split(":")[0] for a in d.args]
    for d in nginx.server_names(host):
        names += [a for a in d.args if a not in ("_", "localhost") and not a.startswith("~")]
    return names


def _tokens(names: list[str]) -> list[str]:
    out = []
    for name in names:
        for label in name.lower().strip(".").split("."):
            token = "".join(c for c in label if c.isalnum())
            if len(token) >= MIN_TOKEN and token not in GENERIC_LABELS and token not in out:
                out.append(token)
    return out


def derived_from(name: str, tokens: list[str]) -> str | None:
    """The site name token an account name derives from (equal, or one inside the other)."""
    n = "".join(c for c in name.lower() if c.isalnum())
    if len(n) < MIN_TOKEN:
        return None
    for t in tokens:
        if n == t or t in n or n in t:
            return t
    return None


def check(host: Host) -> list[Finding]:
    conf = load(host)
    if conf is None:
        return []
    f = host.finding
    out: list[Finding] = []
    running, how = _running(host, conf)
    restricted = _restriction(host, conf)
    listen = conf.settings.get("listen") or conf.settings.get("listen_ipv6") or conf.cf
    if running and restricted is None:
        out.append(f("vsftpd.open", "high", "ftp", listen,
                     f"An FTP server runs and is open to every address: {how}",
                     "Anyone on the internet can try passwords against it, and in clear text: the incident's "
                     "intruders logged in this way and uploaded their web shells.",
                     "Stop vsftpd (use sftp with keys); if FTP must stay, admit only the maintenance addresses "
                     "(firewall, or tcp_wrappers=YES with hosts.allow) and require TLS."))
    elif running:
        out.append(f("vsftpd.open", "low", "ftp", listen, f"An FTP server runs ({how}), but {restricted}",
                     "Fixed source addresses stop guessing from elsewhere, but FTP remains a way to write files "
                     "onto the server.", "Prefer sftp with keys and stop vsftpd."))
    else:
        out.append(f("vsftpd.open", "low", "ftp", conf.cf, "vsftpd is installed and configured (not seen enabled)",
                     "An FTP server that is not needed is one service started by mistake away from being open.",
                     "Remove the package if FTP is not used."))
    if conf.on("anonymous_enable"):
        upload = conf.on("anon_upload_enable") and conf.on("write_enable")
        out.append(f("vsftpd.anonymous_enable", "high", "ftp", conf.at("anonymous_enable"),
                     f"Anonymous FTP logins are allowed{' and may upload' if upload else ''}",
                     "Anyone can log in without a password" + (" and write files" if upload else "") + ".",
                     "Set anonymous_enable=NO."))
    if conf.on("local_enable") and conf.on("write_enable"):
        out.append(f("vsftpd.local_write", "medium", "ftp", conf.at("write_enable"),
                     "Local accounts can log in by FTP and write files (local_enable=YES, write_enable=YES)",
                     "One guessed password is a way to put a script where the web server runs it.",
                     "Limit FTP logins to a user list (userlist_enable=YES, userlist_deny=NO) and upload paths "
                     "outside the web root; better, sftp with keys."))
    if conf.on("local_enable") and not conf.on("chroot_local_user"):
        out.append(f("vsftpd.chroot_local_user", "medium", "ftp", conf.at("chroot_local_user"),
                     "FTP users are not confined to their home directory (chroot_local_user is off)",
                     "An FTP login can read and write anywhere its account may: configuration, other sites, /tmp.",
                     "Set chroot_local_user=YES."))
    if conf.on("local_enable"):
        if conf.on("userlist_enable") and not conf.on("userlist_deny"):
            out.append(f("vsftpd.userlist", "strength", "ftp", conf.at("userlist_deny"),
                         "Only accounts on the user list may log in by FTP",
                         "Every other account is refused before its password is asked.", "Keep it."))
        else:
            deny_only = conf.on("userlist_enable")
            out.append(f("vsftpd.userlist", "low", "ftp", conf.at("userlist_deny") if deny_only else
                         conf.at("userlist_enable"),
                         "Every local account not on the deny list may log in by FTP (userlist_deny=YES)"
                         if deny_only else "Every local account may log in by FTP (no allow-list)",
                         "Any account whose password is weak is an FTP login.",
                         "Set userlist_enable=YES, userlist_deny=NO and list the maintenance account only."))
    if not conf.on("ssl_enable"):
        out.append(f("vsftpd.ssl_enable", "medium", "ftp", conf.at("ssl_enable"),
                     "FTP logins are not encrypted (ssl_enable is off)",
                     "Passwords cross the network in clear text, readable on any hop between.",
                     "Set ssl_enable=YES with force_local_logins_ssl=YES, or replace FTP with sftp."))
    if "pasv_min_port" not in conf.settings or "pasv_max_port" not in conf.settings:
        out.append(f("vsftpd.pasv_ports", "low", "ftp", conf.cf,
                     "Passive-mode ports are not pinned (pasv_min_port/pasv_max_port)",
                     "A firewall cannot admit FTP's data connections without opening every high port.",
                     "Set pasv_min_port and pasv_max_port and open only that range."))
    if conf.on("dual_log_enable") or (conf.on("xferlog_enable") and not conf.on("xferlog_std_format")):
        out.append(f("vsftpd.log", "strength", "log_audit", conf.at("dual_log_enable"),
                     "vsftpd logs logins, failed logins and every upload with the client address",
                     "The incident's uploads of web shells, and who made them, were read from this log.", "Keep it."))
    elif conf.on("xferlog_enable"):
        out.append(f("vsftpd.log", "low", "log_audit", conf.at("xferlog_enable"),
                     "vsftpd writes only the xferlog (transfers; no logins or failed logins)",
                     "Password guessing and the login before an upload are not recorded.",
                     "Set dual_log_enable=YES (vsftpd.log with logins as well)."))
    else:
        out.append(f("vsftpd.log", "high", "log_audit", conf.at("xferlog_enable"),
                     "vsftpd logs no transfers (xferlog_enable is off)",
                     "Uploads — how the incident's web shells arrived — would leave no record.",
                     "Set xferlog_enable=YES and dual_log_enable=YES."))

    tokens = _tokens(site_names(host))
    for acc in ftp_accounts(host):
        token = derived_from(acc.name, tokens)
        if token:
            out.append(f("vsftpd.domain_account", "high", "access", acc.file,
                         f"The FTP account '{acc.name}' is derived from the site's name ('{token}')",
                         "A user name that follows from the domain is the first guess; in the incident its "
                         "password was guessable too, and that was the way in.",
                         "Replace it with a random account name and a long random password, limited to the "
                         "maintenance addresses — or key-based sftp.", line=acc.line, evidence=acc.text))
    return out
