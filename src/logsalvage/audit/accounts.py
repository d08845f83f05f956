"""The host's accounts (``/etc/passwd``, ``/etc/group``, ``/etc/shadow``) and which of them are
service accounts."""

from __future__ import annotations

from dataclasses import dataclass

from logsalvage.audit.host import Host
from logsalvage.audit.tree import ConfigFile

# accounts daemons run as: a web shell, a compromised daemon or a crontab they install acts as one
WEB_ACCOUNTS = frozenset({"nobody", "apache", "www-data", "www", "httpd", "nginx", "wwwrun", "http", "lighttpd"})
SERVICE_ACCOUNTS = WEB_ACCOUNTS | frozenset({
    "daemon", "bin", "sys", "adm", "lp", "mail", "news", "uucp", "operator", "games", "gopher", "ftp", "proxy",
    "backup", "list", "irc", "gnats", "nfsnobody", "named", "bind", "ntp", "chrony", "sshd", "postfix", "dbus",
    "rpc", "rpcuser", "tss", "polkitd", "systemd-network", "systemd-resolve", "systemd-timesync", "messagebus",
    "mysql", "postgres", "redis", "memcached", "tomcat", "jenkins", "vsftpd", "ftpsecure", "squid", "avahi",
    "saslauth", "dovecot", "dovenull", "tcpdump", "_apt", "uuidd", "syslog", "libuuid", "usbmux", "rtkit",
})
# shells that do not give a login (sync, shutdown and halt run one command)
NO_LOGIN = frozenset({"/sbin/nologin", "/usr/sbin/nologin", "/bin/false", "/usr/bin/false", "/bin/sync",
                      "/sbin/shutdown", "/sbin/halt", "/usr/bin/nologin", "/bin/nologin", "nologin", "false"})


@dataclass(frozen=True)
class Account:
    name: str
    uid: int | None
    gid: int | None
    home: str
    shell: str
    file: ConfigFile
    line: int

    @property
    def can_log_in(self) -> bool:
        return self.shell.strip() not in NO_LOGIN

    @property
    def text(self) -> str:
        return self.file.lines[self.line - 1].strip()


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _passwd(host: Host) -> dict[str, Account]:
    cf = host.tree.read("etc/passwd")
    out: dict[str, Account] = {}
    if cf is None:
        return out
    for no, raw in cf.numbered():
        fields = raw.split(":")
        if len(fields) < 7 or not fields[0] or fields[0].startswith(("#", "+", "-")):
            continue
        name = fields[0].strip()
        out.setdefault(name, Account(name, _int(fields[2]), _int(fields[3]), fields[5], fields[6], cf, no))
    return out


def accounts(host: Host) -> dict[str, Account]:
    return host.fact("accounts", _passwd)


def passwd_file(host: Host) -> ConfigFile | None:
    return host.tree.read("etc/passwd")


def _groups(host: Host) -> dict[str, tuple[int | None, frozenset[str]]]:
    cf = host.tree.read("etc/group")
    out: dict[str, tuple[int | None, frozenset[str]]] = {}
    if cf is None:
        return out
    for _, raw in cf.numbered():
        fields = raw.split(":")
        if len(fields) >= 4 and fields[0]:
            out[fields[0]] = (_int(fields[2]), frozenset(m.strip() for m in fields[3].split(",") if m.strip()))
    return out


def groups(host: Host) -> dict[str, tuple[int | None, frozenset[str]]]:
    return host.fact("groups", _groups)


def in_group(host: Host, account: str, group: str) -> bool:
    acc = accounts(host).get(account)
    gid, members = groups(host).get(group, (None, frozenset()))
    return account in members or (acc is not None and gid is not None and acc.gid == gid)


def uid_min(host: Host) -> int:
    """The first uid of people's accounts (``UID_MIN`` in ``/etc/login.defs``; 1000 when not set)."""
    cf = host.tree.read("etc/login.defs")
    if cf:
        for _, raw in cf.numbered():
            words = raw.split()
            if len(words) >= 2 and words[0] == "UID_MIN" and words[1].isdigit():
                return int(words[1])
    return 1000


def is_service_account(host: Host, acc: Account) -> bool:
    if acc.name == "root":
        return False
    if acc.name in SERVICE_ACCOUNTS:
        return True
    return acc.uid is not None and 0 < acc.uid < uid_min(host) or acc.uid in (65534, 65535)


def people(host: Host) -> list[Account]:
    """Accounts that are neither root nor a service account (who could log in by FTP or ssh)."""
    return [a for a in accounts(host).values() if a.name != "root" and not is_service_account(host, a)]
